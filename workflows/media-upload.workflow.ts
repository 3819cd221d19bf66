import {
  ActivityCancellationType,
  type ActivityOptions,
  ApplicationFailure,
  CancellationScope,
  condition,
  defineQuery,
  defineSignal,
  isCancellation,
  log,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import type { Activities } from '../activities';
import { MEDIA_TYPE_RULES, type MediaStatus, type MediaType } from '../services/shared/media-types';

/** Workflow id of the one workflow per media file. */
export const mediaWorkflowId = (mediaId: string) => `media-upload/${mediaId}`;

export interface ConfirmedPart {
  partNumber: number;
  etag: string;
}

export interface UploadConfirmation {
  /** Multipart only: the parts to assemble, as S3 listed them at confirmation. */
  parts?: ConfirmedPart[];
  /** `client` when sent through `complete`, `storage` when found at the deadline. */
  source: 'client' | 'storage';
}

export interface MediaUploadInput {
  mediaId: string;
  userId: string;
  mediaType: MediaType;
  mimeType: string;
  fileSize: number;
  storageKey: string;
  /** S3 multipart upload id; absent for a single PUT. */
  uploadId?: string;
  partCount?: number;
  /** Epoch ms after which, without confirmation, the workflow looks at storage once and gives up. */
  confirmDeadline: number;
  /** Task queue of the video workers (transcoding scales on its own). */
  videoTaskQueue: string;
  /** Task queue of document analysis (bounded concurrency per worker); absent → this workflow's queue. */
  documentTaskQueue?: string;
  /** The uploader's tenant (issue 17); absent in workflows started before tenants (tenant `default`). */
  tenantId?: string;
  /** The project of the upload; absent when it is the user's own. */
  projectId?: string;
}

export interface MediaUploadResult {
  status: MediaStatus;
  failureReason?: string;
}

export interface MediaWorkflowState {
  status: MediaStatus;
  failureReason?: string;
  confirmed: boolean;
}

export const uploadConfirmedSignal = defineSignal<[UploadConfirmation]>('uploadConfirmed');
export const statusQuery = defineQuery<MediaWorkflowState>('status');

/** Custom search attributes (Keyword), registered on the Temporal namespace. */
export const MediaStatusKey = defineSearchAttributeKey('MediaStatus', SearchAttributeType.KEYWORD);
export const MediaTypeKey = defineSearchAttributeKey('MediaType', SearchAttributeType.KEYWORD);
export const MediaOwnerKey = defineSearchAttributeKey('MediaOwner', SearchAttributeType.KEYWORD);
/** The uploader's tenant: operators filter stuck uploads per tenant (Web UI, `npm run ops stuck --tenant`). */
export const MediaTenantKey = defineSearchAttributeKey('MediaTenant', SearchAttributeType.KEYWORD);

/** `patched()` id: a run whose deadline has passed when it first waits starts no timer. */
const NO_TIMER_PAST_DEADLINE_PATCH = 'no-timer-past-deadline';

/** ApplicationFailure types that mean the content itself is unacceptable → REJECTED. */
export const REJECTION_TYPES = ['CONTENT_MISMATCH', 'SIZE_MISMATCH', 'MALWARE', 'UNDECODABLE_MEDIA', 'NO_VIDEO_STREAM', 'UPLOAD_INCOMPLETE', 'TOO_LARGE_TO_SCAN', 'UPLOAD_CHANGED', 'PRIVATE_METADATA_NOT_REMOVABLE', 'CHECKSUM_MISMATCH'] as const;

// S3, database and metadata calls: seconds each (a worker killed mid-call is retried after
// 30 s at the latest); transient faults (S3 5xx, network, DB
// restarts) retry with backoff for up to 10 minutes so an outage is ridden out, not failed.
const storageActivity: ActivityOptions = {
  startToCloseTimeout: '30 seconds',
  scheduleToCloseTimeout: '10 minutes',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', nonRetryableErrorTypes: [...REJECTION_TYPES] },
};
// Compensation must finish whatever the outage: it keeps retrying far longer.
const compensationActivity: ActivityOptions = {
  startToCloseTimeout: '2 minutes',
  scheduleToCloseTimeout: '1 day',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '5 minutes' },
};

