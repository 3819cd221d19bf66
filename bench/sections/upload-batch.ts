import { performance } from 'node:perf_hooks';
import { ms, summarize } from '../measure';
import { postJson, type BenchContext } from '../platform';
import type { Row } from '../report';
import type { Section } from '../section';

export interface BatchOptions {
  files: number;
  warmup: number;
  requests: number;
}

const defaults: BatchOptions = { files: 100, warmup: 3, requests: 20 };

interface BatchResponse {
  batchId: string;
  items: Array<{ mediaId?: string; error?: { code: string } }>;
}

/** SPEC.md §9: `POST /media/upload-sessions` with 100 files, p95 under 500 ms (sequential requests). */
export async function measureUploadBatch(ctx: BenchContext, options: Partial<BatchOptions> = {}): Promise<Row[]> {
  const o = { ...defaults, ...options };
  const url = `${ctx.api.url}/api/v1/media/upload-sessions`;
  const latencies: number[] = [];
  let itemErrors = 0;
  for (let r = 0; r < o.warmup + o.requests; r++) {
    // One user per request keeps the per-user session rate limit out of the measurement.
    const token = await ctx.token(`bench-batch-${r}`);
    const files = Array.from({ length: o.files }, (_, i) => ({
      fileName: `album-${r}-${i}.jpg`,
      fileType: 'image/jpeg',
      fileSize: 2_000_000 + i * 40_000,
      mediaType: 'POST_IMAGE',
    }));
    const t0 = performance.now();
    const body = await postJson<BatchResponse>(url, token, { files });
    const elapsed = performance.now() - t0;
    itemErrors += body.items.filter((item) => item.error || !item.mediaId).length;
    if (r >= o.warmup) latencies.push(elapsed);
  }
  const s = summarize(latencies);
  const rows: Row[] = [
    { metric: 'load', value: `${o.requests} sequential batches of ${o.files} files after ${o.warmup} warm-up` },
    { metric: 'upload-sessions p50 / p95 / max', value: `${ms(s.p50)} / ${ms(s.p95)} / ${ms(s.max)}` },
    { metric: 'per file (p50 / files)', value: ms(s.p50 / o.files) },
  ];
  if (itemErrors) rows.push({ metric: 'items with an error', value: String(itemErrors) });
  rows.push({ metric: 'upload-sessions p95', value: ms(s.p95), target: '< 500 ms', met: s.p95 < 500 && itemErrors === 0 });
  return rows;
}

export const uploadBatchSection: Section = { name: 'POST /media/upload-sessions, 100 files', run: (ctx) => measureUploadBatch(ctx) };
