import { execFile, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { diesWithParent } from '../child-process';
import { redactPresignedUrls } from '../logger';
import { avcCodec, clockwiseRotation, codecsAttribute, type ProbeResult, type VariantFacts } from './hls-args';
import { publicDetail, ToolError } from './tool-errors';

export interface FfmpegPaths {
  ffmpeg: string;
  ffprobe: string;
}

/**
 * The file is not a playable video. `code` is the failure type the workflow records:
 * `UNDECODABLE_MEDIA` (ffprobe cannot read it, or no frame decodes) or `NO_VIDEO_STREAM`
 * (readable, but audio only: cover art is not a video). `message` is fit for the failure
 * reason users see (see publicDetail); `detail` is the tool's own output for the worker log.
 */
export class UnplayableMediaError extends ToolError {
  constructor(
    message: string,
    readonly code: 'UNDECODABLE_MEDIA' | 'NO_VIDEO_STREAM' = 'UNDECODABLE_MEDIA',
    detail?: string,
  ) {
    super(message, detail);
  }
}

/** An ffprobe failure on the uploaded file: a short public reason, the whole stderr (presigned URLs redacted) as detail. */
const unreadable = (what: string, stderr: string) => new UnplayableMediaError(`ffprobe could not read the ${what}: ${publicDetail(stderr)}`, 'UNDECODABLE_MEDIA', redactPresignedUrls(stderr.trim()));

/**
 * A file the platform wrote itself (an HLS segment) could not be read back. Never bad content
 * of the upload: a plain Error, retried, whose message names no path; `detail` is for the log.
 */
export class OwnOutputError extends ToolError {
  override name = 'OwnOutputError';
}

/** The parts of `ffprobe -of json -show_format -show_streams` read here. */
interface FfprobeStream {
  index: number;
  codec_type?: string;
  codec_name?: string;
  width?: number;
  height?: number;
  avg_frame_rate?: string;
  profile?: string;
  level?: number;
  field_order?: string;
  bit_rate?: string;
  /** Printed only with `-show_data`: a hexdump. */
  extradata?: string;
  pix_fmt?: string;
  sample_aspect_ratio?: string;
  color_transfer?: string;
  r_frame_rate?: string;
  start_time?: string;
  duration?: string;
  disposition?: { attached_pic?: number; timed_thumbnails?: number };
  tags?: Record<string, string>;
  side_data_list?: Array<{ side_data_type?: string; rotation?: number; displaymatrix?: string }>;
}
interface FfprobeOutput {
  format?: { duration?: string; start_time?: string; format_name?: string; bit_rate?: string };
  streams?: FfprobeStream[];
}

const positive = (v: unknown): number | undefined => {
  const n = Number(v);
  return Number.isFinite(n) && n > 0 ? n : undefined;
};
/** Matroska writes per-stream `DURATION` tags as `HH:MM:SS.nnnnnnnnn`. */
const clockSeconds = (v: string | undefined): number | undefined => {
  const m = /^(\d+):(\d+):(\d+(?:\.\d+)?)$/.exec(v ?? '');
  return m ? positive(Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3])) : undefined;
};
const streamDuration = (s: FfprobeStream | undefined) => (s ? positive(s.duration) ?? clockSeconds(s.tags?.DURATION ?? s.tags?.duration) : undefined);

/**
 * ffprobe's stdout for `args` (at `-v error`). A failure is `failed(output)`, output being its
 * stderr or the spawn error; by default an upload that cannot be read (UnplayableMediaError).
 */
function ffprobeJson(paths: FfmpegPaths, args: string[], failed: (output: string) => Error = (output) => unreadable('file', output)): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(...diesWithParent(paths.ffprobe, ['-v', 'error', ...args]), { maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      // Errors reach Temporal's history and the logs: the presigned input URL must not.
      if (err) reject(failed(String(stderr || err.message)));
      else resolve(stdout);
    }),
  );
}

