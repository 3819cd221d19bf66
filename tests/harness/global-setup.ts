import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/**
 * Starts the shared real stack for the integration tests (random loopback ports, a temp
 * dir) in a child process, and registers its teardown. The stack's state file path is passed
 * to the test files through MEDIA_TEST_STACK.
 */
export default async function globalSetup(): Promise<void> {
  const root = resolve(__dirname, '..', '..');
  const dataDir = mkdtempSync(join(tmpdir(), 'media-test-'));
  // PostgreSQL runs as its own system user when we are root: it must be able to enter the dir.
  chmodSync(dataDir, 0o755);
  const stateFile = join(dataDir, 'stack.json');
  const child = spawn(process.execPath, [join(root, 'node_modules', 'tsx', 'dist', 'cli.mjs'), join(root, 'devstack', 'serve.ts'), stateFile, dataDir, String(process.pid)], {
    stdio: ['ignore', 'inherit', 'inherit'],
    cwd: root,
  });
  (globalThis as { __mediaStack?: { pid?: number; dataDir: string } }).__mediaStack = { pid: child.pid, dataDir };
  const deadline = Date.now() + 180_000;
  while (!existsSync(stateFile)) {
    if (child.exitCode !== null) throw new Error(`test stack exited with ${child.exitCode}; see ${dataDir}/logs`);
    if (Date.now() > deadline) throw new Error(`test stack not ready after 180 s; see ${dataDir}/logs`);
    await new Promise((r) => setTimeout(r, 200));
  }
  process.env.MEDIA_TEST_STACK = stateFile;
  const state = JSON.parse(readFileSync(stateFile, 'utf8')) as { temporal: { description: string } };
  console.log(`\nintegration stack: ${state.temporal.description}`);
}
