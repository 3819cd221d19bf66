import { readFileSync } from 'node:fs';
import { capacityPlan, isS3Write, machineImageRate, slope, type ChartDefaults, type CostFigures, type KindCost, type Traffic } from '../../scripts/capacity-model';
import { allCostFigures, capacityCheckOf, chartDefaults, docPath, renderCapacityDoc } from '../../scripts/capacity';

const kind = (over: Partial<KindCost>): KindCost => ({
  uploads: 10,
  ready: 10,
  unit: 'megapixel',
  unitsPerUpload: 5,
  bytesPerUpload: 4e6,
  wallSeconds: 10,
  historyEvents: 40,
  eventsByType: { WorkflowTaskStarted: 5, ActivityTaskStarted: 3 },
  actions: 10,
  actionsByKind: {},
  serverActions: null,
  serverActionsByType: {},
  stateTransitions: 20,
  s3Requests: { PUT: 6, GET: 4, COPY: 1, DELETE: 1, HEAD: 2 },
  s3Bytes: { received: 5e6, sent: 10e6 },
  pg: { media: { transactions: 20, rowsWritten: 10 } },
  cpuSeconds: { api: 0.1, 'light worker': 0.5, 'video worker': 0, temporal: 0.2, s3: 0.1, postgres: 0.05, clamd: 0.1 },
  peakRssMiB: { api: 150, 'light worker': 300, 'video worker': 200 },
  ...over,
});

const figures: CostFigures = {
  temporalKind: 'dev-server',
  measuredAt: '2026-01-01T00:00:00.000Z',
  machine: 'test',
  image: kind({}),
  video: kind({
    unit: 'second of 1080p video',
    unitsPerUpload: 10,
    actions: 12,
    eventsByType: { WorkflowTaskStarted: 6, ActivityTaskStarted: 4 },
    s3Requests: { PUT: 20, GET: 10 },
    cpuSeconds: { api: 0.2, 'light worker': 0.4, 'video worker': 20, temporal: 0.3, s3: 1, postgres: 0.1, clamd: 0.5 },
  }),
};

const chart: ChartDefaults = {
  api: { cpuRequest: 0.25, memoryRequestMiB: 256, minReplicas: 2, maxReplicas: 10, targetCpu: 0.7 },
  light: { cpuRequest: 0.5, memoryRequestMiB: 512, minReplicas: 2, maxReplicas: 10, targetCpu: 0.7, targetQueueSize: 10, concurrency: 8 },
  video: { cpuRequest: 2, memoryRequestMiB: 2048, minReplicas: 1, maxReplicas: 6, targetCpu: 0.8, targetQueueSize: 2, concurrency: 1 },
  clamd: { replicas: 2, cpuRequest: 1, memoryRequestMiB: 2048 },
  dbPoolSize: 25,
  workerDbPoolSize: 5,
};

const traffic: Traffic = {
  uploadsPerDay: 864_000,
  peakPerSecond: 100,
  mix: { image: 0.5, shortVideo: 0.5, longVideo: 0 },
  imageMegapixels: 10,
  shortVideoSeconds: 20,
  longVideoSeconds: 600,
};

