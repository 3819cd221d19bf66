/** S3's limit of parts per multipart upload. */
export const MAX_PARTS = 10_000;

export interface UploadPlan {
  multipart: boolean;
  /** Bytes per part (the last one may be shorter); the file size for a single PUT. */
  partSize: number;
  partCount: number;
}

/**
 * How a file of `fileSize` bytes is uploaded: one PUT up to `threshold` bytes; above it, parts
 * of `partSize` bytes grown (in whole MiB) to fit 10,000 parts. The API plans sessions with it
 * and the client library cuts parts with it, so both agree on every part's bounds.
 */
export function planUpload(fileSize: number, threshold: number, partSize: number): UploadPlan {
  if (fileSize <= threshold) return { multipart: false, partSize: fileSize, partCount: 1 };
  const MiB = 1024 * 1024;
  const size = Math.max(partSize, Math.ceil(fileSize / MAX_PARTS / MiB) * MiB);
  return { multipart: true, partSize: size, partCount: Math.ceil(fileSize / size) };
}
