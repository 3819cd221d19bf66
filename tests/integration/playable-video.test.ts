import { execFile, execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ffmpeg as ffmpegTools } from '../../devstack/tools';
import { MediaUploadClient, type Media } from '../../services/client';
import { derivedPrefix } from '../../services/shared/media-types';
import * as corpus from '../fixtures/corpus-video';
import { startPlatform, uniqueUser, uploadFile, waitForStatus, type Platform } from '../harness/platform';

const { ffmpeg, ffprobe } = ffmpegTools();
const TERMINAL = ['READY', 'REJECTED', 'FAILED', 'CANCELLED', 'EXPIRED', 'DELETED'];
const run = promisify(execFile);

/**
 * A standard upload as a phone writes it: H.264 8-bit 4:2:0 1080p, AAC, keyframes every 2 s,
 * in MP4 with its index first; `seconds` long.
 */
async function standardClip(seconds: number): Promise<Buffer> {
  const dir = await mkdtemp(join(tmpdir(), 'playable-'));
  try {
    const file = join(dir, 'standard.mp4');
    await run(ffmpeg, [
      '-hide_banner', '-nostdin', '-v', 'error', '-y',
      '-f', 'lavfi', '-i', `testsrc2=size=1920x1080:rate=30:duration=${seconds}`, '-f', 'lavfi', '-i', `sine=duration=${seconds}`,
      '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-g', '60', '-keyint_min', '60', '-sc_threshold', '0',
      '-c:a', 'aac', '-b:a', '64k', '-shortest', '-movflags', '+faststart', file,
    ]);
    return await readFile(file);
  } finally {
    await rm(dir, { recursive: true, force: true });
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

describe('a video is playable before it is READY', () => {
  let p: Platform;
  beforeAll(async () => {
    // The slowest preset the config allows keeps the ladder busy long after the first rendition.
    p = await startPlatform({ FFMPEG_PATH: ffmpeg, FFPROBE_PATH: ffprobe, HLS_X264_PRESET: 'medium', MULTIPART_THRESHOLD_BYTES: String(100 * 1024 * 1024) });
  });
  afterAll(() => p?.stop());

  const client = (user: string) => new MediaUploadClient({ baseUrl: p.api.url, token: () => p.token(user), pollIntervalMs: 100 });

  it('a standard 1080p H.264/AAC clip is stream-copied and playable while PROCESSING, then READY with the full ladder', async () => {
    const user = uniqueUser('playable');
    const session = await uploadFile(p, user, await standardClip(6), 'video/mp4', 'POST_VIDEO', 'standard.mp4');
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
    expect((await fetch(playable.playback!.renditions[0]!.url)).status).toBe(200);
    expect(playFirstSegment(ready.playback.masterUrl).packets).toBeGreaterThan(0);
    // Published once: the first-rendition step ran once and is recorded before the ladder.
    const { events } = await p.temporal.workflow.getHandle(`media-upload/${session.mediaId}`).fetchHistory();
    const scheduled = (events ?? []).map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name).filter(Boolean);
    expect(scheduled.filter((n) => n === 'publishFirstRendition')).toHaveLength(1);
    expect(scheduled.indexOf('publishFirstRendition')).toBeLessThan(scheduled.indexOf('transcodeVideo'));
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

  it('DELETE between playable and READY ends CANCELLED with nothing in storage, the early rendition included', async () => {
    const user = uniqueUser('playable-cancel');
    const session = await uploadFile(p, user, await standardClip(6), 'video/mp4', 'POST_VIDEO', 'standard.mp4');
    const playable = await client(user).waitForPlayable(session.mediaId);
    expect(playable.status).toBe('PROCESSING');
    expect(await p.storage.listKeys(p.config.S3_MEDIA_BUCKET, `${derivedPrefix(session.mediaId)}hls/source/`)).not.toEqual([]);
    expect((await p.call(user, `/media/${session.mediaId}`, { method: 'DELETE' })).status).toBe(202);
    const media = await waitForStatus(p, user, session.mediaId, TERMINAL, 120_000);
    expect({ status: media.status, playback: media.playback }).toEqual({ status: 'CANCELLED', playback: null });
    expect(await p.storage.head(p.config.S3_INCOMING_BUCKET, session.storageKey)).toBeUndefined();
    expect(await p.storage.head(p.config.S3_MEDIA_BUCKET, session.storageKey)).toBeUndefined();
    expect(await p.storage.listKeys(p.config.S3_MEDIA_BUCKET, derivedPrefix(session.mediaId))).toEqual([]);
  });
});
