import { performance } from 'node:perf_hooks';

/** Latency summary of one series, in milliseconds. */
export interface Summary {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  mean: number;
  max: number;
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export function summarize(samples: readonly number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  const sum = sorted.reduce((a, b) => a + b, 0);
  return {
    count: sorted.length,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    mean: sorted.length ? sum / sorted.length : Number.NaN,
    max: sorted.length ? sorted[sorted.length - 1]! : Number.NaN,
  };
}

export interface LoadResult {
  latencies: number[];
  /** Requests whose `fn` threw or answered an unexpected status. */
  failures: number;
  firstFailure?: string;
  wallMs: number;
}

/**
 * Closed-loop load: `clients` async loops share a budget of `total` calls; each loop waits for
 * its answer before sending the next, so the concurrency never exceeds `clients`.
 * `fn(client, i)` returns normally on success and throws on a failed call.
 */
export async function closedLoop(clients: number, total: number, fn: (client: number, i: number) => Promise<void>): Promise<LoadResult> {
  const latencies: number[] = [];
  let failures = 0;
  let firstFailure: string | undefined;
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async (_, client) => {
      while (next < total) {
        const i = next++;
        const t0 = performance.now();
        try {
          await fn(client, i);
          latencies.push(performance.now() - t0);
        } catch (err) {
          failures++;
          firstFailure ??= (err as Error).message;
        }
      }
    }),
  );
  return { latencies, failures, firstFailure, wallMs: performance.now() - started };
}

/** Mean cost per call of `n` sequential awaited calls, in microseconds. */
export async function microsPerCall(n: number, fn: (i: number) => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await fn(i);
  return ((performance.now() - t0) * 1000) / n;
}

export const ms = (v: number) => `${v.toFixed(1)} ms`;
export const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
export const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

/** Wall-clock milliseconds of one call, with its result. */
export async function timed<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t0 = performance.now();
  const result = await fn();
  return [performance.now() - t0, result];
}
