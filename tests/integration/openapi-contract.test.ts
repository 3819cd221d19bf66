import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { projectRoot } from '../../devstack/tools';
import { mintDevToken } from '../../scripts/token';
import { makeDocuments } from '../fixtures/corpus-documents';
import { realJpeg } from '../fixtures/media';
import { startPlatform, testJwtSecret, uniqueUser, waitForStatus, type Platform } from '../harness/platform';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const artifacts = join(projectRoot, 'test-artifacts', 'openapi');
const missingId = '00000000-0000-4000-8000-000000000000';
/** Sessions per user and minute: above what one user of this test creates, low enough to reach. */
const rateLimit = 12;

interface Operation {
  operationId: string;
  security?: unknown[];
  responses: Record<string, { content?: Record<string, { schema: object }>; headers?: Record<string, unknown> }>;
}
/** The shape of tests/openapi/typed-client.ts, which is type-checked against the generated types on its own. */
interface TypedClientModule {
  typedClient(baseUrl: string, token: string): {
    uploadImage(bytes: Uint8Array, fileName: string): Promise<{ mediaId: string; status: string }>;
    status(mediaId: string): Promise<string>;
    listReady(): Promise<{ ids: string[]; more: boolean }>;
    missingMediaCode(): Promise<string>;
    cancel(mediaId: string): Promise<string>;
  };
}
type Document = { paths: Record<string, Record<string, Operation>>; security?: unknown[] };

