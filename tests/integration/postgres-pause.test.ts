import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { freePort } from '../../devstack/ports';
import { projectRoot } from '../../devstack/tools';
import { createDataSource, runMigrations } from '../../services/shared/db/data-source';
import { realJpeg } from '../fixtures/media';
import { until } from '../../devstack/poll';
import { mediaWorkflowId } from '../../workflows/media-upload.workflow';
import { startPlatform, uniqueUser, waitForStatus, type Platform } from '../harness/platform';

/** Longest the server stays stopped; each request must answer well before (its bound: 2 s per statement). */
const PAUSE_MS = 20_000;
const POOL_SIZE = 4;

/**
 * A PostgreSQL that is stopped (SIGSTOP on the postmaster and every backend) keeps its
 * connections open and never answers: a request that already holds a pooled connection must
 * answer 503 within DB_QUERY_TIMEOUT_MS, not hang for the outage, and the connections it gave
 * up on must not stay in the pool. The server is this file's own, so pausing it disturbs no other file.
 */
describe('a paused PostgreSQL', () => {
  let dir: string;
  let pg: ChildProcess;
  let databaseUrl: string;
  let p: Platform;
  const created: Array<{ user: string; mediaId: string }> = [];

  /** The postmaster (first line of postmaster.pid) and its children: the backends and helpers. */
  const serverPids = () => {
    const postmaster = Number(readFileSync(join(dir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0]);
    const children = spawnSync('ps', ['-o', 'pid=', '--ppid', String(postmaster)]).stdout.toString().trim().split(/\s+/).filter(Boolean).map(Number);
    return [postmaster, ...children];
  };
  let paused: number[] = [];
  const resume = () => {
    for (const pid of paused) process.kill(pid, 'SIGCONT');
    paused = [];
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'media-pg-pause-'));
    pg = spawn(process.execPath, ['--import', 'tsx', 'tests/harness/postgres-process.ts', join(dir, 'pg'), String(await freePort())], {
      cwd: projectRoot,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const [line] = (await once(createInterface({ input: pg.stdout! }), 'line')) as [string];
    ({ databaseUrl } = JSON.parse(line) as { databaseUrl: string });
    await runMigrations(databaseUrl);
    // No storage quota: a session's first statement is then its INSERT, after its workflow started.
    p = await startPlatform({ DATABASE_URL: databaseUrl, DB_POOL_SIZE: String(POOL_SIZE), DB_QUERY_TIMEOUT_MS: '2000', USER_STORAGE_QUOTA_BYTES: '0' }, { videoWorker: false });
  });
  afterAll(async () => {
    // Never leave the server stopped, whatever failed.
    resume();
    for (const { user, mediaId } of created) {
      await p.call(user, `/media/${mediaId}`, { method: 'DELETE' });
      await waitForStatus(p, user, mediaId, ['CANCELLED', 'DELETED']).catch(() => undefined);
    }
    await p?.stop();
    if (pg && pg.exitCode === null) {
      pg.kill('SIGTERM');
      await once(pg, 'exit');
    }
    rmSync(dir, { recursive: true, force: true });
  });

  const session = async (user: string, body: Buffer) => {
    const res = await p.call(user, '/media/upload-session', { body: { fileName: 'f.jpg', fileType: 'image/jpeg', fileSize: body.length, mediaType: 'POST_IMAGE' } });
    expect(res.status).toBe(201);
    created.push({ user, mediaId: res.body.mediaId });
    return res.body as { mediaId: string; upload: { url: string; headers: Record<string, string> } };
  };

  it('answers reads, complete and DELETE with 503 while it is stopped, then serves normally with a healthy pool', async () => {
    const user = uniqueUser('pgpause');
    const body = await realJpeg(2000);
    const uploaded = await session(user, body);
    expect((await fetch(uploaded.upload.url, { method: 'PUT', body, headers: uploaded.upload.headers })).status).toBe(200);
    const doomed = await session(user, body);
    // Pooled connections open and idle: the requests below take them and send their statements
    // into a server that does not answer (before the fix they waited for the whole pause).
    await Promise.all(Array.from({ length: POOL_SIZE }, () => p.call(user, `/media/${uploaded.mediaId}`)));

    paused = serverPids();
    for (const pid of paused) process.kill(pid, 'SIGSTOP');
    try {
      const events: string[] = [];
      const track = <T>(name: string, call: Promise<T>) => call.then((res) => (events.push(name), res));
      const answered = Promise.all([
        track('get', p.call(user, `/media/${uploaded.mediaId}`)),
        track('complete', p.call(user, `/media/${uploaded.mediaId}/complete`, { body: {} })),
        track('delete', p.call(user, `/media/${doomed.mediaId}`, { method: 'DELETE' })),
      ]);
      await Promise.race([answered, new Promise((r) => setTimeout(r, PAUSE_MS))]);
      events.push('resume');
      resume();
      const answers = await answered;

      for (const res of answers) {
        expect(res.status).toBe(503);
        // A request that found no pooled connection waits for a new one and answers OVERLOADED.
        expect(['DEPENDENCY_UNAVAILABLE', 'OVERLOADED']).toContain(res.body.error.code);
        expect(res.headers.get('retry-after')).toBeTruthy();
      }
      // At least one gave up on a statement sent on a held connection.
      expect(answers.some((res) => res.body.error.code === 'DEPENDENCY_UNAVAILABLE')).toBe(true);
      // Every one answered while PostgreSQL was still stopped.
      expect(events.at(-1)).toBe('resume');
    } finally {
      resume();
    }

    // Connections given up on were dropped, not handed out again: more reads than the pool holds all succeed.
    for (let i = 0; i < 2 * POOL_SIZE; i++) {
      const read = await p.call(user, `/media/${uploaded.mediaId}`);
      expect(read.status).toBe(200);
    }
    expect((await p.call(user, `/media/${uploaded.mediaId}/complete`, { body: {} })).status).toBe(202);
    expect((await p.call(user, `/media/${doomed.mediaId}`, { method: 'DELETE' })).status).toBe(202);
  });

  it('closes a connection whose statement ran out instead of reusing it', async () => {
    const dataSource = await createDataSource(databaseUrl, 1, { queryTimeoutMs: 300 }).initialize();
    try {
      const backend = async () => ((await dataSource.query<Array<{ pid: number }>>('SELECT pg_backend_pid() AS pid'))[0]!).pid;
      const first = await backend();
      await expect(dataSource.query('SELECT pg_sleep(3)')).rejects.toThrow('Query read timeout');
      // The only pooled connection still has the sleep in flight: reused, this would wait behind it.
      expect(await backend()).not.toBe(first);
    } finally {
      await dataSource.destroy();
    }
  });
  it('keeps the workflow of a session whose INSERT timed out: the row PostgreSQL commits on resuming is a live session', async () => {
    const user = uniqueUser('pginsert');
    await Promise.all(Array.from({ length: POOL_SIZE }, () => p.call(user, '/media')));
    paused = serverPids();
    for (const pid of paused) process.kill(pid, 'SIGSTOP');
    let answers: Array<{ status: number; body: any }>;
    try {
      // Each starts its workflow, then sends its INSERT into the stopped server and gives up on it.
      answers = await Promise.all(
        Array.from({ length: 3 }, (_, i) => p.call(user, '/media/upload-session', { body: { fileName: `i${i}.jpg`, fileType: 'image/jpeg', fileSize: 1000 + i, mediaType: 'POST_IMAGE' } })),
      );
    } finally {
      resume();
    }
    expect(answers.map((a) => a.status)).toEqual([503, 503, 503]);
    // The INSERTs were in the server's hands: on resuming it commits them. Each row it wrote must
    // belong to a running workflow (before, the workflow was terminated: AWAITING_UPLOAD for good).
    const rows = await until('the committed rows', async () => {
      const items = (await p.call(user, '/media')).body.items as Array<{ mediaId: string; status: string }>;
      return items.length > 0 ? items : undefined;
    }, { timeoutMs: 15_000 });
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) {
      created.push({ user, mediaId: row.mediaId });
      expect(row.status).toBe('AWAITING_UPLOAD');
      expect((await p.temporal.workflow.getHandle(mediaWorkflowId(row.mediaId)).describe()).status.name).toBe('RUNNING');
    }
  });
});
