import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { runMigrations } from '../services/shared/db/data-source';
import { createBuckets } from './buckets';
import { startClamd } from './clamd';
import { buckets, devS3Credentials } from './credentials';
import { assertPortFree, reservePorts, retryOnPortRace, type Ports } from './ports';
import { startPostgres } from './postgres';
import { growBucketVolumes, s3InternalPortCount, startS3Server } from './s3';
import { startTemporalDevServer } from './temporal';
import { temporalModeFromEnv, type TemporalMode } from './temporal-mode';
import { DEFAULT_HISTORY_SHARDS, membershipPortRange, startTemporalServer } from './temporal-server';


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
  /** Default: TEMPORAL_MODE (dev unless set to server). */
  temporal?: TemporalMode;
  /** Prometheus endpoints on Temporal and SeaweedFS (loopback, free ports): the bench's cost section reads them. */
  metrics?: boolean;
}

/** TEMPORAL_SERVER_HISTORY_SHARDS, else DEFAULT_HISTORY_SHARDS. */
function historyShards(): number {
  const value = process.env.TEMPORAL_SERVER_HISTORY_SHARDS;
  if (value === undefined || value === '') return DEFAULT_HISTORY_SHARDS;
  const shards = Number(value);
  if (!Number.isInteger(shards) || shards < 1) throw new Error(`TEMPORAL_SERVER_HISTORY_SHARDS=${value} is not a positive integer`);
  return shards;
}

/** Environment (SPEC.md §10 names) that points the API and the workers at this stack. */
export type StackEnv = Record<string, string>;

export interface Stack {
  env: StackEnv;
  urls: {
    temporal: string;
    temporalUi?: string;
    s3: string;
    postgres: string;
    clamd?: string;
    /** With `metrics`: the Temporal server's and SeaweedFS' Prometheus `/metrics` URLs. */
    temporalMetrics?: string;
    s3Metrics?: string;
  };
  /** Which Temporal runs and on what persistence, in words (dev output, bench header). */
  temporal: { mode: TemporalMode; description: string };
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
  const fixed = options.ports ?? {};
  for (const [name, port] of Object.entries(fixed) as Array<[keyof StackPorts, number | undefined]>) {
    if (port) await assertPortFree(port, name, portEnv[name]);
  }
  // All ports picked at run time are reserved in one go (none equals another), and every one
  // handed out is remembered so a server started again after a port race gets fresh ones.
  const handedOut = new Set(Object.values(fixed).filter((p): p is number => typeof p === 'number'));
  const pick = async (count: number, range?: { min: number; max: number }): Promise<number[]> => {
    const picked = await reservePorts(count, handedOut, range);
    for (const p of picked) handedOut.add(p);
    return picked;
  };
  const temporalMode = options.temporal ?? temporalModeFromEnv();
  const s3Internal = await pick(4 + s3InternalPortCount);
  const [temporalPort, s3Port, postgresPort, clamdPort] = s3Internal.splice(0, 4) as Ports<4>;
  const [temporalMetricsPort, s3MetricsPort] = options.metrics ? ((await pick(2)) as Ports<2>) : [undefined, undefined];
  const ports: StackPorts = {
    temporal: fixed.temporal ?? temporalPort,
    temporalUi: fixed.temporalUi,
    s3: fixed.s3 ?? s3Port,
    postgres: fixed.postgres ?? postgresPort,
    clamd: fixed.clamd ?? clamdPort,
  };
  /**
   * Starts one server, and starts it again when another process took one of its ports first:
   * its own port is picked afresh unless fixed, and `start` picks its secondary ports on each
   * attempt (SeaweedFS' internal ones, the production Temporal server's). A fixed port (its own,
   * and those named in `alsoFixed`) stays; when it is the one taken, the start fails at once.
   */
  const startServer = <T>(name: keyof StackPorts, start: (port: number, attempt: number) => Promise<T>, alsoFixed: Array<keyof StackPorts> = []) =>
    retryOnPortRace(
      async (attempt) => {
        if (attempt > 0 && fixed[name] === undefined) [ports[name]] = (await pick(1)) as Ports<1>;
        return start(ports[name] as number, attempt);
      },
      4,
      [name, ...alsoFixed].flatMap((key) => (fixed[key] ? [{ port: fixed[key], what: key, envName: portEnv[key] }] : [])),
    );
  const stops: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch(() => undefined);
  };
  // Every start, so that a failure waits for the others to end (and register their stop) before stopping them.
  const starting: Array<Promise<unknown>> = [];
  const track = <T>(start: Promise<T>): Promise<T> => {
    starting.push(start);
    return start;
  };
  try {
    const postgres = track(
      startServer('postgres', (port) => startPostgres({ dataDir: join(options.dataDir, 'postgres'), port })).then((p) => {
        stops.push(() => p.stop());
        return p;
      }),
    );
    const [s3, pg, temporal, clamd] = await Promise.all([
      track(startServer('s3', async (port, attempt) =>
        startS3Server({
          dataDir: join(options.dataDir, 's3'),
          port,
          internalPorts: attempt === 0 ? s3Internal : await pick(s3InternalPortCount),
          ...devS3Credentials,
          metricsPort: s3MetricsPort,
          logFile: join(logs, 's3.log'),
        }),
      ).then((s) => {
        stops.push(() => s.process.stop());
        return s;
      })),
      postgres,
      track((temporalMode === 'server'
        ? // The production server keeps its state in PostgreSQL, so it starts once that is up.
          postgres.then((p) =>
            startServer('temporal', async (port) =>
              startTemporalServer({
                port,
                grpcPorts: await pick(3),
                membershipPorts: await pick(4, membershipPortRange),
                postgresUrl: p.databaseUrl,
                dataDir: join(options.dataDir, 'temporal-server'),
                numHistoryShards: historyShards(),
                metricsPort: temporalMetricsPort,
                logFile: join(logs, 'temporal.log'),
              }),
            ),
          )
        : startServer('temporal', (port) =>
            startTemporalDevServer({
              port,
              uiPort: ports.temporalUi,
              dbFile: options.persistent ? join(options.dataDir, 'temporal.sqlite') : undefined,
              metricsPort: temporalMetricsPort,
              logFile: join(logs, 'temporal.log'),
            }),
            ['temporalUi'],
          )
      ).then((t) => {
        stops.push(() => t.process.stop());
        return t;
      })),
      options.clamd === false
        ? Promise.resolve(undefined)
        : track(startServer('clamd', (port) => startClamd({ dataDir: join(options.dataDir, 'clamd'), port, logFile: join(logs, 'clamd.log') })).then((c) => {
            stops.push(() => c.process.stop());
            return c;
          })),
    ]);
    await runMigrations(pg.databaseUrl);
    await createBuckets(s3.endpoint, options.corsOrigins ?? ['*']);
    await growBucketVolumes(s3, Object.values(buckets));
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
      urls: {
        temporal: temporal.address,
        temporalUi: temporal.uiUrl,
        s3: s3.endpoint,
        postgres: pg.databaseUrl,
        clamd: clamd ? `tcp://127.0.0.1:${ports.clamd}` : undefined,
        temporalMetrics: temporalMetricsPort ? `http://127.0.0.1:${temporalMetricsPort}/metrics` : undefined,
        s3Metrics: s3MetricsPort ? `http://127.0.0.1:${s3MetricsPort}/metrics` : undefined,
      },
      temporal: {
        mode: temporalMode,
        description: temporal.description,
      },
      stop,
      restartPostgres: () => pg.restart(),
    };
  } catch (err) {
    await Promise.allSettled(starting);
    await stop();
    throw err;
  }
}
