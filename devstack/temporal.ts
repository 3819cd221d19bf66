import { Connection } from '@temporalio/client';
import { startProcess, waitFor, type ManagedProcess } from './process';
import { temporalCli } from './tools';

/**
 * Custom search attributes of MediaUploadWorkflow: the one list the dev server gets on its command
 * line and the production server through `temporal operator search-attribute create`.
 */
export const searchAttributes = { MediaStatus: 'Keyword', MediaType: 'Keyword', MediaOwner: 'Keyword', MediaTenant: 'Keyword' } as const;

/**
 * Dynamic config both Temporal modes of the stack run with (the dev server as
 * `--dynamic-config-value`, the production server in its dynamic-config file):
 * - workflows whose tasks keep failing are flagged as TemporalReportedProblems (npm run ops --problems, Web UI);
 * - task queue fairness (Temporal 1.29+, the priority matcher): a session's workflow and
 *   activities carry its uploader as fairness key (`workflowStartOptions`), so one uploader's
 *   backlog of slow documents or long videos shares the workers with others' uploads instead of
 *   holding them back in arrival order. Without it the key is ignored.
 */
export const stackDynamicConfig: Record<string, unknown> = {
  'system.numConsecutiveWorkflowTaskProblemsToTriggerSearchAttribute': 5,
  'matching.useNewMatcher': true,
  'matching.enableFairness': true,
};

/**
 * The dev server's SQLite file in WAL mode with `synchronous=normal`: no fsync per commit, so
 * about 3× the workflow starts and signals per second of SQLite's defaults (rollback journal,
 * full sync) on the 2-core dev machine. A crash of the machine itself may lose the last
 * transactions; a crash of the server loses nothing. Good for a dev stack, not for production.
 */
export const SQLITE_PRAGMAS: readonly string[] = ['journal_mode=wal', 'synchronous=normal'];

export interface TemporalDevServerOptions {
  port: number;
  /** Web UI port; omitted → headless (tests). */
  uiPort?: number;
  /** SQLite file that keeps state across runs; omitted → in memory. */
  dbFile?: string;
  /** `PRAGMA=VALUE` statements for the SQLite file; default SQLITE_PRAGMAS. */
  sqlitePragmas?: readonly string[];
  /** Prometheus `/metrics` port (loopback); omitted → none. */
  metricsPort?: number;
  /** Dynamic config over stackDynamicConfig (tests: one task queue partition, so dispatch order is observable). */
  dynamicConfig?: Record<string, unknown>;
  logFile?: string;
}

/** A running Temporal server of the stack: the dev server, or the production server (devstack/temporal-server.ts). */
export interface TemporalServer {
  address: string;
  /** Web UI (the dev server's built-in one); absent when headless or on the production server. */
  uiUrl?: string;
  process: ManagedProcess;
  /** Which server on what persistence, in words (dev output, bench header). */
  description: string;
}
export type TemporalDevServer = TemporalServer;

/** Resolves once the frontend at `address` answers its gRPC health check; throws if `proc` exits first. */
export async function waitForFrontend(what: string, address: string, proc: ManagedProcess, timeoutMs: number): Promise<void> {
  await waitFor(
    what,
    async () => {
      const connection = await Connection.connect({ address, connectTimeout: 1000 });
      try {
        await connection.healthService.check({});
        return true;
      } finally {
        await connection.close();
      }
    },
    timeoutMs,
    proc,
  );
}

export async function startTemporalDevServer(options: TemporalDevServerOptions): Promise<TemporalDevServer> {
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(options.port), '--log-level', 'warn'];
  args.push(...(options.uiPort ? ['--ui-port', String(options.uiPort)] : ['--headless']));
  if (options.dbFile) args.push('--db-filename', options.dbFile);
  if (options.metricsPort) args.push('--metrics-port', String(options.metricsPort));
  for (const pragma of options.dbFile ? (options.sqlitePragmas ?? SQLITE_PRAGMAS) : []) args.push('--sqlite-pragma', pragma);
  for (const [name, type] of Object.entries(searchAttributes)) args.push('--search-attribute', `${name}=${type}`);
  for (const [key, value] of Object.entries({ ...stackDynamicConfig, ...options.dynamicConfig })) args.push('--dynamic-config-value', `${key}=${JSON.stringify(value)}`);
  const proc = startProcess('temporal', temporalCli(), args, { logFile: options.logFile });
  const address = `127.0.0.1:${options.port}`;
  await waitForFrontend('Temporal dev server', address, proc, 60_000);
  return {
    address,
    uiUrl: options.uiPort ? `http://127.0.0.1:${options.uiPort}` : undefined,
    process: proc,
    description: `Temporal dev server (temporal server start-dev, SQLite ${options.dbFile ? 'file' : 'in memory'})`,
  };
}
