import { createHash, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { S3ServiceException } from '@aws-sdk/client-s3';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError, WorkflowIdReusePolicy } from '@temporalio/common';
import type { Config } from '../shared/config';
import { QUERY_READ_TIMEOUT } from '../shared/db/data-source';
import type { BatchRow, MediaRow } from '../shared/db/entities';
import type { MediaRepository, NewMedia, QuotaRefusal, Scope } from '../shared/db/media-repository';
import type { Metrics } from '../shared/metrics';
import { MEDIA_TYPE_RULES, originalKey } from '../shared/media-types';
import type { Storage } from '../shared/storage';
import { originalKeyPrefix } from '../shared/storage-keys';
import {
  MediaOwnerKey,
  MediaTenantKey,
  MediaStatusKey,
  MediaTypeKey,
  MediaUploadWorkflow,
  mediaWorkflowId,
  uploadConfirmedSignal,
  type MediaUploadInput,
  type UploadConfirmation,
} from '../../workflows/media-upload.workflow';
import pLimit from 'p-limit';
import { ApiError, dependencyError, isDependencyFault } from './errors';
import type { UploadSessionRequest } from './schemas';

/** Part URLs handed out with the session; the rest come from POST /media/{id}/parts. */
export const INITIAL_PART_URLS = 100;
/** A session not created this long after it came in (admission wait included) answers 503. */
export const START_DEADLINE_MS = 5000;
/**
 * How long past a session's confirmation deadline `complete` still confirms with
 * Signal-With-Start. The delay was fixed by the pod that started the session: this margin covers
 * that pod's clock running behind this one, start latency, and CONFIRM_GRACE_SECONDS lowered
 * since. It stays far inside Temporal's namespace retention (a day or more), so the start half
 * cannot start a run for an upload whose closed workflow Temporal removed.
 */
const SIGNAL_WITH_START_MARGIN_MS = 3_600_000;

/**
 * One call to Temporal (a signal, a cancel, a terminate, a deletion start) bounded like a
 * session's workflow start: a paused or unreachable Temporal fails it with DEADLINE_EXCEEDED
 * after START_DEADLINE_MS (503 DEPENDENCY_UNAVAILABLE with Retry-After) instead of holding the
 * client for the whole outage.
 */
export function withinStartDeadline<T>(temporal: Client, call: () => Promise<T>): Promise<T> {
  return temporal.connection.withDeadline(Date.now() + START_DEADLINE_MS, call);
}
/**
 * Waits before each sweep of a key whose CreateMultipartUpload got no answer (about 9 min in
 * all); uploads still open after the last one are left to the orphan sweep.
 */
const ABANDONED_UPLOAD_SWEEP_DELAYS_MS = [1000, 2000, 5000, 10_000, 30_000, 60_000, 120_000, 300_000];

export type UploadInstructions =
  | { method: 'PUT'; url: string; headers: Record<string, string> }
  | { method: 'MULTIPART'; uploadId: string; partSize: number; partCount: number; parts: PartUrl[] };

export interface PartUrl {
  partNumber: number;
  url: string;
  headers: Record<string, string>;
}

export interface UploadSession {
  mediaId: string;
  status: MediaRow['status'];
  storageKey: string;
  expiresAt: string;
  upload: UploadInstructions;
}

// The plan is shared with the client library (Uppy cuts parts exactly as the API expects them).
export { planUpload, type UploadPlan } from '../shared/upload-plan';
import { planUpload } from '../shared/upload-plan';

export function partLength(row: Pick<MediaRow, 'fileSize' | 'partSize' | 'partCount'>, partNumber: number): number {
  const partSize = row.partSize!;
  return partNumber < row.partCount! ? partSize : row.fileSize - partSize * (row.partCount! - 1);
}

export interface UploadServiceDeps {
  config: Config;
  storage: Storage;
  media: MediaRepository;
  temporal: Client;
  /** Records presign latency (`media_presign_duration_seconds`). */
  metrics?: Pick<Metrics, 'presignDuration'>;
  now?: () => Date;
}

