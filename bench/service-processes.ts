import { join } from 'node:path';
import { freePort } from '../devstack/ports';
import { startProcess, waitFor, type ManagedProcess } from '../devstack/process';
import { repoRoot } from './platform';

/** One platform process (API or worker) started by a bench section; `pid` is where its CPU is read. */
export interface ServiceProcess {
  url: string;
  pid: number;
  process: ManagedProcess;
}

/**
 * The API in a child process, as `npm run dev` runs it, so that it does not share an event loop
 * (or a CPU account) with the load generator. `env` is the whole platform environment.
 */
export async function startApiProcess(env: Record<string, string>): Promise<ServiceProcess> {
  const port = await freePort();
  // BENCH_API_PROFILE_DIR=<dir>: the API writes a V8 CPU profile there when it stops (node --cpu-prof).
  const profile = process.env.BENCH_API_PROFILE_DIR ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_API_PROFILE_DIR] : [];
  const proc = startProcess('api', process.execPath, [...profile, '--import', 'tsx', join(repoRoot, 'services', 'api', 'main.ts')], {
    cwd: repoRoot,
    env: { ...env, PORT: String(port), LOG_LEVEL: 'silent' },
  });
  const url = `http://127.0.0.1:${port}`;
  await waitFor('bench API process', async () => (await fetch(`${url}/healthz`)).ok, 60_000, proc);
  return { url, pid: proc.child.pid!, process: proc };
}

/**
 * A light or video worker in a child process (services/worker/<kind>-worker.ts, as the chart runs
 * it), ready once its /healthz says the Temporal worker is RUNNING. ffmpeg runs as its child, so
 * its CPU counts to the worker's process tree.
 */
export async function startWorkerProcess(kind: 'light' | 'video', env: Record<string, string>, workflowBundlePath: string): Promise<ServiceProcess> {
  const port = await freePort();
  const proc = startProcess(`${kind}-worker`, process.execPath, ['--import', 'tsx', join(repoRoot, 'services', 'worker', `${kind}-worker.ts`)], {
    cwd: repoRoot,
    env: { ...env, METRICS_PORT: String(port), TEMPORAL_METRICS_PORT: '0', LOG_LEVEL: 'warn', WORKFLOW_BUNDLE_PATH: workflowBundlePath, CLEANUP_INTERVAL: 'off' },
  });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`bench ${kind} worker process`, async () => (await fetch(`${url}/healthz`)).ok, 90_000, proc);
  return { url, pid: proc.child.pid!, process: proc };
}
