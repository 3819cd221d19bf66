import { MAX_HEARTBEAT_THROTTLE_SECONDS } from '../services/worker/heartbeat';

/** Processes whose CPU the cost section reads (bench/sections/cost.ts). */
export type Role = 'api' | 'light worker' | 'video worker' | 'temporal' | 's3' | 'postgres' | 'clamd';

/** What one kind of upload (image or video) cost in a bench run; every figure is per upload. */
export interface KindCost {
  uploads: number;
  ready: number;
  unit: 'megapixel' | 'second of 1080p video';
  /** Mean megapixels per image, or seconds per video. */
  unitsPerUpload: number;
  bytesPerUpload: number;
  wallSeconds: number;
  historyEvents: number;
  eventsByType: Record<string, number>;
  /** Temporal Cloud billable actions counted from the histories (bench/temporal-actions.ts). */
  actions: number;
  actionsByKind: Record<string, number>;
  /** The server's own `action` metric and state transitions (state_transition_count), null when not exposed. */
  serverActions: number | null;
  /** The `action` metric by its action_type label (includes queries and other calls a history does not show). */
  serverActionsByType: Record<string, number>;
  stateTransitions: number | null;
  /** S3 requests by SeaweedFS request type (GET, PUT, HEAD, …). */
  s3Requests: Record<string, number>;
  s3Bytes: { received: number; sent: number } | null;
  /** Per PostgreSQL database: transactions (commits + rollbacks) and rows inserted + updated + deleted. */
  pg: Record<string, { transactions: number; rowsWritten: number }>;
  /** CPU-seconds by role (and `bench (load generator)`, `other: <name>`). */
  cpuSeconds: Record<string, number>;
  /** Peak resident set of the API and worker processes over the run so far, MiB. */
  peakRssMiB: Record<string, number>;
}

/** bench/results/cost-<temporalKind>.json */
export interface CostFigures {
  temporalKind: string;
  measuredAt: string;
  machine: string;
  image: KindCost;
  video: KindCost;
}

/** bench/results/capacity-check-<temporalKind>.json: the model checked against a run on one machine. */
export interface CapacityCheck {
  temporalKind: string;
  measuredAt: string;
  machine: string;
  /** Image uploads/s the model says the machine sustains, and how. */
  rate: number;
  rateFrom: string;
  windowSeconds: number;
  phases: Array<{
    factor: number;
    rate: number;
    /** Every few seconds: uploads started and not yet terminal; tasks queued on the light queue when the server reports them. */
    samples: Array<{ t: number; inFlight: number; queued?: number }>;
    /** Backlog growth over the window's second half (uploads/s), and the model's prediction. */
    growth: number;
    predicted: number;
    ready: number;
    uploads: number;
    /** Flat at 1×, growing at 1.5×. */
    asPredicted: boolean;
  }>;
}

/** The traffic the model sizes for (issue 16). */
export interface Traffic {
  uploadsPerDay: number;
  /** Uploads per second at the peak. */
  peakPerSecond: number;
  /** Shares of images, short videos and long videos; they sum to 1. */
  mix: { image: number; shortVideo: number; longVideo: number };
  /** Size of a typical upload of each kind: megapixels of a phone photo, seconds of 1080p video. */
  imageMegapixels: number;
  shortVideoSeconds: number;
  longVideoSeconds: number;
}

export const targetTraffic: Traffic = {
  uploadsPerDay: 1_000_000,
  peakPerSecond: 100,
  mix: { image: 0.7, shortVideo: 0.25, longVideo: 0.05 },
  imageMegapixels: 12,
  shortVideoSeconds: 30,
  longVideoSeconds: 600,
};

/** One pool's settings as the chart ships them (charts/media-upload/values.yaml). */
export interface PoolDefaults {
  cpuRequest: number;
  memoryRequestMiB: number;
  minReplicas: number;
  maxReplicas: number;
  /** HPA target utilisation, 0–1. */
  targetCpu: number;
  /** KEDA targetQueueSize (worker pools only). */
  targetQueueSize?: number;
  /** Activities one pod runs at once (LIGHT_/VIDEO_MAX_CONCURRENT_ACTIVITIES). */
  concurrency?: number;
}