/**
 * Format-, stream- and chapter-level tag names that say where a video was taken or what its
 * owner wrote about it, as ffprobe names them: Android's `location` (QuickTime `©xyz`), Apple's
 * `com.apple.quicktime.location.ISO6709` and friends, title, description, comment, keywords.
 * `xmp` is the whole XMP packet (`-export_xmp 1`), where editors and drones put GPS tags.
 */
const PRIVATE_CONTAINER_TAG = /location|iso6709|gps|©xyz|^xyz|description|comment|title|keywords|synopsis|caption|^xmp$/i;

/** ffprobe's JSON for `privateContainerMetadata` (see `probeContainer`). */
export interface ContainerProbe {
  format?: { format_name?: string; tags?: Record<string, string> };
  streams?: Array<{ index?: number; codec_type?: string; codec_name?: string; codec_tag_string?: string; tags?: Record<string, string> }>;
  chapters?: Array<{ tags?: Record<string, string> }>;
}

/**
 * What a published copy of this video container would give away: the names of private tags
 * (format-level as they are, a stream's as `stream N: name`, a chapter's as `chapter N: name`)
 * and each track a re-write drops because it can carry a place: data tracks (GoPro GPMF and
 * camera telemetry; not a QuickTime timecode track, `tmcd`), subtitle tracks (DJI drones and
 * dash cams write GPS as subtitles) and attachments. Empty when there is nothing to remove.
 * Pure; the values are never returned.
 */
export function privateContainerMetadata(probed: ContainerProbe): string[] {
  const found = Object.keys(probed.format?.tags ?? {}).filter((name) => PRIVATE_CONTAINER_TAG.test(name));
  (probed.streams ?? []).forEach((stream, i) => {
    const n = stream.index ?? i;
    if (stream.codec_type === 'data' && stream.codec_tag_string !== 'tmcd') found.push(`data stream ${n}`);
    if (stream.codec_type === 'subtitle' || stream.codec_type === 'attachment') found.push(`${stream.codec_type} stream ${n}`);
    for (const name of Object.keys(stream.tags ?? {})) if (PRIVATE_CONTAINER_TAG.test(name)) found.push(`stream ${n}: ${name}`);
  });
  (probed.chapters ?? []).forEach((chapter, n) => {
    for (const name of Object.keys(chapter.tags ?? {})) if (PRIVATE_CONTAINER_TAG.test(name)) found.push(`chapter ${n}: ${name}`);
  });
  return found;
}

/** What ffprobe reads of the container at `input` (a file or URL): its index, not its media data. */
export async function probeContainer(paths: FfmpegPaths, input: string): Promise<ContainerProbe> {
  const out = await ffprobeJson(paths, ['-export_xmp', '1', '-show_entries', 'format=format_name:format_tags:stream=index,codec_type,codec_name,codec_tag_string:stream_tags:chapter_tags', '-of', 'json', input]);
  return JSON.parse(out) as ContainerProbe;
}

/** Codecs a WebM file may hold (the WebM container guidelines); anything else needs Matroska. */
const WEBM_CODECS = new Set(['vp8', 'vp9', 'av1', 'opus', 'vorbis']);
/** Video and audio codecs ffmpeg's MP4 muxer has a sample entry for; others (PCM, ProRes) need MOV. */
const MP4_CODECS = new Set(['h264', 'hevc', 'av1', 'vp9', 'mpeg4', 'aac', 'mp3', 'opus', 'flac', 'ac3', 'eac3', 'alac']);
const avCodecs = (probed: ContainerProbe) => (probed.streams ?? []).filter((s) => s.codec_type === 'video' || s.codec_type === 'audio').map((s) => s.codec_name ?? '');

