import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { diesWithParent } from '../child-process';
import { publicDetail, ToolError } from './tool-errors';
import { truncateUtf8, type ActiveContentFlags, type AnalyzerMessage, type AnalyzerRequest, type DocumentInfo } from './pdf-protocol';

// Run by Node itself, never bundled or transpiled by jest: `.mts` from source (Node strips
// the types), `.mjs` next to the compiled `.js` in dist/.
const analyzerPath = join(__dirname, __filename.endsWith('.ts') ? 'pdf-analyzer.mts' : 'pdf-analyzer.mjs');

/** An analyzer failure (ToolError: `detail` is MuPDF's own message and stderr tail). */
export class DocumentAnalyzerError extends ToolError {}
/** MuPDF cannot read the content: not a PDF, no pages, page 1 broken. */
export class UndecodableDocumentError extends DocumentAnalyzerError {}
/** The analyzer hit a bound before it could even read the document's structure. */
export class DocumentLimitError extends DocumentAnalyzerError {}

export interface AnalyzeOptions {
  /** Where page 1 is written as PNG. */
  previewPath: string;
  /** Preview width in pixels (its height is capped at twice that, for very tall pages). */
  previewMaxWidth: number;
  /** Text is cut at this many UTF-8 bytes (`truncated: true`). */
  textMaxBytes: number;
  /** Wall-clock bound of the whole analysis, in ms; the child is killed after it. */
  timeoutMs: number;
  /** Resident memory bound of the child, in bytes (checked every `memoryCheckIntervalMs`); the child is killed above it. */
  maxMemoryBytes: number;
  /** How often the child's resident size is read, in ms; default 200. */
  memoryCheckIntervalMs?: number;
  /** Aborts (kills the child) on activity cancellation. */
  signal?: AbortSignal;
  /** Where embedded files are written for scanning (AnalyzerRequest.embeddedDir); none without it. */
  embeddedDir?: string;
  /** Embedded files larger than this are reported, not written (bytes). */
  embeddedMaxBytes?: number;
  /** Called on every message and every memory check, so the caller can heartbeat. */
  onProgress?: (phase: string) => void;
}

export interface DocumentAnalysis {
  info: DocumentInfo;
  /** Page 1 as PNG at `previewPath`; absent for password-protected documents or when a bound stopped the render. */
  preview?: { path: string; width: number; height: number };
  /** Page texts in page order, separated by form feeds (as pdftotext does); '' without a text layer. */
  text: string;
  textTruncated: boolean;
  /** Pages whose text was read (fewer than pageCount when the text cap or a bound stopped it). */
  pagesRead: number;
  /** The bound that stopped the analysis early, if any: what arrived before it is kept. */
  stoppedBy?: 'timeout' | 'memory';
  /** The object walk read every object (false when a bound stopped it first: attachments may be unseen). */
  objectWalkComplete: boolean;
  /** Embedded files the object walk found, in the order found: `path` under `embeddedDir`, absent when not written (over the bound, unreadable). */
  embeddedFiles: Array<{ path?: string; bytes: number }>;
  /** Largest resident size of the child seen by the 200 ms memory checks (0 when it ended before the first). */
  peakMemoryBytes: number;
}

/** Resident set size of a process from /proc (Linux); undefined elsewhere or once it is gone. */
async function residentBytes(pid: number): Promise<number | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1];
    return kb ? Number(kb) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Page count, document info, active-content flags, page 1 as PNG and the text of a local PDF,
 * bounded in time and memory. Throws UndecodableDocumentError for content MuPDF cannot read
 * (not a PDF, no pages, page 1 broken); DocumentLimitError when a bound stopped it before the
 * document's structure was read; a plain DocumentAnalyzerError when the child died some other
 * way (retry). Every message is fit for a failure reason (publicDetail), `detail` is for the log.
 */
