import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { reservePorts } from '../../devstack/ports';
import { projectRoot } from '../../devstack/tools';
import { mintDevToken } from '../../scripts/token';
import { realJpeg } from '../fixtures/media';
import { dashboardMetricNames, readDashboard } from '../harness/dashboard';
import { stackState, testJwtSecret, uniqueUser } from '../harness/platform';
import { exited, killGroup } from '../harness/worker-process';
import { until as poll } from '../../devstack/poll';

/** A service started like production starts it (its own process, JSON logs on stdout). */
interface Service {
  child: ChildProcess;
  output: () => string;
}

function startService(entry: string, env: Record<string, string>): Service {
  const child = spawn(process.execPath, ['--import', 'tsx', join(projectRoot, entry)], {
    env: { ...process.env, ...stackState().env, JWT_SECRET: testJwtSecret, ...env },
    cwd: projectRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return { child, output: () => output };
}

/** Errors count as not yet: the servers are still starting. */
const until = <T>(what: string, check: () => Promise<T | undefined>) => poll(what, () => check().catch(() => undefined), { timeoutMs: 90_000, intervalMs: 250 });

async function text(url: string): Promise<string> {
  const res = await fetch(url);
  if (res.status !== 200) throw new Error(`${url} answered ${res.status}`);
  return res.text();
}

/** Value of the first sample of `name` whose labels include `labels` (Prometheus text format). */
function sample(exposition: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of exposition.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const found = Object.fromEntries([...(match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => found[k] === v)) return Number(match[3]);
  }
  return undefined;
}

function jsonLines(output: string): Array<Record<string, any>> {
  return output
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, any>);
}

describe('metrics and logs of the API and worker processes', () => {
  const suffix = uniqueUser('obs');
  const queues = { TASK_QUEUE_LIGHT: `light-${suffix}`, TASK_QUEUE_VIDEO: `video-${suffix}` };
  let api: Service;
  let worker: Service;
  let apiUrl: string;
  let apiMetricsUrl: string;
  let workerMetricsUrl: string;
  let sdkMetricsUrl: string;

  const user = uniqueUser('olivia');
  let token: string;
  let uploaded: { mediaId: string; workflowId: string };
  let waiting: { mediaId: string };
  const requestId = `req-${suffix}`;
  let call: (path: string, init?: { method?: string; body?: unknown; headers?: Record<string, string> }) => Promise<Response>;
  const statusOf = async (mediaId: string) => ((await (await call(`/media/${mediaId}`)).json()) as { status: string }).status;

  beforeAll(async () => {
    const [apiPort, apiMetricsPort, metricsPort, sdkPort] = await reservePorts(4);
    apiUrl = `http://127.0.0.1:${apiPort}`;
    apiMetricsUrl = `http://127.0.0.1:${apiMetricsPort}/metrics`;
    workerMetricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
    sdkMetricsUrl = `http://127.0.0.1:${sdkPort}/metrics`;
    api = startService('services/api/main.ts', { ...queues, PORT: String(apiPort), METRICS_PORT: String(apiMetricsPort), LOG_LEVEL: 'info' });
    worker = startService('services/worker/light-worker.ts', {
      ...queues,
      WORKFLOW_BUNDLE_PATH: stackState().workflowBundlePath,
      METRICS_PORT: String(metricsPort),
      TEMPORAL_METRICS_PORT: String(sdkPort),
      // Temporal logs every activity start and completion at debug.
      LOG_LEVEL: 'debug',
      CLEANUP_INTERVAL: 'off',
    });
    await until('API ready', async () => ((await fetch(`${apiUrl}/readyz`)).status === 200 ? true : undefined));
    await until('worker polling', async () => ((await fetch(workerMetricsUrl.replace('/metrics', '/healthz'))).status === 200 ? true : undefined));
    token = await mintDevToken(testJwtSecret, user);

    // One image all the way to READY, one session left waiting for its client.
    call = (path, init = {}) =>
      fetch(`${apiUrl}/api/v1${path}`, {
        method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...init.headers },
        body: init.body === undefined ? undefined : JSON.stringify(init.body),
      });
    const body = await realJpeg(4096);
    const created = await call('/media/upload-session', {
      body: { fileName: 'obs.jpg', fileType: 'image/jpeg', fileSize: body.length, mediaType: 'POST_IMAGE' },
      headers: { 'x-request-id': requestId },
    });
    expect(created.status).toBe(201);
    expect(created.headers.get('x-request-id')).toBe(requestId);
    const session = (await created.json()) as { mediaId: string; upload: { url: string; headers: Record<string, string> } };
    expect((await fetch(session.upload.url, { method: 'PUT', body, headers: session.upload.headers })).status).toBe(200);
    expect((await call(`/media/${session.mediaId}/complete`, { body: {} })).status).toBe(202);
    await until('READY', async () => ((await statusOf(session.mediaId)) === 'READY' ? true : undefined));
    uploaded = { mediaId: session.mediaId, workflowId: `media-upload/${session.mediaId}` };
    const second = await call('/media/upload-session', { body: { fileName: 'later.jpg', fileType: 'image/jpeg', fileSize: 1000, mediaType: 'POST_IMAGE' } });
    waiting = (await second.json()) as { mediaId: string };
  });

  afterAll(async () => {
    // The session left waiting ends now rather than at its deadline, while the worker still runs.
    if (waiting?.mediaId && (await call(`/media/${waiting.mediaId}`, { method: 'DELETE' })).status === 202) {
      await until('CANCELLED', async () => ((await statusOf(waiting.mediaId)) === 'CANCELLED' ? true : undefined));
    }
    for (const service of [api, worker]) {
      if (!service) continue;
      killGroup(service.child, 'SIGTERM');
      if (!(await exited(service.child, 20_000))) killGroup(service.child, 'SIGKILL');
    }
  });

  it('counts sessions, confirmations and presigns on the API, with uploads in flight from the read model', async () => {
    const metrics = await text(apiMetricsUrl);
    expect(sample(metrics, 'media_upload_sessions_created_total', { media_type: 'POST_IMAGE', method: 'PUT' })).toBeGreaterThanOrEqual(2);
    expect(sample(metrics, 'media_upload_confirmations_total', { media_type: 'POST_IMAGE' })).toBe(1);
    expect(sample(metrics, 'media_presign_duration_seconds_count', { kind: 'put' })).toBeGreaterThanOrEqual(2);
    expect(sample(metrics, 'media_http_request_duration_seconds_count', { route: '/api/v1/media/upload-session', status: '201' })).toBeGreaterThanOrEqual(2);
    // The whole read model is counted (other suites' uploads too): ours is one of them.
    expect(sample(metrics, 'media_uploads_in_flight', { status: 'AWAITING_UPLOAD' })).toBeGreaterThanOrEqual(1);
    expect(sample(metrics, 'media_uploads_in_flight', { status: 'PROCESSING' })).toBeDefined();
  });

  it('labels a route with one template whatever the status: success, handler error and refused token alike', async () => {
    const missing = '00000000-0000-4000-8000-000000000000';
    expect((await call(`/media/${uploaded.mediaId}`)).status).toBe(200);
    expect((await call(`/media/${missing}`)).status).toBe(404);
    expect((await fetch(`${apiUrl}/api/v1/media/${missing}`)).status).toBe(401);
    expect((await fetch(`${apiUrl}/api/v1/media/${missing}/complete`, { method: 'POST', headers: { authorization: 'Bearer nope' } })).status).toBe(401);
    expect((await fetch(`${apiUrl}/api/v1/no-such-route`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(404);
    const metrics = await text(apiMetricsUrl);
    const count = (route: string, status: string, method = 'GET') => sample(metrics, 'media_http_request_duration_seconds_count', { method, route, status });
    expect([count('/api/v1/media/:id', '200'), count('/api/v1/media/:id', '404'), count('/api/v1/media/:id', '401')]).toEqual([
      expect.any(Number),
      expect.any(Number),
      expect.any(Number),
    ]);
    expect(count('/api/v1/media/:id/complete', '401', 'POST')).toBe(1);
    // Nothing the API routes is labelled without its prefix or as unmatched; only the unknown path is.
    const routes = new Set([...metrics.matchAll(/media_http_request_duration_seconds_count\{[^}]*route="([^"]+)"/g)].map((m) => m[1]));
    expect([...routes].filter((r) => r!.startsWith('/media') || r!.startsWith('/batches'))).toEqual([]);
    expect(count('unmatched', '404')).toBe(1);
  });

  it('writes every help text of the API and worker metrics with a capital letter', async () => {
    const helps = [...(await text(apiMetricsUrl)).matchAll(/^# HELP (\S+) (.*)$/gm), ...(await text(workerMetricsUrl)).matchAll(/^# HELP (\S+) (.*)$/gm)];
    expect(helps.filter(([, name]) => name!.startsWith('media_')).length).toBeGreaterThanOrEqual(8);
    expect(helps.filter(([, , help]) => !/^[A-Z]/.test(help!)).map(([, name, help]) => `${name}: ${help}`)).toEqual([]);
  });

  it('times every activity that ran and counts the upload that finished, on the worker', async () => {
    const metrics = await text(workerMetricsUrl);
    const activities = ['recordStatus', 'verifyUpload', 'scanOriginal', 'processImage', 'promoteOriginal'];
    const completed = Object.fromEntries(activities.map((a) => [a, sample(metrics, 'media_activity_duration_seconds_count', { activity: a, outcome: 'completed' })]));
    expect(completed).toEqual(Object.fromEntries(activities.map((a) => [a, expect.any(Number)])));
    // recordStatus ran once per status: VERIFYING, SCANNING, PROCESSING, READY.
    expect(completed.recordStatus).toBeGreaterThanOrEqual(4);
    for (const activity of activities) expect(sample(metrics, 'media_activities_in_flight', { activity })).toBe(0);
    expect(sample(metrics, 'media_uploads_finished_total', { status: 'READY', reason: 'NONE', media_type: 'POST_IMAGE' })).toBe(1);
  });

  it("serves the Temporal SDK's worker metrics, including every one the Grafana dashboard queries", async () => {
    const metrics = await text(sdkMetricsUrl);
    expect(sample(metrics, 'temporal_worker_task_slots_available', { task_queue: queues.TASK_QUEUE_LIGHT })).toBeGreaterThan(0);
    const served = new Set(metrics.split('\n').map((l) => /^([a-z_]+?)(?:_bucket|_count|_sum)?[{ ]/.exec(l)?.[1]));
    const queried = dashboardMetricNames(readDashboard()).filter((n) => n.startsWith('temporal_'));
    expect(queried.length).toBeGreaterThanOrEqual(3);
    expect(queried.filter((n) => !served.has(n))).toEqual([]);
  });

  it('logs API requests as JSON with the request id, user and media, and no token or presigned URL', () => {
    const output = api.output();
    const lines = jsonLines(output);
    const creation = lines.find((l) => l.req?.id === requestId);
    expect(creation).toMatchObject({ userId: user, mediaId: uploaded.mediaId, res: { statusCode: 201 } });
    const completion = lines.find((l) => l.req?.path === `/api/v1/media/${uploaded.mediaId}/complete`);
    expect(completion).toMatchObject({ userId: user, mediaId: uploaded.mediaId, res: { statusCode: 202 } });
    expect(lines.find((l) => l.mediaId === waiting.mediaId)).toBeDefined();
    expect(output).not.toContain(token);
    expect(output).not.toMatch(/X-Amz-Signature|X-Amz-Credential/);
    expect(output.toLowerCase()).not.toContain('bearer');
  });

  it('logs activities as JSON with the media and workflow ids, and no task token or presigned URL', async () => {
    const steps = ['verifyUpload', 'scanOriginal', 'processImage', 'promoteOriginal'];
    // The log lines of the last steps may still be on their way through the pipe.
    const completed = await until('activity log lines', async () => {
      const lines = jsonLines(worker.output()).filter((l) => l.msg === 'Activity completed' && l.mediaId === uploaded.mediaId);
      return steps.every((step) => lines.some((l) => l.activityType === step)) ? lines : undefined;
    });
    for (const line of completed) expect(line.workflowId).toBe(uploaded.workflowId);
    const output = worker.output();
    expect(output).not.toContain('taskToken');
    expect(output).not.toMatch(/X-Amz-Signature|X-Amz-Credential/);
  });
});