/**
 * ffmpeg's muxer for a re-written original (`ftypBrand`: the major brand in the file's ftyp
 * box, when it has one): the container the upload is, not the one its MIME
 * type names (any EBML file passes as `video/webm` and a QuickTime file as `video/mp4`): MOV for
 * a QuickTime major brand (`qt  `) or a codec MP4 has no sample entry for (PCM, ProRes), MP4 for
 * other ISO-BMFF files, WebM when every video and audio codec is one WebM allows, else Matroska.
 * @throws Error for a container it has no muxer for (the upload checks only let these through).
 */
export function remuxFormat(probed: ContainerProbe, ftypBrand?: string): 'mp4' | 'mov' | 'webm' | 'matroska' {
  const name = probed.format?.format_name ?? '';
  // ffprobe's `major_brand` is a tag: a `major_brand` key in the file's metadata (ffmpeg copies
  // one when it re-muxes an MP4 into a MOV) overrides the ftyp box, so the box's own brand wins.
  const brand = (ftypBrand ?? probed.format?.tags?.major_brand)?.trim();
  if (name.startsWith('mov,mp4')) return brand === 'qt' || !avCodecs(probed).every((c) => MP4_CODECS.has(c)) ? 'mov' : 'mp4';
  if (name.startsWith('matroska')) return avCodecs(probed).every((c) => WEBM_CODECS.has(c)) ? 'webm' : 'matroska';
  throw new Error(`no muxer to re-write a ${name || 'unknown'} container with`);
}

/**
 * ffmpeg arguments that copy `input`'s video (not cover art) and audio streams, untouched, into
 * `output` with no container metadata: no global or stream tags, no chapters, no data,
 * subtitle or attachment tracks, no XMP. What display needs is stream side data and stays (a
 * phone's display matrix). MP4/MOV get their index in front (`+faststart`), so the published
 * file plays while it loads.
 */
export function remuxWithoutMetadataArgs(input: string, output: string, format: ReturnType<typeof remuxFormat>): string[] {
  const faststart = format === 'mp4' || format === 'mov' ? ['-movflags', '+faststart'] : [];
  return ['-hide_banner', '-nostdin', '-v', 'error', '-i', input, '-map', '0:V', '-map', '0:a?', '-c', 'copy', '-map_metadata', '-1', '-map_chapters', '-1', ...faststart, '-f', format, '-y', output];
}

/**
 * Where each stream's last packet ends, in seconds (stream index → end), read packet by
 * packet in constant memory. Used when the container states no duration: WebM from the
 * browser's MediaRecorder is written live and has none.
 */
function packetEnds(paths: FfmpegPaths, input: string): Promise<Map<number, number>> {
  return new Promise((resolve, reject) => {
    const child = spawn(...diesWithParent(paths.ffprobe, ['-v', 'error', '-show_entries', 'packet=stream_index,pts_time,duration_time', '-of', 'csv=p=0', input]), { stdio: ['ignore', 'pipe', 'pipe'] });
    const ends = new Map<number, number>();
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-2000)));
    createInterface({ input: child.stdout }).on('line', (line) => {
      const [index, pts, duration] = line.split(',');
      const start = Number(pts);
      if (!Number.isFinite(start)) return;
      const end = start + (Number(duration) || 0);
      const i = Number(index);
      if (end > (ends.get(i) ?? -Infinity)) ends.set(i, end);
    });
    child.once('error', reject);
    child.once('close', (code) => {
      if (code === 0) resolve(ends);
      else reject(unreadable('packets', stderr));
    });
  });
}

/**
 * Whether ffprobe's printed display matrix (`displaymatrix`: three rows `NNNNNNNN: a b u`,
 * `c d v`, `x y w`) mirrors the picture: a rotation keeps the determinant of its 2×2 part
 * positive, a flip makes it negative.
 */
export function mirroredDisplayMatrix(printed: string | undefined): boolean {
  const rows = (printed ?? '').split('\n').map((l) => l.replace(/^\s*\d+:/, '').trim().split(/\s+/).map(Number)).filter((r) => r.length === 3 && r.every(Number.isFinite));
  if (rows.length < 2) return false;
  const [[a, b], [c, d]] = rows as [[number, number], [number, number]];
  return a * d - b * c < 0;
}

