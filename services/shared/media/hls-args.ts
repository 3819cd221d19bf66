/**
 * Pure builders of ffmpeg argument arrays (tested by asserting the arrays, as Immich does).
 * One pass decodes the source once, splits the video and encodes every rung of the ladder.
 */
export interface ProbeResult {
  /** Length of the container (longest stream), seconds. */
  durationSeconds: number;
  /** Coded frame size of the video stream, pixels (before rotation). */
  width: number;
  height: number;
  hasAudio: boolean;
  videoCodec?: string;
  audioCodec?: string;
  frameRate?: number;
  /** Clockwise degrees (0, 90, 180, 270) that turn the coded frame upright; a phone portrait is 90. */
  rotation: number;
  /**
   * Width of a pixel relative to its height when not 1 (anamorphic video: DV, some phones and
   * broadcast captures store 720×480 pixels shown 16:9). Absent means square pixels.
   */
  sampleAspectRatio?: number;
  /** ffprobe's `color_transfer` of the video stream (`arib-std-b67` is HLG, `smpte2084` PQ: HDR). */
  colorTransfer?: string;
  /** Absolute index of the video stream in the file (cover art is never chosen). */
  videoStreamIndex?: number;
  /** Where the video stream starts and how long it lasts, seconds: frames exist only inside it. */
  videoStartSeconds?: number;
  videoDurationSeconds?: number;
  /** ffprobe's `pix_fmt` of the video stream (`yuv420p`; `yuv420p10le` is 10-bit). */
  pixelFormat?: string;
  /** ffprobe's `format_name` of the container (`mov,mp4,m4a,3gp,3g2,mj2`, `matroska,webm`). */
  formatName?: string;
  /**
   * Longest spacing between keyframes seen in the first seconds of the video stream, seconds
   * (only `probeKeyframeInterval` fills it; a stream copy cuts segments at keyframes).
   */
  keyframeIntervalSeconds?: number;
  /**
   * Whether a keyframe in the first seconds is followed (in decode order) by frames shown
   * before it: an open GOP (only `probeKeyframeInterval` fills it).
   */
  openGop?: boolean;
  /** ffprobe's `profile` of the video stream (`High`, `Constrained Baseline`, `High 10`). */
  videoProfile?: string;
  /** ffprobe's `level` of the video stream: H.264 level × 10 (`41` is 4.1). */
  videoLevel?: number;
  /** Bitrate of the video stream (else of the whole file), kbit/s, when the container states it. */
  videoKbps?: number;
  /** ffprobe's `field_order` (`progressive`; `tt`, `bb`, `tb`, `bt` are interlaced). */
  fieldOrder?: string;
  /** ffprobe's `profile` of the audio stream (`LC`, `HE-AAC`, `HE-AACv2`, `LD`, `ELD`). */
  audioProfile?: string;
  /** Whether the display matrix mirrors the picture (negative determinant: some front cameras). */
  mirrored?: boolean;
}

/**
 * Normalizes a display rotation to clockwise degrees in [0, 360). ffprobe reports the display
 * matrix counter-clockwise (a phone portrait is `-90`), while the legacy `rotate` tag is
 * clockwise (`90`); the display matrix wins when both are present.
 */
export function clockwiseRotation({ displayMatrix, rotateTag }: { displayMatrix?: number; rotateTag?: string | number }): number {
  const degrees = displayMatrix !== undefined && Number.isFinite(Number(displayMatrix)) ? -Number(displayMatrix) : Number(rotateTag ?? 0) || 0;
  // Rounded to the nearest quarter turn: the ladder and the read model only know those.
  return (((Math.round(degrees / 90) * 90) % 360) + 360) % 360;
}

/** Transfer functions of HDR video: HLG (phones' default HDR recording) and PQ (HDR10, Dolby Vision 8.1). */
const HDR_TRANSFERS = ['arib-std-b67', 'smpte2084'];

/**
 * Filters that tone-map HDR to SDR BT.709 (Hable, as Immich does) before scaling; empty for
 * SDR. 8-bit H.264 renditions of HDR would otherwise keep the HDR tags and look washed out.
 * Needs ffmpeg with zimg (`zscale`), which Debian's build has.
 */
