import { tsToMs } from '@temporalio/common/lib/time';
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { mediaWorkflowId } from '../../workflows/media-upload.workflow';
import { isTerminal, type MediaStatus, type MediaType } from '../../services/shared/media-types';
import { makeThumbnails } from '../../services/shared/media/images';
import { MEDIA_TYPE_RULES } from '../../services/shared/media-types';
import { median, noiseJpeg } from '../fixtures';
import { mib, ms, summarize } from '../measure';
import { cpuDelta, cpuSeconds } from '../procs';
import { postJson, type BenchContext } from '../platform';
import type { Row } from '../report';
import type { Section } from '../section';

export interface UploadE2eOptions {
  uploads: number;
  /** Give up on what is not terminal by then. */
  timeoutMs: number;
}

const defaults: UploadE2eOptions = { uploads: 100, timeoutMs: 120_000 };

/** Four distinct noise JPEGs of about 2.5, 3.5, 4.5 and 5.5 MB, reused round robin. */
export const imageSpecs = [
  { width: 2400, height: 1800, noise: 40, seed: 1 },
  { width: 3000, height: 2000, noise: 44, seed: 2 },
  { width: 3200, height: 2400, noise: 44, seed: 3 },
  { width: 3600, height: 2400, noise: 48, seed: 4 },
] as const;

interface TaskTimes {
  /** Scheduled → started: waiting for a worker slot (or the task queue poll). */
  queue: number[];
  /** Started → completed. */
  run: number[];
}

/**
 * Where the time went, from the workflow histories: per activity type the wait for a slot and
 * the run, and the same for workflow tasks (ActivityTaskStarted carries the real start time).
 */
export async function historyBreakdown(ctx: BenchContext, mediaIds: string[]): Promise<Map<string, TaskTimes>> {
  const byType = new Map<string, TaskTimes>();
  const add = (type: string, queue: number, run: number) => {
    const t = byType.get(type) ?? { queue: [], run: [] };
    t.queue.push(queue);
    t.run.push(run);
    byType.set(type, t);
  };
  const histories = await Promise.all(mediaIds.map((id) => ctx.temporal.workflow.getHandle(mediaWorkflowId(id)).fetchHistory()));
  for (const history of histories) {
    const events = history.events ?? [];
    const at = new Map<string, { time: number; type?: string }>();
    for (const e of events) {
      const id = String(e.eventId);
      const time = tsToMs(e.eventTime);
      at.set(id, { time, type: e.activityTaskScheduledEventAttributes?.activityType?.name ?? undefined });
      if (e.activityTaskCompletedEventAttributes) {
        const a = e.activityTaskCompletedEventAttributes;
        const scheduled = at.get(String(a.scheduledEventId));
        const start = at.get(String(a.startedEventId));
        if (scheduled && start) add(`activity ${scheduled.type ?? '?'}`, start.time - scheduled.time, time - start.time);
      } else if (e.workflowTaskCompletedEventAttributes) {
        const w = e.workflowTaskCompletedEventAttributes;
        const scheduled = at.get(String(w.scheduledEventId));
        const start = at.get(String(w.startedEventId));
        if (scheduled && start) add('workflow task', start.time - scheduled.time, time - start.time);
      }
    }
  }
  return byType;
}

interface Session {
  mediaId: string;
  upload:
    | { method: 'PUT'; url: string; headers: Record<string, string> }
    | { method: 'MULTIPART'; partSize: number; partCount: number; parts: Array<{ partNumber: number; url: string; headers: Record<string, string> }> };
}

/** PUTs the body to the session's presigned URL(s); returns the parts `complete` needs for a multipart upload. */
async function putBody(upload: Session['upload'], body: Buffer, signal: AbortSignal): Promise<Array<{ partNumber: number; etag: string }> | undefined> {
  if (upload.method === 'PUT') {
    const put = await fetch(upload.url, { method: 'PUT', body, headers: upload.headers, signal });
    await put.arrayBuffer();
    if (put.status !== 200) throw new Error(`PUT answered ${put.status}`);
    return undefined;
  }
  if (upload.parts.length < upload.partCount) throw new Error(`${upload.partCount} parts: more than the session's first part URLs`);
  const parts: Array<{ partNumber: number; etag: string }> = [];
  for (const part of upload.parts) {
    const start = (part.partNumber - 1) * upload.partSize;
    const res = await fetch(part.url, { method: 'PUT', body: body.subarray(start, start + upload.partSize), headers: part.headers, signal });
    await res.arrayBuffer();
    const etag = res.headers.get('etag');
    if (res.status !== 200 || !etag) throw new Error(`PUT of part ${part.partNumber} answered ${res.status}`);
    parts.push({ partNumber: part.partNumber, etag });
  }
  return parts;
}

