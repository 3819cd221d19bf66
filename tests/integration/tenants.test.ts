import { randomUUID } from 'node:crypto';
import { until } from '../../devstack/poll';
import { mintDevToken } from '../../scripts/token';
import { DataSource } from 'typeorm';
import { createDataSource } from '../../services/shared/db/data-source';
import { MediaRepository } from '../../services/shared/db/media-repository';
import { originalKeyPrefix } from '../../services/shared/storage-keys';
import { MediaClientError, MediaUploadClient } from '../../services/client';
import { MediaTenantKey } from '../../workflows/media-upload.workflow';
import { MAX_BATCH_FILES } from '../../services/api/schemas';
import { realJpeg } from '../fixtures/media';
import { startPlatform, testJwtSecret, uniqueUser, type Platform } from '../harness/platform';

const MiB = 1024 * 1024;
/** Sessions one tenant may create per minute here: above what one tenant of the isolation tests creates. */
const tenantRateLimit = 10;
const tenantQuota = 2 * MiB;

/** A caller: `sub`, and the tenant and projects claims (left out of the token when undefined). */
interface Identity {
  sub: string;
  tenant?: unknown;
  projects?: unknown;
}

describe('tenants and projects', () => {
  let p: Platform;
  beforeAll(async () => {
    p = await startPlatform({ RATE_LIMIT_SESSIONS_PER_MINUTE_PER_TENANT: String(tenantRateLimit) }, { videoWorker: false });
  });
  afterAll(() => p?.stop());

  async function call(who: Identity, path: string, init: { method?: string; body?: unknown } = {}): Promise<{ status: number; body: any; contentType: string; retryAfter: string | null; rateLimit: string | null }> {
    const claims = { ...(who.tenant !== undefined ? { tenant: who.tenant } : {}), ...(who.projects !== undefined ? { projects: who.projects } : {}) };
    const headers: Record<string, string> = { authorization: `Bearer ${await mintDevToken(testJwtSecret, who.sub, '1h', claims)}` };
    if (init.body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${p.api.url}/api/v1${path}`, {
      method: init.method ?? (init.body !== undefined ? 'POST' : 'GET'),
      headers,
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
    });
    const contentType = res.headers.get('content-type') ?? '';
    if (contentType.startsWith('text/event-stream')) {
      // The first event is enough; the stream stays open until the media is terminal.
      const reader = res.body!.getReader();
      let text = '';
      while (!text.includes('\n\n')) {
        const { value, done } = await reader.read();
        if (done) break;
        text += Buffer.from(value).toString('utf8');
      }
      await reader.cancel();
      return { status: res.status, body: text, contentType, retryAfter: res.headers.get('retry-after'), rateLimit: res.headers.get('ratelimit') };
    }
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined, contentType, retryAfter: res.headers.get('retry-after'), rateLimit: res.headers.get('ratelimit') };
  }

  async function session(who: Identity, file: { size: number; projectId?: string }) {
    return call(who, '/media/upload-session', {
      body: { fileName: 'plan.jpg', fileType: 'image/jpeg', fileSize: file.size, mediaType: 'POST_IMAGE', ...(file.projectId ? { projectId: file.projectId } : {}) },
    });
  }

  async function uploadReady(who: Identity, projectId?: string): Promise<{ mediaId: string; storageKey: string }> {
    const jpeg = await realJpeg(20_000);
    const res = await session(who, { size: jpeg.length, projectId });
    expect(res.status).toBe(201);
    expect((await fetch(res.body.upload.url, { method: 'PUT', body: jpeg, headers: res.body.upload.headers })).status).toBe(200);
    expect((await call(who, `/media/${res.body.mediaId}/complete`, { body: {} })).status).toBe(202);
    const ready = await until(`media ${res.body.mediaId} READY`, async () => {
      const got = await call(who, `/media/${res.body.mediaId}`);
      return ['READY', 'FAILED', 'REJECTED'].includes(got.body?.status) ? got.body : undefined;
    });
    expect(ready.status).toBe('READY');
    return res.body;
  }

  const ids = (res: { body: { items: Array<{ mediaId: string }> } }) => res.body.items.map((m) => m.mediaId).sort();

  describe('two tenants, two projects', () => {
    const tenantA = `tenant-a-${randomUUID().slice(0, 8)}`;
    const tenantB = `tenant-b-${randomUUID().slice(0, 8)}`;
    const aliceSub = uniqueUser('alice');
    // Alice may use both projects; Carol only p1; Dave none. Mallory has Alice's very `sub` and
    // the same project names, in another tenant.
    const alice: Identity = { sub: aliceSub, tenant: tenantA, projects: ['p1', 'p2'] };
    const carol: Identity = { sub: uniqueUser('carol'), tenant: tenantA, projects: ['p1'] };
    const dave: Identity = { sub: uniqueUser('dave'), tenant: tenantA };
    const mallory: Identity = { sub: aliceSub, tenant: tenantB, projects: ['p1', 'p2'] };
    let inP1: { mediaId: string; storageKey: string };
    let inP2: { mediaId: string; storageKey: string };
    let own: { mediaId: string; storageKey: string };
    let pending: { mediaId: string };

    beforeAll(async () => {
      inP1 = await uploadReady(alice, 'p1');
      inP2 = await uploadReady(alice, 'p2');
      own = await uploadReady(alice);
      const res = await session(alice, { size: 1000, projectId: 'p1' });
      expect(res.status).toBe(201);
      pending = res.body;
    });

    it('keys originals as {tenant}/{project or owner}/{mediaType}/… with hashed segments', async () => {
      const project = originalKeyPrefix({ tenantId: tenantA, userId: aliceSub, projectId: 'p1' });
      const user = originalKeyPrefix({ tenantId: tenantA, userId: aliceSub });
      expect(inP1.storageKey.startsWith(`${project.tenant}/${project.owner}/post_image/`)).toBe(true);
      expect(own.storageKey.startsWith(`${user.tenant}/${user.owner}/post_image/`)).toBe(true);
      expect(inP1.storageKey).not.toContain(tenantA);
      const row = await p.media.findById(inP1.mediaId);
      expect(row).toMatchObject({ tenantId: tenantA, projectId: 'p1', userId: aliceSub });
      expect((await call(alice, `/media/${inP1.mediaId}`)).body.projectId).toBe('p1');
      expect((await call(alice, `/media/${own.mediaId}`)).body.projectId).toBeNull();
    });

    it('lets a project member read, list and download the project media, and nothing else', async () => {
      expect((await call(carol, `/media/${inP1.mediaId}`)).status).toBe(200);
      expect((await call(carol, `/media/${inP2.mediaId}`)).status).toBe(404);
      expect((await call(carol, `/media/${own.mediaId}`)).status).toBe(404);
      expect(ids(await call(carol, '/media'))).toEqual([inP1.mediaId, pending.mediaId].sort());
      expect(ids(await call(carol, '/media?projectId=p1'))).toEqual([inP1.mediaId, pending.mediaId].sort());
      const forbidden = await call(carol, '/media?projectId=p2');
      expect(forbidden.status).toBe(403);
      expect(forbidden.body.error.code).toBe('PROJECT_FORBIDDEN');
      const download = await call(carol, `/media/${inP1.mediaId}/download-url`);
      expect(download.status).toBe(200);
      expect((await fetch(download.body.url)).status).toBe(200);
      const events = await call(carol, `/media/${inP1.mediaId}/events`);
      expect(events.status).toBe(200);
      expect(events.body).toContain('"status":"READY"');
      // The text route lets a member through too (an image has no text: TEXT_NOT_FOUND, not MEDIA_NOT_FOUND).
      expect((await call(carol, `/media/${inP1.mediaId}/text`)).body.error.code).toBe('TEXT_NOT_FOUND');
      expect((await call(dave, `/media/${inP1.mediaId}/text`)).body.error.code).toBe('MEDIA_NOT_FOUND');
      // Dave is in the tenant but in no project: only his own media (none).
      for (const m of [inP1, inP2, own]) expect((await call(dave, `/media/${m.mediaId}`)).status).toBe(404);
      expect(ids(await call(dave, '/media'))).toEqual([]);
      // Alice sees all of hers; by project, that project's only.
      expect(ids(await call(alice, '/media'))).toEqual([inP1.mediaId, inP2.mediaId, own.mediaId, pending.mediaId].sort());
      expect(ids(await call(alice, '/media?projectId=p2'))).toEqual([inP2.mediaId]);
    });

    it('leaves changes to the uploader: a member gets 403 NOT_UPLOADER, an outsider 404', async () => {
      const attempts: Array<[string, { method?: string; body?: unknown }]> = [
        [`/media/${pending.mediaId}/complete`, { body: {} }],
        [`/media/${pending.mediaId}`, { method: 'DELETE' }],
        [`/media/${inP1.mediaId}`, { method: 'DELETE' }],
        [`/media/${inP1.mediaId}/attach`, { body: { ownerType: 'post', ownerId: 'x1' } }],
        [`/media/${inP1.mediaId}/attach`, { method: 'DELETE' }],
        [`/media/${pending.mediaId}/parts`, { body: { partNumbers: [1] } }],
      ];
      for (const [path, init] of attempts) {
        const member = await call(carol, path, init);
        expect([path, member.status, member.body.error.code]).toEqual([path, 403, 'NOT_UPLOADER']);
        const outsider = await call(dave, path, init);
        expect([path, outsider.status, outsider.body.error.code]).toEqual([path, 404, 'MEDIA_NOT_FOUND']);
      }
      expect((await call(alice, `/media/${inP1.mediaId}`)).body.status).toBe('READY');
    });

    it('never shows one tenant media to another, not even to the same sub with the same project names (IDOR → 404)', async () => {
      for (const m of [inP1, inP2, own, pending]) {
        for (const [path, init] of [
          [`/media/${m.mediaId}`, {}],
          [`/media/${m.mediaId}/events`, {}],
          [`/media/${m.mediaId}/download-url`, {}],
          [`/media/${m.mediaId}/complete`, { body: {} }],
          [`/media/${m.mediaId}/attach`, { body: { ownerType: 'post', ownerId: 'x1' } }],
          [`/media/${m.mediaId}/attach`, { method: 'DELETE' }],
          [`/media/${m.mediaId}`, { method: 'DELETE' }],
        ] as Array<[string, { method?: string; body?: unknown }]>) {
          const res = await call(mallory, path, init);
          expect([path, res.status, res.body.error.code]).toEqual([path, 404, 'MEDIA_NOT_FOUND']);
        }
      }
      expect(ids(await call(mallory, '/media'))).toEqual([]);
      expect(ids(await call(mallory, '/media?projectId=p1'))).toEqual([]);
      // The same sub without a tenant claim is a user of the tenant `default`: nothing either.
      expect((await call({ sub: aliceSub }, `/media/${own.mediaId}`)).status).toBe(404);
      expect((await call(alice, `/media/${own.mediaId}`)).body.status).toBe('READY');
    });

    it('checks a session project against the token (403 PROJECT_FORBIDDEN), batch items on their own', async () => {
      const single = await session(carol, { size: 1000, projectId: 'p2' });
      expect(single.status).toBe(403);
      expect(single.body.error).toMatchObject({ code: 'PROJECT_FORBIDDEN', details: { projectId: 'p2' } });
      const file = { fileName: 'a.jpg', fileType: 'image/jpeg', fileSize: 1000, mediaType: 'POST_IMAGE' };
      const batch = await call(carol, '/media/upload-sessions', { body: { files: [{ ...file, projectId: 'p1' }, { ...file, projectId: 'p2' }] } });
      expect(batch.status).toBe(201);
      expect(batch.body.items[0].mediaId).toBeDefined();
      expect(batch.body.items[1].error.code).toBe('PROJECT_FORBIDDEN');
      // The batch is Carol's; Alice, member of the same project, reads the media but not the batch.
      expect((await call(alice, `/batches/${batch.body.batchId}`)).status).toBe(404);
      expect((await call(alice, `/media/${batch.body.items[0].mediaId}`)).status).toBe(200);
      expect((await call(carol, `/batches/${batch.body.batchId}`)).status).toBe(200);
      expect((await call(carol, `/media/${batch.body.items[0].mediaId}`, { method: 'DELETE' })).status).toBe(202);
    });

    it('tags upload workflows with MediaTenant, so an operator lists one tenant', async () => {
      const described = await p.temporal.workflow.getHandle(`media-upload/${inP1.mediaId}`).describe();
      expect(described.typedSearchAttributes.get(MediaTenantKey)).toBe(tenantA);
      const found = await until(`workflows of ${tenantA} in visibility`, async () => {
        const listed: string[] = [];
        for await (const wf of p.temporal.workflow.list({ query: `MediaTenant = "${tenantA}"` })) listed.push(wf.workflowId);
        return [inP1, inP2, own, pending].every((m) => listed.includes(`media-upload/${m.mediaId}`)) ? listed : undefined;
      });
      const inB: string[] = [];
      for await (const wf of p.temporal.workflow.list({ query: `MediaTenant = "${tenantB}"` })) inB.push(wf.workflowId);
      expect(found.length).toBeGreaterThanOrEqual(4);
      expect(inB).toEqual([]);
    });

    it('lets the uploader cancel and delete (last: it changes what the other tests read)', async () => {
      expect((await call(alice, `/media/${pending.mediaId}`, { method: 'DELETE' })).body.action).toBe('CANCELLING');
      expect((await call(alice, `/media/${inP1.mediaId}`, { method: 'DELETE' })).body.action).toBe('DELETING');
      expect((await call(carol, `/media/${inP1.mediaId}`)).body.status).toMatch(/^DELET(ING|ED)$/);
    });
  });

  it('refuses whitespace-only ids and ids with invisible or bidi characters: 401 in a claim, 400 in a request', async () => {
    const hostile = ['   ', '\u200b', 'ac\u202eme', 'P\u2028', ' P', 'P '];
    for (const id of hostile) {
      const tenantClaim = await call({ sub: uniqueUser('hostile'), tenant: id }, '/media');
      expect([id, tenantClaim.status, tenantClaim.body.error.code]).toEqual([id, 401, 'INVALID_TOKEN_TENANT']);
      const projectsClaim = await call({ sub: uniqueUser('hostile'), projects: ['p1', id] }, '/media');
      expect([id, projectsClaim.status, projectsClaim.body.error.code]).toEqual([id, 401, 'INVALID_TOKEN_PROJECTS']);
      const request = await session({ sub: uniqueUser('hostile'), projects: ['p1'] }, { size: 1000, projectId: id });
      expect([id, request.status, request.body.error.code]).toEqual([id, 400, 'VALIDATION_FAILED']);
    }
    // Inner spaces, accents and path-like text stay valid ids.
    const fine = await session({ sub: uniqueUser('fine'), tenant: 'Acme Corp', projects: ['site 7/ü'] }, { size: 1000, projectId: 'site 7/ü' });
    expect(fine.status).toBe(201);
  });

  it('puts a token without a tenant claim in the tenant `default`, like rows from before tenants', async () => {
    const sub = uniqueUser('legacy');
    const res = await session({ sub }, { size: 1000 });
    expect(res.status).toBe(201);
    const prefix = originalKeyPrefix({ tenantId: 'default', userId: sub });
    expect(res.body.storageKey.startsWith(`${prefix.tenant}/${prefix.owner}/post_image/`)).toBe(true);
    expect(await p.media.findById(res.body.mediaId)).toMatchObject({ tenantId: 'default', projectId: null });
    const described = await p.temporal.workflow.getHandle(`media-upload/${res.body.mediaId}`).describe();
    expect(described.typedSearchAttributes.get(MediaTenantKey)).toBe('default');
    // An explicit `default` tenant claim is the same tenant; any other is not.
    expect((await call({ sub, tenant: 'default' }, `/media/${res.body.mediaId}`)).status).toBe(200);
    expect((await call({ sub, tenant: 'elsewhere' }, `/media/${res.body.mediaId}`)).status).toBe(404);
    expect((await call({ sub }, `/media/${res.body.mediaId}`, { method: 'DELETE' })).status).toBe(202);
  });

  it('uploads into a project through the client library (projectId), refused for a project not granted', async () => {
    const tenant = `client-${randomUUID().slice(0, 8)}`;
    const token = await mintDevToken(testJwtSecret, uniqueUser('client'), '1h', { tenant, projects: ['site-7'] });
    const client = new MediaUploadClient({ baseUrl: p.api.url, token, retryDelayMs: 20, pollIntervalMs: 200 });
    const jpeg = await realJpeg(20_000);
    const { mediaId } = await client.upload(jpeg, { fileName: 'site.jpg', projectId: 'site-7' });
    expect(await p.media.findById(mediaId)).toMatchObject({ tenantId: tenant, projectId: 'site-7' });
    const refused = await client.upload(jpeg, { fileName: 'site.jpg', projectId: 'site-8' }).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(MediaClientError);
    expect((refused as MediaClientError).code).toBe('PROJECT_FORBIDDEN');
    await client.cancel(mediaId);
  });

  it('migrates rows from before tenants into the tenant `default`, keys unchanged (migration 1765600000000, up and down)', async () => {
    const database = `tenants_migration_${randomUUID().slice(0, 8)}`;
    await p.media.dataSource.query(`CREATE DATABASE ${database}`);
    const url = new URL(p.config.DATABASE_URL);
    url.pathname = `/${database}`;
    const all = createDataSource(url.toString(), 1);
    const migrations = all.options.migrations as Array<new () => { name: string }>;
    const before = new DataSource({ ...all.options, migrations: migrations.slice(0, -1) });
    try {
      await before.initialize();
      await before.runMigrations();
      const id = randomUUID();
      const oldKey = `post_image/0123456789abcdef0123456789abcdef/1-${id}.jpg`;
      await before.query(
        `INSERT INTO media (id, user_id, media_type, file_name, mime_type, file_size, status, storage_key, workflow_id, expires_at, idempotency_key)
         VALUES ($1, 'legacy-user', 'POST_IMAGE', 'a.jpg', 'image/jpeg', 10, 'READY', $2, $3, now(), 'k1')`,
        [id, oldKey, `media-upload/${id}`],
      );
      await before.destroy();
      await all.initialize();
      expect((await all.runMigrations()).map((m) => m.name)).toEqual(['TenantsAndProjects1765600000000']);
      const repo = new MediaRepository(all);
      const legacy = { tenantId: 'default', userId: 'legacy-user', projects: [] };
      expect(await repo.findVisible(id, legacy)).toMatchObject({ tenantId: 'default', projectId: null, storageKey: oldKey });
      expect((await repo.list(legacy, { limit: 10 })).items.map((m) => m.id)).toEqual([id]);
      expect(await repo.findByIdempotencyKey(legacy, 'k1')).toMatchObject({ id });
      expect(await repo.findVisible(id, { ...legacy, tenantId: 'acme' })).toBeNull();
      await all.undoLastMigration({ transaction: 'each' });
      const columns: Array<{ column_name: string }> = await all.query(`SELECT column_name FROM information_schema.columns WHERE table_name = 'media' AND column_name IN ('tenant_id', 'project_id')`);
      expect(columns).toEqual([]);
    } finally {
      if (before.isInitialized) await before.destroy();
      if (all.isInitialized) await all.destroy();
      await p.media.dataSource.query(`DROP DATABASE IF EXISTS ${database}`);
    }
  });

  it('counts the storage quota per tenant across its users, apart from other tenants', async () => {
    // An API of its own: the database outlives test files, so the tenant `default` of other
    // tests may hold any amount; this one's quota applies only to the tenants below.
    const main = p;
    p = await startPlatform({ TENANT_STORAGE_QUOTA_BYTES: String(tenantQuota) }, { videoWorker: false });
    try {
      await quotaPerTenant();
    } finally {
      await p.stop();
      p = main;
    }
  });

  async function quotaPerTenant(): Promise<void> {
    const tenant = `quota-${randomUUID().slice(0, 8)}`;
    const first = await session({ sub: uniqueUser('q1'), tenant }, { size: 1.5 * MiB });
    expect(first.status).toBe(201);
    const second = await session({ sub: uniqueUser('q2'), tenant }, { size: 1 * MiB });
    expect(second.status).toBe(413);
    expect(second.body.error).toMatchObject({ code: 'QUOTA_EXCEEDED', details: { scope: 'tenant', quotaBytes: tenantQuota, usedBytes: 1.5 * MiB } });
    const elsewhere = await session({ sub: uniqueUser('q3'), tenant: `${tenant}-other` }, { size: 1 * MiB });
    expect(elsewhere.status).toBe(201);
    // Cancelling frees the tenant's bytes.
    expect((await call({ sub: (await p.media.findById(first.body.mediaId))!.userId, tenant }, `/media/${first.body.mediaId}`, { method: 'DELETE' })).status).toBe(202);
    await until('the cancelled session to free its bytes', async () => ((await p.media.findById(first.body.mediaId))?.status === 'CANCELLED' ? true : undefined));
    expect((await session({ sub: uniqueUser('q2'), tenant }, { size: 1 * MiB })).status).toBe(201);
    expect((await call({ sub: (await p.media.findById(elsewhere.body.mediaId))!.userId, tenant: `${tenant}-other` }, `/media/${elsewhere.body.mediaId}`, { method: 'DELETE' })).status).toBe(202);
  }

  it('rate limits session creation per tenant across its users, apart from other tenants', async () => {
    const tenant = `burst-${randomUUID().slice(0, 8)}`;
    const statuses: number[] = [];
    // Each from another user: the per-user limit (120) is far away; the tenant's is reached.
    for (let i = 0; i <= tenantRateLimit; i++) statuses.push((await session({ sub: uniqueUser(`r${i}`), tenant }, { size: 1000 })).status);
    expect(statuses.slice(0, tenantRateLimit)).toEqual(Array(tenantRateLimit).fill(201));
    const limited = await session({ sub: uniqueUser('r-last'), tenant }, { size: 1000 });
    expect(limited.status).toBe(429);
    expect(limited.body.error.code).toBe('RATE_LIMITED');
    expect(statuses[tenantRateLimit]).toBe(429);
    expect((await session({ sub: uniqueUser('r-other'), tenant: `${tenant}-other` }, { size: 1000 })).status).toBe(201);
  });

  it('counts a batch of N files as N sessions against the tenant limit: a batch beyond it is refused whole', async () => {
    const tenant = `batch-${randomUUID().slice(0, 8)}`;
    const file = { fileName: 'plan.jpg', fileType: 'image/jpeg', fileSize: 1000, mediaType: 'POST_IMAGE' };
    const batch = (sub: string, count: number) => call({ sub, tenant }, '/media/upload-sessions', { body: { files: Array.from({ length: count }, () => file) } });
    const b1 = uniqueUser('b1');
    const tooMany = await batch(b1, tenantRateLimit + 1);
    expect([tooMany.status, tooMany.body.error.code]).toEqual([429, 'RATE_LIMITED']);
    expect(Number(tooMany.retryAfter)).toBeGreaterThanOrEqual(1);
    expect((await call({ sub: b1, tenant }, '/media')).body.items).toEqual([]);
    // The refused batch counted too (as any refused request does): the window is spent.
    expect((await session({ sub: uniqueUser('b2'), tenant }, { size: 1000 })).status).toBe(429);
    // In a fresh tenant, a batch of exactly the limit passes whole and leaves nothing for a single session.
    const fresh = `${tenant}-fresh`;
    const full = await call({ sub: uniqueUser('b3'), tenant: fresh }, '/media/upload-sessions', { body: { files: Array.from({ length: tenantRateLimit }, () => file) } });
    expect(full.status).toBe(201);
    expect(full.body.items.filter((item: { mediaId?: string }) => item.mediaId)).toHaveLength(tenantRateLimit);
    const after = await session({ sub: uniqueUser('b4'), tenant: fresh }, { size: 1000 });
    expect([after.status, after.body.error.code]).toEqual([429, 'RATE_LIMITED']);
  });

  it('counts a batch refused for its length (400) once, and the RateLimit header counts a batch whole', async () => {
    const tenant = `long-${randomUUID().slice(0, 8)}`;
    const file = { fileName: 'plan.jpg', fileType: 'image/jpeg', fileSize: 1000, mediaType: 'POST_IMAGE' };
    const sub = uniqueUser('long');
    const tooLong = await call({ sub, tenant }, '/media/upload-sessions', { body: { files: Array.from({ length: MAX_BATCH_FILES + 1 }, () => file) } });
    expect([tooLong.status, tooLong.body.error.code]).toEqual([400, 'VALIDATION_FAILED']);
    // One request spent of the tenant's window: a batch of the rest still passes.
    const rest = await call({ sub, tenant }, '/media/upload-sessions', { body: { files: Array.from({ length: tenantRateLimit - 1 }, () => file) } });
    expect(rest.status).toBe(201);
    // The user's own limit, in the header: both requests, the batch counted as its files.
    expect(rest.rateLimit).toMatch(new RegExp(`remaining=${p.config.RATE_LIMIT_SESSIONS_PER_MINUTE - tenantRateLimit}\\b`));
  });
});
