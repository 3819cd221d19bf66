import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import { temporal } from '@temporalio/proto';
import { actionsSource, billableActions, eventsByType } from '../bench/temporal-actions';
import { WORKER_DB_POOL_SIZE } from '../services/shared/db/pool-size';
import { assumptions, capacityPlan, heartbeatAction, limits, type CapacityCheck, targetTraffic, type ChartDefaults, type CostFigures, type Figure, type KindCost, type PoolPlan } from './capacity-model';

/**
 * `npm run capacity`: the sizing model of docs/capacity.md from the latest cost figures
 * (bench/results/cost-<temporal kind>.json, written by `BENCH_ONLY=cost npm run bench`) and the
 * chart's defaults (charts/media-upload/values.yaml). Prints the document and writes it to
 * docs/capacity.md; tests/unit/capacity.test.ts checks that the committed one is current.
 */

const root = resolve(__dirname, '..');
export const resultsDir = join(root, 'bench', 'results');
export const docPath = join(root, 'docs', 'capacity.md');
/** Histories recorded before the history cut of issue 16 (also the replay test's fixtures). */
export const beforeCutDir = join(root, 'tests', 'fixtures', 'histories');

/** History events by type and billable actions of one recorded history file. */
export function recordedHistory(file: string): { events: Record<string, number>; total: number; actions: number } {
  const h = temporal.api.history.v1.History.fromObject(JSON.parse(readFileSync(file, 'utf8')));
  return { events: eventsByType(h.events), total: h.events.length, actions: billableActions(h.events).total };
}

/** Every cost file (one per Temporal server the cost section ran on), newest first by `measuredAt`. */
export function allCostFigures(dir = resultsDir): Array<{ file: string; figures: CostFigures }> {
  const files = readdirSync(dir).filter((f) => /^cost-.+\.json$/.test(f));
  if (files.length === 0) throw new Error(`no cost figures in ${dir}: run \`BENCH_ONLY=cost npm run bench\` first`);
  const all = files.map((file) => ({ file, figures: JSON.parse(readFileSync(join(dir, file), 'utf8')) as CostFigures }));
  return all.sort((a, b) => b.figures.measuredAt.localeCompare(a.figures.measuredAt));
}

/** The cost file measured last: the one the sizing uses. */
export const latestCostFigures = (dir = resultsDir) => allCostFigures(dir)[0]!;

const cpu = (v: string | number) => (typeof v === 'number' ? v : v.endsWith('m') ? Number(v.slice(0, -1)) / 1000 : Number(v));
const mebibytes = (v: string) => (v.endsWith('Gi') ? Number(v.slice(0, -2)) * 1024 : Number(v.replace(/Mi$/, '')));

/** The part of values.yaml the model reads. */
interface ValuesPool {
  resources: { requests: { cpu: string | number; memory: string } };
  autoscaling: { minReplicas: number; maxReplicas: number; targetCPUUtilizationPercentage: number };
  keda?: { targetQueueSize: number };
}
interface Values {
  api: ValuesPool;
  workers: { light: ValuesPool; video: ValuesPool };
  clamd: { replicaCount: number; resources: { requests: { cpu: string | number; memory: string } } };
}

/** The defaults the model compares with, read from the chart's values.yaml and the config defaults it leaves alone. */
export function chartDefaults(valuesFile = join(root, 'charts', 'media-upload', 'values.yaml')): ChartDefaults {
  const v = parse(readFileSync(valuesFile, 'utf8')) as Values;
  const pool = (p: ValuesPool, concurrency?: number) => ({
    cpuRequest: cpu(p.resources.requests.cpu),
    memoryRequestMiB: mebibytes(p.resources.requests.memory),
    minReplicas: p.autoscaling.minReplicas,
    maxReplicas: p.autoscaling.maxReplicas,
    targetCpu: p.autoscaling.targetCPUUtilizationPercentage / 100,
    targetQueueSize: p.keda?.targetQueueSize,
    concurrency,
  });
  return {
    api: pool(v.api),
    // LIGHT_/VIDEO_MAX_CONCURRENT_ACTIVITIES and DB_POOL_SIZE: services/shared/config.ts defaults (the chart does not set them);
    // a worker's pool is WORKER_DB_POOL_SIZE (services/worker/worker.ts), whatever DB_POOL_SIZE says.
    light: pool(v.workers.light, 8),
    video: pool(v.workers.video, 1),
    clamd: { replicas: v.clamd.replicaCount, cpuRequest: cpu(v.clamd.resources.requests.cpu), memoryRequestMiB: mebibytes(v.clamd.resources.requests.memory) },
    dbPoolSize: 25,
    workerDbPoolSize: WORKER_DB_POOL_SIZE,
  };
}

