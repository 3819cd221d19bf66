import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { Client } from '@temporalio/client';
import { devS3Credentials } from '../../devstack/credentials';
import { freePort } from '../../devstack/ports';
import { startApi, type RunningApi } from '../../services/api/server';
import { UploadService } from '../../services/api/upload-sessions';
import { createDataSource } from '../../services/shared/db/data-source';
import { MediaRepository, type NewMedia, type Scope } from '../../services/shared/db/media-repository';
import { Storage } from '../../services/shared/storage';
import { testConfig, uniqueUser } from '../harness/platform';

describe('JWT through a JWKS (RS256/ES256 production mode)', () => {
  let jwks: Server;
  let api: RunningApi;
  let privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
  const issuer = 'https://issuer.test/';
  const audience = 'media-api';

  beforeAll(async () => {
    const pair = await generateKeyPair('ES256', { extractable: true });
    privateKey = pair.privateKey;
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    const port = await freePort();
    jwks = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] })));
    await new Promise<void>((r) => jwks.listen(port, '127.0.0.1', r));
    api = await startApi(
      testConfig({ JWT_SECRET: '', JWT_JWKS_URL: `http://127.0.0.1:${port}/jwks.json`, JWT_ISSUER: issuer, JWT_AUDIENCE: audience }),
      { host: '127.0.0.1', s3Credentials: devS3Credentials },
    );
  });
  afterAll(async () => {
    await api?.stop();
    jwks?.close();
  });

  const sign = (claims: { iss?: string; aud?: string; sub?: string }, expiresIn = '5m') =>
    new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setSubject(claims.sub ?? 'jwks-user')
      .setIssuer(claims.iss ?? issuer)
      .setAudience(claims.aud ?? audience)
      .setIssuedAt()
      .setExpirationTime(expiresIn)
      .sign(privateKey);
  const list = async (token: string) => fetch(`${api.url}/api/v1/media`, { headers: { authorization: `Bearer ${token}` } });

  it('accepts a token signed by a key of the JWKS with the right issuer and audience', async () => {
    const res = await list(await sign({}));
    expect(res.status).toBe(200);
  });

  it.each([
    ['another audience', { aud: 'someone-else' }],
    ['another issuer', { iss: 'https://evil.test/' }],
  ])('refuses %s', async (_name, claims) => {
    const res = await list(await sign(claims));
    expect(res.status).toBe(401);
    expect(((await res.json()) as any).error.code).toBe('UNAUTHENTICATED');
  });

  it('refuses an HS256 token even when it looks right (no algorithm confusion)', async () => {
    const hs = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('x').setIssuer(issuer).setAudience(audience).setExpirationTime('5m').sign(new TextEncoder().encode('guess'));
    expect((await list(hs)).status).toBe(401);
  });
});

describe('creating an upload session is all or nothing', () => {
  it('leaves no row and no multipart upload behind when the workflow cannot be started', async () => {
    const config = testConfig({ MULTIPART_THRESHOLD_BYTES: String(6 * 1024 * 1024), PART_SIZE_BYTES: String(5 * 1024 * 1024) });
    const dataSource = await createDataSource(config.DATABASE_URL, 2).initialize();
    const storage = new Storage(config, devS3Credentials);
    const media = new MediaRepository(dataSource);
    let uploadId: string | undefined;
    let storageKey: string | undefined;
    // Temporal is the one fake here: it accepts nothing, as during an outage.
    const temporal = {
      connection: { withDeadline: (_deadline: number, fn: () => Promise<unknown>) => fn() },
      workflow: {
        start: async (_wf: unknown, opts: { args: Array<{ uploadId?: string; storageKey: string }> }) => {
          uploadId = opts.args[0]!.uploadId;
          storageKey = opts.args[0]!.storageKey;
          throw Object.assign(new Error('14 UNAVAILABLE: connection refused'), { code: 'ECONNREFUSED' });
        },
      },
    } as unknown as Client;
    const uploads = new UploadService({ config, storage, media, temporal });
    const user = uniqueUser('atomic');
    try {
      const scope = { tenantId: 'default', userId: user, projects: [] };
      await expect(uploads.create(scope, { fileName: 'big.jpg', fileType: 'image/jpeg', fileSize: 7 * 1024 * 1024, mediaType: 'POST_IMAGE' })).rejects.toThrow(/UNAVAILABLE/);
      expect(uploadId).toBeDefined();
      expect((await media.list(scope, { limit: 10 })).items).toEqual([]);
      expect(await storage.listParts(config.S3_INCOMING_BUCKET, storageKey!, uploadId!)).toBeUndefined();
    } finally {
      await dataSource.destroy();
      storage.client.destroy();
    }
  });
});

