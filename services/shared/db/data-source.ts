import { DataSource } from 'typeorm';
import { BatchEntity, MediaEntity, RenditionEntity } from './entities';
import { InitialSchema1764000000000 } from './migrations/1764000000000-initial-schema';
import { MediaAttachments1764500000000 } from './migrations/1764500000000-media-attachments';
import { MediaInFlightIndex1764600000000 } from './migrations/1764600000000-media-in-flight-index';
import { ProtectMediaBeforeAttachments1764700000000 } from './migrations/1764700000000-protect-media-before-attachments';
import { MediaTexts1765500000000 } from './migrations/1765500000000-media-texts';
import { TenantsAndProjects1765600000000 } from './migrations/1765600000000-tenants-and-projects';

/** Schema changes go through migrations only; `synchronize` stays off everywhere. */
export function createDataSource(databaseUrl: string, poolSize = 10): DataSource {
  return new DataSource({
    type: 'postgres',
    url: databaseUrl,
    entities: [MediaEntity, RenditionEntity, BatchEntity],
    migrations: [InitialSchema1764000000000, MediaAttachments1764500000000, MediaInFlightIndex1764600000000, ProtectMediaBeforeAttachments1764700000000, MediaTexts1765500000000, TenantsAndProjects1765600000000],
    migrationsTransactionMode: 'each',
    synchronize: false,
    logging: false,
    extra: { max: poolSize, connectionTimeoutMillis: 5000 },
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