const n = (v: number, d = 1) => (Math.abs(v) >= 100 ? Math.round(v).toLocaleString('en-US') : Number(v.toFixed(d)).toString());
const row = (what: string, fig: Figure, unit = '') => `| ${what} | **${n(fig.value)}**${unit ? ` ${unit}` : ''} | ${fig.from} |`;
const table = (rows: string[]) => ['| | value | from |', '|---|---|---|', ...rows].join('\n');

function costTable(all: CostFigures[]): string {
  const k = (label: string, x: KindCost) => {
    const cpuTotal = Object.entries(x.cpuSeconds).filter(([r]) => r !== 'bench (load generator)' && !r.startsWith('other')).reduce((a, [, s]) => a + s, 0);
    return [
      label,
      `${x.ready}/${x.uploads}`,
      `${n(x.unitsPerUpload, 2)} ${x.unit === 'megapixel' ? 'MP' : 's'}`,
      n(x.historyEvents),
      n(x.actions),
      x.stateTransitions === null ? 'n/a' : n(x.stateTransitions),
      Object.entries(x.s3Requests).sort((a, b) => b[1] - a[1]).map(([t, v]) => `${t} ${n(v)}`).join(', '),
      Object.entries(x.pg).map(([db, v]) => `${db} ${n(v.transactions)}`).join(', '),
      n(cpuTotal, 2),
    ];
  };
  return [
    '| kind | Temporal server | measured | READY | size | history events | billable actions | state transitions | S3 requests | PostgreSQL transactions | CPU-s (platform) |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...all.flatMap((c) =>
      (['image', 'video'] as const).map((kind) => {
        const [label, ...rest] = k(kind === 'image' ? 'image' : '1080p video', c[kind]);
        return `| ${[label, c.temporalKind, c.measuredAt.slice(0, 10), ...rest].join(' | ')} |`;
      }),
    ),
  ].join('\n');
}

function cpuTable(c: CostFigures): string {
  const roles = ['api', 'light worker', 'video worker', 'temporal', 's3', 'postgres', 'clamd'];
  return [
    '| process | CPU-s per image | per megapixel | CPU-s per video | per second of 1080p video |',
    '|---|---|---|---|---|',
    ...roles.map((r) => {
      const i = c.image.cpuSeconds[r] ?? 0;
      const v = c.video.cpuSeconds[r] ?? 0;
      return `| ${r} | ${i.toFixed(3)} | ${(i / c.image.unitsPerUpload).toFixed(4)} | ${v.toFixed(3)} | ${(v / c.video.unitsPerUpload).toFixed(4)} |`;
    }),
  ].join('\n');
}

const eventsLine = (x: KindCost) =>
  Object.entries(x.eventsByType)
    .map(([t, v]) => `${t} ${n(v)}`)
    .join(', ');

function poolRows(name: string, p: PoolPlan): string[] {
  return [
    row(`${name}: cores at the peak`, p.coresPeak),
    row(`${name}: cores at the daily average`, p.coresAverage),
    row(`${name}: pods at the peak`, p.replicasPeak),
    row(`${name}: min replicas`, p.minReplicas),
    row(`${name}: max replicas`, p.maxReplicas),
    ...(p.targetQueueSize ? [row(`${name}: KEDA targetQueueSize`, p.targetQueueSize)] : []),
    row(`${name}: memory request per pod`, p.memoryRequestMiB, 'MiB'),
  ];
}

/** The newest capacity check of this Temporal server, if one was run. */
export function capacityCheckOf(temporalKind: string, dir = resultsDir): CapacityCheck | undefined {
  const file = join(dir, `capacity-check-${temporalKind}.json`);
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as CapacityCheck) : undefined;
}

