import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { chromium, type Browser, type Page } from 'playwright-core';
import { jpegWithExif } from '../fixtures/media';
import { chromiumPath } from '../harness/chromium';
import { until } from '../../devstack/poll';
import { mintDevToken } from '../../scripts/token';
import { startPlatform, uniqueUser, waitForStatus, type Platform } from '../harness/platform';

const root = resolve(__dirname, '..', '..');
const MiB = 1024 * 1024;
const uppyScreenshotPath = join(root, 'test-artifacts', 'uppy-dashboard.png');

/** An H.264 clip of random pixels, lossless: a few seconds make megabytes (several parts). */
async function bigVideo(ffmpegPath: string, file: string, seconds: number): Promise<void> {
  await promisify(execFile)(ffmpegPath, [
    '-hide_banner', '-loglevel', 'error', '-nostdin', '-y',
    '-f', 'lavfi', '-i', `nullsrc=size=480x270:rate=30:duration=${seconds},geq=lum='random(1)*255':cb=128:cr=128`,
    '-f', 'lavfi', '-i', `sine=frequency=440:duration=${seconds}`,
    '-c:v', 'libx264', '-preset', 'ultrafast', '-qp', '0', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-shortest', '-movflags', '+faststart', file,
  ]);
}

/** What the page's Uppy instance is, as far as these tests use it (no DOM types here). */
interface PageUppy {
  setFileMeta(fileId: string, meta: Record<string, unknown>): void;
  getFiles(): Array<{ id: string; name: string; progress: { uploadComplete?: boolean }; s3Multipart?: { key: string; uploadId: string } }>;
  pauseResume(fileId: string): boolean | undefined;
  removeFile(fileId: string): void;
  upload(): Promise<unknown>;
  on(event: string, handler: (...args: any[]) => void): void;
  once(event: string, handler: (...args: any[]) => void): void;
}
declare const uppy: PageUppy;