export interface ChartDefaults {
  api: PoolDefaults;
  light: PoolDefaults;
  video: PoolDefaults;
  clamd: { replicas: number; cpuRequest: number; memoryRequestMiB: number };
  /** DB_POOL_SIZE of an API process. */
  dbPoolSize: number;
  /** Connections of a worker process (light or video): WORKER_DB_POOL_SIZE, not DB_POOL_SIZE. */
  workerDbPoolSize: number;
}

/** Published limits the model compares against; `source` is cited in docs/capacity.md. */
export const limits = {
  temporalCloudAps: { value: 500, source: 'https://docs.temporal.io/cloud/limits (Actions per second, default per Namespace)' },
  temporalCloudRps: { value: 2000, source: 'https://docs.temporal.io/cloud/limits (Requests per second, default per Namespace)' },
  s3WritesPerPrefix: { value: 3500, source: 'https://docs.aws.amazon.com/AmazonS3/latest/userguide/optimizing-performance.html (PUT/COPY/POST/DELETE per second per partitioned prefix)' },
  s3ReadsPerPrefix: { value: 5500, source: 'https://docs.aws.amazon.com/AmazonS3/latest/userguide/optimizing-performance.html (GET/HEAD per second per partitioned prefix)' },
  /**
   * Activity heartbeats reach the server at most every 80% of the heartbeat timeout (24 s for a
   * transcode's 30 s), capped by the workers' maxHeartbeatThrottleInterval: the cap wins.
   */
  heartbeatEverySeconds: {
    value: Math.min(0.8 * 30, MAX_HEARTBEAT_THROTTLE_SECONDS),
    source: `the SDK's heartbeat throttle, 80% of the 30 s heartbeat timeout, capped by the workers' maxHeartbeatThrottleInterval of ${MAX_HEARTBEAT_THROTTLE_SECONDS} s (services/worker/worker.ts)`,
  },
  /** History shards of Temporal's own Helm chart; fixed when a cluster is created. */
  historyShards: { value: 512, source: 'temporalio/helm-charts values.yaml `server.config.numHistoryShards`' },
} as const;

/**
 * Assumptions of the model that are not measured: written out so that a reader can disagree.
 * A worker pool is planned at its HPA target utilisation of its CPU request.
 */
export const assumptions = {
  /** The backlog one light pod should clear in this many seconds (KEDA targetQueueSize). */
  lightBacklogSeconds: 10,
  /** State transitions per second per history shard at the peak kept below this (a planning margin, not a Temporal figure). */
  transitionsPerShard: 10,
  /** Replica ceilings are the peak need times this. */
  headroom: 1.25,
  /** The video pool is sized for the daily average times this: a peak's transcodes queue and drain afterwards. */
  videoAverageFactor: 2,
  /**
   * Cores per clamd replica planned here: the chart requests 250m, but every replica holds the
   * whole signature set (about 1 GiB) in memory, so fewer, bigger replicas cost far less memory.
   */
  clamdCoresPerReplica: 2,
};

type Kind = 'image' | 'shortVideo' | 'longVideo';

/** The `action` metric's label for activity heartbeats that reached the server. */
export const heartbeatAction = 'grpc_RecordActivityTaskHeartbeat';
const kinds: Kind[] = ['image', 'shortVideo', 'longVideo'];

/**
 * Which roles' CPU (and S3 traffic) grows with the size of the media: the rest is per upload.
 * Images: the light worker (sharp), clamd (scan), S3 (bytes). Videos: the video worker
 * (ffmpeg), clamd, S3.
 */
const scalesWithSize: Record<'image' | 'video', readonly string[]> = {
  image: ['light worker', 'clamd', 's3'],
  video: ['video worker', 'clamd', 's3'],
};

