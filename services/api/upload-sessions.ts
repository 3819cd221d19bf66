import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { WorkflowIdReusePolicy } from '@temporalio/common';
import type { Config } from '../shared/config';
import type { MediaRow } from '../shared/db/entities';
import type { MediaRepository } from '../shared/db/media-repository';
import type { Metrics } from '../shared/metrics';
import { MEDIA_TYPE_RULES, originalKey } from '../shared/media-types';
import type { Storage } from '../shared/storage';
import {
  MediaOwnerKey,
  MediaStatusKey,
  MediaTypeKey,
  MediaUploadWorkflow,
  mediaWorkflowId,
  type MediaUploadInput,
} from '../../workflows/media-upload.workflow';
import { ApiError } from './errors';
import type { UploadSessionRequest } from './schemas';

const MAX_PARTS = 10_000;
/** Part URLs handed out with the session; the rest come from POST /media/{id}/parts. */
export const INITIAL_PART_URLS = 100;
const START_DEADLINE_MS = 5000;

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

export interface UploadPlan {
  multipart: boolean;
  partSize: number;
  partCount: number;
}

/** Single PUT below the threshold; above it, parts of PART_SIZE_BYTES grown to fit 10,000 parts. */
export function planUpload(fileSize: number, threshold: number, partSize: number): UploadPlan {
  if (fileSize <= threshold) return { multipart: false, partSize: fileSize, partCount: 1 };
  const MiB = 1024 * 1024;
  const size = Math.max(partSize, Math.ceil(fileSize / MAX_PARTS / MiB) * MiB);
  return { multipart: true, partSize: size, partCount: Math.ceil(fileSize / size) };
}

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

/** Creates upload sessions: the media row, the S3 upload and the workflow, all or nothing. */
export class UploadService {
  constructor(private readonly deps: UploadServiceDeps) {}

  /** Domain limits of SPEC.md §4: type allowed for the media type, size within its maximum. */
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
  }

  async create(userId: string, req: UploadSessionRequest, options: { idempotencyKey?: string; batchId?: string } = {}): Promise<UploadSession> {
    this.validate(req);
    const { config, storage, media, temporal } = this.deps;
    if (options.idempotencyKey) {
      const existing = await media.findByIdempotencyKey(userId, options.idempotencyKey);
      if (existing) return this.replay(existing, req);
    }
    if (config.USER_STORAGE_QUOTA_BYTES > 0) {
      // A soft limit: sessions created at the same instant may pass it together by a file each.
      const used = await media.storageUsed(userId);
      if (used + req.fileSize > config.USER_STORAGE_QUOTA_BYTES) {
        throw new ApiError('QUOTA_EXCEEDED', 'this upload would exceed your storage quota', {
          quotaBytes: config.USER_STORAGE_QUOTA_BYTES,
          usedBytes: used,
          fileSize: req.fileSize,
        });
      }
    }
    const now = this.deps.now?.() ?? new Date();
    const mediaId = randomUUID();
    const storageKey = originalKey(req.mediaType, userId, mediaId, req.fileType, now);
    const ttl = req.mediaType === 'PROFILE_IMAGE' ? config.PROFILE_IMAGE_URL_TTL_SECONDS : config.UPLOAD_URL_TTL_SECONDS;
    const expiresAt = new Date(now.getTime() + ttl * 1000);
    const plan = planUpload(req.fileSize, config.MULTIPART_THRESHOLD_BYTES, config.PART_SIZE_BYTES);
    const uploadId = plan.multipart ? await storage.createMultipartUpload(config.S3_INCOMING_BUCKET, storageKey, req.fileType) : null;
    const row = {
      id: mediaId,
      userId,
      batchId: options.batchId ?? null,
      mediaType: req.mediaType,
      fileName: req.fileName,
      mimeType: req.fileType,
      fileSize: req.fileSize,
      checksumSha256: req.checksumSha256 ?? null,
      status: 'AWAITING_UPLOAD' as const,
      storageKey,
      uploadId,
      partSize: plan.multipart ? plan.partSize : null,
      partCount: plan.multipart ? plan.partCount : null,
      idempotencyKey: options.idempotencyKey ?? null,
      workflowId: mediaWorkflowId(mediaId),
      expiresAt,
      createdAt: now,
    };
    const input: MediaUploadInput = {
      mediaId,
      userId,
      mediaType: req.mediaType,
      mimeType: req.fileType,
      fileSize: req.fileSize,
      storageKey,
      uploadId: uploadId ?? undefined,
      partCount: row.partCount ?? undefined,
      confirmDeadline: expiresAt.getTime() + config.CONFIRM_GRACE_SECONDS * 1000,
      videoTaskQueue: config.TASK_QUEUE_VIDEO,
      documentTaskQueue: config.TASK_QUEUE_DOCUMENT,
    };
    try {
      // The row commits only once the workflow has started: no half-created session.
      await media.insertWithin(row, async () => {
        // A Temporal outage must answer 503 quickly, not hold the client until gRPC gives up.
        await temporal.connection.withDeadline(Date.now() + START_DEADLINE_MS, () => temporal.workflow.start(MediaUploadWorkflow, {
          taskQueue: config.TASK_QUEUE_LIGHT,
          workflowId: row.workflowId,
          args: [input],
          workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
          typedSearchAttributes: [
            { key: MediaStatusKey, value: 'AWAITING_UPLOAD' },
            { key: MediaTypeKey, value: req.mediaType },
            { key: MediaOwnerKey, value: userId },
          ],
          staticSummary: `${req.mediaType} ${req.fileName} (${req.fileSize} bytes) for ${userId}`,
        }));
      });
    } catch (err) {
      if (uploadId) await storage.abortMultipartUpload(config.S3_INCOMING_BUCKET, storageKey, uploadId).catch(() => undefined);
      if (options.idempotencyKey && isUniqueViolation(err)) {
        const winner = await media.findByIdempotencyKey(userId, options.idempotencyKey);
        if (winner) return this.replay(winner, req);
      }
      throw err;
    }
    return this.describe({ ...row, metadata: {}, failureReason: null, ownerType: null, ownerId: null, attachedAt: null, updatedAt: now });
  }

  /** The same key from the same user returns the same session, for the same request only. */
  private async replay(existing: MediaRow, req: UploadSessionRequest): Promise<UploadSession> {
    const same =
      existing.fileName === req.fileName && existing.mimeType === req.fileType && existing.fileSize === req.fileSize && existing.mediaType === req.mediaType;
    if (!same) throw new ApiError('IDEMPOTENCY_CONFLICT', 'this Idempotency-Key was used for a different request');
    return this.describe(existing);
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

function isUniqueViolation(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: string }).code === '23505';
}
