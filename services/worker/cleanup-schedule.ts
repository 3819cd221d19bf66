import { ScheduleAlreadyRunning, ScheduleNotFoundError, ScheduleOverlapPolicy, type Client, type ScheduleOptionsStartWorkflowAction, type ScheduleSpec } from '@temporalio/client';
import type { Config } from '../shared/config';
import type { CleanupSettings, MediaCleanupWorkflow } from '../../workflows/media-lifecycle.workflow';

export function cleanupSettings(config: Config): CleanupSettings {
  return {
    unattachedAfterSeconds: config.CLEANUP_UNATTACHED_AFTER_SECONDS,
    failedRetentionSeconds: config.CLEANUP_FAILED_RETENTION_SECONDS,
    orphanAfterSeconds: config.CLEANUP_ORPHAN_AFTER_SECONDS,
  };
}

/** The note a schedule carries while CLEANUP_INTERVAL=off keeps it paused (operators' own pauses carry theirs). */
export const PAUSED_BY_CONFIG = 'paused: CLEANUP_INTERVAL=off';

/**
 * Creates the cleanup Schedule, or brings an existing one up to this worker's settings, so
 * every light worker may call it at start (idempotent). Settings from config win (interval,
 * workflow arguments, overlap); other policies an operator set stay. `CLEANUP_INTERVAL=off`
 * creates nothing and pauses a schedule that exists; a later start with an interval resumes it.
 * Returns the schedule id, or undefined when off.
 */
export async function ensureCleanupSchedule(client: Client, config: Config): Promise<string | undefined> {
  const handle = client.schedule.getHandle(config.CLEANUP_SCHEDULE_ID);
  if (config.CLEANUP_INTERVAL === 'off') {
    await handle.pause(PAUSED_BY_CONFIG).catch((err: unknown) => {
      if (!(err instanceof ScheduleNotFoundError)) throw err;
    });
    return undefined;
  }
  const spec: ScheduleSpec = { intervals: [{ every: config.CLEANUP_INTERVAL.replace(/\s+/g, '') as `${number}m` }] };
  const action: ScheduleOptionsStartWorkflowAction<typeof MediaCleanupWorkflow> = {
    type: 'startWorkflow',
    workflowType: 'MediaCleanupWorkflow',
    workflowId: `${config.CLEANUP_SCHEDULE_ID}-run`,
    taskQueue: config.TASK_QUEUE_LIGHT,
    args: [cleanupSettings(config)],
  };
  // A run still going when the next is due is not doubled up (running twice is safe, just wasteful).
  const overlap = ScheduleOverlapPolicy.SKIP;
  try {
    await client.schedule.create({
      scheduleId: config.CLEANUP_SCHEDULE_ID,
      spec,
      action,
      policies: { overlap, catchupWindow: '10 minutes' },
      state: { note: 'unused media cleanup and orphan sweep' },
    });
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    await handle.update((previous) => ({ ...previous, spec, action, policies: { ...previous.policies, overlap } }));
    const { state } = await handle.describe();
    if (state.paused && state.note === PAUSED_BY_CONFIG) await handle.unpause('resumed: CLEANUP_INTERVAL is set');
  }
  return config.CLEANUP_SCHEDULE_ID;
}