export interface Outcome {
  mediaId?: string;
  status: MediaStatus | 'TIMEOUT' | 'ERROR';
  /** Start → 202 of complete (session, PUT, complete). */
  uploadedMs: number;
  /** Start → terminal status event. */
  doneMs: number;
  error?: string;
}

/**
 * Follows GET /media/{id}/events (SSE) until a terminal status; one stream per upload instead
 * of polling, so the measuring client adds no load that the API in this process must serve.
 */
async function terminalStatus(url: string, token: string, signal: AbortSignal): Promise<MediaStatus | undefined> {
  const res = await fetch(url, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' }, signal });
  if (res.status !== 200 || !res.body) throw new Error(`GET events answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let pending = '';
  let last: MediaStatus | undefined;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return last;
      pending += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = pending.indexOf('\n\n')) >= 0) {
        const block = pending.slice(0, end);
        pending = pending.slice(end + 2);
        const lines = block.split('\n');
        if (!lines.includes('event: status')) continue;
        const data = lines.filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
        last = (JSON.parse(data) as { status: MediaStatus }).status;
        if (isTerminal(last)) return last;
      }
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}

/** One file for uploadToTerminal. */
export interface UploadFile {
  body: Buffer;
  fileName: string;
  fileType: string;
  mediaType: MediaType;
}

/**
 * One upload through the public API: upload-session, PUT to the presigned URL (or each part's,
 * for a file above the multipart threshold), complete, then
 * the SSE status stream until a terminal status. Never throws: failures are in the outcome.
 * `api` is the API's `/api/v1` base URL; times are measured from `t0` (performance.now()).
 */
export async function uploadToTerminal(api: string, token: string, file: UploadFile, t0: number, signal: AbortSignal): Promise<Outcome> {
  let uploadedMs = Number.NaN;
  let mediaId: string | undefined;
  try {
    const session = await postJson<Session>(`${api}/media/upload-session`, token, {
      fileName: file.fileName,
      fileType: file.fileType,
      fileSize: file.body.length,
      mediaType: file.mediaType,
    });
    mediaId = session.mediaId;
    const parts = await putBody(session.upload, file.body, signal);
    await postJson(`${api}/media/${session.mediaId}/complete`, token, parts ? { parts } : {}, 202);
    uploadedMs = performance.now() - t0;
    const status = await terminalStatus(`${api}/media/${session.mediaId}/events`, token, signal);
    return { mediaId, status: status && isTerminal(status) ? status : 'TIMEOUT', uploadedMs, doneMs: performance.now() - t0 };
  } catch (err) {
    return { mediaId, status: signal.aborted ? 'TIMEOUT' : 'ERROR', uploadedMs, doneMs: performance.now() - t0, error: (err as Error).message };
  }
}

/**
 * SPEC.md §9: N uploads of 2–6 MB JPEGs at once through the whole path: upload-session, PUT to
 * the presigned URL, complete, then the workflow (verify, clamd scan, thumbnails, promote) on
 * the light worker in this process with its default concurrency, until every one is READY.
 */
export async function measureUploadE2e(ctx: BenchContext, options: Partial<UploadE2eOptions> = {}): Promise<Row[]> {
  const o = { ...defaults, ...options };
  const images = await Promise.all(imageSpecs.map((s) => noiseJpeg(s.width, s.height, { noise: s.noise, quality: 92, seed: s.seed })));
  // CPU of the thumbnail work alone (one libvips thread, as the worker), before the run: the
  // floor of what the uploads cost in image processing.
  const thumbCpu = async (img: Buffer) => {
    const c0 = process.cpuUsage();
    await makeThumbnails(img, MEDIA_TYPE_RULES.POST_IMAGE.thumbnailWidths);
    const c = process.cpuUsage(c0);
    return (c.user + c.system) / 1000;
  };
  await thumbCpu(images[0]!); // warm-up: the first call pays for sharp's and V8's start
  const thumbCpuMs: number[] = [];
  for (const img of images) thumbCpuMs.push(median([await thumbCpu(img), await thumbCpu(img), await thumbCpu(img)]));
  const thumbCpuTotal = Array.from({ length: o.uploads }, (_, i) => thumbCpuMs[i % images.length]!).reduce((a, b) => a + b, 0) / 1000;
  // One user per upload keeps the per-user session rate limit out of the measurement.
  const tokens = await Promise.all(Array.from({ length: o.uploads }, (_, i) => ctx.token(`bench-e2e-${i}`)));
  const api = `${ctx.api.url}/api/v1`;
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), o.timeoutMs);

  const one = (i: number, t0: number): Promise<Outcome> =>
    uploadToTerminal(api, tokens[i]!, { body: images[i % images.length]!, fileName: `e2e-${i}.jpg`, fileType: 'image/jpeg', mediaType: 'POST_IMAGE' }, t0, abort.signal);

  const cpuBefore = cpuSeconds();
  const t0 = performance.now();
  let outcomes: Outcome[];
  try {
    outcomes = await Promise.all(Array.from({ length: o.uploads }, (_, i) => one(i, t0)));
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
  const wallMs = performance.now() - t0;
  const cpu = cpuDelta(cpuBefore, cpuSeconds());
  const cpuTotal = cpu.reduce((sum, [, v]) => sum + v, 0);

  const ready = outcomes.filter((r) => r.status === 'READY');
  const counts = new Map<string, number>();
  for (const r of outcomes) counts.set(r.status, (counts.get(r.status) ?? 0) + 1);
  const done = summarize(ready.map((r) => r.doneMs));
  const uploaded = summarize(outcomes.filter((r) => Number.isFinite(r.uploadedMs)).map((r) => r.uploadedMs));
  const lastReady = ready.length ? Math.max(...ready.map((r) => r.doneMs)) : Number.NaN;
  const firstError = outcomes.find((r) => r.error)?.error;
  const total = images.reduce((sum, img, i) => sum + img.length * Math.ceil((o.uploads - i) / images.length), 0);

  const breakdown = await historyBreakdown(ctx, outcomes.flatMap((r) => (r.mediaId ? [r.mediaId] : []))).catch((err: unknown) => {
    console.error('bench: history breakdown failed:', err);
    return new Map<string, TaskTimes>();
  });
  const rows: Row[] = [
    {
      metric: 'load',
      value: `${o.uploads} uploads at once, ${images.length} distinct JPEGs of ${images.map((b) => mib(b.length).replace(' MiB', '')).join('/')} MiB (${mib(total)} in all); clamd on; light worker LIGHT_MAX_CONCURRENT_ACTIVITIES=${ctx.config.LIGHT_MAX_CONCURRENT_ACTIVITIES}`,
    },
    { metric: 'statuses', value: [...counts].map(([s, n]) => `${s} ${n}`).join(', ') + (firstError ? ` (first error: ${firstError.slice(0, 120)})` : '') },
    { metric: 'session + PUT + complete p50 / p95 / max', value: `${ms(uploaded.p50)} / ${ms(uploaded.p95)} / ${ms(uploaded.max)}` },
    { metric: 'start → READY per upload p50 / p95 / max', value: `${ms(done.p50)} / ${ms(done.p95)} / ${ms(done.max)}` },
    { metric: 'wall time (start → last READY)', value: `${(lastReady / 1000).toFixed(1)} s; ${((ready.length / wallMs) * 1000).toFixed(1)} uploads/s` },
    {
      metric: `all ${o.uploads} READY`,
      value: ready.length === o.uploads ? `${(lastReady / 1000).toFixed(1)} s` : `${ready.length}/${o.uploads} READY after ${(wallMs / 1000).toFixed(1)} s`,
      target: '< 30 s',
      met: ready.length === o.uploads && lastReady < 30_000,
    },
  ];
  rows.push({
    metric: 'CPU used during the run',
    value: `${cpuTotal.toFixed(0)} s of ${((cpus().length * wallMs) / 1000).toFixed(0)} s available (${cpus().length} cores × wall): ${cpu.map(([n, v]) => `${n} ${v.toFixed(1)} s`).join(', ')}`,
  });
  rows.push({
    metric: '  of which makeThumbnails (alone, median of 3)',
    value: `${thumbCpuMs.map((v) => v.toFixed(0)).join('/')} ms CPU per image → ≈ ${thumbCpuTotal.toFixed(0)} s for ${o.uploads} uploads (${((100 * thumbCpuTotal) / cpuTotal).toFixed(0)}% of the CPU used)`,
  });
  for (const [type, t] of [...breakdown].sort((x, y) => summarize(y[1].run).mean * y[1].run.length - summarize(x[1].run).mean * x[1].run.length)) {
    const q = summarize(t.queue);
    const r = summarize(t.run);
    rows.push({
      metric: `  ${type} ×${t.run.length}`,
      value: `run p50 ${ms(r.p50)} p95 ${ms(r.p95)} (Σ ${(r.mean * r.count / 1000).toFixed(1)} s); wait for slot p50 ${ms(q.p50)} p95 ${ms(q.p95)}`,
    });
  }
  return rows;
}

export const uploadE2eSection: Section = {
  name: '100 concurrent image uploads to READY (API + workflow)',
  clamd: true,
  run: (ctx) => measureUploadE2e(ctx),
};
