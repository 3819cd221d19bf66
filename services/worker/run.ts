import { DefaultLogger, Runtime, type LogLevel } from '@temporalio/worker';
import { sweepOrphanedWorkDirs } from '../../activities/work-dirs';
import { parentDeathSignalAvailable } from '../shared/child-process';
import { ConfigError, loadConfig, type Config } from '../shared/config';
import { createLogger, type Logger } from '../shared/logger';
import { createWorkerMetrics, startMetricsHttp } from '../shared/metrics';
import { createWorker, type WorkerKind } from './worker';

const temporalLevels: Record<Config['LOG_LEVEL'], LogLevel> = {
  fatal: 'ERROR',
  error: 'ERROR',
  warn: 'WARN',
  info: 'INFO',
  debug: 'DEBUG',
  trace: 'TRACE',
  silent: 'ERROR',
};

/** Temporal's logger (SDK, workflow and activity logs) writing through pino as JSON. */
function temporalLogger(log: Logger, level: Config['LOG_LEVEL']): DefaultLogger {
  return new DefaultLogger(temporalLevels[level], ({ level: entryLevel, message, meta }) => {
    // pino serializes errors under `err` only.
    const { error, ...fields } = meta ?? {};
    const method = entryLevel.toLowerCase() as 'trace' | 'debug' | 'info' | 'warn' | 'error';
    log[method](error === undefined ? fields : { ...fields, err: error }, message);
  });
}

/**
 * Entry point shared by light-worker.ts and video-worker.ts: JSON logs, the Temporal SDK's
 * Prometheus exporter on TEMPORAL_METRICS_PORT, /healthz + /metrics on METRICS_PORT.
 * At start, removes the temp dirs of workers that died mid-activity. SIGTERM drains gracefully.
 */
export function runWorkerProcess(kind: WorkerKind): void {
  (async () => {
    const config = loadConfig();
    const log = createLogger(`${kind}-worker`, config.LOG_LEVEL);
    // Once per process, before the first connection: the Runtime owns logging and SDK metrics.
    Runtime.install({
      logger: temporalLogger(log, config.LOG_LEVEL),
      telemetryOptions: {
        logging: { forward: {}, filter: { core: 'WARN', other: 'ERROR' } },
        metrics: config.TEMPORAL_METRICS_PORT
          ? { prometheus: { bindAddress: `0.0.0.0:${config.TEMPORAL_METRICS_PORT}`, useSecondsForDurations: true } }
          : undefined,
      },
    });
    if (!parentDeathSignalAvailable()) log.warn('setpriv --pdeathsig not found: ffmpeg, ffprobe and the PDF analyzer run on to their end if this worker is killed');
    // Before the first activity: what a killed predecessor in this container left in tmpdir().
    const swept = await sweepOrphanedWorkDirs();
    if (swept.length > 0) log.info({ removed: swept }, 'removed temp dirs of dead workers');
    const metrics = createWorkerMetrics(`${kind}-worker`);
    const handle = await createWorker(kind, config, { workflowBundlePath: process.env.WORKFLOW_BUNDLE_PATH, metrics });
    const http = config.METRICS_PORT ? await startMetricsHttp(config.METRICS_PORT, metrics.registry, () => handle.worker.getState() === 'RUNNING') : undefined;
    log.info(
      {
        taskQueue: kind === 'light' ? config.TASK_QUEUE_LIGHT : config.TASK_QUEUE_VIDEO,
        ...(kind === 'light' ? { documentTaskQueue: config.TASK_QUEUE_DOCUMENT } : {}),
        metricsPort: config.METRICS_PORT,
        temporalMetricsPort: config.TEMPORAL_METRICS_PORT,
      },
      'polling',
    );
    await handle.run();
    http?.close();
  })().catch((err: unknown) => {
    console.error(err instanceof ConfigError ? err.message : err);
    process.exit(1);
  });
}
