import { Client, Connection } from '@temporalio/client';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { devS3Credentials } from '../../devstack/credentials';
import { freePort } from '../../devstack/ports';
import { startTemporalDevServer } from '../../devstack/temporal';
import { loadConfig, type Config } from '../../services/shared/config';
import { temporalConnectionOptions } from '../../services/shared/temporal';
import { createWorker } from '../../services/worker/worker';
import { workflowStartOptions } from '../../services/api/upload-sessions';
import { MediaUploadWorkflow, mediaWorkflowId, type MediaUploadInput } from '../../workflows/media-upload.workflow';
import { closedLoop, ms, summarize, type LoadResult } from '../measure';
import { cpuDelta, cpuSeconds, waitForQuietMachine } from '../procs';
import { postJson, type BenchContext } from '../platform';
import { startApiProcess } from '../service-processes';
import type { Row } from '../report';
import type { Section } from '../section';
import { measureUploadBatch } from './upload-batch';

export interface IsolationOptions {
  clients: number;
  /** Sessions of the loaded run (the 5xx count is over these). */
  sessions: number;
  /** Sequential reads of the idle run. */
  idleReads: number;
  batches: number;
}

/** BENCH_ISOLATION_SESSIONS / BENCH_ISOLATION_BATCHES shrink a trial run; the defaults are the issue's. */
const defaults: IsolationOptions = {
  clients: 50,
  sessions: Number(process.env.BENCH_ISOLATION_SESSIONS ?? 2000),
  idleReads: 200,
  batches: Number(process.env.BENCH_ISOLATION_BATCHES ?? 10),
};

export type Persistence = 'in-memory' | 'sqlite';

/** An API (its own process, as `npm run dev` runs it) and a light worker on one Temporal dev server. */
export interface Target {
  persistence: Persistence;
  config: Config;
  api: { url: string };
  temporal: Client;
  /**
   * Stops and restarts the target's own light worker: the tusd comparison measures the upload
   * path with processing deferred, as on a cluster whose workers run on nodes of their own,
   * then lets the backlog drain.
   */
  lightWorker: { pause(): Promise<void>; resume(): Promise<void> };
  /** Runs `work` against a second API process of the target with `env` over its own (stopped after). */
  withApi<T>(env: Record<string, string>, work: (api: { url: string }) => Promise<T>): Promise<T>;
}

const sessionBody = (i: number) => ({ fileName: `iso-${i}.jpg`, fileType: 'image/jpeg', fileSize: 2_000_000 + (i % 1000), mediaType: 'POST_IMAGE' });

/**
 * A Temporal dev server of the section's own, in memory or on a SQLite file in the bench dir
 * (as `npm run dev` runs it), with a light worker and an API process (as `npm run dev` runs
 * it) on it; the bench's S3 and PostgreSQL. Fresh for every call: the thousands of sessions an
 * earlier section left waiting for their uploads do not weigh on this one's figures.
 */
export async function withTarget(ctx: BenchContext, persistence: Persistence, run: (t: Target) => Promise<Row[]>): Promise<Row[]> {
  const suffix = randomUUID().slice(0, 8);
  const temporalServer = await startTemporalDevServer({
    port: await freePort(),
    dbFile: persistence === 'sqlite' ? join(ctx.dataDir, `isolation-temporal-${suffix}.sqlite`) : undefined,
    logFile: join(ctx.dataDir, 'logs', `isolation-temporal-${suffix}.log`),
  });
  try {
    const env: Record<string, string> = {
      ...ctx.stack.env,
      JWT_SECRET: ctx.config.JWT_SECRET!,
      TEMPORAL_ADDRESS: temporalServer.address,
      TASK_QUEUE_LIGHT: `bench-iso-light-${suffix}`,
      TASK_QUEUE_VIDEO: `bench-iso-video-${suffix}`,
      WORKER_SHUTDOWN_GRACE_SECONDS: '2',
      SHUTDOWN_GRACE_SECONDS: '2',
      CLEANUP_INTERVAL: 'off',
    };
    const config = loadConfig({ ...env, PORT: '0', LOG_LEVEL: 'silent' });
    const startWorker = async () => {
      const handle = await createWorker('light', config, { workflowBundlePath: ctx.workflowBundlePath, s3Credentials: devS3Credentials });
      return { handle, running: handle.run() };
    };
    let worker: Awaited<ReturnType<typeof startWorker>> | undefined = await startWorker();
    const stopWorker = async () => {
      const w = worker;
      worker = undefined;
      await w?.handle.close();
      await w?.running;
    };
    const lightWorker = {
      pause: stopWorker,
      resume: async () => {
        worker ??= await startWorker();
      },
    };
    const connection = await Connection.connect(temporalConnectionOptions(config));
    try {
      const api = await startApiProcess(env);
      try {
        const withApi = async <T>(extra: Record<string, string>, work: (other: { url: string }) => Promise<T>): Promise<T> => {
          const other = await startApiProcess({ ...env, ...extra });
          try {
            return await work(other);
          } finally {
            await other.process.stop();
          }
        };
        return await run({ persistence, config, api, temporal: new Client({ connection, namespace: config.TEMPORAL_NAMESPACE }), lightWorker, withApi });
      } finally {
        await api.process.stop();
      }
    } finally {
      await stopWorker();
      await connection.close();
    }
  } finally {
    await temporalServer.process.stop();
  }
}

