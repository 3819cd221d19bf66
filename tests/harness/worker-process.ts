import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { projectRoot } from '../../devstack/tools';
import { stackState, testJwtSecret, type Platform } from './platform';

/**
 * A worker of the platform's task queues in a child process of its own process group, so a
 * test can SIGKILL or SIGTERM it (and any ffmpeg it runs) like an orchestrator would.
 */
export function spawnWorker(p: Platform, kind: 'light' | 'video', extraEnv: Record<string, string> = {}): ChildProcess {
  const env = {
    ...process.env,
    ...stackState().env,
    JWT_SECRET: testJwtSecret,
    TASK_QUEUE_LIGHT: p.config.TASK_QUEUE_LIGHT,
    TASK_QUEUE_VIDEO: p.config.TASK_QUEUE_VIDEO,
    TASK_QUEUE_DOCUMENT: p.config.TASK_QUEUE_DOCUMENT,
    FFMPEG_PATH: p.config.FFMPEG_PATH,
    FFPROBE_PATH: p.config.FFPROBE_PATH,
    HLS_X264_PRESET: p.config.HLS_X264_PRESET,
    WORKFLOW_BUNDLE_PATH: stackState().workflowBundlePath,
    METRICS_PORT: '0',
    TEMPORAL_METRICS_PORT: '0',
    LOG_LEVEL: 'warn',
    CLEANUP_INTERVAL: p.config.CLEANUP_INTERVAL,
    ...extraEnv,
  };
  return spawn(process.execPath, ['--import', 'tsx', join(projectRoot, `services/worker/${kind}-worker.ts`)], { env, cwd: projectRoot, stdio: 'ignore', detached: true });
}

/** Resolves true once the child has exited, false after `timeoutMs`. */
export function exited(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

export function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // already gone
  }
}