/** A session ready to start: its row (not written yet) and its workflow's input. */
interface PreparedSession {
  row: NewMedia;
  input: MediaUploadInput;
}

/** One item of a batch: the session, or the error that item alone answered with. */
export type BatchItem =
  ({ index: number } & UploadSession) | { index: number; error: { code: string; message: string; details?: Record<string, unknown> } };

/**
 * Creates upload sessions: the S3 upload, the workflow and the media row, all or nothing.
 *
 * Order: the workflow starts first, outside any transaction, and the row is written after it
 * in one autocommit INSERT. No pooled connection ever waits on Temporal, so a slow Temporal
 * slows session creation only, never reads. "No half-created session" still holds:
 *  - the workflow fails to start → no row was written; the multipart upload is aborted here;
 *  - the INSERT fails → the workflow is terminated and the multipart upload aborted here;
 *    unless its outcome is unknown (timed out, connection lost: it may still commit), then
 *    both are kept and the workflow's deadline ends the session, with or without a row;
 *  - the process dies between the two → the workflow has no row and the client never got the
 *    URLs; at its confirmation deadline it finds nothing, compensates (aborts the multipart
 *    upload) and ends EXPIRED without a row to update, and the orphan sweep removes any
 *    multipart upload no live row owns. A user never sees such a session.
 * The other order (row first, hidden until the workflow runs) would cost a third round trip
 * (the UPDATE that makes it visible) on every session, and a sweep for hidden rows.
 */
export class UploadService {
  /** Workflow starts in flight in this process: TEMPORAL_START_CONCURRENCY. */
  private readonly startSlots: pLimit.Limit;
  /** Session statements in flight in this process: half of DB_POOL_SIZE. */
  private readonly dbSlots: pLimit.Limit;

  constructor(private readonly deps: UploadServiceDeps) {
    this.startSlots = pLimit(deps.config.TEMPORAL_START_CONCURRENCY);
    this.dbSlots = pLimit(Math.max(1, Math.floor(deps.config.DB_POOL_SIZE / 2)));
  }

  /**
   * Domain limits of SPEC.md §4: type allowed for the media type, size within its maximum, and
   * within what the virus scanner takes (CLAMD_STREAM_MAX_BYTES) unless SCAN_OVERSIZE_ACTION=skip.
   */
  validate(req: UploadSessionRequest): void {
    const rule = MEDIA_TYPE_RULES[req.mediaType];
    if (!rule.allowedMimeTypes.includes(req.fileType)) {
      throw new ApiError('UNSUPPORTED_MEDIA_TYPE', `${req.fileType} is not accepted for ${req.mediaType}`, {
        allowed: rule.allowedMimeTypes,
      });
    }
    if (req.fileSize > rule.maxBytes) {
      throw new ApiError('FILE_TOO_LARGE', `${req.mediaType} files may be at most ${rule.maxBytes} bytes`, { maxBytes: rule.maxBytes });
    }
    // The workflow would reject it after the whole upload (TOO_LARGE_TO_SCAN): say so before.
    const { CLAMD_STREAM_MAX_BYTES: scanMax, SCAN_OVERSIZE_ACTION: oversize } = this.deps.config;
    if (oversize === 'reject' && req.fileSize > scanMax) {
      throw new ApiError('FILE_TOO_LARGE', `files larger than ${scanMax} bytes cannot be virus-scanned by this installation and are not accepted`, { maxBytes: scanMax, limit: 'scan' });
    }
  }

  /** Domain limits plus the project: one the token grants (403 PROJECT_FORBIDDEN otherwise). */
  private check(scope: Scope, req: UploadSessionRequest): void {
    this.validate(req);
    if (req.projectId !== undefined && !scope.projects.includes(req.projectId)) {
      throw new ApiError('PROJECT_FORBIDDEN', 'your token does not grant this project', { projectId: req.projectId });
    }
  }