/**
 * The reader's loop, run in a thread of its own: GET `url` `warmup` times unrecorded, then `n`
 * times (or until told 'stop'), one at a time; posts the latencies in ms.
 */
const readerSource = `
const { parentPort, workerData } = require('node:worker_threads');
const { performance } = require('node:perf_hooks');
let stop = false;
parentPort.on('message', (m) => { if (m === 'stop') stop = true; });
(async () => {
  const { url, token, n, warmup } = workerData;
  const latencies = [];
  for (let i = 0; n !== undefined ? i < warmup + n : i < warmup || !stop; i++) {
    const t0 = performance.now();
    const res = await fetch(url, { headers: { authorization: 'Bearer ' + token } });
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error('GET answered ' + res.status);
    if (i >= warmup) latencies.push(performance.now() - t0);
  }
  parentPort.postMessage(latencies);
})();
`;

/**
 * GET /media/{id} `n` times in a row, or until `until` resolves; latencies in ms. The reader has
 * its own thread and event loop, as one user's browser on another machine has: the 50 load
 * clients and the light worker of this process do not delay when its requests go out or when
 * their answers are timed. It still shares the machine's cores with all of them.
 */
async function reads(url: string, token: string, o: { n?: number; until?: Promise<unknown> }): Promise<number[]> {
  const reader = new Worker(readerSource, { eval: true, workerData: { url, token, n: o.n, warmup: 20 } });
  try {
    void o.until?.then(() => reader.postMessage('stop'));
    return await new Promise<number[]>((resolve, reject) => {
      reader.once('message', resolve);
      reader.once('error', reject);
      reader.once('exit', (code) => reject(new Error(`reader exited with ${code}`)));
    });
  } finally {
    await reader.terminate();
  }
}

