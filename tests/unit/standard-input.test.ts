import { mirroredDisplayMatrix } from '../../services/shared/media/ffmpeg';
import { avcCodec, buildCopyHlsArgs, codecsAttribute, eventPlaylist, listedSegments, masterPlaylist, masterWithResolutions, segmentsCovering, targetDuration } from '../../services/shared/media/hls-args';
import { STANDARD_INPUT_RULES, standardInput, type StandardInputFacts } from '../../services/shared/media/standard-input';

/** What a phone writes in landscape: H.264 High 4.0 8-bit 4:2:0 progressive at 12 Mb/s, AAC-LC, 1 s closed GOPs, in MP4. */
const phone = (over: Partial<StandardInputFacts> = {}): StandardInputFacts => ({
  width: 1920,
  height: 1080,
  rotation: 0,
  videoCodec: 'h264',
  videoProfile: 'High',
  videoLevel: 40,
  videoKbps: 12_000,
  fieldOrder: 'progressive',
  audioCodec: 'aac',
  audioProfile: 'LC',
  hasAudio: true,
  frameRate: 30,
  pixelFormat: 'yuv420p',
  formatName: 'mov,mp4,m4a,3gp,3g2,mj2',
  keyframeIntervalSeconds: 1,
  ...over,
});

describe('standardInput', () => {
  it('accepts H.264 8-bit 4:2:0 + AAC 1080p in MP4 with short GOPs', () => {
    expect(standardInput(phone())).toEqual({ standard: true, reasons: [] });
  });

  it('accepts full-range yuvj420p, no audio, a portrait 1080×1920 coded upright and 2K DCI', () => {
    expect(standardInput(phone({ pixelFormat: 'yuvj420p' })).standard).toBe(true);
    expect(standardInput(phone({ hasAudio: false, audioCodec: undefined })).standard).toBe(true);
    expect(standardInput(phone({ width: 1080, height: 1920 })).standard).toBe(true);
    expect(standardInput(phone({ width: 2048, height: 1080 })).standard).toBe(true);
  });

  it('refuses HEVC 10-bit with one reason per rule', () => {
    expect(standardInput(phone({ videoCodec: 'hevc', pixelFormat: 'yuv420p10le' })).reasons).toEqual(['video codec hevc is not H.264', 'bit depth of yuv420p10le is not 8']);
  });

  it('refuses 4:2:2 and 4:4:4 chroma', () => {
    expect(standardInput(phone({ pixelFormat: 'yuv422p' })).reasons).toEqual(['chroma of yuv422p is not 4:2:0']);
    expect(standardInput(phone({ pixelFormat: 'yuv444p10le' })).reasons).toEqual(['bit depth of yuv444p10le is not 8', 'chroma of yuv444p10le is not 4:2:0']);
  });

  it('refuses VP9/Opus in WebM', () => {
    expect(standardInput(phone({ formatName: 'matroska,webm', videoCodec: 'vp9', audioCodec: 'opus' })).reasons).toEqual([
      'container matroska,webm is not MP4/MOV',
      'video codec vp9 is not H.264',
      'audio codec opus is not AAC',
    ]);
  });

  it('refuses long or unknown keyframe intervals', () => {
    expect(standardInput(phone({ keyframeIntervalSeconds: 10 })).reasons).toEqual(['keyframe interval 10.00 s exceeds 4 s']);
    expect(standardInput(phone({ keyframeIntervalSeconds: Infinity })).standard).toBe(false);
    expect(standardInput(phone({ keyframeIntervalSeconds: undefined })).reasons).toEqual(['keyframe interval unknown']);
    expect(standardInput(phone({ keyframeIntervalSeconds: 10 }), { ...STANDARD_INPUT_RULES, maxKeyframeIntervalSeconds: 12 }).standard).toBe(true);
  });

  it('refuses 4K, 1440p and more than 60 fps', () => {
    expect(standardInput(phone({ width: 3840, height: 2160 })).reasons).toEqual(['resolution 3840x2160 exceeds 2048x1080']);
    expect(standardInput(phone({ width: 2560, height: 1440 })).reasons).toEqual(['resolution 2560x1440 exceeds 2048x1080']);
    expect(standardInput(phone({ frameRate: 120 })).reasons).toEqual(['frame rate 120 exceeds 60']);
  });

  it('refuses rotated, HDR and anamorphic streams, which a copy would show wrong', () => {
    expect(standardInput(phone({ rotation: 90 })).reasons).toEqual(['rotation 90° needs the picture turned']);
    expect(standardInput(phone({ colorTransfer: 'arib-std-b67' })).reasons).toEqual(['HDR transfer arib-std-b67 needs tone mapping']);
    expect(standardInput(phone({ sampleAspectRatio: 32 / 27 })).reasons).toEqual(['pixels are not square']);
  });

  it('refuses MP3 audio and unknown facts', () => {
    expect(standardInput(phone({ audioCodec: 'mp3' })).reasons).toEqual(['audio codec mp3 is not AAC']);
    expect(standardInput(phone({ videoCodec: undefined, pixelFormat: undefined, formatName: undefined })).reasons).toEqual([
      'container unknown is not MP4/MOV',
      'video codec unknown is not H.264',
      'chroma of unknown pixel format is not 4:2:0',
    ]);
  });
});

