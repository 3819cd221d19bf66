import type { Context } from '@temporalio/activity';
import { Transform } from 'node:stream';

/**
 * A pass-through stream that heartbeats `details(bytes so far)` on every chunk, so a worker
 * that dies mid-transfer is noticed within the heartbeat timeout while a slow but live one is
 * not (the SDK throttles the heartbeats it sends).
 */
export function heartbeatPerChunk(ctx: Context, details: (bytes: number) => unknown): Transform {
  let bytes = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      bytes += chunk.length;
      ctx.heartbeat(details(bytes));
      done(null, chunk);
    },
  });
}

/**
 * Resolves or rejects as `work` does, heartbeating `details()` every `everyMs` meanwhile. For a
 * step that waits on another service's answer with no bytes flowing: clamd gives its verdict
 * only after the last byte, tens of seconds later for a decompression bomb, longer than the
 * heartbeat timeout, so per-chunk heartbeats alone had the scan timed out and run again. A dead
 * worker still stops heartbeating; a hung service is bounded by the call's own timeout and the
 * activity's startToCloseTimeout.
 */
export async function heartbeatWhile<T>(ctx: Context, details: () => unknown, work: Promise<T>, everyMs = 5_000): Promise<T> {
  const timer = setInterval(() => ctx.heartbeat(details()), everyMs);
  try {
    return await work;
  } finally {
    clearInterval(timer);
  }
}
