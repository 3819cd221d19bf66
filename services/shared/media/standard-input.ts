import type { ProbeResult } from './hls-args';

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
}

export const STANDARD_INPUT_RULES: StandardInputRules = { maxKeyframeIntervalSeconds: 4, maxShortSide: 1080, maxLongSide: 2048, maxFrameRate: 60 };

/** The probe facts the decision reads (ffprobe, plus the keyframe spacing of the first seconds). */
export type StandardInputFacts = Pick<
  ProbeResult,
  'width' | 'height' | 'rotation' | 'sampleAspectRatio' | 'videoCodec' | 'audioCodec' | 'hasAudio' | 'frameRate' | 'colorTransfer' | 'pixelFormat' | 'formatName' | 'keyframeIntervalSeconds'
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
 * Decides whether `facts` describe standard input; each "no" says why. Pure: the rules are a
 * parameter so tests and configuration can tighten them.
 */
export function standardInput(facts: StandardInputFacts, rules: StandardInputRules = STANDARD_INPUT_RULES): StandardInputDecision {
  const reasons: string[] = [];
  const formats = (facts.formatName ?? '').split(',');
  if (!COPYABLE_CONTAINERS.some((f) => formats.includes(f))) reasons.push(`container ${facts.formatName ?? 'unknown'} is not MP4/MOV`);
  if (facts.videoCodec !== 'h264') reasons.push(`video codec ${facts.videoCodec ?? 'unknown'} is not H.264`);
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
  const shortSide = Math.min(facts.width, facts.height);
  const longSide = Math.max(facts.width, facts.height);
  if (shortSide > rules.maxShortSide || longSide > rules.maxLongSide) reasons.push(`resolution ${facts.width}x${facts.height} exceeds ${rules.maxLongSide}x${rules.maxShortSide}`);
  if (facts.sampleAspectRatio !== undefined && Math.abs(facts.sampleAspectRatio - 1) > 1e-3) reasons.push('pixels are not square');
  if ((facts.frameRate ?? 0) > rules.maxFrameRate) reasons.push(`frame rate ${Math.round(facts.frameRate!)} exceeds ${rules.maxFrameRate}`);
  if (facts.hasAudio && facts.audioCodec !== 'aac') reasons.push(`audio codec ${facts.audioCodec ?? 'unknown'} is not AAC`);
  // A copied stream keeps its display matrix only in MP4; MPEG-TS has none, so players would show it sideways.
  if (facts.rotation !== 0) reasons.push(`rotation ${facts.rotation}° needs the picture turned`);
  return { standard: reasons.length === 0, reasons };
}