  async create(scope: Scope, req: UploadSessionRequest, options: { idempotencyKey?: string } = {}): Promise<UploadSession> {
    this.check(scope, req);
    const { media } = this.deps;
    const deadline = Date.now() + START_DEADLINE_MS;
    // Independent reads: one round trip's wait instead of three.
    const [existing, used] = await this.withDb(deadline, () =>
      Promise.all([options.idempotencyKey ? media.findByIdempotencyKey(scope, options.idempotencyKey) : null, this.storageUsed(scope)]),
    );
    if (existing) return this.replay(existing, req);
    this.checkQuota(used, req.fileSize);
    const prepared = await this.prepare(scope, req, { idempotencyKey: options.idempotencyKey });
    await this.start(prepared, deadline);
    try {
      // No deadline: the workflow runs already, recording it is worth the wait for a slot.
      await this.withDb(undefined, () => this.record([prepared.row])).then((refused) => {
        const over = refused.get(prepared.row.id);
        if (over) throw quotaExceeded(over, req.fileSize);
      });
    } catch (err) {
      if (!outcomeUnknown(err)) await this.discard(prepared, { started: true });
      // Lost to a request with the same key: its row is the answer (a replay). Near the quota
      // the winner's row, counted in the usage, refuses this one before the unique index can.
      const lost = isUniqueViolation(err) || (err instanceof ApiError && err.code === 'QUOTA_EXCEEDED');
      const winner = options.idempotencyKey && lost ? await media.findByIdempotencyKey(scope, options.idempotencyKey) : null;
      if (winner) return this.replay(winner, req);
      throw err;
    }
    return this.describe(asRow(prepared.row));
  }

  /**
   * Up to 100 sessions at once: every item is prepared and started concurrently (at Temporal's
   * pace: the same start slots as single sessions), then the batch and all its rows are
   * written in one short transaction. Items fail on their own (validation, quota, a start that
   * failed); an error that is not the item's own (the database) fails the whole batch, and the
   * workflows already started are terminated.
   */
  async createBatch(scope: Scope, requests: Array<UploadSessionRequest | ApiError>): Promise<{ batchId: string; items: BatchItem[] }> {
    const batchId = randomUUID();
    const deadline = Date.now() + START_DEADLINE_MS;
    const used = await this.withDb(deadline, () => this.storageUsed(scope));
    const settled = await Promise.allSettled(
      requests.map(async (req) => {
        if (req instanceof ApiError) throw req;
        this.check(scope, req);
        // Counted in request order, before any await: one quota query for the whole batch.
        this.checkQuota(used, req.fileSize);
        used.user += req.fileSize;
        used.tenant += req.fileSize;
        const session = await this.prepare(scope, req, { batchId });
        await this.start(session, deadline);
        return session;
      }),
    );
    const started = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const failures = settled.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
    // A bug fails the whole batch (500); so does a batch no item of which could start because
    // a dependency is down (503 with Retry-After: the client retries the batch as a whole).
    const fatal =
      failures.find((err) => !(err instanceof ApiError) && !isDependencyFault(err)) ??
      (started.length ? undefined : failures.find(isDependencyFault));
    let refused: Map<string, QuotaRefusal>;
    try {
      if (fatal) throw fatal;
      refused = await this.withDb(undefined, () =>
        this.record(
          started.map((s) => s.row),
          { id: batchId, userId: scope.userId, tenantId: scope.tenantId, itemCount: requests.length },
        ),
      );
    } catch (err) {
      if (!outcomeUnknown(err)) await Promise.all(started.map((s) => this.discard(s, { started: true })));
      throw err;
    }
    // Items other sessions of the same uploader outran to the quota meanwhile: not recorded.
    await Promise.all(started.filter((s) => refused.has(s.row.id)).map((s) => this.discard(s, { started: true })));
    const items = await Promise.all(
      settled.map(async (r, index): Promise<BatchItem> => {
        const over = r.status === 'fulfilled' ? refused.get(r.value.row.id) : undefined;
        if (r.status === 'fulfilled' && !over) return { index, ...(await this.describe(asRow(r.value.row))) };
        const reason = over && r.status === 'fulfilled' ? quotaExceeded(over, r.value.row.fileSize) : r.status === 'rejected' ? r.reason : undefined;
        const err = reason instanceof ApiError ? reason : dependencyError();
        return { index, error: { code: err.code, message: err.message, ...(err.details ? { details: err.details } : {}) } };
      }),
    );
    return { batchId, items };
  }

