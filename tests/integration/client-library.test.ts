import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  MediaClientError,
  MediaUploadClient,
  type MediaUploadClientOptions,
  type UploadProgress,
  type UploadSession,
} from '../../services/client';
import { makeDocuments } from '../fixtures/corpus-documents';
import { realJpeg, sha256Base64 } from '../fixtures/media';
import { startPlatform, uniqueUser, waitForStatus, type Platform } from '../harness/platform';

const MiB = 1024 * 1024;
const root = resolve(__dirname, '..', '..');
/** Small multipart settings so that a few MiB make several parts. */
const multipartSettings = { MULTIPART_THRESHOLD_BYTES: String(6 * MiB), PART_SIZE_BYTES: String(5 * MiB) };

interface Call {
  method: string;
  url: URL;
  headers: Record<string, string>;
  body?: unknown;
}

/**
 * The real fetch, recording every request; `intercept` may answer a request itself (a fault)
 * or return undefined to let it through.
 */
function recordingFetch(intercept?: (call: Call, init: RequestInit | undefined) => Promise<Response | undefined> | undefined) {
  const calls: Call[] = [];
  const fetchImpl: typeof fetch = async (input, init) => {
    const url = new URL(String(input));
    const method = init?.method ?? 'GET';
    const headers = Object.fromEntries(
      Object.entries((init?.headers ?? {}) as Record<string, string>).map(([k, v]) => [k.toLowerCase(), v]),
    );
    const call: Call = { method, url, headers, body: typeof init?.body === 'string' ? JSON.parse(init.body) : undefined };
    calls.push(call);
    return (await intercept?.(call, init)) ?? fetch(input, init);
  };
  const isPartPut = (c: Call, partNumber?: number) =>
    c.method === 'PUT' &&
    c.url.searchParams.has('partNumber') &&
    (partNumber === undefined || c.url.searchParams.get('partNumber') === String(partNumber));
  return {
    fetch: fetchImpl,
    calls,
    partPuts: (partNumber?: number) => calls.filter((c) => isPartPut(c, partNumber)),
    api: (method: string, pathPattern: RegExp) => calls.filter((c) => c.method === method && pathPattern.test(c.url.pathname)),
  };
}

