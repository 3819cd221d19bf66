import { buildHlsArgs, buildPosterArgs, ladderFor, type ProbeResult } from '../../services/shared/media/hls-args';
import { thumbnailWidths } from '../../services/shared/media/images';

const probe = (over: Partial<ProbeResult> = {}): ProbeResult => ({
  durationSeconds: 20,
  width: 1920,
  height: 1080,
  hasAudio: true,
  frameRate: 30,
  rotation: 0,
  ...over,
});

describe('HLS ladder', () => {
  it('keeps every rung up to 1080p for a 1080p source', () => {
    expect(ladderFor(probe()).map((r) => r.name)).toEqual(['360p', '720p', '1080p']);
  });
  it('never upscales: a 720p source stops at 720p', () => {
    expect(ladderFor(probe({ width: 1280, height: 720 })).map((r) => r.name)).toEqual(['360p', '720p']);
  });
  it('uses the displayed height of a rotated phone video', () => {
    expect(ladderFor(probe({ width: 1920, height: 1080, rotation: -90 })).map((r) => r.name)).toEqual(['360p', '720p', '1080p']);
    expect(ladderFor(probe({ width: 720, height: 1280, rotation: 90 })).map((r) => r.name)).toEqual(['360p', '720p']);
  });
  it('gives a tiny source one rung at its own (even) height', () => {
    expect(ladderFor(probe({ width: 320, height: 241 }))).toEqual([expect.objectContaining({ name: '240p', height: 240 })]);
  });
});

describe('buildHlsArgs', () => {
  it('encodes the whole ladder in one pass: one split, one scale and one encoder per rung', () => {
    const rungs = ladderFor(probe({ width: 1280, height: 720 }));
    const args = buildHlsArgs(probe({ width: 1280, height: 720 }), rungs, { input: 'in.mp4', outputDir: '/out', segmentSeconds: 4, preset: 'veryfast' });
    expect(args.slice(0, 7)).toEqual(['-hide_banner', '-nostdin', '-y', '-i', 'in.mp4', '-filter_complex', '[0:v]split=2[v0][v1];[v0]scale=-2:360[v0out];[v1]scale=-2:720[v1out]']);
    expect(args.filter((a) => a === '-i')).toHaveLength(1);
    expect(args).toEqual(expect.arrayContaining(['-map', '[v0out]', '-c:v:0', 'libx264', '-b:v:0', '800k']));
    expect(args).toEqual(expect.arrayContaining(['-map', '[v1out]', '-c:v:1', 'libx264', '-b:v:1', '2800k']));
    expect(args).toEqual(expect.arrayContaining(['-map', '0:a:0', '-c:a:1', 'aac', '-b:a:1', '128k']));
    const at = (flag: string) => args[args.indexOf(flag) + 1];
    expect(at('-var_stream_map')).toBe('v:0,a:0,name:360p v:1,a:1,name:720p');
    expect(at('-g')).toBe('120');
    expect(at('-hls_time')).toBe('4');
    expect(at('-master_pl_name')).toBe('master.m3u8');
    expect(at('-hls_segment_filename')).toBe('/out/%v/segment_%03d.ts');
    expect(args.at(-1)).toBe('/out/%v/index.m3u8');
  });
  it('maps no audio for a silent video', () => {
    const args = buildHlsArgs(probe({ hasAudio: false }), ladderFor(probe()), { input: 'in', outputDir: '/o', segmentSeconds: 6, preset: 'fast' });
    expect(args).not.toContain('0:a:0');
    expect(args[args.indexOf('-var_stream_map') + 1]).toBe('v:0,name:360p v:1,name:720p v:2,name:1080p');
  });
});

describe('buildPosterArgs', () => {
  it('seeks to 10% of the duration and takes one frame', () => {
    expect(buildPosterArgs(probe({ durationSeconds: 42 }), 'in.mp4', 'poster.jpg')).toEqual([
      '-hide_banner', '-nostdin', '-y', '-ss', '4.200', '-i', 'in.mp4', '-frames:v', '1', '-q:v', '2', 'poster.jpg',
    ]);
  });
});

describe('thumbnailWidths', () => {
  it('drops widths that would upscale, keeping at least the source width', () => {
    expect(thumbnailWidths(1000, [150, 300, 600, 1200])).toEqual([150, 300, 600]);
    expect(thumbnailWidths(100, [150, 300])).toEqual([100]);
  });
});
