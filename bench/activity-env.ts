import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { randomUUID } from 'node:crypto';
import type { ActivityDeps } from '../activities';
import { createDataSource } from '../services/shared/db/data-source';
import { MediaRepository } from '../services/shared/db/media-repository';
import type { MediaType } from '../services/shared/media-types';
import type { BenchContext } from './platform';

export interface ActivityHarness {
  deps: ActivityDeps;
  /** A fresh activity Context per call (MockActivityEnvironment), as the worker gives each attempt. */
  env(onHeartbeat?: (details: unknown) => void): MockActivityEnvironment;
  /** Inserts a media row (status PROCESSING) so the activity's metadata and rendition writes land. */
  mediaRow(mediaType: MediaType, storageKey: string, fileSize: number, mimeType: string): Promise<string>;
  close(): Promise<void>;
}

/**
 * The deps a worker builds for its activities (createWorker), on the bench stack: the
 * context's Storage and a PostgreSQL pool of our own, so activity functions can be called
 * directly in this process, outside any worker.
 */
export async function activityHarness(ctx: BenchContext): Promise<ActivityHarness> {
  const dataSource = await createDataSource(ctx.config.DATABASE_URL, 2).initialize();
  const media = new MediaRepository(dataSource);
  const deps: ActivityDeps = { storage: ctx.storage, media, buckets: { incoming: ctx.config.S3_INCOMING_BUCKET, media: ctx.config.S3_MEDIA_BUCKET } };
  const logger = new DefaultLogger('WARN');
  return {
    deps,
    env(onHeartbeat) {
      const env = new MockActivityEnvironment({ startToCloseTimeoutMs: 3_600_000, taskQueue: ctx.config.TASK_QUEUE_LIGHT }, { logger });
      if (onHeartbeat) env.on('heartbeat', onHeartbeat);
      return env;
    },
    async mediaRow(mediaType, storageKey, fileSize, mimeType) {
      const id = randomUUID();
      const now = new Date();
      await media.insert({
        id,
        userId: 'bench-activity',
        tenantId: 'default',
        projectId: null,
        batchId: null,
        mediaType,
        fileName: storageKey.split('/').pop()!,
        mimeType,
        fileSize,
        checksumSha256: null,
        status: 'PROCESSING',
        storageKey,
        uploadId: null,
        partSize: null,
        partCount: null,
        idempotencyKey: null,
        workflowId: `bench-activity/${id}`,
        expiresAt: new Date(now.getTime() + 3_600_000),
        createdAt: now,
      });
      return id;
    },
    close: () => dataSource.destroy(),
  };
}
