import sharp from 'sharp';
import { gifEnding, gifIsCutShort } from '../../services/shared/media/gif';

/** An animated GIF of `frames` frames of 64×48 (each frame a graphic control extension and an image, plus the loop extension). */
async function animatedGif(frames: number): Promise<Buffer> {
  const pixels = Buffer.concat(
    Array.from({ length: frames }, (_, i) => {
      const frame = Buffer.alloc(64 * 48 * 3);
      for (let p = 0; p < frame.length; p++) frame[p] = (p * 31 + i * 67) % 256;
      return frame;
    }),
  );
  return sharp(pixels, { raw: { width: 64, height: 48 * frames, channels: 3, pageHeight: 48 } })
    .gif({ loop: 0, delay: Array(frames).fill(100) })
    .toBuffer();
}

describe('a GIF cut short', () => {
  let gif: Buffer;
  beforeAll(async () => {
    gif = await animatedGif(6);
    expect((await sharp(gif).metadata()).pages).toBe(6);
    expect(gif[gif.length - 1]).toBe(0x3b);
  });

  it('is whole when complete, without its trailer, or with bytes after the trailer', () => {
    expect(gifIsCutShort(gif)).toBe(false);
    expect(gifIsCutShort(gif.subarray(0, gif.length - 1))).toBe(false);
    expect(gifIsCutShort(Buffer.concat([gif, Buffer.from('appended by some uploader')]))).toBe(false);
    // Which of these lacks the trailer (publication adds it back).
    expect([gif, gif.subarray(0, gif.length - 1), Buffer.concat([gif, Buffer.from('x')]), gif.subarray(0, 500)].map(gifEnding)).toEqual(['whole', 'no-trailer', 'whole', 'cut']);
  });

  it.each([0.3, 0.5, 0.7, 0.9, 0.99])('is cut at %s of its length (inside a later frame: libvips still decodes it)', async (fraction) => {
    const cut = gif.subarray(0, Math.floor(gif.length * fraction));
    // The decoder accepts it: why the check exists.
    await expect(sharp(cut, { failOn: 'error' }).raw().toBuffer()).resolves.toBeInstanceOf(Buffer);
    expect(gifIsCutShort(cut)).toBe(true);
  });

  it('is cut inside the screen descriptor or the colour table', () => {
    expect(gifIsCutShort(gif.subarray(0, 10))).toBe(true);
    expect(gifIsCutShort(gif.subarray(0, 20))).toBe(true);
  });

  it('is cut at every byte except the few between blocks', () => {
    let between = 0;
    for (let length = 6; length < gif.length; length++) if (!gifIsCutShort(gif.subarray(0, length))) between++;
    // Between blocks: after the colour table, after each extension and each image, before the trailer.
    // Six frames have at most 6 × 2 + 2 such points, out of more than a thousand cut positions.
    expect(gif.length).toBeGreaterThan(1000);
    expect(between).toBeGreaterThan(0);
    expect(between).toBeLessThanOrEqual(6 * 2 + 2);
  });

  it('is whole for a single-frame GIF and says nothing of other formats', async () => {
    const still = await sharp({ create: { width: 40, height: 30, channels: 3, background: '#a33' } }).gif().toBuffer();
    expect(gifIsCutShort(still)).toBe(false);
    expect(gifIsCutShort(still.subarray(0, still.length - 5))).toBe(true);
    expect(gifIsCutShort(await sharp(still).png().toBuffer())).toBe(false);
    expect(gifIsCutShort(Buffer.from('GIF8'))).toBe(false);
  });
});
