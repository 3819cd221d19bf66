import sharp from 'sharp';
import { makeThumbnails } from '../services/shared/media/images';
import { noiseJpeg } from './fixtures';
const cpu = async (label: string, fn: () => Promise<unknown>, n = 3) => {
  const c0 = process.cpuUsage(); const t0 = Date.now();
  for (let i = 0; i < n; i++) await fn();
  const c = process.cpuUsage(c0);
  console.log(label.padEnd(40), 'cpu', ((c.user + c.system) / 1000 / n).toFixed(0), 'ms  wall', ((Date.now() - t0) / n).toFixed(0), 'ms');
};
(async () => {
  const imgs = await Promise.all([[2400, 1800, 40, 1], [3000, 2000, 44, 2], [3200, 2400, 44, 3], [3600, 2400, 48, 4]].map(([w, h, n, s]) => noiseJpeg(w!, h!, { noise: n, quality: 92, seed: s })));
  const big = await noiseJpeg(4000, 3000, { noise: 24, quality: 90, seed: 12 });
  for (const [i, img] of [...imgs, big].entries()) {
    await cpu(`makeThumbnails #${i} ${(img.length / 1e6).toFixed(1)}MB`, () => makeThumbnails(img, [150, 300, 600, 1200]));
    await cpu(`  decode→1200 raw only`, () => sharp(img).rotate().resize({ width: 1200 }).raw().toBuffer());
    const base = await sharp(img).rotate().resize({ width: 1200 }).raw().toBuffer({ resolveWithObject: true });
    const raw = { raw: { width: base.info.width, height: base.info.height, channels: base.info.channels } };
    await cpu(`  encode all webp q80`, async () => { for (const w of [150, 300, 600, 1200]) await sharp(base.data, raw).resize({ width: w }).webp({ quality: 80 }).toBuffer(); });
    await cpu(`  encode all jpeg mozjpeg`, async () => { for (const w of [150, 300, 600, 1200]) await sharp(base.data, raw).resize({ width: w }).jpeg({ quality: 82, mozjpeg: true }).toBuffer(); });
    await cpu(`  encode all jpeg plain`, async () => { for (const w of [150, 300, 600, 1200]) await sharp(base.data, raw).resize({ width: w }).jpeg({ quality: 82 }).toBuffer(); });
  }
})();
