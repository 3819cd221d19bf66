import { Worker } from 'node:worker_threads';

/** Decoded HEIC pixels: RGBA, 8 bits per channel, HEIF transformations (irot/imir) applied. */
export interface DecodedHeic {
  width: number;
  height: number;
  data: Buffer;
}

// libheif compiled to wasm (npm `heic-decode`) decodes synchronously: on the activity's thread a
// 48-megapixel iPhone HEIC held the event loop for ~7 s, so no heartbeat left (the heartbeat
// timeout is 15 s) and every other activity and workflow task of the worker waited. Each decode
// runs in a worker thread instead. Plain JavaScript evaluated in the thread, so it runs the same
// under tsx, jest and the compiled image; the pixels come back by transfer, not by copy.
const DECODER = `
const { parentPort, workerData } = require('node:worker_threads');
require(workerData.module)({ buffer: workerData.input }).then(
  ({ width, height, data }) => parentPort.postMessage({ width, height, data }, [data.buffer]),
  (err) => parentPort.postMessage({ error: String((err && err.message) || err) }),
);
`;

/**
 * Decodes the primary image of an HEVC-coded HEIF file off the event loop.
 * @throws Error with libheif's message when the file cannot be decoded.
 */
export function decodeHeic(input: Buffer): Promise<DecodedHeic> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(DECODER, { eval: true, workerData: { module: require.resolve('heic-decode'), input } });
    worker.once('message', (m: { width: number; height: number; data: Uint8ClampedArray } | { error: string }) => {
      if ('error' in m) reject(new Error(m.error));
      else resolve({ width: m.width, height: m.height, data: Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength) });
      void worker.terminate();
    });
    worker.once('error', reject);
    // After a message this changes nothing; without one the thread died (e.g. out of memory).
    worker.once('exit', (code) => reject(new Error(`HEIC decoder thread exited with code ${code}`)));
  });
}
