import { ActivityCancellationDetails, CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { Readable } from 'node:stream';
import type { ActivityDeps } from '../../activities';
import { createVideoActivities, type ProcessingInput } from '../../activities/processing';
import type { NewRendition } from '../../services/shared/db/media-repository';
import { derivedPrefix } from '../../services/shared/media-types';
import { probe } from '../../services/shared/media/ffmpeg';
import { listedSegments } from '../../services/shared/media/hls-args';
import { ffmpeg as ffmpegTools } from '../../devstack/tools';
import { testVideo } from '../fixtures/media';
import { startPlatform, uniqueUser, uploadFile, waitForStatus, type Platform } from '../harness/platform';

const { ffmpeg, ffprobe } = ffmpegTools();

/**
 * The video activities run in Temporal's activity test environment (to retry or cancel them at
 * an exact point) against the real S3, PostgreSQL and ffmpeg of the shared stack.
 */
describe('retries and cancellation of the first rendition and the ladder', () => {
  let p: Platform;
  beforeAll(async () => {
    p = await startPlatform({ FFMPEG_PATH: ffmpeg, FFPROBE_PATH: ffprobe, HLS_X264_PRESET: 'ultrafast', MULTIPART_THRESHOLD_BYTES: String(100 * 1024 * 1024) });
  });
  afterAll(() => p?.stop());

  const videoSettings = () => ({ ffmpeg: { ffmpeg: p.config.FFMPEG_PATH, ffprobe: p.config.FFPROBE_PATH }, preset: p.config.HLS_X264_PRESET, segmentSeconds: p.config.HLS_SEGMENT_SECONDS });
  const deps = (overrides: Partial<ActivityDeps> = {}): ActivityDeps => ({
    storage: p.storage,
    media: p.media,
    buckets: { incoming: p.config.S3_INCOMING_BUCKET, media: p.config.S3_MEDIA_BUCKET },
    ...overrides,
  });
  /** Bytes of every object under the media's `hls/`, which its master row must count once (the storage quota). */
  const storedHlsBytes = async (mediaId: string) => [...(await p.storage.objectSizes(p.config.S3_MEDIA_BUCKET, `${derivedPrefix(mediaId)}hls/`)).values()].reduce((a, b) => a + b, 0);
  const masterRow = async (mediaId: string) => (await p.media.renditions(mediaId)).find((r) => r.kind === 'hls' && r.label === 'master');

  const targetOf = (text: string) => /#EXT-X-TARGETDURATION:(\d+)/.exec(text)?.[1];

  /**
   * A 12 s clip uploaded but not confirmed (its workflow waits, so the step runs here instead)
   * for a media shown as PROCESSING. `announcing(attempt, env)` gives the deps of one attempt:
   * they record its announcements in `announced`, and with `env` cancel it as a heartbeat
   * timeout right after it announced (its worker gone).
   */
  async function unconfirmedVideo(name: string) {
    const user = uniqueUser(name);
    const clip = await testVideo(ffmpeg, 12, 360);
    const res = await p.call(user, '/media/upload-session', { body: { fileName: 'clip.mp4', fileType: 'video/mp4', fileSize: clip.length, mediaType: 'POST_VIDEO' } });
    expect((await fetch(res.body.upload.url, { method: 'PUT', body: clip, headers: res.body.upload.headers })).status).toBe(200);
    const mediaId: string = res.body.mediaId;
    await p.media.setStatus(mediaId, 'PROCESSING');
    const input: ProcessingInput = { mediaId, storageKey: res.body.storageKey, mediaType: 'POST_VIDEO', fileSize: clip.length };
    const announced: string[] = [];
    const announcing = (attempt: string, env: MockActivityEnvironment | undefined) => {
      const media = Object.create(p.media) as typeof p.media;
      media.notifyChange = async (id: string) => {
        announced.push(`${attempt}: SSE`);
        await p.media.notifyChange(id);
        env?.cancel('TIMED_OUT', new ActivityCancellationDetails({ timedOut: true }));
      };
      const publish = async () => {
        announced.push(`${attempt}: webhook`);
        return 0;
      };
      return deps({ media, publish });
    };
    return { user, mediaId, input, announced, announcing };
  }

  it('a transcodeVideo retry after its master landed puts the first rendition back before deleting rungs, and counts its bytes once', async () => {
    const user = uniqueUser('ladder-retry');
    const session = await uploadFile(p, user, await testVideo(ffmpeg, 6, 360), 'video/mp4', 'POST_VIDEO', 'clip.mp4');
    const ready = await waitForStatus(p, user, session.mediaId, ['READY', 'FAILED', 'REJECTED'], 180_000);
    expect(ready.status).toBe('READY');
    const masterUrl: string = ready.playback.masterUrl;
    const readyMaster = await (await fetch(masterUrl)).text();
    expect(readyMaster.split('\n').filter((l) => l.endsWith('index.m3u8'))).toEqual(['360p/index.m3u8']);
    expect(Number((await masterRow(session.mediaId))?.sizeBytes)).toBe(await storedHlsBytes(session.mediaId));

    // The state of a completed attempt whose result never reached the server: the ladder is
    // published, the original is still in the incoming bucket, and the step runs again.
    await p.storage.copy(p.config.S3_MEDIA_BUCKET, session.storageKey, p.config.S3_INCOMING_BUCKET, session.storageKey);
    const atRungDeletion: Array<{ master: string; playback: string[] }> = [];
    const storage = Object.create(p.storage) as typeof p.storage;
    storage.deletePrefix = async (bucket, prefix) => {
      if (prefix.endsWith('/360p/')) {
        const media = (await p.call(user, `/media/${session.mediaId}`)).body;
        atRungDeletion.push({ master: await (await fetch(masterUrl)).text(), playback: media.playback.renditions.map((r: { name: string }) => r.name) });
      }
      return p.storage.deletePrefix(bucket, prefix);
    };
    const input: ProcessingInput = { mediaId: session.mediaId, storageKey: session.storageKey, mediaType: 'POST_VIDEO', fileSize: 0 };
    const { transcodeVideo } = createVideoActivities(deps({ storage }), videoSettings());
    const retried = (await new MockActivityEnvironment({ attempt: 2 }, { client: p.temporal }).run(transcodeVideo, input)) as Awaited<ReturnType<typeof transcodeVideo>>;
    expect(retried.renditions).toEqual(['360p']);

    // When the rung was deleted, neither the master nor playback named it.
    expect(atRungDeletion).toHaveLength(1);
    expect(atRungDeletion[0]!.playback).toEqual(['fast']);
    expect(atRungDeletion[0]!.master.split('\n').filter((l) => l.endsWith('index.m3u8'))).toEqual(['fast/index.m3u8']);
    // Then the ladder again, and every stored byte counted once.
    expect(await (await fetch(masterUrl)).text()).toBe(readyMaster);
    expect(Number((await masterRow(session.mediaId))?.sizeBytes)).toBe(await storedHlsBytes(session.mediaId));
    expect((await p.call(user, `/media/${session.mediaId}`, { method: 'DELETE' })).status).toBe(202);
  });

  it('the ladder uploads each segment while ffmpeg writes the next ones; a cancel mid-ladder stops it and nothing is written after', async () => {
    const { mediaId, user, input } = await unconfirmedVideo('ladder-overlap');
    // A slow preset and 2 s segments: the encode takes seconds and writes several segments.
    const settings = { ...videoSettings(), preset: 'veryslow', segmentSeconds: 2 };
    const events: string[] = [];
    /** The phase of the step's latest heartbeat at each segment PUT: `hls` while encoding, `upload` after ffmpeg exited. */
    const segmentPutPhases: string[] = [];
    /** Rendition rows of the media when the step deletes what an earlier attempt left. */
    const rowsWhenDeleting: number[] = [];
    const recording = (env: MockActivityEnvironment, cancelAfterSegments?: number) => {
      let segments = 0;
      let phase = '';
      env.on('heartbeat', (d: { phase?: string; percent?: number }) => {
        phase = d?.phase ?? phase;
        if (d?.phase === 'hls' && (d.percent ?? 100) < 100) events.push('encoding');
      });
      const storage = Object.create(p.storage) as typeof p.storage;
      storage.deletePrefix = async (bucket, prefix) => {
        rowsWhenDeleting.push((await p.media.renditions(mediaId)).length);
        return p.storage.deletePrefix(bucket, prefix);
      };
      storage.put = async (...args: Parameters<typeof p.storage.put>) => {
        const isSegment = args[1].endsWith('.ts');
        if (isSegment) {
          events.push('segment PUT');
          segmentPutPhases.push(phase);
        }
        const put = await p.storage.put(...args);
        if (isSegment && ++segments === cancelAfterSegments) env.cancel('CANCELLED');
        return put;
      };
      return deps({ storage });
    };

    // Whole run: ffmpeg reported progress (below 100 %) after a segment was already uploaded.
    const whole = new MockActivityEnvironment({}, { client: p.temporal });
    const result = (await whole.run(createVideoActivities(recording(whole), settings).transcodeVideo, input)) as { renditions: string[] };
    expect(result.renditions).toEqual(['360p']);
    const firstPut = events.indexOf('segment PUT');
    expect(firstPut).toBeGreaterThanOrEqual(0);
    expect(events.slice(firstPut)).toContain('encoding');
    // Every segment ffmpeg wrote is published, and the master names the rung.
    const prefix = `${derivedPrefix(mediaId)}hls/`;
    const variant = (await p.storage.getIfExists(p.config.S3_MEDIA_BUCKET, `${prefix}360p/index.m3u8`))!.toString('utf8');
    const stored = (await p.storage.listKeys(p.config.S3_MEDIA_BUCKET, `${prefix}360p/`)).filter((k) => k.endsWith('.ts')).sort();
    expect(stored).toEqual(listedSegments(variant).map((s) => `${prefix}360p/${s.uri}`).sort());
    expect(stored.length).toBeGreaterThanOrEqual(5);
    // Each by the uploading loop, none left for the upload after ffmpeg, and each whole: the
    // duration of the stored segment is the one its playlist entry gives (a partial file is shorter).
    expect(segmentPutPhases).toEqual(stored.map(() => 'hls'));
    for (const entry of listedSegments(variant)) {
      const url = (await p.storage.presignGet(p.config.S3_MEDIA_BUCKET, `${prefix}360p/${entry.uri}`, 600)).url;
      expect(Math.abs((await probe({ ffmpeg, ffprobe }, url)).durationSeconds - entry.seconds)).toBeLessThan(0.1);
    }
    // The master row counts every byte under hls/ once (the storage quota).
    expect(Number((await masterRow(mediaId))?.sizeBytes)).toBe(await storedHlsBytes(mediaId));

    // Cancelled after its second segment PUT: the activity ends with ffmpeg stopped and no PUT in
    // flight. As a retry of a completed attempt (its result lost), it hid that attempt's rows
    // before deleting its files: a reader never sees a row whose object is gone.
    rowsWhenDeleting.length = 0;
    const cancelled = new MockActivityEnvironment({ attempt: 2 }, { client: p.temporal });
    const outcome = await cancelled.run(createVideoActivities(recording(cancelled, 2), settings).transcodeVideo, input).catch((err: unknown) => err);
    expect(outcome).toBeInstanceOf(CancelledFailure);
    expect(rowsWhenDeleting).toEqual([0]);
    const atEnd = (await p.storage.listKeys(p.config.S3_MEDIA_BUCKET, prefix)).sort();
    await new Promise((r) => setTimeout(r, 1500));
    expect((await p.storage.listKeys(p.config.S3_MEDIA_BUCKET, prefix)).sort()).toEqual(atEnd);
    // The retry started clean (the earlier run's rung went first) and stopped before its master.
    expect(atEnd.filter((k) => k.endsWith('.ts')).length).toBeLessThan(stored.length);

    expect((await p.call(user, `/media/${mediaId}`, { method: 'DELETE' })).status).toBe(202);
    await waitForStatus(p, user, mediaId, ['CANCELLED'], 60_000);
    expect(await p.storage.listKeys(p.config.S3_MEDIA_BUCKET, derivedPrefix(mediaId))).toEqual([]);
  });

  it('a cancel that arrives while the first rendition rows are written announces nothing', async () => {
    const user = uniqueUser('cancel-announce');
    const clip = await testVideo(ffmpeg, 8, 360);
    // Uploaded but not confirmed: the workflow waits and the step runs here instead, for a media shown as PROCESSING.
    const res = await p.call(user, '/media/upload-session', { body: { fileName: 'clip.mp4', fileType: 'video/mp4', fileSize: clip.length, mediaType: 'POST_VIDEO' } });
    expect((await fetch(res.body.upload.url, { method: 'PUT', body: clip, headers: res.body.upload.headers })).status).toBe(200);
    const mediaId: string = res.body.mediaId;
    await p.media.setStatus(mediaId, 'PROCESSING');

    const env = new MockActivityEnvironment({}, { client: p.temporal });
    const order: string[] = [];
    const media = Object.create(p.media) as typeof p.media;
    media.replaceRenditions = async (id: string, rows: NewRendition[]) => {
      await p.media.replaceRenditions(id, rows);
      order.push(`rows:${rows.filter((r) => r.kind === 'hls').length}`);
      // The user's DELETE reaches the step right after the rows that make playback show are written.
      if (rows.some((r) => r.kind === 'hls')) env.cancel('CANCELLED');
    };
    media.notifyChange = async (id: string) => {
      order.push('announce: SSE');
      await p.media.notifyChange(id);
    };
    const publish = async () => {
      order.push('announce: webhook');
      return 0;
    };
    const input: ProcessingInput = { mediaId, storageKey: res.body.storageKey, mediaType: 'POST_VIDEO', fileSize: clip.length };
    const outcome = await env.run(createVideoActivities(deps({ media, publish }), videoSettings()).publishFirstRendition, input).catch((err: unknown) => err);
    expect(outcome).toBeInstanceOf(CancelledFailure);
    expect(order).toEqual(['rows:2']);
    expect((await p.call(user, `/media/${mediaId}`, { method: 'DELETE' })).status).toBe(202);
    expect((await waitForStatus(p, user, mediaId, ['CANCELLED'], 60_000)).playback).toBeNull();
    expect(await p.storage.listKeys(p.config.S3_MEDIA_BUCKET, derivedPrefix(mediaId))).toEqual([]);
  });

  it('a retry after playable whose re-run cuts elsewhere keeps the published segments and appends after a discontinuity, under new names, announcing nothing again', async () => {
    const { mediaId, user, input, announced, announcing } = await unconfirmedVideo('recut');

    // Attempt 1 cuts the fast rung every 2 s and stops right after announcing playable.
    const first = new MockActivityEnvironment({ attempt: 1 }, { client: p.temporal });
    const stopped = await first.run(createVideoActivities(announcing('attempt 1', first), videoSettings()).publishFirstRendition, input).catch((err: unknown) => err);
    expect(stopped).toBeInstanceOf(Error);
    const variantUrl: string = (await p.call(user, `/media/${mediaId}`)).body.playback.renditions[0].url;
    const segmentBase = variantUrl.slice(0, variantUrl.lastIndexOf('/') + 1);
    const segmentBytes = async (uri: string) => Buffer.from(await (await fetch(`${segmentBase}${uri}`)).arrayBuffer());
    const stoppedText = await (await fetch(variantUrl)).text();
    const stoppedSegments = listedSegments(stoppedText);
    expect(stoppedSegments.length).toBeGreaterThanOrEqual(3);
    expect(stoppedText).not.toContain('#EXT-X-ENDLIST');
    const stoppedBytes = await Promise.all(stoppedSegments.map((s) => segmentBytes(s.uri)));

    // Attempt 2 runs where the segment length is 1 s: its cuts differ from the published ones.
    const retry = await new MockActivityEnvironment({ attempt: 2 }, { client: p.temporal }).run(createVideoActivities(announcing('attempt 2', undefined), { ...videoSettings(), segmentSeconds: 1 }).publishFirstRendition, input);
    expect(retry).toMatchObject({ path: 'fast', rendition: 'fast' });
    const finalText = await (await fetch(variantUrl)).text();
    const final = listedSegments(finalText);
    expect(finalText.trimEnd().endsWith('#EXT-X-ENDLIST')).toBe(true);
    // The published segments first, as they were; then one discontinuity and the re-run's segments under names of their own.
    expect(final.slice(0, stoppedSegments.length)).toEqual(stoppedSegments);
    for (const [i, s] of stoppedSegments.entries()) expect((await segmentBytes(s.uri)).equals(stoppedBytes[i]!)).toBe(true);
    const appended = final.slice(stoppedSegments.length);
    expect(appended.length).toBeGreaterThan(0);
    expect(appended.map((s) => !!s.discontinuity)).toEqual(appended.map((_, i) => i === 0));
    expect(appended.every((s) => s.uri.startsWith('a2-'))).toBe(true);
    expect(finalText.split('\n').filter((l) => l === '#EXT-X-DISCONTINUITY')).toHaveLength(1);
    // The target duration did not change, and the whole clip is there (content may repeat, none is skipped).
    expect(targetOf(finalText)).toBe(targetOf(stoppedText));
    expect(final.reduce((sum, s) => sum + s.seconds, 0)).toBeGreaterThanOrEqual(12 - 0.1);
    const prefix = `${derivedPrefix(mediaId)}hls/fast/`;
    const stored = (await p.storage.listKeys(p.config.S3_MEDIA_BUCKET, prefix)).filter((k) => k.endsWith('.ts')).sort();
    expect(stored).toEqual(final.map((s) => `${prefix}${s.uri}`).sort());
    expect(announced).toEqual(['attempt 1: SSE', 'attempt 1: webhook']);

    expect((await p.call(user, `/media/${mediaId}`, { method: 'DELETE' })).status).toBe(202);
    expect((await waitForStatus(p, user, mediaId, ['CANCELLED'], 60_000)).playback).toBeNull();
    expect(await p.storage.listKeys(p.config.S3_MEDIA_BUCKET, derivedPrefix(mediaId))).toEqual([]);
  });

  it('a retry after playable cuts no longer than the published target duration: the same cuts, appended, the target unchanged', async () => {
    const { mediaId, user, input, announcing } = await unconfirmedVideo('retarget');
    // Attempt 1 cuts every 1 s (target 1) and stops after announcing; attempt 2 is configured for 2 s segments.
    const first = new MockActivityEnvironment({ attempt: 1 }, { client: p.temporal });
    expect(await first.run(createVideoActivities(announcing('attempt 1', first), { ...videoSettings(), segmentSeconds: 1 }).publishFirstRendition, input).catch((err: unknown) => err)).toBeInstanceOf(Error);
    const variantUrl: string = (await p.call(user, `/media/${mediaId}`)).body.playback.renditions[0].url;
    const stoppedText = await (await fetch(variantUrl)).text();
    await new MockActivityEnvironment({ attempt: 2 }, { client: p.temporal }).run(createVideoActivities(announcing('attempt 2', undefined), videoSettings()).publishFirstRendition, input);
    const finalText = await (await fetch(variantUrl)).text();
    const final = listedSegments(finalText);
    expect(final.slice(0, listedSegments(stoppedText).length)).toEqual(listedSegments(stoppedText));
    expect(final.length).toBeGreaterThan(listedSegments(stoppedText).length);
    expect(finalText.trimEnd().endsWith('#EXT-X-ENDLIST')).toBe(true);
    expect(finalText).not.toContain('#EXT-X-DISCONTINUITY');
    expect(targetOf(finalText)).toBe(targetOf(stoppedText));
    expect(final.every((s) => Math.round(s.seconds) <= Number(targetOf(finalText)))).toBe(true);
    expect((await p.call(user, `/media/${mediaId}`, { method: 'DELETE' })).status).toBe(202);
    expect((await waitForStatus(p, user, mediaId, ['CANCELLED'], 60_000)).playback).toBeNull();
  });

  it('a segment PUT whose activity is cancelled while its body is being sent stops there and leaves no object', async () => {
    const key = `${derivedPrefix(uniqueUser('abort'))}hls/fast/segment_000.ts`;
    const chunk = Buffer.alloc(256 * 1024, 7);
    const chunks = 64;
    /** A body of `chunks` chunks that calls `onRead` with how many were read so far. */
    const body = (onRead: (read: number) => void) => {
      let read = 0;
      return new Readable({
        read() {
          onRead(read);
          this.push(read < chunks ? chunk : null);
          read++;
        },
      });
    };
    // The same PUT lands when nothing aborts it.
    await p.storage.put(p.config.S3_MEDIA_BUCKET, key, body(() => undefined), 'video/mp2t', { contentLength: chunk.length * chunks, signal: new AbortController().signal });
    expect((await p.storage.head(p.config.S3_MEDIA_BUCKET, key))?.size).toBe(chunk.length * chunks);
    await p.storage.delete(p.config.S3_MEDIA_BUCKET, key);

    const cancel = new AbortController();
    let readWhenAborted = -1;
    let readInAll = 0;
    const put = p.storage.put(
      p.config.S3_MEDIA_BUCKET,
      key,
      body((read) => {
        readInAll = read;
        if (read === 2 && !cancel.signal.aborted) {
          readWhenAborted = read;
          cancel.abort();
        }
      }),
      'video/mp2t',
      { contentLength: chunk.length * chunks, signal: cancel.signal },
    );
    await expect(put).rejects.toMatchObject({ name: 'AbortError' });
    expect(readWhenAborted).toBe(2);
    expect(readInAll).toBeLessThan(chunks);
    expect(await p.storage.head(p.config.S3_MEDIA_BUCKET, key)).toBeUndefined();
  });
});
