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
