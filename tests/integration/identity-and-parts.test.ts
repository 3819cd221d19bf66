import { createHash, createHmac } from 'node:crypto';
import { until } from '../../devstack/poll';
import { MediaUploadClient } from '../../services/client';
import { MediaOwnerKey } from '../../workflows/media-upload.workflow';
import { realJpeg, sha256Base64 } from '../fixtures/media';
import { startPlatform, testJwtSecret, uniqueUser, waitForStatus, type Platform } from '../harness/platform';

const MiB = 1024 * 1024;
const sha256Hex = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * An HS256 token signed by hand: the payload JSON is written as given, so a test can carry
 * what a JWT library would repair on the way (a lone surrogate escape, a NUL).
 */
function handMadeToken(payloadJson: string): string {
  const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64url');
  const head = `${b64('{"alg":"HS256","typ":"JWT"}')}.${b64(payloadJson)}`;
  return `${head}.${createHmac('sha256', testJwtSecret).update(head).digest('base64url')}`;
}
const payloadFor = (subJson: string) => `{"sub":${subJson},"iat":${Math.floor(Date.now() / 1000)},"exp":${Math.floor(Date.now() / 1000) + 600}}`;

/** Users as identity providers issue them: every one must upload and reach READY. */
const SUBS = [
  "o'brien@example.com",
  'user!1',
  'auth0|5f7c8ec7c33c6c004bbafe82',
  'google-oauth2|1234567890',
  'first last',
  'ünïcødé',
  'emoji 😀🎉',
  'a/b',
  '..',
  '%2F',
  '(paren)*star~tilde',
  'quote"back\\slash',
  // 255 bytes of UTF-8: the longest sub accepted.
  `${'é'.repeat(127)}x`,
];

