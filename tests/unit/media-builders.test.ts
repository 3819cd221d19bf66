import { buildHlsArgs, buildPosterArgs, clockwiseRotation, displaySize, isCutShort, ladderFor, masterWithResolutions, posterTime, type ProbeResult } from '../../services/shared/media/hls-args';
import { MAX_RENDITION_SIDE, renditionSize, thumbnailWidths } from '../../services/shared/media/images';
import { ApplicationFailure } from '@temporalio/common';
import { withoutLocalPaths } from '../../activities/processing';

const probe = (over: Partial<ProbeResult> = {}): ProbeResult => ({
  durationSeconds: 20,
  width: 1920,
  height: 1080,
  hasAudio: true,
  frameRate: 30,
  rotation: 0,
  videoStreamIndex: 0,
  ...over,
});

describe('HLS ladder', () => {
  it('keeps every rung up to 1080p for a 1080p source', () => {
    expect(ladderFor(probe()).map((r) => r.name)).toEqual(['360p', '720p', '1080p']);
  });
  it('never upscales: a 720p source stops at 720p', () => {
    expect(ladderFor(probe({ width: 1280, height: 720 })).map((r) => r.name)).toEqual(['360p', '720p']);
  });
  it('picks rungs by the short side of the picture, whatever its rotation', () => {
    // A phone portrait: coded 1280×720 turned a quarter, or coded upright 720×1280.
    expect(ladderFor(probe({ width: 1280, height: 720, rotation: 90 })).map((r) => r.name)).toEqual(['360p', '720p']);
    expect(ladderFor(probe({ width: 720, height: 1280, rotation: 0 })).map((r) => r.name)).toEqual(['360p', '720p']);
    expect(ladderFor(probe({ width: 1920, height: 1080, rotation: 270 })).map((r) => r.name)).toEqual(['360p', '720p', '1080p']);
  });
  it('gives a tiny source one rung at its own (even) short side', () => {
    expect(ladderFor(probe({ width: 320, height: 241 }))).toEqual([expect.objectContaining({ name: '240p', shortSide: 240 })]);
    expect(ladderFor(probe({ width: 201, height: 357, rotation: 90 }))).toEqual([expect.objectContaining({ name: '200p', shortSide: 200 })]);
  });
  it('keeps an odd 1281×719 source at 360p (719 < 720)', () => {
    expect(ladderFor(probe({ width: 1281, height: 719 })).map((r) => r.name)).toEqual(['360p']);
  });
});

describe('rotation', () => {
  it('turns the display matrix (counter-clockwise) and the legacy rotate tag (clockwise) into clockwise degrees', () => {
    expect(clockwiseRotation({ displayMatrix: -90 })).toBe(90); // what phones write for portrait
    expect(clockwiseRotation({ displayMatrix: 90 })).toBe(270);
    expect(clockwiseRotation({ displayMatrix: -180 })).toBe(180);
    expect(clockwiseRotation({ displayMatrix: 180 })).toBe(180);
    expect(clockwiseRotation({ rotateTag: '90' })).toBe(90);
    expect(clockwiseRotation({ rotateTag: '-90' })).toBe(270);
    expect(clockwiseRotation({ displayMatrix: -90, rotateTag: '0' })).toBe(90);
    expect(clockwiseRotation({ displayMatrix: -89.99 })).toBe(90);
    expect(clockwiseRotation({})).toBe(0);
  });
  it('swaps width and height for a quarter turn only', () => {
    expect(displaySize(probe({ width: 1280, height: 720, rotation: 90 }))).toEqual({ width: 720, height: 1280 });
    expect(displaySize(probe({ width: 1280, height: 720, rotation: 270 }))).toEqual({ width: 720, height: 1280 });
    expect(displaySize(probe({ width: 1280, height: 720, rotation: 180 }))).toEqual({ width: 1280, height: 720 });
  });
});

