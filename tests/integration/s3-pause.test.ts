import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBuckets } from '../../devstack/buckets';
import { devS3Credentials } from '../../devstack/credentials';
import { reservePorts } from '../../devstack/ports';
import { startS3Server, type S3Server } from '../../devstack/s3';
import { realJpeg } from '../fixtures/media';
import { startPlatform, uniqueUser, waitForStatus, type Platform } from '../harness/platform';

const MiB = 1024 * 1024;
/** Longest the server stays stopped; each call must answer well before (its deadline: 3 s). */
const PAUSE_MS = 20_000;

/**
 * A SeaweedFS that is stopped (SIGSTOP) still accepts TCP connections and never answers: each
 * API request that calls S3 must answer 503 DEPENDENCY_UNAVAILABLE within S3_API_TIMEOUT_MS,
 * not hang for the outage. The S3 server is this file's own, so pausing it disturbs no other file.
 */
describe('a paused S3', () => {
  let dir: string;
  let s3: S3Server;
  let p: Platform;
  const created: Array<{ user: string; mediaId: string }> = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'media-s3-pause-'));
    const [port] = await reservePorts(1);
    s3 = await startS3Server({ dataDir: join(dir, 's3'), port: port!, ...devS3Credentials, logFile: join(dir, 's3.log') });
    await createBuckets(s3.endpoint, ['*']);
    p = await startPlatform(
      {
        S3_ENDPOINT: s3.endpoint,
        S3_API_TIMEOUT_MS: '3000',
        MULTIPART_THRESHOLD_BYTES: String(6 * MiB),
        PART_SIZE_BYTES: String(5 * MiB),
      },
      { videoWorker: false },
    );
  });
  afterAll(async () => {
    // Never leave the server stopped, whatever failed.
    if (s3?.process.child.pid) process.kill(s3.process.child.pid, 'SIGCONT');
    for (const { user, mediaId } of created) {
      await p.call(user, `/media/${mediaId}`, { method: 'DELETE' });
      await waitForStatus(p, user, mediaId, ['CANCELLED', 'DELETED']).catch(() => undefined);
    }
    await p?.stop();
    await s3?.process.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const session = (user: string, fileSize: number, name = 'f.jpg') =>
    p.call(user, '/media/upload-session', { body: { fileName: name, fileType: 'image/jpeg', fileSize, mediaType: 'POST_IMAGE' } });
  const batch = (user: string, sizes: number[]) =>
    p.call(user, '/media/upload-sessions', { body: { files: sizes.map((fileSize, i) => ({ fileName: `b${i}.jpg`, fileType: 'image/jpeg', fileSize, mediaType: 'POST_IMAGE' })) } });

  it('answers complete, GET parts, multipart sessions and batches with 503 while it is stopped, and serves them once it is back', async () => {
    const user = uniqueUser('s3pause');
    const small = await realJpeg(2000);
    const single = await session(user, small.length);
    expect(single.status).toBe(201);
    created.push({ user, mediaId: single.body.mediaId });
    expect((await fetch(single.body.upload.url, { method: 'PUT', body: small, headers: single.body.upload.headers })).status).toBe(200);
    const multipart = await session(user, 7 * MiB, 'm.jpg');
    expect(multipart.status).toBe(201);
    created.push({ user, mediaId: multipart.body.mediaId });

    const pid = s3.process.child.pid!;
    let resumed = false;
    const resume = () => {
      if (!resumed) process.kill(pid, 'SIGCONT');
      resumed = true;
    };
    process.kill(pid, 'SIGSTOP');
    try {
      const events: string[] = [];
      const track = <T>(name: string, call: Promise<T>) => call.then((res) => (events.push(name), res));
      const answered = Promise.all([
        track('complete', p.call(user, `/media/${single.body.mediaId}/complete`, { body: {} })),
        track('parts', p.call(user, `/media/${multipart.body.mediaId}/parts`)),
        track('session', session(user, 7 * MiB, 'n.jpg')),
        track('batch', batch(user, [7 * MiB, 8 * MiB])),
      ]);
      await Promise.race([answered, new Promise((r) => setTimeout(r, PAUSE_MS))]);
      events.push('resume');
      resume();
      const [complete, parts, refused, refusedBatch] = await answered;

      for (const res of [complete, parts, refused, refusedBatch]) {
        expect(res.status).toBe(503);
        expect(res.body.error.code).toBe('DEPENDENCY_UNAVAILABLE');
        expect(res.headers.get('retry-after')).toBe('5');
      }
      // Every one answered while S3 was still stopped.
      expect(events.at(-1)).toBe('resume');
    } finally {
      resume();
    }

    expect((await p.call(user, `/media/${single.body.mediaId}/complete`, { body: {} })).status).toBe(202);
    const listed = await p.call(user, `/media/${multipart.body.mediaId}/parts`);
    expect(listed.status).toBe(200);
    expect(listed.body.parts).toEqual([]);
    const later = await session(user, 7 * MiB, 'o.jpg');
    expect(later.status).toBe(201);
    created.push({ user, mediaId: later.body.mediaId });
    const laterBatch = await batch(user, [7 * MiB]);
    expect(laterBatch.status).toBe(201);
    created.push(...laterBatch.body.items.map((item: { mediaId: string }) => ({ user, mediaId: item.mediaId })));

    // No half-created session: every multipart upload open in this S3 belongs to a media row.
    // A CreateMultipartUpload the API gave up on may still be carried out once S3 resumes.
    const open = async () => {
      const uploads = [];
      for await (const page of p.storage.multipartUploadPages(p.config.S3_INCOMING_BUCKET)) uploads.push(...page);
      return uploads;
    };
    const owned = new Set(created.map((c) => c.mediaId));
    const rows = await p.media.dataSource.query<Array<{ id: string; storage_key: string; upload_id: string }>>(
      'SELECT id, storage_key, upload_id FROM media WHERE storage_key = ANY($1)',
      [(await open()).map((u) => u.key)],
    );
    const deadline = Date.now() + 15_000;
    let orphans = (await open()).filter((u) => !rows.some((r) => r.storage_key === u.key && r.upload_id === u.uploadId));
    while (orphans.length && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 500));
      orphans = (await open()).filter((u) => !rows.some((r) => r.storage_key === u.key && r.upload_id === u.uploadId));
    }
    expect(orphans).toEqual([]);
    expect(rows.every((r) => owned.has(r.id))).toBe(true);
  });
});
