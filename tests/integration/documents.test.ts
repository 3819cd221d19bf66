import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { analyzePdf, DocumentAnalyzerError, DocumentLimitError, UndecodableDocumentError } from '../../services/shared/media/pdf';
import { isPublicText } from '../../services/shared/media/tool-errors';
import { derivedPrefix } from '../../services/shared/media-types';
import { A4_PREVIEW, makeDocuments, manyObjectsPdf, pdfWithAttachment, slowPagePdf, type DocumentName } from '../fixtures/corpus-documents';
import { freePort } from '../../devstack/ports';
import { until } from '../../devstack/poll';
import { startTemporalDevServer, type TemporalServer } from '../../devstack/temporal';
import { eicar, jpegWithExif, pngHeader, bytesOfType } from '../fixtures/media';
import { startPlatform, uniqueUser, uploadFile, waitForStatus, type Platform } from '../harness/platform';

const FINISHED = ['READY', 'REJECTED', 'FAILED'];
/** Small enough that the 500-page document's text (~15 KB) is cut; the others fit. */
const TEXT_MAX_BYTES = 4096;

describe('documents (PDF) on the real stack', () => {
  let p: Platform;
  let pdfs: Record<DocumentName, Buffer>;
  beforeAll(async () => {
    pdfs = makeDocuments();
    p = await startPlatform({ DOCUMENT_TEXT_MAX_BYTES: String(TEXT_MAX_BYTES) });
  });
  afterAll(() => p?.stop());

  /** Uploads `file` as `<name>.pdf` for a user of its own, and waits until it is finished. */
  async function uploadDocument(name: string, file: Buffer) {
    const user = uniqueUser(name);
    const session = await uploadFile(p, user, file, 'application/pdf', 'DOCUMENT', `${name}.pdf`);
    const media = await waitForStatus(p, user, session.mediaId, FINISHED);
    return { user, session, media };
  }

  async function expectPreview(media: { thumbnails: Array<{ width: number; height: number; format: string; url: string }> }) {
    const sizes = media.thumbnails.map((t) => `${t.width}x${t.height}.${t.format}`).sort();
    const expected = [150, 300, 600, 1200].flatMap((w) => {
      const h = Math.round((w * A4_PREVIEW.height) / A4_PREVIEW.width);
      return [`${w}x${h}.webp`, `${w}x${h}.jpeg`];
    });
    expect(sizes).toEqual(expected.sort());
    for (const t of media.thumbnails) {
      const meta = await sharp(Buffer.from(await (await fetch(t.url)).arrayBuffer())).metadata();
      expect([meta.width, meta.height, meta.format]).toEqual([t.width, t.height, t.format]);
    }
  }

  it('takes a multi-page PDF to READY with a page-1 preview, page count, info and its text', async () => {
    const { user, session, media } = await uploadDocument('multipage', pdfs.multipage);
    expect(media.status).toBe('READY');
    expect(media.mediaType).toBe('DOCUMENT');
    expect(media.metadata).toMatchObject({
      pageCount: 3,
      title: 'Site plan level 2',
      author: 'Jane Architect',
      encrypted: false,
      restrictions: [],
      hasJavaScript: false,
      hasEmbeddedFiles: false,
      textTruncated: false,
      repaired: false,
    });
    await expectPreview(media);
    const text = await p.call(user, `/media/${session.mediaId}/text`);
    expect(text.status).toBe(200);
    expect(text.body.text.split('\f').map((page: string) => page.trim())).toEqual([
      'Page 1: concrete slab north wing',
      'Page 2: concrete slab north wing',
      'Page 3: concrete slab north wing',
    ]);
    expect(text.body).toMatchObject({ truncated: false, pagesRead: 3, sizeBytes: Buffer.byteLength(text.body.text) });
    expect(media.metadata.textBytes).toBe(text.body.sizeBytes);
    // Another user does not even learn that it exists.
    expect((await p.call(uniqueUser('other'), `/media/${session.mediaId}/text`)).status).toBe(404);
  });

  it('serves a PDF with JavaScript only as a download, flagged in metadata', async () => {
    const { user, session, media } = await uploadDocument('javascript', pdfs.javascript);
    expect(media.status).toBe('READY');
    expect(media.metadata).toMatchObject({ hasJavaScript: true, hasEmbeddedFiles: false, pageCount: 1 });
    const link = await p.call(user, `/media/${session.mediaId}/download-url`);
    expect(link.status).toBe(200);
    const download = await fetch(link.body.url);
    expect(download.status).toBe(200);
    expect(download.headers.get('content-disposition')).toBe('attachment');
    expect(Buffer.from(await download.arrayBuffer()).equals(pdfs.javascript)).toBe(true);
    // The public copy is stored as an attachment too: no origin shows it inline.
    const cdn = await fetch(media.cdnUrl);
    expect(cdn.headers.get('content-disposition')).toBe('attachment');
    expect(cdn.headers.get('content-type')).toBe('application/pdf');
  });

  it('flags a PDF with an embedded file', async () => {
    const { media } = await uploadDocument('embedded-file', pdfs['embedded-file']);
    expect(media.status).toBe('READY');
    expect(media.metadata).toMatchObject({ hasEmbeddedFiles: true, hasJavaScript: false, pageCount: 1 });
  });

  it('keeps a password-protected PDF READY without a preview or text, marked encrypted', async () => {
    const { user, session, media } = await uploadDocument('encrypted', pdfs.encrypted);
    expect(media.status).toBe('READY');
    expect(media.metadata).toMatchObject({ encrypted: true, passwordRequired: true, pageCount: null });
    expect(media.thumbnails).toEqual([]);
    const text = await p.call(user, `/media/${session.mediaId}/text`);
    expect(text.status).toBe(404);
    expect(text.body.error.code).toBe('TEXT_NOT_FOUND');
    // The bytes are the user's: downloadable unchanged.
    const link = await p.call(user, `/media/${session.mediaId}/download-url`);
    expect(Buffer.from(await (await fetch(link.body.url)).arrayBuffer()).equals(pdfs.encrypted)).toBe(true);
  });

  it('renders a PDF encrypted with an owner password only (restrictions, no user password)', async () => {
    const { user, session, media } = await uploadDocument('owner-password', pdfs['owner-password']);
    expect(media.status).toBe('READY');
    // What the owner denied is said; the preview and the text are made regardless.
    expect(media.metadata).toMatchObject({ encrypted: true, passwordRequired: false, pageCount: 1, restrictions: ['print', 'copy'] });
    await expectPreview(media);
    expect((await p.call(user, `/media/${session.mediaId}/text`)).body.text.trim()).toBe('Page 1: no printing');
  });

  it('renders page 1 only of a 500-page PDF and cuts its text at the configured size', async () => {
    const { user, session, media } = await uploadDocument('pages-500', pdfs['pages-500']);
    expect(media.status).toBe('READY');
    expect(media.metadata).toMatchObject({ pageCount: 500, textTruncated: true });
    await expectPreview(media);
    const text = await p.call(user, `/media/${session.mediaId}/text`);
    expect(text.body.truncated).toBe(true);
    expect(text.body.sizeBytes).toBeLessThanOrEqual(TEXT_MAX_BYTES);
    expect(text.body.text.startsWith('Page 1: of five hundred')).toBe(true);
    // Pages stop being read once the cap is reached.
    expect(text.body.pagesRead).toBeLessThan(500);
  });

  it('takes a scan without a text layer to READY with a preview and empty text', async () => {
    const { user, session, media } = await uploadDocument('image-only', pdfs['image-only']);
    expect(media.status).toBe('READY');
    expect(media.metadata).toMatchObject({ pageCount: 2, textBytes: 0, textTruncated: false });
    expect(media.thumbnails.length).toBe(8);
    const text = await p.call(user, `/media/${session.mediaId}/text`);
    expect(text.status).toBe(200);
    expect(text.body).toMatchObject({ text: '', sizeBytes: 0, pagesRead: 2 });
  });

  it('takes a PDF whose cross-reference table is broken to READY, repaired by MuPDF and saying so', async () => {
    const broken = Buffer.from(pdfs.multipage.toString('latin1').replace(/\bxref\b/g, 'xrXf'), 'latin1');
    expect(broken.equals(pdfs.multipage)).toBe(false);
    const { media } = await uploadDocument('multipage', broken);
    expect(media.status).toBe('READY');
    expect(media.metadata).toMatchObject({ pageCount: 3, repaired: true });
  });

  it('accepts the %PDF- header after junk within the first 1024 bytes, as readers do', async () => {
    const { media } = await uploadDocument('junk-before-header', pdfs['junk-before-header']);
    expect(media.status).toBe('READY');
    expect(media.metadata.pageCount).toBe(3);
  });

  it.each([
    ['2 KiB of NULs', Buffer.alloc(2048, 0)],
    ['blank lines and form feeds', Buffer.from('\r\n\f '.repeat(1000), 'latin1')],
    ['60 KiB of NULs', Buffer.alloc(60 * 1024, 0)],
    ['2 MiB of NULs, read back in 64 KiB steps', Buffer.alloc(2 * 1024 * 1024, 0)],
  ])('accepts a PDF padded after %%%%EOF with %s, as readers do', async (_what, padding) => {
    const { media } = await uploadDocument('multipage', Buffer.concat([pdfs.multipage, padding]));
    expect(media.status).toBe('READY');
    expect(media.metadata.pageCount).toBe(3);
    await expectPreview(media);
  });

  it('rejects a truncated PDF and leaves nothing behind', async () => {
    const { session, media } = await uploadDocument('truncated', pdfs.truncated);
    expect(media.status).toBe('REJECTED');
    expect(media.failureReason).toMatch(/^UNDECODABLE_MEDIA: the PDF is truncated/);
    expect(await p.storage.head(p.config.S3_INCOMING_BUCKET, session.storageKey)).toBeUndefined();
    expect(await p.storage.head(p.config.S3_MEDIA_BUCKET, session.storageKey)).toBeUndefined();
    expect(await p.media.findText(session.mediaId)).toBeNull();
  });

  it('rejects a PDF whose compressed attachment is malware that clamd alone does not see, and leaves nothing behind', async () => {
    const { session, media } = await uploadDocument('with-attachment', pdfWithAttachment(eicar));
    expect(media.status).toBe('REJECTED');
    // The original's scan passed it (ClamAV 1.4 does not inflate this stream); the attachment's caught it.
    expect(media.failureReason).toMatch(/^MALWARE: malware found in an embedded file: Eicar/);
    expect(await p.storage.head(p.config.S3_INCOMING_BUCKET, session.storageKey)).toBeUndefined();
    expect(await p.storage.head(p.config.S3_MEDIA_BUCKET, session.storageKey)).toBeUndefined();
    expect(await p.storage.listKeys(p.config.S3_MEDIA_BUCKET, derivedPrefix(session.mediaId))).toEqual([]);
    const row = await p.media.findById(session.mediaId);
    expect(row?.metadata).toMatchObject({ scan: { status: 'CLEAN' }, embeddedFileScan: { status: 'INFECTED' } });
  });

  it.each([
    ['a PDF attached to a PDF', pdfWithAttachment(pdfWithAttachment(eicar), 'inner.pdf')],
    ['a PDF in a PDF in a PDF', pdfWithAttachment(pdfWithAttachment(pdfWithAttachment(eicar), 'middle.pdf'), 'outer.pdf')],
  ])('finds malware in the attachment of %s (the inner PDF is opened too)', async (_what, file) => {
    const { session, media } = await uploadDocument('nested', file);
    expect(media.status).toBe('REJECTED');
    expect(media.failureReason).toMatch(/^MALWARE: malware found in an embedded file: Eicar/);
    expect(await p.storage.head(p.config.S3_MEDIA_BUCKET, session.storageKey)).toBeUndefined();
  });

  it('publishes a PDF with a clean compressed attachment, its attachment scanned', async () => {
    const { session, media } = await uploadDocument('multipage', pdfWithAttachment(Buffer.from('bill of quantities, rev. 3\n'.repeat(50)), 'boq.txt'));
    expect(media.status).toBe('READY');
    expect(media.metadata).toMatchObject({ hasEmbeddedFiles: true, pageCount: 1 });
    expect((await p.media.findById(session.mediaId))?.metadata).toMatchObject({ embeddedFileScan: { status: 'CLEAN', scanned: 1, notScanned: [] } });
  });

  it('rejects a file declared as PDF that is not one', async () => {
    const { media } = await uploadDocument('not-a-pdf', bytesOfType(pngHeader, 4000));
    expect(media.status).toBe('REJECTED');
    expect(media.failureReason).toMatch(/^CONTENT_MISMATCH: content is image\/png, declared application\/pdf/);
  });

  it('removes the text row and the preview when a document is deleted', async () => {
    const { user, session, media } = await uploadDocument('multipage', pdfs.multipage);
    expect(media.status).toBe('READY');
    expect(await p.media.findText(session.mediaId)).not.toBeNull();
    expect((await p.storage.listKeys(p.config.S3_MEDIA_BUCKET, derivedPrefix(session.mediaId))).length).toBe(8);
    expect((await p.call(user, `/media/${session.mediaId}`, { method: 'DELETE' })).status).toBe(202);
    await waitForStatus(p, user, session.mediaId, ['DELETED']);
    expect(await p.media.findText(session.mediaId)).toBeNull();
    expect(await p.storage.listKeys(p.config.S3_MEDIA_BUCKET, derivedPrefix(session.mediaId))).toEqual([]);
  });

  it('answers 404 TEXT_NOT_FOUND for the text of an image', async () => {
    const user = uniqueUser('image-text');
    const session = await uploadFile(p, user, await jpegWithExif(400, 300), 'image/jpeg', 'POST_IMAGE', 'photo.jpg');
    expect((await waitForStatus(p, user, session.mediaId, FINISHED)).status).toBe('READY');
    const text = await p.call(user, `/media/${session.mediaId}/text`);
    expect(text.status).toBe(404);
    expect(text.body.error.code).toBe('TEXT_NOT_FOUND');
  });
});

