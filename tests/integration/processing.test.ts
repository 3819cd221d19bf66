import { execFileSync } from 'node:child_process';
import sharp from 'sharp';
import { ffmpeg as ffmpegTools } from '../../devstack/tools';
import { derivedPrefix } from '../../services/shared/media-types';
import { eicar, jpegWithExif, testVideo } from '../fixtures/media';
import { startPlatform, uniqueUser, uploadFile as upload, waitForStatus, type Platform } from '../harness/platform';

describe('scan and processing on the real stack', () => {
  let p: Platform;
  beforeAll(async () => {
    p = await startPlatform({ FFMPEG_PATH: ffmpegTools().ffmpeg, FFPROBE_PATH: ffmpegTools().ffprobe, HLS_X264_PRESET: 'ultrafast' });
  });
  afterAll(() => p?.stop());

  it('takes an image to READY with every size as WebP and JPEG, rotated, without EXIF', async () => {
    const user = uniqueUser('img');
    const original = await jpegWithExif(1600, 1000);
    const session = await upload(p, user, original, 'image/jpeg', 'POST_IMAGE', 'photo.jpg');
    const media = await waitForStatus(p, user, session.mediaId, ['READY', 'REJECTED', 'FAILED']);
    expect(media.status).toBe('READY');
    // EXIF orientation 6: the 1600×1000 sensor image is 1000×1600 upright.
    expect(media.metadata).toMatchObject({ width: 1000, height: 1600, format: 'jpeg', camera: 'TestCam Model 1' });
    expect(media.metadata.gps).toBeUndefined();
    const widths = media.thumbnails.map((t: { width: number; format: string }) => `${t.width}.${t.format}`).sort();
    // 1200 would upscale a 1000 px wide image: not produced.
    expect(widths).toEqual(['150.jpeg', '150.webp', '300.jpeg', '300.webp', '600.jpeg', '600.webp'].sort());
    for (const t of media.thumbnails) {
      const res = await fetch(t.url);
      expect(res.status).toBe(200);
      expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
      const meta = await sharp(Buffer.from(await res.arrayBuffer())).metadata();
      expect(meta.width).toBe(t.width);
      expect(meta.height).toBe(Math.round((t.width * 1600) / 1000));
      expect(meta.exif).toBeUndefined();
    }
    const row = await p.media.findById(session.mediaId);
    expect(row?.metadata.gps).toMatchObject({ latitude: expect.closeTo(48.85, 1) });
    expect((row?.metadata.scan as { status: string }).status).toBe('CLEAN');
  });

  it('rejects the EICAR test file as malware and leaves nothing in either bucket', async () => {
    const user = uniqueUser('eicar');
    // EICAR behind a JPEG magic number: verification passes, the scanner must catch it.
    const file = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), eicar]);
    const withHeader = await upload(p, user, file, 'image/jpeg', 'POST_IMAGE', 'eicar.jpg');
    const media = await waitForStatus(p, user, withHeader.mediaId, ['READY', 'REJECTED', 'FAILED']);
    expect(media.status).toBe('REJECTED');
    expect(media.failureReason).toMatch(/^MALWARE: malware found: Eicar-Test-File/);
    expect(await p.storage.head(p.config.S3_INCOMING_BUCKET, withHeader.storageKey)).toBeUndefined();
    expect(await p.storage.head(p.config.S3_MEDIA_BUCKET, withHeader.storageKey)).toBeUndefined();
    expect(await p.storage.listKeys(p.config.S3_MEDIA_BUCKET, derivedPrefix(withHeader.mediaId))).toEqual([]);
  });

  it('rejects an image that cannot be decoded', async () => {
    const user = uniqueUser('broken');
    const file = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(2000, 3)]);
    const session = await upload(p, user, file, 'image/jpeg', 'POST_IMAGE');
    const media = await waitForStatus(p, user, session.mediaId, ['READY', 'REJECTED', 'FAILED']);
    expect(media.status).toBe('REJECTED');
    expect(media.failureReason).toMatch(/^UNDECODABLE_MEDIA/);
  });

  it('takes a short video to READY with a poster and a playable HLS ladder no higher than the source', async () => {
    const user = uniqueUser('video');
    const clip = await testVideo(ffmpegTools().ffmpeg, 3, 480);
    const session = await upload(p, user, clip, 'video/mp4', 'POST_VIDEO', 'clip.mp4');
    const media = await waitForStatus(p, user, session.mediaId, ['READY', 'REJECTED', 'FAILED'], 120_000);
    expect(media.status).toBe('READY');
    expect(media.metadata).toMatchObject({ width: 854, height: 480, hasAudio: true });
    expect(media.metadata.durationSeconds).toBeCloseTo(3, 0);
    expect(media.poster.url).toMatch(/poster\.jpg$/);
    expect(media.hls.renditions.map((r: { name: string }) => r.name)).toEqual(['360p']);
    const master = await (await fetch(media.hls.masterUrl)).text();
    expect(master).toContain('#EXTM3U');
    expect(master).toContain('360p/index.m3u8');
    // ffprobe plays the master playlist from the media bucket end to end.
    const probed = JSON.parse(
      execFileSync(ffmpegTools().ffprobe, ['-v', 'error', '-show_entries', 'stream=codec_type,height', '-of', 'json', media.hls.masterUrl]).toString(),
    ) as { streams: Array<{ codec_type: string; height?: number }> };
    const heights = probed.streams.filter((s) => s.codec_type === 'video').map((s) => s.height!);
    expect(heights.length).toBeGreaterThan(0);
    expect(Math.max(...heights)).toBeLessThanOrEqual(480);
    expect(probed.streams.some((s) => s.codec_type === 'audio')).toBe(true);
  });

  it('rejects a file declared as video that is not one', async () => {
    const user = uniqueUser('notvideo');
    const fake = Buffer.concat([Buffer.from([0, 0, 0, 0x18]), Buffer.from('ftypisom'), Buffer.alloc(3000, 1)]);
    const session = await upload(p, user, fake, 'video/mp4', 'POST_VIDEO');
    const media = await waitForStatus(p, user, session.mediaId, ['READY', 'REJECTED', 'FAILED'], 60_000);
    expect(media.status).toBe('REJECTED');
    expect(media.failureReason).toMatch(/^UNDECODABLE_MEDIA/);
    expect(await p.storage.listKeys(p.config.S3_MEDIA_BUCKET, derivedPrefix(session.mediaId))).toEqual([]);
  });
});
