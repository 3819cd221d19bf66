/**
 * PDF analyzer, run as its own Node process by pdf.ts (never imported): reads one PDF with
 * MuPDF (the official `mupdf` npm build, ESM + WASM), writes page 1 as PNG and prints
 * newline-delimited JSON messages (pdf-protocol.ts) on stdout.
 *
 * A separate process because a WASM call cannot be interrupted: a pathological page is
 * stopped by killing this process (time and memory bounds live in the parent), and the
 * worker's event loop, heartbeats included, never waits on MuPDF.
 */
import { writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type * as MuPDF from 'mupdf';
import type { AnalyzerMessage, AnalyzerRequest, DocumentInfo } from './pdf-protocol.ts';

// stdout carries the protocol only: anything the library prints (emscripten binds C's stdout
// to console.log when the module loads) goes to stderr, which the parent keeps as
// diagnostics. Hence the override first, and the import after it.
console.log = console.error;
const mupdf: typeof MuPDF = await import('mupdf');

function send(message: AnalyzerMessage): void {
  // One write per message: the parent splits on newlines, JSON never contains a raw one.
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

/**
 * Most nodes (dictionaries, arrays and scalars) walked inside one object. A real object holds
 * far fewer; a hostile one can nest without end (an /OpenAction chained through /Next, written
 * inline). Running out of budget counts as JavaScript: what was not read cannot be called clean.
 */
const NODE_BUDGET_PER_OBJECT = 100_000;

/**
 * Visits every object once, with everything nested directly inside it (an /OpenAction is often
 * written inline in the catalog, its /Next chain too): JavaScript actions and embedded files can
 * sit anywhere, in annotations, form fields, page or document actions. An XFA form (an
 * /AcroForm with /XFA) counts as JavaScript: its XML carries scripts MuPDF does not parse.
 * The walk uses an explicit stack, so no nesting depth overflows or hides anything.
 */
function activeContent(doc: MuPDF.PDFDocument, onEmbeddedFile?: (filespec: MuPDF.PDFObject) => void): Pick<DocumentInfo, 'hasJavaScript' | 'hasEmbeddedFiles'> {
  const found = { hasJavaScript: false, hasEmbeddedFiles: Object.keys(doc.getEmbeddedFiles()).length > 0 };
  const isName = (obj: MuPDF.PDFObject, name: string) => obj.isName() && obj.asName() === name;
  try {
    if (!doc.getTrailer().get('Root').get('AcroForm').get('XFA').isNull()) found.hasJavaScript = true;
  } catch {
    // A broken catalog: the object walk below still looks at every object.
  }
  // Every wrapper the walk makes is destroyed once read: left to the garbage collector, the
  // millions a large file yields (400 link annotations on each of 350 pages) held hundreds of
  // MB until the memory bound killed the analysis.
  const has = (obj: MuPDF.PDFObject, key: string, test: (value: MuPDF.PDFObject) => boolean): boolean => {
    const value = obj.get(key);
    try {
      return test(value);
    } finally {
      value.destroy();
    }
  };
  const present = (value: MuPDF.PDFObject) => !value.isNull();
  const walk = (root: MuPDF.PDFObject): void => {
    const stack = [root];
    for (let budget = NODE_BUDGET_PER_OBJECT; stack.length > 0; budget--) {
      if (budget === 0) {
        found.hasJavaScript = true;
        for (const obj of stack) obj.destroy();
        return;
      }
      const obj = stack.pop()!;
      if (obj.isDictionary()) {
        if (has(obj, 'S', (v) => isName(v, 'JavaScript')) || has(obj, 'JS', present)) found.hasJavaScript = true;
        const filespec = has(obj, 'EF', present);
        if (filespec || has(obj, 'Type', (v) => isName(v, 'EmbeddedFile'))) found.hasEmbeddedFiles = true;
        if (filespec) onEmbeddedFile?.(obj);
      }
      // Indirect references are visited as objects of their own.
      if (obj.isDictionary() || obj.isArray()) obj.forEach((child) => (child.isIndirect() ? child.destroy() : stack.push(child)));
      obj.destroy();
    }
  };
  const count = doc.countObjects();
  // With embedded files to hand over, every object is read: each one counts, not only the first.
  for (let num = 1; num < count && (onEmbeddedFile || !(found.hasJavaScript && found.hasEmbeddedFiles)); num++) {
    const ref = doc.newIndirect(num);
    try {
      walk(ref.resolve());
    } catch {
      // A broken object is skipped; the page render decides whether the file is usable.
    } finally {
      ref.destroy();
    }
  }
  return found;
}

const PERMISSIONS: MuPDF.DocumentPermission[] = ['print', 'copy', 'edit', 'annotate', 'form', 'accessibility', 'assemble', 'print-hq'];

let embeddedFiles = 0;

/**
 * Writes one embedded file's decompressed bytes for the worker's virus scan: clamd's own PDF
 * parser misses some Flate streams (ClamAV 1.4 passes an attachment whose stream dictionary
 * starts with a /Params dictionary, as pikepdf writes it). A file over the bound, or one MuPDF
 * cannot read, is reported without a path.
 */
function writeEmbeddedFile(doc: MuPDF.PDFDocument, filespec: MuPDF.PDFObject, request: AnalyzerRequest): void {
  let contents: MuPDF.Buffer | null = null;
  try {
    contents = doc.getEmbeddedFileContents(filespec);
  } catch {
    // Unreadable: reported as not written.
  }
  const bytes = contents?.getLength() ?? 0;
  if (!contents || bytes > (request.embeddedMaxBytes ?? Infinity)) {
    contents?.destroy();
    send({ kind: 'embeddedFile', bytes });
    return;
  }
  const path = `${request.embeddedDir}/embedded-${++embeddedFiles}`;
  writeFileSync(path, contents.asUint8Array());
  contents.destroy();
  send({ kind: 'embeddedFile', path, bytes });
}

async function main(): Promise<void> {
  const request = JSON.parse(process.argv[2]!) as AnalyzerRequest;
  // Outside the try: a read error is the worker's (see below), not an unreadable PDF.
  const input = await readFile(request.input);
  let doc: MuPDF.Document;
  try {
    doc = mupdf.Document.openDocument(input, 'application/pdf');
  } catch (err) {
    send({ kind: 'error', code: 'UNDECODABLE', message: `not a readable PDF: ${(err as Error).message}` });
    return;
  }
  const pdf = doc.asPDF();
  if (!pdf) {
    send({ kind: 'error', code: 'UNDECODABLE', message: 'not a PDF' });
    return;
  }
  const encrypted = !pdf.getTrailer().get('Encrypt').isNull();
  if (doc.needsPassword()) {
    // Without the password the page tree, the info and the text are all ciphertext.
    send({ kind: 'info', info: { pageCount: 0, encrypted, passwordRequired: true, restrictions: [], repaired: pdf.wasRepaired() } });
    send({ kind: 'activeContent', hasJavaScript: false, hasEmbeddedFiles: false });
    send({ kind: 'done', pagesRead: 0 });
    return;
  }
  let pageCount: number;
  try {
    pageCount = doc.countPages();
  } catch (err) {
    send({ kind: 'error', code: 'UNDECODABLE', message: `page tree cannot be read: ${(err as Error).message}` });
    return;
  }
  if (pageCount < 1) {
    send({ kind: 'error', code: 'UNDECODABLE', message: 'the document has no pages' });
    return;
  }
  const meta = (key: string) => doc.getMetaData(key)?.trim() || undefined;
  send({
    kind: 'info',
    info: {
      pageCount,
      encrypted,
      passwordRequired: false,
      restrictions: encrypted ? PERMISSIONS.filter((permission) => !doc.hasPermission(permission)) : [],
      title: meta(mupdf.Document.META_INFO_TITLE),
      author: meta(mupdf.Document.META_INFO_AUTHOR),
      repaired: pdf.wasRepaired(),
    },
  });

  let first: MuPDF.Page;
  try {
    first = doc.loadPage(0);
  } catch (err) {
    send({ kind: 'error', code: 'UNDECODABLE', message: `page 1 cannot be read: ${(err as Error).message}` });
    return;
  }
  const [x0, y0, x1, y1] = first.getBounds();
  const width = x1 - x0;
  const height = y1 - y0;
  // The largest thumbnail width, and a tall strip at most twice as high: whatever the page
  // box says, the raster stays under 2 × width² pixels.
  const scale = width > 0 && height > 0 ? Math.min(request.previewMaxWidth / width, (2 * request.previewMaxWidth) / height) : 0;
  if (scale > 0 && Number.isFinite(scale)) {
    const pixmap = first.toPixmap(mupdf.Matrix.scale(scale, scale), mupdf.ColorSpace.DeviceRGB, false, true);
    writeFileSync(request.previewPath, pixmap.asPNG());
    send({ kind: 'preview', width: pixmap.getWidth(), height: pixmap.getHeight() });
    pixmap.destroy();
  }

  let sentBytes = 0;
  let pagesRead = 0;
  for (let index = 0; index < pageCount && sentBytes < request.textMaxBytes; index++) {
    pagesRead++;
    let text: string;
    try {
      const page = index === 0 ? first : doc.loadPage(index);
      text = page.toStructuredText('preserve-whitespace').asText();
      page.destroy();
    } catch {
      // One broken page costs its text, not the document.
      continue;
    }
    if (text.trim()) {
      send({ kind: 'text', page: index + 1, text });
      sentBytes += Buffer.byteLength(text, 'utf8');
    }
  }
  // Last: every object is read (hundreds of MB for a file of 100,000 small objects), so a bound
  // that stops it finds page count, preview and text already sent.
  send({ kind: 'activeContent', ...activeContent(pdf, request.embeddedDir ? (filespec) => writeEmbeddedFile(pdf, filespec, request) : undefined) });
  send({ kind: 'done', pagesRead });
}

// Writes to a pipe are asynchronous: exiting at once would drop what the parent has not read
// yet. The callback of an empty write runs once everything before it is flushed.
const exitWhenFlushed = () => process.stdout.write('', () => process.exit(0));
main().then(exitWhenFlushed, (err: unknown) => {
  // A system error (the preview not writable, a full disk) is the worker's, not the document's:
  // exiting without an answer makes the parent fail the attempt, and it is retried.
  if (typeof (err as NodeJS.ErrnoException).syscall === 'string') {
    process.stderr.write(`${(err as Error).message}\n`, () => process.exit(1));
    return;
  }
  send({ kind: 'error', code: 'UNDECODABLE', message: (err as Error).message ?? String(err) });
  exitWhenFlushed();
});