/** A number with the measured figure and the arithmetic it comes from (a line of docs/capacity.md). */
export interface Figure {
  value: number;
  /** How it was computed, with the measured inputs written out. */
  from: string;
}

export interface PoolPlan {
  /** CPU cores the pool uses at the peak and at the daily average. */
  coresPeak: Figure;
  coresAverage: Figure;
  replicasPeak: Figure;
  minReplicas: Figure;
  maxReplicas: Figure;
  memoryRequestMiB: Figure;
  targetQueueSize?: Figure;
}

export interface CapacityPlan {
  traffic: Traffic;
  averagePerSecond: number;
  /** Per kind: actions per upload (history count, plus heartbeats for videos). */
  actionsPerUpload: Record<Kind, Figure>;
  actionsPerUploadMix: Figure;
  apsPeak: Figure;
  apsAverage: Figure;
  actionsPerDay: Figure;
  stateTransitionsPeak: Figure | null;
  historyShards: Figure | null;
  light: PoolPlan;
  video: PoolPlan;
  api: PoolPlan;
  clamd: { coresPeak: Figure; replicas: Figure };
  postgres: { connections: Figure; transactionsPeak: Figure; rowsWrittenPeak: Figure };
  s3: { writesPeak: Figure; readsPeak: Figure; writePrefixes: Figure; readPrefixes: Figure; bytesInPeak: Figure; bytesOutPeak: Figure };
}

const f = (value: number, from: string): Figure => ({ value, from });
const r = (v: number, d = 2) => Number(v.toFixed(d)).toString();

/** CPU-seconds of `role` for one upload of `kind` of the traffic's typical size. */
function cpuPerUpload(c: CostFigures, t: Traffic, kind: Kind, role: string): { seconds: number; from: string } {
  const base = kind === 'image' ? c.image : c.video;
  const measured = base.cpuSeconds[role] ?? 0;
  const size = kind === 'image' ? t.imageMegapixels : kind === 'shortVideo' ? t.shortVideoSeconds : t.longVideoSeconds;
  if (scalesWithSize[kind === 'image' ? 'image' : 'video'].includes(role)) {
    const perUnit = measured / base.unitsPerUpload;
    return { seconds: perUnit * size, from: `${r(perUnit, 4)} s/${base.unit} × ${size}` };
  }
  return { seconds: measured, from: `${r(measured, 4)} s/upload` };
}

/** Mix-weighted CPU-seconds per upload of `role`, with the arithmetic. */
function cpuMix(c: CostFigures, t: Traffic, role: string): { seconds: number; from: string } {
  const parts = kinds.map((k) => ({ share: t.mix[k], ...cpuPerUpload(c, t, k, role) }));
  return {
    seconds: parts.reduce((a, p) => a + p.share * p.seconds, 0),
    from: parts.map((p) => `${p.share} × (${p.from})`).join(' + '),
  };
}

/** S3 requests of one upload of `kind`: video PUTs (HLS segments) grow with the duration, the rest is per upload. */
function s3PerUpload(c: CostFigures, t: Traffic, kind: Kind, classOf: (type: string) => boolean): number {
  const base = kind === 'image' ? c.image : c.video;
  const scale = kind === 'image' ? 1 : (kind === 'shortVideo' ? t.shortVideoSeconds : t.longVideoSeconds) / base.unitsPerUpload;
  return Object.entries(base.s3Requests)
    .filter(([type]) => classOf(type))
    .reduce((a, [type, n]) => a + (kind !== 'image' && type === 'PUT' ? n * scale : n), 0);
}

/** S3 write-class requests (AWS's PUT/COPY/POST/DELETE limit); everything else is read-class (GET/HEAD/LIST). */
export const isS3Write = (type: string) => ['PUT', 'POST', 'COPY', 'DELETE'].includes(type.toUpperCase());

