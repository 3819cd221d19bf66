import type { MediaRow, RenditionRow } from '../shared/db/entities';

/** Metadata fields that may leave the service; GPS and raw EXIF stay private. */
const PUBLIC_METADATA = ['width', 'height', 'format', 'orientation', 'durationSeconds', 'videoCodec', 'audioCodec', 'frameRate', 'camera', 'takenAt', 'hasAudio'];

export function presentMedia(row: MediaRow, renditions: RenditionRow[], cdnBase: string) {
  const url = (key: string) => `${cdnBase}/${key.split('/').map(encodeURIComponent).join('/')}`;
  const ready = row.status === 'READY';
  const thumbnails = renditions
    .filter((r) => r.kind === 'thumbnail')
    .map((r) => ({ width: r.width, height: r.height, format: r.contentType.replace('image/', ''), url: url(r.storageKey) }));
  const posterRow = renditions.find((r) => r.kind === 'poster');
  const master = renditions.find((r) => r.kind === 'hls' && r.label === 'master');
  return {
    mediaId: row.id,
    status: row.status,
    mediaType: row.mediaType,
    fileName: row.fileName,
    fileSize: row.fileSize,
    mimeType: row.mimeType,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
    cdnUrl: ready ? url(row.storageKey) : null,
    thumbnails: ready ? thumbnails : [],
    poster: ready && posterRow ? { url: url(posterRow.storageKey), width: posterRow.width, height: posterRow.height } : null,
    hls:
      ready && master
        ? {
            masterUrl: url(master.storageKey),
            renditions: renditions
              .filter((r) => r.kind === 'hls' && r.label !== 'master')
              .map((r) => ({ name: r.label, width: r.width, height: r.height, url: url(r.storageKey) })),
          }
        : null,
    metadata: Object.fromEntries(Object.entries(row.metadata ?? {}).filter(([k]) => PUBLIC_METADATA.includes(k))),
    failureReason: row.failureReason,
    batchId: row.batchId,
  };
}