describe('document analysis bounds', () => {
  let dir: string;
  let pdfPath: string;
  let longTextPath: string;
  let documents: Record<DocumentName, Buffer>;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bounds-'));
    pdfPath = join(dir, 'doc.pdf');
    longTextPath = join(dir, 'long-text.pdf');
    documents = makeDocuments();
    await writeFile(pdfPath, documents.multipage);
    await writeFile(longTextPath, documents['long-text']);
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  const base = { previewMaxWidth: 1200, textMaxBytes: 1 << 20, timeoutMs: 60_000, maxMemoryBytes: 1 << 30 };

  it.each([
    ['javascript-deep', 'JavaScript 40 /Next actions deep inside one object'],
    ['javascript-deep-array', 'the same chain with each /Next an array'],
    ['xfa', 'an XFA form (scripts in its XML)'],
    ['over-walk-budget', 'an object larger than the walk budget (not read to the end, so not called clean)'],
  ] as Array<[DocumentName, string]>)('flags %s as JavaScript: %s', async (name) => {
    const input = join(dir, `${name}.pdf`);
    await writeFile(input, documents[name]);
    const result = await analyzePdf(input, { ...base, previewPath: join(dir, `${name}.png`) });
    expect(result.info).toMatchObject({ hasJavaScript: true, hasEmbeddedFiles: false, pageCount: 1 });
  });

  it('does not flag a plain document', async () => {
    const result = await analyzePdf(pdfPath, { ...base, previewPath: join(dir, 'plain.png') });
    expect(result.info).toMatchObject({ hasJavaScript: false, hasEmbeddedFiles: false, pageCount: 3 });
  });

  it('keeps page count, preview and text when a bound stops the object walk, and does not call the flags clean', async () => {
    // 150,000 small objects: ~130 MB resident for the page, ~450 MB once every object is read.
    const input = join(dir, 'many-objects.pdf');
    await writeFile(input, manyObjectsPdf(150_000));
    const whole = await analyzePdf(input, { ...base, previewPath: join(dir, 'many-whole.png') });
    expect(whole.stoppedBy).toBeUndefined();
    expect(whole.info).toMatchObject({ pageCount: 1, hasJavaScript: false, hasEmbeddedFiles: false });
    const bound = 256 * 1024 * 1024;
    expect(whole.peakMemoryBytes).toBeGreaterThan(bound);
    // Under a bound between the two it used to fail whole (DocumentLimitError: nothing read).
    const stopped = await analyzePdf(input, { ...base, previewPath: join(dir, 'many-stopped.png'), maxMemoryBytes: bound, memoryCheckIntervalMs: 20 });
    expect(stopped.stoppedBy).toBe('memory');
    expect(stopped.info).toMatchObject({ pageCount: 1, hasJavaScript: true, hasEmbeddedFiles: true });
    expect(stopped.preview).toMatchObject({ width: A4_PREVIEW.width, height: A4_PREVIEW.height });
    expect((await sharp(stopped.preview!.path).metadata()).width).toBe(A4_PREVIEW.width);
  });

  it('kills the analyzer at its memory bound and reports the bound', async () => {
    // No Node process fits in 1 MiB resident. The check runs every 5 ms here (200 ms in the
    // worker), so it sees the child over the bound while Node starts and MuPDF's WASM compiles,
    // which even a fast idle machine does not finish in 5 ms: the analysis fails, or, when the
    // child reported the document's info first, what it read is kept and the result says the
    // memory bound stopped it.
    const outcome = await analyzePdf(pdfPath, { ...base, previewPath: join(dir, 'm.png'), maxMemoryBytes: 1 << 20, memoryCheckIntervalMs: 5 }).then(
      (result) => ({ stoppedBy: result.stoppedBy }),
      (err: Error) => ({ error: err }),
    );
    if ('error' in outcome) {
      expect(outcome.error).toBeInstanceOf(DocumentLimitError);
      expect(outcome.error.message).toMatch(/memory bound/);
    } else {
      expect(outcome).toEqual({ stoppedBy: 'memory' });
    }
  });

  it('kills the analyzer at its time bound and reports the bound', async () => {
    // A Node process cannot start, let alone load MuPDF, within 1 ms.
    await expect(analyzePdf(pdfPath, { ...base, previewPath: join(dir, 't.png'), timeoutMs: 1 })).rejects.toThrow(/timeout bound/);
  });

  it('receives every page of text even when the worker reads late (more text than a pipe holds)', async () => {
    const analysis = analyzePdf(longTextPath, { ...base, previewPath: join(dir, 'l.png') });
    // A busy worker: the child writes ~500 KB and exits before anyone reads its pipe.
    const until = Date.now() + 3000;
    while (Date.now() < until);
    const result = await analysis;
    expect(result.pagesRead).toBe(200);
    expect(result.text.split('\f')).toHaveLength(200);
    expect(result.text.split('\f')[199]!.startsWith('Page 200: specification clause')).toBe(true);
    expect(result.textTruncated).toBe(false);
  });

  it('keeps worker paths out of its messages, and a worker-side failure is not the document\'s', async () => {
    // Not a PDF: MuPDF's own message, one line, no path of the worker.
    const junk = join(dir, 'junk.pdf');
    await writeFile(junk, Buffer.from('%PDF-1.7\n' + 'not a document '.repeat(50)));
    const undecodable = await analyzePdf(junk, { ...base, previewPath: join(dir, 'j.png') }).catch((err: Error) => err);
    expect(undecodable).toBeInstanceOf(UndecodableDocumentError);
    expect(isPublicText((undecodable as Error).message)).toBe(true);
    // The preview cannot be written (a directory that is not there): an error to retry, whose
    // message names no path while its detail (for the log) does.
    const unwritable = join(dir, 'no-such-dir', 'p.png');
    const failed = (await analyzePdf(pdfPath, { ...base, previewPath: unwritable }).catch((err: Error) => err)) as DocumentAnalyzerError;
    expect(failed).toBeInstanceOf(DocumentAnalyzerError);
    expect(failed).not.toBeInstanceOf(UndecodableDocumentError);
    expect(failed.message).toMatch(/^PDF analyzer exited \(code 1, signal null\) part-way: .*no such file or directory/);
    expect(isPublicText(failed.message)).toBe(true);
    expect(failed.detail).toContain(unwritable);
  });

  it('stops at once when the activity is cancelled', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(analyzePdf(pdfPath, { ...base, previewPath: join(dir, 'c.png'), signal: controller.signal })).rejects.toThrow();
  });
});

