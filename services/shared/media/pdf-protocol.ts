/**
 * What the PDF analyzer child process (pdf-analyzer.mts) is asked and what it answers. The
 * child imports only the types from here (it is ESM run by Node itself); the pure functions
 * serve the activity's side.
 */

/** argv[2] of the child, as JSON. */
export interface AnalyzerRequest {
  /** Local path of the PDF. */
  input: string;
  /** Where page 1 is written as PNG; nothing is written when there is no preview. */
  previewPath: string;
  /** Preview raster width in pixels (the largest thumbnail width); its height is capped at twice that. */
  previewMaxWidth: number;
  /** The child stops reading pages once it has sent this many UTF-8 bytes of text; the parent cuts exactly. */
  textMaxBytes: number;
  /**
   * Where the object walk writes each embedded file it finds (decompressed), for the worker to
   * scan; none written without it. Files larger than `embeddedMaxBytes` are reported, not written.
   */
  embeddedDir?: string;
  embeddedMaxBytes?: number;
}

/** Facts read from the document before anything is rendered. */
export interface DocumentInfo {
  pageCount: number;
  /** /Encrypt in the trailer (AES or RC4), with or without a user password. */
  encrypted: boolean;
  /** Opening needs a password: nothing is rendered or extracted. */
  passwordRequired: boolean;
  /**
   * What the document's permissions deny its reader (ISO 32000-1 §7.6.3.2, Table 22: an owner
   * password's restrictions), in MuPDF's names: `print`, `copy`, `edit`, `annotate`, `form`,
   * `accessibility`, `assemble`, `print-hq`. Empty when not encrypted or nothing is denied.
   * Informational: the platform renders the preview and extracts the text regardless, as
   * readers that honour only the user password do; an integrator decides what to show.
   */
  restrictions: string[];
  title?: string;
  author?: string;
  /**
   * Any JavaScript action (/S /JavaScript or a /JS entry) anywhere in the file. Both flags are
   * true when a bound stopped the analysis before every object was read: what was not read
   * cannot be called clean.
   */
  hasJavaScript: boolean;
  /** Any embedded file (a file specification with /EF): the names tree or attachment annotations. */
  hasEmbeddedFiles: boolean;
  /** The cross-reference table was broken and MuPDF rebuilt it. */
  repaired: boolean;
}

export type ActiveContentFlags = 'hasJavaScript' | 'hasEmbeddedFiles';

/**
 * One line of JSON each on the child's stdout, in this order; the child may be killed between
 * two (time or memory bound), and what arrived before stays valid.
 */
export type AnalyzerMessage =
  | { kind: 'info'; info: Omit<DocumentInfo, ActiveContentFlags> }
  | { kind: 'preview'; width: number; height: number }
  /** One per page with text, in page order (1-based `page`). */
  | { kind: 'text'; page: number; text: string }
  /**
   * During the object walk, one per embedded file (an /EF file specification): `path` of its
   * decompressed bytes under `embeddedDir`, absent when it was larger than `embeddedMaxBytes`
   * or could not be read (`bytes` then what is known: its size, or 0).
   */
  | { kind: 'embeddedFile'; path?: string; bytes: number }
  /** After the text: the walk over every object (see DocumentInfo.hasJavaScript). */
  | ({ kind: 'activeContent' } & Pick<DocumentInfo, ActiveContentFlags>)
  | { kind: 'done'; pagesRead: number }
  | { kind: 'error'; code: 'UNDECODABLE'; message: string };

/** The first `maxBytes` UTF-8 bytes of `text`, never cutting a character in two. */
export function truncateUtf8(text: string, maxBytes: number): { text: string; truncated: boolean } {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes <= maxBytes) return { text, truncated: false };
  let cut = Buffer.from(text, 'utf8').subarray(0, maxBytes).toString('utf8');
  // A cut inside a multi-byte sequence decodes to U+FFFD at the end: drop it.
  if (cut.endsWith('\ufffd')) cut = cut.slice(0, -1);
  return { text: cut, truncated: true };
}

/** PDF white-space characters (ISO 32000-1 §7.2.2, Table 1), NUL included: what writers and transfer tools pad a file with. */
const PADDING = new Set([0x00, 0x09, 0x0a, 0x0c, 0x0d, 0x20]);

export const isPdfPadding = (byte: number): boolean => PADDING.has(byte);

/**
 * A complete PDF ends with `%%EOF`; readers look for it in the last 1024 bytes (ISO 32000-1
 * §7.5.5, Implementation note 18 of Annex H), trailing junk from transfer tools included.
 * White space and NULs after it are padding, not content: the 1024 count from the last byte
 * that is neither (a file padded with 2 KiB of NULs opens in every viewer). An upload cut short
 * has no `%%EOF` there. `tail`: the file's end, from at least 1024 bytes before its padding.
 */
export function endsLikeAPdf(tail: Uint8Array): boolean {
  let end = tail.length;
  while (end > 0 && isPdfPadding(tail[end - 1]!)) end--;
  return Buffer.from(tail.buffer, tail.byteOffset, end).subarray(-1024).includes('%%EOF', 0, 'latin1');
}
