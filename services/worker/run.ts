import { ConfigError, loadConfig } from '../shared/config';
import { createWorker, type WorkerKind } from './worker';

/** Entry point shared by light-worker.ts and video-worker.ts. SIGTERM drains gracefully. */
export function runWorkerProcess(kind: WorkerKind): void {
  (async () => {
    const config = loadConfig();
    const handle = await createWorker(kind, config, { workflowBundlePath: process.env.WORKFLOW_BUNDLE_PATH });
    console.log(JSON.stringify({ level: 30, name: `${kind}-worker`, msg: `polling ${kind === 'light' ? config.TASK_QUEUE_LIGHT : config.TASK_QUEUE_VIDEO}` }));
    await handle.run();
  })().catch((err: unknown) => {
    console.error(err instanceof ConfigError ? err.message : err);
    process.exit(1);
  });
}
