import { devS3Credentials } from '../../devstack/credentials';
import { ffmpeg as ffmpegTools } from '../../devstack/tools';
import { derivedPrefix } from '../../services/shared/media-types';
import { createWorker } from '../../services/worker/worker';
import { realJpeg, testVideo } from '../fixtures/media';
import { startPlatform, stackState, uniqueUser, waitForStatus, type Platform } from '../harness/platform';
import { exited, killGroup, spawnWorker } from '../harness/worker-process';

/** Trials per fault; `npm run soak` raises them. */
const TRIALS = Number(process.env.FAULT_TRIALS ?? 3);

async function startUploads(p: Platform, user: string, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const body = await realJpeg(3000 + i);
    const res = await p.call(user, '/media/upload-session', { body: { fileName: `f${i}.jpg`, fileType: 'image/jpeg', fileSize: body.length, mediaType: 'POST_IMAGE' } });
    expect((await fetch(res.body.upload.url, { method: 'PUT', body, headers: res.body.upload.headers })).status).toBe(200);
    expect((await p.call(user, `/media/${res.body.mediaId}/complete`, { body: {} })).status).toBe(202);
    ids.push(res.body.mediaId);
  }
  return ids;
}

async function expectAllReadyWithoutDuplicates(p: Platform, user: string, ids: string[]): Promise<void> {
  for (const id of ids) {
    const media = await waitForStatus(p, user, id, ['READY', 'FAILED', 'REJECTED'], 120_000);
    expect({ id, status: media.status }).toEqual({ id, status: 'READY' });
    const rows = await p.media.renditions(id);
    expect(new Set(rows.map((r) => r.storageKey)).size).toBe(rows.length);
    const stored = await p.storage.listKeys(p.config.S3_MEDIA_BUCKET, derivedPrefix(id));
    expect(stored.sort()).toEqual(rows.map((r) => r.storageKey).sort());
  }
}

describe('fault injection with real processes', () => {
  let p: Platform;
  beforeAll(async () => {
    const { ffmpeg, ffprobe } = ffmpegTools();
    // The light worker runs in a child process the test kills; the video one too when needed.
    p = await startPlatform({ FFMPEG_PATH: ffmpeg, FFPROBE_PATH: ffprobe, MULTIPART_THRESHOLD_BYTES: String(100 * 1024 * 1024) }, { videoWorker: false, lightWorker: false });
  });
  afterAll(() => p?.stop());

  it(`finishes every upload when the light worker is SIGKILLed ${TRIALS} times mid-pipeline`, async () => {
    const user = uniqueUser('sigkill');
    let worker = spawnWorker(p, 'light');
    const ids = await startUploads(p, user, 4 * TRIALS);
    for (let trial = 0; trial < TRIALS; trial++) {
      // Somewhere in verify / scan / thumbnails / promote of the uploads in flight.
      await new Promise((r) => setTimeout(r, 700 + Math.floor(Math.random() * 1500)));
      killGroup(worker, 'SIGKILL');
      await exited(worker, 10_000);
      worker = spawnWorker(p, 'light');
    }
    try {
      await expectAllReadyWithoutDuplicates(p, user, ids);
    } finally {
      killGroup(worker, 'SIGTERM');
      await exited(worker, 20_000);
    }
    console.log(`fault trials: light worker SIGKILLed ${TRIALS} times over ${ids.length} uploads → all READY`);
  }, 300_000);

  it('keeps uploads going through a PostgreSQL restart; read model and Temporal agree at the end', async () => {
    const user = uniqueUser('pgrestart');
    const worker = spawnWorker(p, 'light');
    try {
      const ids = await startUploads(p, user, 4);
      process.kill(stackState().servePid, 'SIGUSR2');
      const more = await (async () => {
        // Session creation may answer 503 while the database is down; retry like a client.
        for (let attempt = 0; attempt < 30; attempt++) {
          try {
            return await startUploads(p, user, 1);
          } catch {
            await new Promise((r) => setTimeout(r, 1000));
          }
        }
        throw new Error('no session could be created after the restart');
      })();
      const all = [...ids, ...more];
      await expectAllReadyWithoutDuplicates(p, user, all);
      for (const id of all) {
        const described = await p.temporal.workflow.getHandle(`media-upload/${id}`).describe();
        expect(described.status.name).toBe('COMPLETED');
        expect((await p.media.findById(id))?.status).toBe('READY');
      }
    } finally {
      killGroup(worker, 'SIGTERM');
      await exited(worker, 20_000);
    }
  });

  it('drains a worker on SIGTERM within its grace time and hands the transcode to another worker', async () => {
    const user = uniqueUser('sigterm');
    const light = spawnWorker(p, 'light');
    const video = spawnWorker(p, 'video', { WORKER_SHUTDOWN_GRACE_SECONDS: '2' });
    let replacement: Awaited<ReturnType<typeof createWorker>> | undefined;
    let running: Promise<void> | undefined;
    try {
      const clip = await testVideo(p.config.FFMPEG_PATH, 12, 720);
      const res = await p.call(user, '/media/upload-session', { body: { fileName: 'v.mp4', fileType: 'video/mp4', fileSize: clip.length, mediaType: 'POST_VIDEO' } });
      expect((await fetch(res.body.upload.url, { method: 'PUT', body: clip, headers: res.body.upload.headers })).status).toBe(200);
      await p.call(user, `/media/${res.body.mediaId}/complete`, { body: {} });
      const handle = p.temporal.workflow.getHandle(`media-upload/${res.body.mediaId}`);
      const deadline = Date.now() + 90_000;
      let transcoding = false;
      while (!transcoding && Date.now() < deadline) {
        transcoding = !!(await handle.describe()).raw.pendingActivities?.some((a) => a.activityType?.name === 'transcodeVideo' && a.heartbeatDetails);
        if (!transcoding) await new Promise((r) => setTimeout(r, 250));
      }
      expect(transcoding).toBe(true);
      killGroup(video, 'SIGTERM');
      // Grace (2 s) plus process teardown; a worker that ignores SIGTERM fails here.
      expect(await exited(video, 15_000)).toBe(true);
      replacement = await createWorker('video', p.config, { s3Credentials: devS3Credentials });
      running = replacement.run();
      const media = await waitForStatus(p, user, res.body.mediaId, ['READY', 'FAILED', 'REJECTED'], 150_000);
      expect(media.status).toBe('READY');
    } finally {
      killGroup(video, 'SIGKILL');
      killGroup(light, 'SIGTERM');
      await exited(light, 20_000);
      await replacement?.close();
      await running;
    }
  });
});