describe('standardInput: what a copy would carry into segments players mishandle', () => {
  it('refuses open GOPs (leading frames reference the previous segment)', () => {
    expect(standardInput(phone({ openGop: true })).reasons).toEqual(['open GOP: frames after a keyframe refer to frames before it']);
    expect(standardInput(phone({ openGop: false })).standard).toBe(true);
  });

  it('refuses interlaced video of either field order, accepts progressive or unstated', () => {
    expect(standardInput(phone({ fieldOrder: 'tt' })).reasons).toEqual(['interlaced video (field order tt) needs deinterlacing']);
    expect(standardInput(phone({ fieldOrder: 'bb' })).reasons).toEqual(['interlaced video (field order bb) needs deinterlacing']);
    expect(standardInput(phone({ fieldOrder: 'tb' })).standard).toBe(false);
    expect(standardInput(phone({ fieldOrder: undefined })).standard).toBe(true);
    expect(standardInput(phone({ fieldOrder: 'unknown' })).standard).toBe(true);
  });

  it('accepts Constrained Baseline, Main and High up to level 5.1; refuses High 10/4:2:2 profiles and higher levels', () => {
    for (const videoProfile of ['Constrained Baseline', 'Baseline', 'Main', 'High']) expect(standardInput(phone({ videoProfile })).standard).toBe(true);
    expect(standardInput(phone({ videoLevel: 51 })).standard).toBe(true);
    expect(standardInput(phone({ videoProfile: 'High 4:2:2 Intra' })).reasons).toEqual(['H.264 profile High 4:2:2 Intra is not Baseline, Main or High']);
    expect(standardInput(phone({ videoLevel: 52 })).reasons).toEqual(['H.264 level 5.2 exceeds 5.1']);
    expect(standardInput(phone({ videoProfile: undefined, videoLevel: undefined })).reasons).toEqual(['H.264 profile unknown is not Baseline, Main or High', 'H.264 level unknown exceeds 5.1']);
  });

  it('refuses a bitrate above the bound, and accepts an unstated one', () => {
    expect(standardInput(phone({ videoKbps: 45_000 })).reasons).toEqual(['video bitrate 45000 kbit/s exceeds 30000']);
    expect(standardInput(phone({ videoKbps: undefined })).standard).toBe(true);
  });

  it('accepts AAC-LC and HE-AAC (v1, v2); refuses AAC-LD, AAC-ELD and unknown profiles', () => {
    for (const audioProfile of ['LC', 'HE-AAC', 'HE-AACv2']) expect(standardInput(phone({ audioProfile })).standard).toBe(true);
    expect(standardInput(phone({ audioProfile: 'LD' })).reasons).toEqual(['AAC profile LD is not LC or HE-AAC']);
    expect(standardInput(phone({ audioProfile: 'ELD' })).reasons).toEqual(['AAC profile ELD is not LC or HE-AAC']);
    expect(standardInput(phone({ audioProfile: undefined })).reasons).toEqual(['AAC profile unknown is not LC or HE-AAC']);
    expect(standardInput(phone({ hasAudio: false, audioCodec: undefined, audioProfile: undefined })).standard).toBe(true);
  });

  it('refuses a mirroring display matrix; reads the mirror from the matrix ffprobe prints', () => {
    expect(standardInput(phone({ mirrored: true })).reasons).toEqual(['display matrix mirrors the picture']);
    const print = (a: number, b: number, c: number, d: number) => `\n00000000: ${a} ${b} 0\n00000001: ${c} ${d} 0\n00000002: 0 0 1073741824\n`;
    expect(mirroredDisplayMatrix(print(65536, 0, 0, 65536))).toBe(false);
    // A phone portrait (rotation −90) is a turn, not a mirror.
    expect(mirroredDisplayMatrix(print(0, 65536, -65536, 0))).toBe(false);
    expect(mirroredDisplayMatrix(print(-65536, 0, 0, 65536))).toBe(true);
    expect(mirroredDisplayMatrix(print(0, 65536, 65536, 0))).toBe(true);
    expect(mirroredDisplayMatrix(undefined)).toBe(false);
  });
});

