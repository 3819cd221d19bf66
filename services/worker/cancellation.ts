import type { ActivityInterceptorsFactory } from '@temporalio/worker';

/**
 * Worker interceptor: an activity the workflow cancelled reports the cancellation whatever it
 * threw while stopping (a killed ffmpeg exits with an ordinary error). Reported as a failure,
 * it would be retried, and the workflow, which waits for its cancelled steps to stop before
 * compensating, would wait for the retry. Other aborts (worker shutdown, heartbeat timeout)
 * keep their error, so another worker retries them.
 */
export const reportRequestedCancellation: ActivityInterceptorsFactory = (ctx) => ({
  inbound: {
    async execute(input, next) {
      try {
        return await next(input);
      } catch (err) {
        if (ctx.cancellationSignal.aborted && ctx.cancellationDetails?.cancelRequested) throw ctx.cancellationSignal.reason;
        throw err;
      }
    },
  },
});
