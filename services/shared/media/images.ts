import exifReader from 'exif-reader';
import sharp from 'sharp';
import { crc32, deflateSync } from 'node:zlib';
import { gifEnding, gifIsCutShort } from './gif';
import { decodeHeic } from './heic-decoder';
import { hasHeifTransforms, heifCodec, withLibvipsMajorBrand, type HeifCodec } from './heif';
import { publicDetail, ToolError } from './tool-errors';

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

/** ToolError: `detail` is the decoder's whole message. */
export class UndecodableImageError extends ToolError {
  constructor(message: string, cause?: unknown) {
    const detail = cause === undefined ? undefined : ((cause as Error)?.message ?? String(cause));
    super(detail === undefined ? message : `${message}: ${publicDetail(detail)}`, detail);
  }
}

/** The image decodes but its renditions cannot be written: the same on every attempt. */
export class UnprocessableImageError extends Error {}

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
  /** EXIF Make and Model. */
  camera?: string;
  /** EXIF ImageDescription, else UserComment. */
  description?: string;
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
 * The longest side of a rendition: WebP's limit (16383 px; JPEG's is 65535). The JPEG twin of
 * each WebP has the same size, so both keep to it.
 */
export const MAX_RENDITION_SIDE = 0x3fff;

/**
 * The size of the rendition `width` wide of a `source` picture: the aspect ratio kept, no side
 * above `maxSide` (a scrolling screenshot's tall renditions are narrowed to fit), never
 * upscaled, never below 1 px (a 1×60000 strip stays 1 px wide, however thin that makes it).
 */
export function renditionSize(source: { width: number; height: number }, width: number, maxSide = MAX_RENDITION_SIDE): { width: number; height: number } {
  const w = Math.min(width, source.width, maxSide);
  const h = Math.max(1, Math.round((source.height * w) / source.width));
  if (h <= maxSide) return { width: w, height: h };
  return { width: Math.max(1, Math.round((source.width * maxSide) / source.height)), height: maxSide };
}

/** The decoders' pixel limit (sharp's default): a decompression bomb fails before allocating. */
export const MAX_INPUT_PIXELS = 0x3fff * 0x3fff;

interface Raster {
  data: Buffer;
  width: number;
  height: number;
  channels: 1 | 2 | 3 | 4;
}

const rasterOf = ({ data, info }: { data: Buffer; info: sharp.OutputInfo }): Raster => ({
  data,
  width: info.width,
  height: info.height,
  channels: info.channels as Raster['channels'],
});

/**
 * `raster` turned as EXIF `orientation` says (1 = as stored). One sharp operation per pass:
 * within one pipeline sharp orders rotation and mirroring itself.
 */
async function orient(raster: Raster, orientation: number): Promise<Raster> {
  const steps: Record<number, Array<(s: sharp.Sharp) => sharp.Sharp>> = {
    2: [(s) => s.flop()],
    3: [(s) => s.rotate(180)],
    4: [(s) => s.flip()],
    5: [(s) => s.rotate(90), (s) => s.flop()],
    6: [(s) => s.rotate(90)],
    7: [(s) => s.rotate(270), (s) => s.flop()],
    8: [(s) => s.rotate(270)],
  };
  let out = raster;
  for (const step of steps[orientation] ?? []) {
    const { data, width, height, channels } = out;
    out = rasterOf(await step(sharp(data, { raw: { width, height, channels } })).raw().toBuffer({ resolveWithObject: true }));
  }
  return out;
}

/**
 * `raster`, whose values are in the colour space of ICC profile `icc`, converted to sRGB. sharp
 * cannot tag raw pixels with a profile, but it converts a PNG's embedded profile (iCCP chunk)
 * to sRGB as it decodes: the raster goes through an uncompressed PNG that carries `icc`.
 */
async function toSrgb(raster: Raster, icc: Buffer): Promise<Raster> {
  const { data, width, height, channels } = raster;
  const png = await sharp(data, { raw: { width, height, channels } }).png({ compressionLevel: 0 }).toBuffer();
  // iCCP: profile name, NUL, compression method 0 (zlib), the compressed profile.
  const body = Buffer.concat([Buffer.from('icc\0\0', 'latin1'), deflateSync(icc)]);
  const chunk = Buffer.alloc(12 + body.length);
  chunk.writeUInt32BE(body.length, 0);
  chunk.write('iCCP', 4, 'latin1');
  body.copy(chunk, 8);
  chunk.writeUInt32BE(crc32(chunk.subarray(4, 8 + body.length)), 8 + body.length);
  // The signature (8 bytes) and IHDR (25 bytes) come first; iCCP must precede the image data.
  const tagged = Buffer.concat([png.subarray(0, 33), chunk, png.subarray(33)]);
  return rasterOf(await sharp(tagged).raw().toBuffer({ resolveWithObject: true }));
}

