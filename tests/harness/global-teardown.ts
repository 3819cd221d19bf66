import { readFileSync, rmSync } from 'node:fs';
import { checkInvariants } from './invariants';

/**
 * Checks the storage invariants on what the whole run left behind (fails the run on a
 * violation), then stops the shared stack (it stops its servers on SIGTERM) and removes its
 * temp dir.
 */
export default async function globalTeardown(): Promise<void> {
  const state = (globalThis as { __mediaStack?: { pid?: number; dataDir: string } }).__mediaStack;
  if (!state?.pid) return;
  let failure: Error | undefined;
  try {
    const { env } = JSON.parse(readFileSync(process.env.MEDIA_TEST_STACK!, 'utf8')) as { env: Record<string, string> };
    const report = await checkInvariants(env);
    console.log(`\ninvariants: ${Object.entries(report.counts).map(([k, v]) => `${k}=${v}`).join(' ')}`);
    if (report.violations.length) failure = new Error(`storage invariants violated:\n  ${report.violations.join('\n  ')}`);
  } catch (err) {
    failure = err as Error;
  }
  await stopStack(state);
  if (failure) throw failure;
}

async function stopStack(state: { pid?: number; dataDir: string }): Promise<void> {
  if (!state.pid) return;
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
