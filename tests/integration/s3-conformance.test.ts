import { CopyObjectCommand } from '@aws-sdk/client-s3';
import { randomUUID } from 'node:crypto';
import { devS3Credentials, buckets } from '../../devstack/credentials';
import { Storage } from '../../services/shared/storage';
import { stackState } from '../harness/platform';

/**
 * What the platform needs from its S3 server, checked against the one the project provisions
 * (SeaweedFS): if a server fails one of these, it is not fit to stand in for AWS S3.
 */
describe('S3 server conformance', () => {
  let storage: Storage;
  beforeAll(() => {
    storage = new Storage({ S3_ENDPOINT: stackState().env.S3_ENDPOINT, S3_REGION: 'us-east-1', S3_FORCE_PATH_STYLE: true }, devS3Credentials);
  });
  afterAll(async () => {
    // Leave nothing behind: the run's storage invariants are checked at teardown.
    await storage.deletePrefix(buckets.incoming, 'conformance/');
    await storage.deletePrefix(buckets.media, 'conformance/');
    storage.client.destroy();
  });
  const key = () => `conformance/${randomUUID()}.bin`;

  it('accepts a presigned PUT and rejects it after expiry', async () => {
    const k = key();
    const body = Buffer.from('conformance');
    // X-Amz-Date has whole seconds, so a URL valid for N seconds may hold only N − 1 of them:
    // 3 s leaves the first PUT 2 s even on a busy machine (1 s failed once in CI).
    const signed = await storage.presignPut(buckets.incoming, k, { contentType: 'image/png', contentLength: body.length, expiresIn: 3 });
    expect((await fetch(signed.url, { method: 'PUT', body, headers: signed.headers })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 4100));
    const late = await fetch(signed.url, { method: 'PUT', body, headers: signed.headers });
    expect(late.status).toBe(403);
    expect(await late.text()).toMatch(/expired/i);
  });

  it('rejects a PUT whose Content-Type or Content-Length differs from the signed one', async () => {
    const k = key();
    const signed = await storage.presignPut(buckets.incoming, k, { contentType: 'image/png', contentLength: 5, expiresIn: 60 });
    expect((await fetch(signed.url, { method: 'PUT', body: 'hello', headers: { 'content-type': 'image/jpeg' } })).status).toBe(403);
    expect((await fetch(signed.url, { method: 'PUT', body: 'hello!', headers: signed.headers })).status).toBe(403);
    expect(await storage.head(buckets.incoming, k)).toBeUndefined();
  });

  it('runs multipart create, presigned upload-part, list-parts, complete and abort', async () => {
    const k = key();
    const part1 = Buffer.alloc(5 * 1024 * 1024, 1);
    const part2 = Buffer.alloc(10, 2);
    const uploadId = await storage.createMultipartUpload(buckets.incoming, k, 'video/mp4');
    for (const [n, b] of [[1, part1], [2, part2]] as const) {
      const u = await storage.presignPart(buckets.incoming, k, { uploadId, partNumber: n, contentLength: b.length, expiresIn: 60 });
      expect((await fetch(u.url, { method: 'PUT', body: b, headers: u.headers })).status).toBe(200);
    }
    const parts = await storage.listParts(buckets.incoming, k, uploadId);
    expect(parts?.map((p) => [p.partNumber, p.size])).toEqual([[1, part1.length], [2, 10]]);
    await storage.completeMultipartUpload(buckets.incoming, k, uploadId, parts!);
    expect((await storage.head(buckets.incoming, k))?.size).toBe(part1.length + 10);

    const aborted = key();
    const id2 = await storage.createMultipartUpload(buckets.incoming, aborted, 'video/mp4');
    await storage.abortMultipartUpload(buckets.incoming, aborted, id2);
    expect(await storage.listParts(buckets.incoming, aborted, id2)).toBeUndefined();
  });

  it('copies and deletes objects', async () => {
    const k = key();
    await storage.put(buckets.incoming, k, Buffer.from('copy me'), 'text/plain');
    await storage.client.send(new CopyObjectCommand({ Bucket: buckets.media, Key: k, CopySource: `${buckets.incoming}/${k}` }));
    expect((await storage.head(buckets.media, k))?.size).toBe(7);
    await storage.delete(buckets.media, k);
    await storage.delete(buckets.incoming, k);
    expect(await storage.head(buckets.media, k)).toBeUndefined();
    expect(await storage.head(buckets.incoming, k)).toBeUndefined();
  });

  it('answers a browser CORS preflight for PUT on the incoming bucket', async () => {
    const res = await fetch(`${stackState().env.S3_ENDPOINT}/${buckets.incoming}/${key()}`, {
      method: 'OPTIONS',
      headers: { origin: 'http://localhost:8080', 'access-control-request-method': 'PUT', 'access-control-request-headers': 'content-type' },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-methods')).toContain('PUT');
    expect(res.headers.get('access-control-expose-headers')).toContain('ETag');
  });

  it('keeps the incoming bucket private', async () => {
    const k = key();
    await storage.put(buckets.incoming, k, Buffer.from('secret'), 'text/plain');
    expect((await fetch(`${stackState().env.S3_ENDPOINT}/${buckets.incoming}/${k}`)).status).toBe(403);
  });
});
