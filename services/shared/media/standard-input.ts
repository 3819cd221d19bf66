import { INTERLACED_FIELD_ORDERS, type ProbeResult } from './hls-args';

/**
 * Whether an original can be published as HLS by stream copy (no re-encode) before the ladder:
 * what every HLS player decodes (H.264 8-bit 4:2:0, AAC), upright, small enough for any device,
 * in a container whose packets copy into MPEG-TS, with keyframes often enough that segments
 * (cut only at keyframes when copying) stay short. Most phone and screen recordings qualify.
 */
export interface StandardInputRules {
  /** Longest keyframe spacing accepted, seconds: a copied segment lasts at least one GOP. */
  maxKeyframeIntervalSeconds: number;
  /** Short and long side of the displayed picture, pixels (1080p and 2K DCI: 1080 × 2048). */
  maxShortSide: number;
  maxLongSide: number;
  /** Highest frame rate accepted, frames per second (H.264 level 4.2 carries 1080p60). */
  maxFrameRate: number;
  /**
   * Highest H.264 level accepted, as ffprobe reports it (level × 10: 51 is 5.1). Apple's HLS
   * authoring specification asks for High Profile Level 4.2 at most for the widest device
   * reach; browsers' MSE (hls.js plays what `MediaSource.isTypeSupported('avc1.PPCCLL')`
   * accepts: video-dev/hls.js#132) and current Apple devices decode 5.1, which phones write
   * for 1080p60 and 2K, so 5.1 is the bound (issue 18).
   */
  maxH264Level: number;
  /**
   * Highest overall video bitrate accepted, kbit/s: the copy keeps the phone's bitrate, and a
   * variant above this stalls on most mobile links (Apple's authoring spec tops 1080p H.264
   * at 7.8 Mb/s and lists no tier above ~16 Mb/s at any size; phones write 10–25 Mb/s at 1080p).
   */
  maxVideoKbps: number;
}

export const STANDARD_INPUT_RULES: StandardInputRules = { maxKeyframeIntervalSeconds: 4, maxShortSide: 1080, maxLongSide: 2048, maxFrameRate: 60, maxH264Level: 51, maxVideoKbps: 30_000 };

/** The probe facts the decision reads (ffprobe, plus the keyframe spacing of the first seconds). */
export type StandardInputFacts = Pick<
  ProbeResult,
  | 'width'
  | 'height'
  | 'rotation'
  | 'mirrored'
  | 'sampleAspectRatio'
  | 'videoCodec'
  | 'videoProfile'
  | 'videoLevel'
  | 'videoKbps'
  | 'fieldOrder'
  | 'audioCodec'
  | 'audioProfile'
  | 'hasAudio'
  | 'frameRate'
  | 'colorTransfer'
  | 'pixelFormat'
  | 'formatName'
  | 'keyframeIntervalSeconds'
  | 'openGop'
>;

export interface StandardInputDecision {
  standard: boolean;
  /** One sentence per rule that failed (empty when standard), stable enough to assert and show. */
  reasons: string[];
}

/** Containers whose H.264/AAC packets ffmpeg copies into MPEG-TS segments as they are. */
const COPYABLE_CONTAINERS = ['mov', 'mp4'];
/** 8-bit 4:2:0 pixel formats (`yuvj420p` is the full-range variant phones write). */
const EIGHT_BIT_420 = ['yuv420p', 'yuvj420p'];
const HDR_TRANSFERS = ['arib-std-b67', 'smpte2084'];
/**
 * H.264 profiles every HLS player decodes (ffprobe's names): Apple's HLS authoring
 * specification allows Baseline, Main and High; High 10, 4:2:2 and 4:4:4 profiles are not in
 * it, nor in what browsers' MSE accept for `avc1` (hls.js only hands the segments to MSE).
 */
const HLS_H264_PROFILES = ['Constrained Baseline', 'Baseline', 'Main', 'High'];
/**
 * AAC profiles HLS players decode (ffprobe's names): AAC-LC (`mp4a.40.2`), HE-AAC (`40.5`) and
 * HE-AACv2 (`40.29`) are in Apple's authoring specification and MSE accepts them in Chrome
 * and Firefox (flowplayer/flowplayer-hlsjs#3: `mp4a.40.2` and `40.5` pass
 * `isTypeSupported`); AAC-LD/ELD (FaceTime and Bluetooth capture) and Main/SSR/LTP do not.
 */
const HLS_AAC_PROFILES = ['LC', 'HE-AAC', 'HE-AACv2'];