/**
 * ffprobe's JSON (ffprobe itself, not a wrapper: wrappers flatten `side_data_list`, which is
 * where the display matrix of a phone video lives): the facts the ladder and the read model need.
 * Cover art (an `attached_pic` stream) is not a video. Durations missing from the container
 * come from the streams, then from the last packet.
 * @throws UnplayableMediaError when the file cannot be read or has no video stream.
 */
export async function probe(paths: FfmpegPaths, input: string): Promise<ProbeResult> {
  const data = JSON.parse(await ffprobeJson(paths, ['-show_format', '-show_streams', '-of', 'json', input])) as FfprobeOutput;
  const streams = data.streams ?? [];
  const video = streams.find((s) => s.codec_type === 'video' && !s.disposition?.attached_pic && !s.disposition?.timed_thumbnails && s.width && s.height);
  const audio = streams.find((s) => s.codec_type === 'audio');
  if (!video) {
    const cover = streams.some((s) => s.disposition?.attached_pic);
    throw new UnplayableMediaError(audio ? `audio only${cover ? ' (with cover art)' : ''}: no video stream to play` : 'no video stream', audio ? 'NO_VIDEO_STREAM' : 'UNDECODABLE_MEDIA');
  }
  let container = positive(data.format?.duration);
  let videoLength = streamDuration(video);
  const [num, den] = String(video.avg_frame_rate && video.avg_frame_rate !== '0/0' ? video.avg_frame_rate : video.r_frame_rate ?? '0/1').split('/').map(Number);
  const frameRate = den ? num! / den : undefined;
  const videoStart = Number(video.start_time) > 0 ? Number(video.start_time) : 0;
  if (!container || !videoLength) {
    const ends = await packetEnds(paths, input);
    const videoEnd = ends.get(video.index);
    if (videoEnd === undefined) throw new UnplayableMediaError('the video stream has no frames');
    // A last frame without a packet duration still shows for one frame interval.
    videoLength ??= positive(videoEnd - videoStart) ?? 1 / (frameRate || 30);
    container ??= positive(Math.max(...streams.map((s) => streamDuration(s) ?? 0), ...ends.values())) ?? videoLength;
  }
  const [sarNum, sarDen] = String(video.sample_aspect_ratio ?? '1:1').split(':').map(Number);
  // `0:1` and `N/A` mean unknown: square pixels.
  const sar = sarNum && sarDen ? sarNum / sarDen : 1;
  const matrix = video.side_data_list?.find((d) => d.side_data_type === 'Display Matrix');
  const sideRotation = matrix?.rotation;
  const bitsPerSecond = positive(video.bit_rate) ?? positive(data.format?.bit_rate);
  return {
    durationSeconds: container,
    width: video.width!,
    height: video.height!,
    ...(Math.abs(sar - 1) > 1e-3 ? { sampleAspectRatio: sar } : {}),
    ...(video.color_transfer ? { colorTransfer: video.color_transfer } : {}),
    ...(video.pix_fmt ? { pixelFormat: video.pix_fmt } : {}),
    ...(data.format?.format_name ? { formatName: data.format.format_name } : {}),
    videoStreamIndex: video.index,
    videoStartSeconds: videoStart,
    videoDurationSeconds: Math.min(videoLength, container),
    hasAudio: !!audio,
    videoCodec: video.codec_name,
    ...(video.profile ? { videoProfile: video.profile } : {}),
    ...(positive(video.level) ? { videoLevel: video.level } : {}),
    ...(bitsPerSecond ? { videoKbps: bitsPerSecond / 1000 } : {}),
    ...(video.field_order ? { fieldOrder: video.field_order } : {}),
    ...(matrix && mirroredDisplayMatrix(matrix.displaymatrix) ? { mirrored: true } : {}),
    audioCodec: audio?.codec_name,
    ...(audio?.profile ? { audioProfile: audio.profile } : {}),
    frameRate: frameRate && Number.isFinite(frameRate) && frameRate > 0 ? frameRate : undefined,
    rotation: clockwiseRotation({ displayMatrix: sideRotation, rotateTag: video.tags?.rotate }),
  };
}