export function toneMapping(probe: Pick<ProbeResult, 'colorTransfer'>): string[] {
  return HDR_TRANSFERS.includes(probe.colorTransfer ?? '')
    ? ['zscale=t=linear:npl=100', 'format=gbrpf32le', 'zscale=p=bt709', 'tonemap=tonemap=hable:desat=0', 'zscale=t=bt709:m=bt709:r=tv', 'format=yuv420p']
    : [];
}

/** ffprobe `field_order` values of interlaced video (top or bottom field first, coded either way). */
export const INTERLACED_FIELD_ORDERS = ['tt', 'bb', 'tb', 'bt'];

/**
 * Deinterlacing of interlaced sources (camcorders, broadcast captures); empty for progressive
 * ones. H.264 renditions are progressive: woven fields encoded as frames show combing on every
 * movement. `bwdif` (FFmpeg's best built-in deinterlacer, as Immich uses for the same reason)
 * in `send_frame` mode keeps the frame rate: one output frame per input frame.
 */
export function deinterlace(probe: Pick<ProbeResult, 'fieldOrder'>): string[] {
  return INTERLACED_FIELD_ORDERS.includes(probe.fieldOrder ?? '') ? ['bwdif=mode=send_frame:parity=auto:deint=all'] : [];
}

/** Filters every picture goes through before it is scaled: deinterlacing, tone mapping, then square pixels. */
function prepare(probe: Pick<ProbeResult, 'colorTransfer' | 'sampleAspectRatio' | 'fieldOrder'>): string[] {
  return [...deinterlace(probe), ...toneMapping(probe), ...squarePixels(probe)];
}

type Geometry = Pick<ProbeResult, 'width' | 'height' | 'rotation' | 'sampleAspectRatio'>;

/**
 * The picture as displayed, pixels: non-square pixels stretched to square ones, then a
 * quarter turn swaps the dimensions.
 */
export function displaySize(probe: Geometry): { width: number; height: number } {
  const width = Math.round(probe.width * (probe.sampleAspectRatio ?? 1));
  return Math.abs(probe.rotation) % 180 === 90 ? { width: probe.height, height: width } : { width, height: probe.height };
}

/**
 * Filters that turn non-square pixels square before anything is scaled (players show the
 * rungs at their pixel size, and `scale=-2:h` alone keeps the source's pixel shape); empty
 * for square pixels. Written on the already rotated frame, whose `sar` ffmpeg keeps in step.
 */
export function squarePixels(probe: Pick<ProbeResult, 'sampleAspectRatio'>): string[] {
  return probe.sampleAspectRatio && probe.sampleAspectRatio !== 1 ? ['scale=trunc(iw*sar/2)*2:ih', 'setsar=1'] : [];
}

export interface Rung {
  name: string;
  /** Short side of the output picture, pixels (the height of a landscape video, the width of a portrait one). */
  shortSide: number;
  videoBitrateKbps: number;
  audioBitrateKbps: number;
}

export const HLS_LADDER: readonly Rung[] = [
  { name: '360p', shortSide: 360, videoBitrateKbps: 800, audioBitrateKbps: 96 },
  { name: '720p', shortSide: 720, videoBitrateKbps: 2800, audioBitrateKbps: 128 },
  { name: '1080p', shortSide: 1080, videoBitrateKbps: 5000, audioBitrateKbps: 160 },
];

/**
 * Rungs whose short side fits the short side of the displayed picture (never upscaled), so a
 * 720×1280 portrait gets 360p and 720p like a 1280×720 landscape; a source smaller than the
 * lowest rung gets one rung at its own (even) short side.
 */
export function ladderFor(probe: Geometry, ladder: readonly Rung[] = HLS_LADDER): Rung[] {
  const shown = displaySize(probe);
  const source = Math.min(shown.width, shown.height);
  const fitting = ladder.filter((r) => r.shortSide <= source);
  if (fitting.length) return fitting;
  const even = Math.max(2, source - (source % 2));
  return [{ ...ladder[0]!, name: `${even}p`, shortSide: even }];
}

