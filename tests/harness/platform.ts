import { Client, Connection } from '@temporalio/client';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { startApi, type RunningApi } from '../../services/api/server';
import { loadConfig, type Config } from '../../services/shared/config';
import { createDataSource } from '../../services/shared/db/data-source';
import { MediaRepository } from '../../services/shared/db/media-repository';
import { Storage } from '../../services/shared/storage';
import { createWorker, type WorkerHandle } from '../../services/worker/worker';
import { mintDevToken } from '../../scripts/token';
import { devS3Credentials } from '../../devstack/credentials';
import type { Stack } from '../../devstack/stack';
import { DefaultLogger, Runtime } from '@temporalio/worker';

// Worker state changes at INFO would drown the test output.
Runtime.install({ logger: new DefaultLogger('WARN') });

export interface StackState {
  env: Record<string, string>;
  urls: Record<string, string>;
  /** Which Temporal the stack runs (TEMPORAL_MODE; npm run test:temporal-server sets server). */
  temporal: Stack['temporal'];
  workflowBundlePath: string;
  dataDir: string;
  /** The process that owns the shared stack (SIGUSR2 restarts PostgreSQL). */
  servePid: number;
}

export function stackState(): StackState {
  const file = process.env.MEDIA_TEST_STACK;
  if (!file) throw new Error('MEDIA_TEST_STACK is not set: run integration tests through jest (tests/harness/global-setup.ts)');
  return JSON.parse(readFileSync(file, 'utf8')) as StackState;
}

export const testJwtSecret = 'integration-test-secret-0123456789abcdef';

/** Config for one test file: the shared stack plus task queues of its own. */
export function testConfig(overrides: Record<string, string> = {}): Config {
  const suffix = randomUUID().slice(0, 8);
  return loadConfig({
    ...stackState().env,
    PORT: '0',
    LOG_LEVEL: 'silent',
    JWT_SECRET: testJwtSecret,
    TASK_QUEUE_LIGHT: `light-${suffix}`,
    TASK_QUEUE_VIDEO: `video-${suffix}`,
    TASK_QUEUE_DOCUMENT: `document-${suffix}`,
    WORKER_SHUTDOWN_GRACE_SECONDS: '2',
    // Test files share one Temporal server: only the lifecycle test runs a cleanup schedule.
    CLEANUP_INTERVAL: 'off',
    ...overrides,
  });
}

export interface Platform {
  config: Config;
  api: RunningApi;
  /** Absent when the test runs the light worker in a child process it kills. */
  worker?: WorkerHandle;
  /** Absent when the test runs its own video worker (e.g. in a child process it kills). */
  videoWorker?: WorkerHandle;
  storage: Storage;
  media: MediaRepository;
  temporal: Client;
  token(userId: string): Promise<string>;
  /** fetch against the API with a bearer token for `userId`. */
  call(userId: string, path: string, init?: { method?: string; body?: unknown; headers?: Record<string, string> }): Promise<{ status: number; body: any; headers: Headers }>;
  stop(): Promise<void>;
}

/** The API and a light worker in this process, on the shared real stack. */
export async function startPlatform(overrides: Record<string, string> = {}, options: { videoWorker?: boolean; lightWorker?: boolean } = {}): Promise<Platform> {
  const config = testConfig(overrides);
  const api = await startApi(config, { host: '127.0.0.1', s3Credentials: devS3Credentials });
  const worker =
    options.lightWorker === false
      ? undefined
      : await createWorker('light', config, { workflowBundlePath: stackState().workflowBundlePath, s3Credentials: devS3Credentials });
  const videoWorker = options.videoWorker === false ? undefined : await createWorker('video', config, { s3Credentials: devS3Credentials });
  const running = Promise.all([worker?.run(), videoWorker?.run()]);
  const dataSource = await createDataSource(config.DATABASE_URL, 2).initialize();
  const connection = await Connection.connect({ address: config.TEMPORAL_ADDRESS });
  const temporal = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE });
  const storage = new Storage(config, devS3Credentials);
  return {
    config,
    api,
    worker,
    videoWorker,
    storage,
    media: new MediaRepository(dataSource),
    temporal,
    token: (userId) => mintDevToken(testJwtSecret, userId),
    async call(userId, path, init = {}) {
      const headers: Record<string, string> = { authorization: `Bearer ${await mintDevToken(testJwtSecret, userId)}`, ...init.headers };
      if (init.body !== undefined) headers['content-type'] ??= 'application/json';
      const res = await fetch(`${api.url}/api/v1${path}`, {
        method: init.method ?? (init.body !== undefined ? 'POST' : 'GET'),
        headers,
        body: init.body === undefined ? undefined : typeof init.body === 'string' ? init.body : JSON.stringify(init.body),
      });
      const text = await res.text();
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // not JSON: keep the text
      }
      return { status: res.status, body, headers: res.headers };
    },
    async stop() {
      await worker?.close();
      await videoWorker?.close();
      await running;
      await api.stop();
      await connection.close();
      await dataSource.destroy();
      storage.client.destroy();
    },
  };
}

/** Polls GET /media/{id} until the status is one of `statuses`. */
export async function waitForStatus(p: Platform, userId: string, mediaId: string, statuses: string[], timeoutMs = 60_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  let last: any;
  while (Date.now() < deadline) {
    const res = await p.call(userId, `/media/${mediaId}`);
    last = res.body;
    if (statuses.includes(last?.status)) return last;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`media ${mediaId} stayed ${last?.status} (wanted ${statuses.join('|')})`);
}

export const uniqueUser = (name: string) => `${name}-${randomUUID().slice(0, 8)}`;

/** Creates a session, PUTs `file` to its presigned URL and confirms it; returns the session. */
export async function uploadFile(p: Platform, user: string, file: Buffer, fileType: string, mediaType: string, fileName = 'f') {
  const res = await p.call(user, '/media/upload-session', { body: { fileName, fileType, fileSize: file.length, mediaType } });
  expect(res.status).toBe(201);
  const put = await fetch(res.body.upload.url, { method: 'PUT', body: file, headers: res.body.upload.headers });
  expect(put.status).toBe(200);
  expect((await p.call(user, `/media/${res.body.mediaId}/complete`, { body: {} })).status).toBe(202);
  return res.body as { mediaId: string; storageKey: string };
}