describe('the OpenAPI document', () => {
  let p: Platform;
  let doc: Document;
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  const validators = new Map<object, ValidateFunction>();
  /** `operationId status` of every response checked against the document. */
  const checked = new Set<string>();

  /** The operation a request reaches: literal paths before templated ones (upload-session before {id}). */
  function operationOf(method: string, path: string): Operation {
    const templates = Object.keys(doc.paths).sort((a, b) => a.split('{').length - b.split('{').length);
    for (const template of templates) {
      const pattern = new RegExp(`^${template.replace(/\{\w+\}/g, '[^/]+').replace(/\./g, '\\.')}$`);
      const op = doc.paths[template]![method.toLowerCase()];
      if (pattern.test(path) && op) return op;
    }
    throw new Error(`${method} ${path} is not in the OpenAPI document`);
  }

  /** Sends a request and checks status, content type, headers and body against the document. */
  async function call(
    method: string,
    path: string,
    init: { user?: string | null; claims?: Record<string, unknown>; body?: unknown; rawBody?: string; contentType?: string; headers?: Record<string, string> } = {},
  ): Promise<{ status: number; body: any }> {
    const headers: Record<string, string> = { ...init.headers };
    if (init.user !== null) headers.authorization = `Bearer ${await mintDevToken(testJwtSecret, init.user ?? 'contract-user', '1h', init.claims)}`;
    const payload = init.rawBody ?? (init.body === undefined ? undefined : JSON.stringify(init.body));
    if (payload !== undefined) headers['content-type'] = init.contentType ?? 'application/json';
    const res = await fetch(`${p.api.url}${path}`, { method, headers, body: payload });
    const op = operationOf(method, path.split('?')[0]!);
    const documented = op.responses[String(res.status)];
    const text = res.status === 200 && res.headers.get('content-type')?.startsWith('text/event-stream') ? await firstEvent(res) : await res.text();
    if (!documented) throw new Error(`${op.operationId}: ${res.status} is not documented (body: ${text.slice(0, 300)})`);
    const contentType = res.headers.get('content-type')?.split(';')[0] ?? '';
    const media = documented.content?.[contentType];
    if (!media) throw new Error(`${op.operationId} ${res.status}: content type ${contentType} is not documented`);
    for (const header of Object.keys(documented.headers ?? {})) {
      if (!res.headers.has(header)) throw new Error(`${op.operationId} ${res.status}: header ${header} is documented but missing`);
    }
    const body: unknown = contentType === 'application/json' ? JSON.parse(text) : text;
    let validate = validators.get(media.schema);
    if (!validate) validators.set(media.schema, (validate = ajv.compile(media.schema)));
    if (!validate(body)) {
      throw new Error(`${op.operationId} ${res.status} does not match the document: ${ajv.errorsText(validate.errors)}\n${text.slice(0, 500)}`);
    }
    checked.add(`${op.operationId} ${res.status}`);
    return { status: res.status, body };
  }

  /** The stream up to its first event; then the request is dropped (the stream runs until terminal). */
  async function firstEvent(res: Response): Promise<string> {
    const reader = res.body!.getReader();
    let text = '';
    while (!text.includes('\n\n')) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    await reader.cancel();
    return text;
  }

  const session = (user: string, body: Record<string, unknown>, headers?: Record<string, string>) =>
    call('POST', '/api/v1/media/upload-session', { user, body: { fileName: 'a.jpg', fileType: 'image/jpeg', fileSize: 1000, mediaType: 'POST_IMAGE', ...body }, headers });

  beforeAll(async () => {
    p = await startPlatform({ RATE_LIMIT_SESSIONS_PER_MINUTE: String(rateLimit) }, { videoWorker: false });
    doc = (await (await fetch(`${p.api.url}/api/v1/openapi.json`)).json()) as Document;
    mkdirSync(artifacts, { recursive: true });
    writeFileSync(join(artifacts, 'openapi.json'), JSON.stringify(doc, null, 2));
  });
  afterAll(() => p?.stop());

  it('passes redocly lint with the recommended rules, without a warning', async () => {
    // redocly.yaml names the file written above; the only ignores are the probes' missing 4xx.
    const { stdout, stderr } = await run('npx', ['redocly', 'lint', 'media-upload', '--format=summary'], { cwd: projectRoot });
    const output = `${stdout}\n${stderr}`;
    expect(output).toContain('Your API description is valid');
    expect(output).not.toMatch(/\b(error|warning) [a-z0-9-]+: \d+/);
    expect(output).not.toMatch(/You have \d+ warnings?/);
  });

  it('generates TypeScript types with openapi-typescript that a small typed client compiles against', async () => {
    await run('npx', ['openapi-typescript'], { cwd: projectRoot });
    const typecheck = await run('npx', ['tsc', '--noEmit', '-p', 'tests/openapi'], { cwd: projectRoot }).catch((err: { stdout: string }) => err);
    expect(typecheck.stdout).toBe('');
  });

  it('describes every response of every route as the API really sends it', async () => {
    const user = uniqueUser('contract');
    const image = await realJpeg(4000);

    // Public routes need no token; metrics are not on the public port (METRICS_PORT).
    for (const path of ['/healthz', '/readyz', '/api/v1/openapi.json']) expect((await call('GET', path, { user: null })).status).toBe(200);
    expect((await fetch(`${p.api.url}/metrics`)).status).toBe(404);

    // Every operation under a bearer token answers 401 without one.
    for (const [template, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        if (op.security?.length === 0) continue;
        const res = await call(method.toUpperCase(), template.replace('{id}', missingId), { user: null, body: method === 'post' ? {} : undefined });
        expect(res).toMatchObject({ status: 401, body: { error: { code: 'UNAUTHENTICATED' } } });
      }
    }

    // How uploads are planned (Uppy's adapter reads it).
    expect((await call('GET', '/api/v1/upload-options', { user })).body).toEqual({ multipartThresholdBytes: p.config.MULTIPART_THRESHOLD_BYTES, partSizeBytes: p.config.PART_SIZE_BYTES, maxParts: 10_000 });

    // Upload sessions and their refusals.
    const created = await session(user, { fileSize: image.length });
    expect(created.status).toBe(201);
    expect((await session(user, { fileSize: -1 })).body.error.code).toBe('VALIDATION_FAILED');
    expect((await session(user, { fileSize: 10 ** 12 })).body.error.code).toBe('FILE_TOO_LARGE');
    expect((await session(user, { fileType: 'application/pdf', fileName: 'a.pdf' })).body.error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    const keyUser = uniqueUser('contract-idem');
    expect((await session(keyUser, {}, { 'idempotency-key': 'k1' })).status).toBe(201);
    expect((await session(keyUser, { fileSize: 2000 }, { 'idempotency-key': 'k1' })).body.error.code).toBe('IDEMPOTENCY_CONFLICT');
    const wire = uniqueUser('contract-wire');
    expect((await call('POST', '/api/v1/media/upload-session', { user: wire, rawBody: '{"fileName":' })).body.error.code).toBe('INVALID_JSON');
    expect((await call('POST', '/api/v1/media/upload-session', { user: wire, rawBody: 'a=b', contentType: 'text/plain' })).body.error.code).toBe('UNSUPPORTED_CONTENT_TYPE');
    expect((await call('POST', '/api/v1/media/upload-session', { user: wire, body: { fileName: 'x'.repeat(300 * 1024) } })).body.error.code).toBe('PAYLOAD_TOO_LARGE');
    const limited = uniqueUser('contract-rate');
    const statuses: number[] = [];
    for (let i = 0; i <= rateLimit; i++) statuses.push((await session(limited, { fileSize: 0 })).status);
    expect(statuses).toEqual([...Array<number>(rateLimit).fill(400), 429]);

    // A batch, one item good and one refused, and its summary.
    const batch = await call('POST', '/api/v1/media/upload-sessions', {
      user,
      body: { files: [{ fileName: 'b.jpg', fileType: 'image/jpeg', fileSize: 100, mediaType: 'POST_IMAGE' }, { fileName: 'b.pdf' }] },
    });
    expect(batch.body.items.map((i: { error?: { code: string } }) => i.error?.code)).toEqual([undefined, 'VALIDATION_FAILED']);
    expect((await call('POST', '/api/v1/media/upload-sessions', { user, body: { files: [] } })).status).toBe(400);
    expect((await call('GET', `/api/v1/batches/${batch.body.batchId}`, { user })).body.itemCount).toBe(2);
    expect((await call('GET', `/api/v1/batches/${missingId}`, { user })).status).toBe(404);
    const notUploaded = batch.body.items[0].mediaId as string;
    expect((await call('POST', `/api/v1/media/${notUploaded}/attach`, { user, body: { ownerType: 'post', ownerId: 'p1' } })).body.error.code).toBe('MEDIA_NOT_READY');

    // A single PUT: complete before the bytes (409), then after them; the events stream.
    const { mediaId, upload } = created.body;
    expect((await call('POST', `/api/v1/media/${mediaId}/complete`, { user })).body.error.code).toBe('UPLOAD_NOT_FOUND');
    expect((await fetch(upload.url, { method: 'PUT', headers: upload.headers, body: image })).status).toBe(200);
    expect((await call('GET', `/api/v1/media/${mediaId}/download-url`, { user })).status).toBe(409);
    expect((await call('POST', `/api/v1/media/${mediaId}/complete`, { user, body: { parts: 'all' } })).status).toBe(400);
    expect((await call('POST', `/api/v1/media/${mediaId}/complete`, { user })).status).toBe(202);
    expect((await call('POST', `/api/v1/media/${missingId}/complete`, { user })).status).toBe(404);
    expect((await call('GET', `/api/v1/media/${mediaId}/events`, { user })).status).toBe(200);
    expect((await call('GET', `/api/v1/media/${missingId}/events`, { user })).status).toBe(404);
    await waitForStatus(p, user, mediaId, ['READY']);

    // A document's extracted text (200); an image has none (404); a session not uploaded is not READY (409).
    const pdf = makeDocuments().multipage;
    const document = await session(user, { fileName: 'plan.pdf', fileType: 'application/pdf', fileSize: pdf.length, mediaType: 'DOCUMENT' });
    expect((await fetch(document.body.upload.url, { method: 'PUT', headers: document.body.upload.headers, body: pdf })).status).toBe(200);
    expect((await call('POST', `/api/v1/media/${document.body.mediaId}/complete`, { user })).status).toBe(202);
    expect((await call('GET', `/api/v1/media/${mediaId}/text`, { user })).body.error.code).toBe('TEXT_NOT_FOUND');
    expect((await call('GET', `/api/v1/media/${notUploaded}/text`, { user })).body.error.code).toBe('MEDIA_NOT_READY');
    await waitForStatus(p, user, document.body.mediaId, ['READY']);
    expect((await call('GET', `/api/v1/media/${document.body.mediaId}/text`, { user })).body.pagesRead).toBe(3);
    // A document's metadata against its typed schema (the image's is checked below).
    expect((await call('GET', `/api/v1/media/${document.body.mediaId}`, { user })).body.metadata).toMatchObject({ pageCount: 3, hasJavaScript: false, analysisStoppedBy: null });
    expect((await call('DELETE', `/api/v1/media/${document.body.mediaId}`, { user })).body.action).toBe('DELETING');

    // The same confirmation through the multipart alias, for a second image.
    const second = await session(user, { fileSize: image.length, fileName: 'second.jpg' });
    await fetch(second.body.upload.url, { method: 'PUT', headers: second.body.upload.headers, body: image });
    expect((await call('POST', `/api/v1/media/${second.body.mediaId}/complete-multipart`, { user, body: {} })).status).toBe(202);
    expect((await call('POST', `/api/v1/media/${missingId}/complete-multipart`, { user })).status).toBe(404);

    // READY media: read, list, attach, download, detach, delete.
    expect((await call('GET', `/api/v1/media/${mediaId}`, { user })).body.status).toBe('READY');
    expect((await call('GET', `/api/v1/media/${missingId}`, { user })).status).toBe(404);
    expect((await call('GET', '/api/v1/media?status=READY&limit=1', { user })).body.items).toHaveLength(1);
    expect((await call('GET', '/api/v1/media?cursor=bogus', { user })).body.error.code).toBe('INVALID_CURSOR');
    expect((await call('GET', '/api/v1/media?limit=0', { user })).body.error.code).toBe('VALIDATION_FAILED');
    expect((await call('POST', `/api/v1/media/${mediaId}/attach`, { user, body: { ownerType: 'post', ownerId: 'p1' } })).body.attachment.ownerId).toBe('p1');
    expect((await call('POST', `/api/v1/media/${mediaId}/attach`, { user, body: { ownerType: 'post', ownerId: 'p2' } })).body.error.code).toBe('ALREADY_ATTACHED');
    expect((await call('POST', `/api/v1/media/${mediaId}/attach`, { user, body: { ownerType: 'Post!' } })).status).toBe(400);
    expect((await call('POST', `/api/v1/media/${missingId}/attach`, { user, body: { ownerType: 'post', ownerId: 'p1' } })).status).toBe(404);
    expect((await call('GET', `/api/v1/media/${mediaId}/download-url`, { user })).body.variant).toBe('original');
    expect((await call('GET', `/api/v1/media/${mediaId}/download-url?variant=nope`, { user })).body.error.code).toBe('VARIANT_NOT_FOUND');
    expect((await call('GET', `/api/v1/media/${mediaId}/download-url?variant=`, { user })).status).toBe(400);
    expect((await call('DELETE', `/api/v1/media/${mediaId}/attach`, { user })).body.attachment).toBeNull();
    expect((await call('DELETE', `/api/v1/media/${missingId}/attach`, { user })).status).toBe(404);
    expect((await call('GET', `/api/v1/media/${mediaId}/parts`, { user })).body.error.code).toBe('INVALID_STATE');
    expect((await call('DELETE', `/api/v1/media/${mediaId}`, { user })).body.action).toBe('DELETING');
    expect((await call('DELETE', `/api/v1/media/${missingId}`, { user })).status).toBe(404);

    // A multipart upload: lazy part URLs, the parts S3 holds, a confirmation with parts missing.
    const video = await session(user, { fileName: 'v.mp4', fileType: 'video/mp4', fileSize: 12 * MiB, mediaType: 'POST_VIDEO' });
    expect(video.body.upload.method).toBe('MULTIPART');
    const videoId = video.body.mediaId;
    expect((await call('POST', `/api/v1/media/${videoId}/parts`, { user, body: { partNumbers: [1, 2] } })).body.parts).toHaveLength(2);
    expect((await call('POST', `/api/v1/media/${videoId}/parts`, { user, body: { partNumbers: [] } })).status).toBe(400);
    expect((await call('POST', `/api/v1/media/${missingId}/parts`, { user, body: { partNumbers: [1] } })).status).toBe(404);
    expect((await call('POST', `/api/v1/media/${second.body.mediaId}/parts`, { user, body: { partNumbers: [1] } })).body.error.code).toBe('INVALID_STATE');
    expect((await call('GET', `/api/v1/media/${videoId}/parts`, { user })).body.parts).toEqual([]);
    expect((await call('GET', `/api/v1/media/${missingId}/parts`, { user })).status).toBe(404);
    expect((await call('POST', `/api/v1/media/${videoId}/complete`, { user, body: {} })).body.error.code).toBe('PARTS_MISMATCH');
    expect((await call('DELETE', `/api/v1/media/${videoId}`, { user })).body.action).toBe('CANCELLING');

    // Tenants and projects: a project not granted (403), a member changing the uploader's media
    // (403 NOT_UPLOADER), a tenant claim that is no tenant id (401).
    const tenant = { tenant: `contract-${missingId.slice(0, 4)}`, projects: ['site'] };
    const uploader = uniqueUser('contract-uploader');
    const member = uniqueUser('contract-member');
    expect((await call('POST', '/api/v1/media/upload-session', { user: uploader, claims: tenant, body: { fileName: 'a.jpg', fileType: 'image/jpeg', fileSize: 1000, mediaType: 'POST_IMAGE', projectId: 'other' } })).body.error.code).toBe('PROJECT_FORBIDDEN');
    const inProject = await call('POST', '/api/v1/media/upload-session', { user: uploader, claims: tenant, body: { fileName: 'a.jpg', fileType: 'image/jpeg', fileSize: 1000, mediaType: 'POST_IMAGE', projectId: 'site' } });
    expect(inProject.body.storageKey).toBeDefined();
    expect((await call('GET', '/api/v1/media?projectId=other', { user: member, claims: tenant })).body.error.code).toBe('PROJECT_FORBIDDEN');
    expect((await call('GET', '/api/v1/media?projectId=site', { user: member, claims: tenant })).body.items[0].projectId).toBe('site');
    const memberCalls: Array<[string, string, unknown]> = [
      ['POST', 'complete', {}],
      ['POST', 'complete-multipart', {}],
      ['POST', 'parts', { partNumbers: [1] }],
      ['GET', 'parts', undefined],
      ['POST', 'attach', { ownerType: 'post', ownerId: 'p1' }],
      ['DELETE', 'attach', undefined],
    ];
    for (const [method, action, body] of memberCalls) {
      expect((await call(method, `/api/v1/media/${inProject.body.mediaId}/${action}`, { user: member, claims: tenant, body })).body.error.code).toBe('NOT_UPLOADER');
    }
    expect((await call('DELETE', `/api/v1/media/${inProject.body.mediaId}`, { user: member, claims: tenant })).body.error.code).toBe('NOT_UPLOADER');
    expect((await call('GET', '/api/v1/media', { user: member, claims: { tenant: 42 } })).body.error.code).toBe('INVALID_TOKEN_TENANT');
    expect((await call('GET', '/api/v1/media', { user: member, claims: { projects: 'site' } })).body.error.code).toBe('INVALID_TOKEN_PROJECTS');
    expect((await call('DELETE', `/api/v1/media/${inProject.body.mediaId}`, { user: uploader, claims: tenant })).body.action).toBe('CANCELLING');

    // Leave nothing behind: sessions never uploaded are cancelled.
    const pending = [notUploaded];
    for (const id of pending) await call('DELETE', `/api/v1/media/${id}`, { user });
    const keyed = await p.call(keyUser, '/media?status=AWAITING_UPLOAD');
    for (const m of keyed.body.items as Array<{ mediaId: string }>) await p.call(keyUser, `/media/${m.mediaId}`, { method: 'DELETE' });
    await Promise.all([
      waitForStatus(p, user, mediaId, ['DELETED']),
      waitForStatus(p, user, document.body.mediaId, ['DELETED']),
      waitForStatus(p, user, videoId, ['CANCELLED']),
      waitForStatus(p, user, second.body.mediaId, ['READY']).then(() => p.call(user, `/media/${second.body.mediaId}`, { method: 'DELETE' })),
      ...pending.map((id) => waitForStatus(p, user, id, ['CANCELLED'])),
    ]);

    // Every operation was seen answering a success and at least one error, each as documented.
    const operations = Object.values(doc.paths).flatMap((ops) => Object.values(ops).map((op) => op.operationId));
    for (const operationId of operations) {
      const seen = [...checked].filter((c) => c.startsWith(`${operationId} `)).map((c) => Number(c.split(' ')[1]));
      expect({ operationId, success: seen.some((s) => s < 300) }).toEqual({ operationId, success: true });
      if (!['getHealth', 'getReadiness', 'getMetrics', 'getOpenApiDocument'].includes(operationId)) {
        expect({ operationId, error: seen.some((s) => s >= 400) }).toEqual({ operationId, error: true });
      }
    }
  });

  it('drives the typed client generated from the document against the real API', async () => {
    const user = uniqueUser('typed');
    // Loaded at run time: it imports the types this test generates, so the project's own
    // typecheck (before any test ran) must not see it; tests/openapi has its own tsconfig.
    const typedClientPath = '../openapi/typed-client';
    const { typedClient } = (await import(typedClientPath)) as TypedClientModule;
    const client = typedClient(p.api.url, await mintDevToken(testJwtSecret, user));
    const uploaded = await client.uploadImage(await realJpeg(3000), 'typed.jpg');
    expect(uploaded.status).toBe('AWAITING_UPLOAD');
    await waitForStatus(p, user, uploaded.mediaId, ['READY']);
    expect(await client.status(uploaded.mediaId)).toBe('READY');
    expect(await client.listReady()).toEqual({ ids: [uploaded.mediaId], more: false });
    expect(await client.missingMediaCode()).toBe('MEDIA_NOT_FOUND');
    expect(await client.cancel(uploaded.mediaId)).toBe('DELETING');
    await waitForStatus(p, user, uploaded.mediaId, ['DELETED']);
  });
});
