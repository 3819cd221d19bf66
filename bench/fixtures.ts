import { execFile } from 'node:child_process';
import sharp from 'sharp';

export interface NoiseJpegOptions {
  /** Per-channel noise amplitude (0–128): more noise, bigger file. */
  noise: number;
  quality: number;
  seed: number;
}

/**
 * A photo-sized JPEG that does not compress trivially: a smooth colour field (gradients and
 * slow waves) with per-pixel xorshift noise on top, encoded by sharp. Carries camera EXIF.
 */
export async function noiseJpeg(width: number, height: number, o: Partial<NoiseJpegOptions> = {}): Promise<Buffer> {
  const { noise, quality, seed } = { noise: 16, quality: 90, seed: 1, ...o };
  const raw = Buffer.allocUnsafe(width * height * 3);
  let s = (seed * 2654435761) >>> 0 || 1;
  let i = 0;
  for (let y = 0; y < height; y++) {
    const wy = Math.cos(y / 131 + seed);
    for (let x = 0; x < width; x++) {
      const base = 128 + 60 * Math.sin(x / 97 + seed) * wy;
      for (let c = 0; c < 3; c++) {
        s ^= s << 13;
        s ^= s >>> 17;
        s ^= s << 5;
        const n = ((s >>> 0) & 255) - 128;
        raw[i++] = Math.max(0, Math.min(255, base + ((c + 1) * 30 * x) / width - (c * 30 * y) / height + (n * noise) / 128));
      }
    }
  }
  return sharp(raw, { raw: { width, height, channels: 3 } })
    .jpeg({ quality })
    .withExifMerge({ IFD0: { Make: 'BenchCam', Model: 'Noise 1' } })
    .toBuffer();
}

/** Runs a binary to completion; rejects with the tail of stderr on a non-zero exit. */
export function run(command: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { maxBuffer: 16 * 1024 * 1024 }, (err, _stdout, stderr) => {
      if (err) reject(new Error(`${command} failed: ${err.message} ${String(stderr).split('\n').slice(-4).join(' ')}`));
      else resolve();
    });
  });
}

/** An H.264/AAC MP4 (moov first) from ffmpeg's lavfi testsrc2 + sine, written to `out`. */
export async function lavfiClip(ffmpegPath: string, out: string, seconds: number, width = 1920, height = 1080, fps = 30): Promise<void> {
  await run(ffmpegPath, [
    '-hide_banner', '-nostdin', '-y',
    '-f', 'lavfi', '-i', `testsrc2=size=${width}x${height}:rate=${fps}:duration=${seconds}`,
    '-f', 'lavfi', '-i', `sine=frequency=440:duration=${seconds}`,
    '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-shortest', '-movflags', '+faststart', out,
  ]);
}

export const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