/**
 * scale filter of one rung. ffmpeg has already rotated the frame upright (autorotate) when it
 * reaches the filter graph, so the displayed orientation decides which side is the short one;
 * `-2` keeps the aspect ratio with an even size (odd sizes would fail yuv420p encoders).
 */
export function scaleFor(probe: Geometry, rung: Rung): string {
  const shown = displaySize(probe);
  return shown.width < shown.height ? `scale=${rung.shortSide}:-2` : `scale=-2:${rung.shortSide}`;
}

export interface HlsOptions {
  input: string;
  outputDir: string;
  segmentSeconds: number;
  preset: string;
  /**
   * `vod` (default): ffmpeg writes each playlist once, at the end. `event`: ffmpeg rewrites the
   * playlists after every segment (the first rendition is published while it is written).
   * Either way a segment lands under its name only when complete (`temp_file`: written as
   * `.tmp`, then renamed), so segments are uploaded while ffmpeg writes the next ones.
   */
  playlistType?: 'vod' | 'event';
}

/** The HLS muxer's flags for a playlist type (see HlsOptions.playlistType). */
function playlistFlags(type: 'vod' | 'event' = 'vod'): string[] {
  return ['-hls_playlist_type', type, '-hls_flags', 'independent_segments+temp_file'];
}

export function buildHlsArgs(probe: ProbeResult, rungs: Rung[], o: HlsOptions): string[] {
  const fps = probe.frameRate && probe.frameRate > 0 ? Math.round(probe.frameRate) : 30;
  const gop = fps * o.segmentSeconds;
  // The video stream explicitly: `0:v` would pick cover art that comes first in the file.
  const split = `[0:${probe.videoStreamIndex ?? 'v:0'}]${[...prepare(probe), `split=${rungs.length}`].join(',')}${rungs.map((_, i) => `[v${i}]`).join('')}`;
  const scales = rungs.map((r, i) => `[v${i}]${scaleFor(probe, r)}[v${i}out]`);
  const args = ['-hide_banner', '-nostdin', '-y', '-i', o.input, '-filter_complex', [split, ...scales].join(';')];
  rungs.forEach((r, i) => {
    args.push(
      '-map', `[v${i}out]`,
      `-c:v:${i}`, 'libx264',
      `-b:v:${i}`, `${r.videoBitrateKbps}k`,
      `-maxrate:v:${i}`, `${Math.round(r.videoBitrateKbps * 1.07)}k`,
      `-bufsize:v:${i}`, `${r.videoBitrateKbps * 2}k`,
    );
    // The source's audio stream explicitly, once per rung, so each variant is self-contained.
    if (probe.hasAudio) args.push('-map', '0:a:0', `-c:a:${i}`, 'aac', `-b:a:${i}`, `${r.audioBitrateKbps}k`, `-ac:a:${i}`, '2');
  });
  args.push(
    '-preset', o.preset,
    '-profile:v', 'main',
    '-pix_fmt', 'yuv420p',
    // A keyframe at every multiple of the segment length in time, not in frames: a variable
    // frame rate source (phones in low light) cut every round(avg fps) × length frames drifts
    // off the segment times and makes segments longer than the target duration (ffmpeg's
    // documented `expr:gte(t,n_forced*N)`). `-g` only caps the spacing at a constant rate.
    '-force_key_frames', `expr:gte(t,n_forced*${o.segmentSeconds})`,
    '-g', String(gop), '-keyint_min', String(gop), '-sc_threshold', '0',
    '-f', 'hls',
    '-hls_time', String(o.segmentSeconds),
    ...playlistFlags(o.playlistType),
    '-hls_segment_filename', `${o.outputDir}/%v/segment_%03d.ts`,
    '-master_pl_name', 'master.m3u8',
    '-var_stream_map', rungs.map((r, i) => (probe.hasAudio ? `v:${i},a:${i},name:${r.name}` : `v:${i},name:${r.name}`)).join(' '),
    `${o.outputDir}/%v/index.m3u8`,
  );
  return args;
}

/**
 * Seconds into the file where the poster frame is taken: 10 % into the video stream, which
 * can be much shorter than the container (0.5 s of video beside 6 s of audio).
 */
