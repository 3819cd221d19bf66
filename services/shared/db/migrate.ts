import { runMigrations } from './data-source';

/** `npm run migrate` and the Helm migration Job: applies pending migrations and exits. */
async function main(): Promise<void> {
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('DATABASE_URL is required');
  const applied = await runMigrations(url);
  console.log(applied.length ? `applied migrations: ${applied.join(', ')}` : 'schema is up to date');
}

main().catch((err: unknown) => {
  console.error(`migration failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