function checkSection(check: CapacityCheck | undefined, temporalKind: string): string {
  if (!check) return `Not run yet on the ${temporalKind} server: \`BENCH_ONLY=capacity-check npm run bench\`, then \`npm run capacity\`.\n`;
  const lines = check.phases.map(
    (p) =>
      `| ${p.factor}× = ${n(p.rate, 2)}/s | ${p.samples.map((s) => `${n(s.t, 0)} s: ${s.inFlight}${s.queued === undefined ? '' : `/${s.queued}`}`).join(', ')} | ${n(p.growth, 2)}/s (predicted ${n(p.predicted, 2)}/s) | ${p.ready}/${p.uploads} | ${p.asPredicted ? 'yes' : '**no**'} |`,
  );
  return `Measured ${check.measuredAt} on ${check.machine} (${check.temporalKind}): image uploads arriving open-loop for
${check.windowSeconds} s at the rate the model says this one machine sustains, **${n(check.rate, 2)}/s** (${check.rateFrom}),
then at 1.5× that. Backlog = uploads started and not yet READY / tasks queued on the light queue,
sampled every few seconds; growth is the slope over the window's second half (\`BENCH_ONLY=capacity-check\`).

| arrivals | backlog over time | growth | READY | as predicted (flat at 1×, growing at 1.5×) |
|---|---|---|---|---|
${lines.join('\n')}
`;
}

/** Before (recorded histories) and after (this run) per event type. */
function cutTable(c: CostFigures): string {
  const before = { image: recordedHistory(join(beforeCutDir, 'post-image-ready.json')), video: recordedHistory(join(beforeCutDir, 'post-video-multipart-ready.json')) };
  const types = [...new Set([...Object.keys(before.image.events), ...Object.keys(c.image.eventsByType), ...Object.keys(before.video.events), ...Object.keys(c.video.eventsByType)])].sort();
  const cell = (b: number | undefined, a: number | undefined) => ((b ?? 0) === (a ?? 0) ? n(a ?? 0) : `${n(b ?? 0)} → **${n(a ?? 0)}**`);
  return [
    '| per upload | image: before → after | video: before → after |',
    '|---|---|---|',
    `| history events | ${cell(before.image.total, c.image.historyEvents)} | ${cell(before.video.total, c.video.historyEvents)} |`,
    `| billable actions | ${cell(before.image.actions, c.image.actions)} | ${cell(before.video.actions, c.video.actions)} |`,
    ...types.map((t) => `| ${t} | ${cell(before.image.events[t], c.image.eventsByType[t])} | ${cell(before.video.events[t], c.video.eventsByType[t])} |`),
  ].join('\n');
}

