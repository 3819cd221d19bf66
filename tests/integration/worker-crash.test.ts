import { defaultPayloadConverter } from '@temporalio/common';
import type { ChildProcess } from 'node:child_process';
import { devS3Credentials } from '../../devstack/credentials';
import { ffmpeg as ffmpegTools } from '../../devstack/tools';
import { derivedPrefix } from '../../services/shared/media-types';
import { listedSegments } from '../../services/shared/media/hls-args';
import { createWorker } from '../../services/worker/worker';
import { testVideo } from '../fixtures/media';
import { startPlatform, uniqueUser, waitForStatus, type Platform } from '../harness/platform';
import { sseEvents } from '../harness/sse';
import { exited, killGroup, spawnWorker } from '../harness/worker-process';

describe('a video worker killed during a transcode', () => {
  let p: Platform;
  let child: ChildProcess | undefined;
  beforeAll(async () => {
    const { ffmpeg, ffprobe } = ffmpegTools();
    p = await startPlatform({ FFMPEG_PATH: ffmpeg, FFPROBE_PATH: ffprobe, HLS_X264_PRESET: 'veryfast', MULTIPART_THRESHOLD_BYTES: String(100 * 1024 * 1024) }, { videoWorker: false });
  });
  afterAll(async () => {
    if (child) killGroup(child, 'SIGKILL');
    await p?.stop();
  });

  it('is replaced by a new worker and the media still ends READY with no duplicate or orphan objects', async () => {
    const user = uniqueUser('crash');
    const clip = await testVideo(p.config.FFMPEG_PATH, 12, 720);
    const res = await p.call(user, '/media/upload-session', { body: { fileName: 'long.mp4', fileType: 'video/mp4', fileSize: clip.length, mediaType: 'POST_VIDEO' } });
    expect((await fetch(res.body.upload.url, { method: 'PUT', body: clip, headers: res.body.upload.headers })).status).toBe(200);
    child = spawnWorker(p, 'video');
    await p.call(user, `/media/${res.body.mediaId}/complete`, { body: {} });

    // Kill once the transcode has reported progress (ffmpeg is mid-ladder).
    const handle = p.temporal.workflow.getHandle(`media-upload/${res.body.mediaId}`);
    const deadline = Date.now() + 90_000;
    let heartbeat: unknown;
    while (!heartbeat && Date.now() < deadline) {
      const described = await handle.describe();
      heartbeat = described.raw.pendingActivities?.find((a) => a.activityType?.name === 'transcodeVideo' && a.heartbeatDetails);
      if (!heartbeat) await new Promise((r) => setTimeout(r, 250));
    }
    expect(heartbeat).toBeTruthy();
    killGroup(child, 'SIGKILL');
    expect(await exited(child, 10_000)).toBe(true);

    const replacement = await createWorker('video', p.config, { s3Credentials: devS3Credentials });
    const running = replacement.run();
    try {
      const media = await waitForStatus(p, user, res.body.mediaId, ['READY', 'FAILED', 'REJECTED'], 150_000);
      expect(media.status).toBe('READY');
      expect(media.hls.renditions.map((r: { name: string }) => r.name)).toEqual(['360p', '720p']);

      const keys = await p.storage.listKeys(p.config.S3_MEDIA_BUCKET, derivedPrefix(res.body.mediaId));
      const prefix = derivedPrefix(res.body.mediaId);
      for (const rung of ['360p', '720p']) {
        const playlist = await (await fetch(media.hls.renditions.find((r: { name: string }) => r.name === rung).url)).text();
        const listed = playlist.split('\n').filter((l) => l.endsWith('.ts')).map((l) => `${prefix}hls/${rung}/${l}`).sort();
        const stored = keys.filter((k) => k.startsWith(`${prefix}hls/${rung}/`) && k.endsWith('.ts')).sort();
        // Every stored segment is referenced and every referenced one is stored: no leftovers of the killed attempt.
        expect(stored).toEqual(listed);
      }
      const rows = await p.media.renditions(res.body.mediaId);
      expect(new Set(rows.map((r) => `${r.kind}/${r.label}`)).size).toBe(rows.length);
      expect((await handle.describe()).raw.pendingActivities ?? []).toHaveLength(0);
      // Killed between playable and READY: the first rendition was published once, not again
      // by the resumed workflow, and its files are still there beside the ladder.
      const { events } = await handle.fetchHistory();
      const scheduled = (events ?? []).map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name).filter(Boolean);
      expect(scheduled.filter((n) => n === 'publishFirstRendition')).toHaveLength(1);
      const first = media.metadata.firstRendition.rendition as string;
      expect(keys.filter((k) => k.startsWith(`${prefix}hls/${first}/`)).length).toBeGreaterThan(0);
    } finally {
      await replacement.close();
      await running;
    }
  });
  it('killed after the first rendition was announced playable: the retry keeps the published segments byte for byte, only appends to the playlist, and playable is announced once', async () => {
    const user = uniqueUser('crash-playable');
    // 40 s of 1080p with 8 s GOPs: the fast-rung path, written for seconds after it is announced.
    const clip = await testVideo(p.config.FFMPEG_PATH, 40, 1080);
    const res = await p.call(user, '/media/upload-session', { body: { fileName: 'long.mp4', fileType: 'video/mp4', fileSize: clip.length, mediaType: 'POST_VIDEO' } });
    expect((await fetch(res.body.upload.url, { method: 'PUT', body: clip, headers: res.body.upload.headers })).status).toBe(200);
    const mediaId: string = res.body.mediaId;
    const sse = sseEvents(`${p.api.url}/api/v1/media/${mediaId}/events`, await p.token(user));
    // Awaited below; a stream cut by a failure before that must not crash the run.
    sse.catch(() => undefined);
    child = spawnWorker(p, 'video');
    await p.call(user, `/media/${mediaId}/complete`, { body: {} });

    // Kill once the first-rendition step reports (heartbeat) that it announced playable, while its ffmpeg still runs.
    const handle = p.temporal.workflow.getHandle(`media-upload/${mediaId}`);
    const deadline = Date.now() + 120_000;
    let announced = false;
    while (!announced && Date.now() < deadline) {
      const pending = (await handle.describe()).raw.pendingActivities?.find((a) => a.activityType?.name === 'publishFirstRendition');
      const details = pending?.heartbeatDetails?.payloads?.[0];
      announced = !!details && (defaultPayloadConverter.fromPayload(details) as { playable?: boolean }).playable === true;
      if (!announced) await new Promise((r) => setTimeout(r, 200));
    }
    expect(announced).toBe(true);
    killGroup(child, 'SIGKILL');
    expect(await exited(child, 10_000)).toBe(true);

    // What a player may already hold: the published playlist (not ended) and every segment it lists, as bytes.
    const variantUrl: string = (await p.call(user, `/media/${mediaId}`)).body.playback.renditions[0].url;
    const segmentBase = variantUrl.slice(0, variantUrl.lastIndexOf('/') + 1);
    const segmentBytes = async (uri: string) => Buffer.from(await (await fetch(`${segmentBase}${uri}`)).arrayBuffer());
    const killedText = await (await fetch(variantUrl)).text();
    expect(killedText).not.toContain('#EXT-X-ENDLIST');
    const killed = listedSegments(killedText);
    expect(killed.length).toBeGreaterThanOrEqual(3);
    const killedBytes = await Promise.all(killed.map((s) => segmentBytes(s.uri)));

    const replacement = await createWorker('video', p.config, { s3Credentials: devS3Credentials });
    const running = replacement.run();
    try {
      // While the retry runs, playback never disappears and every version of the playlist extends the one before.
      let completed = false;
      let previous = killed;
      while (!completed) {
        const { events } = await handle.fetchHistory();
        completed = (events ?? []).some((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'transcodeVideo');
        expect((await p.call(user, `/media/${mediaId}`)).body.playback).not.toBeNull();
        const seen = listedSegments(await (await fetch(variantUrl)).text());
        expect(seen.slice(0, previous.length)).toEqual(previous);
        previous = seen;
        if (!completed) await new Promise((r) => setTimeout(r, 250));
      }
      const { events } = await handle.fetchHistory();
      const started = (events ?? []).find((e) => e.activityTaskStartedEventAttributes && (events ?? []).find((s) => s.eventId?.toString() === e.activityTaskStartedEventAttributes!.scheduledEventId?.toString())?.activityTaskScheduledEventAttributes?.activityType?.name === 'publishFirstRendition');
      expect(started?.activityTaskStartedEventAttributes?.attempt).toBe(2);
      const media = (await p.call(user, `/media/${mediaId}`)).body;
      expect(media.status).toBe('PROCESSING');
      expect(media.playback.renditions.map((r: { name: string }) => r.name)).toEqual(['fast']);
      const playlist = await (await fetch(media.playback.renditions[0].url)).text();
      expect(playlist.trimEnd().endsWith('#EXT-X-ENDLIST')).toBe(true);
      // Appended to, never rewritten: the killed attempt's segments first, same names, durations and bytes; the re-run cut at the same times.
      const final = listedSegments(playlist);
      expect(final.slice(0, killed.length)).toEqual(killed);
      expect(final.length).toBeGreaterThan(killed.length);
      expect(playlist).not.toContain('#EXT-X-DISCONTINUITY');
      for (const [i, s] of killed.entries()) expect((await segmentBytes(s.uri)).equals(killedBytes[i]!)).toBe(true);
      const prefix = `${derivedPrefix(mediaId)}hls/fast/`;
      const listed = final.map((s) => `${prefix}${s.uri}`).sort();
      const stored = (await p.storage.listKeys(p.config.S3_MEDIA_BUCKET, prefix)).filter((k) => k.endsWith('.ts')).sort();
      expect(stored).toEqual(listed);
      expect(final.reduce((sum, s) => sum + s.seconds, 0)).toBeCloseTo(40, 0);

      expect((await p.call(user, `/media/${mediaId}`, { method: 'DELETE' })).status).toBe(202);
      expect((await waitForStatus(p, user, mediaId, ['CANCELLED', 'READY', 'FAILED'], 120_000)).status).toBe('CANCELLED');
      // One `playable` event on the stream: the retry did not announce again; then the end (not playable any more).
      const stream = await sse;
      expect(stream.filter((e) => e.event === 'playable')).toHaveLength(1);
      expect(stream.at(-1)).toEqual({ event: 'status', status: 'CANCELLED', playable: false });
      expect(await p.storage.listKeys(p.config.S3_MEDIA_BUCKET, derivedPrefix(mediaId))).toEqual([]);
    } finally {
      await replacement.close();
      await running;
    }
  });
});
