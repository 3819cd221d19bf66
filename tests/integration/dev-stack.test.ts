import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { until } from '../../devstack/poll';
import { reservePorts } from '../../devstack/ports';
import { ffmpeg, projectRoot } from '../../devstack/tools';
import { mintDevToken } from '../../scripts/token';
import { testVideo } from '../fixtures/media';
import { exited, killGroup } from '../harness/worker-process';

const tsx = join(projectRoot, 'node_modules', 'tsx', 'dist', 'cli.mjs');

/** The fenced block of README.md that follows `heading` and opens with ```lang. */
function readmeBlock(heading: string, lang: string): string {
  const readme = readFileSync(join(projectRoot, 'README.md'), 'utf8');
  const start = readme.indexOf(heading);
  if (start === -1) throw new Error(`README.md has no "${heading}"`);
  const open = readme.indexOf(`\`\`\`${lang}\n`, start);
  const close = readme.indexOf('\n```', open + 4);
  return readme.slice(open + lang.length + 4, close + 1);
}

/** Runs a command to its end; resolves with its exit code and output. */
function run(command: string, args: string[], options: { cwd: string; env: NodeJS.ProcessEnv }) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('npm run dev (scripts/dev.ts) and the README walkthroughs against it', () => {
  let dev: ChildProcess;
  let terminal = '';
  let dataDir: string;
  let apiUrl: string;
  let env: NodeJS.ProcessEnv;
  /** The JWT secret the dev stack generated in its data dir (read once it is up). */
  let secret: string;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'media-dev-'));
    const [api, temporal, temporalUi, s3, postgres, clamd, apiMetrics] = await reservePorts(7);
    apiUrl = `http://127.0.0.1:${api}`;
    const tools = ffmpeg();
    env = {
      ...process.env,
      PORT: String(api),
      DEV_TEMPORAL_PORT: String(temporal),
      DEV_TEMPORAL_UI_PORT: String(temporalUi),
      DEV_S3_PORT: String(s3),
      DEV_POSTGRES_PORT: String(postgres),
      DEV_CLAMD_PORT: String(clamd),
      METRICS_PORT: String(apiMetrics),
      DEV_DATA_DIR: dataDir,
      FFMPEG_PATH: tools.ffmpeg,
      FFPROBE_PATH: tools.ffprobe,
      HLS_X264_PRESET: 'ultrafast',
      // The walkthrough calls ffmpeg by name.
      PATH: `${dirname(tools.ffmpeg)}${delimiter}${process.env.PATH ?? ''}`,
    };
    // As on a fresh clone: no JWT_SECRET, no .data/dev; the stack makes a secret in its data
    // dir, where `npm run token` (the curl walkthrough) finds it through DEV_DATA_DIR too.
    delete env.JWT_SECRET;
    dev = spawn(process.execPath, [tsx, 'scripts/dev.ts'], { cwd: projectRoot, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    dev.stdout!.on('data', (d: Buffer) => (terminal += d.toString()));
    dev.stderr!.on('data', (d: Buffer) => (terminal += d.toString()));
    await until('the dev banner', async () => {
      if (dev.exitCode !== null) throw new Error(`npm run dev exited with ${dev.exitCode}:\n${terminal}`);
      return terminal.includes('Media Upload Platform is running') || undefined;
    }, { timeoutMs: 240_000, intervalMs: 500 });
    secret = readFileSync(join(dataDir, 'jwt-secret'), 'utf8').trim();
  }, 300_000);

  afterAll(async () => {
    if (dev && dev.exitCode === null) {
      // Ctrl-C: dev.ts stops the services and the stack itself.
      dev.kill('SIGINT');
      if (!(await exited(dev, 60_000))) killGroup(dev, 'SIGKILL');
    }
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('writes the API and worker logs to <data dir>/logs as the banner says, and to the terminal', async () => {
    expect(terminal).toContain(`Logs           ${join(dataDir, 'logs')}`);
    // The banner names the Temporal it started (npm run test:temporal-server sets DEV_TEMPORAL=server).
    if (process.env.DEV_TEMPORAL === 'server') expect(terminal).toMatch(/Temporal server \d+\.\d+\.\d+ \(PostgreSQL persistence \+ SQL visibility/);
    else expect(terminal).toMatch(/Temporal UI {4}http:\/\/127\.0\.0\.1:\d+ .*\n +Temporal dev server \(temporal server start-dev, SQLite file\)/);
    // A request of ours, so that the API has a line to log.
    expect((await fetch(`${apiUrl}/readyz`, { headers: { 'x-request-id': 'dev-logs-probe' } })).status).toBe(200);
    const logs = join(dataDir, 'logs');
    const probe = await until('the request in api.log', async () =>
      readFileSync(join(logs, 'api.log'), 'utf8')
        .split('\n')
        .find((line) => line.includes('"dev-logs-probe"')),
    );
    expect(JSON.parse(probe)).toMatchObject({ req: { id: 'dev-logs-probe', path: '/readyz' }, res: { statusCode: 200 } });
    // The same line on the terminal (its own pipe: it may arrive a moment later).
    await until('the request on the terminal', async () => terminal.includes(probe) || undefined);
    // Each worker logs once it polls its task queue (the light one bundles its workflows first).
    for (const worker of ['light-worker', 'video-worker']) {
      const line = await until(`a JSON line in ${worker}.log`, async () =>
        readFileSync(join(logs, `${worker}.log`), 'utf8')
          .split('\n')
          .find((l) => l.startsWith('{')),
      );
      expect(JSON.parse(line)).toMatchObject({ level: expect.any(Number), msg: expect.any(String) });
    }
    for (const server of ['temporal', 's3', 'clamd']) expect(existsSync(join(logs, `${server}.log`))).toBe(true);
  });

  it('runs the README curl walkthrough as written, ending on the final status', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'readme-curl-'));
    try {
      // As written, but on this stack's port and in a directory of its own instead of /tmp.
      const script = readmeBlock('### Try it with curl', 'bash').replaceAll('localhost:8080', apiUrl.replace('http://', '')).replaceAll('/tmp/', `${dir}/`);
      const result = await run('bash', ['-euo', 'pipefail', '-c', script], { cwd: projectRoot, env });
      expect(result).toMatchObject({ code: 0 });
      // The last output is jq's view of the final event: READY with its thumbnails.
      const final = JSON.parse(result.stdout.slice(result.stdout.lastIndexOf('{\n  "status"'))) as { status: string; thumbnails: Array<{ url: string }> };
      expect(final.status).toBe('READY');
      expect(final.thumbnails.length).toBeGreaterThan(0);
      expect((await fetch(final.thumbnails[0]!.url)).status).toBe(200);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('runs the README TypeScript client snippet as written, saved as a .mts file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'readme-ts-'));
    // In the repository root, as the README says, so that ./services/client resolves.
    const file = join(projectRoot, `readme-snippet-${process.pid}.mts`);
    try {
      writeFileSync(join(dir, 'clip.mp4'), await testVideo(env.FFMPEG_PATH!, 2, 360));
      writeFileSync(file, readmeBlock('## Client library, CLI and demo page', 'ts').replace('http://localhost:8080', apiUrl));
      const result = await run(process.execPath, [tsx, file], { cwd: dir, env: { ...env, MEDIA_TOKEN: await mintDevToken(secret, 'readme-ts') } });
      expect(result).toMatchObject({ code: 0 });
      const lines = result.stdout.trim().split('\n');
      const size = readFileSync(join(dir, 'clip.mp4')).length;
      // Its progress lines (phase, bytes, total), then each status once, the last one READY.
      expect(lines).toContain(`uploaded ${size} ${size}`);
      expect(lines[lines.length - 1]).toMatch(/^READY http:\/\/\S+\.m3u8$/);
    } finally {
      rmSync(file, { force: true });
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
