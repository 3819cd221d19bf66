import { Client as PgClient } from 'pg';
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Connection } from '@temporalio/client';
import { stringify } from 'yaml';
import { createDatabaseIfMissing } from './postgres';
import { startProcess, waitFor } from './process';
import { searchAttributes, stackDynamicConfig, waitForFrontend, type TemporalServer } from './temporal';
import { temporalCli, temporalSchemaDir, temporalServerBinary, temporalSqlTool } from './tools';

const run = promisify(execFile);

/**
 * History shards of the stack's production server: fixed for the life of its database (Temporal
 * cannot change it later), so a persistent dev database keeps the count it was created with.
 * 4 is what Temporal's own development-postgres12.yaml uses for a laptop; production clusters
 * size it for their peak (see docs/kubernetes.md). TEMPORAL_SERVER_HISTORY_SHARDS overrides it.
 */
export const DEFAULT_HISTORY_SHARDS = 4;

/** Databases of the production server on the stack's PostgreSQL (the product's own is `media`). */
export const temporalDatabases = { persistence: 'temporal', visibility: 'temporal_visibility' } as const;

/**
 * Dynamic config of the stack's production server: what the product relies on, written out
 * even where it is the 1.32 default so that an upgrade which flips a default shows here.
 * The dev server (`temporal server start-dev`) gets the same values from devstack/temporal.ts
 * or has them as its own defaults.
 */
export const serverDynamicConfig: Record<string, unknown> = {
  ...stackDynamicConfig,
  // The cleanup and orphan sweep run as a Temporal Schedule (services/worker/cleanup-schedule.ts).
  'frontend.enableSchedules': true,
};

export interface TemporalServerOptions {
  /** Frontend gRPC port (what TEMPORAL_ADDRESS points at). */
  port: number;
  /** Free loopback ports for the history, matching and worker gRPC listeners. */
  grpcPorts: number[];
  /** Free loopback ports in membershipPortRange for the 4 services' membership (ringpop) listeners. */
  membershipPorts: number[];
  /** The stack's PostgreSQL (any database on it): the server gets databases of its own there. */
  postgresUrl: string;
  /** Config files go here. */
  dataDir: string;
  logFile?: string;
  namespace?: string;
  numHistoryShards?: number;
  /** Prometheus `/metrics` on this loopback port (the bench's cost section reads it); off when unset. */
  metricsPort?: number;
}

/**
 * Where membership ports must lie: each service records its membership port in the
 * cluster_membership table, whose rpc_port column is a PostgreSQL SMALLINT (at most 32767), and
 * the server exits at start on a larger one. Linux hands out ephemeral ports from 32768, so these
 * are picked below that.
 */
export const membershipPortRange = { min: 20000, max: 32767 };

function serverConfig(options: TemporalServerOptions, dynamicConfigFile: string): unknown {
  const pg = new URL(options.postgresUrl);
  const sql = (databaseName: string, maxConns: number) => ({
    sql: {
      pluginName: 'postgres12',
      databaseName,
      connectAddr: `${pg.hostname}:${pg.port}`,
      connectProtocol: 'tcp',
      user: decodeURIComponent(pg.username),
      password: decodeURIComponent(pg.password),
      maxConns,
      maxIdleConns: maxConns,
      maxConnLifetime: '1h',
    },
  });
  const [history, matching, worker] = options.grpcPorts;
  const membership = options.membershipPorts;
  if (worker === undefined || membership.length < 4) throw new Error('startTemporalServer needs 3 gRPC ports and 4 membership ports');
  const service = (grpcPort: number, membershipPort: number) => ({ rpc: { grpcPort, membershipPort, bindOnIP: '127.0.0.1' } });
  return {
    log: { stdout: true, level: 'warn' },
    persistence: {
      defaultStore: 'postgres-default',
      visibilityStore: 'postgres-visibility',
      numHistoryShards: options.numHistoryShards ?? DEFAULT_HISTORY_SHARDS,
      datastores: {
        'postgres-default': sql(temporalDatabases.persistence, 20),
        'postgres-visibility': sql(temporalDatabases.visibility, 10),
      },
    },
    global: {
      membership: { maxJoinDuration: '30s', broadcastAddress: '127.0.0.1' },
      // The config template's Prometheus reporter, only when asked for (the bench counts state transitions and actions).
      ...(options.metricsPort ? { metrics: { prometheus: { timerType: 'histogram', listenAddress: `127.0.0.1:${options.metricsPort}` } } } : {}),
    },
    // No httpPort: the HTTP API stays off; no pprof listener either.
    services: {
      frontend: service(options.port, membership[0]!),
      history: service(history!, membership[1]!),
      matching: service(matching!, membership[2]!),
      worker: service(worker, membership[3]!),
    },
    clusterMetadata: {
      enableGlobalNamespace: false,
      failoverVersionIncrement: 10,
      masterClusterName: 'active',
      currentClusterName: 'active',
      clusterInformation: { active: { enabled: true, initialFailoverVersion: 1, rpcName: 'frontend', rpcAddress: `127.0.0.1:${options.port}` } },
    },
    dcRedirectionPolicy: { policy: 'noop' },
    archival: { history: { state: 'disabled' }, visibility: { state: 'disabled' } },
    namespaceDefaults: { archival: { history: { state: 'disabled' }, visibility: { state: 'disabled' } } },
    dynamicConfigClient: { filepath: dynamicConfigFile, pollInterval: '10s' },
  };
}

/** Dynamic config file format: each key holds a list of values with (here no) constraints. */
function dynamicConfigYaml(values: Record<string, unknown>): string {
  return stringify(Object.fromEntries(Object.entries(values).map(([key, value]) => [key, [{ value, constraints: {} }]])));
}