function poolPlan(name: string, role: string, c: CostFigures, t: Traffic, d: PoolDefaults, average: number, sizeFor: 'peak' | 'average', peakRss: number | undefined): PoolPlan {
  const cpu = cpuMix(c, t, role);
  const perPod = d.cpuRequest * d.targetCpu;
  const coresPeak = t.peakPerSecond * cpu.seconds;
  const coresAverage = average * cpu.seconds;
  const replicasPeak = Math.ceil(coresPeak / perPod);
  const replicasAverage = Math.ceil(coresAverage / perPod);
  const planFor = sizeFor === 'peak' ? replicasPeak : Math.ceil(replicasAverage * assumptions.videoAverageFactor);
  return {
    coresPeak: f(coresPeak, `${t.peakPerSecond}/s × ${r(cpu.seconds, 3)} CPU-s per upload [${cpu.from}]`),
    coresAverage: f(coresAverage, `${r(average)}/s × ${r(cpu.seconds, 3)} CPU-s per upload`),
    replicasPeak: f(replicasPeak, `${r(coresPeak)} cores ÷ (${d.cpuRequest} CPU request × ${d.targetCpu} target)`),
    minReplicas: f(Math.max(d.minReplicas, replicasAverage), `daily average ${r(coresAverage)} cores ÷ ${r(perPod)} per pod = ${replicasAverage}, at least the chart's ${d.minReplicas}`),
    maxReplicas: f(
      Math.ceil(planFor * assumptions.headroom),
      sizeFor === 'peak'
        ? `${replicasPeak} pods at the peak × ${assumptions.headroom} headroom (chart default ${d.maxReplicas})`
        : `${replicasAverage} pods for the daily average × ${assumptions.videoAverageFactor} (transcodes of a peak queue) × ${assumptions.headroom} headroom (chart default ${d.maxReplicas})`,
    ),
    memoryRequestMiB: memoryRequest(name, d.memoryRequestMiB, peakRss),
  };
}

/**
 * A pod's memory request: the chart's, or the measured peak resident set of the process plus a
 * quarter, rounded up to 128 MiB, when that is more (the process alone: ffmpeg children of the
 * video worker are not in it).
 */
function memoryRequest(name: string, chartMiB: number, peakRss: number | undefined): Figure {
  if (peakRss === undefined || !Number.isFinite(peakRss)) return f(chartMiB, `chart request ${chartMiB} MiB (no peak RSS measured)`);
  const needed = Math.ceil((peakRss * 1.25) / 128) * 128;
  return needed > chartMiB
    ? f(needed, `measured peak RSS of one ${name} process ${r(peakRss, 0)} MiB × 1.25, rounded up to 128 MiB: above the chart's ${chartMiB} MiB, raise it`)
    : f(chartMiB, `chart request ${chartMiB} MiB; measured peak RSS of one ${name} process ${r(peakRss, 0)} MiB`);
}

/**
 * The sizing model (docs/capacity.md): measured per-upload cost × target traffic, against the
 * chart's defaults and the published limits. Pure: the same figures give the same plan.
 */