describe('document queue fairness: one uploader\'s backlog does not hold back another\'s document', () => {
  let temporal: TemporalServer;
  let p: Platform;
  beforeAll(async () => {
    // One task queue partition: dispatch order is then the queue's own (with four, the
    // partition a task lands in reorders it and the test could pass by chance).
    temporal = await startTemporalDevServer({
      port: await freePort(),
      dynamicConfig: { 'matching.numTaskqueueReadPartitions': 1, 'matching.numTaskqueueWritePartitions': 1 },
    });
    p = await startPlatform(
      { TEMPORAL_ADDRESS: temporal.address, DOCUMENT_MAX_CONCURRENT_ACTIVITIES: '1', DOCUMENT_ANALYSIS_TIMEOUT_SECONDS: '2' },
      { videoWorker: false },
    );
  });
  afterAll(async () => {
    await p?.stop();
    await temporal?.process.stop();
  });

  /** When processDocument of a media's workflow was scheduled and started (epoch ms), as far as its history says yet. */
  async function analysisEvents(mediaId: string): Promise<{ scheduled: boolean; startedAt?: number }> {
    const events = (await p.temporal.workflow.getHandle(`media-upload/${mediaId}`).fetchHistory()).events ?? [];
    const scheduled = events.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'processDocument');
    const started = scheduled && events.find((e) => String(e.activityTaskStartedEventAttributes?.scheduledEventId ?? '') === String(scheduled.eventId));
    const at = started?.eventTime && Number(started.eventTime.seconds) * 1000 + Math.floor((started.eventTime.nanos ?? 0) / 1e6);
    return { scheduled: !!scheduled, startedAt: at || undefined };
  }

  it("takes another uploader's document ahead of the rest of the first uploader's backlog", async () => {
    // Each analysed for the 2 s bound (MuPDF needs longer for its page), scanned in under 1 s:
    // alice's backlog grows while her first one is analysed.
    const slow = slowPagePdf(1_000_000);
    const alice = uniqueUser('alice-backlog');
    const bob = uniqueUser('bob-one');
    const alices: string[] = [];
    for (let i = 0; i < 5; i++) alices.push((await uploadFile(p, alice, slow, 'application/pdf', 'DOCUMENT', `slow-${i}.pdf`)).mediaId);
    await until('alice\'s analyses scheduled', async () => ((await Promise.all(alices.map(analysisEvents))).every((e) => e.scheduled) ? true : undefined), { timeoutMs: 60_000 });
    // Alice's not finished yet: one analysed, the rest queued (a running activity's start is in its history only once it ends).
    const waiting = (await Promise.all(alices.map(async (id) => (await p.call(alice, `/media/${id}`)).body.status))).filter((status) => !FINISHED.includes(status)).length;
    const bobs = (await uploadFile(p, bob, makeDocuments().multipage, 'application/pdf', 'DOCUMENT', 'quick.pdf')).mediaId;
    // Each of alice's stopped at the 2 s bound before the object walk: attachments unseen, so
    // not published (fail closed under SCAN_OVERSIZE_ACTION=reject); bob's is READY.
    for (const id of alices) {
      const media = await waitForStatus(p, alice, id, FINISHED, 120_000);
      expect([media.status, media.failureReason]).toEqual(['REJECTED', expect.stringMatching(/^TOO_LARGE_TO_SCAN: the document's objects were not all read \(stopped by its timeout bound\)/)]);
    }
    expect((await waitForStatus(p, bob, bobs, FINISHED, 120_000)).status).toBe('READY');
    // In arrival order (one partition, no fairness) bob's would start after every one of
    // alice's scheduled before it; with fairness it goes ahead of some she had waiting.
    expect(waiting).toBeGreaterThanOrEqual(3);
    const bobStarted = (await analysisEvents(bobs)).startedAt!;
    const aliceAfterBob = (await Promise.all(alices.map(analysisEvents))).filter((e) => e.startedAt! > bobStarted).length;
    expect(aliceAfterBob).toBeGreaterThanOrEqual(1);
  });

});
