import { ApplicationFailure, Context } from '@temporalio/activity';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { makeThumbnails, UndecodableImageError, UnprocessableImageError } from '../services/shared/media/images';
import { analyzePdf, DocumentAnalyzerError, DocumentLimitError, UndecodableDocumentError, type DocumentAnalysis } from '../services/shared/media/pdf';
import type { ClamdScanner } from '../services/shared/scanner';
import { endsLikeAPdf, isPdfPadding } from '../services/shared/media/pdf-protocol';
import { derivedPrefix, MEDIA_TYPE_RULES } from '../services/shared/media-types';
import { pinnedToVerified, type ActivityDeps } from './index';
import { storeThumbnails, type ProcessingInput, type ScanPolicy } from './processing';
import { heartbeatPerChunk, heartbeatWhile } from './progress';
import { makeWorkDir } from './work-dirs';

export interface DocumentSettings {
  /** Wall-clock bound of the MuPDF child process, ms. */
  timeoutMs: number;
  /** Resident memory bound of the MuPDF child process, bytes. */
  maxMemoryBytes: number;
  /** Extracted text kept per document, UTF-8 bytes. */
  textMaxBytes: number;
  /**
   * clamd for the embedded files (attachments) the analysis extracts, with the limit and policy
   * of the original's scan: ClamAV's PDF parser misses some compressed attachments that MuPDF
   * reads. Without it (the bench) embedded files are not extracted.
   */
  embeddedFileScan?: { scanner: ClamdScanner } & ScanPolicy;
}

/** Attachments inside attachments are opened up to this depth; a PDF nested deeper is not scanned. */
const MAX_ATTACHMENT_DEPTH = 3;

/**
 * clamd over each embedded file the analysis wrote (decompressed by MuPDF): an infected one
 * rejects the document as MALWARE, like the original's scan. An attachment that is itself a
 * PDF is analysed in turn (`analyzeAttachment`), since clamd's PDF parser is what misses the
 * layout, down to MAX_ATTACHMENT_DEPTH. Fails closed: an attachment that could not be scanned
 * (over CLAMD_STREAM_MAX_BYTES, unreadable to MuPDF, nested too deep) or a walk a bound stopped
 * before it read every object (so attachments may be unseen) follows SCAN_OVERSIZE_ACTION:
 * `REJECTED TOO_LARGE_TO_SCAN`, or published and recorded as not scanned. The outcome is kept
 * in the private `embeddedFileScan`.
 */
async function scanEmbeddedFiles(
  ctx: Context,
  { media }: ActivityDeps,
  mediaId: string,
  analysis: DocumentAnalysis,
  scan: { scanner: ClamdScanner } & ScanPolicy,
  analyzeAttachment: (path: string, depth: number) => Promise<DocumentAnalysis>,
): Promise<void> {
  const tally = { scanned: 0, notScanned: [] as string[] };
  const notScanned = (reason: string) => {
    if (scan.oversizeAction === 'reject') throw ApplicationFailure.nonRetryable(`${reason}: its attachments cannot all be virus-scanned`, 'TOO_LARGE_TO_SCAN');
    tally.notScanned.push(reason);
  };
  const walk = async (found: DocumentAnalysis, depth: number): Promise<void> => {
    if (!found.objectWalkComplete) notScanned(`the document's objects were not all read (stopped by its ${found.stoppedBy ?? 'analysis'} bound)`);
    for (const file of found.embeddedFiles) {
      if (!file.path) {
        notScanned(file.bytes > scan.maxBytes ? `an embedded file of ${file.bytes} bytes exceeds the scanner limit of ${scan.maxBytes}` : 'an embedded file cannot be read');
        continue;
      }
      const result = await heartbeatWhile(ctx, () => ({ phase: 'scan embedded files', scanned: tally.scanned }), scan.scanner.scan(createReadStream(file.path)));
      tally.scanned++;
      if (result.infected) {
        await media.mergeMetadata(mediaId, { embeddedFileScan: { status: 'INFECTED', signatures: result.signatures, at: new Date().toISOString() } });
        // The object is deleted by the workflow's compensation, which runs next.
        throw ApplicationFailure.nonRetryable(`malware found in an embedded file: ${result.signatures.join(', ')}`, 'MALWARE', { signatures: result.signatures });
      }
      if (!(await looksLikeAPdf(file.path))) continue;
      if (depth >= MAX_ATTACHMENT_DEPTH) {
        notScanned(`a PDF attachment is nested more than ${MAX_ATTACHMENT_DEPTH} deep`);
        continue;
      }
      let inner: DocumentAnalysis;
      try {
        inner = await analyzeAttachment(file.path, depth + 1);
      } catch (err) {
        // MuPDF cannot read it as a PDF: clamd has scanned it as the bytes it is.
        if (err instanceof UndecodableDocumentError) continue;
        if (err instanceof DocumentLimitError) {
          notScanned('a PDF attachment could not be read within the analysis bounds');
          continue;
        }
        throw err;
      }
      await walk(inner, depth + 1);
    }
  };
  await walk(analysis, 0);
  if (analysis.embeddedFiles.length || tally.notScanned.length) {
    await media.mergeMetadata(mediaId, {
      embeddedFileScan: { status: tally.notScanned.length ? 'NOT_SCANNED' : 'CLEAN', scanned: tally.scanned, notScanned: tally.notScanned, at: new Date().toISOString() },
    });
  }
}