/**
 * Creates the server's two databases when missing and brings their schemas to the version the
 * binary ships, with its own schema tool as an operator does: `setup-schema -v 0.0` (a no-op on a
 * database set up before) then `update-schema -d <versioned dir>` (applies only newer versions).
 */
async function setUpSchemas(postgresUrl: string): Promise<void> {
  const pg = new URL(postgresUrl);
  const admin = new PgClient({ connectionString: postgresUrl });
  await admin.connect();
  try {
    for (const database of Object.values(temporalDatabases)) await createDatabaseIfMissing(admin, database);
  } finally {
    await admin.end();
  }
  const env = {
    ...process.env,
    SQL_PLUGIN: 'postgres12',
    SQL_HOST: pg.hostname,
    SQL_PORT: pg.port,
    SQL_USER: decodeURIComponent(pg.username),
    SQL_PASSWORD: decodeURIComponent(pg.password),
  };
  for (const [kind, database] of Object.entries(temporalDatabases)) {
    const schema = join(temporalSchemaDir(), kind === 'persistence' ? 'temporal' : 'visibility', 'versioned');
    for (const args of [['setup-schema', '-v', '0.0'], ['update-schema', '-d', schema]]) {
      await run(temporalSqlTool(), ['--db', database, ...args], { env }).catch((err: { stderr?: string; message: string }) => {
        throw new Error(`temporal-sql-tool ${args[0]} on ${database} failed: ${(err.stderr ?? err.message).trim().split('\n').slice(-3).join('\n')}`);
      });
    }
  }
}

/** The Temporal CLI against this server (operator commands), throwing with its stderr. */
async function operator(address: string, args: string[]): Promise<string> {
  try {
    return (await run(temporalCli(), ['operator', ...args, '--address', address])).stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`temporal operator ${args.slice(0, 2).join(' ')}: ${(e.stderr ?? e.message).trim()}`);
  }
}

/**
 * Creates the namespace and registers the custom search attributes (the same list the dev server
 * gets on its command line) as docs/kubernetes.md tells a cluster operator to:
 * `temporal operator namespace create` and `temporal operator search-attribute create`. Both are
 * safe to repeat (a namespace that exists is left alone; a search attribute that exists is a no-op).
 * Waits for the frontend's namespace cache in between (an attribute is registered on a namespace
 * the frontend knows) and after (a visibility query naming every attribute succeeds: on SQL the
 * attributes are aliases kept with the namespace).
 */
export async function registerNamespace(address: string, namespace: string): Promise<void> {
  const exists = await operator(address, ['namespace', 'describe', '--namespace', namespace]).then(
    () => true,
    () => false,
  );
  if (!exists) await operator(address, ['namespace', 'create', '--namespace', namespace]);
  const connection = await Connection.connect({ address });
  /** Succeeds once the frontend's namespace cache (refreshed every 2 s) has what `query` needs. */
  const queryable = (what: string, query: string) =>
    waitFor(what, async () => {
      await connection.workflowService.countWorkflowExecutions({ namespace, query });
      return true;
    });
  try {
    await queryable(`namespace ${namespace}`, '');
    // The docs/kubernetes.md command: a --type after each --name (CLI 1.9.1 registers only the
    // first of several names that share one --type).
    const pairs = Object.entries(searchAttributes).flatMap(([name, type]) => ['--name', name, '--type', type]);
    await operator(address, ['search-attribute', 'create', '--namespace', namespace, ...pairs]);
    const probe = Object.keys(searchAttributes)
      .map((name) => `${name} = "probe"`)
      .join(' AND ');
    await queryable(`search attributes of namespace ${namespace}`, probe);
  } finally {
    await connection.close();
  }
}

/**
 * The production Temporal server (`temporal-server start`, built by `scripts/provision.sh
 * temporal-server`) with PostgreSQL persistence and SQL visibility on the stack's PostgreSQL,
 * all four services in one process on loopback, config YAML and dynamic config written to
 * `dataDir` at start. Resolves once the namespace exists with the custom search attributes.
 */
export async function startTemporalServer(options: TemporalServerOptions): Promise<TemporalServer> {
  await setUpSchemas(options.postgresUrl);
  mkdirSync(options.dataDir, { recursive: true });
  const dynamicConfigFile = join(options.dataDir, 'dynamic-config.yaml');
  const configFile = join(options.dataDir, 'config.yaml');
  writeFileSync(dynamicConfigFile, dynamicConfigYaml(serverDynamicConfig));
  writeFileSync(configFile, stringify(serverConfig(options, dynamicConfigFile)), { mode: 0o600 });
  // --allow-no-auth: loopback only, as the dev server; a cluster sets an authorizer (docs/kubernetes.md).
  const proc = startProcess('temporal-server', temporalServerBinary(), ['--config-file', configFile, '--allow-no-auth', 'start'], { logFile: options.logFile });
  const address = `127.0.0.1:${options.port}`;
  try {
    await waitForFrontend('Temporal server', address, proc, 120_000);
    await registerNamespace(address, options.namespace ?? 'default');
  } catch (err) {
    await proc.stop();
    throw err;
  }
  const version = (await run(temporalServerBinary(), ['--version'])).stdout.trim().replace(/^temporal version /, '');
  const shards = options.numHistoryShards ?? DEFAULT_HISTORY_SHARDS;
  return { address, process: proc, description: `Temporal server ${version} (PostgreSQL persistence + SQL visibility, ${shards} history shard${shards === 1 ? '' : 's'})` };
}