/** Sessions from `clients` users back to back; every status counted (5xx included, not thrown). */
async function sessionLoad(t: Target, tokens: string[], total: number): Promise<{ result: LoadResult; statuses: Map<number, number> }> {
  const statuses = new Map<number, number>();
  const url = `${t.api.url}/api/v1/media/upload-session`;
  const result = await closedLoop(tokens.length, total, async (client, i) => {
    const res = await fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${tokens[client]}`, 'content-type': 'application/json' },
      body: JSON.stringify(sessionBody(i)),
    });
    await res.arrayBuffer();
    statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    if (res.status !== 201) throw new Error(`session answered ${res.status}`);
  });
  return { result, statuses };
}

/**
 * Bare `workflow.start` of MediaUploadWorkflow without the API, with the options a session starts
 * it with (search attributes, summary, id reuse policy: the same server writes), on the target's
 * task queue. `firstTask` (the issue's comparator): without the session's start delay, so the
 * worker runs the first workflow task at once (up to the wait for the client's confirmation), as
 * every session did before sessions were started delayed. Without it: exactly a session's start,
 * delayed to the deadline, no workflow task.
 */
async function bareStarts(t: Target, clients: number, total: number, { firstTask }: { firstTask: boolean }): Promise<LoadResult> {
  return closedLoop(clients, total, async (_client, i) => {
    const mediaId = randomUUID();
    const input: MediaUploadInput = {
      mediaId,
      userId: 'bench-bare',
      mediaType: 'POST_IMAGE',
      mimeType: 'image/jpeg',
      fileSize: 2_000_000,
      storageKey: `post_image/bench-bare/${mediaId}.jpg`,
      confirmDeadline: Date.now() + 3_600_000,
      videoTaskQueue: t.config.TASK_QUEUE_VIDEO,
    };
    const row = { workflowId: mediaWorkflowId(mediaId), mediaType: 'POST_IMAGE' as const, userId: 'bench-bare', tenantId: 'default', fileName: `bare-${i}.jpg`, fileSize: 2_000_000 };
    await t.temporal.workflow.start(MediaUploadWorkflow, workflowStartOptions({ ...t.config, UPLOAD_WORKFLOW_START_DELAY: !firstTask }, { row, input }));
  });
}

const perSecond = (r: LoadResult) => (r.latencies.length / r.wallMs) * 1000;

export async function measureIsolation(ctx: BenchContext, t: Target, options: Partial<IsolationOptions> = {}): Promise<Row[]> {
  const o = { ...defaults, ...options };
  const label = t.persistence === 'sqlite' ? 'SQLite' : 'in-memory';
  const readerToken = await ctx.token(`bench-iso-reader-${randomUUID()}`);
  const seeded = await postJson<{ mediaId: string }>(`${t.api.url}/api/v1/media/upload-session`, readerToken, sessionBody(0));
  const readUrl = `${t.api.url}/api/v1/media/${seeded.mediaId}`;
  const tokens = await Promise.all(Array.from({ length: o.clients }, (_, c) => ctx.token(`bench-iso-${label}-${c}-${randomUUID().slice(0, 4)}`)));

  const idle = summarize(await reads(readUrl, readerToken, { n: o.idleReads }));
  // Warm-up of the session path, then the loaded run with one reader beside it.
  await sessionLoad(t, tokens, o.clients * 2);
  const cpuBeforeLoad = cpuSeconds();
  const load = sessionLoad(t, tokens, o.sessions);
  const loadedReads = reads(readUrl, readerToken, { until: load });
  const [{ result, statuses }, loadedLatencies] = await Promise.all([load, loadedReads]);
  const loadCpu = cpuDelta(cpuBeforeLoad, cpuSeconds());
  const loaded = summarize(loadedLatencies);
  const fiveXx = [...statuses].filter(([s]) => s >= 500).reduce((sum, [, n]) => sum + n, 0);
  // Throughput side by side without the reader: its back-to-back GETs (one or two per session)
  // would take CPU from the sessions and not from the bare starts.
  const throughputCalls = Math.max(o.clients * 4, Math.round(o.sessions / 2));
  // Each run starts with the first tasks the run before it queued done, so neither pays for them.
  await waitForQuietMachine();
  const cpuBeforeQuiet = cpuSeconds();
  const quiet = await sessionLoad(t, tokens, throughputCalls);
  const quietCpu = cpuDelta(cpuBeforeQuiet, cpuSeconds());
  // The same sessions with the start delay off (each session's first workflow task at once, as
  // before the delay), from a second API process on the same target: what the delay changes.
  const undelayed = await t.withApi({ UPLOAD_WORKFLOW_START_DELAY: 'false' }, async (api) => {
    await sessionLoad({ ...t, api }, tokens, o.clients * 2);
    await waitForQuietMachine();
    const cpuBefore = cpuSeconds();
    const load = await sessionLoad({ ...t, api }, tokens, throughputCalls);
    return { ...load, cpu: cpuDelta(cpuBefore, cpuSeconds()) };
  });
  await waitForQuietMachine();
  const cpuBeforeBare = cpuSeconds();
  const bare = await bareStarts(t, o.clients, throughputCalls, { firstTask: true });
  const bareCpu = cpuDelta(cpuBeforeBare, cpuSeconds());
  await waitForQuietMachine();
  const cpuBeforeDelayed = cpuSeconds();
  const delayed = await bareStarts(t, o.clients, throughputCalls, { firstTask: false });
  const delayedCpu = cpuDelta(cpuBeforeDelayed, cpuSeconds());
  for (const [status, n] of [...quiet.statuses, ...undelayed.statuses]) statuses.set(status, (statuses.get(status) ?? 0) + n);
  const answered = o.sessions + 2 * throughputCalls;
  const undelayedRate = perSecond(undelayed.result);
  const fiveXxAll = [...statuses].filter(([s]) => s >= 500).reduce((sum, [, n]) => sum + n, 0);
  const sessionRate = perSecond(quiet.result);
  const bareRate = perSecond(bare);
  const delayedRate = perSecond(delayed);
  // With every core busy, sessions cannot outrun cores ÷ their CPU per session.
  const cpuBoundRate = availableParallelism() / (cpuTotal(quietCpu) / quiet.result.latencies.length);
  await waitForQuietMachine();
  const batchRows = await measureUploadBatch({ ...ctx, api: { ...ctx.api, url: t.api.url } }, { requests: o.batches, warmup: 2 });
  const batchP95 = batchRows.find((r) => r.target);
  const ratioP95 = loaded.p95 / idle.p95;
  return [
    { metric: `[${label}] Temporal persistence`, value: t.persistence === 'sqlite' ? 'SQLite file (as `npm run dev`)' : 'in-memory dev server' },
    { metric: `[${label}] GET /media/{id} idle p50 / p95`, value: `${ms(idle.p50)} / ${ms(idle.p95)} (${idle.count} reads)` },
    { metric: `[${label}] GET under ${o.clients}-client session load p50 / p95`, value: `${ms(loaded.p50)} / ${ms(loaded.p95)} (${loaded.count} reads)` },
    { metric: `[${label}] GET p95 loaded ÷ idle`, value: `${ratioP95.toFixed(2)}× (p50 ${(loaded.p50 / idle.p50).toFixed(2)}×)`, target: '≤ 2×', met: ratioP95 <= 2 },
    {
      metric: `[${label}] session answers over ${answered} (with the reader, then without)`,
      value: [...statuses].sort(([a], [b]) => a - b).map(([s, n]) => `${s}: ${n}`).join(', '),
    },
    { metric: `[${label}] 5xx over ${o.sessions} sessions (${answered} in all)`, value: `${fiveXx} (${fiveXxAll})`, target: '0', met: fiveXxAll === 0 },
    {
      metric: `[${label}] sessions ÷ bare workflow.start + first task`,
      value: `${(sessionRate / bareRate).toFixed(2)} (${sessionRate.toFixed(0)}/s vs ${bareRate.toFixed(0)}/s over ${throughputCalls} each, no reader; session p95 ${ms(summarize(quiet.result.latencies).p95)}; CPU bound ${(cpuBoundRate / bareRate).toFixed(2)}: ${availableParallelism()} cores ÷ CPU per session)`,
      target: '≥ 0.8',
      met: sessionRate / bareRate >= 0.8,
    },
    {
      metric: `[${label}] sessions with the start delay off (UPLOAD_WORKFLOW_START_DELAY=false) ÷ bare start + first task`,
      value: `${(undelayedRate / bareRate).toFixed(2)} (${undelayedRate.toFixed(0)}/s; with the delay ${sessionRate.toFixed(0)}/s: ${(sessionRate / undelayedRate).toFixed(2)}×)`,
    },
    {
      metric: `[${label}] sessions ÷ bare delayed workflow.start (a session's own start, no workflow task)`,
      value: `${(sessionRate / delayedRate).toFixed(2)} (${sessionRate.toFixed(0)}/s vs ${delayedRate.toFixed(0)}/s over ${throughputCalls} each; CPU bound ${(cpuBoundRate / delayedRate).toFixed(2)})`,
    },
    { metric: `[${label}] CPU per session with the reader beside, by process`, value: cpuPerCall(loadCpu, result.latencies.length) },
    { metric: `[${label}] CPU per session, by process`, value: cpuPerCall(quietCpu, quiet.result.latencies.length) },
    { metric: `[${label}] CPU per session with the start delay off, by process`, value: cpuPerCall(undelayed.cpu, undelayed.result.latencies.length) },
    { metric: `[${label}] CPU per bare start + first task, by process`, value: cpuPerCall(bareCpu, bare.latencies.length) },
    { metric: `[${label}] CPU per bare delayed start, by process`, value: cpuPerCall(delayedCpu, delayed.latencies.length) },
    // A batch is 100 delayed starts: at the bare delayed rate they alone take 100 ÷ that rate.
    ...(batchP95
      ? [{ ...batchP95, metric: `[${label}] batch of 100 p95`, value: `${batchP95.value} (100 bare delayed starts at ${delayedRate.toFixed(0)}/s: ${ms((100 / delayedRate) * 1000)})` }]
      : batchRows),
  ];
}

/**
 * CPU ms per call of each process that used at least 0.1 ms of it, and their sum: on a machine
 * whose cores are all busy, throughput is bounded by that sum. "node (this process)" is the
 * load generator with the light worker beside it (and the reader, during the session load).
 */
/** CPU seconds of all processes in a `cpuDelta`. */
export const cpuTotal = (delta: Array<[string, number]>) => delta.reduce((sum, [, s]) => sum + s, 0);

export function cpuPerCall(delta: Array<[string, number]>, calls: number): string {
  const per = delta.map(([name, s]): [string, number] => [name, (s * 1000) / calls]).filter(([, v]) => v >= 0.1);
  const total = per.reduce((sum, [, v]) => sum + v, 0);
  return `${total.toFixed(1)} ms: ${per.map(([name, v]) => `${name} ${v.toFixed(1)}`).join(', ')}`;
}

/** BENCH_ISOLATION_TARGETS=sqlite (or in-memory) runs one persistence only, for a trial run; both by default. */
const targets = (process.env.BENCH_ISOLATION_TARGETS ?? 'in-memory,sqlite').split(',') as Persistence[];

export const isolationSection: Section = {
  name: 'isolation: reads under session load, 5xx, session ÷ bare start, batch of 100 (in-memory and SQLite Temporal)',
  run: async (ctx) => {
    const rows: Row[] = [];
    for (const persistence of targets) {
      await waitForQuietMachine();
      rows.push(...(await withTarget(ctx, persistence, (t) => measureIsolation(ctx, t))));
    }
    return rows;
  },
};
