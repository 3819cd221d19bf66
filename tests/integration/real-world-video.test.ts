import { execFileSync } from 'node:child_process';
import sharp from 'sharp';
import { ffmpeg as ffmpegTools } from '../../devstack/tools';
import { MediaUploadClient } from '../../services/client';
import { derivedPrefix } from '../../services/shared/media-types';
import { mediaWorkflowId } from '../../workflows/media-upload.workflow';
import * as corpus from '../fixtures/corpus-video';
import { startPlatform, uniqueUser, uploadFile, waitForStatus, type Platform } from '../harness/platform';

const { ffmpeg, ffprobe } = ffmpegTools();
const TERMINAL = ['READY', 'REJECTED', 'FAILED', 'CANCELLED', 'EXPIRED', 'DELETED'];
const x265 = / libx265 /.test(execFileSync(ffmpeg, ['-hide_banner', '-encoders']).toString());
if (!x265) console.warn('real-world video: skipping the 10-bit HEVC case, this ffmpeg has no libx265 encoder');

interface ReadyExpectation {
  /** Displayed size (rotation applied) and clockwise rotation reported in `metadata`. */
  width: number;
  height: number;
  rotation: number;
  /** HLS renditions as written: `name`, width, height. */
  renditions: Array<[string, number, number]>;
  /** The poster is upright: red top half, blue bottom half (the two-tone fixtures). */
  upright?: boolean;
}