/**
 * The longest spacing between keyframes of the video stream `stream` in its first
 * `windowSeconds`, seconds, from packet flags (demuxing only, nothing decoded). The spacing to
 * the window's end counts too, so a stream with one keyframe in a long window reads as long;
 * a clip shorter than the window ends the last GOP at its last packet.
 * @param stream an absolute stream index, or an ffprobe stream specifier (`V:0`: the first
 *   video stream that is not cover art), which lets it run beside `probe` before the index is known.
 * Open GOPs are found in the same packets: a packet that follows a keyframe in decode order
 * but is shown before it (a lower pts) is a leading frame that references the previous GOP;
 * in a closed GOP every frame after an IDR is shown after it (x264 `--open-gop` writes such
 * I-frames as sync samples, which the `K` flag alone cannot tell from an IDR: gpac/mp4box.js#506).
 * Open GOPs are an encoder setting, so the first seconds tell for the whole stream.
 * @returns `seconds` (Infinity without a keyframe), `openGop`, and `streamIndex`, the absolute
 *   index of the stream read (undefined when it had no packets in the window).
 * @throws UnplayableMediaError when ffprobe cannot read the packets.
 */
export function probeKeyframeInterval(paths: FfmpegPaths, input: string, stream: number | string, windowSeconds: number): Promise<{ seconds: number; openGop: boolean; streamIndex?: number }> {
  return new Promise((resolve, reject) => {
    const args = ['-v', 'error', '-select_streams', String(stream), '-read_intervals', `%+${windowSeconds}`, '-show_entries', 'packet=stream_index,pts_time,flags', '-of', 'csv=p=0', input];
    const child = spawn(...diesWithParent(paths.ffprobe, args), { stdio: ['ignore', 'pipe', 'pipe'] });
    let first: number | undefined;
    let last: number | undefined;
    let firstKey: number | undefined;
    let lastKey: number | undefined;
    let longest = 0;
    let openGop = false;
    let streamIndex: number | undefined;
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-2000)));
    createInterface({ input: child.stdout }).on('line', (line) => {
      // ffprobe prints the fields in its own order: stream_index, pts_time, flags.
      const [index, pts, flags] = line.split(',');
      const t = Number(pts);
      if (pts === '' || !Number.isFinite(t)) return;
      streamIndex ??= Number(index);
      first ??= t;
      last = Math.max(last ?? t, t);
      // `D`: a packet the edit list discards, whose timestamps say nothing about display order.
      if (flags?.includes('D')) return;
      if (!flags?.includes('K')) {
        if (lastKey !== undefined && t < lastKey) openGop = true;
        return;
      }
      if (lastKey !== undefined) longest = Math.max(longest, t - lastKey);
      firstKey ??= t;
      lastKey = t;
    });
    child.once('error', reject);
    child.once('close', (code) => {
      if (code !== 0) return reject(unreadable('packets', stderr));
      if (first === undefined || last === undefined || firstKey === undefined || lastKey === undefined) return resolve({ seconds: Infinity, openGop, streamIndex });
      // Packets come in decode order: the window's end is the latest timestamp seen.
      const end = last - first >= windowSeconds * 0.9 ? first + windowSeconds : last;
      // Frames before the first keyframe cannot start a copied segment either.
      resolve({ seconds: Math.max(longest, end - lastKey, firstKey - first), openGop, streamIndex });
    });
  });
}

