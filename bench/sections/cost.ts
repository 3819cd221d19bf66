import { temporal } from '@temporalio/proto';
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Client as PgClient } from 'pg';
import { ffmpeg as ffmpegTools } from '../../devstack/tools';
import { mediaWorkflowId } from '../../workflows/media-upload.workflow';
import type { CostFigures, KindCost, Role } from '../../scripts/capacity-model';
import { lavfiClip, noiseJpeg } from '../fixtures';
import { repoRoot, type BenchContext } from '../platform';
import { childCpu, ownCpuSeconds } from '../procs';
import { scrape, sumBy, type Sample } from '../prometheus';
import type { Row } from '../report';
import type { Section } from '../section';
import { startApiProcess, startWorkerProcess, type ServiceProcess } from '../service-processes';
import { billableActions, eventsByType } from '../temporal-actions';
import { imageSpecs, uploadToTerminal, type Outcome, type UploadFile } from './upload-e2e';

export interface CostOptions {
  images: number;
  videos: number;
  /** Duration of each 1080p30 test clip. */
  videoSeconds: number;
  /** Per phase: what is not terminal by then counts as not READY. */
  timeoutMs: number;
  /** Where the figures go; default bench/results/cost-<temporal kind>.json. */
  resultFile?: string;
  /** When set, the first history of each kind is saved there as JSON (replay test fixtures). */
  historyDir?: string;
}

/** BENCH_COST_IMAGES / BENCH_COST_VIDEOS / BENCH_COST_VIDEO_SECONDS size a run; BENCH_COST_RESULT_FILE redirects the JSON. */
const defaults: CostOptions = {
  images: Number(process.env.BENCH_COST_IMAGES ?? 20),
  videos: Number(process.env.BENCH_COST_VIDEOS ?? 5),
  videoSeconds: Number(process.env.BENCH_COST_VIDEO_SECONDS ?? 10),
  timeoutMs: 600_000,
  resultFile: process.env.BENCH_COST_RESULT_FILE,
  historyDir: process.env.BENCH_COST_HISTORY_DIR,
};

/** The platform split into processes so that each one's CPU is read on its own. */
export interface SplitPlatform {
  api: ServiceProcess;
  light: ServiceProcess;
  video: ServiceProcess;
  env: Record<string, string>;
  stop(): Promise<void>;
}

/**
 * API, light worker and video worker as child processes on the context's stack, on task queues
 * of their own (the context's in-process worker never sees their tasks).
 */
