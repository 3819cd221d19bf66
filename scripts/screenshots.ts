import { Client, Connection } from '@temporalio/client';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { parseArgs } from 'node:util';
import { chromium, type Page } from 'playwright-core';
import { projectRoot } from '../devstack/tools';
import { stuckQuery, workflowListUrl, workflowUrl } from './ops';
import { devSecretFile, mintDevToken } from './token';
import { until as poll } from '../devstack/poll';

/**
 * `tsx scripts/screenshots.ts` against a running `npm run dev`: creates uploads in the states
 * the README's "stuck uploads" section talks about (waiting for their client, processing for
 * a while, a workflow whose task keeps failing), then saves the Temporal Web UI's filtered
 * lists and one upload's page as PNGs in docs/images. Chromium: CHROMIUM_PATH or `chromium`.
 */
const { values: options } = parseArgs({
  options: {
    api: { type: 'string', default: 'http://localhost:8080' },
    ui: { type: 'string', default: 'http://localhost:8233' },
    temporal: { type: 'string', default: '127.0.0.1:7233' },
    out: { type: 'string', default: join(projectRoot, 'docs', 'images') },
  },
});
const ui = { TEMPORAL_UI_URL: options.ui, TEMPORAL_NAMESPACE: 'default' };
const problemsQuery = 'ExecutionStatus = "Running" AND TemporalReportedProblems IN ("category=WorkflowTaskFailed", "category=WorkflowTaskTimedOut")';

const until = <T>(what: string, check: () => Promise<T | undefined>) => poll(what, check, { timeoutMs: 180_000, intervalMs: 1000 });

interface Session {
  mediaId: string;
  upload: { url: string; headers: Record<string, string> };
}

async function api<T = Session>(token: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${options.api}/api/v1${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

/** A four-minute 720p clip, small enough for a single PUT, long enough to stay PROCESSING a while. */
function testClip(dir: string): Buffer {
  const file = join(dir, 'clip.mp4');
  execFileSync('ffmpeg', ['-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=30', '-t', '240', '-c:v', 'libx264', '-preset', 'ultrafast', '-b:v', '150k', '-pix_fmt', 'yuv420p', file]);
  return readFileSync(file);
}

function chromiumPath(): string {
  const found = process.env.CHROMIUM_PATH ?? (process.env.PATH ?? '').split(delimiter).map((dir) => join(dir, 'chromium')).find((file) => existsSync(file));
  if (!found) throw new Error('Chromium not found: set CHROMIUM_PATH or put chromium on PATH');
  return found;
}

async function shoot(page: Page, url: string, waitForText: string, file: string, tab?: string): Promise<void> {
  // The UI keeps polling, so the network never goes idle: wait for what the picture is about.
  await page.goto(url, { waitUntil: 'load' });
  if (tab) await page.getByText(tab, { exact: true }).first().click();
  await page.getByText(waitForText).first().waitFor({ timeout: 30_000 });
  await page.waitForTimeout(2000);
  await page.screenshot({ path: join(options.out, file) });
  console.log(`saved ${join(options.out, file)} (${Math.round(statSync(join(options.out, file)).size / 1024)} KiB)`);
}

async function main(): Promise<void> {
  const secret = process.env.JWT_SECRET ?? (existsSync(devSecretFile) ? readFileSync(devSecretFile, 'utf8').trim() : undefined);
  if (!secret) throw new Error('no JWT secret: start `npm run dev` once first');
  const alice = await mintDevToken(secret, 'alice');
  const bob = await mintDevToken(secret, 'bob');
  const connection = await Connection.connect({ address: options.temporal });
  const temporal = new Client({ connection });
  const work = mkdtempSync(join(tmpdir(), 'screenshots-'));
  mkdirSync(options.out, { recursive: true });

  // A video that will sit in PROCESSING while its HLS ladder is encoded.
  const clip = testClip(work);
  const video = await api(alice, '/media/upload-session', { fileName: 'holiday.mp4', fileType: 'video/mp4', fileSize: clip.length, mediaType: 'POST_VIDEO' });
  const videoStart = Date.now();
  await fetch(video.upload.url, { method: 'PUT', body: clip, headers: video.upload.headers });
  await api(alice, `/media/${video.mediaId}/complete`, {});
  await until('the video to be PROCESSING for 25 s', async () => {
    const media = await api<{ status: string }>(alice, `/media/${video.mediaId}`);
    if (['READY', 'FAILED', 'REJECTED'].includes(media.status)) throw new Error(`the video is ${media.status} already: its transcode was too quick for the screenshot`);
    return media.status === 'PROCESSING' && Date.now() - videoStart > 25_000 ? true : undefined;
  });

  // Sessions whose clients never upload.
  const beach = await api(alice, '/media/upload-session', { fileName: 'beach.jpg', fileType: 'image/jpeg', fileSize: 2_400_000, mediaType: 'POST_IMAGE' });
  const profile = await api(bob, '/media/upload-session', { fileName: 'me.png', fileType: 'image/png', fileSize: 800_000, mediaType: 'PROFILE_IMAGE' });
  const concert = await api(alice, '/media/upload-session', { fileName: 'concert.mov', fileType: 'video/quicktime', fileSize: 90_000_000, mediaType: 'POST_VIDEO' });

  // An upload workflow started with input it cannot read: its workflow task fails on every
  // attempt, and after 5 the server flags it (TemporalReportedProblems).
  const broken = await temporal.workflow.start('MediaUploadWorkflow', { taskQueue: 'media-light', workflowId: `media-upload/broken-input-${Date.now()}`, args: [null] });

  const browser = await chromium.launch({ executablePath: chromiumPath(), args: ['--no-sandbox'] }).catch(async (err: unknown) => {
    await broken.terminate('no browser').catch(() => undefined);
    throw err;
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const processingQuery = stuckQuery({ status: 'PROCESSING', startedBefore: new Date(Date.now() - 20_000) }).replace(/\.\d{3}Z/, 'Z');
    await shoot(page, workflowListUrl(ui, processingQuery), `media-upload/${video.mediaId}`, 'web-ui-processing.png');
    await until('the broken workflow to be flagged', async () => {
      for await (const w of temporal.workflow.list({ query: `WorkflowId = "${broken.workflowId}" AND ${problemsQuery}` })) return w.workflowId;
      return undefined;
    });
    await shoot(page, workflowListUrl(ui, 'MediaStatus = "AWAITING_UPLOAD"'), `media-upload/${beach.mediaId}`, 'web-ui-awaiting-upload.png');
    await shoot(page, workflowListUrl(ui, problemsQuery), broken.workflowId, 'web-ui-reported-problems.png');
    // Summary and current details (set by the workflow; the UI renders them in a frame) say what
    // the upload is doing. A session never confirmed has run no workflow code yet (start delay):
    // the processing video has both.
    const { runId } = await temporal.workflow.getHandle(`media-upload/${video.mediaId}`).describe();
    await shoot(page, workflowUrl(ui, `media-upload/${video.mediaId}`, runId), 'Current Details', 'web-ui-upload-detail.png', 'User Metadata');
  } finally {
    await browser.close();
    await broken.terminate('screenshot done').catch(() => undefined);
    // The sessions made for the pictures end now instead of at their deadline.
    for (const [token, session] of [[alice, beach], [bob, profile], [alice, concert]] as const) {
      await fetch(`${options.api}/api/v1/media/${session.mediaId}`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
    }
    await connection.close();
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