/**
 * What a segment ffmpeg wrote shows of its variant: the width and height of its first video
 * stream, pixels, and its `CODECS` value read from the stream's own parameter sets (the SPS)
 * and the audio's AAC profile (undefined when either is unknown: see codecsAttribute).
 * Read as MPEG-TS (`-f mpegts`), which every segment is: libavformat's format probe wants
 * ten 204-byte blocks of a TS before it names it, so a segment of a few packets (a 1 fps
 * solid colour, a single frame) was taken for MPEG-PS and "End of file" came back.
 * @throws OwnOutputError when the segment cannot be read: the platform's output, not the upload.
 */
export async function probeFrameSize(paths: FfmpegPaths, file: string): Promise<VariantFacts> {
  const args = ['-f', 'mpegts', '-show_entries', 'stream=codec_type,width,height,profile,extradata', '-show_data', '-of', 'json', file];
  const stdout = await ffprobeJson(paths, args, (output) => new OwnOutputError(`a written HLS segment could not be read back: ${publicDetail(output)}`, redactPresignedUrls(output.trim())));
  let data: FfprobeOutput;
  try {
    data = JSON.parse(stdout) as FfprobeOutput;
  } catch {
    throw new OwnOutputError('a written HLS segment could not be read back: ffprobe wrote no JSON', stdout.slice(0, 500));
  }
  const s = data.streams?.find((x) => x.codec_type === 'video');
  if (!s?.width || !s.height) throw new OwnOutputError('a written HLS segment has no video stream', stdout.slice(0, 500));
  const audio = data.streams?.find((x) => x.codec_type === 'audio');
  const codecs = codecsAttribute(avcCodec(s.extradata), { present: !!audio, profile: audio?.profile });
  return { width: s.width, height: s.height, ...(codecs ? { codecs } : {}) };
}

/** ffmpeg ended with an error. `message` is fit for a failure reason (see publicDetail); `detail` is its stderr for the log. */
export class FfmpegExitError extends ToolError {
  override name = 'FfmpegExitError';
}

export interface RunOptions {
  /** Called with percent done (0–100) as ffmpeg reports progress. */
  onProgress?: (percent: number) => void;
  /** Aborting kills ffmpeg (activity cancellation). */
  signal?: AbortSignal;
  durationSeconds?: number;
}

/**
 * Runs ffmpeg with a prebuilt argument array. Wrappers such as fluent-ffmpeg assemble their own argument list,
 * which cannot express the one-pass split + var_stream_map ladder verbatim, so ffmpeg is
 * spawned directly with `-progress pipe:1` (ffmpeg's machine-readable progress).
 */
export function runFfmpeg(paths: FfmpegPaths, args: string[], o: RunOptions = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    // A listener added to a signal that has already fired never runs: a step cancelled before
    // ffmpeg starts must not start it (it would run to the end, and compensation would wait).
    if (o.signal?.aborted) return reject(new Error('ffmpeg cancelled'));
    const child = spawn(...diesWithParent(paths.ffmpeg, ['-progress', 'pipe:1', '-nostats', ...args]), { stdio: ['ignore', 'pipe', 'pipe'] });
    const abort = () => child.kill('SIGKILL');
    o.signal?.addEventListener('abort', abort, { once: true });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4000);
    });
    let pending = '';
    child.stdout.on('data', (chunk: Buffer) => {
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        const m = /^out_time_us=(\d+)/.exec(line);
        if (m && o.onProgress && o.durationSeconds) o.onProgress(Math.min(100, Number(m[1]) / 1e4 / o.durationSeconds));
      }
    });
    child.once('error', reject);
    child.once('close', (code, signal) => {
      o.signal?.removeEventListener('abort', abort);
      if (code === 0) return resolve();
      if (o.signal?.aborted) return reject(new Error('ffmpeg cancelled'));
      reject(new FfmpegExitError(`ffmpeg exited with ${code ?? signal}: ${publicDetail(stderr)}`, redactPresignedUrls(stderr.trim())));
    });
  });
}