/**
 * Upright pixels of a HEIF file (HEIC or AVIF), by the `codec` of its items (not by its brands:
 * `mif1`/`miaf` name none). sharp's prebuilt libvips decodes AV1;
 * HEVC-coded HEIF (iPhone HEIC) is decoded by libheif compiled to wasm (npm `heic-decode`, in a
 * worker thread: heic-decoder.ts), since that libvips carries no HEVC decoder. Both apply the
 * HEIF transformations (irot/imir).
 * An EXIF orientation is applied only when the file has no such transformation (Samsung writes
 * EXIF only; iPhones write both and applying both would turn the picture twice).
 */
async function decodeHeif(input: Buffer, meta: sharp.Metadata, codec: HeifCodec): Promise<{ raster: Raster; orientation?: number }> {
  if (meta.width! * meta.height! > MAX_INPUT_PIXELS) throw new UndecodableImageError('image cannot be decoded: Input image exceeds pixel limit');
  let raster: Raster;
  try {
    if (codec === 'av1') {
      raster = rasterOf(await sharp(input, { failOn: 'error', limitInputPixels: MAX_INPUT_PIXELS }).raw().toBuffer({ resolveWithObject: true }));
    } else {
      const decoded = await decodeHeic(input);
      raster = { data: decoded.data, width: decoded.width, height: decoded.height, channels: 4 };
      // libheif hands out the pixels in the file's colour space (iPhones: Display P3); a
      // profile that cannot be applied leaves them as they are, like broken EXIF.
      const decodedRaster = raster;
      if (meta.icc) raster = await toSrgb(decodedRaster, meta.icc).catch(() => decodedRaster);
    }
  } catch (err) {
    throw new UndecodableImageError('image cannot be decoded', err);
  }
  const exifOrientation = exifOrientationOf(meta.exif);
  if (!exifOrientation || exifOrientation === 1 || hasHeifTransforms(input)) return { raster };
  return { raster: await orient(raster, exifOrientation), orientation: exifOrientation };
}

/** A sharp pipeline over the upright pixels of `input`, with the upright size. */
async function uprightSource(input: Buffer, meta: sharp.Metadata, codec: HeifCodec): Promise<{ open: () => sharp.Sharp; width: number; height: number; orientation?: number }> {
  if (meta.format === 'heif') {
    const { raster, orientation } = await decodeHeif(input, meta, codec);
    const raw = { raw: { width: raster.width, height: raster.height, channels: raster.channels } };
    return { open: () => sharp(raster.data, raw), width: raster.width, height: raster.height, orientation };
  }
  const rotated = (meta.orientation ?? 1) >= 5;
  return {
    open: () => sharp(input, { failOn: 'error', limitInputPixels: MAX_INPUT_PIXELS }).rotate(),
    width: rotated ? meta.height! : meta.width!,
    height: rotated ? meta.width! : meta.height!,
    orientation: meta.orientation,
  };
}

const END_OF_IMAGE = Buffer.from([0xff, 0xd9]);

/** A JPEG whose last two bytes are not the end-of-image marker. */
const lacksEndOfImage = (input: Buffer) => input[0] === 0xff && input[1] === 0xd8 && input[2] === 0xff && !input.subarray(-2).equals(END_OF_IMAGE);

/**
 * `input` with the JPEG end-of-image marker it lacks, when that is its only flaw: old iPhones
 * and some camera apps leave it out and every viewer shows the picture whole, while libvips
 * calls it truncated. The completed file must decode without a single libjpeg warning, so a
 * copy cut short in its scan data (which libjpeg would fill with grey) is not "completed".
 * Undefined when `input` is no such JPEG.
 */
async function withEndOfImage(input: Buffer): Promise<Buffer | undefined> {
  if (!lacksEndOfImage(input)) return undefined;
  const completed = Buffer.concat([input, END_OF_IMAGE]);
  return (await decodesWithoutWarning(completed)) ? completed : undefined;
}

