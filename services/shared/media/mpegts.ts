/** MPEG-TS packet size, bytes. */
export const TS_PACKET_BYTES = 188;

/**
 * Fewest packets a published segment has. libavformat (ffmpeg, ffplay, mpv, the HLS demuxer)
 * names a file MPEG-TS only when it holds ten 204-byte probe blocks (2040 bytes, so 11
 * packets); a shorter segment is taken for MPEG-PS and does not play. A 1 fps or single-frame
 * clip of a flat picture writes segments of 6–10 packets.
 */
export const MIN_SEGMENT_PACKETS = 12;

/** A null packet (PID 0x1FFF, payload only): ISO/IEC 13818-1 stuffing every demuxer discards. */
const NULL_PACKET = (() => {
  const p = Buffer.alloc(TS_PACKET_BYTES, 0xff);
  p.set([0x47, 0x1f, 0xff, 0x10]);
  return p;
})();

/**
 * `segment` followed by null packets up to `MIN_SEGMENT_PACKETS`, so any demuxer recognises it;
 * the segment itself when it is long enough or not whole 188-byte packets.
 */
export function padShortSegment(segment: Buffer): Buffer {
  const packets = segment.length / TS_PACKET_BYTES;
  if (!Number.isInteger(packets) || packets >= MIN_SEGMENT_PACKETS || segment[0] !== 0x47) return segment;
  return Buffer.concat([segment, ...Array.from({ length: MIN_SEGMENT_PACKETS - packets }, () => NULL_PACKET)]);
}
