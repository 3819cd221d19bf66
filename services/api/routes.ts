import type { Request, RequestHandler, Response } from 'express';
import { z } from 'zod';
import type { Client } from '@temporalio/client';
import type { Config } from '../shared/config';
import { presentMedia, presentOptions } from '../shared/media-presenter';
import type { MediaRow } from '../shared/db/entities';
import { CANCEL_REQUESTED, InvalidCursorError, type DeletionRule, type MediaRepository, type Scope } from '../shared/db/media-repository';
import { isTerminal, MEDIA_STATUSES, UPLOADING_STATUSES, type MediaStatus } from '../shared/media-types';
import type { Metrics } from '../shared/metrics';
import { pickParts, REFUSED_PART_CLAIMS, type Storage } from '../shared/storage';
import { MediaDeletionWorkflow, mediaDeletionWorkflowId } from '../../workflows/media-delete.workflow';
import type { ConfirmedPart } from '../../workflows/media-upload.workflow';
import { ApiError, type ErrorCode } from './errors';
import type { StatusNotifier } from './events';
import * as s from './schemas';
import { UploadService, withinStartDeadline } from './upload-sessions';
import { MAX_PARTS } from '../shared/upload-plan';
import { cancelIfRunning } from '../shared/temporal';

export interface ApiDeps {
  config: Config;
  storage: Storage;
  media: MediaRepository;
  temporal: Client;
  notifier: StatusNotifier;
  metrics: Metrics;
}

/** One route of the public API: registered on Express and described in the OpenAPI document. */
export interface RouteSpec {
  method: 'get' | 'post' | 'delete';
  path: string;
  /** Unique name of the operation in the OpenAPI document (a generated client's method name). */
  operationId: string;
  summary: string;
  request?: z.ZodType;
  /** The body may be left out (`complete` of a single PUT needs none). */
  requestOptional?: boolean;
  query?: z.ZodType;
  /**
   * What the route itself answers: a success with its body, or an error with its codes.
   * The OpenAPI document adds what every route may answer (401, 500, 503; 400/413/415 with
   * a body; 429 when rate limited).
   */
  responses: Record<number, RouteResponse>;
  /** Session-creating routes are rate limited per user. */
  rateLimited?: boolean;
  handler: (req: Request, res: Response) => Promise<void>;
}

export type RouteResponse = { description: string; schema?: z.ZodType; contentType?: string } | { description: string; codes: readonly [ErrorCode, ...ErrorCode[]] };

function parse<T extends z.ZodType>(schema: T, value: unknown): z.infer<T> {
  const result = schema.safeParse(value);
  if (!result.success) {
    throw new ApiError('VALIDATION_FAILED', 'request is invalid', {
      issues: result.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
    });
  }
  return result.data;
}

const idempotencyKey = z.string().min(1).max(200).regex(/^[\x21-\x7e]+$/, 'printable ASCII');

