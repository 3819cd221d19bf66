import { buildCopyHlsArgs, eventPlaylist, listedSegments, masterPlaylist } from '../../services/shared/media/hls-args';
import { standardInput, type StandardInputFacts } from '../../services/shared/media/standard-input';

/** What a phone writes in landscape: H.264 High 8-bit 4:2:0, AAC, 1 s GOPs, in MP4. */
const phone = (over: Partial<StandardInputFacts> = {}): StandardInputFacts => ({
  width: 1920,
  height: 1080,
  rotation: 0,
  videoCodec: 'h264',
  audioCodec: 'aac',
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
    expect(standardInput(phone({ keyframeIntervalSeconds: 10 }), { maxKeyframeIntervalSeconds: 12, maxShortSide: 1080, maxLongSide: 2048, maxFrameRate: 60 }).standard).toBe(true);
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
    expect([vod[vod.indexOf('-hls_playlist_type') + 1], vod[vod.indexOf('-hls_flags') + 1]]).toEqual(['vod', 'independent_segments']);
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
    // A segment longer than the bound raises the target duration (EXTINF rounded must not exceed it).
    expect(eventPlaylist([{ uri: 'a.ts', seconds: 8.6 }], { targetSeconds: 6, ended: true })).toContain('#EXT-X-TARGETDURATION:9\n');
  });
});
