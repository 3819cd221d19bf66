import { ApplicationFailure, Context } from '@temporalio/activity';
import { rm } from 'node:fs/promises';
import type { Client } from '@temporalio/client';
import { CANCEL_REQUESTED, type MediaRepository } from '../services/shared/db/media-repository';
import { failureCode, UPLOAD_OUTCOMES, type WorkerMetrics } from '../services/shared/metrics';
import { detectMimeType, MAGIC_BYTES_NEEDED, matchesDeclaredType } from '../services/shared/magic-bytes';
import { derivedPrefix, type MediaStatus } from '../services/shared/media-types';
import { isPreconditionFailed, pickParts, REFUSED_PART_CLAIMS, type Storage } from '../services/shared/storage';
import { PrivateMetadataError, type MetadataScrubber } from '../services/shared/media/private-metadata';
import { withWholeEnding } from '../services/shared/media/images';
import type { ConfirmedPart } from '../workflows/media-upload.workflow';
import type { createLifecycleActivities } from './lifecycle';
import type { createDocumentActivities } from './documents';
import type { createImageActivities, createScanActivities, createVideoActivities } from './processing';
import { announcePlayable, type createWebhookActivities, type MediaEventName } from './webhooks';
import { makeWorkDir } from './work-dirs';

export interface ActivityDeps {
  storage: Storage;
  media: MediaRepository;
  buckets: { incoming: string; media: string };
  /** Publishes a status change to the configured webhooks (activities/webhooks.ts). */
  publish?: (client: Client, mediaId: string, event: MediaEventName) => Promise<number>;
  /** Counts uploads reaching a terminal status (`media_uploads_finished_total`). */
  metrics?: Pick<WorkerMetrics, 'uploadsFinished'>;
  /** Removes location and descriptions from an image original before it is published (light worker). */
  scrubber?: MetadataScrubber;
}

/**
 * Runs a read or copy pinned to the ETag that verification saw (`Pinned`). S3 answers 412 when
 * the object was replaced since (its presigned PUT URL is valid until it expires): the upload
 * is rejected as UPLOAD_CHANGED instead of reading or publishing bytes nobody verified or
 * scanned.
 */
export async function pinnedToVerified<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (isPreconditionFailed(err)) throw uploadChanged();
    throw err;
  }
}

/** The bytes to publish (MetadataScrubber.scrub); a file whose private metadata stays is rejected. */
async function scrubOrReject(scrubber: MetadataScrubber, original: Buffer, mimeType: string, dir: string): Promise<Buffer> {
  try {
    return await scrubber.scrub(original, mimeType, dir);
  } catch (err) {
    if (err instanceof PrivateMetadataError) throw ApplicationFailure.nonRetryable(err.message, err.code);
    throw err;
  }
}

/** The rejection of an upload whose object was replaced after verification. */
export function uploadChanged(): ApplicationFailure {
  return ApplicationFailure.nonRetryable('the uploaded object was replaced after it was verified; upload the file again as a new media', 'UPLOAD_CHANGED');
}

export interface InspectUploadResult {
  complete: boolean;
  parts?: ConfirmedPart[];
}

export interface StoredMedia {
  mediaId: string;
  storageKey: string;
  uploadId?: string;
}

/**
 * The one compensation: aborts the multipart upload, deletes the original from both buckets,
 * every derived object, the rendition rows and a document's text. Idempotent. Upload failures, deletions, the
 * cleanup schedule and profile replacement all go through it. Returns derived objects deleted.
 */
export async function removeEverythingStored({ storage, media, buckets }: Pick<ActivityDeps, 'storage' | 'media' | 'buckets'>, input: StoredMedia): Promise<number> {
  if (input.uploadId) await storage.abortMultipartUpload(buckets.incoming, input.storageKey, input.uploadId);
  await storage.delete(buckets.incoming, input.storageKey);
  await storage.delete(buckets.media, input.storageKey);
  const derivedDeleted = await storage.deletePrefix(buckets.media, derivedPrefix(input.mediaId));
  await media.deleteRenditions(input.mediaId);
  await media.deleteText(input.mediaId);
  return derivedDeleted;
}

/**
 * Builds the activities the light worker registers. Each reads its input, calls adapters and
 * returns a small serializable result; bad content fails non-retryably, anything else is
 * thrown as it is so Temporal retries it.
 */
