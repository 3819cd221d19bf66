/** Every workflow the light worker runs; the bundle is built from this file. */
export { MediaUploadWorkflow } from './media-upload.workflow';
export { MediaDeletionWorkflow } from './media-delete.workflow';
export { MediaCleanupWorkflow, MediaWebhookWorkflow } from './media-lifecycle.workflow';