const sha256Hex = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('MediaUploadClient on the real stack', () => {
  let p: Platform;
  beforeAll(async () => {
    p = await startPlatform(multipartSettings, { videoWorker: false });
  });
  afterAll(() => p?.stop());

  const clientFor = (user: string, options: Partial<MediaUploadClientOptions> = {}) =>
    new MediaUploadClient({ baseUrl: p.api.url, token: () => p.token(user), retryDelayMs: 20, pollIntervalMs: 200, ...options });

  it('takes a single PUT to READY and reports progress up to the whole file', async () => {
    const user = uniqueUser('ada');
    const file = await realJpeg(200 * 1024);
    const progress: UploadProgress[] = [];
    const client = clientFor(user);
    const uploaded = await client.upload(file, { fileName: 'photo.jpg', onProgress: (e) => progress.push(e) });
    expect(uploaded.status).toBe('AWAITING_UPLOAD');
    expect(progress.at(-1)).toEqual({ mediaId: uploaded.mediaId, phase: 'uploaded', loaded: file.length, total: file.length });
    const loaded = progress.map((e) => e.loaded);
    expect(loaded).toEqual([...loaded].sort((a, b) => a - b));

    const media = await client.waitForReady(uploaded.mediaId);
    expect(media).toMatchObject({
      status: 'READY',
      mediaType: 'POST_IMAGE',
      mimeType: 'image/jpeg',
      fileName: 'photo.jpg',
      fileSize: file.length,
    });
    expect(media.thumbnails.length).toBeGreaterThan(0);
    const served = Buffer.from(await (await fetch(media.cdnUrl!)).arrayBuffer());
    expect(served.equals(file)).toBe(true);
  });

  it('sends the parts of a multipart upload in parallel and reaches READY', async () => {
    const user = uniqueUser('bea');
    const file = await realJpeg(21 * MiB);
    let inFlight = 0;
    let mostInFlight = 0;
    const spy = recordingFetch(async (call, init) => {
      if (!(call.method === 'PUT' && call.url.searchParams.has('partNumber'))) return undefined;
      inFlight++;
      mostInFlight = Math.max(mostInFlight, inFlight);
      try {
        return await fetch(call.url, init);
      } finally {
        inFlight--;
      }
    });
    let session: UploadSession | undefined;
    const client = clientFor(user, { concurrency: 3, fetch: spy.fetch });
    const { mediaId } = await client.upload(new Blob([file], { type: 'image/jpeg' }), {
      fileName: 'big.jpg',
      onSession: (s) => (session = s),
    });

    expect(session!.upload).toMatchObject({ method: 'MULTIPART', partSize: 5 * MiB, partCount: 5 });
    expect(
      spy
        .partPuts()
        .map((c) => Number(c.url.searchParams.get('partNumber')))
        .sort(),
    ).toEqual([1, 2, 3, 4, 5]);
    expect(mostInFlight).toBe(3);
    // The confirmation names every part with the ETag S3 gave it.
    const [complete] = spy.api('POST', /\/complete$/);
    expect((complete!.body as { parts: unknown[] }).parts).toHaveLength(5);
    expect((await client.waitForReady(mediaId)).status).toBe('READY');
    expect((await p.storage.head(p.config.S3_MEDIA_BUCKET, session!.storageKey))?.size).toBe(file.length);
  });

  it('retries a part whose PUT fails twice, then completes', async () => {
    const user = uniqueUser('cyd');
    const file = await realJpeg(12 * MiB);
    let failures = 0;
    const spy = recordingFetch((call) => {
      if (!(call.method === 'PUT' && call.url.searchParams.get('partNumber') === '2') || failures >= 2) return undefined;
      failures++;
      // First a dropped connection, then a storage server in trouble.
      return failures === 1
        ? Promise.reject(new TypeError('fetch failed'))
        : Promise.resolve(new Response('<Error><Code>SlowDown</Code></Error>', { status: 503 }));
    });
    const client = clientFor(user, { fetch: spy.fetch });
    const { mediaId } = await client.upload(file, { fileName: 'retry.jpg' });
    expect(spy.partPuts(2)).toHaveLength(3);
    expect(spy.partPuts(1)).toHaveLength(1);
    expect((await client.waitForReady(mediaId)).status).toBe('READY');
  });

  it('resumes an interrupted multipart upload, sending only the parts S3 does not have', async () => {
    const user = uniqueUser('dora');
    const file = await realJpeg(16 * MiB);
    const interrupted = new AbortController();
    let mediaId = '';
    // The first client "crashes" once its first part is stored.
    const first = clientFor(user, { concurrency: 1 });
    const attempt = first.upload(file, {
      fileName: 'resume.jpg',
      signal: interrupted.signal,
      onSession: (s) => (mediaId = s.mediaId),
      onProgress: (e) => e.phase === 'uploading' && e.loaded > 0 && interrupted.abort(),
    });
    await expect(attempt).rejects.toMatchObject({ code: 'ABORTED' });
    const stored = await first.listParts(mediaId);
    expect(stored.parts.map((part) => part.partNumber)).toEqual([1]);
    expect(stored.partCount).toBe(4);

    const spy = recordingFetch();
    const second = clientFor(user, { fetch: spy.fetch });
    const progress: UploadProgress[] = [];
    const resumed = await second.resume(mediaId, new Blob([file]), { onProgress: (e) => progress.push(e) });
    expect(resumed.mediaId).toBe(mediaId);
    expect(
      spy
        .partPuts()
        .map((c) => Number(c.url.searchParams.get('partNumber')))
        .sort(),
    ).toEqual([2, 3, 4]);
    expect(progress[0]).toMatchObject({ phase: 'uploading', loaded: 5 * MiB });
    const media = await second.waitForReady(mediaId);
    expect(media.status).toBe('READY');
    const served = Buffer.from(await (await fetch(media.cdnUrl!)).arrayBuffer());
    expect(sha256Hex(served)).toBe(sha256Hex(file));
  });

  it('sends SHA-256 digests with the session and with every part, and S3 refuses corrupted bytes', async () => {
    const user = uniqueUser('eve');
    const small = await realJpeg(300 * 1024);
    const singleSpy = recordingFetch();
    const single = await clientFor(user, { fetch: singleSpy.fetch }).upload(small, { fileName: 'small.jpg', sha256: true });
    const [sessionCall] = singleSpy.api('POST', /\/upload-session$/);
    expect((sessionCall!.body as { checksumSha256: string }).checksumSha256).toBe(sha256Base64(small));
    expect(singleSpy.calls.find((c) => c.method === 'PUT')!.headers['x-amz-checksum-sha256']).toBe(sha256Base64(small));

    // Multipart: each part URL signs its part's digest; one corrupted attempt is refused by S3 and sent again.
    const big = await realJpeg(11 * MiB);
    const refusals: number[] = [];
    let corrupted = false;
    const partSpy = recordingFetch(async (call, init) => {
      if (corrupted || !(call.method === 'PUT' && call.url.searchParams.get('partNumber') === '2')) return undefined;
      corrupted = true;
      const bytes = Buffer.from(init!.body as Uint8Array);
      bytes[1000] = bytes[1000]! ^ 0xff;
      const res = await fetch(call.url, { ...init, body: bytes });
      refusals.push(res.status);
      return res;
    });
    const client = clientFor(user, { fetch: partSpy.fetch });
    const multi = await client.upload(big, { fileName: 'big.jpg', sha256: true });
    const partRequests = partSpy.api('POST', /\/parts$/).map((c) => c.body as { partNumbers: number[]; checksums: Record<string, string> });
    const slice = (n: number) => big.subarray((n - 1) * 5 * MiB, n * 5 * MiB);
    for (const n of [1, 2, 3]) {
      expect(partRequests).toContainEqual({ partNumbers: [n], checksums: { [n]: sha256Base64(slice(n)) } });
      expect(partSpy.partPuts(n).at(-1)!.headers['x-amz-checksum-sha256']).toBe(sha256Base64(slice(n)));
    }
    expect(refusals).toHaveLength(1);
    expect(refusals[0]).toBeGreaterThanOrEqual(400);
    expect(partSpy.partPuts(2)).toHaveLength(2);

    expect((await client.waitForReady(single.mediaId)).status).toBe('READY');
    expect((await client.waitForReady(multi.mediaId)).status).toBe('READY');
  });

  it('follows the status over the event stream until READY', async () => {
    const user = uniqueUser('fay');
    const spy = recordingFetch();
    const client = clientFor(user, { fetch: spy.fetch });
    const { mediaId } = await client.upload(await realJpeg(50 * 1024), { fileName: 'sse.jpg' });
    const statuses: string[] = [];
    const media = await client.waitForReady(mediaId, { onStatus: (m) => statuses.push(m.status) });
    expect(media.status).toBe('READY');
    expect(statuses.at(-1)).toBe('READY');
    expect(new Set(statuses).size).toBe(statuses.length);
    expect(spy.api('GET', /\/events$/)).toHaveLength(1);
    expect(spy.api('GET', new RegExp(`/media/${mediaId}$`))).toHaveLength(0);
  });

  it('falls back to polling when the event stream is unavailable', async () => {
    const user = uniqueUser('gus');
    const spy = recordingFetch((call) =>
      call.url.pathname.endsWith('/events') ? Promise.resolve(new Response('<html>bad gateway</html>', { status: 502 })) : undefined,
    );
    const client = clientFor(user, { fetch: spy.fetch, partRetries: 0 });
    const { mediaId } = await client.upload(await realJpeg(50 * 1024), { fileName: 'poll.jpg' });
    const statuses: string[] = [];
    const media = await client.waitForReady(mediaId, { onStatus: (m) => statuses.push(m.status) });
    expect(media.status).toBe('READY');
    expect(statuses.at(-1)).toBe('READY');
    expect(spy.api('GET', /\/events$/)).toHaveLength(1);
    expect(spy.api('GET', new RegExp(`/media/${mediaId}$`)).length).toBeGreaterThanOrEqual(1);
  });

  it('abandons an API answer that does not come within requestTimeoutMs and retries the call', async () => {
    const user = uniqueUser('stuck');
    // The first `complete` reaches nothing that answers (a stuck proxy): it waits until its
    // signal gives up. Without a request timeout the upload waited for ever.
    let stalled = 0;
    const spy = recordingFetch(async (call, init) => {
      if (call.method !== 'POST' || !call.url.pathname.endsWith('/complete') || stalled++ > 0) return undefined;
      return new Promise<Response>((_resolve, reject) => init?.signal?.addEventListener('abort', () => reject(init.signal!.reason)));
    });
    const client = clientFor(user, { fetch: spy.fetch, requestTimeoutMs: 1_000 });
    const gaveUp = new Promise<never>((_resolve, reject) => setTimeout(() => reject(new Error('the upload still waits for the stalled complete')), 20_000).unref());
    const { mediaId } = await Promise.race([client.upload(await realJpeg(50 * 1024), { fileName: 'stuck.jpg' }), gaveUp]);
    expect(spy.api('POST', /\/complete$/)).toHaveLength(2);
    expect((await client.waitForReady(mediaId)).status).toBe('READY');
  });

  it('refuses a file the server would refuse before creating anything', async () => {
    const user = uniqueUser('hal');
    const spy = recordingFetch();
    const client = clientFor(user, { fetch: spy.fetch });
    await expect(client.upload(Buffer.from('plain text'), { fileName: 'notes.txt' })).rejects.toMatchObject({
      code: 'UNSUPPORTED_MEDIA_TYPE',
    });
    await expect(client.upload(new Uint8Array(6 * MiB), { fileName: 'me.png', mediaType: 'PROFILE_IMAGE' })).rejects.toMatchObject({
      code: 'FILE_TOO_LARGE',
    });
    expect(spy.calls).toHaveLength(0);
    // The server's own answer comes back with its stable code.
    const err = await clientFor(user)
      .getMedia('00000000-0000-4000-8000-000000000000')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MediaClientError);
    expect(err).toMatchObject({ code: 'MEDIA_NOT_FOUND', status: 404 });
  });

  describe('the upload CLI', () => {
    let dir: string;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'cli-upload-'));
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    /**
     * `npm run upload -- …` without npm: tsx runs the CLI, as the package script does. With
     * `viaNpm`, through npm itself, in a process group of its own as a terminal would run it.
     */
    const runCli = (args: string[], env: Record<string, string> = {}, options: { viaNpm?: boolean } = {}) => {
      const [command, commandArgs] = options.viaNpm
        ? ['npm', ['run', '--silent', 'upload', '--', ...args]]
        : [process.execPath, [join(root, 'node_modules', 'tsx', 'dist', 'cli.mjs'), 'services/cli/upload.ts', ...args]];
      const child = spawn(command, commandArgs, {
        cwd: root,
        env: { ...process.env, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: options.viaNpm,
      });
      const output = { stdout: '', stderr: '' };
      child.stdout.on('data', (d: Buffer) => (output.stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (output.stderr += d.toString()));
      // As a shell reports it: npm ends itself with the SIGINT it got (128 + 2) once the CLI has exited.
      const exit = new Promise<number | null>((done) => child.on('close', (code, signal) => done(signal === 'SIGINT' ? 130 : code)));
      return { child, output, exit };
    };

    it('uploads a file, follows it to READY and prints its URLs', async () => {
      const user = uniqueUser('ivan');
      const photo = join(dir, 'photo.jpg');
      writeFileSync(photo, await realJpeg(400 * 1024));
      writeFileSync(join(dir, 'notes.txt'), 'not an image');
      const run = runCli([photo, join(dir, 'notes.txt'), '--api', p.api.url], { MEDIA_TOKEN: await p.token(user) });
      const code = await run.exit;
      expect(run.output.stderr).toMatch(/photo\.jpg: uploading .* as POST_IMAGE \(media [0-9a-f-]{36}\)/);
      expect(run.output.stderr).toMatch(/photo\.jpg: READY/);
      expect(run.output.stderr).toMatch(/✔ photo\.jpg: READY \(media [0-9a-f-]{36}\)/);
      // The refusal names the extension and what would be accepted.
      expect(run.output.stderr).toMatch(/✖ notes\.txt: not sent: \.txt \(unknown type\) is not an accepted type; accepted: \.jpg( \.\w+)+\n/);
      for (const extension of ['.png', '.heic', '.avif', '.mp4', '.webm', '.pdf']) expect(run.output.stderr).toMatch(new RegExp(`accepted: .*\\${extension}\\b`));
      // One file was refused, so the run as a whole did not succeed.
      expect(code).toBe(1);

      // stdout holds the URLs alone: aligned columns, the smallest rendition first.
      const lines = run.output.stdout.trimEnd().split('\n');
      expect(lines.length).toBeGreaterThanOrEqual(3);
      for (const line of lines) expect(line).toMatch(/^photo\.jpg {2}\S+ +\S.* {2}http:\/\/\S+$/);
      expect(new Set(lines.map((l) => l.indexOf('http')))).toEqual(new Set([lines[0]!.indexOf('http')]));
      const kinds = lines.map((l) => l.split(/ {2,}/)[1]);
      expect(kinds[kinds.length - 1]).toBe('original');
      const widths = lines.filter((l) => l.includes(' thumbnail ')).map((l) => Number(/ (\d+)w /.exec(l)![1]));
      expect(widths.length).toBeGreaterThanOrEqual(2);
      expect(widths).toEqual([...widths].sort((a, b) => a - b));
      for (const line of lines) expect((await fetch(line.split(' ').pop()!)).status).toBe(200);
      const mediaId = /media ([0-9a-f-]{36})/.exec(run.output.stderr)![1]!;
      expect((await p.call(user, `/media/${mediaId}`)).body.status).toBe('READY');
    });

    it('refuses an unknown option with the usage and exit code 2, without a stack trace', async () => {
      const run = runCli(['photo.jpg', '--bogus']);
      expect(await run.exit).toBe(2);
      expect(run.output.stderr).toMatch(/^upload: Unknown option '--bogus'/);
      expect(run.output.stderr).toContain('usage: npm run upload -- <files...> [options]');
      expect(run.output.stderr).not.toMatch(/^\s+at /m);
      expect(run.output.stdout).toBe('');
    });

    it('says once, with its reason, that the token was refused, and stops', async () => {
      const files = ['one.jpg', 'two.jpg', 'three.jpg'].map((name) => join(dir, name));
      for (const file of files) writeFileSync(file, await realJpeg(10 * 1024));
      const run = runCli([...files, '--api', p.api.url, '--token', 'not-a-jwt']);
      expect(await run.exit).toBe(1);
      expect(run.output.stderr.match(/refused the token/g)).toHaveLength(1);
      expect(run.output.stderr).toContain('upload: the API refused the token: invalid or expired token (UNAUTHENTICATED)');
      expect(run.output.stderr).not.toContain('✖');
      expect(run.output.stdout).toBe('');
    });

    it('counts every file given in the total bar, the ones not sent too', async () => {
      const user = uniqueUser('tess');
      const photo = join(dir, 'bar.jpg');
      writeFileSync(photo, await realJpeg(20 * 1024));
      writeFileSync(join(dir, 'bar.txt'), 'not an image');
      // script(1) gives the CLI a terminal (wide enough for the whole total line), so it draws bars.
      const command = [process.execPath, join(root, 'node_modules', 'tsx', 'dist', 'cli.mjs'), 'services/cli/upload.ts', photo, join(dir, 'bar.txt'), '--api', p.api.url];
      const child = spawn('script', ['-qfec', `stty cols 160; ${command.map((a) => `'${a}'`).join(' ')}`, '/dev/null'], {
        cwd: root,
        env: { ...process.env, MEDIA_TOKEN: await p.token(user), COLUMNS: '160' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let screen = '';
      child.stdout.on('data', (d: Buffer) => (screen += d.toString()));
      expect(await new Promise((done) => child.on('exit', done))).toBe(1);
      expect(screen).toContain('1/2 files finished (1 not sent)');
      expect(screen).toContain('2/2 files finished (1 not sent)');
      expect(screen).not.toMatch(/\d\/1 files finished/);
    });

    it('sends a .pdf as DOCUMENT and follows it to READY with its page count', async () => {
      const user = uniqueUser('pdf-cli');
      const plan = join(dir, 'Site Plan.PDF');
      writeFileSync(plan, makeDocuments().multipage);
      const run = runCli([plan, '--api', p.api.url], { MEDIA_TOKEN: await p.token(user) });
      expect(await run.exit).toBe(0);
      expect(run.output.stderr).toMatch(/Site Plan\.PDF: uploading .* as DOCUMENT \(media [0-9a-f-]{36}\)/);
      const mediaId = /media ([0-9a-f-]{36})/.exec(run.output.stderr)![1]!;
      expect((await p.call(user, `/media/${mediaId}`)).body).toMatchObject({ status: 'READY', mediaType: 'DOCUMENT', metadata: { pageCount: 3 } });
    });

    it('under npm run upload, cancels the upload in flight on Ctrl-C, says which, and leaves nothing in storage', async () => {
      const user = uniqueUser('jo');
      const big = join(dir, 'big.jpg');
      writeFileSync(big, await realJpeg(24 * MiB));
      const run = runCli([big, '--api', p.api.url, '--token', await p.token(user), '--concurrency', '1'], {}, { viaNpm: true });
      // Interrupt once some parts are in S3 and more are still to go.
      await new Promise<void>((resolveWhen, reject) => {
        run.child.stderr.on('data', () => run.output.stderr.includes('uploaded 25%') && resolveWhen());
        void run.exit.then(() => reject(new Error(`the CLI ended before it was interrupted:\n${run.output.stderr}`)));
      });
      // Ctrl-C in a terminal signals the whole foreground group: npm, sh, tsx and node at once.
      process.kill(-run.child.pid!, 'SIGINT');
      expect(await run.exit).toBe(130);
      const mediaId = /\(media ([0-9a-f-]{36})\)/.exec(run.output.stderr)![1]!;
      expect(run.output.stderr).toContain(`cancelled big.jpg (media ${mediaId})`);

      const media = await waitForStatus(p, user, mediaId, ['CANCELLED', 'READY', 'FAILED', 'REJECTED']);
      expect(media).toMatchObject({ status: 'CANCELLED', failureReason: 'CANCELLED_BY_USER' });
      const row = (await p.media.findById(mediaId))!;
      expect(await p.storage.listParts(p.config.S3_INCOMING_BUCKET, row.storageKey, row.uploadId!)).toBeUndefined();
      expect(await p.storage.head(p.config.S3_INCOMING_BUCKET, row.storageKey)).toBeUndefined();
      expect(await p.storage.head(p.config.S3_MEDIA_BUCKET, row.storageKey)).toBeUndefined();
    });

    it('under npm run upload, cancels on Ctrl-C even when the CLI cannot answer the signal at once (busy event loop)', async () => {
      const user = uniqueUser('busy');
      const big = join(dir, 'busy.jpg');
      writeFileSync(big, await realJpeg(24 * MiB));
      const run = runCli([big, '--api', p.api.url, '--token', await p.token(user), '--concurrency', '1'], {}, { viaNpm: true });
      await new Promise<void>((resolveWhen, reject) => {
        run.child.stderr.on('data', () => run.output.stderr.includes('uploaded 25%') && resolveWhen());
        void run.exit.then(() => reject(new Error(`the CLI ended before it was interrupted:\n${run.output.stderr}`)));
      });
      // The CLI is the deepest process under npm. Stopped, it stands for an event loop too busy
      // to take the signal at once; a supervisor between npm and the CLI must not kill it then.
      const descendants = (pid: number): number[] =>
        spawnSync('ps', ['-o', 'pid=', '--ppid', String(pid)]).stdout.toString().trim().split(/\s+/).filter(Boolean).map(Number).flatMap((c) => [c, ...descendants(c)]);
      const cli = descendants(run.child.pid!).filter((pid) => descendants(pid).length === 0).at(-1)!;
      process.kill(cli, 'SIGSTOP');
      process.kill(-run.child.pid!, 'SIGINT');
      // Long enough for anything that would act on a silent child (tsx gave it 2 × 30 ms).
      await new Promise((r) => setTimeout(r, 500));
      try {
        process.kill(cli, 'SIGCONT');
      } catch {
        // Gone: something killed it while it could not answer (the assertions below say so).
      }
      expect(await run.exit).toBe(130);
      const mediaId = /\(media ([0-9a-f-]{36})\)/.exec(run.output.stderr)![1]!;
      expect(run.output.stderr).toContain(`cancelled busy.jpg (media ${mediaId})`);
      expect(await waitForStatus(p, user, mediaId, ['CANCELLED', 'READY', 'FAILED', 'REJECTED'])).toMatchObject({ status: 'CANCELLED' });
    });

    it('in a terminal, Ctrl-C typed under npm run upload stops the bars and names the cancelled media before exit 130', async () => {
      const user = uniqueUser('tom');
      const big = join(dir, 'big-tty.jpg');
      writeFileSync(big, await realJpeg(24 * MiB));
      const npmRun = `npm run --silent upload -- '${big}' --api ${p.api.url} --token ${await p.token(user)} --concurrency 1`;
      // script(1) runs npm on a terminal of its own; a \x03 typed there is Ctrl-C (the terminal
      // signals npm, sh, tsx and node together). -e: script exits with the command's status.
      const child = spawn('script', ['-qfec', `stty cols 160; exec ${npmRun}`, '/dev/null'], { cwd: root, stdio: ['pipe', 'pipe', 'pipe'] });
      let screen = '';
      child.stdout.on('data', (d: Buffer) => (screen += d.toString()));
      // 'close': the exit status, once everything the terminal showed has been read.
      const exited = new Promise((done) => child.on('close', (code, signal) => done(code ?? signal)));
      // Interrupt once the bar shows bytes in S3 and more to go.
      await new Promise<void>((resolveWhen, reject) => {
        child.stdout.on('data', () => /big-tty\.jpg +\|[^|]*\| +[1-9]\d?% .*uploading/.test(screen) && resolveWhen());
        void exited.then(() => reject(new Error(`the CLI ended before it was interrupted:\n${screen}`)));
      });
      child.stdin.write('\x03');
      expect(await exited).toBe(130);
      const cancelled = /cancelled big-tty\.jpg \(media ([0-9a-f-]{36})\)/.exec(screen);
      expect(cancelled).not.toBeNull();
      expect(screen.indexOf('interrupted: cancelling unfinished uploads')).toBeLessThan(screen.indexOf(cancelled![0]));
      expect(await waitForStatus(p, user, cancelled![1]!, ['CANCELLED', 'READY', 'FAILED', 'REJECTED'])).toMatchObject({ status: 'CANCELLED' });
    });
  });
});

describe('MediaUploadClient with short-lived part URLs', () => {
  const URL_TTL_SECONDS = 4;
  let p: Platform;
  beforeAll(async () => {
    p = await startPlatform({ ...multipartSettings, UPLOAD_URL_TTL_SECONDS: String(URL_TTL_SECONDS) }, { videoWorker: false });
  });
  afterAll(() => p?.stop());

  /** When a presigned URL stops being valid: X-Amz-Date plus X-Amz-Expires. */
  const expiryOf = (url: URL) => {
    const d = url.searchParams.get('X-Amz-Date')!;
    const signedAt = Date.UTC(+d.slice(0, 4), +d.slice(4, 6) - 1, +d.slice(6, 8), +d.slice(9, 11), +d.slice(11, 13), +d.slice(13, 15));
    return signedAt + Number(url.searchParams.get('X-Amz-Expires')) * 1000;
  };

  it('asks for fresh part URLs when S3 refuses an expired one', async () => {
    const user = uniqueUser('kai');
    const file = await realJpeg(11 * MiB);
    const statuses: number[] = [];
    let waited = false;
    const spy = recordingFetch(async (call, init) => {
      if (!(call.method === 'PUT' && call.url.searchParams.has('partNumber'))) return undefined;
      if (!waited) {
        // The client is slow: its first part reaches S3 only after the URL has expired.
        waited = true;
        await new Promise((r) => setTimeout(r, Math.max(0, expiryOf(call.url) - Date.now()) + 1500));
      }
      const res = await fetch(call.url, init);
      statuses.push(res.status);
      return res;
    });
    const client = new MediaUploadClient({
      baseUrl: p.api.url,
      token: () => p.token(user),
      fetch: spy.fetch,
      concurrency: 1,
      retryDelayMs: 20,
    });
    const { mediaId } = await client.upload(file, { fileName: 'slow.jpg' });
    expect(statuses[0]).toBe(403);
    expect(statuses.slice(1)).toEqual([200, 200, 200]);
    expect(spy.api('POST', /\/parts$/).length).toBeGreaterThanOrEqual(1);
    expect((await client.waitForReady(mediaId)).status).toBe('READY');
  });
});
