import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import type { WorkerMetrics } from '../shared/metrics';

/**
 * The media an activity works on: its input's `mediaId`, else the one in its upload
 * workflow's id (`media-upload/{mediaId}`; verifyUpload's input, for one, names only the key).
 */
function mediaIdOf(firstArg: unknown, workflowId: string | undefined): string | undefined {
  const id = (firstArg as { mediaId?: unknown } | undefined)?.mediaId;
  if (typeof id === 'string') return id;
  return /^media-upload\/([0-9a-f-]{36})$/.exec(workflowId ?? '')?.[1];
}

/**
 * Worker interceptor for every activity, local ones included: times it into
 * `media_activity_duration_seconds{activity,outcome}`, counts it in
 * `media_activities_in_flight{activity}` while it runs, and adds its `mediaId` to the
 * activity's log lines (Temporal already adds `workflowId` and `activityType`). The task
 * token Temporal also adds is dropped: anyone holding it can complete the activity.
 */
export function activityObservability(metrics: Pick<WorkerMetrics, 'activityDuration' | 'activitiesInFlight'>): ActivityInterceptorsFactory {
  return (ctx) => {
    const activity = ctx.info.activityType;
    let mediaId: string | undefined;
    return {
      inbound: {
        async execute(input, next) {
          mediaId = mediaIdOf(input.args[0], ctx.info.workflowExecution?.workflowId);
          metrics.activitiesInFlight.inc({ activity });
          const stopTimer = metrics.activityDuration.startTimer({ activity });
          try {
            const result = await next(input);
            stopTimer({ outcome: 'completed' });
            return result;
          } catch (err) {
            // A cancelled activity may throw anything (an aborted ffmpeg, a CancelledFailure).
            stopTimer({ outcome: ctx.cancellationSignal.aborted ? 'cancelled' : 'failed' });
            throw err;
          } finally {
            metrics.activitiesInFlight.dec({ activity });
          }
        },
      },
      outbound: {
        getLogAttributes(input, next) {
          const { taskToken: _taskToken, ...attributes } = next(input);
          return mediaId ? { ...attributes, mediaId } : attributes;
        },
      },
    };
  };
}