/**
 * Whether `input` decodes whole without a single decoder warning: a full decode, read row by
 * row, keeping only the bottom row (no raster held).
 * Not stats(): libjpeg reports a cut with one warning, which libvips turns into an error
 * whose text sits in libvips' global error buffer; another image finishing on another thread
 * clears that buffer, and sharp's stats() then takes the empty error for success (2 of 8 cut
 * copies passed when 8 ran at once). Its pipeline (toBuffer) does not.
 */
async function decodesWithoutWarning(input: Buffer): Promise<boolean> {
  try {
    const { height } = await sharp(input, { failOn: 'warning', limitInputPixels: MAX_INPUT_PIXELS }).metadata();
    if (!height) return false;
    await sharp(input, { failOn: 'warning', limitInputPixels: MAX_INPUT_PIXELS, sequentialRead: true })
      .extract({ left: 0, top: height - 1, width: 1, height: 1 })
      .raw()
      .toBuffer();
    return true;
  } catch {
    return false;
  }
}

/**
 * `input` with the end it lacks when that is its only flaw, as processing read it: a JPEG's
 * end-of-image marker (see withEndOfImage), a GIF's trailer byte (0x3B). What is published, and
 * what ExifTool must be able to rewrite ("JPEG EOI marker not found", "Format error in file"
 * otherwise). `input` itself when nothing is missing, or when the JPEG decodes as it is (a
 * motion photo: its clip follows the marker).
 */
export async function withWholeEnding(input: Buffer): Promise<Buffer> {
  if (gifEnding(input) === 'no-trailer') return Buffer.concat([input, GIF_TRAILER]);
  if (!lacksEndOfImage(input) || (await decodesWithoutWarning(input))) return input;
  return (await withEndOfImage(input)) ?? input;
}

const GIF_TRAILER = Buffer.from([0x3b]);

/**
 * Decodes once at the largest size needed (JPEG shrink-on-load), auto-rotated by EXIF, then
 * derives every width from that raster as WebP plus a JPEG fallback, each within
 * MAX_RENDITION_SIDE (renditionSize). Outputs carry no EXIF.
 * Text read from EXIF is returned as found: the read model sanitizes it (MediaRepository).
 * @throws UndecodableImageError when the image cannot be decoded whole.
 * @throws UnprocessableImageError when it decodes but a rendition cannot be encoded.
 */
export async function makeThumbnails(input: Buffer, wanted: readonly number[]): Promise<{ facts: ImageFacts; thumbnails: Thumbnail[] }> {
  try {
    return await thumbnailsOf(input, wanted);
  } catch (err) {
    // Only on failure: a whole JPEG that merely lacks its final marker is decoded again with it.
    const completed = err instanceof UndecodableImageError ? await withEndOfImage(input) : undefined;
    if (!completed) throw err;
    return thumbnailsOf(completed, wanted);
  }
}

async function thumbnailsOf(file: Buffer, wanted: readonly number[]): Promise<{ facts: ImageFacts; thumbnails: Thumbnail[] }> {
  const itemCodec = heifCodec(file);
  const input = itemCodec ? withLibvipsMajorBrand(file, itemCodec) : file;
  let meta: sharp.Metadata;
  try {
    meta = await sharp(input, { failOn: 'error' }).metadata();
  } catch (err) {
    throw new UndecodableImageError('image cannot be decoded', err);
  }
  if (!meta.width || !meta.height) throw new UndecodableImageError('image has no dimensions');
  // libvips decodes the frames a cut GIF has without a word; the original would be published broken.
  if (meta.format === 'gif' && gifIsCutShort(input)) throw new UndecodableImageError('image cannot be decoded whole: the GIF ends inside a frame');
  // Without item types (never seen), libvips' guess from the brands is all there is.
  const codec = itemCodec ?? (meta.compression === 'av1' ? 'av1' : 'hevc');
  const source = await uprightSource(input, meta, codec);
  const { width, height } = source;
  // Widths whose height would pass the limit narrow to the same size: one rendition of it (keys are per width).
  const sizes = [...new Map(thumbnailWidths(width, wanted).map((w) => renditionSize({ width, height }, w)).map((s) => [s.width, s] as const)).values()];
  sizes.sort((a, b) => b.width - a.width);
  const largest = sizes[0]!;
  let base: { data: Buffer; info: sharp.OutputInfo };
  try {
    base = await source.open().resize({ width: largest.width, height: largest.height, fit: 'fill' }).raw().toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw new UndecodableImageError('image cannot be decoded', err);
  }
  const raw = { raw: { width: base.info.width, height: base.info.height, channels: base.info.channels } };
  const thumbnails: Thumbnail[] = [];
  for (const size of sizes) {
    const resized = sharp(base.data, raw).resize({ width: size.width, height: size.height, fit: 'fill' });
    let webp: { data: Buffer; info: sharp.OutputInfo };
    let jpeg: { data: Buffer; info: sharp.OutputInfo };
    try {
      [webp, jpeg] = await Promise.all([
        resized.clone().webp(THUMBNAIL_ENCODING.webp).toBuffer({ resolveWithObject: true }),
        resized.clone().flatten({ background: '#ffffff' }).jpeg(THUMBNAIL_ENCODING.jpeg).toBuffer({ resolveWithObject: true }),
      ]);
    } catch (err) {
      // The pixels are decoded and in memory: an encoder that refuses them refuses them again.
      throw new UnprocessableImageError(`rendition ${size.width}×${size.height} cannot be encoded: ${publicDetail((err as Error).message)}`);
    }
    thumbnails.push({ width: webp.info.width, height: webp.info.height, format: 'webp', data: webp.data });
    thumbnails.push({ width: jpeg.info.width, height: jpeg.info.height, format: 'jpeg', data: jpeg.data });
  }
  const format = meta.format === 'heif' ? (codec === 'av1' ? 'avif' : 'heic') : (meta.format ?? 'unknown');
  return { facts: { width, height, format, orientation: source.orientation, ...exifFacts(meta.exif) }, thumbnails };
}

