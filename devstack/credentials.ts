/** S3 credentials of the local S3 server (dev and tests only; production uses IRSA). */
export const devS3Credentials = { accessKeyId: 'media-dev-access-key', secretAccessKey: 'media-dev-secret-key-0123456789' };
export const buckets = { incoming: 'incoming', media: 'media' };
