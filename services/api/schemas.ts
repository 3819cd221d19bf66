import { z } from 'zod';
import { canonicalMimeType, MAX_FILE_NAME_LENGTH, MEDIA_STATUSES, MEDIA_TYPES, type MediaStatus } from '../shared/media-types';
import { isWellFormedText } from '../shared/sanitize';
import { invalidScopeIdReason, MAX_SCOPE_ID_BYTES } from './auth';

/** Request and response shapes; the OpenAPI document is generated from these same schemas. */

// Path separators, control characters (C0, DEL, C1) and bidi overrides have no place in a
// display name; neither have lone surrogates. Such a name is refused (400), not rewritten: the
// client learns its name was unusable instead of finding another one stored.
const unsafeFileName = /[\u0000-\u001f\u007f-\u009f/\\\u202a-\u202e\u2066-\u2069]/;

export const checksumSha256 = z
  .string()
  .regex(/^([A-Za-z0-9+/]{43}=|[0-9a-fA-F]{64})$/, 'base64 or hex SHA-256')
  .transform((v) => (v.length === 64 ? Buffer.from(v, 'hex').toString('base64') : v));

/** A project id: 1–128 bytes of printable Unicode, the same rule as the token's projects claim (auth.ts `invalidScopeIdReason`). */
export const projectId = z
  .string()
  .min(1)
  .max(MAX_SCOPE_ID_BYTES)
  .refine((id) => invalidScopeIdReason(id) === undefined, 'project id must be 1-128 bytes of printable text, without invisible characters or surrounding whitespace')
  .describe('A project id your token grants (JWT_PROJECTS_CLAIM); 1-128 bytes of printable text');

export const uploadSessionRequest = z
  .object({
    fileName: z
      .string()
      .min(1)
      .max(MAX_FILE_NAME_LENGTH)
      .refine((n) => !unsafeFileName.test(n) && isWellFormedText(n) && n !== '.' && n !== '..' && n.trim() !== '', 'file name has path separators, control characters or lone surrogates, or is blank')
      .describe(
        'Display name, 1-255 characters (code points; emoji and joined emoji count per code point). Refused with 400 VALIDATION_FAILED: `/` or `\\`, control characters (C0, DEL, C1), bidi overrides and isolates (U+202A-U+202E, U+2066-U+2069), lone surrogates, `.`, `..` and names of spaces only. Stored and returned as sent, never rewritten.',
      ),
    fileType: z
      .string()
      .min(3)
      .max(100)
      .transform(canonicalMimeType)
      .describe('MIME type of the file; parameters, case and legacy spellings are normalised (`video/webm;codecs=vp8,opus` → `video/webm`, `IMAGE/JPG` → `image/jpeg`), and the session answers with the type to send in the PUT'),
    fileSize: z.number().int().positive(),
    mediaType: z.enum(MEDIA_TYPES),
    checksumSha256: checksumSha256
      .optional()
      .describe(
        "SHA-256 of the whole file (base64 or hex). A single PUT: signed into the URL, S3 refuses other bytes. A multipart upload: checked on the assembled file by the virus scan after complete (REJECTED, CHECKSUM_MISMATCH)",
      ),
    /** Upload into this project (one the token grants; 403 PROJECT_FORBIDDEN otherwise) instead of the user's own space. */
    projectId: projectId.optional(),
  })
  .strict();
export type UploadSessionRequest = z.infer<typeof uploadSessionRequest>;

/** Most files in one batch request. */
export const MAX_BATCH_FILES = 100;
export const batchRequest = z.object({ files: z.array(z.unknown()).min(1).max(MAX_BATCH_FILES) }).strict();

export const completeRequest = z
  .object({
    parts: z
      .array(z.object({ partNumber: z.number().int().min(1).max(10000), etag: z.string().min(1).max(200) }).strict())
      .max(10000)
      .optional(),
  })
  .strict();

export const partsRequest = z
  .object({
    partNumbers: z.array(z.number().int().min(1).max(10000)).min(1).max(1000),
    /** Optional per-part SHA-256 (base64 or hex), keyed by part number. */
    checksums: z.record(z.string().regex(/^\d+$/), checksumSha256).optional(),
  })
  .strict();

const ownerType = z.string().regex(/^[a-z][a-z0-9_-]{0,63}$/, 'lowercase letters, digits, - and _, starting with a letter');
const ownerId = z.string().min(1).max(200).regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces');

export const listQuery = z.object({
  status: z.enum(MEDIA_STATUSES).optional(),
  ownerType: ownerType.optional(),
  ownerId: ownerId.optional(),
  /** Only this project's media (one the token grants; 403 PROJECT_FORBIDDEN otherwise). */
  projectId: projectId.optional(),
  cursor: z.string().max(200).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
});

export const mediaIdParam = z.string().uuid();

const presignedPut = z.object({ method: z.literal('PUT'), url: z.string(), headers: z.record(z.string(), z.string()) });
const presignedPart = z.object({ partNumber: z.number().int(), url: z.string(), headers: z.record(z.string(), z.string()) });
const multipart = z.object({
  method: z.literal('MULTIPART'),
  uploadId: z.string(),
  partSize: z.number().int(),
  partCount: z.number().int(),
  parts: z.array(presignedPart),
});

