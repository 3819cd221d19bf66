import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { freePort } from '../../devstack/ports';
import { startProcess, tcpOpen, waitFor } from '../../devstack/process';
import { isTerminal, type MediaStatus } from '../../services/shared/media-types';
import { median } from '../fixtures';
import { ms } from '../measure';
import { postJson, repoRoot, type BenchContext } from '../platform';
import type { Row } from '../report';
import type { Section } from '../section';
import { cpuDelta, cpuSeconds, waitForQuietMachine } from '../procs';
import { cpuPerCall, cpuTotal, withTarget, type Target } from './isolation';

export interface TusdComparisonOptions {
  files: number;
  fileBytes: number;
  inFlight: number;
}

const defaults: TusdComparisonOptions = { files: Number(process.env.BENCH_TUSD_FILES ?? 100), fileBytes: 5 * 1024 * 1024, inFlight: 10 };

/** Built by `scripts/provision.sh tusd` (pinned in scripts/tool-versions.env); `npm run bench` runs it. */
const tusdBinary = () => join(repoRoot, '.tools', 'go', 'bin', 'tusd');

/** `n` jobs, `inFlight` at a time; wall time in ms. */
async function pool(n: number, inFlight: number, job: (i: number) => Promise<void>): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < n) await job(next++);
    }),
  );
  return performance.now() - t0;
}