describe('CODECS of a variant', () => {
  it('names H.264 from an avcC record (MP4) or from the SPS after a start code (MPEG-TS)', () => {
    expect(avcCodec('\n00000000: 0164 001f ffe1 0019 6764 001f acd9  .d......gd....\n')).toBe('avc1.64001f');
    expect(avcCodec('\n00000000: 0000 0167 4d40 15f4 0a08 7e5c 0440 0000  ...gM@....~\\.@..\n00000010: 0300 4000 000f 07c5 0aa8 0000 0001 68de  ..@...........h.\n')).toBe('avc1.4d4015');
    expect(avcCodec('\n00000000: 0000 0001 6742 c01e da02  ....gB....\n')).toBe('avc1.42c01e');
    expect(avcCodec('\n')).toBeUndefined();
    expect(avcCodec(undefined)).toBeUndefined();
  });

  it('adds the AAC object type, and gives none when a present stream cannot be named', () => {
    expect(codecsAttribute('avc1.64001f', { present: true, profile: 'LC' })).toBe('avc1.64001f,mp4a.40.2');
    expect(codecsAttribute('avc1.64001f', { present: true, profile: 'HE-AAC' })).toBe('avc1.64001f,mp4a.40.5');
    expect(codecsAttribute('avc1.64001f', { present: true, profile: 'HE-AACv2' })).toBe('avc1.64001f,mp4a.40.29');
    expect(codecsAttribute('avc1.64001f', { present: false })).toBe('avc1.64001f');
    expect(codecsAttribute('avc1.64001f', { present: true, profile: 'LD' })).toBeUndefined();
    expect(codecsAttribute(undefined, { present: false })).toBeUndefined();
  });

  it('writes CODECS into hand-written masters and into the ladder master ffmpeg wrote', () => {
    expect(masterPlaylist([{ uri: 'source/index.m3u8', bandwidth: 1000, width: 1920, height: 1080, codecs: 'avc1.640028,mp4a.40.2' }])).toContain(
      '#EXT-X-STREAM-INF:BANDWIDTH=1000,RESOLUTION=1920x1080,CODECS="avc1.640028,mp4a.40.2"\nsource/index.m3u8\n',
    );
    const written = '#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=75900,RESOLUTION=640x360,CODECS="avc1.42c01e"\n360p/index.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=9\n720p/index.m3u8\n';
    expect(masterWithResolutions(written, { '360p': { width: 640, height: 360, codecs: 'avc1.4d401e,mp4a.40.2' }, '720p': { width: 1280, height: 720, codecs: 'avc1.4d401f' } })).toBe(
      '#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=75900,RESOLUTION=640x360,CODECS="avc1.4d401e,mp4a.40.2"\n360p/index.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=9,RESOLUTION=1280x720,CODECS="avc1.4d401f"\n720p/index.m3u8\n',
    );
  });
});

describe('stream-copied HLS', () => {
  it('copies the chosen video stream and the first audio stream into segments', () => {
    const args = buildCopyHlsArgs({ videoStreamIndex: 1, hasAudio: true }, { input: 'in.mp4', outputDir: '/w/source', segmentSeconds: 4 });
    expect(args).toEqual(expect.arrayContaining(['-map', '0:1', '0:a:0', '-c', 'copy', '-hls_time', '4', '/w/source/segment_%03d.ts', '/w/source/index.m3u8']));
    expect(buildCopyHlsArgs({ hasAudio: false }, { input: 'in.mp4', outputDir: '/w', segmentSeconds: 4 })).not.toContain('0:a:0');
  });

  it('writes a master with one line per variant and reads segment durations', () => {
    expect(masterPlaylist([{ uri: 'source/index.m3u8', bandwidth: 4_000_000.4, width: 1920, height: 1080 }])).toBe(
      '#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-STREAM-INF:BANDWIDTH=4000001,RESOLUTION=1920x1080\nsource/index.m3u8\n',
    );
    expect(masterPlaylist([{ uri: 'source/index.m3u8', bandwidth: 1, width: 2, height: 2 }], { startAtZero: true }).split('\n')[3]).toBe('#EXT-X-START:TIME-OFFSET=0');
  });

  it('writes an EVENT playlist ffmpeg rewrites after every segment, with segments complete and atomic', () => {
    const args = buildCopyHlsArgs({ hasAudio: true }, { input: 'in.mp4', outputDir: '/w', segmentSeconds: 4, playlistType: 'event' });
    expect(args[args.indexOf('-hls_playlist_type') + 1]).toBe('event');
    expect(args[args.indexOf('-hls_flags') + 1]).toBe('independent_segments+temp_file');
    const vod = buildCopyHlsArgs({ hasAudio: true }, { input: 'in.mp4', outputDir: '/w', segmentSeconds: 4 });
    // VOD too: the ladder's segments are uploaded while ffmpeg writes the next ones.
    expect([vod[vod.indexOf('-hls_playlist_type') + 1], vod[vod.indexOf('-hls_flags') + 1]]).toEqual(['vod', 'independent_segments+temp_file']);
  });
});

