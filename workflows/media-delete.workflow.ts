import { proxyActivities, setCurrentDetails } from '@temporalio/workflow';
import type { Activities } from '../activities';

export const mediaDeletionWorkflowId = (mediaId: string) => `media-delete/${mediaId}`;

export interface MediaDeletionInput {
  mediaId: string;
  storageKey: string;
  uploadId?: string;
}

// Deletion must finish whatever the outage: retry with backoff for up to a day.
const deletionActivity = {
  startToCloseTimeout: '2 minutes',
  scheduleToCloseTimeout: '1 day',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '5 minutes' },
} as const;

const { compensateUpload, recordStatus } = proxyActivities<Activities>(deletionActivity);

/** Deletes a finished media through the same compensation code an upload failure uses. */
export async function MediaDeletionWorkflow(input: MediaDeletionInput): Promise<void> {
  setCurrentDetails(`deleting media ${input.mediaId}`);
  await compensateUpload(input);
  await recordStatus({ mediaId: input.mediaId, status: 'DELETED' });
}