  /** Bytes the user and their tenant store (0 where the quota is off: no query). */
  private async storageUsed(scope: Scope): Promise<{ user: number; tenant: number }> {
    const { config, media } = this.deps;
    const [user, tenant] = await Promise.all([
      config.USER_STORAGE_QUOTA_BYTES > 0 ? media.storageUsed({ tenantId: scope.tenantId, userId: scope.userId }) : 0,
      config.TENANT_STORAGE_QUOTA_BYTES > 0 ? media.storageUsed({ tenantId: scope.tenantId }) : 0,
    ]);
    return { user, tenant };
  }

  /**
   * The early check, before anything is started: refuses what the usage read at the request's
   * start already rules out. Sessions at the same instant all pass it; record() holds the line.
   */
  private checkQuota(used: { user: number; tenant: number }, fileSize: number): void {
    const { USER_STORAGE_QUOTA_BYTES: userQuota, TENANT_STORAGE_QUOTA_BYTES: tenantQuota } = this.deps.config;
    if (userQuota > 0 && used.user + fileSize > userQuota) throw quotaExceeded({ scope: 'user', quotaBytes: userQuota, usedBytes: used.user }, fileSize);
    if (tenantQuota > 0 && used.tenant + fileSize > tenantQuota) throw quotaExceeded({ scope: 'tenant', quotaBytes: tenantQuota, usedBytes: used.tenant }, fileSize);
  }

  /**
   * Writes the session rows (and the batch row): within the quotas, under the uploader's lock
   * (insertWithinQuota) when a quota is on; the ids it left out, over quota.
   */
  private async record(rows: NewMedia[], batch?: Omit<BatchRow, 'createdAt'>): Promise<Map<string, QuotaRefusal>> {
    const { config, media } = this.deps;
    const limits = { userBytes: config.USER_STORAGE_QUOTA_BYTES, tenantBytes: config.TENANT_STORAGE_QUOTA_BYTES };
    if (limits.userBytes > 0 || limits.tenantBytes > 0) return media.insertWithinQuota(rows, limits, batch);
    if (batch) await media.insertBatch(batch, rows);
    else await media.insert(rows[0]!);
    return new Map();
  }

  /** Keys, deadlines and (above the threshold) the S3 multipart upload of a new session. */
  private async prepare(
    scope: Scope,
    req: UploadSessionRequest,
    options: { idempotencyKey?: string; batchId?: string },
  ): Promise<PreparedSession> {
    const { config } = this.deps;
    const now = this.now();
    const mediaId = randomUUID();
    const { userId, tenantId } = scope;
    const projectId = req.projectId ?? null;
    const storageKey = originalKey(req.mediaType, originalKeyPrefix({ tenantId, userId, projectId }), mediaId, req.fileType, now);
    const ttl = req.mediaType === 'PROFILE_IMAGE' ? config.PROFILE_IMAGE_URL_TTL_SECONDS : config.UPLOAD_URL_TTL_SECONDS;
    const expiresAt = new Date(now.getTime() + ttl * 1000);
    const plan = planUpload(req.fileSize, config.MULTIPART_THRESHOLD_BYTES, config.PART_SIZE_BYTES);
    const uploadId = plan.multipart ? await this.createMultipartUpload(storageKey, req.fileType) : null;
    const row: NewMedia = {
      id: mediaId,
      userId,
      tenantId,
      projectId,
      batchId: options.batchId ?? null,
      mediaType: req.mediaType,
      fileName: req.fileName,
      mimeType: req.fileType,
      fileSize: req.fileSize,
      checksumSha256: req.checksumSha256 ?? null,
      status: 'AWAITING_UPLOAD',
      storageKey,
      uploadId,
      partSize: plan.multipart ? plan.partSize : null,
      partCount: plan.multipart ? plan.partCount : null,
      idempotencyKey: options.idempotencyKey ?? null,
      workflowId: mediaWorkflowId(mediaId),
      expiresAt,
      createdAt: now,
    };
    return { row, input: uploadInput(config, row) };
  }