// clamd scans at ~180 MB/s: a 1 GB video takes seconds, a slow scanner minutes. Both the scan
// and the thumbnails heartbeat, so a dead worker is noticed after 15 s, not at the timeout.
const scanActivity: ActivityOptions = { ...storageActivity, startToCloseTimeout: '15 minutes', heartbeatTimeout: '15 seconds', scheduleToCloseTimeout: '1 hour' };
// Thumbnails of an image ≤ 25 MiB: well under a minute even on a busy pod. Eight attempts
// (~4 minutes of backoff) ride out an S3 or database blip, while a fault that repeats
// identically (a bug, data the database refuses) ends FAILED in minutes, not half an hour.
const imageActivity: ActivityOptions = {
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '15 seconds',
  scheduleToCloseTimeout: '30 minutes',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 8, nonRetryableErrorTypes: [...REJECTION_TYPES] },
};
// A document's analysis is bounded by DOCUMENT_ANALYSIS_TIMEOUT_SECONDS (≤ 240 s) in a child
// process; download, thumbnails and upload of a ≤ 100 MiB PDF fit in the rest. It heartbeats
// as bytes arrive and every 200 ms of analysis, and a third failed attempt is a failure, not
// a loop. Waiting for a document slot (DOCUMENT_MAX_CONCURRENT_ACTIVITIES) counts against
// schedule-to-close only: hours, so a backlog waits instead of failing.
const documentActivity: ActivityOptions = {
  ...storageActivity,
  startToCloseTimeout: '6 minutes',
  heartbeatTimeout: '30 seconds',
  scheduleToCloseTimeout: '6 hours',
  retry: { ...storageActivity.retry, maximumAttempts: 3 },
};
// A long transcode heartbeats its progress; thirty silent seconds mean the worker died and
// another one takes over (the activity starts clean). Five attempts (75 s of backoff) ride out
// a lost worker or a short S3 outage; bad content fails at once (non-retryable), and a failure
// that repeats identically ends the upload after the fifth attempt.
const transcodeActivity: ActivityOptions = {
  startToCloseTimeout: '6 hours',
  scheduleToCloseTimeout: '12 hours',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '5 seconds', backoffCoefficient: 2, maximumInterval: '2 minutes', maximumAttempts: 5, nonRetryableErrorTypes: [...REJECTION_TYPES] },
};

// The first rendition is a stream copy (seconds) or one low rung at a fast preset (a fraction
// of the clip's duration): the same retries as the ladder, a much shorter time limit.
const firstRenditionActivity: ActivityOptions = { ...transcodeActivity, startToCloseTimeout: '1 hour', scheduleToCloseTimeout: '4 hours' };

/**
 * Options for the steps that write to storage after the upload (assemble, thumbnails,
 * transcode, promote): once cancelled, the workflow waits until the step has stopped (the long
 * ones notice through their heartbeats), so compensation's sweep runs after their last write.
 * Histories that were cancelled before this existed replay without waiting.
 */
function waitWhenCancelled(): ActivityOptions {
  return patched('wait-for-cancelled-writers') ? { cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED } : {};
}

// Per-call options below are merged over the proxy's (deepMerge), so calls name only what differs.
const steps = proxyActivities<Activities>(storageActivity);
// Read-model writes are one small UPDATE: a local activity runs them in the worker without a
// round trip through the server's task queue, which halves the server's work per upload.
const readModel = proxyLocalActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  localRetryThreshold: '10 seconds',
  retry: { initialInterval: '500 milliseconds', backoffCoefficient: 2, maximumInterval: '30 seconds' },
});
const cleanup = proxyActivities<Activities>(compensationActivity);
// Quick storage checks (HEAD + magic bytes; an image's promotion to the media bucket) as local
// activities: they run inside the workflow task that follows the status change, which saves a
// workflow task, three history events and an activity action per step (issue 16). Same
// timeouts and retries as `steps`; after 10 s of retrying, the SDK waits on a timer instead.
const quickSteps = proxyLocalActivities<Activities>({
  startToCloseTimeout: storageActivity.startToCloseTimeout,
  scheduleToCloseTimeout: storageActivity.scheduleToCloseTimeout,
  localRetryThreshold: '10 seconds',
  retry: storageActivity.retry,
});