/** A PDF by its header: `%PDF-` within the first 1024 bytes (readers allow junk before it). */
async function looksLikeAPdf(path: string): Promise<boolean> {
  const file = await open(path, 'r');
  try {
    const head = Buffer.alloc(1024);
    const { bytesRead } = await file.read(head, 0, head.length, 0);
    return head.subarray(0, bytesRead).includes('%PDF-', 0, 'latin1');
  } finally {
    await file.close();
  }
}

/**
 * A local PDF's end as `endsLikeAPdf` reads it: the 1024 bytes before its trailing padding,
 * however long that padding is (read backwards 64 KiB at a time).
 */
async function pdfTail(path: string): Promise<Buffer> {
  const file = await open(path, 'r');
  try {
    let end = (await file.stat()).size;
    const chunk = Buffer.alloc(64 * 1024);
    padding: while (end > 0) {
      const start = Math.max(0, end - chunk.length);
      const { bytesRead } = await file.read(chunk, 0, end - start, start);
      for (let i = bytesRead - 1; i >= 0; i--) {
        if (!isPdfPadding(chunk[i]!)) {
          end = start + i + 1;
          break padding;
        }
      }
      end = start;
    }
    const tail = Buffer.alloc(Math.min(end, 1024));
    await file.read(tail, 0, tail.length, end - tail.length);
    return tail;
  } finally {
    await file.close();
  }
}

/**
 * Document activity (light queue): page count, document info, JavaScript / embedded-file
 * flags, page 1 as WebP + JPEG thumbnails and the extracted text (table `media_texts`).
 * MuPDF runs in a child process bounded in time and memory (services/shared/media/pdf.ts).
 */
