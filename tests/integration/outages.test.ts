import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBuckets } from '../../devstack/buckets';
import { devS3Credentials } from '../../devstack/credentials';
import { reservePorts } from '../../devstack/ports';
import { startS3Server, type S3Server } from '../../devstack/s3';
import { startTemporalDevServer, type TemporalDevServer } from '../../devstack/temporal';
import { ffmpeg as ffmpegTools } from '../../devstack/tools';
import { realJpeg, testVideo } from '../fixtures/media';
import { startPlatform, uniqueUser, waitForStatus, type Platform } from '../harness/platform';

const MiB = 1024 * 1024;
/** How long S3 stays down; `npm run soak` uses 30 s. */
const OUTAGE_MS = Number(process.env.OUTAGE_SECONDS ?? 8) * 1000;

/**
 * Outages of the servers the platform talks to, with servers of its own that the test stops
 * and restarts (same ports, same data): uploads in flight ride them out, new sessions get a
 * clear 503 instead of a hang.
 */
describe('outages of S3 and Temporal', () => {
  let dir: string;
  let s3: S3Server;
  let temporal: TemporalDevServer;
  let s3Port: number;
  let temporalPort: number;
  let p: Platform;

  const startS3 = () => startS3Server({ dataDir: join(dir, 's3'), port: s3Port, ...devS3Credentials, logFile: join(dir, 's3.log') });
  const startTemporal = () => startTemporalDevServer({ port: temporalPort, dbFile: join(dir, 'temporal.sqlite'), logFile: join(dir, 'temporal.log') });
  // A request that hangs fails the test; the API must answer on its own well before.
  const call = (user: string, path: string, body: unknown) => p.call(user, path, { body, headers: {} });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'media-outage-'));
    [s3Port, temporalPort] = await reservePorts(2);
    [s3, temporal] = await Promise.all([startS3(), startTemporal()]);
    await createBuckets(s3.endpoint, ['*']);
    p = await startPlatform({
      FFMPEG_PATH: ffmpegTools().ffmpeg,
      FFPROBE_PATH: ffmpegTools().ffprobe,
      HLS_X264_PRESET: 'veryfast',
      S3_ENDPOINT: s3.endpoint,
      TEMPORAL_ADDRESS: temporal.address,
      MULTIPART_THRESHOLD_BYTES: String(6 * MiB),
      PART_SIZE_BYTES: String(5 * MiB),
    });
  });
  afterAll(async () => {
    await p?.stop();
    await s3?.process.stop();
    await temporal?.process.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('rides out S3 going away during verification and ends READY once it is back', async () => {
    const user = uniqueUser('s3down');
    const body = await realJpeg(3000);
    const res = await call(user, '/media/upload-session', { fileName: 'a.jpg', fileType: 'image/jpeg', fileSize: body.length, mediaType: 'POST_IMAGE' });
    expect((await fetch(res.body.upload.url, { method: 'PUT', body, headers: res.body.upload.headers })).status).toBe(200);
    expect((await call(user, `/media/${res.body.mediaId}/complete`, {})).status).toBe(202);
    await s3.process.stop();
    await new Promise((r) => setTimeout(r, OUTAGE_MS));
    const during = await p.call(user, `/media/${res.body.mediaId}`);
    expect(['AWAITING_UPLOAD', 'VERIFYING', 'SCANNING', 'PROCESSING']).toContain(during.body.status);

    // Meanwhile a multipart session needs S3 and gets a clear 503.
    const refused = await call(user, '/media/upload-session', { fileName: 'b.jpg', fileType: 'image/jpeg', fileSize: 7 * MiB, mediaType: 'POST_IMAGE' });
    expect(refused.status).toBe(503);
    expect(refused.body.error.code).toBe('DEPENDENCY_UNAVAILABLE');
    expect(refused.headers.get('retry-after')).toBeTruthy();

    s3 = await startS3();
    const media = await waitForStatus(p, user, res.body.mediaId, ['READY', 'FAILED', 'REJECTED'], 90_000);
    expect(media.status).toBe('READY');
    expect((await fetch(media.cdnUrl)).status).toBe(200);
  });

  it('rides out S3 going away while a video is being processed', async () => {
    const user = uniqueUser('s3down-processing');
    const clip = await testVideo(ffmpegTools().ffmpeg, 6, 480);
    const res = await call(user, '/media/upload-session', { fileName: 'v.mp4', fileType: 'video/mp4', fileSize: clip.length, mediaType: 'POST_VIDEO' });
    expect((await fetch(res.body.upload.url, { method: 'PUT', body: clip, headers: res.body.upload.headers })).status).toBe(200);
    expect((await call(user, `/media/${res.body.mediaId}/complete`, {})).status).toBe(202);
    await waitForStatus(p, user, res.body.mediaId, ['PROCESSING'], 60_000);
    await s3.process.stop();
    await new Promise((r) => setTimeout(r, OUTAGE_MS));
    s3 = await startS3();
    const media = await waitForStatus(p, user, res.body.mediaId, ['READY', 'FAILED', 'REJECTED'], 150_000);
    expect(media.status).toBe('READY');
    expect((await fetch(media.hls.masterUrl)).status).toBe(200);
  }, 300_000);

  it('answers 503 while Temporal is down and keeps uploads across its restart', async () => {
    const user = uniqueUser('tdown');
    const body = await realJpeg(2500);
    const before = await call(user, '/media/upload-session', { fileName: 'c.jpg', fileType: 'image/jpeg', fileSize: body.length, mediaType: 'POST_IMAGE' });
    expect(before.status).toBe(201);

    await temporal.process.stop();
    const refused = await call(user, '/media/upload-session', { fileName: 'd.jpg', fileType: 'image/jpeg', fileSize: body.length, mediaType: 'POST_IMAGE' });
    expect(refused.status).toBe(503);
    expect(refused.body.error.code).toBe('DEPENDENCY_UNAVAILABLE');
    // Nothing half-created: the refused session left no row.
    expect((await p.call(user, '/media')).body.items.map((m: { mediaId: string }) => m.mediaId)).toEqual([before.body.mediaId]);
    // Readiness stays up (a Temporal blip must not pull every pod out of the load balancer);
    // the outage shows in its body, and each request needing Temporal answers 503 itself.
    const ready = await fetch(`${p.api.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(((await ready.json()) as { checks: Record<string, string> }).checks.temporal).toMatch(/^down/);
    expect((await fetch(`${p.api.url}/healthz`)).status).toBe(200);

    temporal = await startTemporal();
    expect((await fetch(before.body.upload.url, { method: 'PUT', body, headers: before.body.upload.headers })).status).toBe(200);
    // The workflow started before the outage is still there (state persisted) and takes the signal.
    const deadline = Date.now() + 60_000;
    let complete = await call(user, `/media/${before.body.mediaId}/complete`, {});
    while (complete.status !== 202 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 1000));
      complete = await call(user, `/media/${before.body.mediaId}/complete`, {});
    }
    expect(complete.status).toBe(202);
    expect((await waitForStatus(p, user, before.body.mediaId, ['READY', 'FAILED', 'REJECTED'], 90_000)).status).toBe('READY');
  });
});
