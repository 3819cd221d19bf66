/**
 * The media domain: types, limits and statuses (SPEC.md §4). Pure data, imported by the
 * API, the activities and the workflow alike.
 */
export const MEDIA_TYPES = ['PROFILE_IMAGE', 'POST_IMAGE', 'POST_VIDEO', 'DOCUMENT'] as const;

export type MediaType = (typeof MEDIA_TYPES)[number];

/** Spellings clients send for a type the rules name otherwise: legacy and non-standard ones seen in the wild. */
const MIME_ALIASES: Readonly<Record<string, string>> = {
  'image/jpg': 'image/jpeg',
  'image/pjpeg': 'image/jpeg',
  'image/x-png': 'image/png',
  'video/x-m4v': 'video/mp4',
  'application/x-pdf': 'application/pdf',
};

/**
 * The type a client declared, as the rules and S3 name it: without parameters (a MediaRecorder
 * Blob is typed `video/webm;codecs=vp8,opus`), in lower case (RFC 2045 §5.1: type and subtype
 * are case-insensitive), legacy spellings mapped (`image/jpg` → `image/jpeg`).
 */
export function canonicalMimeType(type: string): string {
  const bare = type.split(';')[0]!.trim().toLowerCase();
  return MIME_ALIASES[bare] ?? bare;
}

/** Longest file name the API accepts, in characters (code points: 255 emoji are 510 UTF-16 units). */
export const MAX_FILE_NAME_LENGTH = 255;

const MiB = 1024 * 1024;

export interface MediaTypeRule {
  allowedMimeTypes: readonly string[];
  maxBytes: number;
  kind: 'image' | 'video' | 'document';
  /** Thumbnail widths; never upscaled. */
  thumbnailWidths: readonly number[];
}

export const MEDIA_TYPE_RULES: Record<MediaType, MediaTypeRule> = {
  PROFILE_IMAGE: {
    allowedMimeTypes: ['image/jpeg', 'image/png', 'image/heic', 'image/heif', 'image/avif'],
    maxBytes: 5 * MiB,
    kind: 'image',
    thumbnailWidths: [150, 300],
  },
  POST_IMAGE: {
    allowedMimeTypes: ['image/jpeg', 'image/png', 'image/webp', 'image/gif', 'image/heic', 'image/heif', 'image/avif'],
    maxBytes: 25 * MiB,
    kind: 'image',
    thumbnailWidths: [150, 300, 600, 1200],
  },
  POST_VIDEO: {
    allowedMimeTypes: ['video/mp4', 'video/quicktime', 'video/webm'],
    maxBytes: 5 * 1024 * MiB,
    kind: 'video',
    thumbnailWidths: [150, 300, 600],
  },
  // Seed 002: site plans as PDFs; widths are those of the page-1 preview.
  DOCUMENT: { allowedMimeTypes: ['application/pdf'], maxBytes: 100 * MiB, kind: 'document', thumbnailWidths: [150, 300, 600, 1200] },
};

export const FILE_EXTENSIONS: Record<string, string> = {
  'image/jpeg': 'jpg',
  'image/png': 'png',
  'image/webp': 'webp',
  'image/gif': 'gif',
  'image/heic': 'heic',
  'image/heif': 'heif',
  'image/avif': 'avif',
  'video/mp4': 'mp4',
  'video/quicktime': 'mov',
  'video/webm': 'webm',
  'application/pdf': 'pdf',
};

export const MEDIA_STATUSES = [
  'AWAITING_UPLOAD',
  'VERIFYING',
  'SCANNING',
  'PROCESSING',
  'READY',
  'FAILED',
  'REJECTED',
  'EXPIRED',
  'CANCELLED',
  'DELETING',
  'DELETED',
] as const;
export type MediaStatus = (typeof MEDIA_STATUSES)[number];

export const TERMINAL_STATUSES: readonly MediaStatus[] = ['READY', 'FAILED', 'REJECTED', 'EXPIRED', 'CANCELLED', 'DELETED'];

export function isTerminal(status: MediaStatus): boolean {
  return TERMINAL_STATUSES.includes(status);
}

/** An upload in progress: its MediaUploadWorkflow is running. DELETING is neither this nor terminal. */
export const UPLOADING_STATUSES: readonly MediaStatus[] = ['AWAITING_UPLOAD', 'VERIFYING', 'SCANNING', 'PROCESSING'];

/**
 * `{tenant}/{project or owner}/{mediaType-lowercase}/{timestamp}-{uuid}.{ext}` (SPEC.md §4,
 * issue 17). The segments are key-safe hashes (services/shared/storage-keys.ts
 * `originalKeyPrefix`), never the raw tenant, project or `sub`. Rows created before tenants keep
 * their stored `{mediaType}/{owner}/…` keys: nothing parses a key, every reader uses the row's.
 */
export function originalKey(mediaType: MediaType, prefix: { tenant: string; owner: string }, mediaId: string, mimeType: string, now: Date): string {
  for (const segment of [prefix.tenant, prefix.owner]) {
    if (!/^[0-9a-z]+$/.test(segment)) throw new Error('key segments must be key-safe (lowercase letters and digits)');
  }
  return `${prefix.tenant}/${prefix.owner}/${mediaType.toLowerCase()}/${now.getTime()}-${mediaId}.${FILE_EXTENSIONS[mimeType] ?? 'bin'}`;
}

/** Long-lived, content-addressed-by-key renditions: CDNs and browsers may cache them forever. */
export const DERIVED_CACHE_CONTROL = 'public, max-age=31536000, immutable';

/** Every object derived from a media lives below this prefix in the media bucket. */
export function derivedPrefix(mediaId: string): string {
  return `derived/${mediaId}/`;
}

/**
 * Which media a deletion may take. A deletion claims its row first (marks it DELETING) and
 * only then removes objects, marking it DELETED once storage is clean; a concurrent attach
 * either wins (the deletion skips the row) or sees DELETING and fails. A row already DELETING
 * or DELETED is claimed again so a retried deletion finishes its storage work.
 */
export type DeletionRule =
  /** Any finished media (the owner's DELETE). */
  | { kind: 'finished' }
  /** READY media that is not attached, optionally only if unchanged since `before` (cleanup, replaced profile images). */
  | { kind: 'unattached'; before?: string }
  /** FAILED/REJECTED/EXPIRED/CANCELLED rows older than `before` (retention). */
  | { kind: 'failed'; before: string }
  /**
   * Deletions that never finished, changed before `before`: DELETING rows (the removal ran out
   * of retries, or the API marked the row but could not start its workflow) and DELETED rows
   * of the previous release without `purgedAt`; not uploads a DELETE cancelled ('cancelling').
   */
  | { kind: 'unpurged'; before: string }
  /**
   * Uploads in flight a DELETE claimed before `before` (DELETING with the private flag
   * cancelRequested) and that still read so: the cancellation may never have reached Temporal
   * (the DELETE answered 503), or the workflow ended without taking the row (terminated).
   */
  | { kind: 'cancelling'; before: string };
