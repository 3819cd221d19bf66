/**
 * Content sniffing by magic number for the MIME types the platform accepts. A declared type is
 * trusted only when the first bytes agree with it.
 */
export const MAGIC_BYTES_NEEDED = 1024;

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
    return b.subarray(8, 12).toString('latin1') === 'qt  ' ? 'video/quicktime' : 'video/mp4';
  }
  // Older QuickTime files start with a movie or free-space atom instead of `ftyp`.
  if (b.length >= 8 && ['moov', 'wide', 'mdat', 'free', 'skip'].includes(b.subarray(4, 8).toString('latin1'))) return 'video/quicktime';
  // Checked last: a file that starts as another type stays that type whatever text follows.
  if (b.subarray(0, PDF_HEADER_WINDOW).includes('%PDF-', 0, 'latin1')) return 'application/pdf';
  return undefined;
}

/** MP4 and QuickTime share the ISO base media container; players and ffmpeg treat them alike. */
const equivalent: Record<string, string> = { 'video/quicktime': 'video/mp4' };

export function matchesDeclaredType(declared: string, detected: string | undefined): boolean {
  if (!detected) return false;
  return (equivalent[declared] ?? declared) === (equivalent[detected] ?? detected);
}
