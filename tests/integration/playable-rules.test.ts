import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ffmpeg as ffmpegTools } from '../../devstack/tools';
import { MediaUploadClient, type Media } from '../../services/client';
import { derivedPrefix } from '../../services/shared/media-types';
import { listedSegments } from '../../services/shared/media/hls-args';
import { Storage } from '../../services/shared/storage';
import { startPlatform, uniqueUser, uploadFile, waitForStatus, type Platform } from '../harness/platform';

const { ffmpeg, ffprobe } = ffmpegTools();
const TERMINAL = ['READY', 'REJECTED', 'FAILED', 'CANCELLED', 'EXPIRED', 'DELETED'];
const run = promisify(execFile);

/** Runs the ffmpeg `steps` in a temp dir (`{dir}` in an argument names it) and returns the bytes of `out` there. */
async function make(out: string, steps: string[][]): Promise<Buffer> {
  const dir = await mkdtemp(join(tmpdir(), 'playable-rules-'));
  try {
    for (const args of steps) await run(ffmpeg, ['-hide_banner', '-nostdin', '-v', 'error', '-y', ...args.map((a) => a.replaceAll('{dir}', dir))]);
    return await readFile(join(dir, out));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const sine = (seconds: number) => ['-f', 'lavfi', '-i', `sine=duration=${seconds}`];
const picture = (size: string, seconds: number, rate = 30) => ['-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=${rate}:duration=${seconds}`];
const aacMp4 = ['-c:a', 'aac', '-b:a', '64k', '-shortest', '-movflags', '+faststart'];
const x264 = ['-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p'];

/** Interlaced H.264 (top field first, coded as fields: `field_order` `tt`) with AAC in MP4, 2 s GOPs: standard in every other respect. */
const interlaced = () => make('interlaced.mp4', [[...picture('640x360', 6), ...sine(6), ...x264, '-flags', '+ilme+ildct', '-top', '1', '-g', '60', ...aacMp4, '{dir}/interlaced.mp4']]);

/**
 * Interlaced with real combing: 60 fps motion woven into 30 fps frames of two fields taken
 * 1/60 s apart (top first), coded as fields. `idet` tells it from progressive video.
 */
const combed = () =>
  make('combed.mp4', [[...picture('640x360', 6, 60), ...sine(6), '-vf', 'tinterlace=interleave_top', ...x264, '-flags', '+ilme+ildct', '-top', '1', '-g', '60', ...aacMp4, '{dir}/combed.mp4']]);
/** ffmpeg `idet` over the first 60 frames of `input`: frames it found interlaced (either field first) and progressive. */
async function idet(input: string): Promise<{ interlaced: number; progressive: number }> {
  const { stderr } = await run(ffmpeg, ['-hide_banner', '-nostdin', '-v', 'info', '-i', input, '-vf', 'idet', '-frames:v', '60', '-an', '-f', 'null', '-']);
  const m = /Multi frame detection: TFF:\s*(\d+) BFF:\s*(\d+) Progressive:\s*(\d+)/.exec(stderr);
  if (!m) throw new Error(`no idet summary in: ${stderr.slice(-500)}`);
  return { interlaced: Number(m[1]) + Number(m[2]), progressive: Number(m[3]) };
}
/** The first segment of a variant playlist, as a URL. */
async function firstSegment(playlistUrl: string): Promise<string> {
  const playlist = await (await fetch(playlistUrl)).text();
  return `${playlistUrl.slice(0, playlistUrl.lastIndexOf('/') + 1)}${listedSegments(playlist)[0]!.uri}`;
}

/** x264 `open-gop`: I-frames that are not IDRs every 2 s, with B-frames shown before them (leading frames), flagged as sync samples in MP4. */
const openGop = () => make('open-gop.mp4', [[...picture('640x360', 6), ...sine(6), '-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p', '-x264-params', 'open-gop=1:keyint=60:min-keyint=60:bframes=3:scenecut=0', ...aacMp4, '{dir}/open-gop.mp4']]);

/**
 * Variable frame rate, 24 s: 30 fps for 8 s, 10 fps for 8 s, 30 fps again (average ≈ 23 fps,
 * so a GOP of round(avg fps) × 2 frames is 1.5 s at 30 fps and 4.6 s at 10 fps), in MP4 with
 * keyframes 10 s apart (not standard input: the fast rung).
 */
const vfr = () =>
  make('vfr.mp4', [[...picture('1280x720', 24), ...sine(24), '-vf', "select='not(between(t\\,8\\,16))+not(mod(n\\,3))'", '-fps_mode', 'vfr', ...x264, '-g', '300', '-keyint_min', '300', '-sc_threshold', '0', ...aacMp4, '{dir}/vfr.mp4']]);

/**
 * Standard input whose keyframes are 2 s apart for the first 12 s (all the probe's window sees),
 * then one 6 s GOP, then 2 s again: 24 s. A copy's longest segment (6 s) comes at 12 s.
 */
const lateLongGop = () =>
  make('late-gop.mp4', [[...picture('640x360', 24), ...sine(24), ...x264, '-force_key_frames', '0,2,4,6,8,10,12,18,20,22', '-g', '1000', '-keyint_min', '1000', '-sc_threshold', '0', ...aacMp4, '{dir}/late-gop.mp4']]);

/** Every version of a variant playlist a player reloading it every 50 ms sees, from now until ENDLIST. */
async function playlistVersions(url: string): Promise<string[]> {
  const versions: string[] = [];
  for (;;) {
    const text = await (await fetch(url)).text();
    if (versions.at(-1) !== text) versions.push(text);
    if (text.includes('#EXT-X-ENDLIST')) return versions;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Every PUT to S3 the in-process video worker makes goes through, recorded (a pass-through
 * spy: the real S3 receives it), so a test sees each version of a playlist as published,
 * the first one included, however fast the next replaces it.
 */
const puts = jest.spyOn(Storage.prototype, 'put');

/** Each version of a media's first-rendition variant playlist as it was PUT, in order. */
function publishedVersions(mediaId: string, rendition: string): string[] {
  const key = `${derivedPrefix(mediaId)}hls/${rendition}/index.m3u8`;
  return puts.mock.calls.filter((c) => c[1] === key).map((c) => String(c[2]));
}

const targetOf = (playlist: string) => Number(/#EXT-X-TARGETDURATION:(\d+)/.exec(playlist)?.[1]);

/** RFC 8216 §4.3.3.1 over every version seen: one target duration, every rounded EXTINF within it. */
function expectOneTargetDuration(versions: string[]): number {
  const targets = [...new Set(versions.map(targetOf))];
  expect(targets).toHaveLength(1);
  const target = targets[0]!;
  expect(target).toBeGreaterThan(0);
  for (const v of versions) for (const s of listedSegments(v)) expect(Math.round(s.seconds)).toBeLessThanOrEqual(target);
  return target;
}

/** The CODECS value a segment's own streams call for, from ffprobe's profile and level names (not from the code under test's SPS parsing). */
async function expectedCodecs(segmentUrl: string): Promise<{ profileIdc: string; levelIdc: string; audio?: string }> {
  const { stdout } = await run(ffprobe, ['-v', 'error', '-show_entries', 'stream=codec_type,profile,level', '-of', 'json', segmentUrl]);
  const streams = (JSON.parse(stdout) as { streams: Array<{ codec_type: string; profile: string; level?: number }> }).streams;
  const video = streams.find((s) => s.codec_type === 'video')!;
  const audio = streams.find((s) => s.codec_type === 'audio');
  const profileIdc = { 'Constrained Baseline': '42', Baseline: '42', Main: '4d', High: '64' }[video.profile]!;
  return { profileIdc, levelIdc: video.level!.toString(16).padStart(2, '0'), ...(audio ? { audio: { LC: 'mp4a.40.2', 'HE-AAC': 'mp4a.40.5' }[audio.profile]! } : {}) };
}

/** Each variant of a master playlist: its URI and CODECS. */
function variantsOf(master: string): Array<{ uri: string; codecs?: string }> {
  const lines = master.split('\n');
  return lines.flatMap((l, i) => (l.startsWith('#EXT-X-STREAM-INF:') ? [{ uri: lines[i + 1]!.trim(), codecs: /CODECS="([^"]*)"/.exec(l)?.[1] }] : []));
}

async function expectCodecsMatchStreams(masterUrl: string): Promise<void> {
  const master = await (await fetch(masterUrl)).text();
  const base = masterUrl.slice(0, masterUrl.lastIndexOf('/') + 1);
  const variants = variantsOf(master);
  expect(variants.length).toBeGreaterThan(0);
  for (const v of variants) {
    const playlist = await (await fetch(`${base}${v.uri}`)).text();
    const segment = `${base}${v.uri.slice(0, v.uri.lastIndexOf('/') + 1)}${listedSegments(playlist)[0]!.uri}`;
    const want = await expectedCodecs(segment);
    const [video, audio, ...rest] = (v.codecs ?? '').split(',');
    expect(video).toMatch(new RegExp(`^avc1\\.${want.profileIdc}[0-9a-f]{2}${want.levelIdc}$`));
    expect(audio).toBe(want.audio);
    expect(rest).toEqual([]);
  }
}

describe('first rendition: which sources a copy takes, and honest HLS', () => {
  let p: Platform;
  beforeAll(async () => {
    p = await startPlatform({ FFMPEG_PATH: ffmpeg, FFPROBE_PATH: ffprobe, HLS_X264_PRESET: 'ultrafast', MULTIPART_THRESHOLD_BYTES: String(100 * 1024 * 1024) });
  });
  afterAll(async () => {
    await p?.stop();
  });

  const upload = async (data: Buffer, mimeType: string, fileName: string) => {
    const user = uniqueUser('rules');
    const session = await uploadFile(p, user, data, mimeType, 'POST_VIDEO', fileName);
    const client = new MediaUploadClient({ baseUrl: p.api.url, token: () => p.token(user), pollIntervalMs: 100 });
    const playable: Media = await client.waitForPlayable(session.mediaId);
    return { user, session, playable, first: (playable.metadata as any).firstRendition as { path: string; reasons: string[]; rendition: string } };
  };

  it.each([
    ['interlaced H.264', interlaced, 'interlaced video (field order tt) needs deinterlacing'],
    ['open-GOP H.264', openGop, 'open GOP: frames after a keyframe refer to frames before it'],
  ])('%s (otherwise standard) takes the fast rung with its reason, and plays', async (_name, fixture, reason) => {
    const { user, session, playable, first } = await upload(await fixture(), 'video/mp4', 'clip.mp4');
    expect(first).toEqual({ path: 'fast', reasons: [reason], rendition: 'fast' });
    expect(playable.playback!.renditions.map((r) => r.name)).toEqual(['fast']);
    await expectCodecsMatchStreams(playable.playback!.masterUrl);
    expect((await waitForStatus(p, user, session.mediaId, TERMINAL, 240_000)).status).toBe('READY');
  });

  it('an interlaced source is deinterlaced: the fast rung and every rung of the ladder come out progressive', async () => {
    const source = await combed();
    const dir = await mkdtemp(join(tmpdir(), 'playable-rules-'));
    try {
      // The control: the fixture itself is combed, and idet says so.
      await writeFile(join(dir, 'combed.mp4'), source);
      const before = await idet(join(dir, 'combed.mp4'));
      expect(before.interlaced).toBeGreaterThan(before.progressive);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const { user, session, playable, first } = await upload(source, 'video/mp4', 'combed.mp4');
    expect(first.path).toBe('fast');
    const fast = await idet(await firstSegment(playable.playback!.renditions[0]!.url!));
    expect(fast.progressive).toBeGreaterThan(fast.interlaced);
    const ready = (await waitForStatus(p, user, session.mediaId, TERMINAL, 240_000)) as unknown as Media;
    expect(ready.status).toBe('READY');
    const rungs = ready.playback!.renditions;
    expect(rungs.length).toBeGreaterThan(0);
    for (const rung of rungs) {
      const out = await idet(await firstSegment(rung.url!));
      expect({ rung: rung.name, progressiveWins: out.progressive > out.interlaced }).toEqual({ rung: rung.name, progressiveWins: true });
    }
  });

  it('a VFR source on the fast rung cuts at exact segment times, under one target duration in every playlist version', async () => {
    const { session, playable, first } = await upload(await vfr(), 'video/mp4', 'vfr.mp4');
    expect(first).toMatchObject({ path: 'fast', reasons: [expect.stringMatching(/^keyframe interval .* exceeds 4 s$/)] });
    const seen = [...publishedVersions(session.mediaId, 'fast'), ...(await playlistVersions(playable.playback!.renditions[0]!.url!))];
    expect(expectOneTargetDuration(seen)).toBe(2);
    const segments = listedSegments(seen.at(-1)!);
    expect(segments.reduce((sum, s) => sum + s.seconds, 0)).toBeCloseTo(24, 0);
    // Every boundary within one frame (1/10 s at the slow part) of a multiple of 2 s: no drift.
    let at = 0;
    for (const [i, s] of segments.slice(0, -1).entries()) {
      at += s.seconds;
      expect(Math.abs(at - 2 * (i + 1))).toBeLessThan(0.1 + 1e-3);
    }
    // Announced once three target durations were listed.
    expect(listedSegments(seen[0]!).reduce((sum, s) => sum + s.seconds, 0)).toBeGreaterThanOrEqual(3 * 2 - 1e-3);
  });

  it('a copy whose long GOP comes after the probed seconds declares it from the first version and announces at three target durations; CODECS match the streams, before and after the ladder', async () => {
    const { user, session, playable, first } = await upload(await lateLongGop(), 'video/mp4', 'late-gop.mp4');
    expect(first).toEqual({ path: 'copy', reasons: [], rendition: 'source' });
    await expectCodecsMatchStreams(playable.playback!.masterUrl);
    await playlistVersions(playable.playback!.renditions[0]!.url!);
    // Every version published (the first at the announcement), and the player's reads above.
    const seen = publishedVersions(session.mediaId, 'source');
    // The 6 s segment (12 → 18 s) sets the target of every version, the first one included.
    expect(expectOneTargetDuration(seen)).toBe(6);
    const firstVersion = seen[0]!;
    expect(firstVersion.includes('#EXT-X-ENDLIST') || listedSegments(firstVersion).reduce((sum, s) => sum + s.seconds, 0) >= 3 * 6 - 1e-3).toBe(true);
    expect(listedSegments(seen.at(-1)!).map((s) => Math.round(s.seconds))).toEqual([2, 2, 2, 2, 2, 2, 6, 2, 2, 2]);
    const ready = await waitForStatus(p, user, session.mediaId, TERMINAL, 240_000);
    expect(ready.status).toBe('READY');
    await expectCodecsMatchStreams(ready.playback.masterUrl);
  });
});