export function posterTime(probe: Pick<ProbeResult, 'durationSeconds' | 'videoStartSeconds' | 'videoDurationSeconds'>): number {
  const start = probe.videoStartSeconds ?? 0;
  const length = Math.min(probe.videoDurationSeconds ?? probe.durationSeconds, probe.durationSeconds);
  return Math.max(0, start + length * 0.1);
}

/**
 * One JPEG frame of the video stream at `at` seconds (seeking before -i is fast and
 * keyframe-accurate enough), or the first frame when `at` is `'first'` (the fallback when
 * the seek found no frame).
 */
export function buildPosterArgs(probe: ProbeResult, input: string, output: string, at: number | 'first' = posterTime(probe)): string[] {
  const seek = at === 'first' ? [] : ['-ss', at.toFixed(3)];
  const filters = prepare(probe);
  return ['-hide_banner', '-nostdin', '-y', ...seek, '-i', input, '-map', `0:${probe.videoStreamIndex ?? 'v:0'}`, ...(filters.length ? ['-vf', filters.join(',')] : []), '-frames:v', '1', '-q:v', '2', output];
}

/**
 * The bytes of ffprobe's printed `extradata` (`-show_data`: lines `00000000: 0000 0167 …  ascii`).
 */
function hexdumpBytes(dump: string): number[] {
  const bytes: number[] = [];
  for (const line of dump.split('\n')) {
    const m = /^[0-9a-f]{8}: ((?:[0-9a-f]{2,4} ?)+)/i.exec(line.trim());
    for (const pair of (m?.[1] ?? '').replace(/\s+/g, '').match(/../g) ?? []) bytes.push(parseInt(pair, 16));
  }
  return bytes;
}

/**
 * The RFC 6381 `avc1.PPCCLL` name of an H.264 stream (profile_idc, constraint flags,
 * level_idc as hex) from its extradata as ffprobe prints it: an `avcC` record (MP4: first byte
 * 1) or Annex B parameter sets (MPEG-TS segments: the SPS after a start code). Undefined when
 * neither is there.
 */
export function avcCodec(extradataDump: string | undefined): string | undefined {
  const b = hexdumpBytes(extradataDump ?? '');
  const hex = (n: number) => n.toString(16).padStart(2, '0');
  if (b[0] === 1 && b.length >= 4) return `avc1.${hex(b[1]!)}${hex(b[2]!)}${hex(b[3]!)}`;
  for (let i = 0; i + 6 < b.length; i++) {
    // 00 00 01 then a NAL header of type 7 (SPS): profile_idc, constraint flags, level_idc follow.
    if (b[i] === 0 && b[i + 1] === 0 && b[i + 2] === 1 && (b[i + 3]! & 0x1f) === 7) return `avc1.${hex(b[i + 4]!)}${hex(b[i + 5]!)}${hex(b[i + 6]!)}`;
  }
  return undefined;
}

/** RFC 6381 names of the AAC profiles HLS players accept (ffprobe's profile → `mp4a.40.<object type>`). */
const AAC_CODECS: Record<string, string> = { LC: 'mp4a.40.2', 'HE-AAC': 'mp4a.40.5', 'HE-AACv2': 'mp4a.40.29' };

/**
 * The `CODECS` attribute value of a variant (RFC 8216 §4.3.4.2: every format in it; Safari
 * and hls.js pick and set up decoders from it): `avc1.PPCCLL` and, with audio, `mp4a.40.x`.
 * Undefined when a stream's name is unknown: a CODECS that leaves a format out is worse than none.
 */
export function codecsAttribute(video: string | undefined, audio: { present: boolean; profile?: string }): string | undefined {
  if (!video) return undefined;
  if (!audio.present) return video;
  const aac = AAC_CODECS[audio.profile ?? ''];
  return aac ? `${video},${aac}` : undefined;
}

/** What a written segment shows of its variant: picture size, pixels, and its CODECS value (see codecsAttribute). */
export interface VariantFacts {
  width: number;
  height: number;
  codecs?: string;
}