export const uploadSessionResponse = z.object({
  mediaId: z.string().uuid(),
  status: z.enum(MEDIA_STATUSES),
  storageKey: z.string(),
  expiresAt: z.string(),
  upload: z.union([presignedPut, multipart]),
});

export const errorResponse = z.object({
  error: z.object({ code: z.string(), message: z.string(), details: z.record(z.string(), z.unknown()).optional() }),
});

/** The error body with `code` narrowed to the given codes (one HTTP status's codes). */
export function errorResponseWith(codes: readonly [string, ...string[]]) {
  return z.object({
    error: z.object({ code: z.enum(codes), message: z.string(), details: z.record(z.string(), z.unknown()).optional() }),
  });
}

const n = (description: string) => z.number().nullable().optional().describe(description);
const str = (description: string) => z.string().nullable().optional().describe(description);
const bool = (description: string) => z.boolean().nullable().optional().describe(description);

/**
 * The public metadata keys (PUBLIC_METADATA in services/shared/media-presenter.ts: nothing else
 * leaves the service, GPS and raw EXIF never). Which appear depends on the media type and on
 * what processing found; null where a step found nothing (a document without a title).
 */
export const mediaMetadata = z
  .object({
    width: n('pixels as displayed (EXIF orientation or the video display matrix applied)'),
    height: n('pixels as displayed'),
    format: str('image: the format read from the bytes (jpeg, png, webp, gif, heic, avif, …)'),
    orientation: n('image: the EXIF Orientation of the original (1–8); thumbnails are upright'),
    camera: str('image: EXIF Make and Model'),
    takenAt: str('image: EXIF capture time, ISO 8601'),
    durationSeconds: n('video: seconds'),
    videoCodec: str('video: ffprobe codec name of the original (h264, hevc, vp8, …)'),
    audioCodec: str('video: ffprobe codec name of the original audio, if any'),
    frameRate: n('video: frames per second of the original'),
    hasAudio: bool('video: whether the original has an audio stream'),
    rotation: n('video: clockwise degrees the display matrix turns the coded frames (0, 90, 180, 270)'),
    firstRendition: z
      .object({ path: z.enum(['copy', 'fast']), reasons: z.array(z.string()), rendition: z.string() })
      .passthrough()
      .optional()
      .describe('video: how the first playable rendition was made: `copy` (the original stream-copied) or `fast` (one low rung), and why not copied'),
    originalMetadataRemoved: z.array(z.string()).optional().describe('video: names (never values) of the container tags removed from the published original'),
    pageCount: n('document: pages; null when a password is required'),
    title: str('document: /Title of the document info'),
    author: str('document: /Author of the document info'),
    encrypted: bool('document: /Encrypt in the trailer'),
    passwordRequired: bool('document: opening needs a password (no preview, no text)'),
    restrictions: z
      .array(z.enum(['print', 'copy', 'edit', 'annotate', 'form', 'accessibility', 'assemble', 'print-hq']))
      .optional()
      .describe("document: what an owner password's permissions deny (ISO 32000-1 Table 22); the preview and text are made regardless"),
    hasJavaScript: bool('document: any JavaScript action or XFA form; true when the analysis stopped before every object was read'),
    hasEmbeddedFiles: bool('document: any embedded file; true when the analysis stopped before every object was read'),
    textBytes: n('document: UTF-8 bytes of the extracted text kept (GET /media/{id}/text)'),
    textTruncated: bool('document: the text was cut at DOCUMENT_TEXT_MAX_BYTES or by a bound'),
    repaired: bool('document: MuPDF rebuilt a broken cross-reference table'),
    analysisStoppedBy: z.enum(['timeout', 'memory']).nullable().optional().describe('document: the bound that stopped the analysis early (what was read is kept)'),
  })
  .passthrough();

