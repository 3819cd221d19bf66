import { rmSync } from 'node:fs';

/** Stops the shared stack (it stops its servers on SIGTERM) and removes its temp dir. */
export default async function globalTeardown(): Promise<void> {
  const state = (globalThis as { __mediaStack?: { pid?: number; dataDir: string } }).__mediaStack;
  if (!state?.pid) return;
  try {
    process.kill(state.pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    try {
      process.kill(state.pid, 0);
    } catch {
      break;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  try {
    process.kill(state.pid, 'SIGKILL');
  } catch {
    // already gone
  }
  if (!process.env.KEEP_TEST_DATA) rmSync(state.dataDir, { recursive: true, force: true });
}
