import { eventPlaylist, listedSegments, type ListedSegment } from '../../services/shared/media/hls-args';
import { continuation, readPublishedPlaylist } from '../../services/shared/media/event-playlist';

const seg = (n: number, seconds: number, extra: Partial<ListedSegment> = {}): ListedSegment => ({ uri: `segment_${String(n).padStart(3, '0')}.ts`, seconds, ...extra });

describe('readPublishedPlaylist', () => {
  it('reads segments, target duration and ENDLIST of a published EVENT playlist, discontinuities included', () => {
    const segments = [seg(0, 2), seg(1, 2.5), { uri: 'a2-segment_002.ts', seconds: 2, discontinuity: true }];
    const open = readPublishedPlaylist(eventPlaylist(segments, { targetSeconds: 3, ended: false }));
    expect(open).toEqual({ segments, targetSeconds: 3, ended: false });
    expect(readPublishedPlaylist(eventPlaylist(segments, { targetSeconds: 3, ended: true }))?.ended).toBe(true);
  });

  it('writes the same playlist again from what it read (a continued playlist changes only by what is appended)', () => {
    const text = eventPlaylist([seg(0, 2.002), { ...seg(1, 1.5), discontinuity: true }], { targetSeconds: 4, ended: false });
    const read = readPublishedPlaylist(text)!;
    expect(eventPlaylist(read.segments, { targetSeconds: read.targetSeconds, ended: false })).toBe(text);
    expect(text.split('\n').filter((l) => l === '#EXT-X-DISCONTINUITY')).toHaveLength(1);
  });

  it('is undefined for a playlist that lists no segment', () => {
    expect(readPublishedPlaylist('#EXTM3U\n#EXT-X-TARGETDURATION:2\n')).toBeUndefined();
    expect(listedSegments('')).toEqual([]);
  });
});

describe('continuation', () => {
  const published = [seg(0, 2), seg(1, 2), seg(2, 2)];

  it('continues right after the published segments when the re-run cuts at the same times', () => {
    expect(continuation(published, [seg(0, 2), seg(1, 2), seg(2, 2), seg(3, 2)], false)).toEqual({ from: 3, discontinuity: false });
    expect(continuation(published, [seg(0, 2.0004), seg(1, 2), seg(2, 2)], true)).toEqual({ from: 3, discontinuity: false });
  });

  it('waits while the re-run has matched so far but not reached the published end', () => {
    expect(continuation(published, [seg(0, 2), seg(1, 2)], false)).toBeUndefined();
    expect(continuation(published, [], false)).toBeUndefined();
  });

  it('appends after a discontinuity from the re-run segment that holds the published end when the cuts differ (content repeats, none is skipped)', () => {
    // Published 6 s; the re-run cuts every 2.5 s: 0–2.5, 2.5–5, 5–7.5 holds 6 s.
    const rerun = [seg(0, 2.5), seg(1, 2.5), seg(2, 2.5), seg(3, 2.5)];
    expect(continuation(published, rerun.slice(0, 2), false)).toBeUndefined();
    expect(continuation(published, rerun.slice(0, 3), false)).toEqual({ from: 2, discontinuity: true });
    // Cut every 3 s: 6–9 starts right at the published end.
    expect(continuation(published, [seg(0, 3), seg(1, 3), seg(2, 3)], false)).toEqual({ from: 2, discontinuity: true });
  });

  it('treats a published discontinuity (an earlier re-cut) as a different cut', () => {
    const recut = [seg(0, 2), { uri: 'a2-segment_001.ts', seconds: 2, discontinuity: true }];
    expect(continuation(recut, [seg(0, 2), seg(1, 2), seg(2, 2)], false)).toEqual({ from: 2, discontinuity: true });
  });

  it('appends nothing once a re-run that ended has nothing after the published end', () => {
    expect(continuation(published, [seg(0, 2), seg(1, 2)], true)).toEqual({ from: 2, discontinuity: true });
    expect(continuation(published, [], true)).toEqual({ from: 0, discontinuity: true });
  });
});
