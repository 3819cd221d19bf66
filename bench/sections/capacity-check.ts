import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { temporal } from '@temporalio/proto';
import { machineImageRate, slope, type CapacityCheck, type CostFigures } from '../../scripts/capacity-model';
import { noiseJpeg } from '../fixtures';
import { repoRoot, type BenchContext } from '../platform';
import type { Row } from '../report';
import type { Section } from '../section';
import { startSplitPlatform, type SplitPlatform } from './cost';
import { imageSpecs, uploadToTerminal, type Outcome } from './upload-e2e';

export interface CapacityCheckOptions {
  /** Seconds of arrivals at each rate. */
  windowSeconds: number;
  /** Seconds between two backlog samples. */
  sampleSeconds: number;
  /** After the arrivals stop, how long the uploads still running may take to finish. */
  drainTimeoutMs: number;
  /** Uploads/s at 1×; default: what the model says this machine sustains (machineImageRate). */
  rate?: number;
}

/** BENCH_CAPACITY_WINDOW_SECONDS / BENCH_CAPACITY_RATE size a run. */
const defaults: CapacityCheckOptions = {
  windowSeconds: Number(process.env.BENCH_CAPACITY_WINDOW_SECONDS ?? 90),
  sampleSeconds: 5,
  drainTimeoutMs: 300_000,
  rate: process.env.BENCH_CAPACITY_RATE ? Number(process.env.BENCH_CAPACITY_RATE) : undefined,
};

type Sample = CapacityCheck['phases'][number]['samples'][number];

/** Tasks waiting on a task queue, from DescribeTaskQueue's stats; undefined when the server does not report them. */
async function queueBacklog(ctx: BenchContext, taskQueue: string): Promise<number | undefined> {
  try {
    let total = 0;
    for (const taskQueueType of [temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY]) {
      const res = await ctx.temporal.workflowService.describeTaskQueue({ namespace: ctx.config.TEMPORAL_NAMESPACE, taskQueue: { name: taskQueue }, taskQueueType, reportStats: true });
      total += Number(res.stats?.approximateBacklogCount ?? 0);
    }
    return total;
  } catch {
    return undefined;
  }
}

/**
 * Open-loop arrivals of image uploads at `rate`/s for the window (one every 1/rate s whatever
 * the answers), sampling the backlog meanwhile; then waits until every upload is terminal.
 */
async function drive(ctx: BenchContext, split: SplitPlatform, images: Buffer[], rate: number, o: CapacityCheckOptions): Promise<{ samples: Sample[]; outcomes: Outcome[]; drainedMs: number }> {
  const total = Math.round(rate * o.windowSeconds);
  const tokens = await Promise.all(Array.from({ length: total }, (_, i) => ctx.token(`bench-capacity-${randomUUID().slice(0, 6)}-${i}`)));
  const abort = new AbortController();
  const samples: Sample[] = [];
  let inFlight = 0;
  const t0 = performance.now();
  const sampler = setInterval(() => {
    const t = (performance.now() - t0) / 1000;
    void queueBacklog(ctx, split.env.TASK_QUEUE_LIGHT!).then((queued) => samples.push({ t, inFlight, queued }));
  }, o.sampleSeconds * 1000);
  const running: Array<Promise<Outcome>> = [];
  try {
    for (let i = 0; i < total; i++) {
      const due = t0 + (i / rate) * 1000;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      inFlight++;
      const file = images[i % images.length]!;
      running.push(
        uploadToTerminal(`${split.api.url}/api/v1`, tokens[i]!, { body: file, fileName: `capacity-${i}.jpg`, fileType: 'image/jpeg', mediaType: 'POST_IMAGE' }, performance.now(), abort.signal).finally(() => inFlight--),
      );
    }
    const timer = setTimeout(() => abort.abort(), o.drainTimeoutMs);
    const outcomes = await Promise.all(running);
    clearTimeout(timer);
    return { samples: samples.sort((a, b) => a.t - b.t), outcomes, drainedMs: performance.now() - t0 - o.windowSeconds * 1000 };
  } finally {
    clearInterval(sampler);
    abort.abort();
  }
}

/** The newest cost figures of this Temporal server, if the cost section has run here. */
function costFigures(ctx: BenchContext): CostFigures | undefined {
  const file = join(repoRoot, 'bench', 'results', `cost-${ctx.temporalKind}.json`);
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as CostFigures) : undefined;
}