export function createDocumentActivities(deps: ActivityDeps, settings: DocumentSettings) {
  const { storage, media, buckets } = deps;
  return {
    async processDocument(input: ProcessingInput): Promise<{ pageCount?: number; thumbnails: number; textBytes: number }> {
      const ctx = Context.current();
      const work = await makeWorkDir('document', input.mediaId);
      try {
        const source = join(work, 'original.pdf');
        // Up to 100 MiB: to disk, not to memory, heartbeating as bytes arrive (a slow store is not a dead worker).
        ctx.heartbeat({ phase: 'download', downloaded: 0 });
        const progress = heartbeatPerChunk(ctx, (downloaded) => ({ phase: 'download', downloaded }));
        await pipeline(await pinnedToVerified(() => storage.getStream(buckets.incoming, input.storageKey, { ifMatch: input.etag })), progress, createWriteStream(source));
        if (!endsLikeAPdf(await pdfTail(source))) {
          throw ApplicationFailure.nonRetryable('the PDF is truncated: no %%EOF in its last 1024 bytes', 'UNDECODABLE_MEDIA');
        }
        const scan = settings.embeddedFileScan;
        let analysis;
        try {
          analysis = await analyzePdf(source, {
            previewPath: join(work, 'page-1.png'),
            previewMaxWidth: Math.max(...MEDIA_TYPE_RULES[input.mediaType].thumbnailWidths),
            textMaxBytes: settings.textMaxBytes,
            timeoutMs: settings.timeoutMs,
            maxMemoryBytes: settings.maxMemoryBytes,
            ...(scan ? { embeddedDir: work, embeddedMaxBytes: scan.maxBytes } : {}),
            signal: ctx.cancellationSignal,
            onProgress: (phase) => ctx.heartbeat({ phase }),
          });
        } catch (err) {
          if (err instanceof DocumentAnalyzerError) ctx.log.warn('document analysis failed', { mediaId: input.mediaId, error: err.message, detail: err.detail });
          if (err instanceof UndecodableDocumentError) throw ApplicationFailure.nonRetryable(err.message, 'UNDECODABLE_MEDIA');
          // The same bytes hit the same bound again: retrying only burns a worker.
          if (err instanceof DocumentLimitError) throw ApplicationFailure.nonRetryable(err.message, 'DOCUMENT_TOO_COMPLEX');
          throw err;
        }
        const { info } = analysis;
        if (scan) {
          // An attachment that is a PDF: only its own attachments are wanted (no preview worth
          // the name, no text), under the same bounds, in a directory of its own.
          let attachments = 0;
          const analyzeAttachment = async (path: string, depth: number) => {
            const dir = join(work, `attachment-${++attachments}-depth-${depth}`);
            await mkdir(dir);
            return analyzePdf(path, {
              previewPath: join(dir, 'preview.png'),
              previewMaxWidth: 16,
              textMaxBytes: 0,
              timeoutMs: settings.timeoutMs,
              maxMemoryBytes: settings.maxMemoryBytes,
              embeddedDir: dir,
              embeddedMaxBytes: scan.maxBytes,
              signal: ctx.cancellationSignal,
              onProgress: (phase) => ctx.heartbeat({ phase: `attachment ${phase}` }),
            });
          };
          await scanEmbeddedFiles(ctx, deps, input.mediaId, analysis, scan, analyzeAttachment);
        }
        if (analysis.stoppedBy) ctx.log.warn('document analysis stopped early; keeping what was read', { mediaId: input.mediaId, stoppedBy: analysis.stoppedBy, pagesRead: analysis.pagesRead });

        // A retry starts clean: earlier partial output is removed, then every key is rewritten.
        ctx.heartbeat({ phase: 'upload' });
        await storage.deletePrefix(buckets.media, `${derivedPrefix(input.mediaId)}thumbnails/`);
        let renditions: Awaited<ReturnType<typeof storeThumbnails>> = [];
        if (analysis.preview) {
          try {
            const { thumbnails } = await makeThumbnails(await readFile(analysis.preview.path), MEDIA_TYPE_RULES[input.mediaType].thumbnailWidths);
            renditions = await storeThumbnails(deps, input.mediaId, thumbnails, () => ctx.heartbeat({ phase: 'upload' }), ctx.cancellationSignal);
          } catch (err) {
            // MuPDF's own PNG always decodes; anything else here is a transient fault to retry.
            if (err instanceof UndecodableImageError) throw new Error(`preview PNG did not decode: ${err.message}`);
            if (err instanceof UnprocessableImageError) throw ApplicationFailure.nonRetryable(err.message, 'UNPROCESSABLE_IMAGE');
            throw err;
          }
        }
        // Nothing could be read from a password-protected document: no text row at all.
        if (!info.passwordRequired) await media.putText(input.mediaId, { text: analysis.text, truncated: analysis.textTruncated, pagesRead: analysis.pagesRead });
        await media.mergeMetadata(input.mediaId, {
          pageCount: info.passwordRequired ? null : info.pageCount,
          title: info.title ?? null,
          author: info.author ?? null,
          encrypted: info.encrypted,
          passwordRequired: info.passwordRequired,
          restrictions: info.restrictions,
          hasJavaScript: info.hasJavaScript,
          hasEmbeddedFiles: info.hasEmbeddedFiles,
          repaired: info.repaired,
          textBytes: info.passwordRequired ? null : Buffer.byteLength(analysis.text, 'utf8'),
          textTruncated: info.passwordRequired ? null : analysis.textTruncated,
          analysisStoppedBy: analysis.stoppedBy ?? null,
        });
        await media.replaceRenditions(input.mediaId, renditions);
        return { pageCount: info.passwordRequired ? undefined : info.pageCount, thumbnails: renditions.length, textBytes: Buffer.byteLength(analysis.text, 'utf8') };
      } finally {
        await rm(work, { recursive: true, force: true });
      }
    },
  };
}