  /**
   * The S3 multipart upload of a new session. When S3 gave no answer (a timeout, a dropped
   * connection), it may still carry the request out once it answers again (a stopped server
   * reads it when it resumes), creating an upload no session will ever own: the key is swept
   * in the background until S3 has answered twice, so that none stays open without a row.
   */
  private async createMultipartUpload(storageKey: string, fileType: string): Promise<string> {
    const { config, storage } = this.deps;
    try {
      return await storage.createMultipartUpload(config.S3_INCOMING_BUCKET, storageKey, fileType);
    } catch (err) {
      if (!(err instanceof S3ServiceException)) this.sweepAbandonedUploads(storageKey);
      throw err;
    }
  }

  /** Best effort, holding nothing: the orphan sweep removes whatever this misses. */
  private sweepAbandonedUploads(storageKey: string): void {
    const { config, storage } = this.deps;
    void (async () => {
      let answered = 0;
      for (const delay of ABANDONED_UPLOAD_SWEEP_DELAYS_MS) {
        // Unreferenced: a stopping API does not wait for these.
        await sleep(delay, undefined, { ref: false });
        try {
          await storage.abortMultipartUploadsOf(config.S3_INCOMING_BUCKET, storageKey);
          // The first answer may come while S3 is still working through what it read on resuming.
          if (++answered === 2) return;
        } catch {
          // S3 still away: the next delay.
        }
      }
    })();
  }

  /**
   * Session bookkeeping in the database (quota and idempotency reads, the INSERT) takes at most
   * half of DB_POOL_SIZE connections at once; the rest wait here, holding nothing. So a burst
   * of sessions never queues more statements in the pool than that, ahead of reads. Past the
   * `deadline` (if any) a waiting statement answers OVERLOADED instead of running.
   */
  private withDb<T>(deadline: number | undefined, work: () => Promise<T>): Promise<T> {
    return this.dbSlots(() => {
      if (deadline !== undefined && Date.now() >= deadline) throw overloaded();
      return work();
    });
  }

  /**
   * Starts the session's workflow; by `deadline` (START_DEADLINE_MS after the request came in)
   * an unresponsive Temporal answers 503 instead of holding the client. On failure the S3
   * upload is aborted.
   */
  private async start({ row, input }: PreparedSession, deadline: number): Promise<void> {
    const { config, temporal } = this.deps;
    try {
      // At most TEMPORAL_START_CONCURRENCY starts in flight; the rest wait for a slot (and
      // answer OVERLOADED if none frees up by the deadline).
      await this.startSlots(() => {
        if (Date.now() >= deadline) throw overloaded();
        return temporal.connection.withDeadline(deadline, () => temporal.workflow.start(MediaUploadWorkflow, workflowStartOptions(config, { row, input }, this.now().getTime())));
      });
    } catch (err) {
      // A start that ran out of its deadline may still happen on the server. Such a workflow has
      // no row and nobody has its URLs: at its confirmation deadline it finds nothing,
      // compensates and ends EXPIRED, updating no row.
      await this.discard({ row, input }, { started: false });
      throw err;
    }
  }