describe('any JWT sub uploads to READY (keys carry a hash of the sub, never the sub)', () => {
  let p: Platform;
  beforeAll(async () => {
    p = await startPlatform({ MULTIPART_THRESHOLD_BYTES: String(6 * MiB), PART_SIZE_BYTES: String(5 * MiB) }, { videoWorker: false });
  });
  afterAll(() => p?.stop());

  it.each(SUBS)('single presigned PUT for sub %j', async (sub) => {
    expect(Buffer.byteLength(sub)).toBeLessThanOrEqual(255);
    const file = await realJpeg(40_000);
    const res = await p.call(sub, '/media/upload-session', { body: { fileName: 'me.jpg', fileType: 'image/jpeg', fileSize: file.length, mediaType: 'POST_IMAGE' } });
    expect(res.status).toBe(201);
    const key: string = res.body.storageKey;
    // {tenant}/{owner}/{mediaType}/…: the tenant `default` (no tenant claim), the owner a hash of the sub.
    expect(key).toMatch(/^[0-9a-f]{32}\/[0-9a-f]{32}\/post_image\/\d+-[0-9a-f-]{36}\.jpg$/);
    expect(key.split('/')[0]).toBe(sha256Hex(Buffer.from('tenant:default', 'utf8')).slice(0, 32));
    expect(key.split('/')[1]).toBe(sha256Hex(Buffer.from(`user:${sub}`, 'utf8')).slice(0, 32));
    const put = await fetch(res.body.upload.url, { method: 'PUT', body: file, headers: res.body.upload.headers });
    expect(put.status).toBe(200);
    expect((await p.call(sub, `/media/${res.body.mediaId}/complete`, { body: {} })).status).toBe(202);
    const media = await waitForStatus(p, sub, res.body.mediaId, ['READY', 'FAILED', 'REJECTED', 'EXPIRED']);
    expect(media.status).toBe('READY');
    // The owner (and only the owner) sees it; the workflow is findable by the raw sub.
    expect((await p.call(uniqueUser('other'), `/media/${res.body.mediaId}`)).status).toBe(404);
    const listed = await p.call(sub, '/media');
    expect(listed.body.items.map((m: { mediaId: string }) => m.mediaId)).toContain(res.body.mediaId);
    const described = await p.temporal.workflow.getHandle(`media-upload/${res.body.mediaId}`).describe();
    expect(described.typedSearchAttributes.get(MediaOwnerKey)).toBe(sub);
    // An operator finds the user's uploads by the raw sub (the Web UI's query language; a double
    // quote or backslash inside the value would need escaping there).
    if (!/["\\]/.test(sub)) {
      const found = await until(`workflows of ${sub} in visibility`, async () => {
        const ids: string[] = [];
        for await (const wf of p.temporal.workflow.list({ query: `MediaOwner = "${sub}"` })) ids.push(wf.workflowId);
        return ids.includes(`media-upload/${res.body.mediaId}`) ? ids : undefined;
      });
      expect(found.length).toBeGreaterThanOrEqual(1);
    }
    expect((await p.storage.head(p.config.S3_MEDIA_BUCKET, key))?.size).toBe(file.length);
  });

  it.each(["o'brien@example.com", 'user!1', 'ünï/cødé 😀 (*)'])('multipart part URLs for sub %j', async (sub) => {
    const file = await realJpeg(11 * MiB);
    const res = await p.call(sub, '/media/upload-session', { body: { fileName: 'big.jpg', fileType: 'image/jpeg', fileSize: file.length, mediaType: 'POST_IMAGE' } });
    expect(res.status).toBe(201);
    expect(res.body.upload).toMatchObject({ method: 'MULTIPART', partCount: 3 });
    const { partSize } = res.body.upload;
    const etags = [];
    for (const part of res.body.upload.parts) {
      const put = await fetch(part.url, { method: 'PUT', body: file.subarray((part.partNumber - 1) * partSize, part.partNumber * partSize), headers: part.headers });
      expect(put.status).toBe(200);
      etags.push({ partNumber: part.partNumber, etag: put.headers.get('etag')! });
    }
    expect((await p.call(sub, `/media/${res.body.mediaId}/complete`, { body: { parts: etags } })).status).toBe(202);
    expect((await waitForStatus(p, sub, res.body.mediaId, ['READY', 'FAILED', 'REJECTED', 'EXPIRED'])).status).toBe('READY');
  });

  it.each([
    ['nothing in it (an empty string)', '""'],
    ['256 bytes', JSON.stringify(`${'é'.repeat(128)}`)],
    ['a NUL', '"a\\u0000b"'],
    ['a line feed', '"a\\nb"'],
    ['a C1 control', '"a\\u0085b"'],
    ['DEL', '"a\\u007fb"'],
    ['a lone surrogate', '"a\\ud800b"'],
  ])('refuses a token whose sub has %s with 401 INVALID_TOKEN_SUBJECT', async (_name, subJson) => {
    const token = handMadeToken(payloadFor(subJson));
    const res = await fetch(`${p.api.url}/api/v1/media`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('INVALID_TOKEN_SUBJECT');
  });

  it('accepts a hand-made token with a valid sub (the refusals above are about the sub only)', async () => {
    const res = await fetch(`${p.api.url}/api/v1/media`, { headers: { authorization: `Bearer ${handMadeToken(payloadFor('"auth0|hand"'))}` } });
    expect(res.status).toBe(200);
  });

  // Rows created before owner segments were hashed keep their keys: the presigner and the
  // request must agree on the bytes of any key (RFC 3986 reserved characters included).
  it.each([
    "post_image/o'brien%40example.com/1-a.jpg",
    'post_image/user!1/2-b.jpg',
    'post_image/(x)*y/3-c.jpg',
    'post_image/ünï cødé 😀/4-d.jpg',
    'post_image/%2F%25/5-e.jpg',
    'post_image/a+b=c&d;e,f$g@h:i/6-f.jpg',
  ])('signs and requests the same key bytes for legacy key %j (PUT, GET, parts, copy)', async (key) => {
    const { storage, config } = p;
    const body = Buffer.from(`bytes of ${key}`);
    const put = await storage.presignPut(config.S3_INCOMING_BUCKET, key, { contentType: 'image/jpeg', contentLength: body.length, expiresIn: 60 });
    expect((await fetch(put.url, { method: 'PUT', body, headers: put.headers })).status).toBe(200);
    try {
      // The SDK, given the same key string, finds exactly these bytes.
      expect(await storage.getBuffer(config.S3_INCOMING_BUCKET, key)).toEqual(body);
      expect(await storage.listKeys(config.S3_INCOMING_BUCKET, key)).toEqual([key]);
      const get = await storage.presignGet(config.S3_INCOMING_BUCKET, key, 60);
      expect(Buffer.from(await (await fetch(get.url)).arrayBuffer())).toEqual(body);
      await storage.copy(config.S3_INCOMING_BUCKET, key, config.S3_MEDIA_BUCKET);
      expect((await storage.head(config.S3_MEDIA_BUCKET, key))?.size).toBe(body.length);

      const multipartKey = `${key}.multipart`;
      const uploadId = await storage.createMultipartUpload(config.S3_INCOMING_BUCKET, multipartKey, 'image/jpeg');
      const part = await storage.presignPart(config.S3_INCOMING_BUCKET, multipartKey, { uploadId, partNumber: 1, contentLength: body.length, expiresIn: 60 });
      const partPut = await fetch(part.url, { method: 'PUT', body, headers: part.headers });
      expect(partPut.status).toBe(200);
      const listed = await storage.listParts(config.S3_INCOMING_BUCKET, multipartKey, uploadId);
      expect(listed?.map((x) => x.size)).toEqual([body.length]);
      await storage.completeMultipartUpload(config.S3_INCOMING_BUCKET, multipartKey, uploadId, listed!);
      expect(await storage.getBuffer(config.S3_INCOMING_BUCKET, multipartKey)).toEqual(body);
    } finally {
      await storage.deleteKeys(config.S3_INCOMING_BUCKET, [key, `${key}.multipart`]);
      await storage.delete(config.S3_MEDIA_BUCKET, key);
    }
  });
});

describe('a part uploaded more than once counts once (the latest upload of it)', () => {
  let p: Platform;
  beforeAll(async () => {
    p = await startPlatform({ MULTIPART_THRESHOLD_BYTES: String(6 * MiB), PART_SIZE_BYTES: String(5 * MiB) }, { videoWorker: false });
  });
  afterAll(() => p?.stop());

  async function session(user: string, file: Buffer) {
    const res = await p.call(user, '/media/upload-session', { body: { fileName: 'parts.jpg', fileType: 'image/jpeg', fileSize: file.length, mediaType: 'POST_IMAGE' } });
    expect(res.status).toBe(201);
    const upload = res.body.upload as { partSize: number; parts: Array<{ partNumber: number; url: string; headers: Record<string, string> }> };
    const slice = (n: number) => file.subarray((n - 1) * upload.partSize, n * upload.partSize);
    const putPart = async (n: number, bytes = slice(n)) => {
      const part = upload.parts[n - 1]!;
      const put = await fetch(part.url, { method: 'PUT', body: bytes, headers: part.headers });
      expect(put.status).toBe(200);
      return put.headers.get('etag')!;
    };
    return { mediaId: res.body.mediaId as string, storageKey: res.body.storageKey as string, slice, putPart };
  }

  it('a retried part with the same bytes (same URL) is listed once and the upload reaches READY', async () => {
    const user = uniqueUser('retry-same');
    const file = await realJpeg(11 * MiB);
    const s = await session(user, file);
    const first = await s.putPart(1);
    const again = await s.putPart(1);
    expect(again).toBe(first);
    const etags = [first, await s.putPart(2), await s.putPart(3)];
    const listed = await p.call(user, `/media/${s.mediaId}/parts`);
    expect(listed.body.parts.map((x: { partNumber: number }) => x.partNumber)).toEqual([1, 2, 3]);
    expect(listed.body.parts.reduce((sum: number, x: { size: number }) => sum + x.size, 0)).toBe(file.length);
    const parts = etags.map((etag, i) => ({ partNumber: i + 1, etag }));
    // One part number with two ETags contradicts itself; the same part listed twice (as some
    // clients list a retried part) is that part.
    const contradictory = await p.call(user, `/media/${s.mediaId}/complete`, { body: { parts: [...parts, { partNumber: 1, etag: etags[1] }] } });
    expect(contradictory.status).toBe(409);
    expect(contradictory.body.error.code).toBe('PARTS_MISMATCH');
    const done = await p.call(user, `/media/${s.mediaId}/complete`, { body: { parts: [parts[0], ...parts] } });
    expect(done.status).toBe(202);
    expect((await waitForStatus(p, user, s.mediaId, ['READY', 'FAILED', 'REJECTED'])).status).toBe('READY');
    expect(sha256Hex(await p.storage.getBuffer(p.config.S3_MEDIA_BUCKET, s.storageKey))).toBe(sha256Hex(file));
  });

  it('a part re-sent with other bytes of the same length: the latest wins, stale ETags are refused with 409 every time', async () => {
    const user = uniqueUser('retry-other');
    const file = await realJpeg(11 * MiB);
    const s = await session(user, file);
    const stale = await s.putPart(1, Buffer.alloc(s.slice(1).length, 0x5a));
    // S3 dates parts to the second: a retry after a lost response comes in a later second.
    await new Promise((r) => setTimeout(r, 1100));
    const latest = await s.putPart(1);
    expect(latest).not.toBe(stale);
    const rest = [await s.putPart(2), await s.putPart(3)];
    const listed = await p.call(user, `/media/${s.mediaId}/parts`);
    expect(listed.body.parts.map((x: { partNumber: number; etag: string }) => [x.partNumber, x.etag])).toEqual([[1, latest], [2, rest[0]], [3, rest[1]]]);
    const withStale = { parts: [stale, ...rest].map((etag, i) => ({ partNumber: i + 1, etag })) };
    for (let attempt = 0; attempt < 2; attempt++) {
      const refused = await p.call(user, `/media/${s.mediaId}/complete`, { body: withStale });
      expect(refused.status).toBe(409);
      expect(refused.body.error).toMatchObject({ code: 'PARTS_MISMATCH', details: { wrongEtag: [1] } });
    }
    const wrong = await p.call(user, `/media/${s.mediaId}/complete`, { body: { parts: [latest, ...rest].map((_e, i) => ({ partNumber: i + 1, etag: '"0123456789abcdef0123456789abcdef"' })) } });
    expect(wrong.status).toBe(409);
    expect(wrong.body.error.code).toBe('PARTS_MISMATCH');
    expect((await p.call(user, `/media/${s.mediaId}`)).body.status).toBe('AWAITING_UPLOAD');
    const done = await p.call(user, `/media/${s.mediaId}/complete`, { body: { parts: [latest, ...rest].map((etag, i) => ({ partNumber: i + 1, etag })) } });
    expect(done.status).toBe(202);
    expect((await waitForStatus(p, user, s.mediaId, ['READY', 'FAILED', 'REJECTED'])).status).toBe('READY');
    // The assembled original holds the latest bytes of part 1, not the stale ones.
    expect(sha256Hex(await p.storage.getBuffer(p.config.S3_MEDIA_BUCKET, s.storageKey))).toBe(sha256Hex(file));
  });

  it('copies of a part with other bytes within one second are not guessed between: left out of /parts, complete without ETags refused, named by ETag the client\'s bytes are published', async () => {
    const user = uniqueUser('same-second');
    const file = await realJpeg(11 * MiB);
    const s = await session(user, file);
    const rest = [await s.putPart(2), await s.putPart(3)];
    // S3 dates parts to the second and SeaweedFS lists a part's copies by a random name: the
    // two copies must land in one second, so the pair is sent again until they do.
    let latest = '';
    for (let attempt = 0; attempt < 10 && !latest; attempt++) {
      await s.putPart(1, Buffer.alloc(s.slice(1).length, 0x5a + attempt));
      const sent = await s.putPart(1);
      const copies = (await p.storage.listPartCopies(p.config.S3_INCOMING_BUCKET, s.storageKey, (await p.call(user, `/media/${s.mediaId}/parts`)).body.uploadId))!;
      const newest = Math.max(...copies.filter((c) => c.partNumber === 1).map((c) => c.lastModified));
      if (copies.filter((c) => c.partNumber === 1 && c.lastModified === newest).length > 1) latest = sent;
    }
    expect(latest).not.toBe('');
    const listed = await p.call(user, `/media/${s.mediaId}/parts`);
    expect(listed.body.parts.map((x: { partNumber: number }) => x.partNumber)).toEqual([2, 3]);
    const refused = await p.call(user, `/media/${s.mediaId}/complete`, { body: {} });
    expect(refused.status).toBe(409);
    expect(refused.body.error).toMatchObject({ code: 'PARTS_MISMATCH', details: { ambiguous: [1] } });
    const done = await p.call(user, `/media/${s.mediaId}/complete`, { body: { parts: [latest, ...rest].map((etag, i) => ({ partNumber: i + 1, etag })) } });
    expect(done.status).toBe(202);
    expect((await waitForStatus(p, user, s.mediaId, ['READY', 'FAILED', 'REJECTED'])).status).toBe('READY');
    expect(sha256Hex(await p.storage.getBuffer(p.config.S3_MEDIA_BUCKET, s.storageKey))).toBe(sha256Hex(file));
  });

  it.each([
    ['right', (file: Buffer) => sha256Base64(file), 'READY'],
    ['right, in hex', (file: Buffer) => sha256Hex(file), 'READY'],
    ['wrong', (file: Buffer) => sha256Base64(Buffer.concat([file, Buffer.from('x')])), 'REJECTED'],
  ] as const)("a multipart upload's whole-file checksumSha256 is checked (%s)", async (_what, checksumOf, expected) => {
    const user = uniqueUser('whole-sum');
    const file = await realJpeg(11 * MiB);
    const res = await p.call(user, '/media/upload-session', {
      body: { fileName: 'w.jpg', fileType: 'image/jpeg', fileSize: file.length, mediaType: 'POST_IMAGE', checksumSha256: checksumOf(file) },
    });
    expect(res.status).toBe(201);
    const { partSize, parts } = res.body.upload as { partSize: number; parts: Array<{ partNumber: number; url: string; headers: Record<string, string> }> };
    for (const part of parts) {
      const put = await fetch(part.url, { method: 'PUT', body: file.subarray((part.partNumber - 1) * partSize, part.partNumber * partSize), headers: part.headers });
      expect(put.status).toBe(200);
    }
    expect((await p.call(user, `/media/${res.body.mediaId}/complete`, { body: {} })).status).toBe(202);
    const media = await waitForStatus(p, user, res.body.mediaId, ['READY', 'FAILED', 'REJECTED']);
    expect(media.status).toBe(expected);
    if (expected === 'REJECTED') {
      expect(media.failureReason).toMatch(/^CHECKSUM_MISMATCH: /);
      expect(await p.storage.head(p.config.S3_INCOMING_BUCKET, res.body.storageKey)).toBeUndefined();
      expect(await p.storage.head(p.config.S3_MEDIA_BUCKET, res.body.storageKey)).toBeUndefined();
    } else {
      expect(sha256Hex(await p.storage.getBuffer(p.config.S3_MEDIA_BUCKET, res.body.storageKey))).toBe(sha256Hex(file));
    }
  });

  it('a retried part with a signed checksum is listed once too', async () => {
    const user = uniqueUser('retry-sum');
    const file = await realJpeg(11 * MiB);
    const res = await p.call(user, '/media/upload-session', { body: { fileName: 'c.jpg', fileType: 'image/jpeg', fileSize: file.length, mediaType: 'POST_IMAGE' } });
    const { partSize } = res.body.upload;
    const slice = (n: number) => file.subarray((n - 1) * partSize, n * partSize);
    const signed = await p.call(user, `/media/${res.body.mediaId}/parts`, {
      body: { partNumbers: [1, 2, 3], checksums: { '1': sha256Base64(slice(1)), '2': sha256Base64(slice(2)), '3': sha256Base64(slice(3)) } },
    });
    for (const part of [signed.body.parts[0], ...signed.body.parts]) {
      expect((await fetch(part.url, { method: 'PUT', body: slice(part.partNumber), headers: part.headers })).status).toBe(200);
    }
    expect((await p.call(user, `/media/${res.body.mediaId}/parts`)).body.parts).toHaveLength(3);
    expect((await p.call(user, `/media/${res.body.mediaId}/complete`, { body: {} })).status).toBe(202);
    expect((await waitForStatus(p, user, res.body.mediaId, ['READY', 'FAILED', 'REJECTED'])).status).toBe('READY');
  });

  it('the client library, retrying part 1 after its response was lost, reaches READY', async () => {
    const user = uniqueUser('client-lost');
    const file = await realJpeg(12 * MiB);
    let lost = 0;
    const part1Puts: number[] = [];
    const fetchImpl: typeof fetch = async (input, init) => {
      const url = new URL(String(input));
      const isPart1 = (init?.method ?? 'GET') === 'PUT' && url.searchParams.get('partNumber') === '1';
      if (isPart1) part1Puts.push(part1Puts.length + 1);
      const res = await fetch(input, init);
      // S3 stored the part; the client never hears back.
      if (isPart1 && lost++ === 0) throw new TypeError('fetch failed');
      return res;
    };
    const client = new MediaUploadClient({ baseUrl: p.api.url, token: () => p.token(user), retryDelayMs: 20, pollIntervalMs: 200, fetch: fetchImpl });
    const { mediaId } = await client.upload(file, { fileName: 'lost.jpg' });
    expect(part1Puts).toEqual([1, 2]);
    expect((await client.waitForReady(mediaId)).status).toBe('READY');
  });
});
