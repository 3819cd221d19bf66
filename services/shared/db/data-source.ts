import { Client, type ClientConfig } from 'pg';
import { DataSource } from 'typeorm';
import { BatchEntity, MediaEntity, RenditionEntity } from './entities';
import { InitialSchema1764000000000 } from './migrations/1764000000000-initial-schema';
import { MediaAttachments1764500000000 } from './migrations/1764500000000-media-attachments';
import { MediaInFlightIndex1764600000000 } from './migrations/1764600000000-media-in-flight-index';
import { ProtectMediaBeforeAttachments1764700000000 } from './migrations/1764700000000-protect-media-before-attachments';
import { MediaTexts1765500000000 } from './migrations/1765500000000-media-texts';
import { TenantsAndProjects1765600000000 } from './migrations/1765600000000-tenants-and-projects';

/** The message of pg's client-side `query_timeout` error (it has no code; the server may still run the statement). */
export const QUERY_READ_TIMEOUT = 'Query read timeout';

/**
 * A pg client that closes itself once one of its statements outlived `query_timeout`. pg stops
 * waiting then but leaves the statement in flight: back in the pool, the client would hand the
 * next statement (a ROLLBACK too) a place behind one that may never be answered. Closed, it is
 * dropped on release (pg-pool drops ending clients) and the pool opens a fresh one.
 */
class ClosingClient extends Client {
  constructor(config?: string | ClientConfig) {
    super(config);
    const query = this.query.bind(this) as (...args: unknown[]) => unknown;
    this.query = ((...args: unknown[]) => {
      const result = query(...args);
      // Runs before the caller sees the error, so the client is ending by the time it is released.
      if (result instanceof Promise) {
        result.catch((err: unknown) => {
          if (err instanceof Error && err.message === QUERY_READ_TIMEOUT) void this.end().catch(() => undefined);
        });
      }
      return result;
    }) as Client['query'];
  }
}

/**
 * Schema changes go through migrations only; `synchronize` stays off everywhere.
 * `queryTimeoutMs` (the API: DB_QUERY_TIMEOUT_MS) bounds each statement on the client side:
 * past it the statement rejects with pg's `Query read timeout` and its connection is closed.
 * Unset (workers, migrations, tests), statements wait for the server.
 */
export function createDataSource(databaseUrl: string, poolSize = 10, options: { queryTimeoutMs?: number } = {}): DataSource {
  return new DataSource({
    type: 'postgres',
    url: databaseUrl,
    entities: [MediaEntity, RenditionEntity, BatchEntity],
    migrations: [InitialSchema1764000000000, MediaAttachments1764500000000, MediaInFlightIndex1764600000000, ProtectMediaBeforeAttachments1764700000000, MediaTexts1765500000000, TenantsAndProjects1765600000000],
    migrationsTransactionMode: 'each',
    synchronize: false,
    logging: false,
    extra: {
      max: poolSize,
      connectionTimeoutMillis: 5000,
      ...(options.queryTimeoutMs ? { query_timeout: options.queryTimeoutMs, Client: ClosingClient } : {}),
    },
  });
}

export async function runMigrations(databaseUrl: string): Promise<string[]> {
  const ds = createDataSource(databaseUrl, 1);
  await ds.initialize();
  try {
    const applied = await ds.runMigrations();
    return applied.map((m) => m.name);
  } finally {
    await ds.destroy();
  }
}