  /**
   * Undoes a session that will not be recorded: terminates its workflow (if it started) and
   * aborts its multipart upload. Best effort: whatever fails here, the workflow's own deadline
   * and the orphan sweep clean up later.
   */
  private async discard({ row }: PreparedSession, options: { started: boolean }): Promise<void> {
    const { config, storage, temporal } = this.deps;
    await Promise.all([
      options.started
        ? withinStartDeadline(temporal, () => temporal.workflow.getHandle(row.workflowId).terminate('session not recorded')).catch(() => undefined)
        : undefined,
      row.uploadId
        ? storage.abortMultipartUpload(config.S3_INCOMING_BUCKET, row.storageKey, row.uploadId).catch(() => undefined)
        : undefined,
    ]);
  }

  /** The same key from the same user returns the same session, for the same request only. */
  private async replay(existing: MediaRow, req: UploadSessionRequest): Promise<UploadSession> {
    const same =
      existing.projectId === (req.projectId ?? null) &&
      existing.fileName === req.fileName && existing.mimeType === req.fileType && existing.fileSize === req.fileSize && existing.mediaType === req.mediaType;
    if (!same) throw new ApiError('IDEMPOTENCY_CONFLICT', 'this Idempotency-Key was used for a different request');
    return this.describe(existing);
  }

  /**
   * Sends the client's confirmation to the session's workflow with Signal-With-Start: the signal
   * ends the workflow's start delay (see `workflowStartOptions`), where a plain signal would wait
   * for the deadline. Until the deadline (plus SIGNAL_WITH_START_MARGIN_MS) the start half
   * starts nothing for a recorded session while Temporal keeps its workflow: running, it gets
   * the signal; closed, the id's REJECT_DUPLICATE policy refuses a second run. After that, a
   * plain signal. (A namespace whose retention is shorter than URL TTL + grace + the margin, or
   * a Temporal that lost its data, would get a new run, which works the upload at once.)
   * Throws ApiError INVALID_STATE when the workflow has closed or is gone; Temporal's errors
   * otherwise (the caller bounds the call with its deadline).
   */
  async confirm(row: MediaRow, confirmation: UploadConfirmation): Promise<void> {
    const { config, temporal } = this.deps;
    const input = uploadInput(config, row);
    const now = this.now();
    try {
      if (now.getTime() > input.confirmDeadline + SIGNAL_WITH_START_MARGIN_MS) {
        // Past the deadline no start delay is pending: a plain signal, which cannot start a run
        // for a workflow Temporal no longer keeps (retention) and answers not found instead.
        await temporal.workflow.getHandle(row.workflowId).signal(uploadConfirmedSignal, confirmation);
        return;
      }
      await temporal.workflow.signalWithStart(MediaUploadWorkflow, {
        // Without a delay: if Temporal lost the run (its data reset), the new one works at once.
        ...workflowStartOptions(config, { row, input }, now.getTime()),
        startDelay: undefined,
        signal: uploadConfirmedSignal,
        signalArgs: [confirmation],
      });
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError || err instanceof WorkflowNotFoundError) {
        throw new ApiError('INVALID_STATE', 'the upload is no longer in progress');
      }
      throw err;
    }
  }

  /** The service's clock (`deps.now`, injected by tests). */
  private now(): Date {
    return this.deps.now?.() ?? new Date();
  }

  /** Upload instructions for a session, presigned afresh (URLs are cheap, local HMACs). */
  async describe(row: MediaRow): Promise<UploadSession> {
    const { config, storage } = this.deps;
    const expiresIn = Math.max(1, Math.floor((row.expiresAt.getTime() - Date.now()) / 1000));
    let upload: UploadInstructions;
    if (row.uploadId) {
      const first = Array.from({ length: Math.min(row.partCount!, INITIAL_PART_URLS) }, (_, i) => i + 1);
      upload = {
        method: 'MULTIPART',
        uploadId: row.uploadId,
        partSize: row.partSize!,
        partCount: row.partCount!,
        parts: await this.partUrls(row, first, {}, expiresIn),
      };
    } else {
      const stopTimer = this.deps.metrics?.presignDuration.startTimer({ kind: 'put' });
      const signed = await storage.presignPut(config.S3_INCOMING_BUCKET, row.storageKey, {
        contentType: row.mimeType,
        contentLength: row.fileSize,
        checksumSha256: row.checksumSha256 ?? undefined,
        expiresIn,
      });
      stopTimer?.();
      upload = { method: 'PUT', url: signed.url, headers: signed.headers };
    }
    return { mediaId: row.id, status: row.status, storageKey: row.storageKey, expiresAt: row.expiresAt.toISOString(), upload };
  }

  /** Part URLs signed now, valid for the upload URL lifetime from now (re-signing on demand). */
  async partUrls(row: MediaRow, partNumbers: number[], checksums: Record<string, string>, expiresIn?: number): Promise<PartUrl[]> {
    const { config, storage } = this.deps;
    const ttl = expiresIn ?? (row.mediaType === 'PROFILE_IMAGE' ? config.PROFILE_IMAGE_URL_TTL_SECONDS : config.UPLOAD_URL_TTL_SECONDS);
    return Promise.all(
      partNumbers.map(async (partNumber) => {
        if (partNumber > row.partCount!) throw new ApiError('VALIDATION_FAILED', `part ${partNumber} is beyond the last part ${row.partCount}`);
        const stopTimer = this.deps.metrics?.presignDuration.startTimer({ kind: 'part' });
        const signed = await storage.presignPart(config.S3_INCOMING_BUCKET, row.storageKey, {
          uploadId: row.uploadId!,
          partNumber,
          contentLength: partLength(row, partNumber),
          checksumSha256: checksums[String(partNumber)],
          expiresIn: ttl,
        });
        stopTimer?.();
        return { partNumber, url: signed.url, headers: signed.headers };
      }),
    );
  }
}