/** docs/capacity.md for these figures and chart defaults. */
export function renderCapacityDoc(file: string, c: CostFigures, chart: ChartDefaults, check?: CapacityCheck, others: CostFigures[] = []): string {
  const p = capacityPlan(c, chart);
  const t = targetTraffic;
  return `# Capacity: what an upload costs and how big the cluster must be

<!-- Generated by \`npm run capacity\` from bench/results/${file}; do not edit by hand. -->

Generated by \`npm run capacity\` (scripts/capacity.ts, arithmetic in scripts/capacity-model.ts)
from **bench/results/${file}**, measured ${c.measuredAt} on the **${c.temporalKind}** Temporal
server (${c.machine}) by \`BENCH_ONLY=cost npm run bench\`. Rerun both on an idle machine to
refresh every number below; a unit test fails when this file and the script disagree.

## Cost per upload, measured

${costTable([c, ...others])}

One pair of rows per Temporal server the cost section ran on (bench/results/cost-*.json); the
details and the sizing below use the newest, the first. Figures are means per upload over the run (${c.image.uploads} images of ${n(c.image.bytesPerUpload / 1e6, 2)} MB, ${c.video.uploads} videos of
${n(c.video.unitsPerUpload)} s 1080p30, all at once). Billable actions are counted from the histories by the rule of
Temporal Cloud's Actions page (${actionsSource}; bench/temporal-actions.ts); queries and activity
heartbeats are not in a history and not counted there; the sizing below adds the heartbeats the
server's \`action\` metric counted (\`${heartbeatAction}\`), and for a video longer than the measured
clip one heartbeat per ${limits.heartbeatEverySeconds.value} s of its extra transcode time (${limits.heartbeatEverySeconds.source}: heartbeats follow an activity's run
time, not the video's length). PostgreSQL transactions are counted from
\`pg_stat_database\` (commits + rollbacks; each statement of the platform is its own transaction
unless it says otherwise). S3 requests are SeaweedFS' \`SeaweedFS_s3_request_total\` by type.

History events per image upload: ${eventsLine(c.image)}.

History events per video upload: ${eventsLine(c.video)}.

### What was cut

Every status change stays visible in the Web UI (the \`MediaStatus\` search attribute upsert and
the read-model write remain). What went: the HEAD + magic-bytes check (\`verifyUpload\`) and an
image's copy to the media bucket (\`promoteOriginal\`) were activities of their own, each costing
a workflow task round trip (3 events), 3 activity events and one activity action, for calls of
milliseconds. They now run as local activities inside the workflow task that follows the status
change (their marker shares that task's one marker action), behind \`patched('quick-steps-local')\`
so that workflows recorded before replay unchanged (tests/unit/workflow-replay.test.ts replays
the histories the "before" column comes from, tests/fixtures/histories). A video's copy stays an
activity: it can take longer than a workflow task may run. The patch itself adds one marker (in
a task that records markers anyway) and one \`TemporalChangeVersion\` upsert (exempt from
billing) per run; both go once \`patched\` is removed after the last workflow started before it
has closed. The price: while a local step retries (S3 down during verification, say), the Web UI
shows its backoff timers and the failed attempt on the workflow task instead of a pending activity
with its last failure, and \`npm run ops retry\` (ResetActivity) cannot cut the wait short; the step
retries on the same schedule as before (up to 10 minutes) and then fails the upload.

${cutTable(c)}

Also cut since: the confirmation timer (\`condition\` with the deadline: TimerStarted +
TimerCanceled, one action) and the workflow task that started it at session time. A session
starts its workflow with a start delay to the deadline, and \`complete\` confirms with
Signal-With-Start, which ends the delay: the workflow first runs with the confirmation already
there (README, *The upload flow*). A measurement from before that change still shows the timer
pair and one more workflow task. Left as they are: scan, thumbnails and transcodes are long,
heartbeat, and run on other pools; the search attribute upsert per status is what the Web UI
filters on.

CPU-seconds of each process (the whole process tree: ffmpeg counts to the video worker, backends to PostgreSQL):

${cpuTable(c)}

## Sizing for ${t.uploadsPerDay.toLocaleString('en-US')} uploads a day

Traffic: ${t.uploadsPerDay.toLocaleString('en-US')} uploads a day (${n(p.averagePerSecond, 2)}/s on average), peaks of ${t.peakPerSecond}/s; mix
${t.mix.image * 100}% images of ${t.imageMegapixels} MP, ${t.mix.shortVideo * 100}% short videos of ${t.shortVideoSeconds} s and ${t.mix.longVideo * 100}% long videos of ${t.longVideoSeconds} s (1080p).
The light worker, clamd and S3 scale with an image's megapixels; the video worker, clamd and S3
with a video's seconds; everything else is per upload. Pools are planned at their HPA target
utilisation of their CPU request (charts/media-upload/values.yaml).

### Temporal

${table([
  row('actions per image', p.actionsPerUpload.image),
  row('actions per short video', p.actionsPerUpload.shortVideo),
  row('actions per long video', p.actionsPerUpload.longVideo),
  row('actions per upload (mix)', p.actionsPerUploadMix),
  row('actions per second at the peak', p.apsPeak, 'APS'),
  row('actions per second on average', p.apsAverage, 'APS'),
  row('actions per day', p.actionsPerDay),
  ...(p.stateTransitionsPeak ? [row('state transitions per second at the peak', p.stateTransitionsPeak)] : []),
  ...(p.historyShards ? [row('history shards (self-hosted)', p.historyShards)] : []),
])}

Temporal Cloud: the default Namespace limit is ${limits.temporalCloudAps.value} APS [source: ${limits.temporalCloudAps.source}]; it rises on its own
with the last 7 days of usage (On-Demand Capacity) or is bought as Provisioned Capacity. The peak
needs **${n(p.apsPeak.value)} APS**${p.apsPeak.value > limits.temporalCloudAps.value ? ': ask for that limit before launch, since a peak throttles workflow progress (never starts or signals)' : ', within the default'}.
Activity heartbeats are ${n(p.actionsPerUpload.longVideo.value - c.video.actions)} of a long video's ${n(p.actionsPerUpload.longVideo.value)} actions: one every
${limits.heartbeatEverySeconds.value} s while it transcodes, the price of a DELETE stopping ffmpeg within seconds. A larger
maxHeartbeatThrottleInterval cuts them in proportion and makes cancellation as much slower.
The Namespace also limits requests: ${limits.temporalCloudRps.value} RPS by default [source: ${limits.temporalCloudRps.source}], every
gRPC call of the workers and the API (task polls, task completions, heartbeats, starts, signals,
queries). The bench does not count requests, so this model does not check that limit: raise it
with the APS limit, and watch the Namespace's request metrics.
Self-hosted: the history shard count is fixed when the cluster is created; Temporal's chart uses
${limits.historyShards.value} [source: ${limits.historyShards.source}].

### Worker pools, API and clamd

${table([
  ...poolRows('light worker', p.light),
  ...poolRows('video worker', p.video),
  ...poolRows('API', p.api),
  row('clamd: cores at the peak', p.clamd.coresPeak),
  row('clamd: replicas', p.clamd.replicas),
])}

The chart's defaults for comparison: light ${chart.light.cpuRequest} CPU / ${chart.light.memoryRequestMiB} MiB, ${chart.light.minReplicas}–${chart.light.maxReplicas} replicas,
targetQueueSize ${chart.light.targetQueueSize}; video ${chart.video.cpuRequest} CPU / ${chart.video.memoryRequestMiB} MiB, ${chart.video.minReplicas}–${chart.video.maxReplicas} replicas, targetQueueSize
${chart.video.targetQueueSize}; API ${chart.api.cpuRequest} CPU / ${chart.api.memoryRequestMiB} MiB, ${chart.api.minReplicas}–${chart.api.maxReplicas} replicas; clamd ${chart.clamd.replicas} × ${chart.clamd.cpuRequest} CPU / ${chart.clamd.memoryRequestMiB} MiB.
The video pool is sized for the daily average × ${assumptions.videoAverageFactor}: transcodes of a peak wait in the queue and drain after it
(KEDA scales on that backlog); the light pool is sized for the peak, since images are READY in seconds.

### PostgreSQL and S3

${table([
  row('PostgreSQL connections (all pods at their ceilings)', p.postgres.connections),
  row('PostgreSQL transactions per second at the peak', p.postgres.transactionsPeak),
  row('PostgreSQL rows written per second at the peak', p.postgres.rowsWrittenPeak),
  row('S3 PUT/COPY/POST/DELETE per second at the peak', p.s3.writesPeak),
  row('S3 GET/HEAD/LIST per second at the peak', p.s3.readsPeak),
  row('partitioned prefixes needed for writes', p.s3.writePrefixes),
  row('partitioned prefixes needed for reads', p.s3.readPrefixes),
  row('S3 bytes in per second at the peak', { ...p.s3.bytesInPeak, value: p.s3.bytesInPeak.value / 1e6 }, 'MB/s'),
  row('S3 bytes out per second at the peak', { ...p.s3.bytesOutPeak, value: p.s3.bytesOutPeak.value / 1e6 }, 'MB/s'),
])}

S3 serves at least ${limits.s3WritesPerPrefix.value} PUT/COPY/POST/DELETE and ${limits.s3ReadsPerPrefix.value} GET/HEAD requests per second per partitioned
prefix [source: ${limits.s3WritesPerPrefix.source}]. Object keys start with the media type and the owner
(\`post_image/<owner>/<id>\`), so load spreads over many prefixes once S3 has partitioned them;
ramp up gradually, since S3 answers 503 Slow Down while it splits a hot prefix.
${p.postgres.connections.value > 100 ? `${n(p.postgres.connections.value)} connections is far above PostgreSQL's default max_connections (100): put PgBouncer (transaction pooling) in front, or lower DB_POOL_SIZE per API pod.\n` : ''}
## The model checked against a run

${checkSection(check, c.temporalKind)}
## How to refresh

\`\`\`
BENCH_ONLY=cost npm run bench            # writes bench/results/cost-<temporal kind>.json
BENCH_ONLY=capacity-check npm run bench  # writes bench/results/capacity-check-<temporal kind>.json
npm run capacity                         # regenerates this file from the newest figures
\`\`\`
`;
}

function main(): void {
  const [latest, ...others] = allCostFigures();
  const doc = renderCapacityDoc(latest!.file, latest!.figures, chartDefaults(), capacityCheckOf(latest!.figures.temporalKind), others.map((o) => o.figures));
  writeFileSync(docPath, doc);
  process.stdout.write(doc);
}

if (require.main === module) main();
