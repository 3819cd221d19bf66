import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { startProcess, waitFor, type ManagedProcess } from '../devstack/process';
import { assertPortFree } from '../devstack/ports';
import { startStack } from '../devstack/stack';
import { temporalModeFromEnv } from '../devstack/temporal-mode';
import { projectRoot } from '../devstack/tools';
import { devDataDir, devSecretFile, mintDevToken } from './token';

/**
 * `npm run dev`: the whole platform on embedded defaults as one supervised process tree.
 * State lives in .data/dev and survives restarts; Ctrl-C stops everything.
 */
const num = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const ports = {
  api: num('PORT', 8080),
  temporal: num('DEV_TEMPORAL_PORT', 7233),
  temporalUi: num('DEV_TEMPORAL_UI_PORT', 8233),
  s3: num('DEV_S3_PORT', 8333),
  postgres: num('DEV_POSTGRES_PORT', 54320),
  clamd: num('DEV_CLAMD_PORT', 3310),
  apiMetrics: num('METRICS_PORT', 9464),
};
/** State (the JWT secret too) and logs; DEV_DATA_DIR moves them (the dev-stack test runs in a temp dir). */
const dataDir = devDataDir;
const logDir = join(dataDir, 'logs');

function devSecret(): string {
  if (process.env.JWT_SECRET) return process.env.JWT_SECRET;
  if (!existsSync(devSecretFile)) writeFileSync(devSecretFile, randomBytes(32).toString('hex'), { mode: 0o600 });
  return readFileSync(devSecretFile, 'utf8').trim();
}

async function main(): Promise<void> {
  mkdirSync(dataDir, { recursive: true });
  // DEV_TEMPORAL=server: the production Temporal server on the dev PostgreSQL (no built-in Web UI).
  const temporal = temporalModeFromEnv(process.env.DEV_TEMPORAL, 'DEV_TEMPORAL');
  console.log(`[dev] starting Temporal (${temporal === 'server' ? 'production server on PostgreSQL' : 'dev server'}), S3 (SeaweedFS), PostgreSQL and clamd …`);
  const { temporalUi, api, apiMetrics, ...serverPorts } = ports;
  // The API's own ports are checked before anything starts, with the setting that moves each.
  await assertPortFree(api, 'the API', 'PORT');
  await assertPortFree(apiMetrics, 'the API metrics', 'METRICS_PORT');
  const stack = await startStack({ dataDir, persistent: true, ports: temporal === 'server' ? serverPorts : { ...serverPorts, temporalUi }, corsOrigins: ['*'], temporal });
  const secret = devSecret();
  const env = {
    ...stack.env,
    PORT: String(ports.api),
    JWT_SECRET: secret,
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'info',
    CORS_ORIGINS: process.env.CORS_ORIGINS ?? `http://localhost:${ports.api},http://127.0.0.1:${ports.api}`,
    // Two workers share this host: no fixed metrics ports for them (the chart sets them);
    // the API's /metrics gets its own port below, as in the chart.
    METRICS_PORT: '0',
    TEMPORAL_METRICS_PORT: '0',
  };
  const tsx = join(projectRoot, 'node_modules', 'tsx', 'dist', 'cli.mjs');
  const services: Record<string, string> = {
    api: 'services/api/main.ts',
    'light-worker': 'services/worker/light-worker.ts',
    'video-worker': 'services/worker/video-worker.ts',
  };
  const children = new Map<string, ManagedProcess>();
  let stopping = false;
  const launch = (name: string) => {
    const serviceEnv = name === 'api' ? { ...env, METRICS_PORT: String(ports.apiMetrics) } : env;
    // On the terminal as before, and in <dataDir>/logs/<name>.log beside the servers' logs.
    const proc = startProcess(name, process.execPath, [tsx, services[name]!], { env: serviceEnv, cwd: projectRoot, logFile: join(logDir, `${name}.log`), echo: true });
    children.set(name, proc);
    // Supervision: a service that dies is restarted; the rest keep running.
    proc.child.once('exit', (code) => {
      if (stopping) return;
      console.error(`[dev] ${name} exited with ${code}; restarting in 2 s`);
      setTimeout(() => !stopping && launch(name), 2000);
    });
  };
  Object.keys(services).forEach(launch);

  const stop = async () => {
    if (stopping) return;
    stopping = true;
    console.log('\n[dev] stopping …');
    await Promise.all([...children.values()].map((c) => c.stop()));
    await stack.stop();
    console.log(`[dev] stopped; data kept in ${dataDir}`);
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());

  const apiUrl = `http://localhost:${ports.api}`;
  await waitFor('API', async () => (await fetch(`${apiUrl}/readyz`)).status === 200, 120_000);
  const token = await mintDevToken(secret, 'dev-user', '30d');
  console.log(
    [
      '',
      '  Media Upload Platform is running',
      `  API            ${apiUrl}/api/v1  (OpenAPI: ${apiUrl}/api/v1/openapi.json, ready: ${apiUrl}/readyz)`,
      `  API metrics    http://localhost:${ports.apiMetrics}/metrics  (off the public port, as in the chart)`,
      // The token rides in the fragment, which the browser never sends to the server.
      `  Demo page      ${apiUrl}/#token=${token}`,
      `  Uppy page      ${apiUrl}/uppy#token=${token}  (Uppy's Dashboard and @uppy/aws-s3 on this API)`,
      stack.urls.temporalUi
        ? `  Temporal UI    ${stack.urls.temporalUi}  (gRPC ${stack.urls.temporal}; try MediaStatus="AWAITING_UPLOAD" AND ExecutionStatus="Running")`
        : `  Temporal       ${stack.urls.temporal}  (no Web UI: the production server has none built in; npm run ops queries it)`,
      `                 ${stack.temporal.description}`,
      `  S3             ${stack.urls.s3}  (buckets: incoming, media)`,
      `  PostgreSQL     ${stack.urls.postgres}`,
      `  clamd          ${stack.urls.clamd}`,
      `  Logs           ${logDir.startsWith(projectRoot) ? relative(projectRoot, logDir) : logDir}  (api.log, light-worker.log, video-worker.log, temporal.log, s3.log, clamd.log)`,
      '',
      `  Dev token (user dev-user, 30 days; more with npm run token -- --user <id>):`,
      `  ${token}`,
      '',
      '  Ctrl-C stops everything.',
      '',
    ].join('\n'),
  );
}

main().catch((err: unknown) => {
  console.error(`[dev] ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