/**
 * The input of a session's workflow, from its row: the deadline for the client's confirmation
 * is the URL's expiry plus CONFIRM_GRACE_SECONDS (epoch ms).
 */
export function uploadInput(
  config: Pick<Config, 'CONFIRM_GRACE_SECONDS' | 'TASK_QUEUE_VIDEO' | 'TASK_QUEUE_DOCUMENT'>,
  row: Pick<NewMedia, 'id' | 'userId' | 'tenantId' | 'projectId' | 'mediaType' | 'mimeType' | 'fileSize' | 'storageKey' | 'uploadId' | 'partCount' | 'expiresAt'>,
): MediaUploadInput {
  return {
    mediaId: row.id,
    userId: row.userId,
    mediaType: row.mediaType,
    mimeType: row.mimeType,
    fileSize: row.fileSize,
    storageKey: row.storageKey,
    uploadId: row.uploadId ?? undefined,
    partCount: row.partCount ?? undefined,
    confirmDeadline: row.expiresAt.getTime() + config.CONFIRM_GRACE_SECONDS * 1000,
    videoTaskQueue: config.TASK_QUEUE_VIDEO,
    documentTaskQueue: config.TASK_QUEUE_DOCUMENT,
    tenantId: row.tenantId,
    projectId: row.projectId ?? undefined,
  };
}

/**
 * How a session's workflow is started: on the light task queue, its id never reused, with the
 * search attributes and summary the Web UI and `npm run ops` list it by.
 *
 * `startDelay` until the confirmation deadline: Temporal records the workflow at once but
 * dispatches its first workflow task only when `complete` sends the confirmation with
 * Signal-With-Start (which ends the delay), when the workflow is cancelled, or at the deadline
 * (the workflow then looks for the upload in storage, as it did when its timer fired). A session
 * thus costs Temporal one write and no workflow task; the timer the first task used to start is
 * the delay itself. A plain signal would wait for the deadline (Temporal holds signals during a
 * start delay), so confirmations go through `UploadService.confirm`. UPLOAD_WORKFLOW_START_DELAY=false
 * starts without a delay (rolling upgrades).
 */