async function expectStatus(res: Response, status: number, what: string): Promise<void> {
  if (res.status !== status) throw new Error(`${what} answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
  await res.arrayBuffer();
}

/**
 * tus v1 core protocol as a client sends it by default: POST creates the upload, one PATCH
 * sends the bytes (the file fits one request), tusd writes them to S3 (its S3 store).
 */
async function tusUpload(base: string, body: Buffer): Promise<void> {
  const created = await fetch(base, { method: 'POST', headers: { 'tus-resumable': '1.0.0', 'upload-length': String(body.length) } });
  const location = created.headers.get('location');
  await expectStatus(created, 201, 'tus POST');
  const patched = await fetch(new URL(location!, base), {
    method: 'PATCH',
    headers: { 'tus-resumable': '1.0.0', 'upload-offset': '0', 'content-type': 'application/offset+octet-stream' },
    body,
  });
  await expectStatus(patched, 204, 'tus PATCH');
}

/**
 * The issue's comparison: 100 files of 5 MiB, 10 in flight, through tusd (tus v1, S3 store) and
 * through this API (session → presigned PUT → complete), on the same S3 server and on the
 * Temporal the dev stack uses (a SQLite file). Our path ends at `complete`'s 202, the way tusd's
 * ends at the last PATCH: processing comes after either.
 */
export async function compareWithTusd(ctx: BenchContext, t: Target, options: Partial<TusdComparisonOptions> = {}): Promise<Row[]> {
  const o = { ...defaults, ...options };
  if (!existsSync(tusdBinary())) throw new Error('tusd is not built: run `bash scripts/provision.sh tusd` (npm run bench does)');
  const body = randomBytes(o.fileBytes);

  const port = await freePort();
  const tusd = startProcess(
    'tusd',
    tusdBinary(),
    ['-host', '127.0.0.1', '-port', String(port), '-base-path', '/files/', '-s3-bucket', ctx.config.S3_INCOMING_BUCKET, '-s3-endpoint', ctx.stack.env.S3_ENDPOINT!, '-s3-object-prefix', 'tusd/', '-verbose=false', '-show-startup-logs=false'],
    {
      env: { AWS_REGION: ctx.config.S3_REGION, AWS_ACCESS_KEY_ID: ctx.stack.env.AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: ctx.stack.env.AWS_SECRET_ACCESS_KEY },
      logFile: join(ctx.dataDir, 'logs', 'tusd.log'),
    },
  );
  let tusWall: number;
  let tusCpu: Array<[string, number]>;
  try {
    await waitFor('tusd', () => tcpOpen(port), 30_000, tusd);
    const base = `http://127.0.0.1:${port}/files/`;
    await pool(o.inFlight, o.inFlight, () => tusUpload(base, body));
    await waitForQuietMachine();
    const cpuBefore = cpuSeconds();
    tusWall = await pool(o.files, o.inFlight, () => tusUpload(base, body));
    tusCpu = cpuDelta(cpuBefore, cpuSeconds());
  } finally {
    await tusd.stop();
  }

  const api = `${t.api.url}/api/v1`;
  /** One pass of our path over `o.files` files; the media ids it created, for the drain. */
  const ourPass = async () => {
    const steps = { session: [] as number[], put: [] as number[], complete: [] as number[] };
    const ids: Array<{ mediaId: string; token: string }> = [];
    const ours = async (i: number, record: boolean) => {
      const token = await ctx.token(`bench-tus-${i % o.inFlight}`);
      const t0 = performance.now();
      const session = await postJson<{ mediaId: string; upload: { method: string; url: string; headers: Record<string, string> } }>(`${api}/media/upload-session`, token, {
        fileName: `tus-${i}.jpg`,
        fileType: 'image/jpeg',
        fileSize: body.length,
        mediaType: 'POST_IMAGE',
      });
      if (session.upload.method !== 'PUT') throw new Error(`expected a single PUT for ${body.length} bytes`);
      const t1 = performance.now();
      await expectStatus(await fetch(session.upload.url, { method: 'PUT', headers: session.upload.headers, body }), 200, 'S3 PUT');
      const t2 = performance.now();
      await postJson(`${api}/media/${session.mediaId}/complete`, token, {}, 202);
      const t3 = performance.now();
      ids.push({ mediaId: session.mediaId, token });
      if (record) {
        steps.session.push(t1 - t0);
        steps.put.push(t2 - t1);
        steps.complete.push(t3 - t2);
      }
    };
    await pool(o.inFlight, o.inFlight, (i) => ours(1_000_000 + i, false));
    const cpuBefore = cpuSeconds();
    const wall = await pool(o.files, o.inFlight, (i) => ours(i, true));
    return { wall, steps, ids, cpu: cpuDelta(cpuBefore, cpuSeconds()) };
  };
  /** Waits until every media of a pass has ended (the bytes are random: verification rejects them); ms and statuses. */
  const drain = async (ids: Array<{ mediaId: string; token: string }>) => {
    const t0 = performance.now();
    const statuses = new Map<string, number>();
    for (const { mediaId, token } of ids) {
      for (let status = ''; ; await delay(200)) {
        const res = await fetch(`${api}/media/${mediaId}`, { headers: { authorization: `Bearer ${token}` } });
        status = ((await res.json()) as { status: MediaStatus }).status;
        if (isTerminal(status as MediaStatus)) {
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
          break;
        }
        if (performance.now() - t0 > DRAIN_TIMEOUT_MS) throw new Error(`media ${mediaId} still ${status} ${DRAIN_TIMEOUT_MS / 1000} s after the pass`);
      }
    }
    return { ms: performance.now() - t0, statuses: [...statuses].map(([s, n]) => `${s} ${n}`).join(', ') };
  };
  const stepMedians = (steps: Awaited<ReturnType<typeof ourPass>>['steps']) => `${ms(median(steps.session))} / ${ms(median(steps.put))} / ${ms(median(steps.complete))}`;

  // Processing deferred: the light worker stops for the pass (start and signal are accepted by
  // Temporal without it) and drains the backlog after. On a cluster the workers run on nodes of
  // their own; here they would take the same 2 cores from the upload path.
  await t.lightWorker.pause();
  let deferred: Awaited<ReturnType<typeof ourPass>>;
  try {
    await waitForQuietMachine();
    deferred = await ourPass();
  } finally {
    await t.lightWorker.resume();
  }
  const deferredDrain = await drain(deferred.ids);
  // Processing alongside: the worker verifies, rejects and cleans up while later files upload.
  await waitForQuietMachine();
  const alongside = await ourPass();
  const alongsideDrain = await drain(alongside.ids);
  const speedup = tusWall / deferred.wall;
  return [
    { metric: 'load', value: `${o.files} files of ${(o.fileBytes / 1024 / 1024).toFixed(0)} MiB, ${o.inFlight} in flight, same S3 server; our path on SQLite Temporal (as \`npm run dev\`)` },
    { metric: 'tusd (tus v1, S3 store): all files', value: `${(tusWall / 1000).toFixed(1)} s` },
    { metric: '  CPU per file, by process', value: cpuPerCall(tusCpu, o.files) },
    {
      metric: 'this API (session → PUT → complete), processing deferred: all files',
      value: `${(deferred.wall / 1000).toFixed(1)} s; then the worker drained them in ${(deferredDrain.ms / 1000).toFixed(1)} s (${deferredDrain.statuses})`,
    },
    { metric: '  our steps, medians: session / PUT / complete', value: stepMedians(deferred.steps) },
    { metric: '  CPU per file, by process', value: cpuPerCall(deferred.cpu, o.files) },
    {
      metric: '  bound on this machine: tusd CPU ÷ the CPU both paths share',
      value: `${(cpuTotal(tusCpu) / sharedCpu(deferred.cpu)).toFixed(2)}× (shared: the client sending the bytes and S3 storing them, ${((1000 * sharedCpu(deferred.cpu)) / o.files).toFixed(1)} ms of our ${((1000 * cpuTotal(deferred.cpu)) / o.files).toFixed(1)} ms per file; an API path costing nothing would reach it)`,
    },
    { metric: 'our path speed-up over tusd (processing deferred)', value: `${speedup.toFixed(2)}×`, target: '≥ 1.5×', met: speedup >= 1.5 },
    {
      metric: 'this API, processing alongside on the same 2 cores: all files',
      value: `${(alongside.wall / 1000).toFixed(1)} s (${(tusWall / alongside.wall).toFixed(2)}× tusd); drained ${(alongsideDrain.ms / 1000).toFixed(1)} s after (${alongsideDrain.statuses})`,
    },
    { metric: '  our steps, medians: session / PUT / complete', value: stepMedians(alongside.steps) },
    { metric: '  CPU per file, by process', value: cpuPerCall(alongside.cpu, o.files) },
  ];
}

/**
 * CPU seconds of the part of a pass both paths do alike: this process (the client sending the
 * bytes) and SeaweedFS (`weed`, storing them). With every core busy, tusd's CPU per file ÷ this
 * is the most our path could be faster even if session and complete cost nothing.
 */
const sharedCpu = (delta: Array<[string, number]>) => cpuTotal(delta.filter(([name]) => name === 'weed' || name === 'node (this process)'));

/** How long the media of a pass may take to end after it, ms. */
const DRAIN_TIMEOUT_MS = 180_000;

export const tusdSection: Section = {
  name: 'upload path beside tusd: 100 × 5 MiB, 10 in flight',
  run: (ctx) => withTarget(ctx, 'sqlite', (t) => compareWithTusd(ctx, t)),
};
