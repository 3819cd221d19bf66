import { SignJWT } from 'jose';
import { randomUUID } from 'node:crypto';
import { pngHeader, realJpeg, bytesOfType } from '../fixtures/media';
import { mintDevToken } from '../../scripts/token';
import { startPlatform, testJwtSecret, uniqueUser, waitForStatus, type Platform } from '../harness/platform';

const MiB = 1024 * 1024;
const ok = { fileName: 'a.jpg', fileType: 'image/jpeg', fileSize: 1000, mediaType: 'POST_IMAGE' };
const doc = { fileName: 'plan.pdf', fileType: 'application/pdf', fileSize: 1000, mediaType: 'DOCUMENT' };

type Case = {
  name: string;
  path?: string;
  method?: string;
  body?: unknown;
  rawBody?: string;
  headers?: Record<string, string>;
  token?: 'none' | 'garbage' | 'expired' | 'wrong-secret' | 'alg-none' | 'no-sub' | 'bearer-missing';
  /** Extra claims of an otherwise valid token (tenant, projects). */
  claims?: Record<string, unknown>;
  status: number;
  code: string;
};

function b64url(o: unknown) {
  return Buffer.from(JSON.stringify(o)).toString('base64url');
}

async function tokenFor(kind: Case['token'], user: string): Promise<string | undefined> {
  const secret = new TextEncoder().encode(testJwtSecret);
  switch (kind) {
    case 'none':
      return undefined;
    case 'garbage':
      return 'Bearer not.a.jwt';
    case 'bearer-missing':
      return 'Basic dXNlcjpwYXNz';
    case 'expired':
      return `Bearer ${await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(user).setIssuedAt(1).setExpirationTime(2).sign(secret)}`;
    case 'wrong-secret':
      return `Bearer ${await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(user).setExpirationTime('5m').sign(new TextEncoder().encode('wrong-secret-0123456789'))}`;
    case 'alg-none':
      return `Bearer ${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({ sub: user, exp: Math.floor(Date.now() / 1000) + 300 })}.`;
    case 'no-sub':
      return `Bearer ${await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('5m').sign(secret)}`;
    default:
      return undefined;
  }
}