export function workflowStartOptions(
  config: Pick<Config, 'TASK_QUEUE_LIGHT' | 'UPLOAD_WORKFLOW_START_DELAY'>,
  { row, input }: { row: Pick<NewMedia, 'workflowId' | 'mediaType' | 'userId' | 'tenantId' | 'fileName' | 'fileSize'>; input: MediaUploadInput },
  now = Date.now(),
) {
  return {
    taskQueue: config.TASK_QUEUE_LIGHT,
    workflowId: row.workflowId,
    args: [input] as [MediaUploadInput],
    startDelay: config.UPLOAD_WORKFLOW_START_DELAY ? Math.max(0, input.confirmDeadline - now) : undefined,
    workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
    typedSearchAttributes: [
      { key: MediaStatusKey, value: 'AWAITING_UPLOAD' },
      { key: MediaTypeKey, value: row.mediaType },
      { key: MediaOwnerKey, value: row.userId },
      { key: MediaTenantKey, value: row.tenantId },
    ],
    staticSummary: `${row.mediaType} ${row.fileName} (${row.fileSize} bytes) for ${row.userId}`,
    // Inherited by every activity of the session: task queue fairness per uploader (servers with
    // matching.enableFairness, see devstack/temporal.ts; ignored elsewhere).
    priority: { fairnessKey: uploaderFairnessKey(row) },
  };
}

/**
 * Temporal fairness key of an uploader: fairness keys are at most 64 bytes and a `sub` may be
 * 255, so the tenant and user are hashed (SHA-256, 128 bits as hex), never written as they are.
 */
export function uploaderFairnessKey({ tenantId, userId }: { tenantId: string; userId: string }): string {
  return `uploader-${createHash('sha256').update(`${tenantId}\0${userId}`).digest('hex').slice(0, 32)}`;
}

/** 413 QUOTA_EXCEEDED: the user's (details without `scope`, as before tenants) or the tenant's quota. */
function quotaExceeded(over: QuotaRefusal, fileSize: number): ApiError {
  return over.scope === 'user'
    ? new ApiError('QUOTA_EXCEEDED', 'this upload would exceed your storage quota', { quotaBytes: over.quotaBytes, usedBytes: over.usedBytes, fileSize })
    : new ApiError('QUOTA_EXCEEDED', "this upload would exceed your tenant's storage quota", { scope: 'tenant', quotaBytes: over.quotaBytes, usedBytes: over.usedBytes, fileSize });
}

function overloaded(): ApiError {
  return new ApiError('OVERLOADED', 'too many upload sessions are being created; retry after the Retry-After seconds');
}

/** The row as a read would return it, without reading it back. */
function asRow(row: NewMedia): MediaRow {
  return { ...row, metadata: {}, failureReason: null, ownerType: null, ownerId: null, attachedAt: null, updatedAt: row.createdAt };
}

/**
 * An INSERT that timed out on the client (DB_QUERY_TIMEOUT_MS) or lost its connection may still
 * commit: it reached a server that was only slow or paused. Its session is then kept as it is,
 * not discarded: if the row lands, the workflow owns it (a retry with the same Idempotency-Key
 * finds the live session; unused, it ends EXPIRED at its deadline); if not, the workflow ends at
 * its deadline without a row and the orphan sweep removes its multipart upload. Discarding it
 * left rows of terminated workflows, AWAITING_UPLOAD for good.
 */
function outcomeUnknown(err: unknown): boolean {
  const message = (err as { message?: string } | null)?.message ?? '';
  return message === QUERY_READ_TIMEOUT || /Connection terminated/.test(message);
}

function isUniqueViolation(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: string }).code === '23505';
}