export function capacityPlan(c: CostFigures, chart: ChartDefaults, t: Traffic = targetTraffic): CapacityPlan {
  const average = t.uploadsPerDay / 86_400;
  // Heartbeats are billable when they reach the server but are not in a history: the server's
  // `action` metric counts them per upload. The SDK throttles them (limits.heartbeatEverySeconds),
  // so their number follows how long an activity runs (wall-clock on a pod),
  // not the video's duration: the bench's run (several videos at once on a small machine) is no
  // guide to that. A video longer than the measured clip adds the transcode's extra run time
  // on a pod (video-worker CPU-seconds ÷ the pod's cores) ÷ the throttle; without a measurement, the
  // whole transcode is estimated that way.
  const measuredHeartbeats = (k: KindCost) => k.serverActionsByType?.[heartbeatAction];
  const heartbeats = (kind: Kind): { n: number; from: string } => {
    if (kind === 'image') {
      const m = measuredHeartbeats(c.image);
      return m === undefined ? { n: 0, from: 'heartbeats not measured' } : { n: m, from: `${r(m)} heartbeats (measured)` };
    }
    const seconds = kind === 'shortVideo' ? t.shortVideoSeconds : t.longVideoSeconds;
    const every = limits.heartbeatEverySeconds.value;
    const runSeconds = (videoSeconds: number) => (((c.video.cpuSeconds['video worker'] ?? 0) / c.video.unitsPerUpload) * videoSeconds) / chart.video.cpuRequest;
    const m = measuredHeartbeats(c.video);
    if (m !== undefined) {
      const extra = runSeconds(Math.max(0, seconds - c.video.unitsPerUpload)) / every;
      return {
        n: m + extra,
        from: `${r(m)} heartbeats per ${r(c.video.unitsPerUpload)} s video (measured) + ${r(extra)} for ${r(Math.max(0, seconds - c.video.unitsPerUpload))} s more video (${r(runSeconds(Math.max(0, seconds - c.video.unitsPerUpload)), 0)} s more transcoding on a ${chart.video.cpuRequest}-core pod ÷ one heartbeat per ${every} s)`,
      };
    }
    const transcodeSeconds = runSeconds(seconds);
    return { n: transcodeSeconds / every, from: `${r(transcodeSeconds / every)} heartbeats (estimated, ${seconds} s of video)` };
  };
  const withHeartbeats = (kind: Kind, k: KindCost, label: string): Figure => {
    const hb = heartbeats(kind);
    return f(k.actions + hb.n, `${r(k.actions)} per ${label} from ${k.uploads} histories + ${hb.from}`);
  };
  const actionsPerUpload: Record<Kind, Figure> = {
    image: withHeartbeats('image', c.image, 'image'),
    shortVideo: withHeartbeats('shortVideo', c.video, 'video'),
    longVideo: withHeartbeats('longVideo', c.video, 'video'),
  };
  const mixActions = kinds.reduce((a, k) => a + t.mix[k] * actionsPerUpload[k].value, 0);
  const mixFrom = kinds.map((k) => `${t.mix[k]} × ${r(actionsPerUpload[k].value)}`).join(' + ');
  const transitions = c.image.stateTransitions !== null && c.video.stateTransitions !== null ? t.mix.image * c.image.stateTransitions + (1 - t.mix.image) * c.video.stateTransitions : null;
  const transitionsPeak = transitions === null ? null : transitions * t.peakPerSecond;

  const light = poolPlan('light worker', 'light worker', c, t, chart.light, average, 'peak', c.image.peakRssMiB['light worker']);
  const lightCpu = cpuMix(c, t, 'light worker').seconds;
  // Tasks on the light queue per upload: its workflow tasks and the activities it runs.
  const lightTasks = t.mix.image * lightTaskCount(c.image) + (1 - t.mix.image) * lightTaskCount(c.video, true);
  const podTasksPerSecond = (chart.light.cpuRequest * chart.light.targetCpu) / (lightCpu / lightTasks);
  light.targetQueueSize = f(
    Math.max(1, Math.round(podTasksPerSecond * assumptions.lightBacklogSeconds)),
    `one pod clears ${r(podTasksPerSecond)} tasks/s (${r(lightTasks, 1)} tasks per upload share ${r(lightCpu, 3)} CPU-s) × ${assumptions.lightBacklogSeconds} s of backlog (chart default ${chart.light.targetQueueSize})`,
  );
  const video = poolPlan('video worker', 'video worker', c, t, chart.video, average, 'average', c.video.peakRssMiB['video worker']);
  video.targetQueueSize = f(
    chart.video.concurrency ?? 1,
    `one transcode runs minutes (${r(cpuPerUpload(c, t, 'longVideo', 'video worker').seconds / chart.video.cpuRequest, 0)} s for a long video): one waiting task per replica (VIDEO_MAX_CONCURRENT_ACTIVITIES ${chart.video.concurrency ?? 1}; chart default ${chart.video.targetQueueSize})`,
  );
  const api = poolPlan('API', 'api', c, t, chart.api, average, 'peak', c.image.peakRssMiB.api);

  const clamdCpu = cpuMix(c, t, 'clamd');
  const clamdPeak = t.peakPerSecond * clamdCpu.seconds;
  const clamdReplicas = Math.max(chart.clamd.replicas, Math.ceil(clamdPeak / assumptions.clamdCoresPerReplica));

  const workerPods = light.maxReplicas.value + video.maxReplicas.value;
  const pgMix = (key: 'transactions' | 'rowsWritten') => t.mix.image * sumDb(c.image, key) + (1 - t.mix.image) * sumDb(c.video, key);

  const s3Mix = (write: boolean) => kinds.reduce((a, k) => a + t.mix[k] * s3PerUpload(c, t, k, (type) => isS3Write(type) === write), 0);
  const writes = s3Mix(true) * t.peakPerSecond;
  const reads = s3Mix(false) * t.peakPerSecond;
  const bytes = (dir: 'received' | 'sent') => {
    if (!c.image.s3Bytes || !c.video.s3Bytes) return 0;
    return t.mix.image * (c.image.s3Bytes[dir] / c.image.unitsPerUpload) * t.imageMegapixels
      + t.mix.shortVideo * (c.video.s3Bytes[dir] / c.video.unitsPerUpload) * t.shortVideoSeconds
      + t.mix.longVideo * (c.video.s3Bytes[dir] / c.video.unitsPerUpload) * t.longVideoSeconds;
  };

  return {
    traffic: t,
    averagePerSecond: average,
    actionsPerUpload,
    actionsPerUploadMix: f(mixActions, mixFrom),
    apsPeak: f(mixActions * t.peakPerSecond, `${t.peakPerSecond} uploads/s × ${r(mixActions)} actions; ${r((mixActions * t.peakPerSecond) / limits.temporalCloudAps.value)}× the ${limits.temporalCloudAps.value} APS default`),
    apsAverage: f(mixActions * average, `${r(average)} uploads/s × ${r(mixActions)} actions; ${r((mixActions * average) / limits.temporalCloudAps.value)}× the ${limits.temporalCloudAps.value} APS default`),
    actionsPerDay: f(mixActions * t.uploadsPerDay, `${t.uploadsPerDay} uploads × ${r(mixActions)}`),
    stateTransitionsPeak: transitionsPeak === null ? null : f(transitionsPeak, `${t.peakPerSecond}/s × ${r(transitions!, 1)} transitions per upload (measured: image ${r(c.image.stateTransitions!, 1)}, video ${r(c.video.stateTransitions!, 1)})`),
    historyShards:
      transitionsPeak === null
        ? null
        : f(
            Math.max(limits.historyShards.value, 2 ** Math.ceil(Math.log2(transitionsPeak / assumptions.transitionsPerShard))),
            `${r(transitionsPeak, 0)} transitions/s ÷ ${assumptions.transitionsPerShard} per shard, rounded up to a power of two, at least the Temporal chart's ${limits.historyShards.value}`,
          ),
    light,
    video,
    api,
    clamd: {
      coresPeak: f(clamdPeak, `${t.peakPerSecond}/s × ${r(clamdCpu.seconds, 3)} CPU-s [${clamdCpu.from}]`),
      replicas: f(
        clamdReplicas,
        `${r(clamdPeak)} cores ÷ ${assumptions.clamdCoresPerReplica} cores per replica (chart request ${chart.clamd.cpuRequest}: set clamd.resources.requests.cpu to ${assumptions.clamdCoresPerReplica}), at least the chart's ${chart.clamd.replicas}`,
      ),
    },
    postgres: {
      connections: f(
        api.maxReplicas.value * chart.dbPoolSize + workerPods * chart.workerDbPoolSize,
        `${api.maxReplicas.value} API pods × DB_POOL_SIZE ${chart.dbPoolSize} + (${light.maxReplicas.value} light + ${video.maxReplicas.value} video pods) × ${chart.workerDbPoolSize} per worker, all at their ceilings`,
      ),
      transactionsPeak: f(pgMix('transactions') * t.peakPerSecond, `${t.peakPerSecond}/s × ${r(pgMix('transactions'), 1)} transactions per upload (measured: image ${r(sumDb(c.image, 'transactions'), 1)}, video ${r(sumDb(c.video, 'transactions'), 1)})`),
      rowsWrittenPeak: f(pgMix('rowsWritten') * t.peakPerSecond, `${t.peakPerSecond}/s × ${r(pgMix('rowsWritten'), 1)} rows per upload (measured: image ${r(sumDb(c.image, 'rowsWritten'), 1)}, video ${r(sumDb(c.video, 'rowsWritten'), 1)})`),
    },
    s3: {
      writesPeak: f(writes, `${t.peakPerSecond}/s × ${r(s3Mix(true), 1)} PUT/COPY/POST/DELETE per upload (measured image ${r(s3PerUpload(c, t, 'image', isS3Write), 1)}; video PUTs scaled by duration)`),
      readsPeak: f(reads, `${t.peakPerSecond}/s × ${r(s3Mix(false), 1)} GET/HEAD/LIST per upload`),
      writePrefixes: f(Math.ceil(writes / limits.s3WritesPerPrefix.value), `${r(writes, 0)} ÷ ${limits.s3WritesPerPrefix.value} per partitioned prefix`),
      readPrefixes: f(Math.ceil(reads / limits.s3ReadsPerPrefix.value), `${r(reads, 0)} ÷ ${limits.s3ReadsPerPrefix.value} per partitioned prefix`),
      bytesInPeak: f(bytes('received') * t.peakPerSecond, 'bytes S3 received per upload (measured per megapixel / video second) × size × peak rate'),
      bytesOutPeak: f(bytes('sent') * t.peakPerSecond, 'bytes S3 sent per upload (measured per megapixel / video second) × size × peak rate'),
    },
  };
}