/**
 * The master playlist with each variant's `RESOLUTION` (and `CODECS`, when known) set to those
 * of the segments that were written (`sizes` by variant directory name, e.g. `360p`), so
 * clients pick by truth.
 */
export function masterWithResolutions(master: string, sizes: Record<string, VariantFacts>): string {
  const lines = master.split('\n');
  return lines
    .map((line, i) => {
      if (!line.startsWith('#EXT-X-STREAM-INF:')) return line;
      const name = (lines[i + 1] ?? '').trim().split('/')[0]!;
      const size = sizes[name];
      if (!size) return line;
      const resolution = `RESOLUTION=${size.width}x${size.height}`;
      const sized = /RESOLUTION=\d+x\d+/.test(line) ? line.replace(/RESOLUTION=\d+x\d+/, resolution) : `${line},${resolution}`;
      if (!size.codecs) return sized;
      const codecs = `CODECS="${size.codecs}"`;
      return /CODECS="[^"]*"/.test(sized) ? sized.replace(/CODECS="[^"]*"/, codecs) : `${sized},${codecs}`;
    })
    .join('\n');
}

export interface CopyHlsOptions {
  input: string;
  /** Directory of the one variant: `index.m3u8` and `segment_NNN.ts` are written there. */
  outputDir: string;
  segmentSeconds: number;
  playlistType?: HlsOptions['playlistType'];
}

/**
 * HLS of the original by stream copy (no re-encode): the video stream and the first audio
 * stream remuxed into MPEG-TS segments, each cut at the first keyframe after `segmentSeconds`
 * (a copy can cut nowhere else), so only standard input (see standardInput) goes this way.
 */
export function buildCopyHlsArgs(probe: Pick<ProbeResult, 'videoStreamIndex' | 'hasAudio'>, o: CopyHlsOptions): string[] {
  return [
    '-hide_banner', '-nostdin', '-y', '-i', o.input,
    '-map', `0:${probe.videoStreamIndex ?? 'v:0'}`,
    ...(probe.hasAudio ? ['-map', '0:a:0'] : []),
    '-c', 'copy',
    '-f', 'hls',
    '-hls_time', String(o.segmentSeconds),
    ...playlistFlags(o.playlistType),
    '-hls_segment_filename', `${o.outputDir}/segment_%03d.ts`,
    `${o.outputDir}/index.m3u8`,
  ];
}

/** One variant of a master playlist written by hand (the stream-copied rendition has no encoder bitrate for ffmpeg to state). */
export interface MasterVariant {
  /** Path of the variant playlist relative to the master (`source/index.m3u8`). */
  uri: string;
  /** Peak bits per second of the variant's segments. */
  bandwidth: number;
  width: number;
  height: number;
  /** The `CODECS` value (see codecsAttribute); left out when unknown. */
  codecs?: string;
}

/**
 * The master playlist of `variants`. `startAtZero` adds `#EXT-X-START:TIME-OFFSET=0` for a
 * master whose variants are EVENT playlists still growing: players treat those as live and
 * would otherwise start three target durations before the end (RFC 8216 §6.3.3).
 */
export function masterPlaylist(variants: MasterVariant[], { startAtZero = false } = {}): string {
  const lines = ['#EXTM3U', '#EXT-X-VERSION:3', '#EXT-X-INDEPENDENT-SEGMENTS', ...(startAtZero ? [START_AT_ZERO] : [])];
  for (const v of variants) lines.push(`#EXT-X-STREAM-INF:BANDWIDTH=${Math.ceil(v.bandwidth)},RESOLUTION=${v.width}x${v.height}${v.codecs ? `,CODECS="${v.codecs}"` : ''}`, v.uri);
  return `${lines.join('\n')}\n`;
}

const START_AT_ZERO = '#EXT-X-START:TIME-OFFSET=0';
const DISCONTINUITY = '#EXT-X-DISCONTINUITY';

/** One segment of a media playlist: its file name (relative URI) and `#EXTINF` duration, seconds. */
export interface ListedSegment {
  uri: string;
  seconds: number;
  /** `#EXT-X-DISCONTINUITY` precedes it: its timestamps do not follow the segment before (a retry re-cut the stream elsewhere). */
  discontinuity?: boolean;
}