/** Table of malformed and hostile requests: each must get a clean 4xx with a stable code. */
const cases: Case[] = [
  { name: 'size zero', body: { ...ok, fileSize: 0 }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'negative size', body: { ...ok, fileSize: -5 }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'fractional size', body: { ...ok, fileSize: 10.5 }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'size as string', body: { ...ok, fileSize: '1000' }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'astronomical size', body: { ...ok, fileSize: 1e300 }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'oversize profile image', body: { ...ok, mediaType: 'PROFILE_IMAGE', fileSize: 5 * MiB + 1 }, status: 413, code: 'FILE_TOO_LARGE' },
  { name: 'oversize post image', body: { ...ok, fileSize: 25 * MiB + 1 }, status: 413, code: 'FILE_TOO_LARGE' },
  { name: 'oversize video', body: { ...ok, fileType: 'video/mp4', mediaType: 'POST_VIDEO', fileSize: 5 * 1024 * MiB + 1 }, status: 413, code: 'FILE_TOO_LARGE' },
  { name: 'oversize document', body: { ...doc, fileSize: 100 * MiB + 1 }, status: 413, code: 'FILE_TOO_LARGE' },
  { name: 'PDF as image', body: { ...ok, fileType: 'application/pdf' }, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
  { name: 'image as document', body: { ...doc, fileType: 'image/jpeg' }, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
  { name: 'html as document', body: { ...doc, fileType: 'text/html' }, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
  { name: 'lower-case document type', body: { ...doc, mediaType: 'document' }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'text of a non-uuid id', path: '/media/not-a-uuid/text', method: 'GET', status: 404, code: 'MEDIA_NOT_FOUND' },
  { name: 'text of an unknown id', path: `/media/${randomUUID()}/text`, method: 'GET', status: 404, code: 'MEDIA_NOT_FOUND' },
  { name: 'text with traversal id', path: `/media/${encodeURIComponent('../../etc/passwd')}/text`, method: 'GET', status: 404, code: 'MEDIA_NOT_FOUND' },
  { name: 'unknown media type', body: { ...ok, mediaType: 'BANNER' }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'lower-case media type', body: { ...ok, mediaType: 'post_image' }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'html declared', body: { ...ok, fileType: 'text/html' }, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
  { name: 'svg declared', body: { ...ok, fileType: 'image/svg+xml' }, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
  { name: 'gif as profile image', body: { ...ok, fileType: 'image/gif', mediaType: 'PROFILE_IMAGE' }, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
  { name: 'video as image', body: { ...ok, fileType: 'video/mp4' }, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
  { name: 'path traversal name', body: { ...ok, fileName: '../../etc/passwd' }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'windows traversal name', body: { ...ok, fileName: '..\\..\\boot.ini' }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'NUL in name', body: { ...ok, fileName: 'a\u0000.jpg' }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'newline in name', body: { ...ok, fileName: 'a\n.jpg' }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'escape sequence in name', body: { ...ok, fileName: '\u001b[31mred.jpg' }, status: 400, code: 'VALIDATION_FAILED' },
  { name: '1000-character name', body: { ...ok, fileName: `${'a'.repeat(996)}.jpg` }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'right-to-left override name', body: { ...ok, fileName: 'invoice\u202egpj.exe' }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'empty name', body: { ...ok, fileName: '' }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'dot-dot name', body: { ...ok, fileName: '..' }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'blank name', body: { ...ok, fileName: '   ' }, status: 400, code: 'VALIDATION_FAILED' },
  { name: '256-emoji name', body: { ...ok, fileName: '🌅'.repeat(256) }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'bad checksum', body: { ...ok, checksumSha256: 'abc' }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'unknown field', body: { ...ok, isAdmin: true }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'missing fields', body: {}, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'array body', body: [ok], status: 400, code: 'VALIDATION_FAILED' },
  { name: 'null body', rawBody: 'null', status: 400, code: 'INVALID_JSON' },
  { name: 'truncated JSON', rawBody: '{"fileName": "a.jpg", ', status: 400, code: 'INVALID_JSON' },
  { name: 'not JSON at all', rawBody: 'fileName=a.jpg', status: 400, code: 'INVALID_JSON' },
  { name: 'deeply nested JSON', rawBody: `${'['.repeat(5000)}${']'.repeat(5000)}`, status: 400, code: 'VALIDATION_FAILED' },
  { name: '10 MB JSON', rawBody: JSON.stringify({ ...ok, pad: 'x'.repeat(10 * MiB) }), status: 413, code: 'PAYLOAD_TOO_LARGE' },
  { name: 'form content type', rawBody: 'fileName=a.jpg', headers: { 'content-type': 'application/x-www-form-urlencoded' }, status: 415, code: 'UNSUPPORTED_CONTENT_TYPE' },
  { name: 'text content type', rawBody: JSON.stringify(ok), headers: { 'content-type': 'text/plain' }, status: 415, code: 'UNSUPPORTED_CONTENT_TYPE' },
  { name: 'bad idempotency key', body: ok, headers: { 'idempotency-key': 'key with spaces' }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'no token', body: ok, token: 'none', status: 401, code: 'UNAUTHENTICATED' },
  { name: 'malformed token', body: ok, token: 'garbage', status: 401, code: 'UNAUTHENTICATED' },
  { name: 'basic auth instead of bearer', body: ok, token: 'bearer-missing', status: 401, code: 'UNAUTHENTICATED' },
  { name: 'expired token', body: ok, token: 'expired', status: 401, code: 'UNAUTHENTICATED' },
  { name: 'wrongly signed token', body: ok, token: 'wrong-secret', status: 401, code: 'UNAUTHENTICATED' },
  { name: 'alg none token', body: ok, token: 'alg-none', status: 401, code: 'UNAUTHENTICATED' },
  { name: 'token without sub', body: ok, token: 'no-sub', status: 401, code: 'UNAUTHENTICATED' },
  { name: 'project id with a control character', body: { ...ok, projectId: 'site\u00007' }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'project id of 129 bytes', body: { ...ok, projectId: 'p'.repeat(129) }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'empty project id', body: { ...ok, projectId: '' }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'project id as a number', body: { ...ok, projectId: 7 }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'project id as an array', body: { ...ok, projectId: ['p1'] }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'project not granted', body: { ...ok, projectId: 'p1' }, status: 403, code: 'PROJECT_FORBIDDEN' },
  { name: 'project of another claim name', body: { ...ok, projectId: 'p1' }, claims: { project: ['p1'], groups: ['p1'] }, status: 403, code: 'PROJECT_FORBIDDEN' },
  { name: 'list by a project not granted', path: '/media?projectId=p1', method: 'GET', status: 403, code: 'PROJECT_FORBIDDEN' },
  { name: 'list by a bad project id', path: `/media?projectId=${'p'.repeat(200)}`, method: 'GET', status: 400, code: 'VALIDATION_FAILED' },
  { name: 'projects claim a string', body: ok, claims: { projects: 'p1' }, status: 401, code: 'INVALID_TOKEN_PROJECTS' },
  { name: 'projects claim an object', body: ok, claims: { projects: { p1: true } }, status: 401, code: 'INVALID_TOKEN_PROJECTS' },
  { name: 'projects claim with numbers', body: ok, claims: { projects: ['p1', 2] }, status: 401, code: 'INVALID_TOKEN_PROJECTS' },
  { name: 'projects claim null', body: ok, claims: { projects: null }, status: 401, code: 'INVALID_TOKEN_PROJECTS' },
  { name: 'projects claim of 1001 ids', path: '/media', method: 'GET', claims: { projects: Array.from({ length: 1001 }, (_, i) => `p${i}`) }, status: 401, code: 'INVALID_TOKEN_PROJECTS' },
  { name: 'huge tenant claim', body: ok, claims: { tenant: 't'.repeat(6000) }, status: 401, code: 'INVALID_TOKEN_TENANT' },
  { name: 'tenant claim a number', body: ok, claims: { tenant: 42 }, status: 401, code: 'INVALID_TOKEN_TENANT' },
  { name: 'tenant claim empty', path: '/media', method: 'GET', claims: { tenant: '' }, status: 401, code: 'INVALID_TOKEN_TENANT' },
  { name: 'tenant claim with a newline', body: ok, claims: { tenant: 'acme\nadmin' }, status: 401, code: 'INVALID_TOKEN_TENANT' },
  { name: 'tenant claim an array', body: ok, claims: { tenant: ['a', 'b'] }, status: 401, code: 'INVALID_TOKEN_TENANT' },
  { name: 'batch item with a project not granted', path: '/media/upload-sessions', body: { files: [{ ...ok, projectId: 'p1' }] }, status: 201, code: 'PROJECT_FORBIDDEN' },
  { name: 'batch of 101', path: '/media/upload-sessions', body: { files: Array.from({ length: 101 }, () => ok) }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'empty batch', path: '/media/upload-sessions', body: { files: [] }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'batch not an array', path: '/media/upload-sessions', body: { files: ok }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'non-uuid media id', path: '/media/not-a-uuid', method: 'GET', status: 404, code: 'MEDIA_NOT_FOUND' },
  { name: 'SQL in media id', path: `/media/${encodeURIComponent("1' OR '1'='1")}`, method: 'GET', status: 404, code: 'MEDIA_NOT_FOUND' },
  { name: 'unknown media id', path: `/media/${randomUUID()}`, method: 'GET', status: 404, code: 'MEDIA_NOT_FOUND' },
  { name: 'unknown batch id', path: `/batches/${randomUUID()}`, method: 'GET', status: 404, code: 'BATCH_NOT_FOUND' },
  { name: 'bad list status', path: '/media?status=HACKED', method: 'GET', status: 400, code: 'VALIDATION_FAILED' },
  { name: 'bad list limit', path: '/media?limit=100000', method: 'GET', status: 400, code: 'VALIDATION_FAILED' },
  { name: 'forged cursor', path: `/media?cursor=${Buffer.from("x|' OR 1=1 --").toString('base64url')}`, method: 'GET', status: 400, code: 'INVALID_CURSOR' },
  { name: 'unknown endpoint', path: '/admin', method: 'GET', status: 404, code: 'NOT_FOUND' },
];

describe('hostile and malformed input', () => {
  let p: Platform;
  beforeAll(async () => {
    p = await startPlatform({ RATE_LIMIT_SESSIONS_PER_MINUTE: '1000' });
  });
  afterAll(() => p?.stop());

  it(`answers ${cases.length} hostile requests with clean 4xx errors and keeps serving`, async () => {
    expect(cases.length).toBeGreaterThanOrEqual(50);
    const user = uniqueUser('hostile');
    const outcomes: string[] = [];
    for (const c of cases) {
      const authorization = c.token
        ? await tokenFor(c.token, user)
        : `Bearer ${c.claims ? await mintDevToken(testJwtSecret, user, '5m', c.claims) : await p.token(user)}`;
      const headers: Record<string, string> = { ...(authorization ? { authorization } : {}), 'content-type': 'application/json', ...c.headers };
      const body = c.rawBody ?? (c.body === undefined ? undefined : JSON.stringify(c.body));
      const res = await fetch(`${p.api.url}/api/v1${c.path ?? '/media/upload-session'}`, { method: c.method ?? 'POST', headers, body });
      const text = await res.text();
      let code: string | undefined;
      try {
        const parsed = JSON.parse(text);
        // A batch answers 201 with each item's own error.
        code = parsed.error?.code ?? parsed.items?.[0]?.error?.code;
      } catch {
        code = `non-JSON: ${text.slice(0, 80)}`;
      }
      outcomes.push(`${c.name}: ${res.status} ${code}`);
      expect(`${c.name}: ${res.status} ${code}`).toBe(`${c.name}: ${c.status} ${c.code}`);
      expect(text).not.toMatch(/\bat [\w.]+ \(|node_modules|\.ts:\d+/);
    }
    // Still serving after all of it.
    expect((await fetch(`${p.api.url}/healthz`)).status).toBe(200);
    expect((await p.call(user, '/media/upload-session', { body: ok })).status).toBe(201);
    console.log(`hostile input: ${outcomes.length} cases\n${outcomes.join('\n')}`);
  });

  it('takes a declared type with parameters, in upper case or in a legacy spelling as the type it names, and signs the PUT for that one', async () => {
    const user = uniqueUser('types');
    const cases: Array<[string, string, string]> = [
      ['IMAGE/JPG; charset=binary', 'POST_IMAGE', 'image/jpeg'],
      ['image/pjpeg', 'POST_IMAGE', 'image/jpeg'],
      ['video/webm;codecs=vp8,opus', 'POST_VIDEO', 'video/webm'],
      ['application/x-pdf', 'DOCUMENT', 'application/pdf'],
      ['application/pdf; version=1.7', 'DOCUMENT', 'application/pdf'],
    ];
    for (const [fileType, mediaType, canonical] of cases) {
      const res = await p.call(user, '/media/upload-session', { body: { fileName: 'f', fileType, fileSize: 1000, mediaType } });
      expect([fileType, res.status, res.body.upload?.headers?.['content-type'], res.body.mimeType ?? (await p.call(user, `/media/${res.body.mediaId}`)).body.mimeType]).toEqual([fileType, 201, canonical, canonical]);
    }
    // Still refused: a type that is not one of them, however spelled.
    expect((await p.call(user, '/media/upload-session', { body: { ...ok, fileType: 'IMAGE/SVG+XML' } })).body.error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
  });

  it('stores a name of 255 characters whole, emoji (two UTF-16 units each) and joined emoji included', async () => {
    const user = uniqueUser('names');
    for (const fileName of ['🌅'.repeat(251) + '.jpg', `${'👨‍👩‍👧'.repeat(50)}.jpg`, `${'é'.repeat(251)}.jpg`]) {
      const res = await p.call(user, '/media/upload-session', { body: { ...ok, fileName } });
      expect(res.status).toBe(201);
      expect((await p.call(user, `/media/${res.body.mediaId}`, { method: 'GET' })).body.fileName).toBe(fileName);
    }
  });

  it('lets S3 refuse presigned URLs that were tampered with, reused after expiry or given a larger body', async () => {
    const user = uniqueUser('s3abuse');
    const body = await realJpeg(2000);
    const res = await p.call(user, '/media/upload-session', { body: { ...ok, fileSize: body.length } });
    const { url, headers } = res.body.upload;
    const tampered = url.replace(/X-Amz-Signature=([0-9a-f])/, (_m: string, ch: string) => `X-Amz-Signature=${ch === '0' ? '1' : '0'}`);
    expect((await fetch(tampered, { method: 'PUT', body, headers })).status).toBe(403);
    expect((await fetch(url.replace(/X-Amz-Expires=\d+/, 'X-Amz-Expires=604800'), { method: 'PUT', body, headers })).status).toBe(403);
    expect((await fetch(url, { method: 'PUT', body: Buffer.concat([body, Buffer.alloc(10)]), headers })).status).toBeGreaterThanOrEqual(400);
    expect((await fetch(url, { method: 'PUT', body, headers: { ...headers, 'content-type': 'text/html' } })).status).toBe(403);
    const otherKey = url.replace(/\/incoming\/[^?]+/, '/incoming/post_image/victim/evil.jpg');
    expect((await fetch(otherKey, { method: 'PUT', body, headers })).status).toBe(403);
  });

  it('rejects a PNG or an HTML file uploaded as JPEG after verification', async () => {
    const user = uniqueUser('spoof');
    for (const file of [bytesOfType(pngHeader, 1500), Buffer.from('<html><script>alert(1)</script></html>'.padEnd(1500, ' '))]) {
      const res = await p.call(user, '/media/upload-session', { body: { ...ok, fileSize: file.length } });
      expect((await fetch(res.body.upload.url, { method: 'PUT', body: file, headers: res.body.upload.headers })).status).toBe(200);
      await p.call(user, `/media/${res.body.mediaId}/complete`, { body: {} });
      const deadline = Date.now() + 30_000;
      let status = '';
      while (Date.now() < deadline && !['REJECTED', 'READY', 'FAILED'].includes(status)) {
        status = (await p.call(user, `/media/${res.body.mediaId}`)).body.status;
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(status).toBe('REJECTED');
    }
  });

  it('rejects an HTML page, a PNG and a PDF header past the first KiB uploaded as PDF', async () => {
    const user = uniqueUser('spoof-pdf');
    const files = [
      Buffer.from('<html><script>alert(1)</script></html>'.padEnd(1500, ' ')),
      bytesOfType(pngHeader, 1500),
      // Readers look for the header in the first 1024 bytes only; so does verification.
      Buffer.concat([Buffer.alloc(1024, 0x20), Buffer.from('%PDF-1.7\n%%EOF\n')]),
    ];
    for (const file of files) {
      const res = await p.call(user, '/media/upload-session', { body: { ...doc, fileSize: file.length } });
      expect((await fetch(res.body.upload.url, { method: 'PUT', body: file, headers: res.body.upload.headers })).status).toBe(200);
      await p.call(user, `/media/${res.body.mediaId}/complete`, { body: {} });
      const media = await waitForStatus(p, user, res.body.mediaId, ['REJECTED', 'READY', 'FAILED'], 30_000);
      expect([media.status, media.failureReason.split(':')[0]]).toEqual(['REJECTED', 'CONTENT_MISMATCH']);
    }
  });

  it('limits upload sessions per user per minute with 429 and Retry-After', async () => {
    const q = await startPlatform({ RATE_LIMIT_SESSIONS_PER_MINUTE: '3' });
    try {
      const user = uniqueUser('greedy');
      const statuses: number[] = [];
      let last: Awaited<ReturnType<Platform['call']>> | undefined;
      for (let i = 0; i < 4; i++) {
        last = await q.call(user, '/media/upload-session', { body: ok });
        statuses.push(last.status);
      }
      expect(statuses).toEqual([201, 201, 201, 429]);
      expect(last!.body.error.code).toBe('RATE_LIMITED');
      expect(Number(last!.headers.get('retry-after'))).toBeGreaterThan(0);
      // Another user is not affected.
      expect((await q.call(uniqueUser('other'), '/media/upload-session', { body: ok })).status).toBe(201);
    } finally {
      await q.stop();
    }
  });
});
