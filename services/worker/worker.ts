import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { existsSync } from 'node:fs';
import { Client } from '@temporalio/client';
import { createActivities } from '../../activities';
import { createDocumentActivities } from '../../activities/documents';
import { createLifecycleActivities } from '../../activities/lifecycle';
import { createWebhookActivities } from '../../activities/webhooks';
import { createImageActivities, createScanActivities, createVideoActivities } from '../../activities/processing';
import { presentOptions } from '../shared/media-presenter';
import { ClamdScanner } from '../shared/scanner';
import { createExiftoolScrubber } from '../shared/media/private-metadata';
import type { Config } from '../shared/config';
import { createDataSource } from '../shared/db/data-source';
import { WORKER_DB_POOL_SIZE } from '../shared/db/pool-size';
import { MAX_HEARTBEAT_THROTTLE_SECONDS } from './heartbeat';
import { MediaRepository } from '../shared/db/media-repository';
import { createWorkerMetrics, type WorkerMetrics } from '../shared/metrics';
import { Storage } from '../shared/storage';
import { temporalConnectionOptions } from '../shared/temporal';
import { ensureCleanupSchedule } from './cleanup-schedule';
import { activityObservability } from './activity-observability';
import { reportRequestedCancellation } from './cancellation';

export type WorkerKind = 'light' | 'video';

export interface WorkerHandle {
  worker: Worker;
  /** Runs until shutdown; resolves when the worker has drained. */
  run(): Promise<void>;
  close(): Promise<void>;
}

export interface CreateWorkerOptions {
  /** Prebuilt workflow bundle (production image, tests); otherwise bundled from source. */
  workflowBundlePath?: string;
  s3Credentials?: { accessKeyId: string; secretAccessKey: string };
  /** Where activity durations and upload outcomes are recorded (run.ts serves it on METRICS_PORT). */
  metrics?: WorkerMetrics;
}

/**
 * Light worker: the workflows plus orchestration, S3, DB, scan and image activities, and in
 * the same process a second Worker for document analysis on TASK_QUEUE_DOCUMENT.
 * Video worker: transcoding only, on its own queue, so each Deployment scales on its own.
 */
export async function createWorker(kind: WorkerKind, config: Config, options: CreateWorkerOptions = {}): Promise<WorkerHandle> {
  const connection = await NativeConnection.connect(temporalConnectionOptions(config));
  const dataSource = await createDataSource(config.DATABASE_URL, WORKER_DB_POOL_SIZE).initialize();
  const storage = new Storage(config, options.s3Credentials);
  const metrics = options.metrics ?? createWorkerMetrics(`${kind}-worker`, { nodeMetrics: false });
  const media = new MediaRepository(dataSource);
  const webhooks = createWebhookActivities({ endpoints: config.WEBHOOK_ENDPOINTS, media, present: presentOptions(config), taskQueue: config.TASK_QUEUE_LIGHT });
  // Image originals are published by the light worker, without their location (ExifTool).
  const scrubber = kind === 'light' ? createExiftoolScrubber() : undefined;
  const deps = { storage, media, buckets: { incoming: config.S3_INCOMING_BUCKET, media: config.S3_MEDIA_BUCKET }, metrics, publish: webhooks.publish, scrubber };
  const scanner = new ClamdScanner({ host: config.CLAMD_HOST, port: config.CLAMD_PORT });
  const scanPolicy = { maxBytes: config.CLAMD_STREAM_MAX_BYTES, oversizeAction: config.SCAN_OVERSIZE_ACTION };
  const activities =
    kind === 'light'
      ? {
          ...createActivities(deps),
          ...createLifecycleActivities(deps),
          ...webhooks.activities,
          ...createScanActivities(deps, scanner, scanPolicy),
          ...createImageActivities(deps),
        }
      : createVideoActivities(deps, {
          ffmpeg: { ffmpeg: config.FFMPEG_PATH, ffprobe: config.FFPROBE_PATH },
          preset: config.HLS_X264_PRESET,
          segmentSeconds: config.HLS_SEGMENT_SECONDS,
        });
  const bundlePath = options.workflowBundlePath;
  const workflows: Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath'> =
    bundlePath && existsSync(bundlePath) ? { workflowBundle: { codePath: bundlePath } } : { workflowsPath: require.resolve('../../workflows') };
  // Options of every Worker of the process (the document worker's too: without them a DELETE
  // waited ~20 s for the analysis it cancels, the default throttle, in a document slot).
  const common = {
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    interceptors: { activity: [activityObservability(metrics), reportRequestedCancellation] },
    shutdownGraceTime: `${config.WORKER_SHUTDOWN_GRACE_SECONDS} seconds`,
    // A cancellation reaches a running activity with the answer to a heartbeat: at most every
    // 2 s (not 80 % of the heartbeat timeout), so a DELETE stops a transcode within seconds.
    maxHeartbeatThrottleInterval: `${MAX_HEARTBEAT_THROTTLE_SECONDS} seconds`,
  } satisfies Partial<WorkerOptions>;
  const worker = await Worker.create({
    ...common,
    taskQueue: kind === 'light' ? config.TASK_QUEUE_LIGHT : config.TASK_QUEUE_VIDEO,
    ...(kind === 'light' ? workflows : {}),
    activities,
    maxConcurrentActivityTaskExecutions: kind === 'light' ? config.LIGHT_MAX_CONCURRENT_ACTIVITIES : config.VIDEO_MAX_CONCURRENT_ACTIVITIES,
  });
  // Documents: the light worker process polls their queue too, with a concurrency of its own,
  // so tasks beyond it wait in Temporal (not in a slot, not against their timeouts).
  const documentWorker =
    kind === 'light'
      ? await Worker.create({
          ...common,
          taskQueue: config.TASK_QUEUE_DOCUMENT,
          activities: createDocumentActivities(deps, {
            timeoutMs: config.DOCUMENT_ANALYSIS_TIMEOUT_SECONDS * 1000,
            maxMemoryBytes: config.DOCUMENT_ANALYSIS_MAX_MEMORY_MB * 1024 * 1024,
            textMaxBytes: config.DOCUMENT_TEXT_MAX_BYTES,
            embeddedFileScan: { scanner, ...scanPolicy },
          }),
          maxConcurrentActivityTaskExecutions: config.DOCUMENT_MAX_CONCURRENT_ACTIVITIES,
        })
      : undefined;
  if (kind === 'light') await ensureCleanupSchedule(new Client({ connection, namespace: config.TEMPORAL_NAMESPACE }), config);
  const stopAll = () => {
    for (const w of [worker, documentWorker]) if (w?.getState() === 'RUNNING') w.shutdown();
  };
  const release = async () => {
    await dataSource.destroy().catch(() => undefined);
    await connection.close().catch(() => undefined);
    storage.client.destroy();
    await scrubber?.end().catch(() => undefined);
  };
  return {
    worker,
    async run() {
      const runs = [worker.run(), documentWorker?.run()];
      try {
        await Promise.all(runs);
      } catch (err) {
        // One Worker failed: the process stops polling both, each after draining.
        stopAll();
        await Promise.allSettled(runs);
        throw err;
      } finally {
        await release();
      }
    },
    async close() {
      stopAll();
    },
  };
}