/**
 * One upload, end to end: wait for the client's confirmation (or find the bytes at the
 * deadline), verify, [scan, process], promote to the media bucket. Every failure path,
 * cancellation included, compensates so nothing is left behind in storage.
 */
export async function MediaUploadWorkflow(input: MediaUploadInput): Promise<MediaUploadResult> {
  const state: MediaWorkflowState = { status: 'AWAITING_UPLOAD', confirmed: false };
  let confirmation: UploadConfirmation | undefined;

  setHandler(uploadConfirmedSignal, (c) => {
    // The first confirmation wins; a second `complete` is harmless.
    confirmation ??= c;
  });
  setHandler(statusQuery, () => ({ ...state, confirmed: !!confirmation }));

  async function moveTo(status: MediaStatus, details: string, failureReason?: string): Promise<void> {
    state.status = status;
    state.failureReason = failureReason;
    upsertSearchAttributes([{ key: MediaStatusKey, value: status }]);
    setCurrentDetails(`**${status}** — ${details}`);
    await readModel.recordStatus.executeWithOptions({ summary: `status → ${status}` }, [
      { mediaId: input.mediaId, status, failureReason },
    ]);
  }

  setCurrentDetails(`**AWAITING_UPLOAD** — waiting for the client to upload \`${input.storageKey}\` and call complete`);
  try {
    // Started delayed to its deadline (README: the upload flow), a session never confirmed runs
    // its first task at the deadline with nothing left to wait for: `condition(…, 0)` would still
    // start a 1 ms timer and cost a workflow task more. Runs from before this patch replay it.
    const remaining = input.confirmDeadline - Date.now();
    const confirmedInTime =
      remaining <= 0 && patched(NO_TIMER_PAST_DEADLINE_PATCH) ? confirmation !== undefined : await condition(() => confirmation !== undefined, Math.max(0, remaining));
    if (!confirmedInTime) {
      // A client that crashed after uploading still gets its media.
      const found = await steps.inspectUpload.executeWithOptions({ summary: 'deadline: look for the upload' }, [
        { mediaId: input.mediaId, storageKey: input.storageKey, uploadId: input.uploadId, fileSize: input.fileSize, partCount: input.partCount },
      ]);
      if (!found.complete) {
        await compensate(input, 'confirmation deadline passed');
        await moveTo('EXPIRED', 'no upload before the deadline; storage cleaned up', 'UPLOAD_EXPIRED');
        return { status: 'EXPIRED', failureReason: 'UPLOAD_EXPIRED' };
      }
      confirmation = { source: 'storage', parts: found.parts };
      log.info('upload found in storage at the deadline', { mediaId: input.mediaId });
    }

    await moveTo('VERIFYING', 'checking size, type and magic bytes');
    if (input.uploadId) {
      await steps.completeMultipartUpload.executeWithOptions({ ...waitWhenCancelled(), summary: 'assemble multipart upload' }, [
        { storageKey: input.storageKey, uploadId: input.uploadId, parts: confirmation?.parts, fileSize: input.fileSize },
      ]);
    }
    // Histories recorded before the local-activity steps replay their scheduled activities.
    const quick = patched('quick-steps-local') ? quickSteps : steps;
    const verified = await quick.verifyUpload.executeWithOptions({ summary: 'HEAD + magic bytes' }, [
      { storageKey: input.storageKey, fileSize: input.fileSize, mimeType: input.mimeType },
    ]);

    await moveTo('SCANNING', 'clamd INSTREAM');
    // Scan, processing and promotion read the bytes verification saw (its ETag), none other.
    const processing = { mediaId: input.mediaId, storageKey: input.storageKey, mediaType: input.mediaType, fileSize: input.fileSize, etag: verified?.etag };
    await steps.scanOriginal.executeWithOptions({ ...scanActivity, summary: 'virus scan (clamd)' }, [processing]);

    const kind = MEDIA_TYPE_RULES[input.mediaType].kind;
    if (kind === 'image') {
      await moveTo('PROCESSING', 'thumbnails and metadata (sharp)');
      await steps.processImage.executeWithOptions({ ...imageActivity, ...waitWhenCancelled(), summary: 'thumbnails (sharp)' }, [processing]);
    } else if (kind === 'document') {
      await moveTo('PROCESSING', 'page count, page-1 preview and text (MuPDF)');
      await steps.processDocument.executeWithOptions({ ...documentActivity, ...waitWhenCancelled(), taskQueue: input.documentTaskQueue, summary: 'document preview + text (MuPDF)' }, [processing]);
    } else {
      await moveTo('PROCESSING', `poster and HLS ladder on ${input.videoTaskQueue}`);
      // Workflows started before this step existed replay their recorded commands: ladder only.
      if (patched('first-rendition')) {
        const first = await steps.publishFirstRendition.executeWithOptions(
          { ...firstRenditionActivity, ...waitWhenCancelled(), taskQueue: input.videoTaskQueue, summary: 'first playable rendition (stream copy or fast rung)' },
          [processing],
        );
        setCurrentDetails(`**PROCESSING** — playable (${first.path}); HLS ladder on ${input.videoTaskQueue}`);
        await readModel.recordPlayable.executeWithOptions({ summary: 'playable: SSE + webhook' }, [{ mediaId: input.mediaId }]);
      }
      await steps.transcodeVideo.executeWithOptions({ ...transcodeActivity, ...waitWhenCancelled(), taskQueue: input.videoTaskQueue, summary: 'poster + HLS (ffmpeg)' }, [processing]);
    }
    // A video's or a document's copy can take minutes: longer than a workflow task may run. An
    // image (at most 25 MiB) is read, scrubbed by ExifTool and written back within seconds: the
    // local activity's 30 s bound holds, and the SDK heartbeats the workflow task meanwhile.
    const promotion = kind === 'image' ? 'publish incoming → media (location removed)' : 'copy incoming → media';
    await (kind === 'image' ? quick : steps).promoteOriginal.executeWithOptions({ ...waitWhenCancelled(), summary: promotion }, [
      {
        mediaId: input.mediaId,
        storageKey: input.storageKey,
        download: kind === 'document' ? { contentType: input.mimeType } : undefined,
        // The public copy of an image carries no location or description (README: image processing).
        scrub: kind === 'image' ? { mimeType: input.mimeType } : undefined,
        etag: processing.etag,
      },
    ]);
    await moveTo('READY', 'published');
    return { status: 'READY' };
  } catch (err) {
    // A cancelled workflow ends CANCELLED even when the step it waited for ended otherwise
    // (timed out on a dead worker, failed while stopping).
    const cancelled = isCancellation(err) || CancellationScope.current().consideredCancelled;
    const failure = cancelled ? undefined : applicationFailureOf(err);
    const rejected = failure?.type !== undefined && (REJECTION_TYPES as readonly string[]).includes(failure.type ?? '');
    const status: MediaStatus = cancelled ? 'CANCELLED' : rejected ? 'REJECTED' : 'FAILED';
    const reason = cancelled ? 'CANCELLED_BY_USER' : failure ? `${failure.type ?? 'ERROR'}: ${failure.message}` : String(err);
    // Cleanup runs even when the workflow itself was cancelled.
    await CancellationScope.nonCancellable(async () => {
      await compensate(input, reason);
      await moveTo(status, `compensated after ${cancelled ? 'cancellation' : 'failure'}`, reason);
    });
    throw err;
  }
}

async function compensate(input: MediaUploadInput, reason: string): Promise<void> {
  await cleanup.compensateUpload.executeWithOptions({ summary: `compensate: ${reason}` }, [
    { mediaId: input.mediaId, storageKey: input.storageKey, uploadId: input.uploadId },
  ]);
}

/** The innermost ApplicationFailure of an activity or child failure chain. */
function applicationFailureOf(err: unknown): ApplicationFailure | undefined {
  let current: unknown = err;
  while (current instanceof Error) {
    if (current instanceof ApplicationFailure) return current;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}