/**
 * EXIF text as a string: ASCII fields with bytes above 0x7f come as Buffers (read as UTF-8,
 * what phones write); UserComment starts with an 8-byte character code (EXIF 2.3 §4.6.5).
 */
function exifText(value: unknown, littleEndian: boolean): string | undefined {
  if (typeof value === 'string') return value;
  if (!Buffer.isBuffer(value)) return undefined;
  const code = value.subarray(0, 8).toString('latin1');
  if (code === 'UNICODE\0') {
    const utf16 = Buffer.from(value.subarray(8, 8 + ((value.length - 8) & ~1)));
    if (!littleEndian) utf16.swap16();
    return utf16.toString('utf16le');
  }
  if (code === 'ASCII\0\0\0' || code === '\0'.repeat(8)) return value.subarray(8).toString('latin1');
  return value.toString('utf8');
}

/** The EXIF Orientation tag (1–8), if any; libvips drops it from HEIF metadata. */
function exifOrientationOf(exif?: Buffer): number | undefined {
  if (!exif) return undefined;
  try {
    const orientation = exifReader(exif).Image?.Orientation;
    return typeof orientation === 'number' && orientation >= 1 && orientation <= 8 ? orientation : undefined;
  } catch {
    return undefined;
  }
}

function exifFacts(exif?: Buffer): Pick<ImageFacts, 'camera' | 'description' | 'takenAt' | 'gps'> {
  if (!exif) return {};
  try {
    const tags = exifReader(exif);
    // The TIFF header after `Exif\0\0` says the byte order (`II` little-endian, `MM` big).
    const tiff = exif.subarray(0, 4).toString('latin1') === 'Exif' ? exif.subarray(6) : exif;
    const littleEndian = tiff.subarray(0, 2).toString('latin1') === 'II';
    const text = (v: unknown) => exifText(v, littleEndian);
    const camera = [text(tags.Image?.Make), text(tags.Image?.Model)].filter(Boolean).join(' ').trim() || undefined;
    const description = (text(tags.Image?.ImageDescription) ?? text(tags.Photo?.UserComment))?.trim() || undefined;
    const taken = tags.Photo?.DateTimeOriginal;
    const gps = tags.GPSInfo;
    const coordinate = (v?: number[], ref?: string) =>
      v && v.length === 3 ? (v[0]! + v[1]! / 60 + v[2]! / 3600) * (ref === 'S' || ref === 'W' ? -1 : 1) : undefined;
    return {
      camera,
      description,
      takenAt: taken instanceof Date && !Number.isNaN(taken.getTime()) ? taken.toISOString() : undefined,
      gps: gps ? { latitude: coordinate(gps.GPSLatitude, gps.GPSLatitudeRef), longitude: coordinate(gps.GPSLongitude, gps.GPSLongitudeRef) } : undefined,
    };
  } catch {
    // Broken EXIF does not make a broken image.
    return {};
  }
}
