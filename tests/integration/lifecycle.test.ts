import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { derivedPrefix } from '../../services/shared/media-types';
import { cleanupSettings, ensureCleanupSchedule, PAUSED_BY_CONFIG } from '../../services/worker/cleanup-schedule';
import type { CleanupReport } from '../../workflows/media-lifecycle.workflow';
import { until } from '../../devstack/poll';
import { endpointId, webhookWorkflowId } from '../../activities/webhooks';
import { DEFAULT_TENANT } from '../../services/api/auth';
import { ProtectMediaBeforeAttachments1764700000000 } from '../../services/shared/db/migrations/1764700000000-protect-media-before-attachments';
import { jpegWithExif } from '../fixtures/media';
import { startPlatform, uniqueUser, uploadFile, waitForStatus, type Platform } from '../harness/platform';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The few lines the README shows a receiver: check the HMAC over `<t>.<body>` in constant time. */
function verifySignature(secret: string, header: string, body: string): boolean {
  const { t, v1 } = Object.fromEntries(header.split(',').map((kv) => kv.split('=') as [string, string]));
  const expected = createHmac('sha256', secret).update(`${t}.${body}`).digest('hex');
  return !!v1 && v1.length === expected.length && timingSafeEqual(Buffer.from(v1), Buffer.from(expected));
}

interface Received {
  headers: IncomingMessage['headers'];
  body: string;
  answered: number;
}