export async function analyzePdf(input: string, options: AnalyzeOptions): Promise<DocumentAnalysis> {
  const request: AnalyzerRequest = {
    input,
    previewPath: options.previewPath,
    previewMaxWidth: options.previewMaxWidth,
    textMaxBytes: options.textMaxBytes,
    embeddedDir: options.embeddedDir,
    embeddedMaxBytes: options.embeddedMaxBytes,
  };
  const child = spawn(...diesWithParent(process.execPath, [analyzerPath, JSON.stringify(request)]), { stdio: ['ignore', 'pipe', 'pipe'] });
  let info: Omit<DocumentInfo, ActiveContentFlags> | undefined;
  let activeContent: Pick<DocumentInfo, ActiveContentFlags> | undefined;
  let preview: DocumentAnalysis['preview'];
  const texts: string[] = [];
  const embeddedFiles: DocumentAnalysis['embeddedFiles'] = [];
  let pagesRead = 0;
  let done = false;
  let undecodable: string | undefined;
  let stoppedBy: DocumentAnalysis['stoppedBy'];
  let stderr = '';
  let peakMemoryBytes = 0;

  const kill = (reason?: DocumentAnalysis['stoppedBy']) => {
    stoppedBy ??= reason;
    child.kill('SIGKILL');
  };
  const timer = setTimeout(() => kill('timeout'), options.timeoutMs);
  const checkMemory = () =>
    void residentBytes(child.pid!).then((rss) => {
      if (rss !== undefined) peakMemoryBytes = Math.max(peakMemoryBytes, rss);
      if (rss !== undefined && rss > options.maxMemoryBytes) kill('memory');
    });
  // Once at the start (a bound below what Node itself needs stops it before any work), then every
  // interval. A child that ends between two checks is never seen: a short run cannot grow far.
  checkMemory();
  const memoryCheck = setInterval(() => {
    options.onProgress?.('analyze');
    checkMemory();
  }, options.memoryCheckIntervalMs ?? 200);
  const onAbort = () => kill();
  options.signal?.addEventListener('abort', onAbort);
  if (options.signal?.aborted) kill();

  let buffered = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    buffered += chunk;
    let newline: number;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      let message: AnalyzerMessage;
      try {
        message = JSON.parse(line) as AnalyzerMessage;
      } catch {
        // Not the protocol (a stray print): a diagnostic, never a reason to crash the worker.
        stderr = (stderr + line).slice(-2000);
        continue;
      }
      options.onProgress?.(message.kind);
      switch (message.kind) {
        case 'info':
          info = message.info;
          break;
        case 'embeddedFile':
          embeddedFiles.push({ path: message.path, bytes: message.bytes });
          break;
        case 'activeContent':
          activeContent = { hasJavaScript: message.hasJavaScript, hasEmbeddedFiles: message.hasEmbeddedFiles };
          break;
        case 'preview':
          preview = { path: options.previewPath, width: message.width, height: message.height };
          break;
        case 'text':
          texts.push(message.text);
          pagesRead = message.page;
          break;
        case 'done':
          pagesRead = message.pagesRead;
          done = true;
          break;
        case 'error':
          undecodable = message.message;
          break;
      }
    }
  });
  child.stderr.setEncoding('utf8');
  // MuPDF's warnings; only the tail is kept for the error message.
  child.stderr.on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-2000)));

  const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal }));
  }).finally(() => {
    clearTimeout(timer);
    clearInterval(memoryCheck);
    options.signal?.removeEventListener('abort', onAbort);
  });

  options.signal?.throwIfAborted();
  if (undecodable) throw new UndecodableDocumentError(publicDetail(undecodable, 'not a readable PDF'), [undecodable, stderr.trim()].filter(Boolean).join('\n'));
  if (!info) {
    if (stoppedBy) throw new DocumentLimitError(`document analysis stopped by its ${stoppedBy} bound before the document could be read`, stderr.trim());
    throw new DocumentAnalyzerError(`PDF analyzer exited (code ${exit.code}, signal ${exit.signal}) without an answer: ${publicDetail(stderr)}`, stderr.trim());
  }
  if (!done && !stoppedBy) throw new DocumentAnalyzerError(`PDF analyzer exited (code ${exit.code}, signal ${exit.signal}) part-way: ${publicDetail(stderr)}`, stderr.trim());
  const { text, truncated } = truncateUtf8(texts.join('\f'), options.textMaxBytes);
  if (done && !activeContent) throw new DocumentAnalyzerError('PDF analyzer finished without its active-content scan', stderr.trim());
  // Stopped before every object was read: not called clean (DocumentInfo.hasJavaScript).
  const flags = activeContent ?? { hasJavaScript: true, hasEmbeddedFiles: true };
  return { info: { ...info, ...flags }, preview, text, textTruncated: truncated || (!!stoppedBy && pagesRead < info.pageCount), pagesRead, stoppedBy, objectWalkComplete: !!activeContent, embeddedFiles, peakMemoryBytes };
}