/**
 * Issue 16: checks the sizing model against the real stack on this machine. At the rate the
 * model says the machine sustains (its cores over the measured CPU of one image upload), the
 * backlog must stay flat; at 1.5× it must grow by about the excess, 0.5 × rate per second.
 * The verdict compares the backlog's growth over the window's second half with both.
 */
export async function measureCapacityCheck(ctx: BenchContext, options: Partial<CapacityCheckOptions> = {}): Promise<Row[]> {
  const o = { ...defaults, ...options };
  const figures = costFigures(ctx);
  if (!o.rate && !figures) throw new Error(`no bench/results/cost-${ctx.temporalKind}.json: run BENCH_ONLY=cost first, or set BENCH_CAPACITY_RATE`);
  const model = figures ? machineImageRate(figures, cpus().length) : undefined;
  const rate = o.rate ?? model!.value;
  const images = await Promise.all(imageSpecs.map((s) => noiseJpeg(s.width, s.height, { noise: s.noise, quality: 92, seed: s.seed })));
  const split = await startSplitPlatform(ctx);
  const rows: Row[] = [
    { metric: 'Temporal server', value: ctx.temporalKind },
    { metric: 'rate the model says this machine sustains', value: `${rate.toFixed(2)} image uploads/s${o.rate ? ' (BENCH_CAPACITY_RATE)' : ` = ${model!.from}`}` },
  ];
  const check: CapacityCheck = {
    temporalKind: ctx.temporalKind,
    measuredAt: new Date().toISOString(),
    machine: `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'unknown CPU'}`,
    rate,
    rateFrom: o.rate ? 'BENCH_CAPACITY_RATE' : model!.from,
    windowSeconds: o.windowSeconds,
    phases: [],
  };
  try {
    for (const factor of [1, 1.5]) {
      const r = rate * factor;
      const { samples, outcomes, drainedMs } = await drive(ctx, split, images, r, o);
      const second = samples.filter((s) => s.t >= o.windowSeconds / 2 && s.t <= o.windowSeconds);
      const growth = slope(second.map((s) => ({ x: s.t, y: s.inFlight })));
      const predicted = Math.max(0, r - rate);
      // Flat: grows by less than a quarter of the rate per second; growing: by more (1.5× predicts half).
      const flat = growth < 0.25 * rate;
      const expectFlat = factor === 1;
      const ready = outcomes.filter((x) => x.status === 'READY').length;
      const statuses = new Map<string, number>();
      for (const x of outcomes) statuses.set(x.status, (statuses.get(x.status) ?? 0) + 1);
      const firstError = outcomes.find((x) => x.error)?.error;
      rows.push(
        {
          metric: `[${factor}×] ${r.toFixed(2)} uploads/s for ${o.windowSeconds} s: backlog (in flight / queued tasks) every ${o.sampleSeconds} s`,
          value: samples.map((s) => `${s.t.toFixed(0)}s ${s.inFlight}${s.queued === undefined ? '' : `/${s.queued}`}`).join(', '),
        },
        {
          metric: `[${factor}×] backlog growth over the second half`,
          value: `${growth.toFixed(2)} uploads/s (predicted ${predicted.toFixed(2)}); ${[...statuses].map(([k, v]) => `${k} ${v}`).join(', ')}${firstError ? ` (first error: ${firstError.slice(0, 160)})` : ''}; the last ${(drainedMs / 1000).toFixed(0)} s after the arrivals stopped`,
          target: expectFlat ? 'flat (< 0.25 × rate)' : 'growing (≥ 0.25 × rate)',
          met: flat === expectFlat && ready === outcomes.length,
        },
      );
      check.phases.push({ factor, rate: r, samples, growth, predicted, ready, uploads: outcomes.length, asPredicted: flat === expectFlat });
    }
    // docs/capacity.md shows the newest check (npm run capacity).
    const file = join(repoRoot, 'bench', 'results', `capacity-check-${ctx.temporalKind}.json`);
    mkdirSync(join(file, '..'), { recursive: true });
    writeFileSync(file, `${JSON.stringify(check, null, 2)}\n`);
    rows.push({ metric: 'written to', value: file.slice(repoRoot.length + 1) });
    return rows;
  } finally {
    await split.stop();
  }
}

export const capacityCheckSection: Section = {
  name: 'capacity-check: backlog at the rate the model says this machine sustains, and at 1.5×',
  clamd: true,
  run: (ctx) => measureCapacityCheck(ctx),
};
