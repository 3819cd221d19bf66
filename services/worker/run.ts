import { ConfigError, loadConfig } from '../shared/config';
import { createMetrics, startWorkerHttp } from '../shared/metrics';
import { createWorker, type WorkerKind } from './worker';

/** Entry point shared by light-worker.ts and video-worker.ts. SIGTERM drains gracefully. */
export function runWorkerProcess(kind: WorkerKind): void {
  (async () => {
    const config = loadConfig();
    const handle = await createWorker(kind, config, { workflowBundlePath: process.env.WORKFLOW_BUNDLE_PATH });
    const metrics = createMetrics(`${kind}-worker`);
    const http = config.METRICS_PORT ? await startWorkerHttp(config.METRICS_PORT, metrics.registry, () => handle.worker.getState() === 'RUNNING') : undefined;
    console.log(JSON.stringify({ level: 30, name: `${kind}-worker`, msg: `polling ${kind === 'light' ? config.TASK_QUEUE_LIGHT : config.TASK_QUEUE_VIDEO}` }));
    await handle.run();
    http?.close();
  })().catch((err: unknown) => {
    console.error(err instanceof ConfigError ? err.message : err);
    process.exit(1);
  });
}