describe('a batch is recorded in one statement, whole or not at all', () => {
  const newRow = (user: string, i: number, over: Partial<NewMedia> = {}): NewMedia => {
    const id = randomUUID();
    const createdAt = new Date(Date.UTC(2026, 0, 2, 3, 4, 5, i));
    return {
      id,
      userId: user,
      tenantId: 'default',
      projectId: null,
      batchId: null,
      mediaType: 'POST_IMAGE',
      fileName: `album-${i}.jpg`,
      mimeType: 'image/jpeg',
      fileSize: 1000 + i,
      checksumSha256: null,
      status: 'AWAITING_UPLOAD',
      storageKey: `post_image/${user}/${id}.jpg`,
      uploadId: i % 2 ? `upload-${i}` : null,
      partSize: i % 2 ? 5 * 1024 * 1024 : null,
      partCount: i % 2 ? 2 : null,
      idempotencyKey: null,
      workflowId: `media-upload/${id}`,
      expiresAt: new Date(createdAt.getTime() + 3_600_000),
      createdAt,
      ...over,
    };
  };

  /**
   * A repository on the test database and a fresh user's scope for `fn`; afterwards the user's
   * rows are removed (they have no workflow, which the suite's storage invariants would flag)
   * and the pool is closed.
   */
  async function withRepository(name: string, fn: (media: MediaRepository, user: string, scope: Scope) => Promise<void>): Promise<void> {
    const dataSource = await createDataSource(testConfig().DATABASE_URL, 2).initialize();
    const user = uniqueUser(name);
    try {
      await fn(new MediaRepository(dataSource), user, { tenantId: 'default', userId: user, projects: [] });
    } finally {
      await dataSource.query('DELETE FROM media WHERE user_id = $1', [user]);
      await dataSource.query('DELETE FROM batches WHERE user_id = $1', [user]);
      await dataSource.destroy();
    }
  }

  it('writes the batch row and every media row with the values given (updatedAt = createdAt)', async () => {
    await withRepository('batch-write', async (media, user, scope) => {
      const batchId = randomUUID();
      const rows = [0, 1, 2].map((i) => newRow(user, i, { batchId }));
      await media.insertBatch({ id: batchId, userId: user, tenantId: 'default', itemCount: 3 }, rows);
      expect(await media.findBatch(batchId, scope)).toMatchObject({ id: batchId, userId: user, itemCount: 3 });
      const stored = await media.findByBatch(batchId, scope);
      expect(stored).toEqual(rows.map((row) => expect.objectContaining({ ...row, updatedAt: row.createdAt, metadata: {} })));
    });
  });

  it('leaves neither the batch row nor any media row when one row is refused', async () => {
    await withRepository('batch-atomic', async (media, user, scope) => {
      const batchId = randomUUID();
      // The last row breaks the file_size > 0 check after the others went in.
      const rows = [newRow(user, 0, { batchId }), newRow(user, 1, { batchId }), newRow(user, 2, { batchId, fileSize: 0 })];
      await expect(media.insertBatch({ id: batchId, userId: user, tenantId: 'default', itemCount: 3 }, rows)).rejects.toThrow(
        /check constraint/,
      );
      expect(await media.findBatch(batchId, scope)).toBeNull();
      expect((await media.list(scope, { limit: 10 })).items).toEqual([]);
    });
  });
});