/** ffprobe's video size of a URL or file (a variant playlist plays its segments). */
function probeSize(url: string): { width: number; height: number } {
  const out = JSON.parse(execFileSync(ffprobe, ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=width,height', '-of', 'json', url]).toString()) as {
    streams: Array<{ width: number; height: number }>;
  };
  return { width: out.streams[0]!.width, height: out.streams[0]!.height };
}

/** RESOLUTION of each variant of a master playlist, by variant directory name. */
function masterResolutions(master: string): Record<string, string> {
  const lines = master.split('\n');
  const out: Record<string, string> = {};
  lines.forEach((line, i) => {
    if (line.startsWith('#EXT-X-STREAM-INF:')) out[lines[i + 1]!.split('/')[0]!] = /RESOLUTION=(\d+x\d+)/.exec(line)?.[1] ?? 'none';
  });
  return out;
}

/** Nothing of the media in either bucket: original (incoming and media) and `derived/{mediaId}/`. */
async function expectNothingStored(p: Platform, session: { mediaId: string; storageKey: string }) {
  expect(await p.storage.head(p.config.S3_INCOMING_BUCKET, session.storageKey)).toBeUndefined();
  expect(await p.storage.head(p.config.S3_MEDIA_BUCKET, session.storageKey)).toBeUndefined();
  expect(await p.storage.listKeys(p.config.S3_MEDIA_BUCKET, derivedPrefix(session.mediaId))).toEqual([]);
}

async function expectReady(media: any, want: ReadyExpectation) {
  expect({ status: media.status, failureReason: media.failureReason }).toEqual({ status: 'READY', failureReason: null });
  expect(media.metadata).toMatchObject({ width: want.width, height: want.height, rotation: want.rotation });
  expect(media.hls.renditions.map((r: { name: string; width: number; height: number }) => [r.name, r.width, r.height])).toEqual(want.renditions);
  // The playlist announces, and the segments hold, exactly the sizes the API reports.
  const master = await (await fetch(media.hls.masterUrl)).text();
  expect(masterResolutions(master)).toEqual(Object.fromEntries(want.renditions.map(([n, w, h]) => [n, `${w}x${h}`])));
  for (const r of media.hls.renditions) expect(probeSize(r.url)).toEqual({ width: r.width, height: r.height });
  // The poster is the displayed picture: same orientation and aspect as the video.
  const poster = Buffer.from(await (await fetch(media.poster.url)).arrayBuffer());
  const { data, info } = await sharp(poster).raw().toBuffer({ resolveWithObject: true });
  expect({ width: info.width, height: info.height }).toEqual({ width: want.width, height: want.height });
  if (want.upright) {
    const pixel = (y: number) => Array.from(data.subarray((y * info.width + (info.width >> 1)) * info.channels, (y * info.width + (info.width >> 1)) * info.channels + 3));
    const [top, bottom] = [pixel(Math.round(info.height * 0.1)), pixel(Math.round(info.height * 0.9))];
    expect({ topIsRed: top[0]! > 200 && top[2]! < 60, bottomIsBlue: bottom[2]! > 200 && bottom[0]! < 60 }).toEqual({ topIsRed: true, bottomIsBlue: true });
  }
}

describe('real-world video inputs end to end on the real stack', () => {
  let p: Platform;
  beforeAll(async () => {
    p = await startPlatform({ FFMPEG_PATH: ffmpeg, FFPROBE_PATH: ffprobe, HLS_X264_PRESET: 'ultrafast' });
  });
  afterAll(() => p?.stop());

  async function run(fx: corpus.VideoFixture, name: string) {
    const user = uniqueUser(name);
    const session = await uploadFile(p, user, fx.data, fx.mimeType, 'POST_VIDEO', fx.fileName);
    const media = await waitForStatus(p, user, session.mediaId, TERMINAL, 120_000);
    return { user, session, media };
  }

  it('phone portrait (display matrix −90, coded 1280×720): upright 720×1280, rungs 360×640 and 720×1280', async () => {
    const { media } = await run(await corpus.rotatedMp4(ffmpeg, ffprobe, -90, 720, 1280), 'portrait-m90');
    await expectReady(media, { width: 720, height: 1280, rotation: 90, renditions: [['360p', 360, 640], ['720p', 720, 1280]], upright: true });
  });

  it('display matrix +90 in a QuickTime MOV with its index at the end: upright 360×640, one 360p rung of 360×640', async () => {
    const { media } = await run(await corpus.rotatedMp4(ffmpeg, ffprobe, 90, 360, 640, 'mov'), 'portrait-p90');
    await expectReady(media, { width: 360, height: 640, rotation: 270, renditions: [['360p', 360, 640]], upright: true });
  });

  it('upside down (display matrix 180): upright, size unchanged', async () => {
    const { media } = await run(await corpus.rotatedMp4(ffmpeg, ffprobe, 180), 'rot180');
    await expectReady(media, { width: 360, height: 640, rotation: 180, renditions: [['360p', 360, 640]], upright: true });
  });

  it('landscape control (640×360, no rotation)', async () => {
    const { media } = await run(await corpus.landscapeMp4(ffmpeg), 'landscape');
    await expectReady(media, { width: 640, height: 360, rotation: 0, renditions: [['360p', 640, 360]], upright: true });
  });

  it.each(['vp8', 'vp9'] as const)('browser MediaRecorder WebM (%s + Opus) without a duration is READY with the duration of its packets', async (codec) => {
    const { media } = await run(await corpus.mediaRecorderWebm(ffmpeg, codec), `webm-${codec}`);
    await expectReady(media, { width: 320, height: 240, rotation: 0, renditions: [['240p', 320, 240]] });
    expect(media.metadata).toMatchObject({ videoCodec: codec, audioCodec: 'opus', hasAudio: true });
    expect(media.metadata.durationSeconds).toBeCloseTo(2, 0);
  });

  it('a MediaRecorder Blob typed with its codecs (video/webm;codecs=vp8,opus) uploads through the client library to READY', async () => {
    const user = uniqueUser('webm-blob');
    const fx = await corpus.mediaRecorderWebm(ffmpeg, 'vp8');
    // What `new Blob(chunks, { type: recorder.mimeType })` gives in Chrome: the type carries codecs.
    const blob = new Blob([fx.data], { type: 'video/webm;codecs=vp8,opus' });
    const client = new MediaUploadClient({ baseUrl: p.api.url, token: () => p.token(user), pollIntervalMs: 200 });
    const { mediaId } = await client.upload(blob, { fileName: 'recording.webm' });
    const media = await waitForStatus(p, user, mediaId, TERMINAL, 120_000);
    expect({ status: media.status, mimeType: media.mimeType, mediaType: media.mediaType }).toEqual({ status: 'READY', mimeType: 'video/webm', mediaType: 'POST_VIDEO' });
  });

  it('0.5 s of video beside 6 s of audio: the poster comes from inside the video stream', async () => {
    const { media } = await run(await corpus.shortVideoLongAudio(ffmpeg), 'short-video');
    await expectReady(media, { width: 320, height: 180, rotation: 0, renditions: [['180p', 320, 180]] });
    expect(media.metadata.durationSeconds).toBeCloseTo(6, 0);
  });

  it('audio-only MP4 with cover art is REJECTED as NO_VIDEO_STREAM and leaves nothing stored', async () => {
    const { media, session } = await run(await corpus.audioWithCoverArt(ffmpeg), 'cover-art');
    expect(media.status).toBe('REJECTED');
    expect(media.failureReason).toBe('NO_VIDEO_STREAM: audio only (with cover art): no video stream to play');
    await expectNothingStored(p, session);
  });

  it('audio-only MediaRecorder WebM declared as video is REJECTED as NO_VIDEO_STREAM and leaves nothing stored', async () => {
    const { media, session } = await run(await corpus.audioOnlyWebm(ffmpeg), 'voice-webm');
    expect(media.status).toBe('REJECTED');
    expect(media.failureReason).toBe('NO_VIDEO_STREAM: audio only: no video stream to play');
    await expectNothingStored(p, session);
  });

  it('a 1-frame MP4 is READY (the poster falls back to the first frame)', async () => {
    const { media } = await run(await corpus.oneFrameMp4(ffmpeg), 'one-frame');
    await expectReady(media, { width: 320, height: 240, rotation: 0, renditions: [['240p', 320, 240]] });
  });

  it('a truncated MP4 (no index) is REJECTED as UNDECODABLE_MEDIA with a one-line reason naming no path, URL or key', async () => {
    const { media, session } = await run(await corpus.truncatedMp4(ffmpeg), 'truncated-mp4');
    expect(media.status).toBe('REJECTED');
    expect(media.failureReason).toMatch(/^UNDECODABLE_MEDIA: ffprobe could not read the file: moov atom not found/);
    expect(media.failureReason).not.toMatch(/\/tmp\/|https?:|\n|127\.0\.0\.1|incoming/);
    expect(media.failureReason).not.toContain(session.storageKey);
    await expectNothingStored(p, session);
  });

  // Damaged packets: the first rendition's stream copy stops on them ("Invalid NAL unit size",
  // "Error applying bitstream filters"); the next attempt encodes instead, and the decoder conceals
  // the damage, as a player does. Only a video of which no frame decodes is refused.
  async function expectPlayableDespiteDamage(fx: corpus.VideoFixture, name: string) {
    const { media } = await run(fx, name);
    expect({ status: media.status, failureReason: media.failureReason }).toEqual({ status: 'READY', failureReason: null });
    expect(media.metadata.firstRendition).toMatchObject({ path: 'fast', rendition: 'fast' });
    expect(media.metadata.firstRendition.reasons.join('; ')).toMatch(/stream copy stopped on corrupt packets: .*(bitstream filters|NAL unit)/);
    expect(media.metadata.firstRendition.reasons.join('; ')).not.toMatch(/\/tmp\/|https?:|\n|127\.0\.0\.1|incoming/);
    expect(media.hls.renditions.map((r: { name: string; width: number; height: number }) => [r.name, r.width, r.height])).toEqual([['360p', 640, 360]]);
    // The whole 3 s plays: every frame of the ladder's rung decodes, the damaged ones concealed.
    expect(decodedFrames(media.hls.renditions[0].url)).toBeGreaterThanOrEqual(85);
    expect(probeSize(media.poster.url)).toEqual({ width: 640, height: 360 });
  }

  it('an MP4 with one broken packet (its NAL length overwritten) is READY: the first rendition is encoded when the stream copy stops on it', async () => {
    await expectPlayableDespiteDamage(await corpus.oneBrokenPacketMp4(ffmpeg, ffprobe), 'one-broken-packet');
  });

  it('an MP4 with 3000 bytes of its media data overwritten is READY the same way, the damage concealed', async () => {
    await expectPlayableDespiteDamage(await corpus.corruptedMp4(ffmpeg), 'corrupted-mp4');
  });

  it('an MP4 whose media data is random from end to end is REJECTED as UNDECODABLE_MEDIA (no frame decodes), with a reason from ffmpeg (no progress line) and nothing stored', async () => {
    const { media, session } = await run(await corpus.garbageMediaDataMp4(ffmpeg), 'garbage-media-data');
    expect(media.status).toBe('REJECTED');
    expect(media.failureReason).toMatch(/^UNDECODABLE_MEDIA: /);
    expect(media.failureReason).not.toMatch(/frame=|fps=|\/tmp\/|https?:|\n|127\.0\.0\.1|incoming|FfmpegExitError/);
    await expectNothingStored(p, session);
  });

  it('an MP4 cut after its index (faststart) is REJECTED as cut short instead of READY with a duration it does not play', async () => {
    const { media, session } = await run(await corpus.cutAfterIndexMp4(ffmpeg, ffprobe), 'cut-after-index');
    expect(media.status).toBe('REJECTED');
    expect(media.failureReason).toMatch(/^UNDECODABLE_MEDIA: the video is cut short: \d+\.\d s of the 4\.0 s its index declares decode$/);
    await expectNothingStored(p, session);
  });

  it('odd sizes: 1281×719 gets a 642×360 rung, 201×113 one 200×112 rung', async () => {
    const big = await run(await corpus.oddSizeMp4(ffmpeg, 1281, 719), 'odd-big');
    await expectReady(big.media, { width: 1281, height: 719, rotation: 0, renditions: [['360p', 642, 360]] });
    const small = await run(await corpus.oddSizeMp4(ffmpeg, 201, 113), 'odd-small');
    await expectReady(small.media, { width: 201, height: 113, rotation: 0, renditions: [['112p', 200, 112]] });
  });

  it('anamorphic 480×360 with 4:3 pixels is shown and laddered at 640×360 with square pixels', async () => {
    const { media } = await run(await corpus.anamorphicMp4(ffmpeg), 'anamorphic');
    await expectReady(media, { width: 640, height: 360, rotation: 0, renditions: [['360p', 640, 360]] });
    const sar = execFileSync(ffprobe, ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=sample_aspect_ratio', '-of', 'csv=p=0', media.hls.renditions[0].url]).toString().trim().split('\n').filter(Boolean);
    expect(new Set(sar)).toEqual(new Set(['1:1']));
  });

  it('variable frame rate is READY', async () => {
    const { media } = await run(await corpus.vfrMp4(ffmpeg), 'vfr');
    await expectReady(media, { width: 320, height: 240, rotation: 0, renditions: [['240p', 320, 240]] });
    expect(media.metadata.frameRate).toBeLessThan(30);
  });

  (x265 ? it.each : it.skip.each)([
    ['10-bit HEVC', false, 'unknown'],
    ['10-bit HEVC HDR (HLG, BT.2020) tone-mapped', true, 'bt709'],
  ])('%s is READY as 8-bit H.264 SDR renditions', async (_kind, hdr, transfer) => {
    const { media } = await run(await corpus.hevc10BitMp4(ffmpeg, hdr), hdr ? 'hdr' : 'hevc10');
    await expectReady(media, { width: 320, height: 180, rotation: 0, renditions: [['180p', 320, 180]] });
    expect(media.metadata.videoCodec).toBe('hevc');
    // A variant playlist lists its stream once per program: every line must be 8-bit H.264, never tagged HDR.
    const variant = media.hls.renditions[0].url as string;
    const streams = execFileSync(ffprobe, ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=codec_name,pix_fmt,color_transfer', '-of', 'csv=p=0', variant]).toString().trim().split('\n').filter(Boolean);
    expect(new Set(streams.map((l) => l.split(',').slice(0, 2).join(',')))).toEqual(new Set(['h264,yuv420p']));
    expect(new Set(streams.map((l) => l.split(',')[2] || 'unknown'))).toEqual(new Set([transfer]));
  });
});

/** Frames ffmpeg decodes from a variant playlist (its segments, as a player reads them); throws when ffprobe cannot read it. */
function decodedFrames(url: string): number {
  const out = execFileSync(ffprobe, ['-v', 'error', '-select_streams', 'v:0', '-count_frames', '-show_entries', 'stream=nb_read_frames', '-of', 'csv=p=0', url]).toString();
  // One line per program and one per stream, for the same stream.
  return Math.max(...out.trim().split('\n').filter(Boolean).map(Number));
}

describe('low frame rates, single frames and long GOPs end to end at the default x264 preset', () => {
  let p: Platform;
  beforeAll(async () => {
    // The preset production runs (veryfast): a flat picture compresses to a few TS packets a segment, where ultrafast writes more.
    p = await startPlatform({ FFMPEG_PATH: ffmpeg, FFPROBE_PATH: ffprobe });
  });
  afterAll(() => p?.stop());

  async function run(fx: corpus.VideoFixture, name: string) {
    const user = uniqueUser(name);
    const session = await uploadFile(p, user, fx.data, fx.mimeType, 'POST_VIDEO', fx.fileName);
    return waitForStatus(p, user, session.mediaId, TERMINAL, 240_000);
  }

  // Tiny segments (a few TS packets) once made ffprobe read the platform's own output as
  // MPEG-PS: REJECTED "UNDECODABLE_MEDIA: ffprobe could not read the file: /tmp/…/segment_000.ts: End of file".
  it.each([
    ['1280×720 at 1 fps for 2 s (the tester\'s clip)', { width: 1280, height: 720, fps: 1, seconds: 2 }, [['360p', 640, 360], ['720p', 1280, 720]], 2],
    ['a single frame of 1280×720', { width: 1280, height: 720, fps: 30, frames: 1 }, [['360p', 640, 360], ['720p', 1280, 720]], 1],
    ['0.1 s (3 frames) of 320×240', { width: 320, height: 240, fps: 30, seconds: 0.1 }, [['240p', 320, 240]], 3],
    ['64×64 at 1 fps for 10 min', { width: 64, height: 64, fps: 1, seconds: 600 }, [['64p', 64, 64]], 600],
    ['320×240 at 1 fps for 30 s, one keyframe per 30 s', { width: 320, height: 240, fps: 1, seconds: 30, gopFrames: 30 }, [['240p', 320, 240]], 30],
  ] as const)('flat colour, %s: READY, every rung and the master readable by ffprobe, every frame there', async (_kind, clip: Parameters<typeof corpus.flatClip>[1], renditions, frames) => {
    const media = await run(await corpus.flatClip(ffmpeg, clip), `flat-${clip.width}-${clip.fps}-${clip.seconds ?? clip.frames}`);
    await expectReady(media, { width: clip.width, height: clip.height, rotation: 0, renditions: renditions.map((r) => [...r]) });
    expect(probeSize(media.hls.masterUrl)).toEqual({ width: renditions[0]![1], height: renditions[0]![2] });
    for (const r of media.hls.renditions) expect(decodedFrames(r.url)).toBe(frames);
  }, 300_000);

  it('a long GOP (one keyframe per 10 s) is encoded, not stream-copied, and READY', async () => {
    const media = await run(await corpus.longGopMp4(ffmpeg), 'long-gop');
    await expectReady(media, { width: 640, height: 360, rotation: 0, renditions: [['360p', 640, 360]] });
    expect(media.metadata.firstRendition).toMatchObject({ path: 'fast' });
    expect(decodedFrames(media.hls.renditions[0].url)).toBe(300);
  });
});

/** Indexes in the workflow history: the processing activity's end, and compensation's start. */
async function historyOrder(p: Platform, mediaId: string, activity: string) {
  const { events } = await p.temporal.workflow.getHandle(mediaWorkflowId(mediaId)).fetchHistory();
  const list = events ?? [];
  const scheduled = list.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === activity);
  const id = Number(scheduled?.eventId);
  const closedAt = list.findIndex((e) =>
    [e.activityTaskCompletedEventAttributes, e.activityTaskFailedEventAttributes, e.activityTaskCanceledEventAttributes, e.activityTaskTimedOutEventAttributes].some((a) => a && Number(a.scheduledEventId) === id),
  );
  return {
    cancelRequested: list.some((e) => Number(e.activityTaskCancelRequestedEventAttributes?.scheduledEventId) === id),
    closedAt,
    closedAs: closedAt < 0 ? 'open' : list[closedAt]!.activityTaskCanceledEventAttributes ? 'canceled' : list[closedAt]!.activityTaskCompletedEventAttributes ? 'completed' : 'other',
    compensationAt: list.findIndex((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'compensateUpload'),
  };
}

describe('DELETE while processing leaves nothing in either bucket', () => {
  let p: Platform;
  beforeAll(async () => {
    // The slowest x264 preset the config allows keeps the 20 s clip transcoding for many seconds.
    p = await startPlatform({ FFMPEG_PATH: ffmpeg, FFPROBE_PATH: ffprobe, HLS_X264_PRESET: 'medium', MULTIPART_THRESHOLD_BYTES: String(100 * 1024 * 1024) });
  });
  afterAll(() => p?.stop());

  it('a 20 s clip deleted 1.5 s into PROCESSING ends CANCELLED after the running video step stopped, with storage empty', async () => {
    const user = uniqueUser('del-video');
    const clip = await corpus.longClip(ffmpeg, 20, 640, 360);
    const session = await uploadFile(p, user, clip.data, clip.mimeType, 'POST_VIDEO', clip.fileName);
    await waitForStatus(p, user, session.mediaId, ['PROCESSING', ...TERMINAL], 60_000);
    await new Promise((r) => setTimeout(r, 1500));
    expect((await p.call(user, `/media/${session.mediaId}`)).body.status).toBe('PROCESSING');
    expect((await p.call(user, `/media/${session.mediaId}`, { method: 'DELETE' })).status).toBe(202);
    const media = await waitForStatus(p, user, session.mediaId, TERMINAL, 120_000);
    expect({ status: media.status, failureReason: media.failureReason }).toEqual({ status: 'CANCELLED', failureReason: 'CANCELLED_BY_USER' });
    // Compensation started only after the running video step (the first rendition or the
    // ladder, whichever was running 1.5 s in) had acknowledged the cancellation.
    const steps = await Promise.all(['publishFirstRendition', 'transcodeVideo'].map((a) => historyOrder(p, session.mediaId, a)));
    const order = steps.find((s) => s.cancelRequested) ?? steps[1]!;
    // The step either stopped on the cancellation or had just finished its last write when it
    // came; either way it closed before compensation was scheduled.
    expect(order.cancelRequested).toBe(true);
    expect(['canceled', 'completed']).toContain(order.closedAs);
    expect(order.closedAt).toBeGreaterThanOrEqual(0);
    expect(order.closedAt).toBeLessThan(order.compensationAt);
    await expectNothingStored(p, session);
  });

  it('an image deleted while its thumbnails are being made ends CANCELLED with storage empty', async () => {
    const user = uniqueUser('del-image');
    // 16000×16000 pixels (a plain PNG, small on disk): sharp decodes every pixel, which takes a while.
    const png = await sharp({ create: { width: 16000, height: 16000, channels: 3, background: '#808080' } }).png().toBuffer();
    const session = await uploadFile(p, user, png, 'image/png', 'POST_IMAGE', 'large.png');
    expect((await waitForStatus(p, user, session.mediaId, ['PROCESSING', ...TERMINAL], 60_000)).status).toBe('PROCESSING');
    expect((await p.call(user, `/media/${session.mediaId}`, { method: 'DELETE' })).status).toBe(202);
    const media = await waitForStatus(p, user, session.mediaId, TERMINAL, 120_000);
    expect(media.status).toBe('CANCELLED');
    const order = await historyOrder(p, session.mediaId, 'processImage');
    // Whether the activity saw the cancellation or finished first, compensation came after it ended.
    expect(order.closedAt).toBeGreaterThanOrEqual(0);
    expect(order.closedAt).toBeLessThan(order.compensationAt);
    await expectNothingStored(p, session);
  });
});