export const mediaResponse = z.object({
  mediaId: z.string().uuid(),
  status: z.enum(MEDIA_STATUSES),
  mediaType: z.enum(MEDIA_TYPES),
  fileName: z.string(),
  fileSize: z.number().int(),
  mimeType: z.string(),
  createdAt: z.string(),
  updatedAt: z.string(),
  cdnUrl: z.string().nullable(),
  thumbnails: z.array(z.object({ width: z.number().nullable(), height: z.number().nullable(), format: z.string(), variant: z.string(), url: z.string().nullable() })),
  poster: z.object({ url: z.string().nullable(), width: z.number().nullable(), height: z.number().nullable(), variant: z.string() }).nullable(),
  hls: z.object({ masterUrl: z.string(), renditions: z.array(z.object({ name: z.string(), width: z.number().nullable(), height: z.number().nullable(), url: z.string() })) }).nullable(),
  playback: z
    .object({
      masterUrl: z.string(),
      posterUrl: z.string().nullable(),
      renditions: z.array(z.object({ name: z.string(), width: z.number().nullable(), height: z.number().nullable(), url: z.string() })),
      complete: z.boolean().describe('true once READY: the master lists the whole ladder'),
    })
    .nullable()
    .describe(
      'Video only, set before READY: the HLS that plays now. While PROCESSING it lists the first rendition (`source`, the original stream-copied, or `fast`, one low rung; see metadata.firstRendition), set as soon as its first three segments are published: its media playlist is an EVENT playlist (RFC 8216 §4.3.3.5) that grows while the rendition is written, starts players at 0 (`#EXT-X-START:TIME-OFFSET=0`) and ends with `#EXT-X-ENDLIST`; master and that playlist are served `Cache-Control: no-cache`. Once READY the whole ladder (same masterUrl, rewritten). null for images, private types and unplayable states.',
    ),
  metadata: mediaMetadata,
  failureReason: z.string().nullable(),
  batchId: z.string().nullable(),
  /** The project the media was uploaded to; null for the uploader's own media. */
  projectId: z.string().nullable(),
  /** False for media types outside PUBLIC_MEDIA_TYPES: no URLs, read through download-url. */
  public: z.boolean(),
  attachment: z.object({ ownerType: z.string(), ownerId: z.string(), attachedAt: z.string().nullable() }).nullable(),
});

/** POST /media/upload-sessions: one item per file, in request order, a session or its own error. */
export const batchResponse = z.object({
  batchId: z.string().uuid(),
  items: z.array(
    z.union([
      uploadSessionResponse.extend({ index: z.number().int() }),
      errorResponse.extend({ index: z.number().int() }),
    ]),
  ),
});

export const batchDetailResponse = z.object({
  batchId: z.string().uuid(),
  itemCount: z.number().int().describe('Files in the batch request, refused ones included; `items` and `counts` hold the media that were created (a refused file never became one: its error was in the batch answer)'),
  createdAt: z.string(),
  /** Items per status, every status listed (0 when none). */
  counts: z.object(Object.fromEntries(MEDIA_STATUSES.map((status) => [status, z.number().int()])) as Record<MediaStatus, z.ZodNumber>),
  items: z.array(mediaResponse),
});

export const mediaListResponse = z.object({ items: z.array(mediaResponse), nextCursor: z.string().nullable() });

/** The status right after the confirmation; the workflow takes over from there. */
export const completeResponse = z.object({ mediaId: z.string().uuid(), status: z.enum(MEDIA_STATUSES) });

export const partUrlsResponse = z.object({ mediaId: z.string().uuid(), uploadId: z.string(), parts: z.array(presignedPart) });

export const uploadedPartsResponse = z.object({
  mediaId: z.string().uuid(),
  uploadId: z.string(),
  partSize: z.number().int().nullable(),
  partCount: z.number().int().nullable(),
  parts: z
    .array(z.object({ partNumber: z.number().int(), etag: z.string(), size: z.number().int(), checksumSha256: z.string().optional() }))
    .describe('the latest upload of each part number; a part uploaded twice within one second with different bytes is left out (S3 cannot order the copies): send it again'),
});

/** DELETE /media/{id}: `CANCELLING` an upload in flight, `DELETING` a finished media. */
export const deleteResponse = z.object({ mediaId: z.string().uuid(), status: z.enum(MEDIA_STATUSES), action: z.enum(['CANCELLING', 'DELETING']) });

/** POST /media/{id}/attach: the media, and the profile images it replaced (being deleted). */
export const attachResponse = mediaResponse.extend({ replaced: z.array(z.string().uuid()) });

/** GET /upload-options: how the API plans uploads, so a client (Uppy) can cut parts the same way. */
export const uploadOptionsResponse = z.object({
  /** Files up to this size are one PUT; larger ones are multipart. */
  multipartThresholdBytes: z.number().int(),
  /** Part size before growing to fit `maxParts` (see planUpload in services/shared/upload-plan.ts). */
  partSizeBytes: z.number().int(),
  maxParts: z.number().int(),
});

export const attachRequest = z.object({ ownerType, ownerId }).strict();

export const downloadUrlQuery = z.object({
  /** `original`, or a rendition's `variant` as GET /media/{id} lists it (e.g. `300.webp`, `300.jpg`, `poster.jpg`). */
  variant: z.string().min(1).max(100).default('original'),
});

export const downloadUrlResponse = z.object({ mediaId: z.string().uuid(), variant: z.string(), url: z.string(), expiresAt: z.string() });

/** GET /media/{id}/text: the text extracted from a READY document. */
export const mediaTextResponse = z.object({
  mediaId: z.string().uuid(),
  /** Page texts in page order separated by form feeds (U+000C); '' for a scan without a text layer. */
  text: z.string(),
  /** UTF-8 bytes of `text`. */
  sizeBytes: z.number().int(),
  /** The text was cut at the configured maximum (DOCUMENT_TEXT_MAX_BYTES, default 1 MiB). */
  truncated: z.boolean(),
  /** Pages whose text was read. */
  pagesRead: z.number().int(),
});