export async function startSplitPlatform(ctx: BenchContext, extraEnv: Record<string, string> = {}): Promise<SplitPlatform> {
  const suffix = randomUUID().slice(0, 8);
  const tools = ffmpegTools();
  const env: Record<string, string> = {
    ...ctx.stack.env,
    JWT_SECRET: ctx.config.JWT_SECRET!,
    TASK_QUEUE_LIGHT: `bench-split-light-${suffix}`,
    TASK_QUEUE_VIDEO: `bench-split-video-${suffix}`,
    TASK_QUEUE_DOCUMENT: `bench-split-document-${suffix}`,
    FFMPEG_PATH: tools.ffmpeg,
    FFPROBE_PATH: tools.ffprobe,
    HLS_X264_PRESET: ctx.config.HLS_X264_PRESET,
    WORKER_SHUTDOWN_GRACE_SECONDS: '2',
    SHUTDOWN_GRACE_SECONDS: '2',
    CLEANUP_INTERVAL: 'off',
    ...extraEnv,
  };
  const started: ServiceProcess[] = [];
  const stop = async () => {
    for (const p of started.reverse()) await p.process.stop();
  };
  try {
    const start = async (p: Promise<ServiceProcess>) => {
      const s = await p;
      started.push(s);
      return s;
    };
    const [light, video] = await Promise.all([start(startWorkerProcess('light', env, ctx.workflowBundlePath)), start(startWorkerProcess('video', env, ctx.workflowBundlePath))]);
    const api = await start(startApiProcess(env));
    return { api, light, video, env, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Which role a direct child of the bench process plays, by pid (ours) or process name (the stack's). */
function roleOf(child: { pid: number; name: string }, split: SplitPlatform): Role | undefined {
  if (child.pid === split.api.pid) return 'api';
  if (child.pid === split.light.pid) return 'light worker';
  if (child.pid === split.video.pid) return 'video worker';
  if (/^(temporal|server)/.test(child.name)) return 'temporal';
  if (/^weed/.test(child.name)) return 's3';
  if (/^(postgres|pg_ctl)/.test(child.name)) return 'postgres';
  if (/^clamd/.test(child.name)) return 'clamd';
  return undefined;
}

interface Snapshot {
  cpu: Map<string, number>;
  temporal: Sample[];
  s3: Sample[];
  pg: Map<string, { transactions: number; rowsWritten: number }>;
}

async function pgStats(databaseUrl: string): Promise<Map<string, { transactions: number; rowsWritten: number }>> {
  const client = new PgClient({ connectionString: databaseUrl });
  await client.connect();
  try {
    const res = await client.query<{ datname: string; xacts: string; written: string }>(
      `SELECT datname, xact_commit + xact_rollback AS xacts, tup_inserted + tup_updated + tup_deleted AS written
         FROM pg_stat_database WHERE datname IS NOT NULL AND datname NOT IN ('template0', 'template1')`,
    );
    return new Map(res.rows.map((r) => [r.datname, { transactions: Number(r.xacts), rowsWritten: Number(r.written) }]));
  } finally {
    await client.end();
  }
}

async function snapshot(ctx: BenchContext, split: SplitPlatform): Promise<Snapshot> {
  const cpu = new Map<string, number>([['bench (load generator)', ownCpuSeconds()]]);
  for (const child of childCpu()) {
    const role = roleOf(child, split) ?? `other: ${child.name}`;
    cpu.set(role, (cpu.get(role) ?? 0) + child.seconds);
  }
  const [temporal, s3, pg] = await Promise.all([scrape(ctx.stack.urls.temporalMetrics), scrape(ctx.stack.urls.s3Metrics), pgStats(ctx.stack.env.DATABASE_URL!)]);
  return { cpu, temporal, s3, pg };
}

/** Peak resident set (VmHWM) of a process, in MiB; NaN where /proc is not there. */
function peakRssMiB(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** A history as protobufjs JSON (enums by name, int64 as strings, bytes as base64): `History.fromObject` reads it back. */
export function historyJson(h: temporal.api.history.v1.IHistory): string {
  const History = temporal.api.history.v1.History;
  return `${JSON.stringify(History.toObject(History.fromObject(h), { longs: String, enums: String, bytes: String }), null, 1)}\n`;
}

const diff = (a: Map<string, number>, b: Map<string, number>) => new Map([...b].map(([k, v]) => [k, v - (a.get(k) ?? 0)]));
const perUpload = (m: Map<string, number>, n: number) => Object.fromEntries([...m].filter(([, v]) => v !== 0).map(([k, v]) => [k, v / n]));
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

interface Phase {
  files: UploadFile[];
  unit: KindCost['unit'];
  units: number[];
}

/** Uploads every file at once through the API, until each is terminal; the cost of the whole phase from before to after. */
async function measurePhase(ctx: BenchContext, split: SplitPlatform, phase: Phase, timeoutMs: number, historyDir?: string): Promise<{ cost: KindCost; outcomes: Outcome[] }> {
  const n = phase.files.length;
  const tokens = await Promise.all(phase.files.map((_, i) => ctx.token(`bench-cost-${randomUUID().slice(0, 6)}-${i}`)));
  const before = await snapshot(ctx, split);
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  const t0 = performance.now();
  let outcomes: Outcome[];
  try {
    outcomes = await Promise.all(phase.files.map((f, i) => uploadToTerminal(`${split.api.url}/api/v1`, tokens[i]!, f, t0, abort.signal)));
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
  const wallSeconds = (performance.now() - t0) / 1000;
  // PostgreSQL backends report their statistics at most once a second.
  await new Promise((r) => setTimeout(r, 1500));
  const after = await snapshot(ctx, split);

  const histories = await Promise.all(outcomes.flatMap((o) => (o.mediaId ? [ctx.temporal.workflow.getHandle(mediaWorkflowId(o.mediaId)).fetchHistory()] : [])));
  const events = histories.map((h) => h.events ?? []);
  if (historyDir && histories[0]) {
    mkdirSync(historyDir, { recursive: true });
    writeFileSync(join(historyDir, `${phase.files[0]!.mediaType.toLowerCase().replace('_', '-')}-ready.json`), historyJson(histories[0]));
  }
  const byType = new Map<string, number>();
  const byKind = new Map<string, number>();
  for (const e of events) {
    for (const [t, c] of Object.entries(eventsByType(e))) byType.set(t, (byType.get(t) ?? 0) + c);
    for (const [k, c] of Object.entries(billableActions(e).byKind)) byKind.set(k, (byKind.get(k) ?? 0) + c);
  }
  const h = Math.max(1, histories.length);
  const metric = (s: Sample[], name: string, where: Record<string, string>, by?: string) => sumBy(s, name, where, by);
  const temporalDelta = (name: string) => {
    if (!after.temporal.length) return null;
    const ns = { namespace: ctx.config.TEMPORAL_NAMESPACE };
    return ((metric(after.temporal, name, ns).get('') ?? 0) - (metric(before.temporal, name, ns).get('') ?? 0)) / n;
  };
  const s3ByType = diff(metric(before.s3, 'SeaweedFS_s3_request_total', {}, 'type'), metric(after.s3, 'SeaweedFS_s3_request_total', {}, 'type'));
  const s3Bytes = (name: string) => ((metric(after.s3, name, {}).get('') ?? 0) - (metric(before.s3, name, {}).get('') ?? 0)) / n;
  const hasS3Bytes = after.s3.some((s) => s.name === 'SeaweedFS_s3_bucket_traffic_received_bytes_total');
  const pg: KindCost['pg'] = {};
  for (const [db, a] of after.pg) {
    const b = before.pg.get(db) ?? { transactions: 0, rowsWritten: 0 };
    // Our own two stats queries are one transaction each on the media database.
    const own = db === new URL(ctx.stack.env.DATABASE_URL!).pathname.slice(1) ? 1 : 0;
    if (a.transactions - b.transactions - own > 0) pg[db] = { transactions: (a.transactions - b.transactions - own) / n, rowsWritten: (a.rowsWritten - b.rowsWritten) / n };
  }
  const cpuSeconds = perUpload(diff(before.cpu, after.cpu), n);
  const cost: KindCost = {
    uploads: n,
    ready: outcomes.filter((o) => o.status === 'READY').length,
    unit: phase.unit,
    unitsPerUpload: mean(phase.units),
    bytesPerUpload: mean(phase.files.map((f) => f.body.length)),
    wallSeconds,
    historyEvents: events.reduce((a, e) => a + e.length, 0) / h,
    eventsByType: Object.fromEntries([...byType].sort((x, y) => y[1] - x[1]).map(([k, v]) => [k, v / h])),
    actions: [...byKind.values()].reduce((a, b) => a + b, 0) / h,
    actionsByKind: Object.fromEntries([...byKind].map(([k, v]) => [k, v / h])),
    serverActions: temporalDelta('action'),
    serverActionsByType: after.temporal.length
      ? perUpload(diff(metric(before.temporal, 'action', { namespace: ctx.config.TEMPORAL_NAMESPACE }, 'action_type'), metric(after.temporal, 'action', { namespace: ctx.config.TEMPORAL_NAMESPACE }, 'action_type')), n)
      : {},
    // The histogram observes a workflow's running transition count once per mutable-state
    // update: its sample count is the number of transitions (its sum is meaningless here).
    stateTransitions: temporalDelta('state_transition_count_count'),
    s3Requests: perUpload(s3ByType, n),
    s3Bytes: hasS3Bytes
      ? { received: s3Bytes('SeaweedFS_s3_bucket_traffic_received_bytes_total'), sent: s3Bytes('SeaweedFS_s3_bucket_traffic_sent_bytes_total') }
      : null,
    pg,
    cpuSeconds,
    peakRssMiB: { api: peakRssMiB(split.api.pid), 'light worker': peakRssMiB(split.light.pid), 'video worker': peakRssMiB(split.video.pid) },
  };
  return { cost, outcomes };
}

const fmt = (v: number, digits = 1) => (Number.isFinite(v) ? v.toFixed(digits) : 'n/a');
const list = (r: Record<string, number>, digits = 1) =>
  Object.entries(r)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${fmt(v, digits)}`)
    .join(', ');

/** The rows of one kind (image or video) of a cost run. */
export function costRows(label: string, c: KindCost): Row[] {
  const roles = Object.entries(c.cpuSeconds).sort((a, b) => b[1] - a[1]);
  const cpuTotal = roles.reduce((a, [, v]) => a + v, 0);
  return [
    { metric: `[${label}] uploads READY`, value: `${c.ready}/${c.uploads} in ${fmt(c.wallSeconds)} s; ${fmt(c.unitsPerUpload, 2)} ${c.unit}s and ${fmt(c.bytesPerUpload / 1e6, 2)} MB per upload`, target: 'all', met: c.ready === c.uploads },
    { metric: `[${label}] history events per upload`, value: `${fmt(c.historyEvents)}: ${list(c.eventsByType)}` },
    { metric: `[${label}] billable actions per upload (from histories)`, value: `${fmt(c.actions)}: ${list(c.actionsByKind)}` },
    {
      metric: `[${label}] server: state transitions / \`action\` metric per upload`,
      value: `${c.stateTransitions === null ? 'not exposed' : fmt(c.stateTransitions)} / ${c.serverActions === null ? 'not exposed' : `${fmt(c.serverActions)} (${list(c.serverActionsByType)})`}`,
    },
    { metric: `[${label}] S3 requests per upload`, value: list(c.s3Requests) || 'not exposed' },
    { metric: `[${label}] S3 bytes per upload in / out`, value: c.s3Bytes ? `${fmt(c.s3Bytes.received / 1e6, 2)} MB / ${fmt(c.s3Bytes.sent / 1e6, 2)} MB` : 'not exposed' },
    {
      metric: `[${label}] PostgreSQL transactions / rows written per upload`,
      value: Object.entries(c.pg).map(([db, v]) => `${db}: ${fmt(v.transactions)} / ${fmt(v.rowsWritten)}`).join('; ') || 'none',
    },
    { metric: `[${label}] CPU-seconds per upload`, value: `${fmt(cpuTotal, 3)}: ${list(c.cpuSeconds, 3)}` },
    { metric: `[${label}] CPU-seconds per ${c.unit}`, value: roles.map(([k, v]) => `${k} ${fmt(v / c.unitsPerUpload, 3)}`).join(', ') },
    { metric: `[${label}] peak RSS (MiB)`, value: list(c.peakRssMiB, 0) },
  ];
}

/**
 * Issue 16: what one upload costs, measured end to end through the API with the API and the two
 * workers in processes of their own: images first, then 1080p videos, each phase on its own so
 * every figure belongs to one kind. Writes bench/results/cost-<temporal kind>.json, which
 * `npm run capacity` reads.
 */
export async function measureCost(ctx: BenchContext, options: Partial<CostOptions> = {}): Promise<Row[]> {
  const o = { ...defaults, ...options };
  const specs = Array.from({ length: o.images }, (_, i) => imageSpecs[i % imageSpecs.length]!);
  const images = await Promise.all(imageSpecs.map((s) => noiseJpeg(s.width, s.height, { noise: s.noise, quality: 92, seed: s.seed })));
  const clip = join(ctx.dataDir, `cost-clip-${o.videoSeconds}s.mp4`);
  await lavfiClip(ffmpegTools().ffmpeg, clip, o.videoSeconds);
  const clipBytes = readFileSync(clip);
  const split = await startSplitPlatform(ctx);
  try {
    const image = await measurePhase(
      ctx,
      split,
      {
        files: specs.map((_, i) => ({ body: images[i % images.length]!, fileName: `cost-${i}.jpg`, fileType: 'image/jpeg', mediaType: 'POST_IMAGE' })),
        unit: 'megapixel',
        units: specs.map((s) => (s.width * s.height) / 1e6),
      },
      o.timeoutMs,
      o.historyDir,
    );
    const video = await measurePhase(
      ctx,
      split,
      {
        files: Array.from({ length: o.videos }, (_, i) => ({ body: clipBytes, fileName: `cost-${i}.mp4`, fileType: 'video/mp4', mediaType: 'POST_VIDEO' })),
        unit: 'second of 1080p video',
        units: Array.from({ length: o.videos }, () => o.videoSeconds),
      },
      o.timeoutMs,
      o.historyDir,
    );
    const figures: CostFigures = {
      temporalKind: ctx.temporalKind,
      measuredAt: new Date().toISOString(),
      machine: `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'unknown CPU'}`,
      image: image.cost,
      video: video.cost,
    };
    const file = o.resultFile ?? join(repoRoot, 'bench', 'results', `cost-${ctx.temporalKind}.json`);
    // Figures of a run where uploads failed would size the cluster for failures: not written.
    const complete = image.cost.ready === image.cost.uploads && video.cost.ready === video.cost.uploads;
    if (complete) {
      mkdirSync(join(file, '..'), { recursive: true });
      writeFileSync(file, `${JSON.stringify(figures, null, 2)}\n`);
    }
    const firstError = [...image.outcomes, ...video.outcomes].find((x) => x.error)?.error;
    return [
      { metric: 'Temporal server', value: ctx.temporalKind },
      {
        metric: 'figures written to',
        value: complete ? (file.startsWith(repoRoot) ? file.slice(repoRoot.length + 1) : file) : `nothing: not every upload READY${firstError ? ` (first error: ${firstError.slice(0, 160)})` : ''}`,
        target: 'written',
        met: complete,
      },
      ...costRows('image', image.cost),
      ...costRows('video', video.cost),
    ];
  } finally {
    await split.stop();
  }
}

export const costSection: Section = {
  name: 'cost: per-upload Temporal actions, S3 requests, PostgreSQL, CPU per process (images, 1080p videos)',
  clamd: true,
  run: (ctx) => measureCost(ctx),
};