export function createActivities({ storage, media, buckets, publish, metrics, scrubber }: ActivityDeps) {
  return {
    /** Writes the read model; a status the customer hears about is also published to the webhooks. */
    async recordStatus(written: { mediaId: string; status: MediaStatus; failureReason?: string }): Promise<void> {
      let input = written;
      let mediaType = await media.setStatus(input.mediaId, input.status, input.failureReason ?? null);
      if (!mediaType && input.status === 'READY') {
        // A DELETE cancelled the upload (DELETING) as it finished: this last write is the first
        // the workflow does not take back, so everything stored goes here and the upload ends
        // CANCELLED, as if the workflow had seen the cancellation in time.
        const row = await media.findById(input.mediaId);
        if (row?.status === 'DELETING' && row.metadata?.[CANCEL_REQUESTED] === true) {
          await removeEverythingStored({ storage, media, buckets }, { mediaId: row.id, storageKey: row.storageKey, uploadId: row.uploadId ?? undefined });
          input = { mediaId: input.mediaId, status: 'CANCELLED', failureReason: 'CANCELLED_BY_USER' };
          mediaType = await media.setStatus(input.mediaId, input.status, input.failureReason ?? null);
        }
      }
      // Counted only when the row moved, so a retried write is not counted twice.
      if (mediaType && UPLOAD_OUTCOMES.includes(input.status)) {
        metrics?.uploadsFinished.inc({ status: input.status, reason: failureCode(input.failureReason), media_type: mediaType });
      }
      // Also when nothing changed: a retry after a crash between the write and the publish
      // must still publish (delivery workflow ids make it happen once).
      await publish?.(Context.current().client, input.mediaId, input.status);
    },

    /**
     * The first rendition is published: wakes the SSE streams (as a status change does) and
     * sends the `media.playable` webhook (once per media, by its delivery workflow id).
     */
    async recordPlayable(input: { mediaId: string }): Promise<void> {
      await announcePlayable({ media, publish }, Context.current().client, input.mediaId);
    },

    /**
     * At the deadline: is the whole upload there even though nobody confirmed it? A multipart
     * upload is not when a part's latest copies cannot be ordered (`pickParts`' ambiguous), nor
     * when a refused `complete` named other bytes for a part than its latest copy
     * (REFUSED_PART_CLAIMS, read by `mediaId`; workflows started before it pass none).
     */
    async inspectUpload(input: { mediaId?: string; storageKey: string; uploadId?: string; fileSize: number; partCount?: number }): Promise<InspectUploadResult> {
      if (input.uploadId) {
        const copies = await storage.listPartCopies(buckets.incoming, input.storageKey, input.uploadId);
        if (copies) {
          const row = input.mediaId ? await media.findById(input.mediaId) : null;
          const refused = row?.metadata?.[REFUSED_PART_CLAIMS] as ConfirmedPart[] | undefined;
          const { parts, mismatched, ambiguous } = pickParts(copies, refused);
          if (mismatched.length || ambiguous.length) return { complete: false };
          const total = parts.reduce((sum, p) => sum + p.size, 0);
          const complete = parts.length === input.partCount && total === input.fileSize;
          return complete ? { complete, parts: parts.map(({ partNumber, etag }) => ({ partNumber, etag })) } : { complete: false };
        }
        // The multipart upload is gone: it was completed already if the object is there.
      }
      const head = await storage.head(buckets.incoming, input.storageKey);
      return { complete: head?.size === input.fileSize };
    },

    /**
     * Idempotent: after a crash between completing and returning, the object is simply there.
     * Assembles one upload per part number: the one whose ETag was confirmed (the API checked it
     * is the latest upload of its part), else the latest (a part sent twice counts once).
     */
    async completeMultipartUpload(input: { storageKey: string; uploadId: string; parts?: ConfirmedPart[]; fileSize: number }): Promise<void> {
      const copies = await storage.listPartCopies(buckets.incoming, input.storageKey, input.uploadId);
      if (!copies) {
        const head = await storage.head(buckets.incoming, input.storageKey);
        if (head) return;
        throw ApplicationFailure.nonRetryable('multipart upload no longer exists and no object was assembled', 'UPLOAD_INCOMPLETE');
      }
      const { parts, mismatched } = pickParts(copies, input.parts);
      if (mismatched.length) {
        throw ApplicationFailure.nonRetryable(`part(s) ${mismatched.slice(0, 10).join(', ')} changed after confirmation`, 'UPLOAD_INCOMPLETE');
      }
      const total = parts.reduce((sum, p) => sum + p.size, 0);
      if (total !== input.fileSize) {
        throw ApplicationFailure.nonRetryable(`parts add up to ${total} bytes, declared ${input.fileSize}`, 'SIZE_MISMATCH');
      }
      await storage.completeMultipartUpload(buckets.incoming, input.storageKey, input.uploadId, parts);
    },

    /** HEAD: exists, size equals the declared size, content type; then the magic bytes. */
    async verifyUpload(input: { storageKey: string; fileSize: number; mimeType: string }): Promise<{ detectedMimeType: string; etag?: string }> {
      const head = await storage.head(buckets.incoming, input.storageKey);
      if (!head) throw ApplicationFailure.nonRetryable('no object was uploaded', 'UPLOAD_INCOMPLETE');
      if (head.size !== input.fileSize) {
        throw ApplicationFailure.nonRetryable(`uploaded ${head.size} bytes, declared ${input.fileSize}`, 'SIZE_MISMATCH');
      }
      if (head.contentType && head.contentType !== input.mimeType) {
        throw ApplicationFailure.nonRetryable(`stored as ${head.contentType}, declared ${input.mimeType}`, 'CONTENT_MISMATCH');
      }
      const pin = { ifMatch: head.etag };
      const detected = detectMimeType(await pinnedToVerified(() => storage.readHead(buckets.incoming, input.storageKey, MAGIC_BYTES_NEEDED, pin)));
      if (!matchesDeclaredType(input.mimeType, detected)) {
        throw ApplicationFailure.nonRetryable(`content is ${detected ?? 'of an unknown type'}, declared ${input.mimeType}`, 'CONTENT_MISMATCH');
      }
      // Every later read and the promotion are pinned to these bytes (pinnedToVerified).
      return { detectedMimeType: detected!, etag: head.etag };
    },

    /**
     * Copies the scanned original to the media bucket (only the bytes verified: `etag`, see
     * pinnedToVerified), then removes it from incoming. With
     * `download`, the copy is stored as `Content-Disposition: attachment` so that no origin
     * serving it (CDN included) shows it inline (documents may carry JavaScript). With `scrub`
     * (images), what is published is the original without its location and descriptions
     * (MetadataScrubber): same pixels, orientation and colour profile; a file that has none is
     * copied as it is.
     */
    async promoteOriginal(input: { mediaId: string; storageKey: string; download?: { contentType: string }; scrub?: { mimeType: string }; etag?: string }): Promise<void> {
      if (!(await storage.head(buckets.media, input.storageKey))) {
        if (input.scrub) {
          // Never published unscrubbed: a worker without a scrubber fails (and retries) here.
          if (!scrubber) throw new Error('no metadata scrubber configured on this worker: image originals cannot be published');
          const uploaded = await pinnedToVerified(() => storage.getBuffer(buckets.incoming, input.storageKey, { ifMatch: input.etag }));
          // The end processing restored (a JPEG's end marker, a GIF's trailer) is published too.
          const original = await withWholeEnding(uploaded);
          const dir = await makeWorkDir('scrub', input.mediaId);
          const published = await scrubOrReject(scrubber, original, input.scrub.mimeType, dir).finally(() => rm(dir, { recursive: true, force: true }));
          if (published === uploaded) {
            await pinnedToVerified(() => storage.copy(buckets.incoming, input.storageKey, buckets.media, input.storageKey, undefined, { ifMatch: input.etag }));
          } else {
            await storage.put(buckets.media, input.storageKey, published, input.scrub.mimeType);
          }
        } else {
          const replace = input.download ? { contentType: input.download.contentType, contentDisposition: 'attachment' } : undefined;
          await pinnedToVerified(() => storage.copy(buckets.incoming, input.storageKey, buckets.media, input.storageKey, replace, { ifMatch: input.etag }));
        }
      }
      await storage.delete(buckets.incoming, input.storageKey);
    },

    /**
     * Leaves nothing behind: aborts the multipart upload, deletes the original from both
     * buckets and everything derived from it. Safe to run any number of times.
     */
    async compensateUpload(input: StoredMedia): Promise<{ derivedDeleted: number }> {
      const derivedDeleted = await removeEverythingStored({ storage, media, buckets }, input);
      Context.current().log.info('compensated upload', { mediaId: input.mediaId, derivedDeleted });
      return { derivedDeleted };
    },
  };
}

export type LightActivities = ReturnType<typeof createActivities> &
  ReturnType<typeof createScanActivities> &
  ReturnType<typeof createImageActivities> &
  ReturnType<typeof createDocumentActivities> &
  ReturnType<typeof createLifecycleActivities> &
  ReturnType<typeof createWebhookActivities>['activities'];
export type VideoActivities = ReturnType<typeof createVideoActivities>;
/** Everything the workflows call, on whichever task queue it runs. */
export type Activities = LightActivities & VideoActivities;
