import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { existsSync } from 'node:fs';
import { createActivities } from '../../activities';
import type { Config } from '../shared/config';
import { createDataSource } from '../shared/db/data-source';
import { MediaRepository } from '../shared/db/media-repository';
import { Storage } from '../shared/storage';
import { temporalConnectionOptions } from '../shared/temporal';

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
}

/** Light worker: the workflows plus orchestration, S3, DB, scan and image activities. */
export async function createWorker(kind: WorkerKind, config: Config, options: CreateWorkerOptions = {}): Promise<WorkerHandle> {
  const connection = await NativeConnection.connect(temporalConnectionOptions(config));
  const dataSource = await createDataSource(config.DATABASE_URL, 5).initialize();
  const storage = new Storage(config, options.s3Credentials);
  const activities = createActivities({
    storage,
    media: new MediaRepository(dataSource),
    buckets: { incoming: config.S3_INCOMING_BUCKET, media: config.S3_MEDIA_BUCKET },
  });
  const bundlePath = options.workflowBundlePath;
  const workflows: Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath'> =
    bundlePath && existsSync(bundlePath) ? { workflowBundle: { codePath: bundlePath } } : { workflowsPath: require.resolve('../../workflows') };
  const worker = await Worker.create({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: kind === 'light' ? config.TASK_QUEUE_LIGHT : config.TASK_QUEUE_VIDEO,
    ...(kind === 'light' ? workflows : {}),
    activities,
    shutdownGraceTime: `${config.WORKER_SHUTDOWN_GRACE_SECONDS} seconds`,
  });
  const release = async () => {
    await dataSource.destroy().catch(() => undefined);
    await connection.close().catch(() => undefined);
    storage.client.destroy();
  };
  return {
    worker,
    async run() {
      try {
        await worker.run();
      } finally {
        await release();
      }
    },
    async close() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
    },
  };
}
