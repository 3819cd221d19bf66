import { mkdirSync, mkdtempSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { makeDocuments } from '../fixtures/corpus-documents';
import { jpegWithExif, testVideo } from '../fixtures/media';
import { chromiumPath } from '../harness/chromium';
import { startPlatform, uniqueUser, type Platform } from '../harness/platform';

const root = resolve(__dirname, '..', '..');
/** The parts of the DOM elements read in the page (this project compiles without DOM types). */
type ImageState = { complete: boolean; naturalWidth: number };
type VideoState = { readyState: number; videoWidth: number; videoHeight: number };
const screenshotPath = join(root, 'test-artifacts', 'demo-page.png');

describe('the demo page in headless Chromium', () => {
  let p: Platform;
  let browser: Browser;
  let page: Page;
  let dir: string;
  const consoleErrors: string[] = [];
  const apiRequests: string[] = [];
  /** Every URL the pages got a 404 for (a favicon request would be one). */
  const notFound: string[] = [];

  beforeAll(async () => {
    [p, browser] = await Promise.all([
      startPlatform({ HLS_X264_PRESET: 'ultrafast' }),
      chromium.launch({ executablePath: chromiumPath(), args: ['--no-sandbox'] }),
    ]);
    page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    page.on('console', (message) => message.type() === 'error' && consoleErrors.push(message.text()));
    page.on('pageerror', (err) => consoleErrors.push(err.message));
    page.on(
      'request',
      (request) => request.url().includes('/api/v1/') && apiRequests.push(`${request.method()} ${new URL(request.url()).pathname}`),
    );
    page.on('response', (res) => res.status() === 404 && notFound.push(res.url()));
    dir = mkdtempSync(join(tmpdir(), 'demo-page-'));
  });
  afterAll(async () => {
    await browser?.close();
    await p?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const row = (fileName: string) => page.locator(`li.file[data-file-name="${fileName}"]`);

  it('uploads an image and a video through the page and shows both READY, with thumbnail and player', async () => {
    const user = uniqueUser('browser');
    const files = {
      photo: join(dir, 'photo.jpg'),
      clip: join(dir, 'clip.mp4'),
      renamed: join(dir, 'renamed.jpg'),
      notes: join(dir, 'notes.txt'),
    };
    writeFileSync(files.photo, await jpegWithExif(1200, 800));
    writeFileSync(files.clip, await testVideo(p.config.FFMPEG_PATH, 2, 360));
    // Text under an image name: the page lets it through (its type comes from the name), the workflow rejects it.
    writeFileSync(files.renamed, 'this is a plain text file, not a JPEG\n'.repeat(20));
    writeFileSync(files.notes, 'a text file the page refuses at once\n');

    const token = await p.token(user);
    const response = await page.goto(`${p.api.url}/#token=${token}`);
    expect(response?.status()).toBe(200);
    const csp = response!.headers()['content-security-policy']!;
    expect(csp).toContain(`connect-src 'self' ${new URL(p.config.S3_ENDPOINT!).origin}`);
    expect(csp).toContain("media-src 'self' blob:");
    // The token was read into the field and left the address bar.
    expect(await page.inputValue('#token')).toBe(token);
    expect(page.url()).toBe(`${p.api.url}/`);

    await page.setInputFiles('#file-input', [files.photo, files.clip, files.renamed, files.notes]);

    await row('photo.jpg').and(page.locator('[data-status="READY"]')).waitFor({ timeout: 60_000 });
    await row('clip.mp4').and(page.locator('[data-status="READY"]')).waitFor({ timeout: 90_000 });
    await row('renamed.jpg').and(page.locator('[data-status="REJECTED"]')).waitFor({ timeout: 60_000 });

    // The thumbnail came from the CDN (the page's CSP allows it): the browser decoded it.
    const thumbnail = row('photo.jpg').locator('img.thumbnail');
    await thumbnail.waitFor();
    await page.waitForFunction(
      (img) => (img as ImageState).complete && (img as ImageState).naturalWidth > 0,
      await thumbnail.elementHandle(),
    );
    // hls.js loaded the master playlist and a segment through MediaSource: the video knows its size.
    const video = row('clip.mp4').locator('video');
    await page.waitForFunction((v) => (v as VideoState).readyState >= 1 && (v as VideoState).videoWidth > 0, await video.elementHandle(), {
      timeout: 60_000,
    });
    expect(await video.evaluate((v) => (v as unknown as VideoState).videoHeight)).toBe(360);
    // That player was started at the `playable` event, before READY, and kept (not replaced) at READY.
    expect(await row('clip.mp4').getAttribute('data-playable-while')).toBe('PROCESSING');
    expect(await row('clip.mp4').locator('video').count()).toBe(1);

    expect(await row('renamed.jpg').locator('.message').textContent()).toMatch(
      /Rejected: the file's content does not match its type \(CONTENT_MISMATCH/,
    );
    expect(await row('notes.txt').getAttribute('data-status')).toBe('CLIENT_REJECTED');
    expect(await row('notes.txt').locator('.message').textContent()).toMatch(
      /Not uploaded: text\/plain is not an accepted image, video or PDF type/,
    );
    expect(await page.locator('#batch-text').textContent()).toMatch(/^4 of 4 files finished/);

    // The API agrees with the page.
    for (const [name, status] of [
      ['photo.jpg', 'READY'],
      ['clip.mp4', 'READY'],
      ['renamed.jpg', 'REJECTED'],
    ] as const) {
      const mediaId = await row(name).getAttribute('data-media-id');
      const media = await p.call(user, `/media/${mediaId}`);
      expect({ name, status: media.body.status }).toEqual({ name, status });
    }
    expect(consoleErrors.filter((e) => /Content Security Policy|Refused to/i.test(e))).toEqual([]);
    // Live status came over SSE (read from fetch's stream, with the bearer header), not by polling.
    expect(apiRequests.filter((r) => r.endsWith('/events'))).toHaveLength(3);
    expect(apiRequests.filter((r) => /^GET \/api\/v1\/media\/[0-9a-f-]{36}$/.test(r))).toEqual([]);

    mkdirSync(join(root, 'test-artifacts'), { recursive: true });
    await page.screenshot({ path: screenshotPath, fullPage: true });
    expect(statSync(screenshotPath).size).toBeGreaterThan(10_000);
  });

  it('fits a 390 px wide phone screen without horizontal scrolling, players and thumbnails included', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    try {
      expect(await row('clip.mp4').locator('video').count()).toBe(1);
      const overflow = await page.evaluate(() => {
        const root = (globalThis as unknown as { document: { documentElement: { scrollWidth: number; clientWidth: number } } }).document.documentElement;
        return { scrollWidth: root.scrollWidth, clientWidth: root.clientWidth };
      });
      expect(overflow.clientWidth).toBe(390);
      expect(overflow.scrollWidth).toBeLessThanOrEqual(overflow.clientWidth);
    } finally {
      await page.setViewportSize({ width: 1100, height: 900 });
    }
  });

  it('declares an icon that needs no request, answers /favicon.ico without a 404, and got no 404 for anything it loaded', async () => {
    const icon = await page.evaluate(() => {
      const link = (globalThis as unknown as { document: { querySelector(s: string): { href: string } | null } }).document.querySelector('link[rel="icon"]');
      return link?.href;
    });
    expect(icon).toMatch(/^data:/);
    expect((await fetch(`${p.api.url}/favicon.ico`)).status).toBe(204);
    expect(notFound).toEqual([]);
  });

  it('keeps files picked before a token is entered and sends them once one is', async () => {
    const user = uniqueUser('late-token');
    const photo = join(dir, 'before-token.jpg');
    writeFileSync(photo, await jpegWithExif(640, 480));
    const second = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    second.on('response', (res) => res.status() === 404 && notFound.push(res.url()));
    try {
      await second.goto(`${p.api.url}/`);
      await second.setInputFiles('#file-input', [photo]);
      expect(await second.locator('#page-error').textContent()).toMatch(/^1 file waits for a bearer token/);
      expect(await second.locator('li.file').count()).toBe(0);
      await second.fill('#token', await p.token(user));
      const sent = second.locator('li.file[data-file-name="before-token.jpg"]');
      await sent.and(second.locator('[data-status="READY"]')).waitFor({ timeout: 60_000 });
      expect(await second.locator('#page-error').isHidden()).toBe(true);
      const mediaId = await sent.getAttribute('data-media-id');
      expect((await p.call(user, `/media/${mediaId}`)).body.status).toBe('READY');
      expect(notFound).toEqual([]);
    } finally {
      await second.close();
    }
  });

  it('uploads a PDF through the page and shows its page-1 preview, its flags and a download link', async () => {
    const user = uniqueUser('browser-pdf');
    const plan = join(dir, 'plan.pdf');
    writeFileSync(plan, makeDocuments().javascript);
    const pdfPage = await browser.newPage();
    try {
      await pdfPage.goto(`${p.api.url}/#token=${await p.token(user)}`);
      await pdfPage.setInputFiles('#file-input', [plan]);
      const pdfRow = pdfPage.locator('li.file[data-file-name="plan.pdf"]');
      await pdfRow.and(pdfPage.locator('[data-status="READY"]')).waitFor({ timeout: 60_000 });
      const thumbnail = pdfRow.locator('img.thumbnail');
      await thumbnail.waitFor();
      await pdfPage.waitForFunction((img) => (img as ImageState).complete && (img as ImageState).naturalWidth > 0, await thumbnail.elementHandle());
      expect(await pdfRow.locator('.message').textContent()).toBe('1 page, contains JavaScript');
      expect(await pdfRow.locator('a').textContent()).toBe('download PDF');
    } finally {
      await pdfPage.close();
    }
  });

  it('checks files against the server limits before sending them', async () => {
    const big = join(dir, 'huge.png');
    // Sparse: 6 MiB on paper, nothing on disk; PROFILE_IMAGE allows 5 MiB.
    writeFileSync(big, Buffer.alloc(0));
    truncateSync(big, 6 * 1024 * 1024);
    await page.selectOption('#media-type', 'PROFILE_IMAGE');
    await page.setInputFiles('#file-input', [big]);
    const message = await row('huge.png').locator('.message').textContent();
    expect(await row('huge.png').getAttribute('data-status')).toBe('CLIENT_REJECTED');
    expect(message).toBe('Not uploaded: PROFILE_IMAGE files may be at most 5.0 MiB (this one is 6.0 MiB) (FILE_TOO_LARGE)');
  });

  it('keeps JSON 404s for unknown paths next to the page', async () => {
    const outside = await fetch(`${p.api.url}/no-such-page`);
    expect(outside.status).toBe(404);
    expect(((await outside.json()) as any).error.code).toBe('NOT_FOUND');
    const api = await p.call(uniqueUser('x'), '/no-such-endpoint');
    expect(api.status).toBe(404);
    expect(api.body.error.code).toBe('NOT_FOUND');
  });
});
