import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import type { WorkerMetrics } from '../shared/metrics';

/** The `mediaId` of an activity's input, when it has one (every media activity does). */
function mediaIdOf(firstArg: unknown): string | undefined {
  const id = (firstArg as { mediaId?: unknown } | undefined)?.mediaId;
  return typeof id === 'string' ? id : undefined;
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
          mediaId = mediaIdOf(input.args[0]);
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
