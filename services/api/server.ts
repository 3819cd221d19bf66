import { Client, Connection } from '@temporalio/client';
import type { Server } from 'node:http';
import type { Config } from '../shared/config';
import { createDataSource } from '../shared/db/data-source';
import { MediaRepository } from '../shared/db/media-repository';
import { createLogger } from '../shared/logger';
import { createMetrics, IN_FLIGHT_STATUSES, registerRequestsInFlight, registerUploadsInFlight, startMetricsHttp } from '../shared/metrics';
import { Storage } from '../shared/storage';
import { temporalConnectionOptions } from '../shared/temporal';
import { createApp, type ApiLifecycle } from './app';
import { drainable } from './drain';
import { StatusNotifier } from './events';

export interface RunningApi {
  url: string;
  /** `/metrics` on METRICS_PORT; undefined when METRICS_PORT is 0. */
  metricsUrl?: string;
  server: Server;
  stop(): Promise<void>;
}

/** Wires adapters into the Express app and listens; used by main.ts, `npm run dev` and tests. */
export async function startApi(config: Config, options: { host?: string; s3Credentials?: { accessKeyId: string; secretAccessKey: string } } = {}): Promise<RunningApi> {
  const log = createLogger('api', config.LOG_LEVEL);
  const dataSource = await createDataSource(config.DATABASE_URL, config.DB_POOL_SIZE, { queryTimeoutMs: config.DB_QUERY_TIMEOUT_MS }).initialize();
  const connection = await Connection.connect(temporalConnectionOptions(config));
  const temporal = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE });
  // A request that waits on S3 answers 503 within the deadline instead of holding its client.
  const storage = new Storage(config, options.s3Credentials, { callTimeoutMs: config.S3_API_TIMEOUT_MS });
  const notifier = new StatusNotifier(config.DATABASE_URL, log);
  await notifier.start();
  const media = new MediaRepository(dataSource);
  const metrics = createMetrics('api');
  registerUploadsInFlight(metrics.registry, () => media.countByStatus(IN_FLIGHT_STATUSES));
  const lifecycle: ApiLifecycle = { draining: false, inFlight: 0 };
  registerRequestsInFlight(metrics.registry, () => lifecycle.inFlight);
  const app = createApp({ config, storage, media, temporal, notifier, log, metrics, lifecycle });
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(config.PORT, options.host ?? '0.0.0.0', () => resolve(s));
    s.once('error', reject);
  });
  const { drain } = drainable(server);
  let stopping: Promise<void> | undefined;
  const metricsServer = config.METRICS_PORT
    ? await startMetricsHttp(config.METRICS_PORT, metrics.registry, () => server.listening, options.host ?? '0.0.0.0')
    : undefined;
  const port = (s: Server, fallback: number) => {
    const address = s.address();
    return typeof address === 'object' && address ? address.port : fallback;
  };
  return {
    url: `http://127.0.0.1:${port(server, config.PORT)}`,
    metricsUrl: metricsServer && `http://127.0.0.1:${port(metricsServer, config.METRICS_PORT)}/metrics`,
    server,
    /**
     * Graceful stop, within SHUTDOWN_GRACE_SECONDS of the call: fail readiness and keep
     * answering for SHUTDOWN_DRAIN_SECONDS (every response says `Connection: close`), stop
     * accepting, close each connection once its requests are answered, and at the grace
     * period close what is left (event streams: clients reconnect). A second call (SIGINT
     * after SIGTERM) waits for the first.
     */
    stop() {
      stopping ??= (async () => {
        lifecycle.draining = true;
        await drain({ drainMs: config.SHUTDOWN_DRAIN_SECONDS * 1000, closeAllAt: Date.now() + config.SHUTDOWN_GRACE_SECONDS * 1000 });
        metricsServer?.closeAllConnections();
        await new Promise<void>((resolve) => (metricsServer ? metricsServer.close(() => resolve()) : resolve()));
        await notifier.stop();
        await connection.close();
        await dataSource.destroy();
        storage.client.destroy();
      })();
      return stopping;
    },
  };
}
