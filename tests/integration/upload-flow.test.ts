import { createHash } from 'node:crypto';
import type { WorkflowHandle } from '@temporalio/client';
import { bytesOfType, pngHeader, realJpeg, sha256Base64 } from '../fixtures/media';
import { startPlatform, uniqueUser, waitForStatus, type Platform } from '../harness/platform';
import { ownerKeySegment, tenantKeySegment } from '../../services/shared/storage-keys';
import { eventTypeName } from '../../bench/temporal-actions';
import { until } from '../../devstack/poll';
import { uploadConfirmedSignal } from '../../workflows/media-upload.workflow';

const MiB = 1024 * 1024;

async function putTo(upload: { url: string; headers: Record<string, string> }, body: Buffer, extraHeaders: Record<string, string> = {}) {
  return fetch(upload.url, { method: 'PUT', body, headers: { ...upload.headers, ...extraHeaders } });
}

/** The event types of a workflow's history, in order (`WorkflowExecutionStarted`, …). */
async function eventNames(handle: WorkflowHandle): Promise<string[]> {
  return ((await handle.fetchHistory()).events ?? []).map((e) => eventTypeName(e.eventType));
}

async function objectExists(p: Platform, bucket: string, key: string) {
  return (await p.storage.head(bucket, key)) !== undefined;
}