/**
 * The segments a media playlist lists, in order, reading only complete `#EXTINF` + URI pairs
 * (a line without its newline may still be being written), so a playlist read while ffmpeg
 * rewrites it never yields a segment it has not finished.
 */
export function listedSegments(playlist: string): ListedSegment[] {
  const lines = playlist.split('\n');
  // The last element follows the last newline: incomplete (or empty), never read.
  lines.pop();
  const segments: ListedSegment[] = [];
  for (let i = 0; i < lines.length - 1; i++) {
    const m = /^#EXTINF:([\d.]+)/.exec(lines[i]!);
    const uri = lines[i + 1]!.trim();
    if (m && uri && !uri.startsWith('#')) segments.push({ uri, seconds: Number(m[1]), ...(lines[i - 1]?.trim() === DISCONTINUITY ? { discontinuity: true } : {}) });
  }
  return segments;
}

/** How long `segments` play: the sum of their EXTINF, seconds. */
export function playlistSeconds(segments: readonly ListedSegment[]): number {
  return segments.reduce((sum, s) => sum + s.seconds, 0);
}

/**
 * Whether a rendition of `encodedSeconds` (the EXTINF sum of its playlist) falls short of the
 * `declaredSeconds` the probe read from the container's index by more than timing noise (one
 * second, or a tenth of a long video): an upload cut after an intact index (an MP4 written with
 * `+faststart`, its media data cut), which ffmpeg encodes as far as the data goes and exits 0.
 * A video stream shorter than its audio is not short: the probe's video duration is the bound.
 */
export function isCutShort(encodedSeconds: number, declaredSeconds: number): boolean {
  return declaredSeconds - encodedSeconds > Math.max(1, 0.1 * declaredSeconds);
}

/**
 * The `#EXT-X-TARGETDURATION` of `segments`, seconds: the longest EXTINF rounded to the nearest
 * integer (RFC 8216 §4.3.3.1: each rounded EXTINF must be ≤ it), at least 1.
 */
export function targetDuration(segments: ListedSegment[]): number {
  return Math.max(1, ...segments.map((s) => Math.round(s.seconds)));
}

/**
 * How many leading `segments` it takes to list at least `seconds` of media (all of them when
 * they are shorter in total).
 */
export function segmentsCovering(segments: ListedSegment[], seconds: number): number {
  let sum = 0;
  for (let i = 0; i < segments.length; i++) {
    sum += segments[i]!.seconds;
    // A hair under (EXTINF is printed to microseconds) still counts.
    if (sum >= seconds - 1e-3) return i + 1;
  }
  return segments.length;
}

/**
 * An EVENT media playlist (RFC 8216 §4.3.3.5) of the segments published so far: segments are
 * only ever appended, `ended` adds `#EXT-X-ENDLIST` once the last one is there, and
 * `#EXT-X-START:TIME-OFFSET=0` makes players that joined early start at the beginning rather
 * than near the end, as they do for playlists without ENDLIST. `targetSeconds` is the
 * `#EXT-X-TARGETDURATION`, which may not change between versions (RFC 8216 §4.3.3.1): the
 * caller fixes it before the first version (see targetDuration). A segment whose rounded
 * EXTINF exceeds it still raises it rather than write an invalid playlist.
 */
export function eventPlaylist(segments: ListedSegment[], { targetSeconds, ended }: { targetSeconds: number; ended: boolean }): string {
  const target = Math.max(Math.ceil(targetSeconds), ...segments.map((s) => Math.round(s.seconds)));
  const lines = ['#EXTM3U', '#EXT-X-VERSION:3', `#EXT-X-TARGETDURATION:${target}`, '#EXT-X-MEDIA-SEQUENCE:0', '#EXT-X-PLAYLIST-TYPE:EVENT', '#EXT-X-INDEPENDENT-SEGMENTS', START_AT_ZERO];
  for (const s of segments) lines.push(...(s.discontinuity ? [DISCONTINUITY] : []), `#EXTINF:${s.seconds.toFixed(6)},`, s.uri);
  if (ended) lines.push('#EXT-X-ENDLIST');
  return `${lines.join('\n')}\n`;
}
