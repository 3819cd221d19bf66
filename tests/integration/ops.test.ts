import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { freePort } from '../../devstack/ports';
import { devS3Credentials } from '../../devstack/credentials';
import { projectRoot } from '../../devstack/tools';
import { createWorker, type WorkerHandle } from '../../services/worker/worker';
import { MediaOwnerKey, MediaStatusKey } from '../../workflows/media-upload.workflow';
import { realJpeg } from '../fixtures/media';
import { stackState, startPlatform, testConfig, uniqueUser, waitForStatus, type Platform } from '../harness/platform';
import { until } from '../../devstack/poll';

const uiUrl = 'http://temporal-ui.test:8233';

interface OpsRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `npm run ops -- <args>` as an operator runs it: its own process, the stack's Temporal settings. */
function ops(...args: string[]): Promise<OpsRun> {
  return opsWith({}, ...args);
}

function opsWith(env: Record<string, string>, ...args: string[]): Promise<OpsRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(projectRoot, 'scripts', 'ops.ts'), ...args], {
      env: { ...process.env, ...stackState().env, TEMPORAL_UI_URL: uiUrl, ...env },
      cwd: projectRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}


/** A session whose bytes are in S3 but whose client never called complete. */
async function uploadWithoutConfirming(p: Platform, user: string) {
  const body = await realJpeg(2048);
  const res = await p.call(user, '/media/upload-session', { body: { fileName: 'left.jpg', fileType: 'image/jpeg', fileSize: body.length, mediaType: 'POST_IMAGE' } });
  expect(res.status).toBe(201);
  expect((await fetch(res.body.upload.url, { method: 'PUT', body, headers: res.body.upload.headers })).status).toBe(200);
  return { mediaId: res.body.mediaId as string, storageKey: res.body.storageKey as string, workflowId: `media-upload/${res.body.mediaId}` };
}

