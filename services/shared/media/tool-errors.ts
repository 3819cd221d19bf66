/**
 * What of a media tool's error output (ffprobe/ffmpeg stderr, libvips/libheif messages) may
 * reach a user-visible failure reason: one short line, with no worker path, no internal URL
 * (host, port, bucket, key) and none of the tools' repeated noise. The whole output goes to
 * the worker log instead. Pure functions.
 */

/**
 * A media tool's failure: `message` is fit for the failure reason users see (built with
 * publicDetail), `detail` is the tool's own output (paths, URLs, many lines) for the worker log.
 */
export class ToolError extends Error {
  constructor(
    message: string,
    readonly detail?: string,
  ) {
    super(message);
  }
}

/** Longest detail kept, characters: a failure reason is a sentence, not a log. */
export const MAX_DETAIL_LENGTH = 160;

// Lines that say nothing to a user: libheif's retries while it reads a truncated file, libvips's
// trailing version in parentheses, and ffmpeg's summary lines.
const NOISE = [
  /^source: bad seek to \d+$/i,
  /^\(\d+(?:\.\d+)*\)$/,
  /^Conversion failed!?$/i,
  /^Exiting normally/i,
  // ffmpeg's progress and summary lines, and the HLS muxer opening its files.
  /^frame=\s*\d+ /i,
  /^size=\s*\S+ time=/i,
  /^video:\S+ audio:\S+ /i,
  /^Opening '.*' for (?:writing|reading)$/i,
];
const URL = /\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>]*/gi;
// An absolute path: `/` at the start or after a space, quote, `(` or `=`, up to whitespace or
// `: ` (ffmpeg writes `<input>: <error>`).
const PATH = /(^|[\s"'(=])\/(?:[^\s:"']|:(?!\s|$))+/g;
// ffmpeg's `[mov,mp4,m4a,3gp,3g2,mj2 @ 0x5650b2a841c0] ` context prefix.
const CONTEXT = /\[[^\]@]*@ 0x[0-9a-f]+\]\s*/gi;

/** One line of tool output without URLs, paths and context prefixes; empty when nothing is left. */
function cleanLine(line: string): string {
  return line
    .replace(CONTEXT, '')
    .replace(URL, '')
    .replace(PATH, '$1')
    .replace(/^[\s:,;-]+/, '')
    .replace(/\s+/g, ' ')
    .trim();
}

/**
 * The part of a tool's error output fit for a failure reason: its last (at most two) distinct
 * meaningful lines, cleaned and joined by `; `, at most `MAX_DETAIL_LENGTH` characters;
 * `fallback` when nothing meaningful is left.
 * @example publicDetail('[mov,mp4 @ 0x5650] moov atom not found\nhttp://s3:8333/incoming/k?[redacted]: Invalid data found when processing input')
 *   // 'moov atom not found; Invalid data found when processing input'
 */
export function publicDetail(output: string, fallback = 'no detail'): string {
  const lines: string[] = [];
  for (const raw of output.split(/\r?\n/)) {
    const trimmed = raw.trim();
    if (!trimmed || NOISE.some((n) => n.test(trimmed))) continue;
    // What a removed path leaves at the end: ExifTool writes `<message> - <file>`.
    const line = cleanLine(trimmed).replace(/[\s:]+$|\s+-$/, '');
    if (line && !NOISE.some((n) => n.test(line)) && !lines.includes(line)) lines.push(line);
  }
  const detail = lines.slice(-2).join('; ');
  if (!detail) return fallback;
  return detail.length > MAX_DETAIL_LENGTH ? `${detail.slice(0, MAX_DETAIL_LENGTH - 1)}…` : detail;
}

/** True when `text` is fit for a user-visible failure reason: one line, no URL, no absolute path. */
export function isPublicText(text: string): boolean {
  return !/[\r\n]/.test(text) && !new RegExp(URL.source, 'i').test(text) && !new RegExp(PATH.source).test(text);
}