describe('buildHlsArgs', () => {
  it('encodes the whole ladder in one pass: one split, one scale and one encoder per rung', () => {
    const rungs = ladderFor(probe({ width: 1280, height: 720 }));
    const args = buildHlsArgs(probe({ width: 1280, height: 720 }), rungs, { input: 'in.mp4', outputDir: '/out', segmentSeconds: 4, preset: 'veryfast' });
    expect(args.slice(0, 7)).toEqual(['-hide_banner', '-nostdin', '-y', '-i', 'in.mp4', '-filter_complex', '[0:0]split=2[v0][v1];[v0]scale=-2:360[v0out];[v1]scale=-2:720[v1out]']);
    expect(args.filter((a) => a === '-i')).toHaveLength(1);
    expect(args).toEqual(expect.arrayContaining(['-map', '[v0out]', '-c:v:0', 'libx264', '-b:v:0', '800k']));
    expect(args).toEqual(expect.arrayContaining(['-map', '[v1out]', '-c:v:1', 'libx264', '-b:v:1', '2800k']));
    expect(args).toEqual(expect.arrayContaining(['-map', '0:a:0', '-c:a:1', 'aac', '-b:a:1', '128k']));
    const at = (flag: string) => args[args.indexOf(flag) + 1];
    expect(at('-var_stream_map')).toBe('v:0,a:0,name:360p v:1,a:1,name:720p');
    expect(at('-g')).toBe('120');
    // Keyframes at every 4 s of time, so a variable frame rate source still cuts at 4, 8, 12 s.
    expect(at('-force_key_frames')).toBe('expr:gte(t,n_forced*4)');
    expect(at('-hls_time')).toBe('4');
    expect(at('-master_pl_name')).toBe('master.m3u8');
    expect(at('-hls_segment_filename')).toBe('/out/%v/segment_%03d.ts');
    expect(args.at(-1)).toBe('/out/%v/index.m3u8');
  });
  it('scales a portrait by its width: 720×1280 displayed gives 360×640 and 720×1280', () => {
    const phone = probe({ width: 1280, height: 720, rotation: 90 });
    const args = buildHlsArgs(phone, ladderFor(phone), { input: 'in.mp4', outputDir: '/out', segmentSeconds: 4, preset: 'veryfast' });
    expect(args[args.indexOf('-filter_complex') + 1]).toBe('[0:0]split=2[v0][v1];[v0]scale=360:-2[v0out];[v1]scale=720:-2[v1out]');
  });
  it('makes non-square pixels square before the ladder, and ladders by the displayed size', () => {
    const dv = probe({ width: 720, height: 480, sampleAspectRatio: 32 / 27 });
    expect(displaySize(dv)).toEqual({ width: 853, height: 480 });
    const args = buildHlsArgs(dv, ladderFor(dv), { input: 'in', outputDir: '/o', segmentSeconds: 4, preset: 'fast' });
    expect(args[args.indexOf('-filter_complex') + 1]).toBe('[0:0]scale=trunc(iw*sar/2)*2:ih,setsar=1,split=1[v0];[v0]scale=-2:360[v0out]');
    expect(buildPosterArgs(dv, 'in', 'p.jpg', 'first')).toEqual(['-hide_banner', '-nostdin', '-y', '-i', 'in', '-map', '0:0', '-vf', 'scale=trunc(iw*sar/2)*2:ih,setsar=1', '-frames:v', '1', '-q:v', '2', 'p.jpg']);
  });
  it('tone-maps HDR (HLG, PQ) to SDR BT.709 before scaling, in the ladder and the poster; SDR untouched', () => {
    const chain = 'zscale=t=linear:npl=100,format=gbrpf32le,zscale=p=bt709,tonemap=tonemap=hable:desat=0,zscale=t=bt709:m=bt709:r=tv,format=yuv420p';
    for (const colorTransfer of ['arib-std-b67', 'smpte2084']) {
      const hdr = probe({ width: 1280, height: 720, colorTransfer });
      const args = buildHlsArgs(hdr, ladderFor(hdr), { input: 'in', outputDir: '/o', segmentSeconds: 4, preset: 'fast' });
      expect(args[args.indexOf('-filter_complex') + 1]).toBe(`[0:0]${chain},split=2[v0][v1];[v0]scale=-2:360[v0out];[v1]scale=-2:720[v1out]`);
      expect(buildPosterArgs(hdr, 'in', 'p.jpg', 'first')).toEqual(['-hide_banner', '-nostdin', '-y', '-i', 'in', '-map', '0:0', '-vf', chain, '-frames:v', '1', '-q:v', '2', 'p.jpg']);
    }
    const sdr = probe({ colorTransfer: 'bt709' });
    expect(buildPosterArgs(sdr, 'in', 'p.jpg', 'first')).not.toContain('-vf');
  });
  it('takes the video stream by its index, not cover art that comes first', () => {
    const args = buildHlsArgs(probe({ videoStreamIndex: 2 }), ladderFor(probe()), { input: 'in', outputDir: '/o', segmentSeconds: 6, preset: 'fast' });
    expect(args[args.indexOf('-filter_complex') + 1]).toMatch(/^\[0:2\]split=3/);
  });
  it('maps no audio for a silent video', () => {
    const args = buildHlsArgs(probe({ hasAudio: false }), ladderFor(probe()), { input: 'in', outputDir: '/o', segmentSeconds: 6, preset: 'fast' });
    expect(args).not.toContain('0:a:0');
    expect(args[args.indexOf('-var_stream_map') + 1]).toBe('v:0,name:360p v:1,name:720p v:2,name:1080p');
  });
});