describe('npm run ops: stuck and cancel', () => {
  let p: Platform;
  const user = uniqueUser('stuck');
  let upload: Awaited<ReturnType<typeof uploadWithoutConfirming>>;

  beforeAll(async () => {
    // Only the light worker: the confirmation deadline (URL TTL + grace) is minutes away.
    p = await startPlatform({}, { videoWorker: false });
    upload = await uploadWithoutConfirming(p, user);
  });
  afterAll(() => p?.stop());

  it('lists an upload waiting for its client with its Web UI link, --older-than (StartTime <) keeps only older ones, and the README Web UI filters find it', async () => {
    const listed = await until('the upload in visibility', async () => {
      const run = await ops('stuck', '--status', 'AWAITING_UPLOAD', '--owner', user, '--json');
      expect(run.code).toBe(0);
      return run.stdout
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l))
        .find((u) => u.workflowId === upload.workflowId);
    });
    const { runId } = await p.temporal.workflow.getHandle(upload.workflowId).describe();
    expect(listed).toEqual({
      workflowId: upload.workflowId,
      runId,
      mediaStatus: 'AWAITING_UPLOAD',
      mediaType: 'POST_IMAGE',
      owner: user,
      tenant: 'default',
      startTime: expect.any(String),
      age: expect.stringMatching(/^\d+(s|m)$/),
      url: `${uiUrl}/namespaces/default/workflows/media-upload%2F${upload.mediaId}/${runId}/history`,
    });

    // By tenant: the token had no tenant claim, so the upload is the tenant `default`'s.
    const inDefault = await ops('stuck', '--tenant', 'default', '--owner', user, '--json');
    expect(inDefault.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l).workflowId)).toEqual([upload.workflowId]);
    expect(await ops('stuck', '--tenant', 'another-tenant', '--owner', user, '--json')).toEqual({ code: 0, stdout: '', stderr: '' });

    const older = await ops('stuck', '--status', 'AWAITING_UPLOAD', '--owner', user, '--older-than', '1h', '--json');
    expect(older).toEqual({ code: 0, stdout: '', stderr: '' });
    // ... and `StartTime <` keeps one that did start before: the same filter, one second back.
    await new Promise((r) => setTimeout(r, 1100));
    const started = await ops('stuck', '--status', 'AWAITING_UPLOAD', '--owner', user, '--older-than', '1s', '--json');
    expect(started.code).toBe(0);
    expect(started.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l).workflowId)).toEqual([upload.workflowId]);

    // The README's Web UI filters, as an operator pastes them (`=` without spaces, an RFC 3339 instant).
    const inUi = async (filter: string) => {
      const ids: string[] = [];
      for await (const w of p.temporal.workflow.list({ query: `${filter} AND MediaOwner="${user}"` })) ids.push(w.workflowId);
      return ids;
    };
    expect(await inUi('MediaStatus="AWAITING_UPLOAD" AND ExecutionStatus="Running"')).toEqual([upload.workflowId]);
    expect(await inUi(`MediaTenant="default" AND MediaStatus="AWAITING_UPLOAD" AND StartTime < "${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}"`)).toEqual([upload.workflowId]);
    expect(await inUi('MediaStatus="PROCESSING" AND ExecutionStatus="Running"')).toEqual([]);

    const readable = await ops('stuck', '--owner', user);
    expect(readable.code).toBe(0);
    expect(readable.stdout).toContain(`query: WorkflowType = "MediaUploadWorkflow" AND ExecutionStatus = "Running" AND MediaOwner = "${user}"`);
    expect(readable.stdout).toContain(`${uiUrl}/namespaces/default/workflows?query=`);
    expect(readable.stdout).toContain(`${upload.workflowId}  AWAITING_UPLOAD  POST_IMAGE`);
    expect(readable.stdout).toContain(listed.url);
  });

  it('cancels an upload by media id: the workflow compensates, ends CANCELLED and leaves nothing in storage', async () => {
    expect(await p.storage.head(p.config.S3_INCOMING_BUCKET, upload.storageKey)).toBeDefined();
    const run = await ops('cancel', upload.mediaId);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`${upload.workflowId}: CANCELLED, media CANCELLED`);
    const media = await waitForStatus(p, user, upload.mediaId, ['CANCELLED']);
    expect(media.failureReason).toBe('CANCELLED_BY_USER');
    expect(await p.storage.head(p.config.S3_INCOMING_BUCKET, upload.storageKey)).toBeUndefined();

    const again = await ops('cancel', upload.workflowId);
    expect(again.code).toBe(1);
    expect(again.stderr.trim()).toBe(`ops: ${upload.workflowId} is not running (CANCELLED, media CANCELLED): nothing to cancel`);
  });

  it('finds an upload whose workflow task keeps failing with --problems, and says a retry cannot fix it', async () => {
    // Input the workflow cannot read: every workflow task fails, and after 5 the server flags the run.
    const owner = uniqueUser('problems');
    const workflowId = `media-upload/unreadable-${owner}`;
    const handle = await p.temporal.workflow.start('MediaUploadWorkflow', {
      taskQueue: p.config.TASK_QUEUE_LIGHT,
      workflowId,
      args: [null],
      typedSearchAttributes: [
        { key: MediaStatusKey, value: 'AWAITING_UPLOAD' },
        { key: MediaOwnerKey, value: owner },
      ],
    });
    try {
      const listed = await until(
        'the run to be flagged',
        async () => {
          const run = await ops('stuck', '--problems', '--owner', owner, '--json');
          expect(run.code).toBe(0);
          return run.stdout ? JSON.parse(run.stdout.split('\n')[0]!) : undefined;
        },
        { timeoutMs: 110_000 },
      );
      expect(listed).toMatchObject({ workflowId, mediaStatus: 'AWAITING_UPLOAD', owner });
      const retry = await ops('retry', workflowId);
      expect(retry.code).toBe(1);
      expect(retry.stderr).toContain(`ops: ${workflowId} (AWAITING_UPLOAD) has nothing to retry: its workflow task keeps failing (category=WorkflowTaskFailed`);
    } finally {
      await handle.terminate('test done');
    }
  }, 150_000);

  it('refuses bad input with one line and exit code 2, and an unknown upload with exit code 1', async () => {
    const badStatus = await ops('stuck', '--status', 'READY');
    expect(badStatus.code).toBe(2);
    expect(badStatus.stderr.split('\n')[0]).toBe('ops: --status: "READY" is not one of AWAITING_UPLOAD, VERIFYING, SCANNING, PROCESSING');
    const badAge = await ops('stuck', '--older-than', 'soon');
    expect(badAge.code).toBe(2);
    expect(badAge.stderr.split('\n')[0]).toBe('ops: --older-than: "soon" is not a duration like 90s, 30m, 2h or 1d');
    expect((await ops('frobnicate')).code).toBe(2);
    expect((await ops('cancel')).code).toBe(2);
    const unknown = await ops('retry', '00000000-0000-4000-8000-000000000000');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr.trim()).toBe('ops: no workflow media-upload/00000000-0000-4000-8000-000000000000');
  });

  it('names the Temporal address it tried and the variable to change when it cannot connect', async () => {
    // A port nobody listens on.
    const address = `127.0.0.1:${await freePort()}`;
    const run = await opsWith({ TEMPORAL_ADDRESS: address }, 'stuck');
    expect(run.code).toBe(1);
    const lines = run.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^ops: cannot connect to Temporal at ${address.replace(/\./g, '\\.')} \\(.+\\): start it \\(npm run dev\\) or set TEMPORAL_ADDRESS`));
  });
});

describe('npm run ops: retry', () => {
  let p: Platform;
  const workers: WorkerHandle[] = [];
  const runs: Array<Promise<void>> = [];

  async function startLightWorker(overrides: Record<string, string> = {}): Promise<WorkerHandle> {
    const config = testConfig({ TASK_QUEUE_LIGHT: p.config.TASK_QUEUE_LIGHT, TASK_QUEUE_VIDEO: p.config.TASK_QUEUE_VIDEO, ...overrides });
    const worker = await createWorker('light', config, { workflowBundlePath: stackState().workflowBundlePath, s3Credentials: devS3Credentials });
    workers.push(worker);
    runs.push(worker.run());
    return worker;
  }

  beforeAll(async () => {
    p = await startPlatform({}, { lightWorker: false, videoWorker: false });
  });
  afterAll(async () => {
    for (const worker of workers) await worker.close();
    await Promise.all(runs);
    await p?.stop();
  });

  it('retries the step an upload is stuck on at once, from attempt 1, and the upload then finishes', async () => {
    // A scanner nobody listens on: the scan fails and Temporal retries it with backoff.
    const broken = await startLightWorker({ CLAMD_PORT: String(await freePort()) });
    const user = uniqueUser('retry');
    const upload = await uploadWithoutConfirming(p, user);
    expect((await p.call(user, `/media/${upload.mediaId}/complete`, { body: {} })).status).toBe(202);
    const handle = p.temporal.workflow.getHandle(upload.workflowId);
    const scan = async () => (await handle.describe()).raw.pendingActivities?.find((a) => a.activityType?.name === 'scanOriginal');
    await until('a failed scan attempt', async () => ((await scan())?.attempt ?? 0) >= 2 || undefined);
    // Nobody picks the scan up while we look at it.
    await broken.close();
    await runs[0];

    const run = await ops('retry', upload.mediaId);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^retrying scanOriginal of media-upload\/\S+ now \(it was on attempt \d+, last failure: connect ECONNREFUSED/);
    const reset = await scan();
    expect(reset?.attempt).toBe(1);
    expect(reset?.lastFailure).toBeFalsy();

    await startLightWorker();
    expect((await waitForStatus(p, user, upload.mediaId, ['READY', 'FAILED', 'REJECTED'])).status).toBe('READY');
    const nothingLeft = await ops('retry', upload.mediaId);
    expect(nothingLeft.code).toBe(1);
    expect(nothingLeft.stderr).toContain('is not running (COMPLETED, media READY): nothing to retry');
  });
});