describe('capacityPlan', () => {
  const plan = capacityPlan(figures, chart, traffic);

  it('weights actions per upload by the mix and adds transcode heartbeats to videos', () => {
    // 20 s of video: 2 CPU-s/s × 20 s ÷ 2 cores = 20 s of transcoding → one heartbeat per 2 s (the workers' throttle cap).
    expect(plan.actionsPerUpload.image.value).toBe(10);
    expect(plan.actionsPerUpload.shortVideo.value).toBeCloseTo(12 + 20 / 2, 6);
    expect(plan.actionsPerUploadMix.value).toBeCloseTo(0.5 * 10 + 0.5 * (12 + 20 / 2), 6);
    expect(plan.apsPeak.value).toBeCloseTo(100 * plan.actionsPerUploadMix.value, 6);
    expect(plan.averagePerSecond).toBe(10);
    expect(plan.apsAverage.value).toBeCloseTo(10 * plan.actionsPerUploadMix.value, 6);
  });

  it('adds the heartbeats the server counted per upload, and for a longer video its extra transcode time at the SDK heartbeat throttle', () => {
    const measured = capacityPlan(
      { ...figures, image: { ...figures.image, serverActionsByType: { grpc_RecordActivityTaskHeartbeat: 3 } }, video: { ...figures.video, serverActionsByType: { grpc_RecordActivityTaskHeartbeat: 5 } } },
      chart,
      traffic,
    );
    expect(measured.actionsPerUpload.image.value).toBe(13);
    // 5 heartbeats per 10 s video, + 10 s more video: 2 CPU-s/s × 10 s ÷ 2 cores = 10 s more
    // transcoding, one heartbeat per 2 s (the workers' throttle cap), not 0.5/s × 20 s.
    expect(measured.actionsPerUpload.shortVideo.value).toBeCloseTo(12 + 5 + 10 / 2, 6);
  });

  it('grows a long video\'s heartbeats with its transcode time on a pod, not with the bench run\'s heartbeat rate', () => {
    const measured = capacityPlan(
      { ...figures, video: { ...figures.video, serverActionsByType: { grpc_RecordActivityTaskHeartbeat: 20 } } },
      chart,
      { ...traffic, mix: { image: 0, shortVideo: 0, longVideo: 1 } },
    );
    // 600 s of video: 20 measured + 590 s × 2 CPU-s/s ÷ 2 cores ÷ 2 s = 327, where 2/s × 600 s would say 1,212.
    expect(measured.actionsPerUpload.longVideo.value).toBeCloseTo(12 + 20 + 590 / 2, 6);
    expect(measured.actionsPerUpload.longVideo.value).toBeLessThan(12 + (20 / 10) * 600);
  });

  it('raises a memory request below the measured peak resident set', () => {
    const heavy = capacityPlan({ ...figures, image: { ...figures.image, peakRssMiB: { ...figures.image.peakRssMiB, 'light worker': 600 } } }, chart, traffic);
    expect(heavy.light.memoryRequestMiB.value).toBe(768);
    expect(plan.light.memoryRequestMiB.value).toBe(512);
  });

  it('scales the light worker by megapixels for images and per upload for videos, and sizes pods at the HPA target', () => {
    // image: 0.5 CPU-s / 5 MP × 10 MP = 1 s; video: 0.4 s per upload.
    expect(plan.light.coresPeak.value).toBeCloseTo(100 * (0.5 * 1 + 0.5 * 0.4), 6);
    expect(plan.light.replicasPeak.value).toBe(Math.ceil(70 / 0.35));
    expect(plan.light.maxReplicas.value).toBe(Math.ceil(200 * 1.25));
    expect(plan.light.minReplicas.value).toBe(Math.ceil(7 / 0.35));
  });

  it('sizes the video pool for the daily average, scaled by video seconds', () => {
    // video: 20 CPU-s / 10 s × 20 s = 40 s per short video; images 0 → 20 CPU-s per upload on average.
    expect(plan.video.coresAverage.value).toBeCloseTo(10 * 20, 6);
    expect(plan.video.minReplicas.value).toBe(Math.ceil(200 / 1.6));
    expect(plan.video.maxReplicas.value).toBe(Math.ceil(Math.ceil(200 / 1.6) * 2 * 1.25));
  });

  it('splits S3 requests into write and read classes, scales video PUTs by duration, and divides by the per-prefix limits', () => {
    expect(['PUT', 'COPY', 'DELETE', 'POST'].every(isS3Write)).toBe(true);
    expect(['GET', 'HEAD', 'LIST'].some(isS3Write)).toBe(false);
    // image writes 8, video PUTs 20 × 20 s / 10 s = 40.
    expect(plan.s3.writesPeak.value).toBeCloseTo(100 * (0.5 * 8 + 0.5 * 40), 6);
    expect(plan.s3.readsPeak.value).toBeCloseTo(100 * (0.5 * 6 + 0.5 * 10), 6);
    expect(plan.s3.writePrefixes.value).toBe(1);
  });

  it('counts PostgreSQL connections of every pod at its ceiling (API: DB_POOL_SIZE, workers: their own pool of 5) and writes at the peak', () => {
    expect(plan.postgres.connections.value).toBe(plan.api.maxReplicas.value * 25 + (plan.light.maxReplicas.value + plan.video.maxReplicas.value) * 5);
    expect(plan.postgres.transactionsPeak.value).toBeCloseTo(100 * 20, 6);
  });

  it('plans clamd by its CPU at the peak, in replicas of the planned size', () => {
    // image 0.1 / 5 × 10 = 0.2 s; video 0.5 / 10 × 20 = 1 s.
    expect(plan.clamd.coresPeak.value).toBeCloseTo(100 * (0.5 * 0.2 + 0.5 * 1), 6);
    expect(plan.clamd.replicas.value).toBe(30);
  });

  it('picks history shards as a power of two, at least 512', () => {
    expect(plan.stateTransitionsPeak?.value).toBeCloseTo(2000, 6);
    expect(plan.historyShards?.value).toBe(512);
    const busy = capacityPlan({ ...figures, image: { ...figures.image, stateTransitions: 200 }, video: { ...figures.video, stateTransitions: 200 } }, chart, traffic);
    expect(busy.historyShards?.value).toBe(2048);
  });

  it('shows the measured figure each number comes from', () => {
    expect(plan.light.coresPeak.from).toContain('0.1 s/megapixel × 10');
    expect(plan.actionsPerUpload.image.from).toContain('10 per image from 10 histories');
  });
});

describe('machineImageRate and slope', () => {
  it('divides the cores by the CPU of one image upload over every process', () => {
    // 0.1 + 0.5 + 0 + 0.2 + 0.1 + 0.05 + 0.1 = 1.05 CPU-s per image.
    expect(machineImageRate(figures, 2).value).toBeCloseTo(2 / 1.05, 6);
  });

  it('fits the growth per second of a series', () => {
    expect(slope([{ x: 0, y: 1 }, { x: 10, y: 21 }, { x: 20, y: 41 }])).toBeCloseTo(2, 9);
    expect(slope([{ x: 0, y: 5 }, { x: 10, y: 5 }])).toBe(0);
    expect(slope([{ x: 0, y: 5 }])).toBeNaN();
  });
});

describe('docs/capacity.md', () => {
  it('is what `npm run capacity` makes of the newest cost figures (rerun it after the bench)', () => {
    const [latest, ...others] = allCostFigures();
    const doc = renderCapacityDoc(latest!.file, latest!.figures, chartDefaults(), capacityCheckOf(latest!.figures.temporalKind), others.map((o) => o.figures));
    expect(readFileSync(docPath, 'utf8')).toBe(doc);
  });
});
