import { MockActivityEnvironment } from '@temporalio/testing';
import { createActivities } from '../../activities';
import { derivedPrefix } from '../../services/shared/media-types';
import { startPlatform, uniqueUser, type Platform } from '../harness/platform';

/**
 * The read model's status rules on the real PostgreSQL (MediaRepository.setStatus): a late
 * write never resurrects a finished media, except that an outcome written after compensation
 * replaces READY (the upload workflow removed everything stored: a READY row would name files
 * that are gone), and nothing but the deletion's own end undoes DELETING.
 */
describe('media status rules', () => {
  let p: Platform;
  beforeAll(async () => {
    // No workers: these rows have workflows nobody runs, so only the writes here change them.
    p = await startPlatform({}, { lightWorker: false, videoWorker: false });
  });
  afterAll(async () => {
    await p?.stop();
  });

  /** A fresh media row (AWAITING_UPLOAD) whose workflow is terminated at once, so nothing else writes it. */
  async function freshMedia(): Promise<string> {
    const res = await p.call(uniqueUser('status'), '/media/upload-session', { body: { fileName: 'a.jpg', fileType: 'image/jpeg', fileSize: 1000, mediaType: 'POST_IMAGE' } });
    expect(res.status).toBe(201);
    const row = (await p.media.findById(res.body.mediaId))!;
    await p.temporal.workflow.getHandle(row.workflowId).terminate('status rules test');
    return row.id;
  }
  const statusOf = async (id: string) => (await p.media.findById(id))!.status;

  it.each(['CANCELLED', 'FAILED', 'REJECTED', 'EXPIRED'] as const)('a compensated outcome (%s) replaces READY', async (outcome) => {
    const id = await freshMedia();
    expect(await p.media.setStatus(id, 'READY')).toBe('POST_IMAGE');
    expect(await p.media.setStatus(id, outcome, `${outcome}_REASON`)).toBe('POST_IMAGE');
    expect(await p.media.findById(id)).toMatchObject({ status: outcome, failureReason: `${outcome}_REASON` });
    // And nothing resurrects it afterwards.
    expect(await p.media.setStatus(id, 'READY')).toBeNull();
    expect(await statusOf(id)).toBe(outcome);
  });

  it('keeps the other terminal statuses and a deletion under way', async () => {
    const failed = await freshMedia();
    await p.media.setStatus(failed, 'FAILED', 'ERROR: x');
    expect(await p.media.setStatus(failed, 'CANCELLED', 'CANCELLED_BY_USER')).toBeNull();
    expect(await p.media.setStatus(failed, 'PROCESSING')).toBeNull();
    expect(await statusOf(failed)).toBe('FAILED');

    const deleting = await freshMedia();
    await p.media.setStatus(deleting, 'READY');
    expect(await p.media.claimForDeletion(deleting, { kind: 'finished' })).toMatchObject({ claimedNow: true });
    for (const late of ['CANCELLED', 'FAILED', 'READY'] as const) expect(await p.media.setStatus(deleting, late)).toBeNull();
    expect(await statusOf(deleting)).toBe('DELETING');
    expect(await p.media.finishDeletion(deleting)).toBe(true);
    expect(await p.media.setStatus(deleting, 'CANCELLED')).toBeNull();
    expect(await statusOf(deleting)).toBe('DELETED');
  });
  describe('an upload a DELETE cancels (claimCancellation)', () => {
    it('reads DELETING at once, takes no upload step, and ends with the outcome written after compensation', async () => {
      const id = await freshMedia();
      expect(await p.media.claimCancellation(id)).toBe(true);
      expect(await statusOf(id)).toBe('DELETING');
      // The private flag is not shown to the owner.
      expect((await p.call((await p.media.findById(id))!.userId, `/media/${id}`)).body.metadata).toEqual({});
      expect(await p.media.setStatus(id, 'PROCESSING')).toBeNull();
      expect(await p.media.setStatus(id, 'READY')).toBeNull();
      expect(await p.media.setStatus(id, 'CANCELLED', 'CANCELLED_BY_USER')).toBe('POST_IMAGE');
      expect(await statusOf(id)).toBe('CANCELLED');
      // A finished media is no longer cancelled that way.
      expect(await p.media.claimCancellation(id)).toBe(false);
    });

    it('ends CANCELLED with storage removed when its READY write is the one that finds the claim', async () => {
      const id = await freshMedia();
      const row = (await p.media.findById(id))!;
      // What processing left: the original in both buckets and a derived object.
      await p.storage.put(p.config.S3_INCOMING_BUCKET, row.storageKey, Buffer.from('original'), 'image/jpeg');
      await p.storage.put(p.config.S3_MEDIA_BUCKET, row.storageKey, Buffer.from('original'), 'image/jpeg');
      await p.storage.put(p.config.S3_MEDIA_BUCKET, `${derivedPrefix(id)}thumbnails/150.webp`, Buffer.from('thumb'), 'image/webp');
      expect(await p.media.claimCancellation(id)).toBe(true);

      const { recordStatus } = createActivities({ storage: p.storage, media: p.media, buckets: { incoming: p.config.S3_INCOMING_BUCKET, media: p.config.S3_MEDIA_BUCKET } });
      await new MockActivityEnvironment({}, { client: p.temporal }).run(recordStatus, { mediaId: id, status: 'READY' as const });

      expect(await p.media.findById(id)).toMatchObject({ status: 'CANCELLED', failureReason: 'CANCELLED_BY_USER' });
      expect(await p.storage.head(p.config.S3_INCOMING_BUCKET, row.storageKey)).toBeUndefined();
      expect(await p.storage.head(p.config.S3_MEDIA_BUCKET, row.storageKey)).toBeUndefined();
      expect(await p.storage.listKeys(p.config.S3_MEDIA_BUCKET, derivedPrefix(id))).toEqual([]);
    });
  });
});
