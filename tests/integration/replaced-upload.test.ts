import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createActivities } from '../../activities';
import { createImageActivities, createScanActivities } from '../../activities/processing';
import { ClamdScanner } from '../../services/shared/scanner';
import { jpegWithExif } from '../fixtures/media';
import { startPlatform, uniqueUser, waitForStatus, type Platform } from '../harness/platform';

/** The EICAR test file that every virus scanner flags, padded to `size` bytes. */
const eicar = (size: number) => {
  const text = Buffer.from('X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*');
  return Buffer.concat([text, Buffer.alloc(size - text.length, 0x20)]);
};

async function rejectionType(run: Promise<unknown>): Promise<string | undefined> {
  try {
    await run;
  } catch (err) {
    return err instanceof ApplicationFailure ? (err.type ?? undefined) : `not an ApplicationFailure: ${String(err)}`;
  }
  return undefined;
}

/**
 * A presigned PUT URL stays valid until it expires, so an uploader can replace the object after
 * `complete`, while the workflow scans and processes it. Only the bytes that verification saw
 * may be scanned, processed and published (README: "Only the bytes verified are ...").
 */
describe('an upload replaced after verification', () => {
  describe('each step, on real S3 and clamd', () => {
    let p: Platform;
    beforeAll(async () => {
      // No workers: the steps run here, one by one, around the replacement.
      p = await startPlatform({}, { lightWorker: false, videoWorker: false });
    });
    afterAll(async () => {
      await p?.stop();
    });

    it('is never scanned, processed or promoted in place of what was verified', async () => {
      const photo = await jpegWithExif(640, 480);
      const user = uniqueUser('replaced');
      const session = await p.call(user, '/media/upload-session', { body: { fileName: 'p.jpg', fileType: 'image/jpeg', fileSize: photo.length, mediaType: 'POST_IMAGE' } });
      expect(session.status).toBe(201);
      const { mediaId, storageKey, upload } = session.body as { mediaId: string; storageKey: string; upload: { url: string; headers: Record<string, string> } };
      // Its workflow would run these same steps; here the test runs them.
      await p.temporal.workflow.getHandle((await p.media.findById(mediaId))!.workflowId).terminate('steps run by the test');
      expect((await fetch(upload.url, { method: 'PUT', body: photo, headers: upload.headers })).status).toBe(200);

      const buckets = { incoming: p.config.S3_INCOMING_BUCKET, media: p.config.S3_MEDIA_BUCKET };
      const deps = { storage: p.storage, media: p.media, buckets };
      const { verifyUpload, promoteOriginal } = createActivities(deps);
      const { scanOriginal } = createScanActivities(deps, new ClamdScanner({ host: p.config.CLAMD_HOST, port: p.config.CLAMD_PORT }), { maxBytes: 100 * 1024 * 1024, oversizeAction: 'reject' });
      const { processImage } = createImageActivities(deps);
      const env = () => new MockActivityEnvironment({}, { client: p.temporal });

      const verified = (await env().run(verifyUpload, { storageKey, fileSize: photo.length, mimeType: 'image/jpeg' })) as { etag?: string };
      expect(verified.etag).toEqual(expect.any(String));
      // The same URL, the same size and type: S3 takes it.
      expect((await fetch(upload.url, { method: 'PUT', body: eicar(photo.length), headers: upload.headers })).status).toBe(200);

      const input = { mediaId, storageKey, mediaType: 'POST_IMAGE' as const, fileSize: photo.length, etag: verified.etag };
      expect(await rejectionType(env().run(scanOriginal, input))).toBe('UPLOAD_CHANGED');
      expect(await rejectionType(env().run(processImage, input))).toBe('UPLOAD_CHANGED');
      expect(await rejectionType(env().run(promoteOriginal, { mediaId, storageKey, etag: verified.etag }))).toBe('UPLOAD_CHANGED');
      expect(await p.storage.head(buckets.media, storageKey)).toBeUndefined();
      expect(await p.media.renditions(mediaId)).toEqual([]);
      // What the terminated workflow's compensation would have done: nothing stored, the row ended.
      await p.storage.delete(buckets.incoming, storageKey);
      await p.media.setStatus(mediaId, 'REJECTED', 'UPLOAD_CHANGED: replaced in the test');
    });
  });

  describe('the whole upload, replaced while the workflow runs', () => {
    let p: Platform;
    beforeAll(async () => {
      p = await startPlatform({}, { videoWorker: false });
    });
    afterAll(async () => {
      await p?.stop();
    });

    it('ends REJECTED (UPLOAD_CHANGED) with nothing stored, or READY publishing the bytes verified', async () => {
      // Large enough that thumbnails take a while: the replacement lands during the scan or processing.
      const photo = await jpegWithExif(4000, 3000);
      const user = uniqueUser('replaced-run');
      const session = await p.call(user, '/media/upload-session', { body: { fileName: 'p.jpg', fileType: 'image/jpeg', fileSize: photo.length, mediaType: 'POST_IMAGE' } });
      const { mediaId, storageKey, upload } = session.body as { mediaId: string; storageKey: string; upload: { url: string; headers: Record<string, string> } };
      expect((await fetch(upload.url, { method: 'PUT', body: photo, headers: upload.headers })).status).toBe(200);
      expect((await p.call(user, `/media/${mediaId}/complete`, { body: {} })).status).toBe(202);
      let status = 'VERIFYING';
      while (!['SCANNING', 'PROCESSING', 'READY', 'REJECTED', 'FAILED'].includes(status)) {
        status = (await p.call(user, `/media/${mediaId}`)).body.status;
      }
      expect((await fetch(upload.url, { method: 'PUT', body: eicar(photo.length), headers: upload.headers })).status).toBe(200);

      const final = await waitForStatus(p, user, mediaId, ['READY', 'REJECTED', 'FAILED']);
      const published = await p.storage.getIfExists(p.config.S3_MEDIA_BUCKET, storageKey);
      if (final.status === 'READY') {
        // The verified photo (its location scrubbed, so not byte for byte), never the replacement.
        expect(published?.subarray(0, 2).toString('hex')).toBe('ffd8');
        expect(published?.includes('EICAR')).toBe(false);
      } else {
        expect(final).toMatchObject({ status: 'REJECTED', failureReason: expect.stringMatching(/^UPLOAD_CHANGED: /) });
        expect(published).toBeUndefined();
      }
      console.log(`replaced during ${status}: ended ${final.status}`);
      // A replacement after the promotion stays in incoming until the orphan sweep; not this test's to keep.
      await p.storage.delete(p.config.S3_INCOMING_BUCKET, storageKey);
    });
  });
});
