import { Client, Connection } from '@temporalio/client';
import type { Server } from 'node:http';
import type { Config } from '../shared/config';
import { createDataSource } from '../shared/db/data-source';
import { MediaRepository } from '../shared/db/media-repository';
import { createLogger } from '../shared/logger';
import { createMetrics, IN_FLIGHT_STATUSES, registerUploadsInFlight, startMetricsHttp } from '../shared/metrics';
import { Storage } from '../shared/storage';
import { temporalConnectionOptions } from '../shared/temporal';
import { createApp } from './app';
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
  const dataSource = await createDataSource(config.DATABASE_URL, config.DB_POOL_SIZE).initialize();
  const connection = await Connection.connect(temporalConnectionOptions(config));
  const temporal = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE });
  const storage = new Storage(config, options.s3Credentials);
  const notifier = new StatusNotifier(config.DATABASE_URL, log);
  await notifier.start();
  const media = new MediaRepository(dataSource);
  const metrics = createMetrics('api');
  registerUploadsInFlight(metrics.registry, () => media.countByStatus(IN_FLIGHT_STATUSES));
  const app = createApp({ config, storage, media, temporal, notifier, log, metrics });
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(config.PORT, options.host ?? '0.0.0.0', () => resolve(s));
    s.once('error', reject);
  });
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
    async stop() {
      server.closeAllConnections();
      metricsServer?.closeAllConnections();
      await Promise.all([server, metricsServer].map((s) => s && new Promise<void>((resolve) => s.close(() => resolve()))));
      await notifier.stop();
      await connection.close();
      await dataSource.destroy();
      storage.client.destroy();
    },
  };
}
