import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Client } from 'pg';
import { parseAllDocuments } from 'yaml';
import { freePort } from '../../devstack/ports';
import { until } from '../../devstack/poll';
import { helm, projectRoot } from '../../devstack/tools';
import { mintDevToken } from '../../scripts/token';
import { makeDocuments } from '../fixtures/corpus-documents';
import { realJpeg, testVideo } from '../fixtures/media';
import { stackState, testJwtSecret, uniqueUser } from '../harness/platform';
import { exited, killGroup } from '../harness/worker-process';

/**
 * The images' runtime stage, emulated without a container engine (docker/*.Dockerfile):
 * production dependencies only (`npm ci --omit=dev` from the committed lock), `dist/` from
 * `npm run build`, NODE_ENV=production, `node` as uid 1000 in an app folder it cannot write,
 * and each container's command and environment as the chart renders them. The migration Job,
 * the API and both worker pools run against the test stack, and one image and one video
 * reach READY.
 */
interface Rendered {
  kind: string;
  metadata: { name: string };
  spec?: any;
  data?: Record<string, string>;
}

const release = 'media-upload';
const runAsUid = process.getuid?.() === 0 ? 1000 : undefined;

describe('image runtime stage (prod dependencies, dist/, uid 1000, read-only app, chart commands)', () => {
  const root = mkdtempSync(join(tmpdir(), 'image-'));
  const app = join(root, 'app');
  const home = join(root, 'tmp');
  const children: ChildProcess[] = [];
  let objects: Rendered[];
  let apiUrl: string;
  const suffix = uniqueUser('img');
  const user = uniqueUser('imelda');

  const container = (kind: string, name: string) => objects.find((o) => o.kind === kind && o.metadata.name === name)!.spec.template.spec.containers[0];

  /** What the container sees: its ConfigMap, its own plain env, then the test stack's addresses. */
  function envOf(c: any, overrides: Record<string, string>): NodeJS.ProcessEnv {
    const env: Record<string, string> = {};
    for (const source of c.envFrom ?? []) {
      const configMap = source.configMapRef && objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === source.configMapRef.name);
      if (configMap) Object.assign(env, configMap.data);
    }
    for (const entry of c.env ?? []) if (entry.value !== undefined) env[entry.name] = entry.value;
    const stack = stackState().env;
    return {
      ...env,
      // The image's ENV (docker/*.Dockerfile runtime stage).
      NODE_ENV: 'production',
      PATH: `${dirname(process.execPath)}:/usr/local/bin:/usr/bin:/bin`,
      HOME: home,
      TMPDIR: home,
      // Where the cluster would point: the test stack (Secret keys and the external services).
      ...Object.fromEntries(Object.entries(stack).filter(([k]) => /^(DATABASE_URL|TEMPORAL_|S3_|AWS_|CLAMD_HOST|CLAMD_PORT)/.test(k))),
      JWT_SECRET: testJwtSecret,
      TASK_QUEUE_LIGHT: `light-${suffix}`,
      TASK_QUEUE_VIDEO: `video-${suffix}`,
      TASK_QUEUE_DOCUMENT: `document-${suffix}`,
      CLEANUP_INTERVAL: 'off',
      LOG_LEVEL: 'warn',
      ...(env.WORKFLOW_BUNDLE_PATH ? { WORKFLOW_BUNDLE_PATH: env.WORKFLOW_BUNDLE_PATH.replace(/^\/app\//, `${app}/`) } : {}),
      ...overrides,
    };
  }

  /** Runs a container's command (`node dist/...` from the chart) in the app folder as uid 1000. */
  function start(c: any, env: NodeJS.ProcessEnv): ChildProcess {
    const [command, ...args] = c.args as string[];
    const child = spawn(command!, args, { cwd: app, env, uid: runAsUid, gid: runAsUid, stdio: ['ignore', 'ignore', 'inherit'], detached: true });
    children.push(child);
    return child;
  }

  beforeAll(async () => {
    // Stage "build": the full install is this checkout's; `npm run build` makes dist/.
    execFileSync('npm', ['run', 'build', '--silent'], { cwd: projectRoot, stdio: 'pipe' });
    // Stage "prod-deps": production dependencies only, from the committed lock.
    mkdirSync(app);
    for (const file of ['package.json', 'package-lock.json']) cpSync(join(projectRoot, file), join(app, file));
    execFileSync('npm', ['ci', '--omit=dev', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: app, stdio: 'pipe' });
    // Stage "runtime": node_modules + dist + package.json, owned by root, read-only for uid 1000.
    cpSync(join(projectRoot, 'dist'), join(app, 'dist'), { recursive: true });
    execFileSync('chmod', ['-R', 'a+rX,go-w', root]);
    mkdirSync(home, { mode: 0o700 });
    if (runAsUid !== undefined) execFileSync('chown', [`${runAsUid}:${runAsUid}`, home]);
    chmodSync(root, 0o755);

    const rendered = execFileSync(helm(), ['template', release, join(projectRoot, 'charts', 'media-upload'), '--set', `secrets.jwtSecret=${testJwtSecret}`], { encoding: 'utf8' });
    objects = parseAllDocuments(rendered).map((d) => d.toJS() as Rendered).filter(Boolean);
  }, 600_000);

  afterAll(async () => {
    for (const child of children) {
      killGroup(child, 'SIGTERM');
      if (!(await exited(child, 20_000))) killGroup(child, 'SIGKILL');
    }
    rmSync(root, { recursive: true, force: true });
  });

  it('has no dev dependency and an app folder uid 1000 cannot write', () => {
    expect(spawnSync(process.execPath, ['-e', 'require.resolve("jest")'], { cwd: app }).status).not.toBe(0);
    expect(spawnSync(process.execPath, ['-e', 'require.resolve("sharp"); require.resolve("@temporalio/worker")'], { cwd: app }).status).toBe(0);
    if (runAsUid === undefined) return;
    const write = spawnSync(process.execPath, ['-e', `require("fs").writeFileSync(${JSON.stringify(join(app, 'dist', 'x'))}, "")`], { uid: runAsUid, gid: runAsUid, encoding: 'utf8' });
    expect(write.stderr).toContain('EACCES');
  });

  it('runs the migration Job command on a fresh database, then finds the schema up to date', async () => {
    const job = container('Job', `${release}-migrate`);
    expect(job.args).toEqual(['node', 'dist/services/shared/db/migrate.js']);
    const stackUrl = new URL(stackState().env.DATABASE_URL!);
    const database = `image_${suffix.replace(/\W/g, '_')}`;
    const admin = new Client({ connectionString: stackUrl.toString() });
    await admin.connect();
    await admin.query(`CREATE DATABASE "${database}"`);
    try {
      const fresh = new URL(stackUrl);
      fresh.pathname = `/${database}`;
      const run = (url: string) => spawnSync(job.args[0], job.args.slice(1), { cwd: app, env: envOf(job, { DATABASE_URL: url }), uid: runAsUid, gid: runAsUid, encoding: 'utf8', timeout: 60_000 });
      const first = run(fresh.toString());
      expect(`${first.stdout}${first.stderr}`).toMatch(/applied migrations: .*InitialSchema/);
      expect(first.status).toBe(0);
      const again = run(fresh.toString());
      expect(again.stdout).toContain('schema is up to date');
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
      await admin.end();
    }
  });

  it('brings the API and both worker pools to ready and takes one image, one video and one PDF to READY', async () => {
    const [apiPort, apiMetrics, lightMetrics, videoMetrics] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const api = container('Deployment', `${release}-api`);
    start(api, envOf(api, { PORT: String(apiPort), METRICS_PORT: String(apiMetrics) }));
    for (const [pool, port] of [['light', lightMetrics], ['video', videoMetrics]] as const) {
      const worker = container('Deployment', `${release}-worker-${pool}`);
      expect(worker.args).toEqual(['node', `dist/services/worker/${pool}-worker.js`]);
      start(worker, envOf(worker, { METRICS_PORT: String(port), TEMPORAL_METRICS_PORT: '0' }));
    }
    apiUrl = `http://127.0.0.1:${apiPort}`;
    const ok = (url: string) => async () => ((await fetch(url).catch(() => undefined))?.status === 200 ? true : undefined);
    // The chart's probes: /readyz on the API, /healthz on each worker's metrics port.
    await until('API ready', ok(`${apiUrl}${api.readinessProbe.httpGet.path}`), { timeoutMs: 90_000, intervalMs: 250 });
    await until('light worker polling', ok(`http://127.0.0.1:${lightMetrics}/healthz`), { timeoutMs: 90_000, intervalMs: 250 });
    await until('video worker polling', ok(`http://127.0.0.1:${videoMetrics}/healthz`), { timeoutMs: 90_000, intervalMs: 250 });
    expect((await fetch(`http://127.0.0.1:${apiMetrics}/metrics`)).status).toBe(200);
    if (runAsUid !== undefined) {
      for (const child of children) expect(readFileSync(`/proc/${child.pid}/status`, 'utf8')).toMatch(new RegExp(`^Uid:\\t${runAsUid}\\t`, 'm'));
    }

    const token = await mintDevToken(testJwtSecret, user);
    const call = async (path: string, body?: unknown) => {
      const res = await fetch(`${apiUrl}/api/v1${path}`, {
        method: body === undefined ? 'GET' : 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as any };
    };
    const files = [
      { file: await realJpeg(200 * 1024), fileType: 'image/jpeg', mediaType: 'POST_IMAGE', fileName: 'photo.jpg' },
      { file: await testVideo('ffmpeg', 2, 240), fileType: 'video/mp4', mediaType: 'POST_VIDEO', fileName: 'clip.mp4' },
      // The MuPDF analyzer runs from dist/ as dist/…/pdf-analyzer.mjs, with mupdf from the production node_modules.
      { file: makeDocuments().multipage, fileType: 'application/pdf', mediaType: 'DOCUMENT', fileName: 'plan.pdf' },
    ];
    const ids: string[] = [];
    for (const { file, fileType, mediaType, fileName } of files) {
      const session = await call('/media/upload-session', { fileName, fileType, fileSize: file.length, mediaType });
      expect(session.status).toBe(201);
      const put = await fetch(session.body.upload.url, { method: 'PUT', body: file, headers: session.body.upload.headers });
      expect(put.status).toBe(200);
      expect((await call(`/media/${session.body.mediaId}/complete`, {})).status).toBe(202);
      ids.push(session.body.mediaId);
    }
    for (const id of ids) {
      const media = await until(`media ${id} finished`, async () => {
        const { body } = await call(`/media/${id}`);
        return ['READY', 'FAILED', 'REJECTED'].includes(body.status) ? body : undefined;
      }, { timeoutMs: 180_000, intervalMs: 500 });
      expect(media.status).toBe('READY');
    }
  }, 300_000);
});
