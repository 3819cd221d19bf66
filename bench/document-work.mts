/**
 * The bench's PDFs and its baseline, both with MuPDF (ESM + WASM, loaded here by tsx's
 * dynamic import): a synthetic construction plan of N pages, and the document activity's
 * work done by the bare library in this process.
 */
import * as mupdf from 'mupdf';

/**
 * A plan of `pages` A3 landscape pages: a dense vector grid (what makes plans slow to
 * render), 40 lines of text and a site photo per page (`photos[n]`, JPEG kept as it is, as
 * scanners and CAD exports embed them): a couple of hundred KiB per page, so the 20- and
 * 200-page plans have the sizes of real plan sets (a few MB to tens of MB).
 */
export function makePlan(pages: number, photos: Buffer[]): Buffer {
  const doc = new mupdf.PDFDocument();
  const font = doc.addSimpleFont(new mupdf.Font('Helvetica'));
  for (let n = 1; n <= pages; n++) {
    const image = doc.addImage(new mupdf.Image(photos[(n - 1) % photos.length]!));
    const resources = doc.addObject({ Font: { F1: font }, XObject: { Im0: image } });
    const ops: string[] = ['0.2 w 0 0 0 RG'];
    for (let x = 20; x < 1170; x += 6) ops.push(`${x} 20 m ${x + (n % 5)} 820 l`);
    for (let y = 20; y < 820; y += 6) ops.push(`20 ${y} m 1170 ${y + (n % 3)} l`);
    ops.push('S', 'q 300 0 0 225 850 580 cm /Im0 Do Q', 'BT /F1 9 Tf 40 800 Td 11 TL');
    for (let line = 1; line <= 40; line++) ops.push(`(Sheet ${n} line ${line}: reinforced concrete slab C30/37, rebar B500B, cover 35 mm) '`);
    ops.push('ET');
    doc.insertPage(-1, doc.addPage([0, 0, 1191, 842], 0, resources, ops.join('\n')));
  }
  doc.setMetaData(mupdf.Document.META_INFO_TITLE, `Bench plan, ${pages} pages`);
  return Buffer.from(doc.saveToBuffer('compress').asUint8Array());
}

/**
 * What a user of the library would write for the activity's work: open, count, read the info,
 * render page 1 at `maxWidth` (height ≤ 2 × maxWidth) to PNG, read every page's text up to
 * `textMaxBytes`. In this process, on an already loaded WASM module.
 */
export function bareAnalyze(bytes: Buffer, maxWidth: number, textMaxBytes: number): { pageCount: number; png: Buffer; textBytes: number } {
  const doc = mupdf.Document.openDocument(bytes, 'application/pdf');
  const pageCount = doc.countPages();
  doc.getMetaData(mupdf.Document.META_INFO_TITLE);
  const first = doc.loadPage(0);
  const [x0, y0, x1, y1] = first.getBounds();
  const scale = Math.min(maxWidth / (x1 - x0), (2 * maxWidth) / (y1 - y0));
  const png = Buffer.from(first.toPixmap(mupdf.Matrix.scale(scale, scale), mupdf.ColorSpace.DeviceRGB, false, true).asPNG());
  let textBytes = 0;
  for (let i = 0; i < pageCount && textBytes < textMaxBytes; i++) {
    const page = doc.loadPage(i);
    textBytes += Buffer.byteLength(page.toStructuredText('preserve-whitespace').asText(), 'utf8');
    page.destroy();
  }
  doc.destroy();
  return { pageCount, png, textBytes };
}
