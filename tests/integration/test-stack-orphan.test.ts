import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { until } from '../../devstack/poll';
import { tcpOpen } from '../../devstack/process';

const root = resolve(__dirname, '..', '..');

/**
 * The test harness runs `devstack/serve.ts` beside jest (tests/harness/global-setup.ts). A run
 * killed before its teardown (Ctrl-C twice, a CI timeout, a killed session) must not leave that
 * stack's servers running nor its data dir (PostgreSQL, S3 volumes: 400–600 MB a run) in /tmp.
 */
describe('the test stack of a run that was killed', () => {
  let dir: string | undefined;
  let owner: ReturnType<typeof spawn> | undefined;
  let serve: ReturnType<typeof spawn> | undefined;
  afterAll(() => {
    for (const child of [owner, serve]) if (child?.exitCode === null) child.kill('SIGKILL');
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('stops its servers and removes its data dir once the run is gone', async () => {
    dir = mkdtempSync(join(tmpdir(), 'media-orphan-'));
    const dataDir = join(dir, 'stack');
    const stateFile = join(dataDir, 'stack.json');
    // Stands in for the jest process that owns the stack.
    owner = spawn('sleep', ['600'], { stdio: 'ignore' });
    mkdirSync(dataDir);
    chmodSync(dataDir, 0o755);
    serve = spawn(process.execPath, [join(root, 'node_modules', 'tsx', 'dist', 'cli.mjs'), join(root, 'devstack', 'serve.ts'), stateFile, dataDir, String(owner.pid)], {
      cwd: root,
      stdio: 'ignore',
    });
    const child = serve;
    const serveExit = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
    await until('the test stack state file', async () => (existsSync(stateFile) ? true : undefined), { timeoutMs: 180_000 });
    const { env } = JSON.parse(readFileSync(stateFile, 'utf8')) as { env: Record<string, string> };
    const ports = [new URL(env.S3_ENDPOINT!).port, new URL(env.DATABASE_URL!).port, env.TEMPORAL_ADDRESS!.split(':')[1], env.CLAMD_PORT].map(Number);
    for (const port of ports) expect(await tcpOpen(port)).toBe(true);

    owner.kill('SIGKILL');
    expect(await serveExit).toBe(0);
    for (const port of ports) expect(await tcpOpen(port)).toBe(false);
    expect(existsSync(dataDir)).toBe(false);
  }, 300_000);
});
