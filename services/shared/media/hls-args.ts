/**
 * Pure builders of ffmpeg argument arrays (tested by asserting the arrays, as Immich does).
 * One pass decodes the source once, splits the video and encodes every rung of the ladder.
 */
export interface ProbeResult {
  durationSeconds: number;
  width: number;
  height: number;
  hasAudio: boolean;
  videoCodec?: string;
  audioCodec?: string;
  frameRate?: number;
  rotation: number;
}

export interface Rung {
  name: string;
  height: number;
  videoBitrateKbps: number;
  audioBitrateKbps: number;
}

export const HLS_LADDER: readonly Rung[] = [
  { name: '360p', height: 360, videoBitrateKbps: 800, audioBitrateKbps: 96 },
  { name: '720p', height: 720, videoBitrateKbps: 2800, audioBitrateKbps: 128 },
  { name: '1080p', height: 1080, videoBitrateKbps: 5000, audioBitrateKbps: 160 },
];

/** Height as displayed: a 90°/270° rotation swaps the coded dimensions. */
export function displayHeight(probe: Pick<ProbeResult, 'width' | 'height' | 'rotation'>): number {
  return Math.abs(probe.rotation) % 180 === 90 ? probe.width : probe.height;
}

/** Rungs at or below the source height; a source smaller than the lowest rung gets one rung at its own height. */
export function ladderFor(probe: ProbeResult, ladder: readonly Rung[] = HLS_LADDER): Rung[] {
  const source = displayHeight(probe);
  const fitting = ladder.filter((r) => r.height <= source);
  if (fitting.length) return fitting;
  const evenHeight = Math.max(2, source - (source % 2));
  return [{ ...ladder[0]!, name: `${evenHeight}p`, height: evenHeight }];
}

export interface HlsOptions {
  input: string;
  outputDir: string;
  segmentSeconds: number;
  preset: string;
}

export function buildHlsArgs(probe: ProbeResult, rungs: Rung[], o: HlsOptions): string[] {
  const fps = probe.frameRate && probe.frameRate > 0 ? Math.round(probe.frameRate) : 30;
  const gop = fps * o.segmentSeconds;
  const split = `[0:v]split=${rungs.length}${rungs.map((_, i) => `[v${i}]`).join('')}`;
  const scales = rungs.map((r, i) => `[v${i}]scale=-2:${r.height}[v${i}out]`);
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
    // Fixed GOP aligned with the segment length: every segment starts on a keyframe.
    '-g', String(gop), '-keyint_min', String(gop), '-sc_threshold', '0',
    '-f', 'hls',
    '-hls_time', String(o.segmentSeconds),
    '-hls_playlist_type', 'vod',
    '-hls_flags', 'independent_segments',
    '-hls_segment_filename', `${o.outputDir}/%v/segment_%03d.ts`,
    '-master_pl_name', 'master.m3u8',
    '-var_stream_map', rungs.map((r, i) => (probe.hasAudio ? `v:${i},a:${i},name:${r.name}` : `v:${i},name:${r.name}`)).join(' '),
    `${o.outputDir}/%v/index.m3u8`,
  );
  return args;
}

/** One JPEG frame at 10% of the duration (seeking before -i is fast and keyframe-accurate enough). */
export function buildPosterArgs(probe: ProbeResult, input: string, output: string): string[] {
  const at = Math.max(0, probe.durationSeconds * 0.1);
  return ['-hide_banner', '-nostdin', '-y', '-ss', at.toFixed(3), '-i', input, '-frames:v', '1', '-q:v', '2', output];
}