describe('deinterlacing', () => {
  it('puts bwdif first for every interlaced field order (ladder and poster), nothing for progressive or unknown', () => {
    for (const fieldOrder of ['tt', 'bb', 'tb', 'bt']) {
      const args = buildHlsArgs(probe({ fieldOrder }), ladderFor(probe()), { input: 'in.mp4', outputDir: '/out', segmentSeconds: 4, preset: 'veryfast' });
      expect(args[args.indexOf('-filter_complex') + 1]).toMatch(/^\[0:0\]bwdif=mode=send_frame:parity=auto:deint=all,split=3/);
      expect(buildPosterArgs(probe({ fieldOrder }), 'in.mp4', 'p.jpg').join(' ')).toContain('bwdif=');
    }
    for (const fieldOrder of ['progressive', 'unknown', undefined]) {
      const args = buildHlsArgs(probe({ fieldOrder }), ladderFor(probe()), { input: 'in.mp4', outputDir: '/out', segmentSeconds: 4, preset: 'veryfast' });
      expect(args.join(' ')).not.toContain('bwdif');
    }
  });
});

describe('buildPosterArgs', () => {
  it('seeks to 10% of the video stream and takes one frame of it', () => {
    expect(buildPosterArgs(probe({ durationSeconds: 42, videoDurationSeconds: 42 }), 'in.mp4', 'poster.jpg')).toEqual([
      '-hide_banner', '-nostdin', '-y', '-ss', '4.200', '-i', 'in.mp4', '-map', '0:0', '-frames:v', '1', '-q:v', '2', 'poster.jpg',
    ]);
  });
  it('stays inside a video stream much shorter than the container', () => {
    // 0.5 s of video beside 6 s of audio: 10 % of the container (0.6 s) is after the last frame.
    expect(posterTime({ durationSeconds: 6, videoStartSeconds: 0, videoDurationSeconds: 0.5 })).toBeCloseTo(0.05, 5);
    expect(posterTime({ durationSeconds: 6, videoStartSeconds: 1, videoDurationSeconds: 2 })).toBeCloseTo(1.2, 5);
  });
  it('takes the first frame without seeking as the fallback', () => {
    expect(buildPosterArgs(probe({ videoStreamIndex: 1 }), 'in.mp4', 'p.jpg', 'first')).toEqual([
      '-hide_banner', '-nostdin', '-y', '-i', 'in.mp4', '-map', '0:1', '-frames:v', '1', '-q:v', '2', 'p.jpg',
    ]);
  });
});

