import sharp from 'sharp';
import { makeThumbnails, UndecodableImageError } from '../../services/shared/media/images';

/** A detailed 1280×720 JPEG (noise: entropy data all the way), as a camera writes one. */
const detailedJpeg = () =>
  sharp({ create: { width: 1280, height: 720, channels: 3, background: '#808080', noise: { type: 'gaussian', mean: 128, sigma: 40 } } })
    .jpeg({ quality: 90 })
    .toBuffer();

/**
 * A worker processes several images at once (activity concurrency). A JPEG cut in its scan
 * data must be refused every time, whatever else decodes beside it: libjpeg reports the cut
 * with a single warning whose error text other images finishing on other threads can clear
 * (before the fix, 2 of 8 cut copies decoded at once were published half grey).
 */
describe('a JPEG cut in its scan data, decoded beside other images', () => {
  let whole: Buffer;
  beforeAll(async () => {
    whole = await detailedJpeg();
  });

  it.each([0.44, 0.8, 0.99])('is refused every time when cut at %s of its bytes, 12 copies at once with whole images', async (fraction) => {
    const cut = whole.subarray(0, Math.floor(whole.length * fraction));
    for (let round = 0; round < 3; round++) {
      const outcomes = await Promise.all([
        ...Array.from({ length: 12 }, () => makeThumbnails(cut, [150, 300, 600, 1200]).then(() => 'READY', (err: unknown) => (err instanceof UndecodableImageError ? 'UNDECODABLE' : String(err)))),
        ...Array.from({ length: 4 }, () => makeThumbnails(whole, [150, 300, 600, 1200]).then(() => 'whole READY')),
      ]);
      expect(outcomes).toEqual([...Array(12).fill('UNDECODABLE'), ...Array(4).fill('whole READY')]);
    }
  });

  it('publishes a whole JPEG that lacks only its end-of-image marker every time, 12 at once', async () => {
    const withoutEndMarker = whole.subarray(0, whole.length - 2);
    const outcomes = await Promise.all(Array.from({ length: 12 }, () => makeThumbnails(withoutEndMarker, [150, 1200]).then((r) => r.thumbnails.length)));
    expect(outcomes).toEqual(Array(12).fill(4));
  });
});
