import { ApplicationFailure, Context } from '@temporalio/activity';
import { createReadStream, createWriteStream } from 'node:fs';
import { open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { makeThumbnails, UndecodableImageError, UnprocessableImageError } from '../services/shared/media/images';
import { analyzePdf, DocumentAnalyzerError, DocumentLimitError, UndecodableDocumentError, type DocumentAnalysis } from '../services/shared/media/pdf';
import type { ClamdScanner } from '../services/shared/scanner';
import { endsLikeAPdf, PDF_TAIL_BYTES } from '../services/shared/media/pdf-protocol';
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

/**
 * clamd over each embedded file the analysis wrote (decompressed by MuPDF): an infected one
 * rejects the document as MALWARE, like the original's scan; one over the scanner's limit
 * follows SCAN_OVERSIZE_ACTION (TOO_LARGE_TO_SCAN, or published and recorded as unscanned).
 * Recorded in the private `embeddedFileScan`: files scanned, and whether every embedded file
 * was (not when a bound stopped the analysis before its object walk ended).
 */
async function scanEmbeddedFiles(ctx: Context, { media }: ActivityDeps, mediaId: string, analysis: DocumentAnalysis, scan: { scanner: ClamdScanner } & ScanPolicy): Promise<void> {
  let scanned = 0;
  let skipped = 0;
  for (const file of analysis.embeddedFiles) {
    if (!file.path) {
      if (file.bytes > scan.maxBytes && scan.oversizeAction === 'reject') {
        throw ApplicationFailure.nonRetryable(`an embedded file of ${file.bytes} bytes exceeds the scanner limit of ${scan.maxBytes}`, 'TOO_LARGE_TO_SCAN');
      }
      skipped++;
      continue;
    }
    ctx.heartbeat({ phase: 'scan embedded files', scanned });
    const result = await heartbeatWhile(ctx, () => ({ phase: 'scan embedded files', scanned }), scan.scanner.scan(createReadStream(file.path)));
    scanned++;
    if (result.infected) {
      await media.mergeMetadata(mediaId, { embeddedFileScan: { status: 'INFECTED', signatures: result.signatures, at: new Date().toISOString() } });
      // The object is deleted by the workflow's compensation, which runs next.
      throw ApplicationFailure.nonRetryable(`malware found in an embedded file: ${result.signatures.join(', ')}`, 'MALWARE', { signatures: result.signatures });
    }
  }
  if (analysis.embeddedFiles.length || analysis.stoppedBy) {
    const complete = !analysis.stoppedBy && skipped === 0;
    await media.mergeMetadata(mediaId, { embeddedFileScan: { status: 'CLEAN', scanned, skipped, complete, at: new Date().toISOString() } });
  }
}

/** Last bytes of a local file (the `%%EOF` check). */
async function readTail(path: string, length: number): Promise<Buffer> {
  const file = await open(path, 'r');
  try {
    const { size } = await file.stat();
    const start = Math.max(0, size - length);
    const buffer = Buffer.alloc(size - start);
    await file.read(buffer, 0, buffer.length, start);
    return buffer;
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
        if (!endsLikeAPdf(await readTail(source, PDF_TAIL_BYTES))) {
          throw ApplicationFailure.nonRetryable('the PDF is truncated: no %%EOF in its last 1024 bytes', 'UNDECODABLE_MEDIA');
        }
        let analysis;
        try {
          analysis = await analyzePdf(source, {
            previewPath: join(work, 'page-1.png'),
            previewMaxWidth: Math.max(...MEDIA_TYPE_RULES[input.mediaType].thumbnailWidths),
            textMaxBytes: settings.textMaxBytes,
            timeoutMs: settings.timeoutMs,
            maxMemoryBytes: settings.maxMemoryBytes,
            ...(settings.embeddedFileScan ? { embeddedDir: work, embeddedMaxBytes: settings.embeddedFileScan.maxBytes } : {}),
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
        if (settings.embeddedFileScan) await scanEmbeddedFiles(ctx, deps, input.mediaId, analysis, settings.embeddedFileScan);
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
