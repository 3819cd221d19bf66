import { defaultPayloadConverter } from '@temporalio/common';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ffmpeg as ffmpegTools } from '../../devstack/tools';
import { MediaUploadClient, type Media } from '../../services/client';
import { derivedPrefix } from '../../services/shared/media-types';
import { listedSegments } from '../../services/shared/media/hls-args';
import * as corpus from '../fixtures/corpus-video';
import { startPlatform, uniqueUser, uploadFile, waitForStatus, type Platform } from '../harness/platform';
import { sseEvents } from '../harness/sse';

const { ffmpeg, ffprobe } = ffmpegTools();
const TERMINAL = ['READY', 'REJECTED', 'FAILED', 'CANCELLED', 'EXPIRED', 'DELETED'];
const run = promisify(execFile);

/**
 * A standard upload as a phone writes it: H.264 8-bit 4:2:0 1080p, AAC, keyframes every 2 s,
 * in MP4 with its index first; `seconds` long. `portrait` stores it with a display matrix
 * (a phone held upright), which a stream copy cannot show upright: the fast-rung path.
 */
async function standardClip(seconds: number, { portrait = false } = {}): Promise<Buffer> {
  const dir = await mkdtemp(join(tmpdir(), 'playable-'));
  try {
    const file = join(dir, 'standard.mp4');
    await run(ffmpeg, [
      '-hide_banner', '-nostdin', '-v', 'error', '-y',
      '-f', 'lavfi', '-i', `testsrc2=size=1920x1080:rate=30:duration=${seconds}`, '-f', 'lavfi', '-i', `sine=duration=${seconds}`,
      '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-g', '60', '-keyint_min', '60', '-sc_threshold', '0',
      '-c:a', 'aac', '-b:a', '64k', '-shortest', '-movflags', '+faststart', file,
    ]);
    if (!portrait) return await readFile(file);
    const rotated = join(dir, 'portrait.mp4');
    await run(ffmpeg, ['-hide_banner', '-nostdin', '-v', 'error', '-y', '-i', file, '-c', 'copy', '-metadata:s:v:0', 'rotate=-90', '-movflags', '+faststart', rotated]);
    return await readFile(rotated);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function waitFor(check: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** What an HLS client reads of the first seconds behind a master URL: the video stream and its first packets. */
function playFirstSegment(masterUrl: string): { codec: string; width: number; height: number; packets: number } {
  const out = JSON.parse(
    execFileSync(ffprobe, ['-v', 'error', '-select_streams', 'v:0', '-read_intervals', '%+1', '-show_entries', 'stream=codec_name,width,height:packet=pts_time', '-of', 'json', masterUrl]).toString(),
  ) as { streams: Array<{ codec_name: string; width: number; height: number }>; packets?: unknown[] };
  const s = out.streams[0]!;
  return { codec: s.codec_name, width: s.width, height: s.height, packets: out.packets?.length ?? 0 };
}

/** A webhook receiver on loopback: the events it got, in arrival order (type and the media's status then). */
async function startReceiver(): Promise<{ url: string; events: Array<{ type: string; mediaId: string; status: string; playable: boolean }>; server: Server }> {
  const events: Array<{ type: string; mediaId: string; status: string; playable: boolean }> = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const event = JSON.parse(body) as { type: string; data: { media: { mediaId: string; status: string; playback: unknown } } };
      events.push({ type: event.type, mediaId: event.data.media.mediaId, status: event.data.media.status, playable: !!event.data.media.playback });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`, events, server };
}

describe('a video is playable before it is READY', () => {
  let p: Platform;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  beforeAll(async () => {
    receiver = await startReceiver();
    // The slowest preset the config allows keeps the ladder busy long after the first rendition.
    p = await startPlatform({
      FFMPEG_PATH: ffmpeg,
      FFPROBE_PATH: ffprobe,
      HLS_X264_PRESET: 'medium',
      MULTIPART_THRESHOLD_BYTES: String(100 * 1024 * 1024),
      WEBHOOK_ENDPOINTS: JSON.stringify([{ url: receiver.url, secret: 'whsec-playable-0123456789abcdef' }]),
    });
  });
  afterAll(async () => {
    await p?.stop();
    receiver?.server.close();
  });

  const client = (user: string) => new MediaUploadClient({ baseUrl: p.api.url, token: () => p.token(user), pollIntervalMs: 100 });

  it('a standard 1080p H.264/AAC clip is stream-copied and playable while PROCESSING, then READY with the full ladder', async () => {
    const user = uniqueUser('playable');
    const session = await uploadFile(p, user, await standardClip(6), 'video/mp4', 'POST_VIDEO', 'standard.mp4');
    const stream = sseEvents(`${p.api.url}/api/v1/media/${session.mediaId}/events`, await p.token(user));
    // waitForPlayable follows the SSE stream: it resolves on the `playable` event.
    const playable: Media = await client(user).waitForPlayable(session.mediaId);
    expect({ status: playable.status, path: (playable.metadata as any).firstRendition }).toEqual({ status: 'PROCESSING', path: { path: 'copy', reasons: [], rendition: 'source' } });
    expect(playable.playback).toMatchObject({ complete: false, renditions: [{ name: 'source', width: 1920, height: 1080 }] });
    expect(playable.playback!.posterUrl).toMatch(/poster\.jpg$/);
    expect(playable.hls).toBeNull();
    // An HLS client reads the first segment through the master playlist.
    expect(playFirstSegment(playable.playback!.masterUrl)).toMatchObject({ codec: 'h264', width: 1920, height: 1080, packets: expect.any(Number) });
    expect(playFirstSegment(playable.playback!.masterUrl).packets).toBeGreaterThan(0);
    expect((await fetch(playable.playback!.posterUrl!)).status).toBe(200);
    // Still PROCESSING after the client saw it playable: the order the issue asks for.
    expect((await p.call(user, `/media/${session.mediaId}`)).body.status).toBe('PROCESSING');

    const ready = await waitForStatus(p, user, session.mediaId, TERMINAL, 240_000);
    expect(ready.status).toBe('READY');
    expect(ready.hls.renditions.map((r: { name: string }) => r.name)).toEqual(['360p', '720p', '1080p']);
    expect(ready.playback).toMatchObject({ complete: true, masterUrl: playable.playback!.masterUrl });
    expect(ready.playback.renditions.map((r: { name: string }) => r.name)).toEqual(['360p', '720p', '1080p']);
    // The master lists the ladder; the first rendition's files stay for players that started on them.
    const master = await (await fetch(ready.playback.masterUrl)).text();
    expect(master.split('\n').filter((l) => l.endsWith('index.m3u8'))).toEqual(['360p/index.m3u8', '720p/index.m3u8', '1080p/index.m3u8']);
    const source = await fetch(playable.playback!.renditions[0]!.url!);
    expect(source.status).toBe(200);
    // The first rendition's EVENT playlist is complete: ENDLIST, 6 s of segments.
    const sourceText = await source.text();
    expect(sourceText).toContain('#EXT-X-PLAYLIST-TYPE:EVENT');
    expect(sourceText.trimEnd().endsWith('#EXT-X-ENDLIST')).toBe(true);
    expect(listedSegments(sourceText).reduce((sum, s) => sum + s.seconds, 0)).toBeCloseTo(6, 0);
    expect(playFirstSegment(ready.playback.masterUrl).packets).toBeGreaterThan(0);
    // SSE: one `playable` event while PROCESSING, before the READY status event.
    const sse = await stream;
    expect(sse.filter((e) => e.event === 'playable')).toEqual([{ event: 'playable', status: 'PROCESSING', playable: true }]);
    expect(sse.findIndex((e) => e.event === 'playable')).toBeLessThan(sse.findIndex((e) => e.status === 'READY'));
    // Webhooks: `media.playable` (sent while PROCESSING, with playback) then `media.ready`.
    await waitFor(() => receiver.events.some((e) => e.mediaId === session.mediaId && e.type === 'media.ready'));
    const hooks = receiver.events.filter((e) => e.mediaId === session.mediaId);
    expect(hooks.map((e) => e.type)).toEqual(['media.playable', 'media.ready']);
    expect(hooks[0]).toMatchObject({ status: 'PROCESSING', playable: true });
    // Published once: the first-rendition step ran once and is recorded before the ladder.
    const { events } = await p.temporal.workflow.getHandle(`media-upload/${session.mediaId}`).fetchHistory();
    const scheduled = (events ?? []).map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name).filter(Boolean);
    expect(scheduled.filter((n) => n === 'publishFirstRendition')).toHaveLength(1);
    expect(scheduled.indexOf('publishFirstRendition')).toBeLessThan(scheduled.indexOf('transcodeVideo'));
  });

  it('publishes progressively: a player reads the first segments of an EVENT playlist while ffmpeg still writes it, which ends with ENDLIST', async () => {
    const user = uniqueUser('progressive');
    // 40 s of 1080p portrait: the fast rung is written for seconds after its first three segments are out.
    const session = await uploadFile(p, user, await standardClip(40, { portrait: true }), 'video/mp4', 'POST_VIDEO', 'portrait.mp4');
    const playable = await client(user).waitForPlayable(session.mediaId);
    expect(playable.status).toBe('PROCESSING');
    const variantUrl = playable.playback!.renditions[0]!.url!;
    const early = await fetch(variantUrl);
    // Playlists that change are revalidated by caches and players, never kept.
    expect(early.headers.get('cache-control')).toBe('no-cache');
    expect((await fetch(playable.playback!.masterUrl)).headers.get('cache-control')).toBe('no-cache');
    const earlyText = await early.text();
    const earlySegments = listedSegments(earlyText);
    // Still being written: an EVENT playlist without ENDLIST that asks players to start at 0, not at the live edge.
    expect(earlyText).toContain('#EXT-X-PLAYLIST-TYPE:EVENT');
    expect(earlyText).toContain('#EXT-X-START:TIME-OFFSET=0');
    expect(earlyText).not.toContain('#EXT-X-ENDLIST');
    expect(earlySegments.length).toBeGreaterThanOrEqual(3);
    const seen = playFirstSegment(playable.playback!.masterUrl);
    expect({ codec: seen.codec, width: seen.width, height: seen.height }).toEqual({ codec: 'h264', width: 360, height: 640 });
    expect(seen.packets).toBeGreaterThan(0);

    // The step ends once ffmpeg has: it announced playable before its ffmpeg exited, and the playlist is complete.
    const handle = p.temporal.workflow.getHandle(`media-upload/${session.mediaId}`);
    let result: { path: string; phasesMs: Record<string, number> } | undefined;
    while (!result) {
      const { events } = await handle.fetchHistory();
      const scheduledId = events?.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'publishFirstRendition')?.eventId;
      const done = events?.find((e) => String(e.activityTaskCompletedEventAttributes?.scheduledEventId ?? '') === String(scheduledId));
      const payload = done?.activityTaskCompletedEventAttributes?.result?.payloads?.[0];
      if (payload) result = defaultPayloadConverter.fromPayload(payload);
      else await new Promise((r) => setTimeout(r, 200));
    }
    expect(result.path).toBe('fast');
    expect(result.phasesMs['playable at']).toBeLessThan(result.phasesMs['encoded at']!);
    const finalText = await (await fetch(variantUrl)).text();
    const finalSegments = listedSegments(finalText);
    // Append-only (EVENT), complete (ENDLIST), the whole 40 s, every segment served.
    expect(finalText.trimEnd().endsWith('#EXT-X-ENDLIST')).toBe(true);
    expect(finalSegments.slice(0, earlySegments.length)).toEqual(earlySegments);
    expect(finalSegments.reduce((sum, s) => sum + s.seconds, 0)).toBeCloseTo(40, 0);
    const segmentBase = variantUrl.slice(0, variantUrl.lastIndexOf('/') + 1);
    expect((await fetch(`${segmentBase}${finalSegments.at(-1)!.uri}`)).status).toBe(200);
    // Announced once, while PROCESSING; the ladder (slow at this preset) is not waited for.
    await waitFor(() => receiver.events.some((e) => e.mediaId === session.mediaId && e.type === 'media.playable'));
    expect((await p.call(user, `/media/${session.mediaId}`, { method: 'DELETE' })).status).toBe(202);
    expect((await waitForStatus(p, user, session.mediaId, TERMINAL, 120_000)).status).toBe('CANCELLED');
    expect(receiver.events.filter((e) => e.mediaId === session.mediaId && e.type === 'media.playable')).toHaveLength(1);
    expect(await p.storage.listKeys(p.config.S3_MEDIA_BUCKET, derivedPrefix(session.mediaId))).toEqual([]);
  });

  const fastCases: Array<[string, () => Promise<corpus.VideoFixture | undefined>, RegExp]> = [
    ['HEVC 10-bit', async () => ((await corpus.hasEncoder(ffmpeg, 'libx265')) ? corpus.hevc10BitMp4(ffmpeg) : undefined), /^video codec hevc is not H.264$/],
    ['VP9 WebM', () => corpus.mediaRecorderWebm(ffmpeg, 'vp9'), /^container matroska,webm is not MP4\/MOV$/],
    ['rotated phone clip', () => corpus.rotatedMp4(ffmpeg, ffprobe, -90), /^rotation 90° needs the picture turned$/],
  ];
  it.each(fastCases)('%s takes the fast-rung path and is READY with its ladder', async (name, make, reason) => {
    const fx = await make();
    if (!fx) return console.warn(`playable video: skipping ${name}, this ffmpeg lacks its encoder`);
    const user = uniqueUser('fast');
    const session = await uploadFile(p, user, fx.data, fx.mimeType, 'POST_VIDEO', fx.fileName);
    const playable = await client(user).waitForPlayable(session.mediaId);
    expect(playable.playback?.renditions.map((r) => r.name)).toEqual(['fast']);
    expect((playable.metadata as any).firstRendition).toMatchObject({ path: 'fast', rendition: 'fast' });
    expect((playable.metadata as any).firstRendition.reasons).toContainEqual(expect.stringMatching(reason));
    // The fast rung is H.264 and upright: a portrait phone clip plays 360 wide.
    const seen = playFirstSegment(playable.playback!.masterUrl);
    expect(seen.codec).toBe('h264');
    expect(seen.packets).toBeGreaterThan(0);
    if (name === 'rotated phone clip') expect({ width: seen.width, height: seen.height }).toEqual({ width: 360, height: 640 });
    const ready = await waitForStatus(p, user, session.mediaId, TERMINAL, 240_000);
    expect(ready.status).toBe('READY');
    expect(ready.hls.renditions.length).toBeGreaterThan(0);
    expect(ready.hls.renditions.map((r: { name: string }) => r.name)).not.toContain('fast');
  });

  it('DELETE between playable and READY ends CANCELLED with nothing in storage, and webhook and SSE subscribers hear the end', async () => {
    const user = uniqueUser('playable-cancel');
    const session = await uploadFile(p, user, await standardClip(6), 'video/mp4', 'POST_VIDEO', 'standard.mp4');
    const stream = sseEvents(`${p.api.url}/api/v1/media/${session.mediaId}/events`, await p.token(user));
    const playable = await client(user).waitForPlayable(session.mediaId);
    expect(playable.status).toBe('PROCESSING');
    expect(await p.storage.listKeys(p.config.S3_MEDIA_BUCKET, `${derivedPrefix(session.mediaId)}hls/source/`)).not.toEqual([]);
    await waitFor(() => receiver.events.some((e) => e.mediaId === session.mediaId && e.type === 'media.playable'));
    expect((await p.call(user, `/media/${session.mediaId}`, { method: 'DELETE' })).status).toBe(202);
    const media = await waitForStatus(p, user, session.mediaId, TERMINAL, 120_000);
    expect({ status: media.status, playback: media.playback }).toEqual({ status: 'CANCELLED', playback: null });
    expect(await p.storage.head(p.config.S3_INCOMING_BUCKET, session.storageKey)).toBeUndefined();
    expect(await p.storage.head(p.config.S3_MEDIA_BUCKET, session.storageKey)).toBeUndefined();
    expect(await p.storage.listKeys(p.config.S3_MEDIA_BUCKET, derivedPrefix(session.mediaId))).toEqual([]);
    // A subscriber that heard `playable` hears that it is over: the stream ends on CANCELLED, the webhook sends `media.cancelled`.
    const sse = await stream;
    expect(sse.filter((e) => e.event === 'playable')).toHaveLength(1);
    expect(sse.at(-1)).toEqual({ event: 'status', status: 'CANCELLED', playable: false });
    await waitFor(() => receiver.events.some((e) => e.mediaId === session.mediaId && e.type === 'media.cancelled'));
    const hooks = receiver.events.filter((e) => e.mediaId === session.mediaId);
    expect(hooks.map((e) => e.type)).toEqual(['media.playable', 'media.cancelled']);
    expect(hooks[1]).toMatchObject({ status: 'CANCELLED', playable: false });
  });
});
