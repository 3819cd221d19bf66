import exifReader from 'exif-reader';
import sharp from 'sharp';

// Worker pods get one libvips thread per image and run several images at once (activity
// concurrency): on glibc two images in flight beat one image on two threads. The operation
// cache only helps repeated work on the same file, which a worker never does.
sharp.concurrency(1);
sharp.cache(false);

/**
 * Output encodings of every thumbnail. WebP at effort 2 and plain (progressive) libjpeg:
 * mozjpeg and higher WebP effort cost ~2× the CPU for a few percent fewer bytes, and CPU is
 * what bounds a worker pod's throughput.
 */
export const THUMBNAIL_ENCODING = {
  webp: { quality: 80, effort: 2 },
  jpeg: { quality: 82, progressive: true },
} as const;

export class UndecodableImageError extends Error {}

export interface Thumbnail {
  width: number;
  height: number;
  format: 'webp' | 'jpeg';
  data: Buffer;
}

export interface ImageFacts {
  width: number;
  height: number;
  format: string;
  orientation?: number;
  camera?: string;
  takenAt?: string;
  /** Private: kept in the read model, never served. */
  gps?: { latitude?: number; longitude?: number };
}

/** Widths to produce: no upscaling; a source narrower than every width gets one at its own width. */
export function thumbnailWidths(sourceWidth: number, wanted: readonly number[]): number[] {
  const fitting = wanted.filter((w) => w <= sourceWidth);
  return fitting.length ? fitting : [sourceWidth];
}

/**
 * Decodes once at the largest size needed (JPEG shrink-on-load), auto-rotated by EXIF, then
 * derives every width from that raster as WebP plus a JPEG fallback. Outputs carry no EXIF.
 */
export async function makeThumbnails(input: Buffer, wanted: readonly number[]): Promise<{ facts: ImageFacts; thumbnails: Thumbnail[] }> {
  let meta: sharp.Metadata;
  try {
    meta = await sharp(input, { failOn: 'error' }).metadata();
  } catch (err) {
    throw new UndecodableImageError(`image cannot be decoded: ${(err as Error).message}`);
  }
  if (!meta.width || !meta.height) throw new UndecodableImageError('image has no dimensions');
  const rotated = (meta.orientation ?? 1) >= 5;
  const width = rotated ? meta.height : meta.width;
  const height = rotated ? meta.width : meta.height;
  const widths = thumbnailWidths(width, wanted);
  const largest = Math.max(...widths);
  let base: { data: Buffer; info: sharp.OutputInfo };
  try {
    base = await sharp(input, { failOn: 'error' }).rotate().resize({ width: largest, withoutEnlargement: true }).raw().toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw new UndecodableImageError(`image cannot be decoded: ${(err as Error).message}`);
  }
  const raw = { raw: { width: base.info.width, height: base.info.height, channels: base.info.channels } };
  const thumbnails: Thumbnail[] = [];
  for (const w of widths.sort((a, b) => b - a)) {
    const resized = sharp(base.data, raw).resize({ width: w, withoutEnlargement: true });
    const [webp, jpeg] = await Promise.all([
      resized.clone().webp(THUMBNAIL_ENCODING.webp).toBuffer({ resolveWithObject: true }),
      resized.clone().flatten({ background: '#ffffff' }).jpeg(THUMBNAIL_ENCODING.jpeg).toBuffer({ resolveWithObject: true }),
    ]);
    thumbnails.push({ width: webp.info.width, height: webp.info.height, format: 'webp', data: webp.data });
    thumbnails.push({ width: jpeg.info.width, height: jpeg.info.height, format: 'jpeg', data: jpeg.data });
  }
  return { facts: { width, height, format: meta.format ?? 'unknown', orientation: meta.orientation, ...exifFacts(meta.exif) }, thumbnails };
}

function exifFacts(exif?: Buffer): Pick<ImageFacts, 'camera' | 'takenAt' | 'gps'> {
  if (!exif) return {};
  try {
    const tags = exifReader(exif);
    const camera = [tags.Image?.Make, tags.Image?.Model].filter(Boolean).join(' ').trim() || undefined;
    const taken = tags.Photo?.DateTimeOriginal;
    const gps = tags.GPSInfo;
    const coordinate = (v?: number[], ref?: string) =>
      v && v.length === 3 ? (v[0]! + v[1]! / 60 + v[2]! / 3600) * (ref === 'S' || ref === 'W' ? -1 : 1) : undefined;
    return {
      camera,
      takenAt: taken instanceof Date && !Number.isNaN(taken.getTime()) ? taken.toISOString() : undefined,
      gps: gps ? { latitude: coordinate(gps.GPSLatitude, gps.GPSLatitudeRef), longitude: coordinate(gps.GPSLongitude, gps.GPSLongitudeRef) } : undefined,
    };
  } catch {
    // Broken EXIF does not make a broken image.
    return {};
  }
}