describe('masterWithResolutions', () => {
  it('sets each variant RESOLUTION to the size of its written segments', () => {
    const master = [
      '#EXTM3U',
      '#EXT-X-VERSION:3',
      '#EXT-X-STREAM-INF:BANDWIDTH=1000,RESOLUTION=640x360,CODECS="avc1.4d401e,mp4a.40.2"',
      '360p/index.m3u8',
      '#EXT-X-STREAM-INF:BANDWIDTH=3000,CODECS="avc1.4d401f"',
      '720p/index.m3u8',
      '',
    ].join('\n');
    expect(masterWithResolutions(master, { '360p': { width: 360, height: 640 }, '720p': { width: 720, height: 1280 } }).split('\n')).toEqual([
      '#EXTM3U',
      '#EXT-X-VERSION:3',
      '#EXT-X-STREAM-INF:BANDWIDTH=1000,RESOLUTION=360x640,CODECS="avc1.4d401e,mp4a.40.2"',
      '360p/index.m3u8',
      '#EXT-X-STREAM-INF:BANDWIDTH=3000,CODECS="avc1.4d401f",RESOLUTION=720x1280',
      '720p/index.m3u8',
      '',
    ]);
  });
});

describe('thumbnailWidths', () => {
  it('drops widths that would upscale, keeping at least the source width', () => {
    expect(thumbnailWidths(1000, [150, 300, 600, 1200])).toEqual([150, 300, 600]);
    expect(thumbnailWidths(100, [150, 300])).toEqual([100]);
  });
});

describe('renditionSize', () => {
  it('keeps the aspect ratio of pictures within the limit', () => {
    expect(renditionSize({ width: 640, height: 480 }, 150)).toEqual({ width: 150, height: 113 });
    expect(renditionSize({ width: 60_000, height: 1 }, 1200)).toEqual({ width: 1200, height: 1 });
  });

  it('narrows a rendition that would be taller than WebP allows (16383 px), never below 1 px', () => {
    expect(MAX_RENDITION_SIDE).toBe(16383);
    expect(renditionSize({ width: 1440, height: 24_000 }, 1200)).toEqual({ width: 983, height: 16383 });
    expect(renditionSize({ width: 300, height: 17_000 }, 300)).toEqual({ width: 289, height: 16383 });
    expect(renditionSize({ width: 1, height: 60_000 }, 1)).toEqual({ width: 1, height: 16383 });
    expect(renditionSize({ width: 100, height: 10_000_000 }, 100)).toEqual({ width: 1, height: 16383 });
  });

  it('never upscales and keeps both sides within the limit', () => {
    expect(renditionSize({ width: 100, height: 50 }, 1200)).toEqual({ width: 100, height: 50 });
    expect(renditionSize({ width: 40_000, height: 40_000 }, 30_000)).toEqual({ width: 16383, height: 16383 });
  });
});

describe('withoutLocalPaths', () => {
  it("removes the worker's temp dir from an error that will become a failure reason", () => {
    const dir = '/tmp/transcode-1234-abcd';
    const err = Object.assign(new Error(`ENOENT: no such file or directory, open '${dir}/poster.jpg'`), { code: 'ENOENT' });
    const clean = withoutLocalPaths(err, dir) as Error;
    expect(clean.message).toBe("ENOENT: no such file or directory, open '<work dir>/poster.jpg'");
    expect(clean.name).toBe('Error');
    const ffmpegErr = new Error(`ffmpeg exited with 1: ${dir}/hls/360p/segment_000.ts: No space left on device`);
    expect((withoutLocalPaths(ffmpegErr, dir) as Error).message).not.toContain('/tmp/');
  });
  it('keeps errors without the path, and ApplicationFailures, as they are', () => {
    const plain = new Error('S3 503');
    expect(withoutLocalPaths(plain, '/tmp/x')).toBe(plain);
    const failure = ApplicationFailure.nonRetryable('no video stream', 'NO_VIDEO_STREAM');
    expect(withoutLocalPaths(failure, '/tmp/x')).toBe(failure);
  });
});

describe('isCutShort', () => {
  it('takes a rendition more than 1 s (or a tenth) shorter than the index declares for a cut upload', () => {
    expect(isCutShort(1.6, 4)).toBe(true);
    expect(isCutShort(50, 60)).toBe(true);
  });

  it('leaves timing noise alone: a frame or a segment boundary, a tenth of a long video', () => {
    expect(isCutShort(3.967, 4)).toBe(false);
    expect(isCutShort(3.1, 4)).toBe(false);
    expect(isCutShort(55, 60)).toBe(false);
    // Longer than declared (audio past the video stream): never short.
    expect(isCutShort(6, 0.5)).toBe(false);
  });
});
