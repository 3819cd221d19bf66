/**
 * Content sniffing by magic number for the MIME types the platform accepts. A declared type is
 * trusted only when the first bytes agree with it.
 */
/**
 * Enough for the ISO-BMFF `ftyp` box with its compatible brands (HEIF/AVIF say what they are
 * there) and for a PDF header after leading junk (see PDF_HEADER_WINDOW).
 */
export const MAGIC_BYTES_NEEDED = 1024;

// HEIF still images (ISO/IEC 23008-12) share the ISO base media container with MP4: the `ftyp`
// brands tell them apart. `mif1`/`msf1` are the generic image/sequence brands (`miaf` the MIAF
// profile's, some encoders make it the major brand); the compatible brands then say which codec
// (AV1 → AVIF, HEVC → HEIC).
const AVIF_BRANDS = new Set(['avif', 'avis']);
const HEIC_BRANDS = new Set(['heic', 'heix', 'hevc', 'hevx', 'heim', 'heis', 'hevm', 'hevs']);
const GENERIC_HEIF_BRANDS = new Set(['mif1', 'msf1', 'miaf']);

/** The image type an `ftyp` box announces, or undefined for a video (MP4/QuickTime) file. */
function heifType(b: Buffer): string | undefined {
  const boxSize = b.readUInt32BE(0);
  const major = b.subarray(8, 12).toString('latin1');
  const compatible: string[] = [];
  // Compatible brands follow the major brand and the minor version, to the end of the box.
  for (let at = 16; at + 4 <= Math.min(boxSize, b.length); at += 4) compatible.push(b.subarray(at, at + 4).toString('latin1'));
  if (AVIF_BRANDS.has(major)) return 'image/avif';
  if (HEIC_BRANDS.has(major)) return 'image/heic';
  if (!GENERIC_HEIF_BRANDS.has(major)) return undefined;
  if (compatible.some((c) => AVIF_BRANDS.has(c))) return 'image/avif';
  if (compatible.some((c) => HEIC_BRANDS.has(c))) return 'image/heic';
  return 'image/heif';
}

/**
 * PDF readers (Acrobat, MuPDF, pdf.js) accept the `%PDF-` header anywhere in the first 1024
 * bytes, after junk some mail gateways and generators put in front; so does the platform.
 */
const PDF_HEADER_WINDOW = 1024;

export function detectMimeType(head: Uint8Array): string | undefined {
  const b = Buffer.from(head);
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'image/jpeg';
  if (b.length >= 8 && b.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) return 'image/png';
  if (b.length >= 6 && ['GIF87a', 'GIF89a'].includes(b.subarray(0, 6).toString('latin1'))) return 'image/gif';
  if (b.length >= 12 && b.subarray(0, 4).toString('latin1') === 'RIFF' && b.subarray(8, 12).toString('latin1') === 'WEBP') return 'image/webp';
  if (b.length >= 4 && b[0] === 0x1a && b[1] === 0x45 && b[2] === 0xdf && b[3] === 0xa3) return 'video/webm';
  if (b.length >= 12 && b.subarray(4, 8).toString('latin1') === 'ftyp') {
    const image = heifType(b);
    if (image) return image;
    return b.subarray(8, 12).toString('latin1') === 'qt  ' ? 'video/quicktime' : 'video/mp4';
  }
  // Older QuickTime files start with a movie or free-space atom instead of `ftyp`.
  if (b.length >= 8 && ['moov', 'wide', 'mdat', 'free', 'skip'].includes(b.subarray(4, 8).toString('latin1'))) return 'video/quicktime';
  // Checked last: a file that starts as another type stays that type whatever text follows.
  if (b.subarray(0, PDF_HEADER_WINDOW).includes('%PDF-', 0, 'latin1')) return 'application/pdf';
  return undefined;
}

/**
 * MP4 and QuickTime share the ISO base media container; players and ffmpeg treat them alike.
 * `image/heic` is the HEVC-coded kind of `image/heif`: phones and browsers label the same file
 * either way, so the two are one type here (AVIF stays apart: it needs another decoder).
 */
const equivalent: Record<string, string> = { 'video/quicktime': 'video/mp4', 'image/heif': 'image/heic' };

export function matchesDeclaredType(declared: string, detected: string | undefined): boolean {
  if (!detected) return false;
  return (equivalent[declared] ?? declared) === (equivalent[detected] ?? detected);
}