/** A webhook receiver on loopback that answers `answers[n]` to the n-th delivery of each event id (then 200). */
async function startReceiver(answers: number[] = []): Promise<{ url: string; received: Received[]; server: Server }> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const earlier = received.filter((r) => r.headers['webhook-id'] === req.headers['webhook-id']).length;
      const answered = answers[earlier] ?? 200;
      received.push({ headers: req.headers, body, answered });
      res.writeHead(answered).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`, received, server };
}

async function uploadToReady(p: Platform, user: string, mediaType = 'POST_IMAGE') {
  const session = await uploadFile(p, user, await jpegWithExif(400, 300), 'image/jpeg', mediaType, 'photo.jpg');
  const media = await waitForStatus(p, user, session.mediaId, ['READY', 'REJECTED', 'FAILED']);
  expect(media.status).toBe('READY');
  return { ...session, media };
}

async function storedKeys(p: Platform, mediaId: string, storageKey: string) {
  const { S3_INCOMING_BUCKET: incoming, S3_MEDIA_BUCKET: mediaBucket } = p.config;
  return {
    incoming: !!(await p.storage.head(incoming, storageKey)),
    original: !!(await p.storage.head(mediaBucket, storageKey)),
    derived: (await p.storage.listKeys(mediaBucket, derivedPrefix(mediaId))).length,
    renditionRows: (await p.media.renditions(mediaId)).length,
  };
}
const nothingStored = { incoming: false, original: false, derived: 0, renditionRows: 0 };

describe('media lifecycle on the real stack', () => {
  const secret = 'whsec-test-0123456789abcdef';
  let p: Platform;
  let good: Awaited<ReturnType<typeof startReceiver>>;
  let flaky: Awaited<ReturnType<typeof startReceiver>>;
  let gone: Awaited<ReturnType<typeof startReceiver>>;
  const scheduleId = `media-cleanup-test-${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    good = await startReceiver();
    flaky = await startReceiver([500, 503]);
    gone = await startReceiver([410, 410, 410]);
    p = await startPlatform({
      DOWNLOAD_URL_TTL_SECONDS: '3',
      WEBHOOK_ENDPOINTS: JSON.stringify([
        { url: good.url, secret },
        { url: flaky.url, secret },
        { url: gone.url, secret },
      ]),
      // The worker creates this schedule at start; the test triggers it instead of waiting an hour.
      CLEANUP_INTERVAL: '1h',
      CLEANUP_SCHEDULE_ID: scheduleId,
      CLEANUP_UNATTACHED_AFTER_SECONDS: '4',
    });
  });
  afterAll(async () => {
    await p?.temporal.schedule.getHandle(scheduleId).delete().catch(() => undefined);
    await p?.stop();
    good?.server.close();
    flaky?.server.close();
    gone?.server.close();
  });

  describe('attach and detach', () => {
    it('attaches READY media to one owner at a time, with clear errors otherwise', async () => {
      const user = uniqueUser('attach');
      const { mediaId } = await uploadToReady(p, user);
      const post = { ownerType: 'post', ownerId: `post-${randomUUID()}` };

      const attached = await p.call(user, `/media/${mediaId}/attach`, { body: post });
      expect(attached.status).toBe(200);
      expect(attached.body.attachment).toMatchObject(post);
      // The same owner again is the same request: no error, nothing changes.
      expect((await p.call(user, `/media/${mediaId}/attach`, { body: post })).status).toBe(200);

      const other = await p.call(user, `/media/${mediaId}/attach`, { body: { ownerType: 'post', ownerId: 'another-post' } });
      expect(other.status).toBe(409);
      expect(other.body.error.code).toBe('ALREADY_ATTACHED');

      // Another user's media is not found, never forbidden.
      const stranger = await p.call(uniqueUser('stranger'), `/media/${mediaId}/attach`, { body: post });
      expect(stranger.status).toBe(404);
      expect(stranger.body.error.code).toBe('MEDIA_NOT_FOUND');

      const bad = await p.call(user, `/media/${mediaId}/attach`, { body: { ownerType: 'Post Type', ownerId: '' } });
      expect(bad.status).toBe(400);
      expect(bad.body.error.code).toBe('VALIDATION_FAILED');

      const listed = await p.call(user, `/media?ownerType=post&ownerId=${post.ownerId}`);
      expect(listed.body.items.map((m: { mediaId: string }) => m.mediaId)).toEqual([mediaId]);

      const detached = await p.call(user, `/media/${mediaId}/attach`, { method: 'DELETE' });
      expect(detached.status).toBe(200);
      expect(detached.body.attachment).toBeNull();
      expect((await p.call(user, `/media?ownerType=post&ownerId=${post.ownerId}`)).body.items).toEqual([]);
      // Once detached it may go elsewhere.
      expect((await p.call(user, `/media/${mediaId}/attach`, { body: { ownerType: 'post', ownerId: 'another-post' } })).status).toBe(200);
    });

    it('refuses media that is not READY', async () => {
      const user = uniqueUser('notready');
      const session = await p.call(user, '/media/upload-session', { body: { fileName: 'a.jpg', fileType: 'image/jpeg', fileSize: 1000, mediaType: 'POST_IMAGE' } });
      const res = await p.call(user, `/media/${session.body.mediaId}/attach`, { body: { ownerType: 'post', ownerId: 'p1' } });
      expect(res.status).toBe(409);
      expect(res.body.error).toMatchObject({ code: 'MEDIA_NOT_READY', details: { status: 'AWAITING_UPLOAD' } });
      await p.call(user, `/media/${session.body.mediaId}`, { method: 'DELETE' });
    });

    it('replaces the previous profile image: exactly one stays, the old one leaves nothing behind', async () => {
      const user = uniqueUser('profile');
      const profile = { ownerType: 'profile', ownerId: user };
      const first = await uploadToReady(p, user, 'PROFILE_IMAGE');
      const second = await uploadToReady(p, user, 'PROFILE_IMAGE');
      expect((await storedKeys(p, first.mediaId, first.storageKey)).derived).toBeGreaterThan(0);

      expect((await p.call(user, `/media/${first.mediaId}/attach`, { body: profile })).status).toBe(200);
      const replaced = await p.call(user, `/media/${second.mediaId}/attach`, { body: profile });
      expect(replaced.status).toBe(200);
      expect(replaced.body.replaced).toEqual([first.mediaId]);

      await waitForStatus(p, user, first.mediaId, ['DELETED']);
      expect(await storedKeys(p, first.mediaId, first.storageKey)).toEqual(nothingStored);

      // Owners are each user's own names: another user "replacing" this profile touches nothing of it.
      const intruder = uniqueUser('intruder');
      const theirs = await uploadToReady(p, intruder, 'PROFILE_IMAGE');
      const attempt = await p.call(intruder, `/media/${theirs.mediaId}/attach`, { body: profile });
      expect(attempt.status).toBe(200);
      expect(attempt.body.replaced).toEqual([]);
      expect((await p.call(user, `/media/${second.mediaId}`)).body).toMatchObject({ status: 'READY', attachment: profile });
      const attached = await p.call(user, `/media?ownerType=profile&ownerId=${user}`);
      expect(attached.body.items.map((m: { mediaId: string }) => m.mediaId)).toEqual([second.mediaId]);
      expect((await storedKeys(p, second.mediaId, second.storageKey)).original).toBe(true);
    });

    it('DELETE on READY media removes the original and every derived object', async () => {
      const user = uniqueUser('delete');
      const { mediaId, storageKey } = await uploadToReady(p, user);
      expect((await p.call(user, `/media/${mediaId}`, { method: 'DELETE' })).status).toBe(202);
      await waitForStatus(p, user, mediaId, ['DELETED']);
      expect(await storedKeys(p, mediaId, storageKey)).toEqual(nothingStored);
    });
  });

  describe('download URLs', () => {
    it('gives the owner a short-lived presigned GET; others get 404; it stops working after expiry', async () => {
      const user = uniqueUser('download');
      const { mediaId, media } = await uploadToReady(p, user);
      const res = await p.call(user, `/media/${mediaId}/download-url`);
      expect(res.status).toBe(200);
      expect(res.body.url).toContain('X-Amz-Expires=3');
      const original = await fetch(res.body.url);
      expect(original.status).toBe(200);
      // The published original: the upload without its location and description (README), so at most its size.
      const bytes = Buffer.from(await original.arrayBuffer());
      expect(bytes.subarray(0, 2).toString('hex')).toBe('ffd8');
      expect(bytes.length).toBeLessThanOrEqual(media.fileSize);

      const variant = media.thumbnails[0].variant as string;
      const thumb = await p.call(user, `/media/${mediaId}/download-url?variant=${encodeURIComponent(variant)}`);
      expect(thumb.status).toBe(200);
      expect((await fetch(thumb.body.url)).status).toBe(200);

      expect((await p.call(user, `/media/${mediaId}/download-url?variant=9999.webp`)).body.error.code).toBe('VARIANT_NOT_FOUND');
      const stranger = await p.call(uniqueUser('stranger'), `/media/${mediaId}/download-url`);
      expect(stranger.status).toBe(404);

      await sleep(4_000);
      expect((await fetch(res.body.url)).status).toBe(403);
    });
  });

  describe('webhooks', () => {
    it('delivers a signed media.ready; a receiver failing twice gets the same event id until it succeeds once', async () => {
      const user = uniqueUser('hooks');
      const { mediaId } = await uploadToReady(p, user);
      const eventId = `${mediaId}:media.ready`;
      const forEvent = (r: Received) => r.headers['webhook-id'] === eventId;

      const delivered = await until('media.ready at the good receiver', async () => good.received.find(forEvent));
      const event = JSON.parse(delivered.body);
      // Whose media it is: the token carried no tenant claim, so the default tenant.
      expect(event).toMatchObject({ id: eventId, type: 'media.ready', data: { media: { mediaId, status: 'READY' }, tenantId: DEFAULT_TENANT, userId: user } });
      expect(verifySignature(secret, String(delivered.headers['webhook-signature']), delivered.body)).toBe(true);
      expect(verifySignature('another-secret-0123456789', String(delivered.headers['webhook-signature']), delivered.body)).toBe(false);
      expect(verifySignature(secret, String(delivered.headers['webhook-signature']), delivered.body.replace('READY', 'FAILED'))).toBe(false);

      const attempts = await until('three attempts at the flaky receiver', async () => {
        const mine = flaky.received.filter(forEvent);
        return mine.some((r) => r.answered === 200) ? mine : undefined;
      });
      expect(attempts.map((r) => r.answered)).toEqual([500, 503, 200]);
      expect(new Set(attempts.map((r) => r.headers['webhook-id']))).toEqual(new Set([eventId]));
      expect(attempts.every((r) => verifySignature(secret, String(r.headers['webhook-signature']), r.body))).toBe(true);
      // 410 Gone ends the delivery at once, and its workflow fails where operators can find it.
      const goneRun = p.temporal.workflow.getHandle(webhookWorkflowId(endpointId(gone.url), eventId));
      await expect(goneRun.result()).rejects.toThrow();
      expect(gone.received.filter(forEvent).map((r) => r.answered)).toEqual([410]);
      // The media never waited for the receivers.
      expect((await p.call(user, `/media/${mediaId}`)).body.status).toBe('READY');

      // Deleting publishes media.deleted too.
      await p.call(user, `/media/${mediaId}`, { method: 'DELETE' });
      const deleted = await until('media.deleted', async () => good.received.find((r) => r.headers['webhook-id'] === `${mediaId}:media.deleted`));
      expect(JSON.parse(deleted.body).data.media.status).toBe('DELETED');
      // Exactly one successful delivery of media.ready per receiver, however often statuses were written.
      expect(good.received.filter(forEvent)).toHaveLength(1);
    });
  });

  describe('cleanup schedule and orphan sweep', () => {
    it('exists after worker start, and a second worker start leaves one schedule with the same settings', async () => {
      // What every further light worker does at start.
      expect(await ensureCleanupSchedule(p.temporal, p.config)).toBe(scheduleId);
      const described = await p.temporal.schedule.getHandle(scheduleId).describe();
      expect(described.action).toMatchObject({ type: 'startWorkflow', workflowType: 'MediaCleanupWorkflow', taskQueue: p.config.TASK_QUEUE_LIGHT, args: [cleanupSettings(p.config)] });
      expect(described.spec.intervals).toEqual([expect.objectContaining({ every: 3_600_000 })]);

      // CLEANUP_INTERVAL=off pauses the schedule that exists; an interval again resumes it.
      expect(await ensureCleanupSchedule(p.temporal, { ...p.config, CLEANUP_INTERVAL: 'off' })).toBeUndefined();
      expect((await p.temporal.schedule.getHandle(scheduleId).describe()).state).toMatchObject({ paused: true, note: PAUSED_BY_CONFIG });
      await ensureCleanupSchedule(p.temporal, p.config);
      expect((await p.temporal.schedule.getHandle(scheduleId).describe()).state.paused).toBe(false);
    });

    it('deletes unattached media past its age and keeps attached media', async () => {
      const user = uniqueUser('cleanup');
      const unattached = await uploadToReady(p, user);
      const attached = await uploadToReady(p, user);
      expect((await p.call(user, `/media/${attached.mediaId}/attach`, { body: { ownerType: 'post', ownerId: 'kept' } })).status).toBe(200);
      // Both are older than CLEANUP_UNATTACHED_AFTER_SECONDS=4 after this.
      await sleep(5_000);

      // Two runs at once: the scheduled one and a direct one with the same settings.
      const [{ now: startedAt }] = (await p.media.dataSource.query('SELECT now()')) as [{ now: Date }];
      const schedule = p.temporal.schedule.getHandle(scheduleId);
      const before = (await schedule.describe()).info.recentActions.length;
      await schedule.trigger();
      const direct = p.temporal.workflow.execute('MediaCleanupWorkflow', {
        taskQueue: p.config.TASK_QUEUE_LIGHT,
        workflowId: `cleanup-test-${randomUUID()}`,
        args: [cleanupSettings(p.config)],
      }) as Promise<CleanupReport>;
      const run = await until('a triggered cleanup run', async () => (await schedule.describe()).info.recentActions[before]?.action);
      const reports: CleanupReport[] = [await p.temporal.workflow.getHandle(run.workflow.workflowId, run.workflow.firstExecutionRunId).result(), await direct];
      const [{ count }] = (await p.media.dataSource.query(`SELECT count(*)::int AS count FROM media WHERE status = 'DELETED' AND updated_at >= $1`, [startedAt])) as [{ count: number }];
      // Every deletion is reported once, by the run that made it, however the two interleaved.
      expect(reports[0]!.unattachedDeleted + reports[1]!.unattachedDeleted).toBe(count);
      expect(count).toBeGreaterThanOrEqual(1);

      expect((await p.call(user, `/media/${unattached.mediaId}`)).body.status).toBe('DELETED');
      expect(await storedKeys(p, unattached.mediaId, unattached.storageKey)).toEqual(nothingStored);
      expect((await p.call(user, `/media/${attached.mediaId}`)).body.status).toBe('READY');
      expect((await storedKeys(p, attached.mediaId, attached.storageKey)).original).toBe(true);
    });

    it('sweeps a stray incoming object and an abandoned multipart upload, keeping a live upload', async () => {
      const { S3_INCOMING_BUCKET: incoming } = p.config;
      const strayKey = `post_image/nobody/${Date.now()}-${randomUUID()}.jpg`;
      await p.storage.put(incoming, strayKey, await jpegWithExif(64, 48), 'image/jpeg');
      const abandonedKey = `post_video/nobody/${Date.now()}-${randomUUID()}.mp4`;
      const abandonedUploadId = await p.storage.createMultipartUpload(incoming, abandonedKey, 'video/mp4');

      // A live upload: bytes uploaded, not yet confirmed. Its workflow still owns them.
      const user = uniqueUser('sweep');
      const bytes = await jpegWithExif(64, 48);
      const live = await p.call(user, '/media/upload-session', { body: { fileName: 'l.jpg', fileType: 'image/jpeg', fileSize: bytes.length, mediaType: 'POST_IMAGE' } });
      expect((await fetch(live.body.upload.url, { method: 'PUT', body: bytes, headers: live.body.upload.headers })).status).toBe(200);
      await sleep(2_000);

      const report: CleanupReport = await p.temporal.workflow.execute('MediaCleanupWorkflow', {
        taskQueue: p.config.TASK_QUEUE_LIGHT,
        workflowId: `cleanup-test-${randomUUID()}`,
        args: [{ unattachedAfterSeconds: 86_400, failedRetentionSeconds: 86_400 * 30, orphanAfterSeconds: 1 }],
      });
      expect(report.strayObjectsDeleted).toBeGreaterThanOrEqual(1);
      expect(report.multipartUploadsAborted).toBeGreaterThanOrEqual(1);
      expect(await p.storage.head(incoming, strayKey)).toBeUndefined();
      expect(await p.storage.listParts(incoming, abandonedKey, abandonedUploadId)).toBeUndefined();
      expect(await p.storage.head(incoming, live.body.storageKey)).toBeDefined();

      await p.call(user, `/media/${live.body.mediaId}`, { method: 'DELETE' });
      await waitForStatus(p, user, live.body.mediaId, ['CANCELLED']);
    });

    it('finishes a deletion whose storage removal never completed', async () => {
      const user = uniqueUser('unpurged');
      const { mediaId, storageKey } = await uploadToReady(p, user);
      // As a deletion leaves a row whose removal ran out of retries two hours ago (or a DELETE
      // whose workflow could not be started): claimed, DELETING, storage still there.
      await p.media.dataSource.query(`UPDATE media SET status = 'DELETING', updated_at = now() - interval '2 hours' WHERE id = $1`, [mediaId]);
      expect((await storedKeys(p, mediaId, storageKey)).original).toBe(true);

      const report: CleanupReport = await p.temporal.workflow.execute('MediaCleanupWorkflow', {
        taskQueue: p.config.TASK_QUEUE_LIGHT,
        workflowId: `cleanup-test-${randomUUID()}`,
        args: [{ unattachedAfterSeconds: 86_400, failedRetentionSeconds: 86_400 * 30, orphanAfterSeconds: 86_400 }],
      });
      expect(report.deletionsFinished).toBeGreaterThanOrEqual(1);
      expect(await storedKeys(p, mediaId, storageKey)).toEqual(nothingStored);
      expect(await p.media.findById(mediaId)).toMatchObject({ status: 'DELETED', metadata: { purgedAt: expect.any(String) } });
    });

    it('sends again a DELETE cancellation that never reached Temporal, and finishes one whose workflow had ended', async () => {
      const user = uniqueUser('cancel-resend');
      const bytes = await jpegWithExif(400, 300);
      const session = async () => {
        const res = await p.call(user, '/media/upload-session', { body: { fileName: 'c.jpg', fileType: 'image/jpeg', fileSize: bytes.length, mediaType: 'POST_IMAGE' } });
        expect(res.status).toBe(201);
        expect((await fetch(res.body.upload.url, { method: 'PUT', body: bytes, headers: res.body.upload.headers })).status).toBe(200);
        return res.body as { mediaId: string; storageKey: string };
      };
      // Both uploaded, never completed: their workflows wait for `complete`.
      const waiting = await session();
      const terminated = await session();
      const workflowOf = async (id: string) => p.temporal.workflow.getHandle((await p.media.findById(id))!.workflowId);
      await (await workflowOf(terminated.mediaId)).terminate('an operator ended it');
      // As a DELETE leaves them when Temporal answers 503: claimed (DELETING, flagged), the
      // cancellation never sent. Two hours ago, so that the 'unpurged' phase (1 h) sees them too.
      for (const { mediaId } of [waiting, terminated]) {
        expect(await p.media.claimCancellation(mediaId)).toBe(true);
        await p.media.dataSource.query(`UPDATE media SET updated_at = now() - interval '2 hours' WHERE id = $1`, [mediaId]);
      }
      expect((await p.call(user, `/media/${waiting.mediaId}`)).body.status).toBe('DELETING');

      const report: CleanupReport = await p.temporal.workflow.execute('MediaCleanupWorkflow', {
        taskQueue: p.config.TASK_QUEUE_LIGHT,
        workflowId: `cleanup-test-${randomUUID()}`,
        args: [{ unattachedAfterSeconds: 86_400, failedRetentionSeconds: 86_400 * 30, orphanAfterSeconds: 86_400 }],
      });
      expect(report.cancellationsResent).toBeGreaterThanOrEqual(1);
      expect(report.deletionsFinished).toBeGreaterThanOrEqual(1);
      // The running workflow got the cancellation and compensated: CANCELLED, not purged under it.
      expect((await waitForStatus(p, user, waiting.mediaId, ['CANCELLED', 'DELETED'])).status).toBe('CANCELLED');
      const workflow = await workflowOf(waiting.mediaId);
      // It records the outcome, then closes.
      await expect(workflow.result()).rejects.toThrow();
      expect((await workflow.describe()).status.name).toBe('CANCELLED');
      expect(await p.storage.head(p.config.S3_INCOMING_BUCKET, waiting.storageKey)).toBeUndefined();
      // The terminated one: nothing would ever take its row, so the cleanup deleted it.
      expect(await p.media.findById(terminated.mediaId)).toMatchObject({ status: 'DELETED', metadata: { purgedAt: expect.any(String) } });
      expect(await storedKeys(p, terminated.mediaId, terminated.storageKey)).toEqual(nothingStored);
    });

    it('upgrading protects media that was READY before attachments existed', async () => {
      const user = uniqueUser('legacy');
      const { mediaId } = await uploadToReady(p, user);
      const runner = p.media.dataSource.createQueryRunner();
      try {
        await new ProtectMediaBeforeAttachments1764700000000().up(runner);
      } finally {
        await runner.release();
      }
      expect((await p.call(user, `/media/${mediaId}`)).body.attachment).toMatchObject({ ownerType: 'legacy', ownerId: user });
    });
  });
});
