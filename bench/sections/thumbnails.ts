import sharp from 'sharp';
import { createImageActivities } from '../../activities/processing';
import { makeThumbnails, THUMBNAIL_ENCODING } from '../../services/shared/media/images';
import { MEDIA_TYPE_RULES } from '../../services/shared/media-types';
import { activityHarness } from '../activity-env';
import { median, noiseJpeg } from '../fixtures';
import { mib, ms, ratio, timed } from '../measure';
import type { BenchContext } from '../platform';
import type { Row } from '../report';
import type { Section } from '../section';

export interface ThumbnailOptions {
  width: number;
  height: number;
  iterations: number;
  warmup: number;
}

const defaults: ThumbnailOptions = { width: 4000, height: 3000, iterations: 7, warmup: 1 };
const widths = MEDIA_TYPE_RULES.POST_IMAGE.thumbnailWidths;

/**
 * What a user would write: every width straight from the original buffer (sharp's JPEG
 * shrink-on-load does the rest), WebP and JPEG of one width at once, with the activity's
 * encoder settings so the encoders are not what differs.
 */
async function bareSharp(input: Buffer): Promise<number> {
  let bytes = 0;
  for (const w of widths) {
    const [webp, jpeg] = await Promise.all([
      sharp(input).rotate().resize(w).webp(THUMBNAIL_ENCODING.webp).toBuffer(),
      sharp(input).rotate().resize(w).jpeg(THUMBNAIL_ENCODING.jpeg).toBuffer(),
    ]);
    bytes += webp.length + jpeg.length;
  }
  return bytes;
}

const kib = (bytes: number) => `${(bytes / 1024).toFixed(0)} KiB`;


/**
 * SPEC.md §9: the real processImage activity (S3 download, makeThumbnails, S3 uploads, read
 * model writes; run in a MockActivityEnvironment) against a bare sharp script over the same
 * ~12 MP JPEG already in memory, for the POST_IMAGE widths. Alternating, medians.
 */
export async function measureThumbnails(ctx: BenchContext, options: Partial<ThumbnailOptions> = {}): Promise<Row[]> {
  const o = { ...defaults, ...options };
  const original = await noiseJpeg(o.width, o.height, { noise: 24, quality: 90, seed: 12 });
  const storageKey = `post_image/bench-thumbnails/${Date.now()}-original.jpg`;
  await ctx.storage.put(ctx.config.S3_INCOMING_BUCKET, storageKey, original, 'image/jpeg');
  const harness = await activityHarness(ctx);
  try {
    const { processImage } = createImageActivities(harness.deps);
    const mediaId = await harness.mediaRow('POST_IMAGE', storageKey, original.length, 'image/jpeg');
    const input = { mediaId, storageKey, mediaType: 'POST_IMAGE' as const, fileSize: original.length };
    const activity = () => harness.env().run(processImage, input) as ReturnType<typeof processImage>;

    const activityMs: number[] = [];
    const bareMs: number[] = [];
    const computeMs: number[] = [];
    let thumbnails = 0;
    let activityBytes = 0;
    let bareBytes = 0;
    for (let i = 0; i < o.warmup + o.iterations; i++) {
      // Alternate which goes first so drift (heat, GC, page cache) hits both alike.
      const order = i % 2 === 0 ? (['activity', 'bare', 'compute'] as const) : (['bare', 'activity', 'compute'] as const);
      for (const which of order) {
        if (which === 'activity') {
          const [t, r] = await timed(activity);
          thumbnails = r.thumbnails;
          if (i >= o.warmup) activityMs.push(t);
        } else if (which === 'bare') {
          const [t, bytes] = await timed(() => bareSharp(original));
          bareBytes = bytes;
          if (i >= o.warmup) bareMs.push(t);
        } else {
          // The activity's pure compute: the same makeThumbnails on the buffer, no S3, no DB.
          const [t, r] = await timed(() => makeThumbnails(original, widths));
          activityBytes = r.thumbnails.reduce((sum, th) => sum + th.data.length, 0);
          if (i >= o.warmup) computeMs.push(t);
        }
      }
    }
    // sharp.concurrency is process wide: images.ts sets 1 (one libvips thread per image, many
    // images per worker); note what a script of its own would get by default.
    const workerThreads = sharp.concurrency();
    const defaultThreads = sharp.concurrency(0);
    sharp.concurrency(workerThreads);
    // The S3 GET on its own, to split the activity's I/O.
    const getMs: number[] = [];
    for (let i = 0; i < o.iterations; i++) getMs.push((await timed(() => harness.deps.storage.getBuffer(harness.deps.buckets.incoming, storageKey)))[0]);

    const activity50 = median(activityMs);
    const bare50 = median(bareMs);
    const compute50 = median(computeMs);
    const get50 = median(getMs);
    const stored = await harness.deps.media.renditions(mediaId);
    return [
      {
        metric: 'input',
        value: `${o.width}×${o.height} noise JPEG q90, ${mib(original.length)}; widths ${widths.join('/')} as WebP q80 effort 2 + JPEG q82 progressive (the worker's encodings); ${o.iterations} alternating runs after ${o.warmup} warm-up, medians`,
      },
      {
        metric: 'processImage activity (median)',
        value: `${ms(activity50)} (min ${ms(Math.min(...activityMs))}, max ${ms(Math.max(...activityMs))}; ${thumbnails} thumbnails, ${stored.length} renditions rows)`,
      },
      {
        metric: '  includes, the baseline does not',
        value: 'S3 GET of the original, deletePrefix (LIST), 8 S3 PUTs, metadata UPDATE + renditions DELETE/INSERT transaction',
      },
      { metric: '  makeThumbnails alone, same buffer (median)', value: `${ms(compute50)}; ${kib(activityBytes)} out` },
      { metric: '  S3 GET of the original alone (median)', value: ms(get50) },
      { metric: '  rest: LIST + 8 PUTs + DB writes (difference)', value: ms(activity50 - compute50 - get50) },
      {
        metric: 'bare sharp, decode per output (median)',
        value: `${ms(bare50)} (min ${ms(Math.min(...bareMs))}, max ${ms(Math.max(...bareMs))}); ${kib(bareBytes)} out; libvips threads ${workerThreads} (sharp's default here: ${defaultThreads})`,
      },
      { metric: 'ratio activity / bare sharp', value: ratio(activity50, bare50), target: '≤ 1.2×', met: activity50 / bare50 <= 1.2 },
    ];
  } finally {
    await harness.close();
  }
}

export const thumbnailsSection: Section = { name: 'Thumbnails: processImage activity vs bare sharp', run: (ctx) => measureThumbnails(ctx) };
