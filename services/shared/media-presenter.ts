import type { MediaRow, RenditionRow } from './db/entities';
import { cdnBaseUrl, type Config } from './config';
import type { MediaType } from './media-types';

export interface PresentOptions {
  /** Public base URL of the media bucket (the CDN). */
  cdnBase: string;
  /** Types whose objects are public; others get no URLs and are read through `download-url`. */
  publicTypes: readonly MediaType[];
}

/** Metadata fields that may leave the service; GPS and raw EXIF stay private. */
const PUBLIC_METADATA = [
  'width',
  'height',
  'format',
  'orientation',
  'durationSeconds',
  'videoCodec',
  'audioCodec',
  'frameRate',
  'camera',
  'takenAt',
  'hasAudio',
  'rotation',
  // Videos: how the first playable rendition was made (stream copy or a fast rung, and why).
  'firstRendition',
  // Names (never values) of the container tags removed from the published original (location, title, XMP).
  'originalMetadataRemoved',
  // Documents (activities/documents.ts).
  'pageCount',
  'title',
  'author',
  'encrypted',
  'passwordRequired',
  'restrictions',
  'hasJavaScript',
  'hasEmbeddedFiles',
  'textBytes',
  'textTruncated',
  // MuPDF rebuilt a broken cross-reference table; a time or memory bound stopped the analysis early.
  'repaired',
  'analysisStoppedBy',
];

/** The API's view of one media (GET /media/{id}, SSE, webhooks). */
export function presentMedia(row: MediaRow, renditions: RenditionRow[], { cdnBase, publicTypes }: PresentOptions) {
  const isPublic = publicTypes.includes(row.mediaType);
  const url = (key: string) => (isPublic ? `${cdnBase}/${key.split('/').map(encodeURIComponent).join('/')}` : null);
  const ready = row.status === 'READY';
  const thumbnails = renditions
    .filter((r) => r.kind === 'thumbnail')
    .map((r) => ({ width: r.width, height: r.height, format: r.contentType.replace('image/', ''), variant: r.label, url: url(r.storageKey) }));
  const posterRow = renditions.find((r) => r.kind === 'poster');
  const master = renditions.find((r) => r.kind === 'hls' && r.label === 'master');
  const variants = renditions
    .filter((r) => r.kind === 'hls' && r.label !== 'master')
    .map((r) => ({ name: r.label, width: r.width, height: r.height, url: url(r.storageKey) }));
  // Playable before READY: the first rendition is published only after the scan, and
  // compensation removes it (and its rows) on any other outcome.
  const playable = (row.status === 'PROCESSING' || ready) && !!master && isPublic;
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
    poster: ready && posterRow ? { url: url(posterRow.storageKey), width: posterRow.width, height: posterRow.height, variant: posterRow.label } : null,
    // HLS playlists name their segments relatively, which a presigned URL cannot cover.
    hls: ready && playable ? { masterUrl: url(master!.storageKey), renditions: variants } : null,
    /** The HLS that plays now: the first rendition while PROCESSING, the whole ladder once READY. */
    playback: playable ? { masterUrl: url(master!.storageKey)!, posterUrl: posterRow ? url(posterRow.storageKey) : null, renditions: variants, complete: ready } : null,
    metadata: Object.fromEntries(Object.entries(row.metadata ?? {}).filter(([k]) => PUBLIC_METADATA.includes(k))),
    failureReason: row.failureReason,
    batchId: row.batchId,
    projectId: row.projectId,
    public: isPublic,
    attachment: row.ownerType ? { ownerType: row.ownerType, ownerId: row.ownerId, attachedAt: row.attachedAt?.toISOString() ?? null } : null,
  };
}

export function presentOptions(config: Config): PresentOptions {
  return { cdnBase: cdnBaseUrl(config), publicTypes: config.PUBLIC_MEDIA_TYPES };
}

export type PresentedMedia = ReturnType<typeof presentMedia>;
