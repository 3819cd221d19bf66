import { isPublicText, MAX_DETAIL_LENGTH, publicDetail } from '../../services/shared/media/tool-errors';

// Real tool output, as the worker saw it (ffmpeg 5.1, libheif through sharp), addresses kept.
const TRUNCATED_MP4_OVER_S3 = `[mov,mp4,m4a,3gp,3g2,mj2 @ 0x5650b2a841c0] moov atom not found
http://127.0.0.1:21272/incoming/u/2026/12/01/0f9e8a7c-clip.mp4?[redacted]: Invalid data found when processing input
`;
const OWN_SEGMENT = '/tmp/transcode-4252.5657143-0f9e8a7c-1b2c-4d5e-8f90-123456789abc-d9wLae/hls/360p/segment_000.ts: End of file\n';
const TRUNCATED_AVIF =
  'source: bad seek to 2487\nsource: bad seek to 1445\nsource: bad seek to 1314\nsource: bad seek to 1249\nsource: bad seek to 1232\nsource: bad seek to 1228\nsource: bad seek to 2416\n' +
  'heif: Invalid input: Unexpected end of file: Extent in iloc box references data outside of file bounds (points to file position 404)\n (2.100)';
const FFMPEG_WRITE_FAILURE = `[hls @ 0x55d0c7a3e2c0] Opening '/tmp/transcode-77-abc/hls/720p/segment_004.ts.tmp' for writing
[hls @ 0x55d0c7a3e2c0] failed to rename file /tmp/transcode-77-abc/hls/720p/segment_004.ts.tmp to /tmp/transcode-77-abc/hls/720p/segment_004.ts: No space left on device
Conversion failed!
`;

describe('publicDetail (what of a tool error reaches a failure reason)', () => {
  it('keeps what ffprobe said of a truncated MP4 read over S3, without the internal URL, host, port or key', () => {
    const detail = publicDetail(TRUNCATED_MP4_OVER_S3);
    expect(detail).toBe('moov atom not found; Invalid data found when processing input');
    expect(isPublicText(detail)).toBe(true);
  });

  it("drops the worker's temp path from ffprobe's error on a segment", () => {
    expect(publicDetail(OWN_SEGMENT)).toBe('End of file');
  });

  it("reduces libheif's bad-seek retries on a truncated AVIF to its one meaningful line", () => {
    const detail = publicDetail(TRUNCATED_AVIF);
    expect(detail).toMatch(/^heif: Invalid input: Unexpected end of file/);
    expect(detail).not.toMatch(/bad seek|2\.100/);
    expect(isPublicText(detail)).toBe(true);
  });

  it("keeps ffmpeg's reason for a refused packet, not its progress and summary lines", () => {
    const stderr = [
      "[mpegts @ 0x5568ab3dc7c0] Error applying bitstream filters to an output packet for stream #0: Invalid data found when processing input",
      'av_interleaved_write_frame(): Invalid data found when processing input',
      "[hls @ 0x5568ab3adb80] Opening '/tmp/transcode-9543.4648-f685-LSkIgl/hls/source/segment_000.ts.tmp' for writing",
      'frame=   63 fps=0.0 q=-1.0 Lsize=N/A time=00:00:02.04 bitrate=N/A speed= 482x    ',
      'video:789kB audio:18kB subtitle:0kB other streams:0kB global headers:0kB muxing overhead: unknown',
      'Conversion failed!',
    ].join('\n');
    expect(publicDetail(stderr)).toBe('Error applying bitstream filters to an output packet for stream #0: Invalid data found when processing input; av_interleaved_write_frame(): Invalid data found when processing input'.slice(0, 159) + '…');
  });

  it("keeps ExifTool's reason without the file it names after ' - '", () => {
    expect(publicDetail('Error: JPEG EOI marker not found - /tmp/scrub-123.456-ab12-XXXX/original.jpg')).toBe('Error: JPEG EOI marker not found');
    expect(publicDetail('Error: Format error in file - /tmp/scrub-1.2-x/original.gif\n')).toBe('Error: Format error in file');
    // A hyphen inside a sentence stays.
    expect(publicDetail('codec h264 - profile High')).toBe('codec h264 - profile High');
  });

  it("keeps ffmpeg's reason for a failed write without any path", () => {
    const detail = publicDetail(FFMPEG_WRITE_FAILURE);
    expect(detail).toContain('No space left on device');
    expect(detail).not.toContain('/tmp/');
    expect(isPublicText(detail)).toBe(true);
  });

  it('is one line of bounded length, and says so when nothing meaningful is left', () => {
    const long = Array.from({ length: 50 }, (_, i) => `line ${i} ${'x'.repeat(40)}`).join('\n');
    expect(publicDetail(long).length).toBeLessThanOrEqual(MAX_DETAIL_LENGTH);
    expect(publicDetail(long)).not.toContain('\n');
    expect(publicDetail('source: bad seek to 12\n\n', 'unreadable')).toBe('unreadable');
    expect(publicDetail('https://s3.internal:8333/media/derived/x/hls/master.m3u8')).toBe('no detail');
  });

  it('leaves ordinary sentences alone (ratios, units, a time)', () => {
    expect(publicDetail('Invalid frame rate 30000/1001 at 00:00:01.5; 800 kbit/s')).toBe('Invalid frame rate 30000/1001 at 00:00:01.5; 800 kbit/s');
  });
});

describe('isPublicText', () => {
  it.each([TRUNCATED_MP4_OVER_S3, OWN_SEGMENT, TRUNCATED_AVIF])('refuses raw tool output %#', (raw) => {
    expect(isPublicText(raw.trim())).toBe(false);
  });
});