describe('progressive HLS playlists', () => {
  it('lists only complete segment entries of a playlist being rewritten', () => {
    const playlist = '#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4.000000,\nsegment_000.ts\n#EXTINF:1.5,\nsegment_001.ts\n';
    expect(listedSegments(playlist)).toEqual([
      { uri: 'segment_000.ts', seconds: 4 },
      { uri: 'segment_001.ts', seconds: 1.5 },
    ]);
    // Cut mid-line (a read racing the writer): the unfinished entry is not a segment yet.
    expect(listedSegments(playlist.slice(0, playlist.length - 5))).toEqual([{ uri: 'segment_000.ts', seconds: 4 }]);
    expect(listedSegments('#EXTM3U\n#EXTINF:4.0,\n')).toEqual([]);
    expect(listedSegments('')).toEqual([]);
  });

  it('writes an append-only EVENT playlist that starts players at 0 and ends with ENDLIST once complete', () => {
    const segments = [
      { uri: 'segment_000.ts', seconds: 4 },
      { uri: 'segment_001.ts', seconds: 4.2 },
    ];
    const growing = eventPlaylist(segments, { targetSeconds: 6, ended: false });
    expect(growing).toBe(
      '#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:6\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-START:TIME-OFFSET=0\n' +
        '#EXTINF:4.000000,\nsegment_000.ts\n#EXTINF:4.200000,\nsegment_001.ts\n',
    );
    const ended = eventPlaylist([...segments, { uri: 'segment_002.ts', seconds: 1 }], { targetSeconds: 6, ended: true });
    expect(ended.startsWith(growing)).toBe(true);
    expect(ended.endsWith('segment_002.ts\n#EXT-X-ENDLIST\n')).toBe(true);
    expect(listedSegments(ended)).toHaveLength(3);
    // A segment longer than the target still raises it rather than write an invalid playlist (the caller fixes it first).
    expect(eventPlaylist([{ uri: 'a.ts', seconds: 8.6 }], { targetSeconds: 6, ended: true })).toContain('#EXT-X-TARGETDURATION:9\n');
  });
});

describe('target duration and when a first rendition is announced', () => {
  const seg = (...seconds: number[]) => seconds.map((s, i) => ({ uri: `segment_${i}.ts`, seconds: s }));
  it('takes the longest EXTINF rounded to the nearest integer, at least 1', () => {
    expect(targetDuration(seg(2, 2, 2))).toBe(2);
    expect(targetDuration(seg(2, 2.49, 1))).toBe(2);
    // A long GOP late in a copy (8 s at 40 s) sets the target for the whole playlist.
    expect(targetDuration(seg(2, 2, 2, 8.2, 2))).toBe(8);
    expect(targetDuration(seg(2, 2.5))).toBe(3);
    expect(targetDuration([])).toBe(1);
  });

  it('counts the leading segments that list three target durations, or all of them', () => {
    expect(segmentsCovering(seg(2, 2, 2, 2), 6)).toBe(3);
    // 4 s copied segments (2 s + a 2 s GOP) with a target of 4: 12 s is three segments, not 6 s.
    expect(segmentsCovering(seg(4, 4, 4, 4, 4), 12)).toBe(3);
    expect(segmentsCovering(seg(1.999999, 2, 2.000001), 6)).toBe(3);
    expect(segmentsCovering(seg(2, 2), 6)).toBe(2);
    expect(segmentsCovering([], 6)).toBe(0);
  });
});