export function buildRoutes(deps: ApiDeps): RouteSpec[] {
  const { config, storage, media, temporal, notifier } = deps;
  const uploads = new UploadService({ config, storage, media, temporal, metrics: deps.metrics });
  const presentation = presentOptions(config);
  /** The caller: tenant, user and granted projects (services/api/auth.ts). */
  const scopeOf = (req: Request): Scope => req.user!;

  /**
   * Media the caller may read: their own or of a granted project, in their tenant. Anything
   * else, another tenant's above all, is 404 (its existence is not disclosed).
   */
  async function visible(req: Request): Promise<MediaRow> {
    const id = String(req.params.id);
    const row = s.mediaIdParam.safeParse(id).success ? await media.findVisible(id, scopeOf(req)) : null;
    if (!row) throw new ApiError('MEDIA_NOT_FOUND', 'no such media');
    return row;
  }

  /**
   * Media the caller uploaded. Project members read each other's media (get, list, events,
   * download, text) but only the uploader completes, resumes, cancels, deletes, attaches or
   * detaches it: 403 NOT_UPLOADER for a member, 404 for anyone else.
   */
  async function uploaded(req: Request): Promise<MediaRow> {
    const row = await visible(req);
    if (row.userId !== scopeOf(req).userId) throw new ApiError('NOT_UPLOADER', 'only the uploader may change this media');
    return row;
  }
  /** The caller may use this project (403 PROJECT_FORBIDDEN). */
  function checkProject(req: Request, projectId: string | undefined): void {
    if (projectId !== undefined && !scopeOf(req).projects.includes(projectId)) {
      throw new ApiError('PROJECT_FORBIDDEN', 'your token does not grant this project', { projectId });
    }
  }
  const present = async (row: MediaRow) => presentMedia(row, await media.renditions(row.id), presentation);

  const notFound = { description: 'not found or not yours', codes: ['MEDIA_NOT_FOUND'] } as const;
  const invalid = { description: 'validation failed', codes: ['VALIDATION_FAILED'] } as const;
  const uploaderOnly = { description: "another project member's media: only its uploader may do this", codes: ['NOT_UPLOADER'] } as const;
  const projectForbidden = { description: 'your token does not grant the projectId', codes: ['PROJECT_FORBIDDEN'] } as const;

  const routes: RouteSpec[] = [
    {
      method: 'post',
      path: '/media/upload-session',
      operationId: 'createUploadSession',
      summary: 'Create an upload session: media row, workflow and presigned upload',
      request: s.uploadSessionRequest,
      rateLimited: true,
      responses: {
        201: { description: 'session created', schema: s.uploadSessionResponse },
        400: invalid,
        403: projectForbidden,
        409: { description: 'the Idempotency-Key was used for another file', codes: ['IDEMPOTENCY_CONFLICT'] },
        413: { description: 'file too large, or the storage quota would be exceeded', codes: ['FILE_TOO_LARGE', 'QUOTA_EXCEEDED'] },
        415: { description: 'type not accepted', codes: ['UNSUPPORTED_MEDIA_TYPE'] },
      },
      async handler(req, res) {
        const body = parse(s.uploadSessionRequest, req.body);
        const key = req.header('idempotency-key');
        const session = await uploads.create(scopeOf(req), body, { idempotencyKey: key === undefined ? undefined : parse(idempotencyKey, key) });
        deps.metrics.sessionsCreated.inc({ media_type: body.mediaType, method: session.upload.method });
        res.locals.mediaId = session.mediaId; // for the request log line
        res.status(201).json(session);
      },
    },
    {
      method: 'post',
      path: '/media/upload-sessions',
      operationId: 'createUploadSessions',
      summary: 'Create up to 100 upload sessions at once; each item succeeds or carries its own error',
      request: s.batchRequest,
      rateLimited: true,
      responses: { 201: { description: 'batch created', schema: s.batchResponse }, 400: invalid },
      async handler(req, res) {
        const { files } = parse(s.batchRequest, req.body);
        const requests = files.map((file) => {
          try {
            return parse(s.uploadSessionRequest, file);
          } catch (err) {
            if (err instanceof ApiError) return err;
            throw err;
          }
        });
        const { batchId, items } = await uploads.createBatch(scopeOf(req), requests);
        for (const item of items) {
          const request = requests[item.index];
          if ('upload' in item && request && !(request instanceof ApiError))
            deps.metrics.sessionsCreated.inc({ media_type: request.mediaType, method: item.upload.method });
        }
        res.status(201).json({ batchId, items });
      },
    },
    {
      method: 'post',
      path: '/media/:id/complete',
      operationId: 'completeUpload',
      summary: 'Confirm the upload; the workflow takes over (multipart: with the part list)',
      request: s.completeRequest,
      requestOptional: true,
      responses: {
        202: { description: 'confirmation sent to the workflow', schema: s.completeResponse },
        403: uploaderOnly,
        404: notFound,
        409: {
          description:
            'not uploaded yet, or the media is finished; PARTS_MISMATCH: parts missing (`details.missing`), an ETag that is not that of the latest upload of its part (`details.wrongEtag`), or a part uploaded twice within one second with other bytes, which only its ETag can decide (`details.ambiguous`: name it in `parts`, or upload it again)',
          codes: ['INVALID_STATE', 'UPLOAD_NOT_FOUND', 'PARTS_MISMATCH'],
        },
      },
      async handler(req, res) {
        const row = await uploaded(req);
        const body = parse(s.completeRequest, req.body ?? {});
        if (row.status !== 'AWAITING_UPLOAD') {
          // Confirming twice is harmless; confirming a finished upload is not.
          if (['VERIFYING', 'SCANNING', 'PROCESSING', 'READY'].includes(row.status)) {
            res.status(202).json({ mediaId: row.id, status: row.status });
            return;
          }
          throw new ApiError('INVALID_STATE', `media is ${row.status}`, { status: row.status });
        }
        const parts = row.uploadId ? await confirmedParts(row, body.parts) : undefined;
        if (!row.uploadId && !(await storage.head(config.S3_INCOMING_BUCKET, row.storageKey))) {
          throw new ApiError('UPLOAD_NOT_FOUND', 'nothing has been uploaded to the presigned URL yet');
        }
        await withinDeadline(() => uploads.confirm(row, { source: 'client', parts }));
        deps.metrics.confirmations.inc({ media_type: row.mediaType });
        res.status(202).json({ mediaId: row.id, status: row.status });
      },
    },
    {
      method: 'post',
      path: '/media/:id/parts',
      operationId: 'presignParts',
      summary: 'Presign (again) the URLs of some parts: lazy issuance and resume',
      request: s.partsRequest,
      responses: {
        200: { description: 'fresh part URLs', schema: s.partUrlsResponse },
        400: invalid,
        403: uploaderOnly,
        404: notFound,
        409: { description: 'not a multipart upload in progress', codes: ['INVALID_STATE'] },
      },
      async handler(req, res) {
        const row = await uploaded(req);
        const body = parse(s.partsRequest, req.body);
        if (!row.uploadId || row.status !== 'AWAITING_UPLOAD') throw new ApiError('INVALID_STATE', 'not a multipart upload awaiting parts');
        res.json({ mediaId: row.id, uploadId: row.uploadId, parts: await uploads.partUrls(row, [...new Set(body.partNumbers)], body.checksums ?? {}) });
      },
    },
    {
      method: 'get',
      path: '/media/:id/parts',
      operationId: 'listUploadedParts',
      summary: 'Parts already in S3 (resume after a crash)',
      responses: {
        200: { description: 'uploaded parts', schema: s.uploadedPartsResponse },
        403: uploaderOnly,
        404: notFound,
        409: { description: 'not a multipart upload in progress', codes: ['INVALID_STATE'] },
      },
      async handler(req, res) {
        const row = await uploaded(req);
        if (!row.uploadId) throw new ApiError('INVALID_STATE', 'not a multipart upload');
        const parts = row.status === 'AWAITING_UPLOAD' ? await storage.listParts(config.S3_INCOMING_BUCKET, row.storageKey, row.uploadId) : undefined;
        if (!parts) throw new ApiError('INVALID_STATE', `media is ${row.status}; its multipart upload is closed`, { status: row.status });
        res.json({ mediaId: row.id, uploadId: row.uploadId, partSize: row.partSize, partCount: row.partCount, parts });
      },
    },
    {
      method: 'get',
      path: '/media/:id',
      operationId: 'getMedia',
      summary: 'One media with its status, URLs and metadata',
      responses: { 200: { description: 'the media', schema: s.mediaResponse }, 404: notFound },
      async handler(req, res) {
        // The row and its renditions in one statement (what pollers call most).
        const id = String(req.params.id);
        const found = s.mediaIdParam.safeParse(id).success ? await media.findVisibleWithRenditions(id, scopeOf(req)) : null;
        if (!found) throw new ApiError('MEDIA_NOT_FOUND', 'no such media');
        res.json(presentMedia(found.row, found.renditions, presentation));
      },
    },
    {
      method: 'get',
      path: '/media',
      operationId: 'listMedia',
      summary: 'Own media and that of granted projects, newest first; filter by project, status or what it is attached to',
      query: s.listQuery,
      responses: {
        200: { description: 'a page of media', schema: s.mediaListResponse },
        400: { description: 'invalid filter or cursor', codes: ['VALIDATION_FAILED', 'INVALID_CURSOR'] },
        403: projectForbidden,
      },
      async handler(req, res) {
        const q = parse(s.listQuery, req.query);
        checkProject(req, q.projectId);
        try {
          const page = await media.list(scopeOf(req), {
            status: q.status,
            projectId: q.projectId,
            owner: { ownerType: q.ownerType, ownerId: q.ownerId },
            cursor: q.cursor,
            limit: q.limit,
          });
          res.json({ items: await Promise.all(page.items.map(present)), nextCursor: page.nextCursor });
        } catch (err) {
          if (err instanceof InvalidCursorError) throw new ApiError('INVALID_CURSOR', 'cursor is not one this API issued');
          throw err;
        }
      },
    },
    {
      method: 'get',
      path: '/media/:id/events',
      operationId: 'streamMediaEvents',
      summary: 'Server-Sent Events: one `status` event per status change until terminal; one `playable` event when a video can be played (before READY)',
      responses: {
        200: { description: 'one `status` event (data: the media as GET /media/{id} shows it) per status change, and one `playable` event', schema: z.string(), contentType: 'text/event-stream' },
        404: notFound,
      },
      async handler(req, res) {
        const row = await visible(req);
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
        let last: MediaStatus | undefined;
        let playableSent = false;
        let closed = false;
        const send = async () => {
          const current = await media.findById(row.id);
          if (!current || closed) return;
          const shown = await present(current);
          // `playable` once, when the first rendition is published (before READY, or with it).
          if (shown.playback && !playableSent) {
            playableSent = true;
            res.write(`event: playable\ndata: ${JSON.stringify(shown)}\n\n`);
          }
          if (current.status === last) return;
          last = current.status;
          res.write(`event: status\ndata: ${JSON.stringify(shown)}\n\n`);
          if (isTerminal(current.status)) finish();
        };
        const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
        const unsubscribe = notifier.subscribe(row.id, () => void send().catch(() => finish()));
        function finish() {
          if (closed) return;
          closed = true;
          clearInterval(heartbeat);
          unsubscribe();
          res.end();
        }
        req.on('close', finish);
        await send();
      },
    },
    {
      method: 'get',
      path: '/batches/:id',
      operationId: 'getBatch',
      summary: 'Counts per status and the items of a batch',
      responses: { 200: { description: 'the batch', schema: s.batchDetailResponse }, 404: { description: 'not found or not yours', codes: ['BATCH_NOT_FOUND'] } },
      async handler(req, res) {
        const id = String(req.params.id);
        const batch = s.mediaIdParam.safeParse(id).success ? await media.findBatch(id, scopeOf(req)) : null;
        if (!batch) throw new ApiError('BATCH_NOT_FOUND', 'no such batch');
        const rows = await media.findByBatch(batch.id, batch);
        const counts = Object.fromEntries(MEDIA_STATUSES.map((st) => [st, rows.filter((r) => r.status === st).length]));
        res.json({ batchId: batch.id, itemCount: batch.itemCount, createdAt: batch.createdAt.toISOString(), counts, items: await Promise.all(rows.map(present)) });
      },
    },
    {
      method: 'delete',
      path: '/media/:id',
      operationId: 'deleteMedia',
      summary:
        'Delete a media: it reads DELETING at once; a finished media ends DELETED once storage is clean, an upload in flight is cancelled and ends CANCELLED',
      responses: {
        202: { description: 'deletion (action DELETING) or cancellation (action CANCELLING) under way; the media reads DELETING at once', schema: s.deleteResponse },
        403: uploaderOnly,
        404: notFound,
      },
      async handler(req, res) {
        const row = await uploaded(req);
        // An upload in flight reads DELETING from here on; its workflow is cancelled, compensates
        // and ends it CANCELLED. A repeated DELETE sends the cancellation again, and so does the
        // cleanup schedule for one that Temporal never got (503).
        const cancelling = UPLOADING_STATUSES.includes(row.status)
          ? await media.claimCancellation(row.id)
          : row.status === 'DELETING' && row.metadata?.[CANCEL_REQUESTED] === true;
        if (cancelling) {
          // Its workflow compensates on the cancellation and ends the upload CANCELLED.
          const running = await cancelIfRunning(temporal.workflow.getHandle(row.workflowId), withinDeadline);
          // Its workflow had ended (an operator terminated it): the deletion workflow removes
          // what is stored and ends it DELETED.
          if (!running) await startDeletion(row.id, { kind: 'finished' });
          res.status(202).json({ mediaId: row.id, status: 'DELETING', action: 'CANCELLING' });
          return;
        }
        // Marked DELETING before answering, so the next read shows it; the deletion workflow
        // removes storage and marks it DELETED. If the start fails (503), the row stays DELETING:
        // another DELETE starts it again, and the cleanup schedule finishes stalled deletions.
        const claimed = row.status === 'DELETED' ? null : await media.claimForDeletion(row.id, { kind: 'finished' });
        if (claimed) await startDeletion(row.id, { kind: 'finished' });
        res.status(202).json({ mediaId: row.id, status: claimed?.row.status ?? row.status, action: 'DELETING' });
      },
    },
    {
      method: 'post',
      path: '/media/:id/attach',
      operationId: 'attachMedia',
      summary: 'Attach READY media to an owner (a post, a profile); a profile image replaces the previous one',
      request: s.attachRequest,
      responses: {
        200: { description: 'attached (or already attached to this owner)', schema: s.attachResponse },
        400: invalid,
        403: uploaderOnly,
        404: notFound,
        409: { description: 'not READY, or attached to another owner', codes: ['MEDIA_NOT_READY', 'ALREADY_ATTACHED'] },
      },
      async handler(req, res) {
        const owner = parse(s.attachRequest, req.body);
        const { id, mediaType } = await uploaded(req);
        // One profile image per owner: attaching a new one replaces (deletes) the previous one.
        const result = await media.attach(id, scopeOf(req), owner, { replaceType: mediaType === 'PROFILE_IMAGE' ? mediaType : undefined });
        switch (result.outcome) {
          case 'not_found':
            throw new ApiError('MEDIA_NOT_FOUND', 'no such media');
          case 'not_ready':
            throw new ApiError('MEDIA_NOT_READY', `media is ${result.row.status}; only READY media can be attached`, { status: result.row.status });
          case 'attached_elsewhere':
            throw new ApiError('ALREADY_ATTACHED', 'media is attached to another owner; detach it first', {
              ownerType: result.row.ownerType,
              ownerId: result.row.ownerId,
            });
        }
        // The replaced images are detached already; if a deletion cannot start now, the cleanup
        // schedule deletes them as unattached media later.
        for (const previous of result.detached) {
          await startDeletion(previous.id, { kind: 'unattached' }).catch((err: unknown) => req.log.error({ err, mediaId: previous.id }, 'replaced media: deletion not started'));
        }
        res.json({ ...(await present(result.row)), replaced: result.detached.map((r) => r.id) });
      },
    },
    {
      method: 'delete',
      path: '/media/:id/attach',
      operationId: 'detachMedia',
      summary: 'Detach media from its owner (nothing changes when it is not attached)',
      responses: { 200: { description: 'detached', schema: s.mediaResponse }, 403: uploaderOnly, 404: notFound },
      async handler(req, res) {
        const { id } = await uploaded(req);
        const row = await media.detach(id, scopeOf(req));
        if (!row) throw new ApiError('MEDIA_NOT_FOUND', 'no such media');
        res.json(await present(row));
      },
    },
    {
      method: 'get',
      path: '/upload-options',
      operationId: 'getUploadOptions',
      summary: 'How uploads are planned: the multipart threshold and the part size',
      responses: { 200: { description: 'upload options', schema: s.uploadOptionsResponse } },
      async handler(_req, res) {
        res.json({ multipartThresholdBytes: config.MULTIPART_THRESHOLD_BYTES, partSizeBytes: config.PART_SIZE_BYTES, maxParts: MAX_PARTS });
      },
    },
    {
      method: 'get',
      path: '/media/:id/download-url',
      operationId: 'getDownloadUrl',
      summary: 'A short-lived presigned GET of the original or a rendition (private media included)',
      query: s.downloadUrlQuery,
      responses: {
        200: { description: 'presigned URL', schema: s.downloadUrlResponse },
        400: invalid,
        404: { description: 'no such media, or no such variant of it', codes: ['MEDIA_NOT_FOUND', 'VARIANT_NOT_FOUND'] },
        409: { description: 'media is not READY', codes: ['MEDIA_NOT_READY'] },
      },
      async handler(req, res) {
        const row = await visible(req);
        const { variant } = parse(s.downloadUrlQuery, req.query);
        if (row.status !== 'READY') throw new ApiError('MEDIA_NOT_READY', `media is ${row.status}`, { status: row.status });
        const rendition = variant === 'original' ? undefined : (await media.renditions(row.id)).find((r) => r.label === variant && r.kind !== 'hls');
        if (variant !== 'original' && !rendition) throw new ApiError('VARIANT_NOT_FOUND', `no variant ${variant}; use original or a thumbnail/poster variant of GET /media/{id}`);
        const ttl = config.DOWNLOAD_URL_TTL_SECONDS;
        // A PDF may carry JavaScript: its original is only ever downloaded, never shown inline.
        const disposition = !rendition && row.mediaType === 'DOCUMENT' ? 'attachment' : undefined;
        const { url } = await storage.presignGet(config.S3_MEDIA_BUCKET, rendition?.storageKey ?? row.storageKey, ttl, disposition);
        res.setHeader('cache-control', 'no-store');
        res.json({ mediaId: row.id, variant, url, expiresAt: new Date(Date.now() + ttl * 1000).toISOString() });
      },
    },
    {
      method: 'get',
      path: '/media/:id/text',
      operationId: 'getMediaText',
      summary: 'The text extracted from a READY document (page texts separated by form feeds, at most DOCUMENT_TEXT_MAX_BYTES)',
      responses: {
        200: { description: 'the extracted text', schema: s.mediaTextResponse },
        404: { description: 'not found or not yours, or no text (not a document, or password-protected)', codes: ['MEDIA_NOT_FOUND', 'TEXT_NOT_FOUND'] },
        409: { description: 'media is not READY', codes: ['MEDIA_NOT_READY'] },
      },
      async handler(req, res) {
        const row = await visible(req);
        if (row.status !== 'READY') throw new ApiError('MEDIA_NOT_READY', `media is ${row.status}`, { status: row.status });
        const text = await media.findText(row.id);
        if (!text) throw new ApiError('TEXT_NOT_FOUND', row.mediaType === 'DOCUMENT' ? 'no text could be read from this document (password-protected)' : 'only documents have text');
        res.setHeader('cache-control', 'private, no-cache');
        res.json({ mediaId: row.id, text: text.text, sizeBytes: text.sizeBytes, truncated: text.truncated, pagesRead: text.pagesRead });
      },
    },
  ];
  // `/complete-multipart` is an alias some clients expect; it is the same confirmation.
  const complete = routes.find((r) => r.path === '/media/:id/complete')!;
  routes.push({ ...complete, path: '/media/:id/complete-multipart', operationId: 'completeMultipartUpload', summary: `${complete.summary} (alias of /complete)` });
  return routes;

  /** This request's call to Temporal, bounded (withinStartDeadline). */
  function withinDeadline<T>(call: () => Promise<T>): Promise<T> {
    return withinStartDeadline(temporal, call);
  }

  /** Starts (once per media) the workflow that deletes it if `rule` still holds. */
  async function startDeletion(mediaId: string, rule: DeletionRule): Promise<void> {
    await withinDeadline(() =>
      temporal.workflow.start(MediaDeletionWorkflow, { taskQueue: config.TASK_QUEUE_LIGHT, workflowId: mediaDeletionWorkflowId(mediaId), args: [{ mediaId, rule }] }),
    ).catch((err: unknown) => {
      // A deletion already under way is the same request again.
      if ((err as Error).name !== 'WorkflowExecutionAlreadyStartedError') throw err;
    });
  }

  /**
   * The parts to assemble: S3's own list, one per part number, checked against what the client
   * says it sent. A part sent twice counts once (its latest upload); a claimed ETag that is not
   * the latest upload of its part (a stale retry, a typo) is refused with 409 PARTS_MISMATCH,
   * every time, and nothing is signalled.
   */
  async function confirmedParts(row: MediaRow, claimed: ConfirmedPart[] | undefined): Promise<ConfirmedPart[]> {
    const copies = await storage.listPartCopies(config.S3_INCOMING_BUCKET, row.storageKey, row.uploadId!);
    if (!copies) throw new ApiError('UPLOAD_NOT_FOUND', 'the multipart upload no longer exists');
    const { parts: listed, mismatched, ambiguous } = pickParts(copies, claimed);
    // The client's last word on these parts, whatever else the list lacks: the upload is not
    // taken as complete at its deadline while their latest copies are other bytes (inspectUpload).
    const wrongEtag = mismatched.slice(0, 100);
    if (claimed && mismatched.length) {
      const refused = claimed.filter((p) => mismatched.includes(p.partNumber)).map(({ partNumber, etag }) => ({ partNumber, etag }));
      await media.mergeMetadata(row.id, { [REFUSED_PART_CLAIMS]: refused });
    }
    const missing = Array.from({ length: row.partCount! }, (_, i) => i + 1).filter((n) => !listed.some((p) => p.partNumber === n) && !ambiguous.includes(n));
    if (missing.length) {
      throw new ApiError('PARTS_MISMATCH', `${missing.length} part(s) not uploaded yet`, { missing: missing.slice(0, 100), ...(wrongEtag.length ? { wrongEtag } : {}) });
    }
    if (ambiguous.length) {
      throw new ApiError(
        'PARTS_MISMATCH',
        `${ambiguous.length} part(s) were uploaded twice within one second with different bytes, and S3 cannot tell which came last: send the parts with their ETags, or upload those parts again`,
        { ambiguous: ambiguous.slice(0, 100) },
      );
    }
    if (claimed) {
      // A part listed twice with the same ETag is the same part (clients have sent such lists
      // after retries); listed with two ETags, the list contradicts itself.
      const claimedEtags = new Map<number, Set<string>>();
      for (const p of claimed) claimedEtags.set(p.partNumber, (claimedEtags.get(p.partNumber) ?? new Set()).add(p.etag.replace(/"/g, '')));
      const contradictory = [...claimedEtags.values()].some((etags) => etags.size > 1);
      if (mismatched.length || contradictory || claimedEtags.size !== row.partCount) {
        throw new ApiError('PARTS_MISMATCH', 'the part list does not match the uploaded parts (each ETag must be that of the latest upload of its part)', { wrongEtag });
      }
    }
    return listed.map(({ partNumber, etag }) => ({ partNumber, etag }));
  }
}

/** Wraps a route handler so that its rejection reaches the error middleware. */
export function toExpress(route: RouteSpec): RequestHandler {
  return (req, res, next) => {
    route.handler(req, res).catch(next);
  };
}
