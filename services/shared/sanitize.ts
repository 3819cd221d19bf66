/**
 * What text may reach the read model (PostgreSQL `text` and `jsonb`). Media carries text
 * nobody vetted: EXIF fields padded with NUL bytes by cameras, UTF-16 comments cut in the
 * middle of a surrogate pair, XMP and ffprobe tags of any length. PostgreSQL refuses NUL
 * (`unsupported Unicode escape sequence`) and lone surrogates in jsonb, and a refused write
 * repeats identically on every retry. Pure functions: the contract schemas import them too.
 */

/** Longest string kept, in UTF-16 code units; longer ones are cut (EXIF/XMP text can be megabytes). */
export const MAX_TEXT_LENGTH = 2000;
/** Most array items and object keys kept per level, and how deep a value may nest. */
export const MAX_ITEMS = 200;
export const MAX_DEPTH = 8;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
// C0 controls but tab and line feed, DEL, and C1 controls (NUL among them).
const CONTROL = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F]/g;

/** True when `value` has no lone surrogate (Node 20 has no String#isWellFormed typing in ES2022). */
export function isWellFormedText(value: string): boolean {
  return !new RegExp(LONE_SURROGATE.source).test(value);
}

/** `value` without NUL, other control characters and lone surrogates, at most `max` code units. */
export function sanitizeText(value: string, max = MAX_TEXT_LENGTH): string {
  let text = value.replace(LONE_SURROGATE, '').replace(CONTROL, '');
  if (text.length > max) {
    text = text.slice(0, max);
    // Never end on half a surrogate pair.
    if (/[\uD800-\uDBFF]$/.test(text)) text = text.slice(0, -1);
  }
  return text;
}

/**
 * A JSON-safe copy of `value` for a jsonb column: strings (keys too) sanitized, arrays and
 * objects bounded in size and depth, binary data dropped (a Buffer would serialize as a list
 * of bytes), dates as ISO strings, non-finite numbers as null.
 */
export function sanitizeForReadModel(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return sanitizeText(value);
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (typeof value === 'boolean' || value === null) return value;
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (value === undefined || typeof value !== 'object' || ArrayBuffer.isView(value) || value instanceof ArrayBuffer || depth >= MAX_DEPTH) return undefined;
  if (Array.isArray(value)) return value.slice(0, MAX_ITEMS).map((item) => sanitizeForReadModel(item, depth + 1) ?? null);
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value).slice(0, MAX_ITEMS)) {
    const clean = sanitizeForReadModel(item, depth + 1);
    if (clean !== undefined) out[sanitizeText(key, 200)] = clean;
  }
  return out;
}
