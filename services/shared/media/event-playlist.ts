/**
 * Continuing a published EVENT media playlist (RFC 8216 §4.3.3.5: segments may only be
 * appended) after the attempt that wrote it died: pure, unit-tested.
 */
import { listedSegments, playlistSeconds, type ListedSegment } from './hls-args';

/** What a published EVENT media playlist holds. */
export interface PublishedPlaylist {
  /** In order, with their URIs relative to the playlist. */
  segments: ListedSegment[];
  /** `#EXT-X-TARGETDURATION`, seconds: it may not change between versions of the playlist. */
  targetSeconds: number;
  /** `#EXT-X-ENDLIST` is there: nothing may be added. */
  ended: boolean;
}

/** The published playlist, or undefined when it lists no segment (nothing a player can have started on). */
export function readPublishedPlaylist(text: string): PublishedPlaylist | undefined {
  const segments = listedSegments(text);
  if (segments.length === 0) return undefined;
  const target = /^#EXT-X-TARGETDURATION:(\d+)\s*$/m.exec(text);
  return {
    segments,
    targetSeconds: target ? Number(target[1]) : Math.max(...segments.map((s) => Math.ceil(s.seconds))),
    ended: /^#EXT-X-ENDLIST\s*$/m.test(text),
  };
}

/** Seconds by which two cuts may differ and be the same cut: EXTINF is written with 6 decimals. */
const SAME_CUT_SECONDS = 0.001;

/** Where a re-run of the segmenter continues a published playlist. */
export interface Continuation {
  /** Index, in the re-run's listing, of its first segment to append. */
  from: number;
  /**
   * The re-run cut the stream elsewhere than the published segments: what it appends starts
   * after `#EXT-X-DISCONTINUITY` and under names of its own (a published name is immutable).
   */
  discontinuity: boolean;
}

/**
 * How the segments of a re-run (`rerun`, as ffmpeg lists them so far; `finished` once it
 * has exited) continue the `published` ones. When the re-run's first segments have the
 * published names and durations (a stream copy and a fixed-GOP encode of the same source cut
 * at the same times), it continues right after them. Otherwise it continues, after a
 * discontinuity, with its segment that holds the end of the published duration (or starts
 * right there): up to one segment of content is played twice rather than skipped.
 * @returns undefined while the re-run has not written enough to decide.
 */
export function continuation(published: ListedSegment[], rerun: ListedSegment[], finished: boolean): Continuation | undefined {
  const sameSoFar = published.every(
    (p, i) => i >= rerun.length || (!p.discontinuity && rerun[i]!.uri === p.uri && Math.abs(rerun[i]!.seconds - p.seconds) <= SAME_CUT_SECONDS),
  );
  if (sameSoFar && rerun.length >= published.length) return { from: published.length, discontinuity: false };
  if (sameSoFar && !finished) return undefined;
  const end = playlistSeconds(published);
  let stop = 0;
  for (let i = 0; i < rerun.length; i++) {
    stop += rerun[i]!.seconds;
    if (stop > end + SAME_CUT_SECONDS) return { from: i, discontinuity: true };
  }
  return finished ? { from: rerun.length, discontinuity: true } : undefined;
}