/**
 * Decides whether `facts` describe standard input; each "no" says why. Pure: the rules are a
 * parameter so tests and configuration can tighten them. Beside codec, container, size and
 * GOP length it refuses what a copy would carry into segments players mishandle:
 * - open GOPs (`openGop`): an I-frame that is not an IDR is still flagged as a sync sample
 *   in MP4 (gpac/mp4box.js#506: the sync flag does not tell IDR from I), so a copy cuts a
 *   segment there, and the leading frames after it reference the previous segment: players
 *   that start or switch there show garbage or refuse it (videojs/mux.js#237,
 *   google/ExoPlayer#1291), and `#EXT-X-INDEPENDENT-SEGMENTS` would be false;
 * - interlaced video (ffprobe `field_order` `tt`/`bb`/`tb`/`bt`): Apple's authoring spec
 *   requires progressive video and browsers show the fields combed, as Immich deinterlaces;
 * - H.264 profiles and levels outside HLS_H264_PROFILES / `maxH264Level`, AAC profiles
 *   outside HLS_AAC_PROFILES, a bitrate above `maxVideoKbps`;
 * - a display matrix that mirrors (front cameras): MPEG-TS has no display matrix.
 */
export function standardInput(facts: StandardInputFacts, rules: StandardInputRules = STANDARD_INPUT_RULES): StandardInputDecision {
  const reasons: string[] = [];
  const formats = (facts.formatName ?? '').split(',');
  if (!COPYABLE_CONTAINERS.some((f) => formats.includes(f))) reasons.push(`container ${facts.formatName ?? 'unknown'} is not MP4/MOV`);
  if (facts.videoCodec !== 'h264') reasons.push(`video codec ${facts.videoCodec ?? 'unknown'} is not H.264`);
  else {
    if (!HLS_H264_PROFILES.includes(facts.videoProfile ?? '')) reasons.push(`H.264 profile ${facts.videoProfile ?? 'unknown'} is not Baseline, Main or High`);
    if (facts.videoLevel === undefined || facts.videoLevel > rules.maxH264Level) {
      reasons.push(`H.264 level ${facts.videoLevel === undefined ? 'unknown' : (facts.videoLevel / 10).toFixed(1)} exceeds ${(rules.maxH264Level / 10).toFixed(1)}`);
    }
  }
  if (facts.videoKbps !== undefined && facts.videoKbps > rules.maxVideoKbps) reasons.push(`video bitrate ${Math.round(facts.videoKbps)} kbit/s exceeds ${rules.maxVideoKbps}`);
  if (INTERLACED_FIELD_ORDERS.includes(facts.fieldOrder ?? '')) reasons.push(`interlaced video (field order ${facts.fieldOrder}) needs deinterlacing`);
  // ffprobe names the bit depth and chroma in one pixel format: yuv420p10le is 10-bit 4:2:0, yuv422p 8-bit 4:2:2.
  const pix = facts.pixelFormat ?? '';
  if (!EIGHT_BIT_420.includes(pix)) {
    if (/(9|10|12|14|16)(le|be)$/.test(pix)) reasons.push(`bit depth of ${pix} is not 8`);
    if (!/^yuvj?420p/.test(pix)) reasons.push(`chroma of ${pix || 'unknown pixel format'} is not 4:2:0`);
  }
  if (HDR_TRANSFERS.includes(facts.colorTransfer ?? '')) reasons.push(`HDR transfer ${facts.colorTransfer} needs tone mapping`);
  if (facts.keyframeIntervalSeconds === undefined) reasons.push('keyframe interval unknown');
  else if (facts.keyframeIntervalSeconds > rules.maxKeyframeIntervalSeconds) {
    reasons.push(`keyframe interval ${facts.keyframeIntervalSeconds.toFixed(2)} s exceeds ${rules.maxKeyframeIntervalSeconds} s`);
  }
  if (facts.openGop) reasons.push('open GOP: frames after a keyframe refer to frames before it');
  const shortSide = Math.min(facts.width, facts.height);
  const longSide = Math.max(facts.width, facts.height);
  if (shortSide > rules.maxShortSide || longSide > rules.maxLongSide) reasons.push(`resolution ${facts.width}x${facts.height} exceeds ${rules.maxLongSide}x${rules.maxShortSide}`);
  if (facts.sampleAspectRatio !== undefined && Math.abs(facts.sampleAspectRatio - 1) > 1e-3) reasons.push('pixels are not square');
  if ((facts.frameRate ?? 0) > rules.maxFrameRate) reasons.push(`frame rate ${Math.round(facts.frameRate!)} exceeds ${rules.maxFrameRate}`);
  if (facts.hasAudio && facts.audioCodec !== 'aac') reasons.push(`audio codec ${facts.audioCodec ?? 'unknown'} is not AAC`);
  else if (facts.hasAudio && !HLS_AAC_PROFILES.includes(facts.audioProfile ?? '')) reasons.push(`AAC profile ${facts.audioProfile ?? 'unknown'} is not LC or HE-AAC`);
  // A copied stream keeps its display matrix only in MP4; MPEG-TS has none, so players would show it sideways.
  if (facts.rotation !== 0) reasons.push(`rotation ${facts.rotation}° needs the picture turned`);
  if (facts.mirrored) reasons.push('display matrix mirrors the picture');
  return { standard: reasons.length === 0, reasons };
}
