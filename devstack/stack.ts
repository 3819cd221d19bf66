import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { runMigrations } from '../services/shared/db/data-source';
import { createBuckets } from './buckets';
import { startClamd } from './clamd';
import { buckets, devS3Credentials } from './credentials';
import { assertPortFree, freePort } from './ports';
import { startPostgres } from './postgres';
import { startS3Server } from './s3';
import { startTemporalDevServer } from './temporal';

export interface StackPorts {
  temporal: number;
  temporalUi?: number;
  s3: number;
  postgres: number;
  clamd: number;
}

export interface StackOptions {
  dataDir: string;
  /** Fixed ports (dev) are checked first; tests pass free ports. */
  ports?: Partial<StackPorts>;
  /** Keep state across runs (dev): Temporal SQLite file, PostgreSQL data, S3 data. */
  persistent: boolean;
  /** Browser origins allowed to PUT to the incoming bucket. */
  corsOrigins?: string[];
  /** Start clamd (tests of the upload path alone may skip it). */
  clamd?: boolean;
}

/** Environment (SPEC.md §10 names) that points the API and the workers at this stack. */
export type StackEnv = Record<string, string>;

export interface Stack {
  env: StackEnv;
  urls: { temporal: string; temporalUi?: string; s3: string; postgres: string; clamd?: string };
  stop(): Promise<void>;
  restartPostgres(): Promise<void>;
}


const portEnv: Record<keyof StackPorts, string> = {
  temporal: 'DEV_TEMPORAL_PORT',
  temporalUi: 'DEV_TEMPORAL_UI_PORT',
  s3: 'DEV_S3_PORT',
  postgres: 'DEV_POSTGRES_PORT',
  clamd: 'DEV_CLAMD_PORT',
};

/**
 * The real servers the platform talks to, started from the binaries provisioned into
 * .tools/: Temporal dev server, SeaweedFS S3, embedded PostgreSQL, clamd. Logs go to
 * `<dataDir>/logs`. Anything started is stopped again if a later step fails.
 */
export async function startStack(options: StackOptions): Promise<Stack> {
  const logs = join(options.dataDir, 'logs');
  mkdirSync(logs, { recursive: true });
  const ports: StackPorts = {
    temporal: options.ports?.temporal ?? (await freePort()),
    temporalUi: options.ports?.temporalUi,
    s3: options.ports?.s3 ?? (await freePort()),
    postgres: options.ports?.postgres ?? (await freePort()),
    clamd: options.ports?.clamd ?? (await freePort()),
  };
  for (const [name, port] of Object.entries(ports) as Array<[keyof StackPorts, number | undefined]>) {
    if (port && options.ports?.[name]) await assertPortFree(port, name, portEnv[name]);
  }
  const stops: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch(() => undefined);
  };
  try {
    const [s3, pg, temporal, clamd] = await Promise.all([
      startS3Server({ dataDir: join(options.dataDir, 's3'), port: ports.s3, ...devS3Credentials, logFile: join(logs, 's3.log') }).then((s) => {
        stops.push(() => s.process.stop());
        return s;
      }),
      startPostgres({ dataDir: join(options.dataDir, 'postgres'), port: ports.postgres }).then((p) => {
        stops.push(() => p.stop());
        return p;
      }),
      startTemporalDevServer({
        port: ports.temporal,
        uiPort: ports.temporalUi,
        dbFile: options.persistent ? join(options.dataDir, 'temporal.sqlite') : undefined,
        logFile: join(logs, 'temporal.log'),
      }).then((t) => {
        stops.push(() => t.process.stop());
        return t;
      }),
      options.clamd === false
        ? Promise.resolve(undefined)
        : startClamd({ dataDir: join(options.dataDir, 'clamd'), port: ports.clamd, logFile: join(logs, 'clamd.log') }).then((c) => {
            stops.push(() => c.process.stop());
            return c;
          }),
    ]);
    await runMigrations(pg.databaseUrl);
    await createBuckets(s3.endpoint, options.corsOrigins ?? ['*']);
    const env: StackEnv = {
      DATABASE_URL: pg.databaseUrl,
      TEMPORAL_ADDRESS: temporal.address,
      TEMPORAL_NAMESPACE: 'default',
      S3_ENDPOINT: s3.endpoint,
      S3_REGION: 'us-east-1',
      S3_FORCE_PATH_STYLE: 'true',
      S3_INCOMING_BUCKET: buckets.incoming,
      S3_MEDIA_BUCKET: buckets.media,
      AWS_ACCESS_KEY_ID: devS3Credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: devS3Credentials.secretAccessKey,
      CLAMD_HOST: '127.0.0.1',
      CLAMD_PORT: String(ports.clamd),
      // Several API and worker processes share this host: their metrics listeners stay off
      // unless a caller gives each a port of its own.
      METRICS_PORT: '0',
      TEMPORAL_METRICS_PORT: '0',
    };
    return {
      env,
      urls: { temporal: temporal.address, temporalUi: temporal.uiUrl, s3: s3.endpoint, postgres: pg.databaseUrl, clamd: clamd ? `tcp://127.0.0.1:${ports.clamd}` : undefined },
      stop,
      restartPostgres: () => pg.restart(),
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