describe('upload sessions on the real stack', () => {
  let p: Platform;
  beforeAll(async () => {
    // Small multipart settings so multipart paths run with a few MiB.
    p = await startPlatform({ MULTIPART_THRESHOLD_BYTES: String(6 * MiB), PART_SIZE_BYTES: String(5 * MiB) });
  });
  afterAll(() => p?.stop());

  it('takes a single-PUT image to READY and publishes it only in the media bucket', async () => {
    const user = uniqueUser('alice');
    const body = await realJpeg(4096);
    const res = await p.call(user, '/media/upload-session', {
      body: { fileName: 'me.jpg', fileType: 'image/jpeg', fileSize: body.length, mediaType: 'PROFILE_IMAGE', checksumSha256: sha256Base64(body) },
    });
    expect(res.status).toBe(201);
    expect(res.body.upload.method).toBe('PUT');
    expect(res.body.status).toBe('AWAITING_UPLOAD');
    // The owner segment is a hash of the user id, never the id itself.
    expect(res.body.storageKey).toMatch(new RegExp(`^${tenantKeySegment('default')}/${ownerKeySegment(user)}/profile_image/\\d+-${res.body.mediaId}\\.jpg$`));
    expect(res.body.storageKey).not.toContain(user);
    expect((await putTo(res.body.upload, body)).status).toBe(200);
    const done = await p.call(user, `/media/${res.body.mediaId}/complete`, { body: {} });
    expect(done.status).toBe(202);
    const media = await waitForStatus(p, user, res.body.mediaId, ['READY', 'FAILED', 'REJECTED']);
    expect(media.status).toBe('READY');
    expect(media.cdnUrl).toContain(res.body.storageKey.split('/').pop());
    expect(await objectExists(p, p.config.S3_MEDIA_BUCKET, res.body.storageKey)).toBe(true);
    expect(await objectExists(p, p.config.S3_INCOMING_BUCKET, res.body.storageKey)).toBe(false);
    const served = await fetch(media.cdnUrl);
    expect(Buffer.from(await served.arrayBuffer()).equals(body)).toBe(true);
  });

  it('lets S3 refuse a body of another size, type or checksum than the one signed', async () => {
    const user = uniqueUser('mallory');
    const body = await realJpeg(2048);
    const res = await p.call(user, '/media/upload-session', {
      body: { fileName: 'x.jpg', fileType: 'image/jpeg', fileSize: body.length, mediaType: 'POST_IMAGE', checksumSha256: sha256Base64(body) },
    });
    expect(res.status).toBe(201);
    expect((await putTo(res.body.upload, await realJpeg(4096))).status).toBeGreaterThanOrEqual(400);
    expect((await putTo(res.body.upload, body, { 'content-type': 'image/png' })).status).toBe(403);
    const corrupted = Buffer.from(body);
    corrupted[100] = 0;
    expect((await putTo(res.body.upload, corrupted)).status).toBeGreaterThanOrEqual(400);
    const tampered = { ...res.body.upload, url: res.body.upload.url.replace(/X-Amz-Signature=[0-9a-f]{6}/, 'X-Amz-Signature=000000') };
    expect((await putTo(tampered, body)).status).toBe(403);
    expect(await objectExists(p, p.config.S3_INCOMING_BUCKET, res.body.storageKey)).toBe(false);
  });

  it('assembles a multipart upload, resumed after a crash with re-signed part URLs', async () => {
    const user = uniqueUser('bob');
    const body = await realJpeg(11 * MiB);
    const res = await p.call(user, '/media/upload-session', {
      body: { fileName: 'big.jpg', fileType: 'image/jpeg', fileSize: body.length, mediaType: 'POST_IMAGE' },
    });
    expect(res.status).toBe(201);
    const upload = res.body.upload;
    expect(upload).toMatchObject({ method: 'MULTIPART', partSize: 5 * MiB, partCount: 3 });
    expect(upload.parts).toHaveLength(3);
    const slice = (n: number) => body.subarray((n - 1) * upload.partSize, n * upload.partSize);
    expect((await putTo(upload.parts[0], slice(1))).status).toBe(200);

    // The client "crashes"; on restart it asks what S3 has and for fresh URLs for the rest.
    const listed = await p.call(user, `/media/${res.body.mediaId}/parts`);
    expect(listed.status).toBe(200);
    expect(listed.body.parts.map((x: { partNumber: number }) => x.partNumber)).toEqual([1]);
    const early = await p.call(user, `/media/${res.body.mediaId}/complete`, { body: {} });
    expect(early.status).toBe(409);
    expect(early.body.error.code).toBe('PARTS_MISMATCH');
    const resigned = await p.call(user, `/media/${res.body.mediaId}/parts`, {
      body: { partNumbers: [2, 3], checksums: { '2': sha256Base64(slice(2)), '3': sha256Base64(slice(3)) } },
    });
    expect(resigned.status).toBe(200);
    const etags: Array<{ partNumber: number; etag: string }> = [{ partNumber: 1, etag: listed.body.parts[0].etag }];
    for (const part of resigned.body.parts) {
      const put = await putTo(part, slice(part.partNumber));
      expect(put.status).toBe(200);
      etags.push({ partNumber: part.partNumber, etag: put.headers.get('etag')! });
    }
    const wrong = await p.call(user, `/media/${res.body.mediaId}/complete`, { body: { parts: etags.map((e) => ({ ...e, etag: '"deadbeef"' })) } });
    expect(wrong.status).toBe(409);
    // Out of order is fine: the server sorts.
    const done = await p.call(user, `/media/${res.body.mediaId}/complete`, { body: { parts: etags.reverse() } });
    expect(done.status).toBe(202);
    const media = await waitForStatus(p, user, res.body.mediaId, ['READY', 'FAILED', 'REJECTED']);
    expect(media.status).toBe('READY');
    expect((await p.storage.head(p.config.S3_MEDIA_BUCKET, res.body.storageKey))?.size).toBe(body.length);
  });

  it('rejects content that does not match its declared type and deletes the object', async () => {
    const user = uniqueUser('carol');
    const body = bytesOfType(pngHeader, 3000);
    const res = await p.call(user, '/media/upload-session', {
      body: { fileName: 'fake.jpg', fileType: 'image/jpeg', fileSize: body.length, mediaType: 'POST_IMAGE' },
    });
    expect((await putTo(res.body.upload, body)).status).toBe(200);
    await p.call(user, `/media/${res.body.mediaId}/complete`, { body: {} });
    const media = await waitForStatus(p, user, res.body.mediaId, ['READY', 'FAILED', 'REJECTED']);
    expect(media.status).toBe('REJECTED');
    expect(media.failureReason).toMatch(/^CONTENT_MISMATCH/);
    expect(await objectExists(p, p.config.S3_INCOMING_BUCKET, res.body.storageKey)).toBe(false);
    expect(await objectExists(p, p.config.S3_MEDIA_BUCKET, res.body.storageKey)).toBe(false);
  });

  it('costs Temporal no workflow task until complete: the workflow is started delayed to the deadline, and complete ends the delay', async () => {
    const user = uniqueUser('delayed');
    const body = await realJpeg(2048);
    const before = Date.now();
    const res = await p.call(user, '/media/upload-session', { body: { fileName: 'd.jpg', fileType: 'image/jpeg', fileSize: body.length, mediaType: 'POST_IMAGE' } });
    expect(res.status).toBe(201);
    const handle = p.temporal.workflow.getHandle(`media-upload/${res.body.mediaId}`);
    // Recorded and running, its first workflow task held back until the confirmation deadline.
    const started = await handle.fetchHistory();
    expect(started.events?.map((e) => eventTypeName(e.eventType))).toEqual(['WorkflowExecutionStarted']);
    const backoff = started.events![0]!.workflowExecutionStartedEventAttributes!.firstWorkflowTaskBackoff!;
    const deadline = Date.parse(res.body.expiresAt) + p.config.CONFIRM_GRACE_SECONDS * 1000;
    expect(Number(backoff.seconds)).toBeGreaterThan((deadline - Date.now()) / 1000 - 60);
    expect(Number(backoff.seconds)).toBeLessThanOrEqual((deadline - before) / 1000);
    const { runId } = await handle.describe();

    // complete's Signal-With-Start reaches the same run and ends the delay: READY long before the deadline.
    expect((await putTo(res.body.upload, body)).status).toBe(200);
    expect((await p.call(user, `/media/${res.body.mediaId}/complete`, { body: {} })).status).toBe(202);
    expect((await waitForStatus(p, user, res.body.mediaId, ['READY', 'FAILED', 'REJECTED'])).status).toBe('READY');
    // The run the session started did the work (no other run took its place).
    expect((await handle.describe()).runId).toBe(runId);
    const events = await eventNames(handle);
    expect(events.slice(0, 3)).toEqual(['WorkflowExecutionStarted', 'WorkflowExecutionSignaled', 'WorkflowTaskScheduled']);
    // The confirmation was there when the workflow first ran: it never started a deadline timer.
    expect(events).not.toContain('TimerStarted');
  });

  it('never starts a second run from complete: a session whose workflow has closed answers 409', async () => {
    const user = uniqueUser('closed');
    const body = await realJpeg(2048);
    const res = await p.call(user, '/media/upload-session', { body: { fileName: 'e.jpg', fileType: 'image/jpeg', fileSize: body.length, mediaType: 'POST_IMAGE' } });
    const workflowId = `media-upload/${res.body.mediaId}`;
    // A workflow that closed without updating its row (an operator's terminate).
    await p.temporal.workflow.getHandle(workflowId).terminate('closed by the test');
    expect((await putTo(res.body.upload, body)).status).toBe(200);
    const done = await p.call(user, `/media/${res.body.mediaId}/complete`, { body: {} });
    expect({ status: done.status, code: done.body.error?.code }).toEqual({ status: 409, code: 'INVALID_STATE' });
    const described = await p.temporal.workflow.getHandle(workflowId).describe();
    expect(described.status.name).toBe('TERMINATED');
    // What the terminated workflow's compensation would have done: nothing stored, the row ended.
    await p.storage.delete(p.config.S3_INCOMING_BUCKET, res.body.storageKey);
    await p.media.setStatus(res.body.mediaId, 'FAILED', 'terminated in the test');
  });

  it('cancels an upload in flight and leaves nothing in either bucket', async () => {
    const user = uniqueUser('dave');
    const body = await realJpeg(7 * MiB);
    const res = await p.call(user, '/media/upload-session', { body: { fileName: 'c.jpg', fileType: 'image/jpeg', fileSize: body.length, mediaType: 'POST_IMAGE' } });
    const upload = res.body.upload;
    expect((await putTo(upload.parts[0], body.subarray(0, upload.partSize))).status).toBe(200);
    const del = await p.call(user, `/media/${res.body.mediaId}`, { method: 'DELETE' });
    expect(del.status).toBe(202);
    const media = await waitForStatus(p, user, res.body.mediaId, ['CANCELLED']);
    expect(media.failureReason).toBe('CANCELLED_BY_USER');
    expect(await p.storage.listParts(p.config.S3_INCOMING_BUCKET, res.body.storageKey, upload.uploadId)).toBeUndefined();
    expect(await objectExists(p, p.config.S3_INCOMING_BUCKET, res.body.storageKey)).toBe(false);
    const after = await p.call(user, `/media/${res.body.mediaId}/complete`, { body: {} });
    expect(after.status).toBe(409);
    expect(after.body.error.code).toBe('INVALID_STATE');
  });

  it('answers 404 to another user on every endpoint of a media', async () => {
    const owner = uniqueUser('erin');
    const other = uniqueUser('frank');
    const res = await p.call(owner, '/media/upload-session', { body: { fileName: 'a.png', fileType: 'image/png', fileSize: 100, mediaType: 'POST_IMAGE' } });
    const id = res.body.mediaId;
    const attempts = [
      p.call(other, `/media/${id}`),
      p.call(other, `/media/${id}/complete`, { body: {} }),
      p.call(other, `/media/${id}/parts`),
      p.call(other, `/media/${id}/parts`, { body: { partNumbers: [1] } }),
      p.call(other, `/media/${id}/events`),
      p.call(other, `/media/${id}`, { method: 'DELETE' }),
    ];
    for (const r of await Promise.all(attempts)) {
      expect(r.status).toBe(404);
      expect(r.body.error.code).toBe('MEDIA_NOT_FOUND');
    }
    expect((await p.call(other, '/media')).body.items).toEqual([]);
    expect((await p.call(owner, `/media/${id}`)).body.status).toBe('AWAITING_UPLOAD');
  });

  it('treats a second confirmation as harmless', async () => {
    const user = uniqueUser('gina');
    const body = await realJpeg(1000);
    const res = await p.call(user, '/media/upload-session', { body: { fileName: 'd.jpg', fileType: 'image/jpeg', fileSize: body.length, mediaType: 'POST_IMAGE' } });
    const early = await p.call(user, `/media/${res.body.mediaId}/complete`, { body: {} });
    expect(early.status).toBe(409);
    expect(early.body.error.code).toBe('UPLOAD_NOT_FOUND');
    await putTo(res.body.upload, body);
    const [a, b] = await Promise.all([
      p.call(user, `/media/${res.body.mediaId}/complete`, { body: {} }),
      p.call(user, `/media/${res.body.mediaId}/complete`, { body: {} }),
    ]);
    expect([a.status, b.status]).toEqual([202, 202]);
    expect((await waitForStatus(p, user, res.body.mediaId, ['READY', 'FAILED'])).status).toBe('READY');
    expect((await p.call(user, `/media/${res.body.mediaId}/complete`, { body: {} })).status).toBe(202);
  });

  it('returns the same session for the same Idempotency-Key and starts one workflow', async () => {
    const user = uniqueUser('hank');
    const req = { body: { fileName: 'i.jpg', fileType: 'image/jpeg', fileSize: 500, mediaType: 'POST_IMAGE' }, headers: { 'idempotency-key': 'key-1' } };
    const [a, b] = await Promise.all([p.call(user, '/media/upload-session', req), p.call(user, '/media/upload-session', req)]);
    expect(a.status).toBe(201);
    expect(b.status).toBe(201);
    expect(b.body.mediaId).toBe(a.body.mediaId);
    expect((await p.call(user, '/media')).body.items).toHaveLength(1);
    const conflict = await p.call(user, '/media/upload-session', { ...req, body: { ...req.body, fileSize: 501 } });
    expect(conflict.status).toBe(409);
    expect(conflict.body.error.code).toBe('IDEMPOTENCY_CONFLICT');
  });

  it('creates a batch with per-item errors and counts its items by status', async () => {
    const user = uniqueUser('ivy');
    const files = [
      { fileName: 'a.jpg', fileType: 'image/jpeg', fileSize: 800, mediaType: 'POST_IMAGE' },
      { fileName: 'b.exe', fileType: 'application/x-msdownload', fileSize: 800, mediaType: 'POST_IMAGE' },
      { fileName: 'c.jpg', fileType: 'image/jpeg', fileSize: 800, mediaType: 'POST_IMAGE' },
    ];
    const res = await p.call(user, '/media/upload-sessions', { body: { files } });
    expect(res.status).toBe(201);
    expect(res.body.items[1].error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    const first = res.body.items[0];
    await putTo(first.upload, await realJpeg(800));
    await p.call(user, `/media/${first.mediaId}/complete`, { body: {} });
    await waitForStatus(p, user, first.mediaId, ['READY']);
    const batch = await p.call(user, `/batches/${res.body.batchId}`);
    expect(batch.status).toBe(200);
    expect(batch.body.counts.READY).toBe(1);
    expect(batch.body.counts.AWAITING_UPLOAD).toBe(1);
    expect(batch.body.items).toHaveLength(2);
    expect((await p.call(uniqueUser('other'), `/batches/${res.body.batchId}`)).status).toBe(404);
  });

  it('streams status changes over SSE until the media is terminal', async () => {
    const user = uniqueUser('jack');
    const body = await realJpeg(1200);
    const res = await p.call(user, '/media/upload-session', { body: { fileName: 'e.jpg', fileType: 'image/jpeg', fileSize: body.length, mediaType: 'POST_IMAGE' } });
    const stream = await fetch(`${p.api.url}/api/v1/media/${res.body.mediaId}/events`, { headers: { authorization: `Bearer ${await p.token(user)}` } });
    expect(stream.headers.get('content-type')).toContain('text/event-stream');
    await putTo(res.body.upload, body);
    await p.call(user, `/media/${res.body.mediaId}/complete`, { body: {} });
    const text = await stream.text(); // ends when the media is terminal
    const statuses = [...text.matchAll(/"status":"(\w+)"/g)].map((m) => m[1]);
    expect(statuses[0]).toBe('AWAITING_UPLOAD');
    expect(statuses[statuses.length - 1]).toBe('READY');
  });

  it('answers bad input with stable error codes and the right status', async () => {
    const user = uniqueUser('kim');
    const cases: Array<[unknown, number, string]> = [
      [{ fileName: 'a.gif', fileType: 'image/gif', fileSize: 10, mediaType: 'PROFILE_IMAGE' }, 415, 'UNSUPPORTED_MEDIA_TYPE'],
      [{ fileName: 'a.jpg', fileType: 'image/jpeg', fileSize: 6 * MiB, mediaType: 'PROFILE_IMAGE' }, 413, 'FILE_TOO_LARGE'],
      // Within POST_VIDEO's 5 GiB, above the scanner's 1000 MiB: refused now, not after the upload.
      [{ fileName: 'a.mp4', fileType: 'video/mp4', fileSize: 1001 * MiB, mediaType: 'POST_VIDEO' }, 413, 'FILE_TOO_LARGE'],
      [{ fileName: 'a.jpg', fileType: 'image/jpeg', fileSize: 0, mediaType: 'POST_IMAGE' }, 400, 'VALIDATION_FAILED'],
      [{ fileName: '../../etc/passwd', fileType: 'image/jpeg', fileSize: 10, mediaType: 'POST_IMAGE' }, 400, 'VALIDATION_FAILED'],
      [{ fileName: 'a.jpg', fileType: 'image/jpeg', fileSize: 10, mediaType: 'BANNER' }, 400, 'VALIDATION_FAILED'],
      ['{"fileName": ', 400, 'INVALID_JSON'],
    ];
    for (const [body, status, code] of cases) {
      const res = await p.call(user, '/media/upload-session', { body });
      expect({ status: res.status, code: res.body.error?.code }).toEqual({ status, code });
      expect(JSON.stringify(res.body)).not.toMatch(/at .*\.ts:\d+/);
    }
    const noToken = await fetch(`${p.api.url}/api/v1/media`);
    expect(noToken.status).toBe(401);
    expect(((await noToken.json()) as any).error.code).toBe('UNAUTHENTICATED');
  });
});

describe('sessions without the start delay (UPLOAD_WORKFLOW_START_DELAY=false, for rolling upgrades)', () => {
  let p: Platform;
  beforeAll(async () => {
    p = await startPlatform({ UPLOAD_WORKFLOW_START_DELAY: 'false' }, { videoWorker: false });
  });
  afterAll(() => p?.stop());

  it('runs the first workflow task at once, so a plain signal (a pod of an earlier release) confirms at once', async () => {
    const user = uniqueUser('undelayed');
    const body = await realJpeg(2048);
    const res = await p.call(user, '/media/upload-session', { body: { fileName: 'u.jpg', fileType: 'image/jpeg', fileSize: body.length, mediaType: 'POST_IMAGE' } });
    expect(res.status).toBe(201);
    const handle = p.temporal.workflow.getHandle(`media-upload/${res.body.mediaId}`);
    const started = (await handle.fetchHistory()).events!;
    const backoff = started[0]!.workflowExecutionStartedEventAttributes!.firstWorkflowTaskBackoff;
    expect(Number(backoff?.seconds ?? 0) + (backoff?.nanos ?? 0)).toBe(0);
    expect(started.map((e) => eventTypeName(e.eventType))).toContain('WorkflowTaskScheduled');
    // Before any confirmation, the workflow runs and waits on its deadline timer, as before the delay.
    await until('the deadline timer', async () => (await eventNames(handle)).includes('TimerStarted') || undefined);
    expect((await putTo(res.body.upload, body)).status).toBe(200);
    // What `complete` of an earlier release sends: a plain signal, acted on at once (the deadline is minutes away).
    await handle.signal(uploadConfirmedSignal, { source: 'client' });
    expect((await waitForStatus(p, user, res.body.mediaId, ['READY', 'FAILED', 'REJECTED'])).status).toBe('READY');
  });
});

describe('upload deadlines', () => {
  const URL_TTL_SECONDS = 5;
  let p: Platform;
  beforeAll(async () => {
    // Short, but long enough that a 5 MiB part reaches S3 before its URL expires on a busy CI machine.
    p = await startPlatform({ UPLOAD_URL_TTL_SECONDS: String(URL_TTL_SECONDS), PROFILE_IMAGE_URL_TTL_SECONDS: String(URL_TTL_SECONDS), CONFIRM_GRACE_SECONDS: '1', MULTIPART_THRESHOLD_BYTES: String(6 * MiB), PART_SIZE_BYTES: String(5 * MiB) });
  });
  afterAll(() => p?.stop());

  it('expires an unconfirmed multipart upload: aborted, nothing stored', async () => {
    const user = uniqueUser('lee');
    const body = await realJpeg(7 * MiB);
    const res = await p.call(user, '/media/upload-session', { body: { fileName: 'x.jpg', fileType: 'image/jpeg', fileSize: body.length, mediaType: 'POST_IMAGE' } });
    expect((await putTo(res.body.upload.parts[0], body.subarray(0, 5 * MiB))).status).toBe(200);
    const media = await waitForStatus(p, user, res.body.mediaId, ['EXPIRED', 'READY', 'FAILED'], 30_000);
    expect(media.status).toBe('EXPIRED');
    // Its first workflow task ran at the deadline and waited for nothing: no timer.
    const events = await eventNames(p.temporal.workflow.getHandle(`media-upload/${res.body.mediaId}`));
    expect(events[0]).toBe('WorkflowExecutionStarted');
    expect(events.filter((e) => e.startsWith('Timer'))).toEqual([]);
    expect(await p.storage.listParts(p.config.S3_INCOMING_BUCKET, res.body.storageKey, res.body.upload.uploadId)).toBeUndefined();
    expect(await objectExists(p, p.config.S3_INCOMING_BUCKET, res.body.storageKey)).toBe(false);
  });

  it('finishes an upload whose client never confirmed but whose bytes are all there', async () => {
    const user = uniqueUser('max');
    const body = await realJpeg(900);
    const res = await p.call(user, '/media/upload-session', { body: { fileName: 'y.jpg', fileType: 'image/jpeg', fileSize: body.length, mediaType: 'POST_IMAGE' } });
    expect((await putTo(res.body.upload, body)).status).toBe(200);
    const media = await waitForStatus(p, user, res.body.mediaId, ['EXPIRED', 'READY', 'FAILED'], 30_000);
    expect(media.status).toBe('READY');
  });

  it("does not finish at the deadline a multipart upload whose complete was refused for a part's bytes, unless the client sent those bytes again", async () => {
    const body = await realJpeg(7 * MiB);
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    // Two uploads side by side: the client walks away after the refusal; or it sends part 2
    // again (the bytes it named), then walks away.
    const run = async (user: string, resend: boolean) => {
      const res = await p.call(user, '/media/upload-session', { body: { fileName: 'r.jpg', fileType: 'image/jpeg', fileSize: body.length, mediaType: 'POST_IMAGE' } });
      const [one, two] = res.body.upload.parts as Array<{ url: string; headers: Record<string, string> }>;
      const put = async (part: typeof one, bytes: Buffer) => {
        const r = await putTo(part!, bytes);
        expect(r.status).toBe(200);
        return r.headers.get('etag')!;
      };
      const etags = [await put(one, body.subarray(0, 5 * MiB)), await put(two, body.subarray(5 * MiB))];
      // Another copy of part 2, in a later second (S3 dates parts to the second): other bytes.
      await new Promise((r) => setTimeout(r, 1100));
      await put(two, Buffer.alloc(body.length - 5 * MiB, 0x5a));
      const refused = await p.call(user, `/media/${res.body.mediaId}/complete`, { body: { parts: etags.map((etag, i) => ({ partNumber: i + 1, etag })) } });
      expect(refused.status).toBe(409);
      expect(refused.body.error).toMatchObject({ code: 'PARTS_MISMATCH', details: { wrongEtag: [2] } });
      if (resend) {
        await new Promise((r) => setTimeout(r, 1100));
        expect(await put(two, body.subarray(5 * MiB))).toBe(etags[1]);
      }
      return { user, mediaId: res.body.mediaId as string, storageKey: res.body.storageKey as string };
    };
    const [walkedAway, resent] = await Promise.all([run(uniqueUser('refused'), false), run(uniqueUser('resent'), true)]);
    // Before REFUSED_PART_CLAIMS the first was assembled at the deadline from the bytes its
    // client had refused, and published.
    const [a, b] = await Promise.all([walkedAway, resent].map((u) => waitForStatus(p, u.user, u.mediaId, ['EXPIRED', 'READY', 'FAILED', 'REJECTED'], 30_000)));
    expect(a!.status).toBe('EXPIRED');
    expect(await p.storage.head(p.config.S3_MEDIA_BUCKET, walkedAway.storageKey)).toBeUndefined();
    expect(await objectExists(p, p.config.S3_INCOMING_BUCKET, walkedAway.storageKey)).toBe(false);
    expect(b!.status).toBe('READY');
    expect(sha(await p.storage.getBuffer(p.config.S3_MEDIA_BUCKET, resent.storageKey))).toBe(sha(body));
  });

  it('remembers a stale ETag even when the same complete was refused for a missing part', async () => {
    const body = await realJpeg(7 * MiB);
    const user = uniqueUser('stale-and-missing');
    const res = await p.call(user, '/media/upload-session', { body: { fileName: 's.jpg', fileType: 'image/jpeg', fileSize: body.length, mediaType: 'POST_IMAGE' } });
    const [one, two] = res.body.upload.parts as Array<{ url: string; headers: Record<string, string> }>;
    const named = (await putTo(one!, body.subarray(0, 5 * MiB))).headers.get('etag')!;
    await new Promise((r) => setTimeout(r, 1100));
    expect((await putTo(one!, Buffer.alloc(5 * MiB, 0x5a))).status).toBe(200);
    // Part 2 not sent yet, part 1 named by its older copy: both are said.
    const refused = await p.call(user, `/media/${res.body.mediaId}/complete`, { body: { parts: [{ partNumber: 1, etag: named }] } });
    expect(refused.status).toBe(409);
    expect(refused.body.error).toMatchObject({ code: 'PARTS_MISMATCH', details: { missing: [2], wrongEtag: [1] } });
    // Then the rest is sent and the client walks away: not assembled from the other part 1.
    expect((await putTo(two!, body.subarray(5 * MiB))).status).toBe(200);
    expect((await waitForStatus(p, user, res.body.mediaId, ['EXPIRED', 'READY', 'FAILED', 'REJECTED'], 30_000)).status).toBe('EXPIRED');
    expect(await p.storage.head(p.config.S3_MEDIA_BUCKET, res.body.storageKey)).toBeUndefined();
  });

  it('refuses a presigned URL used after it expired', async () => {
    const user = uniqueUser('ned');
    const body = await realJpeg(900);
    const res = await p.call(user, '/media/upload-session', { body: { fileName: 'z.jpg', fileType: 'image/jpeg', fileSize: body.length, mediaType: 'POST_IMAGE' } });
    await new Promise((r) => setTimeout(r, (URL_TTL_SECONDS + 1) * 1000));
    expect((await putTo(res.body.upload, body)).status).toBe(403);
  });
});
