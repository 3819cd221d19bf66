import { jpegWithExif } from '../fixtures/media';
import { startPlatform, uniqueUser, uploadFile, waitForStatus, type Platform } from '../harness/platform';

describe('per-user storage quota on the real stack', () => {
  const quota = 300_000;
  let p: Platform;
  beforeAll(async () => {
    p = await startPlatform({ USER_STORAGE_QUOTA_BYTES: String(quota) });
  });
  afterAll(() => p?.stop());

  const session = (user: string, fileSize: number) =>
    p.call(user, '/media/upload-session', { body: { fileName: 'a.jpg', fileType: 'image/jpeg', fileSize, mediaType: 'POST_IMAGE' } });

  it('counts uploads in progress, READY originals and their thumbnails; frees what is cancelled', async () => {
    const user = uniqueUser('quota');
    const image = await jpegWithExif(1200, 900);
    const { mediaId } = await uploadFile(p, user, image, 'image/jpeg', 'POST_IMAGE', 'photo.jpg');
    await waitForStatus(p, user, mediaId, ['READY']);
    const used = await p.media.storageUsed({ tenantId: 'default', userId: user });
    const thumbnails = (await p.media.renditions(mediaId)).reduce((sum, r) => sum + (r.sizeBytes ?? 0), 0);
    expect(thumbnails).toBeGreaterThan(0);
    expect(used).toBe(image.length + thumbnails);

    const pending = await session(user, quota - used - 10);
    expect(pending.status).toBe(201);
    const refused = await session(user, 100);
    expect(refused.status).toBe(413);
    expect(refused.body.error).toMatchObject({ code: 'QUOTA_EXCEEDED', details: { quotaBytes: quota, usedBytes: quota - 10, fileSize: 100 } });
    // Another user has a quota of their own.
    const other = uniqueUser('other');
    const others = await session(other, 100);
    expect(others.status).toBe(201);

    // Cancelling the pending upload gives its bytes back.
    await p.call(user, `/media/${pending.body.mediaId}`, { method: 'DELETE' });
    await waitForStatus(p, user, pending.body.mediaId, ['CANCELLED']);
    const afterCancel = await session(user, 100);
    expect(afterCancel.status).toBe(201);

    for (const [owner, id] of [[other, others.body.mediaId], [user, afterCancel.body.mediaId]] as const) {
      await p.call(owner, `/media/${id}`, { method: 'DELETE' });
      await waitForStatus(p, owner, id, ['CANCELLED']);
    }
  });

  it('holds when sessions and batches of one user arrive at the same instant', async () => {
    const user = uniqueUser('quota-race');
    const fileSize = 40_000;
    // Each of these alone fits (the usage each reads at its start is 0); together they are 4.5× the quota.
    const singles = Array.from({ length: 24 }, () => session(user, fileSize));
    const batch = p.call(user, '/media/upload-sessions', {
      body: { files: Array.from({ length: 10 }, () => ({ fileName: 'b.jpg', fileType: 'image/jpeg', fileSize, mediaType: 'POST_IMAGE' })) },
    });
    const answers = await Promise.all(singles);
    const batchAnswer = await batch;
    expect(answers.every((a) => a.status === 201 || (a.status === 413 && a.body.error.code === 'QUOTA_EXCEEDED'))).toBe(true);
    expect(batchAnswer.status).toBe(201);
    const items = batchAnswer.body.items as Array<{ mediaId?: string; error?: { code: string } }>;
    expect(items.every((i) => i.mediaId || i.error?.code === 'QUOTA_EXCEEDED')).toBe(true);
    const granted = answers.filter((a) => a.status === 201).length + items.filter((i) => i.mediaId).length;
    expect(granted).toBe(Math.floor(quota / fileSize));
    expect(await p.media.storageUsed({ tenantId: 'default', userId: user })).toBeLessThanOrEqual(quota);
    // What was refused left no row behind.
    const listed = (await p.call(user, '/media?limit=100')).body.items as Array<{ mediaId: string }>;
    expect(listed).toHaveLength(granted);
    for (const { mediaId } of listed) await p.call(user, `/media/${mediaId}`, { method: 'DELETE' });
    for (const { mediaId } of listed) await waitForStatus(p, user, mediaId, ['CANCELLED']);
  });

  it('replays one session to every retry of an Idempotency-Key near the quota, never 413', async () => {
    const user = uniqueUser('quota-retry');
    // The quota fits one of these: the winner's row, counted in the usage, would refuse the others.
    const fileSize = quota - 1000;
    const headers = { 'idempotency-key': `retry-${user}` };
    const answers = await Promise.all(
      Array.from({ length: 6 }, () => p.call(user, '/media/upload-session', { body: { fileName: 'a.jpg', fileType: 'image/jpeg', fileSize, mediaType: 'POST_IMAGE' }, headers })),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(6).fill(201));
    expect(new Set(answers.map((a) => a.body.mediaId)).size).toBe(1);
    expect((await p.call(user, '/media?limit=10')).body.items).toHaveLength(1);
    // A new key is a new upload: over the quota.
    const other = await p.call(user, '/media/upload-session', { body: { fileName: 'b.jpg', fileType: 'image/jpeg', fileSize, mediaType: 'POST_IMAGE' }, headers: { 'idempotency-key': `other-${user}` } });
    expect(other.status).toBe(413);
    await p.call(user, `/media/${answers[0]!.body.mediaId}`, { method: 'DELETE' });
    await waitForStatus(p, user, answers[0]!.body.mediaId, ['CANCELLED']);
  });
});