describe('Uppy (@uppy/core, @uppy/dashboard, @uppy/aws-s3) on this API through awsS3Options', () => {
  let p: Platform;
  let browser: Browser;
  let dir: string;
  const user = uniqueUser('uppy');
  /** `METHOD path` of every API call and S3 PUT the pages made (part numbers kept). */
  const requests: string[] = [];

  beforeAll(async () => {
    [p, browser] = await Promise.all([
      // Small multipart settings: a 2-second clip of noise is three 5 MiB parts.
      startPlatform({ MULTIPART_THRESHOLD_BYTES: String(6 * MiB), PART_SIZE_BYTES: String(5 * MiB), HLS_X264_PRESET: 'ultrafast' }),
      chromium.launch({ executablePath: chromiumPath(), args: ['--no-sandbox'] }),
    ]);
    dir = mkdtempSync(join(tmpdir(), 'uppy-'));
  });
  afterAll(async () => {
    await browser?.close();
    await p?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** The Uppy page of the API, with a token (`user`'s by default) in the fragment, ready to take files. */
  async function openPage(token?: string): Promise<Page> {
    const page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
    page.on('pageerror', (err) => requests.push(`pageerror ${err.message}`));
    page.on('request', (req) => {
      const url = new URL(req.url());
      if (url.pathname.startsWith('/api/v1/') || url.searchParams.has('partNumber') || req.method() === 'PUT') {
        requests.push(`${req.method()} ${url.pathname}${url.searchParams.has('partNumber') ? `?partNumber=${url.searchParams.get('partNumber')}` : ''}`);
      }
    });
    await page.goto(`${p.api.url}/uppy#token=${token ?? (await p.token(user))}`);
    await page.waitForFunction(() => typeof (globalThis as { uppy?: unknown }).uppy === 'object');
    expect(page.url()).toBe(`${p.api.url}/uppy`);
    return page;
  }

  const mediaNamed = async (fileName: string): Promise<string> => {
    const list = await p.call(user, '/media?limit=100');
    const found = (list.body.items as Array<{ mediaId: string; fileName: string }>).find((m) => m.fileName === fileName);
    if (!found) throw new Error(`no media named ${fileName}`);
    return found.mediaId;
  };

  it('uploads an image (one PUT, then complete) and a multipart video through the Dashboard to READY', async () => {
    const page = await openPage();
    const photo = join(dir, 'photo.jpg');
    const clip = join(dir, 'clip.mp4');
    writeFileSync(photo, await jpegWithExif(1200, 800));
    await bigVideo(p.config.FFMPEG_PATH, clip, 2);
    expect(statSync(clip).size).toBeGreaterThan(10 * MiB);

    await page.setInputFiles('.uppy-Dashboard-input >> nth=0', [photo, clip]);
    await page.locator('.uppy-StatusBar-actionBtn--upload').click();
    // Uppy's own verdict: every file uploaded, none failed.
    const result = await page.evaluate(
      () => new Promise<{ successful: number; failed: number }>((done) => uppy.once('complete', (r: { successful: unknown[]; failed: unknown[] }) => done({ successful: r.successful.length, failed: r.failed.length }))),
    );
    expect(result).toEqual({ successful: 2, failed: 0 });

    const [photoId, clipId] = [await mediaNamed('photo.jpg'), await mediaNamed('clip.mp4')];
    // The image went as one PUT, confirmed after its last byte; the video in parts, signed on demand.
    expect(requests).toEqual(expect.arrayContaining([`POST /api/v1/media/${photoId}/complete`, `POST /api/v1/media/${clipId}/complete`]));
    expect(requests.filter((r) => r.startsWith('PUT ') && r.includes('?partNumber='))).toHaveLength(3);
    expect((await waitForStatus(p, user, photoId, ['READY', 'FAILED', 'REJECTED'])).status).toBe('READY');
    const video = await waitForStatus(p, user, clipId, ['READY', 'FAILED', 'REJECTED'], 120_000);
    expect(video.status).toBe('READY');
    expect(video.hls?.masterUrl).toMatch(/\.m3u8$/);

    await page.locator('.uppy-Dashboard-Item').first().waitFor();
    mkdirSync(join(root, 'test-artifacts'), { recursive: true });
    await page.screenshot({ path: uppyScreenshotPath, fullPage: true });
    expect(statSync(uppyScreenshotPath).size).toBeGreaterThan(10_000);
    expect(requests.filter((r) => r.startsWith('pageerror'))).toEqual([]);
    await page.close();
  });

  it('resumes an interrupted multipart upload: lists the parts S3 holds and sends only the others', async () => {
    const page = await openPage();
    const clip = join(dir, 'resumed.mp4');
    await bigVideo(p.config.FFMPEG_PATH, clip, 2);
    await page.setInputFiles('.uppy-Dashboard-input >> nth=0', [clip]);
    // Interrupt once the first part is in S3 (pause aborts the parts in flight), then resume.
    const firstPart = await page.evaluate(async () => {
      const [file] = uppy.getFiles();
      const uploaded = new Promise<number>((done) => uppy.once('s3-multipart:part-uploaded', (_f: unknown, part: { PartNumber: number }) => done(part.PartNumber)));
      void uppy.upload();
      const partNumber = await uploaded;
      uppy.pauseResume(file!.id);
      return partNumber;
    });
    const mediaId = await mediaNamed('resumed.mp4');
    const listed = requests.length;
    const result = await page.evaluate(async () => {
      const [file] = uppy.getFiles();
      const done = new Promise<number>((finish) => uppy.once('complete', (r: { successful: unknown[] }) => finish(r.successful.length)));
      uppy.pauseResume(file!.id);
      return done;
    });
    expect(result).toBe(1);
    // The resume asked the API what S3 holds, and the part already there was not sent again.
    expect(requests.slice(listed)).toContain(`GET /api/v1/media/${mediaId}/parts`);
    expect(requests.filter((r) => r.endsWith(`?partNumber=${firstPart}`) && r.startsWith('PUT '))).toHaveLength(
      requests.slice(0, listed).filter((r) => r.endsWith(`?partNumber=${firstPart}`) && r.startsWith('PUT ')).length,
    );
    expect((await waitForStatus(p, user, mediaId, ['READY', 'FAILED', 'REJECTED'], 120_000)).status).toBe('READY');
    await page.close();
  });

  it('cancels an upload removed from the Dashboard: the media ends CANCELLED and storage holds nothing of it', async () => {
    const page = await openPage();
    const clip = join(dir, 'cancelled.mp4');
    await bigVideo(p.config.FFMPEG_PATH, clip, 2);
    await page.setInputFiles('.uppy-Dashboard-input >> nth=0', [clip]);
    const mediaId = await page.evaluate(async () => {
      const [file] = uppy.getFiles();
      const uploaded = new Promise<void>((done) => uppy.once('s3-multipart:part-uploaded', () => done()));
      void uppy.upload();
      await uploaded;
      const key = uppy.getFiles()[0]!.s3Multipart!.key;
      // What the Dashboard's remove button does.
      uppy.removeFile(file!.id);
      return key;
    });
    const media = await waitForStatus(p, user, mediaId, ['CANCELLED', 'READY', 'FAILED', 'REJECTED']);
    expect(media).toMatchObject({ status: 'CANCELLED', failureReason: 'CANCELLED_BY_USER' });
    expect(requests).toContain(`DELETE /api/v1/media/${mediaId}`);
    const row = (await p.media.findById(mediaId))!;
    expect(await p.storage.listParts(p.config.S3_INCOMING_BUCKET, row.storageKey, row.uploadId!)).toBeUndefined();
    expect(await p.storage.head(p.config.S3_INCOMING_BUCKET, row.storageKey)).toBeUndefined();
    expect(await p.storage.head(p.config.S3_MEDIA_BUCKET, row.storageKey)).toBeUndefined();
    await page.close();
  });
  it("puts a file in the project its Uppy meta names, and fails one whose project the token does not grant", async () => {
    const member = uniqueUser('uppy-project');
    const page = await openPage(await mintDevToken(p.config.JWT_SECRET!, member, '1h', { tenant: 'acme', projects: ['site-7'] }));
    const [granted, forbidden] = [join(dir, 'site-photo.jpg'), join(dir, 'other-photo.jpg')];
    writeFileSync(granted, await jpegWithExif(640, 480));
    writeFileSync(forbidden, await jpegWithExif(640, 480));
    await page.setInputFiles('.uppy-Dashboard-input >> nth=0', [granted, forbidden]);
    const result = await page.evaluate(async () => {
      for (const file of uppy.getFiles()) uppy.setFileMeta(file.id, { projectId: file.name === 'site-photo.jpg' ? 'site-7' : 'site-8' });
      return new Promise<{ successful: string[]; failed: string[] }>((done) => {
        uppy.once('complete', (r: { successful: Array<{ name: string }>; failed: Array<{ name: string; error?: string }> }) =>
          done({ successful: r.successful.map((f) => f.name), failed: r.failed.map((f) => `${f.name}: ${f.error}`) }),
        );
        void uppy.upload();
      });
    });
    expect(result.successful).toEqual(['site-photo.jpg']);
    expect(result.failed).toEqual([expect.stringMatching(/^other-photo\.jpg: .*project/i)]);
    const authorization = `Bearer ${await mintDevToken(p.config.JWT_SECRET!, member, '1h', { tenant: 'acme', projects: ['site-7'] })}`;
    const listed = await fetch(`${p.api.url}/api/v1/media?projectId=site-7`, { headers: { authorization } });
    const items = ((await listed.json()) as { items: Array<{ mediaId: string; fileName: string; projectId: string | null }> }).items;
    expect(items.map((m) => [m.fileName, m.projectId])).toEqual([['site-photo.jpg', 'site-7']]);
    const ready = await until('the project photo READY', async () => {
      const media = (await (await fetch(`${p.api.url}/api/v1/media/${items[0]!.mediaId}`, { headers: { authorization } })).json()) as { status: string };
      return ['READY', 'FAILED', 'REJECTED'].includes(media.status) ? media : undefined;
    });
    expect(ready.status).toBe('READY');
    await page.close();
  });
});