/** Workflow tasks plus activities on the light queue (every activity but the video worker's two). */
function lightTaskCount(k: KindCost, video = false): number {
  const wft = k.eventsByType.WorkflowTaskStarted ?? 0;
  const activities = k.eventsByType.ActivityTaskStarted ?? 0;
  return wft + activities - (video ? 2 : 0);
}

function sumDb(k: KindCost, key: 'transactions' | 'rowsWritten'): number {
  return Object.values(k.pg).reduce((a, v) => a + v[key], 0);
}

/**
 * Image uploads per second that one machine of `cores` sustains by the measured cost: its cores
 * over the CPU-seconds one image upload takes from every process on it (platform and load
 * generator alike, as in the capacity-check bench section, which runs them all on this machine).
 */
export function machineImageRate(c: CostFigures, cores: number): Figure {
  const cpu = Object.entries(c.image.cpuSeconds)
    .filter(([role]) => !role.startsWith('other'))
    .reduce((a, [, s]) => a + s, 0);
  return f(cores / cpu, `${cores} cores ÷ ${r(cpu, 3)} CPU-s per image upload (all processes, measured ${c.measuredAt})`);
}

/**
 * Least-squares slope of `y` over `x` (per unit of x); NaN with fewer than two points. The
 * capacity check reads the backlog's growth per second from it.
 */
export function slope(points: ReadonlyArray<{ x: number; y: number }>): number {
  if (points.length < 2) return Number.NaN;
  const mx = points.reduce((a, p) => a + p.x, 0) / points.length;
  const my = points.reduce((a, p) => a + p.y, 0) / points.length;
  const num = points.reduce((a, p) => a + (p.x - mx) * (p.y - my), 0);
  const den = points.reduce((a, p) => a + (p.x - mx) ** 2, 0);
  return den === 0 ? Number.NaN : num / den;
}
