import express from 'express';
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import { closedLoop, ms, ratio, summarize, type LoadResult } from '../measure';
import { postJson, type BenchContext } from '../platform';
import type { Row } from '../report';
import type { Section } from '../section';

export interface UploadSessionLoadOptions {
  clients: number;
  warmup: number;
  requests: number;
}

const defaults: UploadSessionLoadOptions = { clients: 50, warmup: 200, requests: 1500 };

const sessionBody = (i: number) => ({ fileName: `photo-${i}.jpg`, fileType: 'image/jpeg', fileSize: 2_500_000 + (i % 1000), mediaType: 'POST_IMAGE' });

/**
 * A bare Express app in this process with the API's JSON body parsing and nothing else:
 * the floor for the same request over the same loopback with the same client.
 */
async function startBareExpress(): Promise<{ url: string; close(): Promise<void> }> {
  const app = express();
  app.use(express.json({ limit: '256kb', strict: true }));
  app.post('/echo', (req, res) => {
    res.status(201).json({ ok: true, fileName: (req.body as { fileName?: string }).fileName });
  });
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}/echo`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Warm-up, then the measured run, with one user (and token) per client. */
async function load(url: string, tokens: string[], o: UploadSessionLoadOptions): Promise<LoadResult> {
  const call = async (client: number, i: number) => {
    await postJson(url, tokens[client]!, sessionBody(i));
  };
  await closedLoop(o.clients, o.warmup, call);
  return closedLoop(o.clients, o.requests, call);
}

/**
 * The Temporal share of a session: client.workflow.start under the same load, of a workflow
 * type no worker polls for (the dev server's own cost, without HTTP, PostgreSQL or signing).
 */
async function loadWorkflowStart(ctx: BenchContext, o: UploadSessionLoadOptions): Promise<LoadResult> {
  const taskQueue = `bench-unpolled-${randomUUID().slice(0, 8)}`;
  const call = async () => {
    await ctx.temporal.workflow.start('BenchUnpolledWorkflow', { taskQueue, workflowId: `bench-start/${randomUUID()}`, args: [{ fileName: 'photo.jpg' }] });
  };
  await closedLoop(o.clients, o.warmup, call);
  return closedLoop(o.clients, o.requests, call);
}

function rowsFor(label: string, r: LoadResult): Row[] {
  const s = summarize(r.latencies);
  const rows: Row[] = [
    { metric: `${label} p50 / p95 / p99`, value: `${ms(s.p50)} / ${ms(s.p95)} / ${ms(s.p99)}` },
    { metric: `${label} throughput`, value: `${((s.count / r.wallMs) * 1000).toFixed(0)} req/s (${s.count} ok, max ${ms(s.max)})` },
  ];
  if (r.failures) rows.push({ metric: `${label} failures`, value: `${r.failures}: ${r.firstFailure ?? ''}` });
  return rows;
}

/**
 * SPEC.md §9: `POST /media/upload-session` p95 under 50 ms with 50 concurrent clients, beside a
 * bare Express endpoint and a bare Temporal workflow start under the same load. The bare
 * endpoint runs first, so the API's workflows (run by the light worker in this process) do not
 * weigh on it.
 */
export async function measureUploadSession(ctx: BenchContext, options: Partial<UploadSessionLoadOptions> = {}): Promise<Row[]> {
  const o = { ...defaults, ...options };
  const tokens = await Promise.all(Array.from({ length: o.clients }, (_, c) => ctx.token(`bench-session-${c}`)));
  const bare = await startBareExpress();
  let bareResult: LoadResult;
  try {
    bareResult = await load(bare.url, tokens, o);
  } finally {
    await bare.close();
  }
  const apiResult = await load(`${ctx.api.url}/api/v1/media/upload-session`, tokens, o);
  const startResult = await loadWorkflowStart(ctx, o);
  const api = summarize(apiResult.latencies);
  const base = summarize(bareResult.latencies);
  return [
    { metric: 'load', value: `${o.clients} concurrent clients, ${o.requests} requests after ${o.warmup} warm-up` },
    ...rowsFor('upload-session', apiResult),
    ...rowsFor('bare express', bareResult),
    ...rowsFor('workflow.start alone', startResult),
    { metric: 'ratio upload-session / bare (p50, p95)', value: `${ratio(api.p50, base.p50)}, ${ratio(api.p95, base.p95)}` },
    { metric: 'upload-session p95', value: ms(api.p95), target: '< 50 ms', met: api.p95 < 50 && apiResult.failures === 0 },
  ];
}

export const uploadSessionSection: Section = { name: 'POST /media/upload-session, 50 concurrent clients', run: (ctx) => measureUploadSession(ctx) };
