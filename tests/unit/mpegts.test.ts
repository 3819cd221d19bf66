import { MIN_SEGMENT_PACKETS, padShortSegment, TS_PACKET_BYTES } from '../../services/shared/media/mpegts';

describe('padShortSegment', () => {
  const packet = (pid: number) => {
    const p = Buffer.alloc(TS_PACKET_BYTES, 0xaa);
    p.set([0x47, (pid >> 8) & 0x1f, pid & 0xff, 0x10]);
    return p;
  };

  it('adds null packets (PID 0x1FFF) after a segment of a few packets, leaving its bytes as they were', () => {
    const segment = Buffer.concat([packet(0), packet(0x1000), packet(0x100)]);
    const padded = padShortSegment(segment);
    expect(padded.length).toBe(MIN_SEGMENT_PACKETS * TS_PACKET_BYTES);
    expect(padded.subarray(0, segment.length).equals(segment)).toBe(true);
    for (let at = segment.length; at < padded.length; at += TS_PACKET_BYTES) {
      expect([padded[at], ((padded[at + 1]! & 0x1f) << 8) | padded[at + 2]!]).toEqual([0x47, 0x1fff]);
    }
  });

  it('returns long segments, empty files and non-TS bytes unchanged', () => {
    const long = Buffer.concat(Array.from({ length: MIN_SEGMENT_PACKETS }, () => packet(0x100)));
    expect(padShortSegment(long)).toBe(long);
    const empty = Buffer.alloc(0);
    expect(padShortSegment(empty)).toBe(empty);
    const odd = Buffer.alloc(TS_PACKET_BYTES + 5, 0x47);
    expect(padShortSegment(odd)).toBe(odd);
  });

  it('pads past the 2040 bytes libavformat needs to name a file MPEG-TS', () => {
    expect(MIN_SEGMENT_PACKETS * TS_PACKET_BYTES).toBeGreaterThanOrEqual(10 * 204);
  });
});
