import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, type Client, type ScheduleOptionsStartWorkflowAction, type ScheduleSpec } from '@temporalio/client';
import type { Config } from '../shared/config';
import type { CleanupSettings, MediaCleanupWorkflow } from '../../workflows/media-lifecycle.workflow';

export function cleanupSettings(config: Config): CleanupSettings {
  return {
    unattachedAfterSeconds: config.CLEANUP_UNATTACHED_AFTER_SECONDS,
    failedRetentionSeconds: config.CLEANUP_FAILED_RETENTION_SECONDS,
    orphanAfterSeconds: config.CLEANUP_ORPHAN_AFTER_SECONDS,
  };
}

/**
 * Creates the cleanup Schedule, or brings an existing one up to this worker's settings, so
 * every light worker may call it at start (idempotent). `CLEANUP_INTERVAL=off` deletes nothing
 * and creates nothing. Returns the schedule id, or undefined when off.
 */
export async function ensureCleanupSchedule(client: Client, config: Config): Promise<string | undefined> {
  if (config.CLEANUP_INTERVAL === 'off') return undefined;
  const spec: ScheduleSpec = { intervals: [{ every: config.CLEANUP_INTERVAL.replace(/\s+/g, '') as `${number}m` }] };
  const action: ScheduleOptionsStartWorkflowAction<typeof MediaCleanupWorkflow> = {
    type: 'startWorkflow',
    workflowType: 'MediaCleanupWorkflow',
    workflowId: `${config.CLEANUP_SCHEDULE_ID}-run`,
    taskQueue: config.TASK_QUEUE_LIGHT,
    args: [cleanupSettings(config)],
  };
  // A run still going when the next is due is not doubled up (running twice is safe, just wasteful).
  const policies = { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '10 minutes' };
  try {
    await client.schedule.create({ scheduleId: config.CLEANUP_SCHEDULE_ID, spec, action, policies, state: { note: 'unused media cleanup and orphan sweep' } });
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    await client.schedule.getHandle(config.CLEANUP_SCHEDULE_ID).update((previous) => ({ ...previous, spec, action, policies }));
  }
  return config.CLEANUP_SCHEDULE_ID;
}
