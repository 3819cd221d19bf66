import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDocumentActivities, type DocumentSettings } from '../../activities/documents';
import { makeThumbnails } from '../../services/shared/media/images';
import { analyzePdf } from '../../services/shared/media/pdf';
import { MEDIA_TYPE_RULES } from '../../services/shared/media-types';
import { activityHarness } from '../activity-env';
import { median, noiseJpeg } from '../fixtures';
import { mib, ms, ratio, timed } from '../measure';
import type { BenchContext } from '../platform';
import type { Row } from '../report';
import type { Section } from '../section';

const widths = MEDIA_TYPE_RULES.DOCUMENT.thumbnailWidths;
const maxWidth = Math.max(...widths);
const settings: DocumentSettings = { timeoutMs: 240_000, maxMemoryBytes: 4 * 1024 * 1024 * 1024, textMaxBytes: 1024 * 1024 };


/**
 * The real processDocument activity (S3 download to disk, MuPDF in its bounded child process,
 * sharp thumbnails, S3 uploads, text and metadata writes; in a MockActivityEnvironment)
 * against the same work done by the bare library: MuPDF in this process, its WASM already
 * loaded, the same page-1 render and text, the same thumbnails. Alternating runs, medians.
 */
async function measureDocument(ctx: BenchContext, pages: number, iterations: number): Promise<Row[]> {
  // mupdf is ESM + WASM: tsx loads it (and this helper) through a dynamic import.
  const work = await import('../document-work.mjs');
  // One distinct photo per page: MuPDF stores identical images once.
  const photos: Buffer[] = [];
  for (let seed = 0; seed < pages; seed++) photos.push(await noiseJpeg(800, 600, { noise: 40, quality: 90, seed }));
  const pdf = work.makePlan(pages, photos);
  const storageKey = `document/bench-documents/${Date.now()}-plan-${pages}.pdf`;
  await ctx.storage.put(ctx.config.S3_INCOMING_BUCKET, storageKey, pdf, 'application/pdf');
  const dir = await mkdtemp(join(tmpdir(), 'bench-documents-'));
  const local = join(dir, 'plan.pdf');
  await writeFile(local, pdf);
  const harness = await activityHarness(ctx);
  try {
    const { processDocument } = createDocumentActivities(harness.deps, settings);
    const mediaId = await harness.mediaRow('DOCUMENT', storageKey, pdf.length, 'application/pdf');
    const input = { mediaId, storageKey, mediaType: 'DOCUMENT' as const, fileSize: pdf.length };
    const activity = () => harness.env().run(processDocument, input) as ReturnType<typeof processDocument>;
    const bareMupdf = async () => work.bareAnalyze(pdf, maxWidth, settings.textMaxBytes);
    const bare = async () => {
      const result = work.bareAnalyze(pdf, maxWidth, settings.textMaxBytes);
      await makeThumbnails(result.png, widths);
      return result;
    };
    // The analyzer child alone: process start, WASM compile, the same MuPDF work.
    const child = () => analyzePdf(local, { ...settings, previewPath: join(dir, 'page-1.png'), previewMaxWidth: maxWidth });

    const activityMs: number[] = [];
    const bareMs: number[] = [];
    const childMs: number[] = [];
    const mupdfMs: number[] = [];
    let peak = 0;
    let pageCount = 0;
    let textBytes = 0;
    for (let i = 0; i < iterations + 1; i++) {
      const order = i % 2 === 0 ? (['activity', 'bare', 'child', 'mupdf'] as const) : (['mupdf', 'bare', 'child', 'activity'] as const);
      for (const which of order) {
        if (which === 'activity') {
          const [t, r] = await timed(activity);
          pageCount = r.pageCount ?? 0;
          textBytes = r.textBytes;
          if (i > 0) activityMs.push(t);
        } else if (which === 'bare') {
          const [t] = await timed(bare);
          if (i > 0) bareMs.push(t);
        } else if (which === 'mupdf') {
          const [t] = await timed(bareMupdf);
          if (i > 0) mupdfMs.push(t);
        } else {
          const [t, r] = await timed(child);
          peak = Math.max(peak, r.peakMemoryBytes);
          if (i > 0) childMs.push(t);
        }
      }
    }
    const a = median(activityMs);
    const b = median(bareMs);
    const c = median(childMs);
    const m = median(mupdfMs);
    return [
      {
        metric: `${pages}-page plan`,
        value: `${mib(pdf.length)}, A3 landscape, vector grid + 40 text lines + an image per page; ${pageCount} pages read, ${(textBytes / 1024).toFixed(0)} KiB text kept; ${iterations} alternating runs after 1 warm-up, medians`,
      },
      { metric: '  processDocument activity (median)', value: `${ms(a)} (min ${ms(Math.min(...activityMs))}, max ${ms(Math.max(...activityMs))})` },
      { metric: '  analyzer child alone (median)', value: `${ms(c)}; peak resident ${mib(peak)} (200 ms samples)` },
      { metric: '  bare MuPDF in-process, same render + text (median)', value: `${ms(m)}; the child's process start + WASM compile + file read ≈ ${ms(c - m)}` },
      { metric: '  bare MuPDF in-process + same thumbnails (median)', value: ms(b) },
      { metric: '  ratio activity / bare library (+ thumbnails)', value: ratio(a, b) },
    ];
  } finally {
    await harness.close();
    await rm(dir, { recursive: true, force: true });
  }
}

export const documentsSection: Section = {
  name: 'Documents: processDocument activity vs bare MuPDF',
  run: async (ctx) => [...(await measureDocument(ctx, 20, 5)), ...(await measureDocument(ctx, 200, 3))],
};
