import sharp from 'sharp';
import { ffmpeg as ffmpegTools } from '../../devstack/tools';
import { decodeHeic } from '../../services/shared/media/heic-decoder';
import { derivedPrefix } from '../../services/shared/media-types';
import * as corpus from '../fixtures/corpus-images';
import { testVideo } from '../fixtures/media';
import { startPlatform, uniqueUser, uploadFile, waitForStatus, type Platform } from '../harness/platform';

/** What a user should see for one kind of input: final status, failure code, thumbnail sizes. */
interface Expected {
  status: 'READY' | 'REJECTED';
  code?: string;
  /** [width, height] of every thumbnail size (each as WebP and JPEG). */
  thumbnails?: Array<[number, number]>;
  metadata?: Record<string, unknown>;
  /** The largest JPEG thumbnail shows the test picture upright (red block top left). */
  upright?: boolean;
  /** The red block is sRGB red (255, 0, 0) in the thumbnail: the file's colour profile was applied. */
  srgbRed?: boolean;
}

interface Case {
  name: string;
  make: () => Promise<Buffer> | Buffer;
  fileType: string;
  mediaType?: 'POST_IMAGE' | 'PROFILE_IMAGE';
  expected: Expected;
}

const landscape400: Array<[number, number]> = [[150, 90], [300, 180]];
const heic640: Array<[number, number]> = [[150, 113], [300, 225], [600, 450]];

const CASES: Case[] = [
  {
    name: 'NUL-padded EXIF Make/Model ("Canon" + 11 NULs)',
    make: corpus.nulPaddedExifJpeg,
    fileType: 'image/jpeg',
    expected: { status: 'READY', thumbnails: [[150, 94], [300, 188]], metadata: { camera: 'Canon EOS 5D', width: 320, height: 200 } },
  },
  {
    name: 'a 60,000-character ImageDescription with control characters and a UTF-16 UserComment with a lone surrogate',
    make: corpus.hostileExifTextJpeg,
    fileType: 'image/jpeg',
    expected: { status: 'READY', thumbnails: [[150, 94], [300, 188]] },
  },
  {
    name: 'a UserComment whose UTF-16 holds a lone surrogate',
    make: corpus.loneSurrogateCommentJpeg,
    fileType: 'image/jpeg',
    expected: { status: 'READY', thumbnails: [[150, 94], [300, 188]], metadata: { camera: 'PhoneMaker', description: 'café !' } },
  },
  { name: 'an XMP packet of binary junk', make: corpus.xmpJunkJpeg, fileType: 'image/jpeg', expected: { status: 'READY', thumbnails: [[150, 94], [300, 188]] } },
  ...[1, 2, 3, 4, 5, 6, 7, 8].map(
    (orientation): Case => ({
      name: `EXIF orientation ${orientation}`,
      make: () => corpus.orientedJpeg(orientation),
      fileType: 'image/jpeg',
      expected: { status: 'READY', thumbnails: landscape400, upright: true, metadata: { width: 400, height: 240, orientation } },
    }),
  ),
  { name: 'a CMYK JPEG', make: corpus.cmykJpeg, fileType: 'image/jpeg', expected: { status: 'READY', thumbnails: landscape400, upright: true } },
  { name: 'a 16-bit PNG', make: corpus.png16bit, fileType: 'image/png', expected: { status: 'READY', thumbnails: landscape400, upright: true } },
  {
    name: 'an animated GIF (first frame)',
    make: () => corpus.animated(ffmpegTools().ffmpeg, 'gif'),
    fileType: 'image/gif',
    expected: { status: 'READY', thumbnails: [[150, 113], [300, 225]], metadata: { width: 320, height: 240 } },
  },
  // libvips decodes the frames a cut GIF has and says nothing: its first frame (the thumbnail) is
  // whole, the animation is not. Refused like a cut JPEG; a GIF that only lacks its trailer byte is whole.
  {
    name: 'an animated GIF cut inside a later frame',
    make: async () => {
      const gif = await corpus.animated(ffmpegTools().ffmpeg, 'gif');
      return gif.subarray(0, Math.floor(gif.length * 0.7));
    },
    fileType: 'image/gif',
    expected: { status: 'REJECTED', code: 'UNDECODABLE_MEDIA' },
  },
  {
    name: 'an animated GIF without its trailer byte',
    make: async () => {
      const gif = await corpus.animated(ffmpegTools().ffmpeg, 'gif');
      return gif.subarray(0, gif.length - 1);
    },
    fileType: 'image/gif',
    expected: { status: 'READY', thumbnails: [[150, 113], [300, 225]], metadata: { width: 320, height: 240 } },
  },
  {
    name: 'an animated WebP (first frame)',
    make: () => corpus.animated(ffmpegTools().ffmpeg, 'webp'),
    fileType: 'image/webp',
    expected: { status: 'READY', thumbnails: [[150, 113], [300, 225]], metadata: { width: 320, height: 240 } },
  },
  // A file that ends mid-scan is a broken copy (an export or transfer cut short): it is
  // refused with a reason the user can act on (re-export it), not published half grey.
  { name: 'a JPEG cut 50 bytes before its end-of-image marker', make: () => corpus.jpegWithoutEndMarker(50), fileType: 'image/jpeg', expected: { status: 'REJECTED', code: 'UNDECODABLE_MEDIA' } },
  // Complete scan data without the final marker is a whole picture (old iPhones write these).
  { name: 'a whole JPEG without its end-of-image marker', make: () => corpus.jpegWithoutEndMarker(), fileType: 'image/jpeg', expected: { status: 'READY', thumbnails: landscape400, upright: true, metadata: { width: 400, height: 240 } } },
  { name: 'a JPEG cut at 60 %', make: corpus.truncatedJpeg, fileType: 'image/jpeg', expected: { status: 'REJECTED', code: 'UNDECODABLE_MEDIA' } },
  { name: 'a 30000×30000 PNG decompression bomb', make: () => corpus.pixelBombPng(), fileType: 'image/png', expected: { status: 'REJECTED', code: 'UNDECODABLE_MEDIA' } },
  {
    name: 'an HEVC-coded HEIC (iPhone)',
    make: () => corpus.heic(),
    fileType: 'image/heic',
    expected: { status: 'READY', thumbnails: heic640, upright: true, metadata: { width: 640, height: 480, format: 'heic', camera: 'HeicCam' } },
  },
  {
    name: 'an HEVC-coded HEIC declared as image/heif',
    make: () => corpus.heic(),
    fileType: 'image/heif',
    expected: { status: 'READY', thumbnails: heic640, upright: true, metadata: { format: 'heic' } },
  },
  {
    name: 'an HEIC in Display P3 with its ICC profile (iPhone)',
    make: () => corpus.heic({ displayP3: true }),
    fileType: 'image/heic',
    expected: { status: 'READY', thumbnails: heic640, upright: true, srgbRed: true },
  },
  {
    name: 'a 10-bit HEIC',
    make: () => corpus.heic({ width: 320, height: 200, tenBit: true }),
    fileType: 'image/heic',
    expected: { status: 'READY', thumbnails: [[150, 94], [300, 188]], upright: true, metadata: { width: 320, height: 200 } },
  },
  ...[3, 6, 8].map(
    (orientation): Case => ({
      // No irot/imir in the file: the EXIF orientation is the only record of how it stands.
      name: `an HEIC turned by EXIF orientation ${orientation} only (Samsung)`,
      make: () => corpus.heic({ exifOrientation: orientation }),
      fileType: 'image/heic',
      expected: { status: 'READY', thumbnails: heic640, upright: true, metadata: { width: 640, height: 480, orientation } },
    }),
  ),
  {
    name: 'an AVIF turned by EXIF orientation 6 only',
    make: () => corpus.avifWithExifOrientation(6),
    fileType: 'image/avif',
    expected: { status: 'READY', thumbnails: heic640, upright: true, metadata: { width: 640, height: 480, format: 'avif' } },
  },
  {
    name: 'an HEIC profile image',
    make: () => corpus.heic(),
    fileType: 'image/heic',
    mediaType: 'PROFILE_IMAGE',
    expected: { status: 'READY', thumbnails: [[150, 113], [300, 225]], upright: true },
  },
  {
    name: 'an AVIF',
    make: () => corpus.avif(),
    fileType: 'image/avif',
    expected: { status: 'READY', thumbnails: heic640, upright: true, metadata: { width: 640, height: 480, format: 'avif' } },
  },
  { name: 'an AVIF profile image', make: () => corpus.avif(), fileType: 'image/avif', mediaType: 'PROFILE_IMAGE', expected: { status: 'READY', thumbnails: [[150, 113], [300, 225]] } },
  ...(['mif1', 'miaf', 'avis'] as const).map(
    (brand): Case => ({
      // libvips reads `mif1` as HEVC and opens neither `miaf` nor `avis` (sharp #2504): the codec comes from the item types.
      name: `an AVIF whose major brand is ${brand} (compatible: mif1 avif miaf)`,
      make: async () => corpus.withMajorBrand(await corpus.avif(), brand),
      fileType: 'image/avif',
      expected: { status: 'READY', thumbnails: heic640, upright: true, metadata: { width: 640, height: 480, format: 'avif' } },
    }),
  ),
  {
    name: 'an AVIF profile image whose major brand is mif1',
    make: async () => corpus.withMajorBrand(await corpus.avif(), 'mif1'),
    fileType: 'image/avif',
    mediaType: 'PROFILE_IMAGE',
    expected: { status: 'READY', thumbnails: [[150, 113], [300, 225]], upright: true, metadata: { format: 'avif' } },
  },
  ...(['mif1', 'miaf'] as const).map(
    (brand): Case => ({
      name: `an HEVC-coded HEIC whose major brand is ${brand}`,
      make: async () => corpus.withMajorBrand(await corpus.heic(), brand),
      fileType: 'image/heic',
      expected: { status: 'READY', thumbnails: heic640, upright: true, metadata: { width: 640, height: 480, format: 'heic' } },
    }),
  ),
  // WebP stops at 16383 px a side: a rendition that would be taller is narrowed to fit, keeping
  // the aspect ratio; one that would be thinner than 1 px stays 1 px wide.
  {
    name: 'a 1440×24000 scrolling screenshot (JPEG)',
    make: () => corpus.extremePicture(1440, 24_000, 'jpeg'),
    fileType: 'image/jpeg',
    expected: { status: 'READY', thumbnails: [[150, 2500], [300, 5000], [600, 10_000], [983, 16_383]], upright: true, metadata: { width: 1440, height: 24_000 } },
  },
  {
    name: 'a 300×17000 PNG profile image',
    make: () => corpus.extremePicture(300, 17_000, 'png'),
    fileType: 'image/png',
    mediaType: 'PROFILE_IMAGE',
    expected: { status: 'READY', thumbnails: [[150, 8500], [289, 16_383]], upright: true, metadata: { width: 300, height: 17_000 } },
  },
  {
    name: 'a 300×17000 PNG',
    make: () => corpus.extremePicture(300, 17_000, 'png'),
    fileType: 'image/png',
    expected: { status: 'READY', thumbnails: [[150, 8500], [289, 16_383]], upright: true },
  },
  {
    // Immich #9509: tall and wide HEICs; this one decodes (libheif wasm) and its 600 is narrowed.
    name: 'a 700×20000 HEIC',
    make: () => corpus.heic({ width: 700, height: 20_000 }),
    fileType: 'image/heic',
    expected: { status: 'READY', thumbnails: [[150, 4286], [300, 8571], [573, 16_383]], upright: true, metadata: { width: 700, height: 20_000, format: 'heic' } },
  },
  {
    name: 'a 20000×360 panorama (JPEG)',
    make: () => corpus.extremePicture(20_000, 360, 'jpeg'),
    fileType: 'image/jpeg',
    expected: { status: 'READY', thumbnails: [[150, 3], [300, 5], [600, 11], [1200, 22]], metadata: { width: 20_000, height: 360 } },
  },
  ...(['POST_IMAGE', 'PROFILE_IMAGE'] as const).flatMap((mediaType): Case[] => [
    {
      name: `a 1×60000 PNG as ${mediaType}`,
      make: () => corpus.extremePicture(1, 60_000, 'png'),
      fileType: 'image/png',
      mediaType,
      expected: { status: 'READY', thumbnails: [[1, 16_383]], metadata: { width: 1, height: 60_000 } },
    },
    {
      name: `a 1×30000 JPEG as ${mediaType}`,
      make: () => corpus.extremePicture(1, 30_000, 'jpeg'),
      fileType: 'image/jpeg',
      mediaType,
      expected: { status: 'READY', thumbnails: [[1, 16_383]] },
    },
    {
      name: `a 60000×1 PNG as ${mediaType}`,
      make: () => corpus.extremePicture(60_000, 1, 'png'),
      fileType: 'image/png',
      mediaType,
      expected: { status: 'READY', thumbnails: (mediaType === 'POST_IMAGE' ? [150, 300, 600, 1200] : [150, 300]).map((w): [number, number] => [w, 1]) },
    },
  ]),
  { name: 'an AVIF declared as image/heic', make: () => corpus.avif(), fileType: 'image/heic', expected: { status: 'REJECTED', code: 'CONTENT_MISMATCH' } },
  { name: 'an HEIC declared as image/avif', make: () => corpus.heic(), fileType: 'image/avif', expected: { status: 'REJECTED', code: 'CONTENT_MISMATCH' } },
  { name: 'an MP4 declared as image/heic', make: () => testVideo(ffmpegTools().ffmpeg, 1, 144), fileType: 'image/heic', expected: { status: 'REJECTED', code: 'CONTENT_MISMATCH' } },
];

/**
 * Red block top left, blue elsewhere: the picture is upright. Dominance, not exact values:
 * a CMYK JPEG without a profile goes through a generic CMYK profile and shifts its colours.
 */
async function expectUpright(jpeg: Buffer) {
  const { data, info } = await sharp(jpeg).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const at = (x: number, y: number) => Array.from(data.subarray((y * info.width + x) * info.channels, (y * info.width + x) * info.channels + 3));
  const [r1, g1, b1] = at(4, 4);
  const [r2, g2, b2] = at(info.width - 5, info.height - 5);
  const topLeftRed = r1! > g1! + 60 && r1! > b1! + 60;
  const bottomRightBlue = b2! > r2! + 60 && b2! > g2! + 60;
  expect({ topLeftRed, bottomRightBlue }).toEqual({ topLeftRed: true, bottomRightBlue: true });
}

describe('real-world images end to end (fixtures made at test time)', () => {
  let p: Platform;
  beforeAll(async () => {
    p = await startPlatform({}, { videoWorker: false });
  });
  afterAll(() => p?.stop());

  it("scans a decompression bomb once although clamd's verdict comes long after its last byte (the scan heartbeats while it waits)", async () => {
    const user = uniqueUser('bomb-scan');
    const session = await uploadFile(p, user, corpus.pixelBombPng(20_000, 8), 'image/png', 'POST_IMAGE', 'bomb.png');
    const media = await waitForStatus(p, user, session.mediaId, ['READY', 'REJECTED', 'FAILED', 'EXPIRED'], 240_000);
    expect(media.status).toBe('REJECTED');
    const { events } = await p.temporal.workflow.getHandle(`media-upload/${session.mediaId}`).fetchHistory();
    const scheduled = new Map((events ?? []).filter((e) => e.activityTaskScheduledEventAttributes).map((e) => [String(e.eventId), e.activityTaskScheduledEventAttributes!.activityType?.name]));
    const scans = (events ?? []).filter((e) => scheduled.get(String(e.activityTaskStartedEventAttributes?.scheduledEventId)) === 'scanOriginal');
    expect(scans.map((e) => e.activityTaskStartedEventAttributes!.attempt)).toEqual([1]);
    const completed = (events ?? []).find((e) => scheduled.get(String(e.activityTaskCompletedEventAttributes?.scheduledEventId)) === 'scanOriginal');
    expect(completed).toBeDefined();
    // How long clamd took on this machine (over 15 s, the heartbeat timeout, on a 2-core CI runner).
    console.log(`clamd verdict on the 20000×20000 8-bit PNG after ${Number(completed!.eventTime!.seconds) - Number(scans[0]!.eventTime!.seconds)} s`);
  }, 300_000);

  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const user = uniqueUser('corpus');
    const file = await c.make();
    const session = await uploadFile(p, user, file, c.fileType, c.mediaType ?? 'POST_IMAGE', 'photo');
    const media = await waitForStatus(p, user, session.mediaId, ['READY', 'REJECTED', 'FAILED', 'EXPIRED']);
    expect({ status: media.status, code: media.failureReason?.split(':')[0] }).toEqual({ status: c.expected.status, code: c.expected.code });
    // The read model (the API presents a public subset of it).
    const row = await p.media.findById(session.mediaId);
    if (c.expected.metadata) expect(row?.metadata).toMatchObject(c.expected.metadata);
    if (c.expected.status !== 'READY') {
      expect(await p.storage.head(p.config.S3_INCOMING_BUCKET, session.storageKey)).toBeUndefined();
      expect(await p.storage.head(p.config.S3_MEDIA_BUCKET, session.storageKey)).toBeUndefined();
      expect(await p.storage.listKeys(p.config.S3_MEDIA_BUCKET, derivedPrefix(session.mediaId))).toEqual([]);
      return;
    }
    const sizes = media.thumbnails.map((t: { width: number; height: number; format: string }) => `${t.width}x${t.height}.${t.format}`).sort();
    expect(sizes).toEqual(c.expected.thumbnails!.flatMap(([w, h]) => [`${w}x${h}.jpeg`, `${w}x${h}.webp`]).sort());
    // Every rendition decodes whole, is what the read model says, and keeps to its format's limits.
    for (const t of media.thumbnails as Array<{ width: number; height: number; format: 'webp' | 'jpeg'; url: string }>) {
      const { info } = await sharp(Buffer.from(await (await fetch(t.url)).arrayBuffer()), { failOn: 'warning' }).raw().toBuffer({ resolveWithObject: true });
      const limit = t.format === 'webp' ? 16_383 : 65_535;
      const within = info.width >= 1 && info.height >= 1 && info.width <= limit && info.height <= limit;
      expect({ format: t.format, width: info.width, height: info.height, within }).toEqual({ format: t.format, width: t.width, height: t.height, within: true });
    }
    const largest = media.thumbnails.filter((t: { format: string }) => t.format === 'jpeg').sort((a: { width: number }, b: { width: number }) => b.width - a.width)[0];
    const jpeg = Buffer.from(await (await fetch(largest.url)).arrayBuffer());
    const meta = await sharp(jpeg).metadata();
    expect({ width: meta.width, height: meta.height, space: meta.space, exif: meta.exif }).toEqual({ width: largest.width, height: largest.height, space: 'srgb', exif: undefined });
    if (c.expected.upright) await expectUpright(jpeg);
    if (c.expected.srgbRed) {
      const { data } = await sharp(jpeg).removeAlpha().raw().toBuffer({ resolveWithObject: true });
      // Without the profile applied, P3 red (234, 51, 35 as values) would show here.
      const at = (8 * largest.width + 8) * 3;
      const [r, g, b] = Array.from(data.subarray(at, at + 3));
      expect({ r: r! > 240, g: g! < 25, b: b! < 25 }).toEqual({ r: true, g: true, b: true });
    }
    // Whatever the file carried, the read model holds clean, bounded text.
    const stored = JSON.stringify(row?.metadata);
    expect(stored).not.toMatch(/\\u00[01][0-9a-f]|\\ud[89a-f][0-9a-f]{2}/i);
    for (const value of Object.values(row?.metadata ?? {})) if (typeof value === 'string') expect(value.length).toBeLessThanOrEqual(2000);
  });

  it('keeps metadata text clean whoever writes it: NUL, lone surrogates and huge strings through mergeMetadata', async () => {
    const user = uniqueUser('merge');
    const session = await uploadFile(p, user, await corpus.cmykJpeg(), 'image/jpeg', 'POST_IMAGE', 'a.jpg');
    await waitForStatus(p, user, session.mediaId, ['READY']);
    await p.media.mergeMetadata(session.mediaId, { tags: { title: 'T\u0000i\ud800t\u0007le', encoder: 'x'.repeat(100_000) }, comment: 'ok 😀' });
    const row = await p.media.findById(session.mediaId);
    expect(row?.metadata).toMatchObject({ tags: { title: 'Title' }, comment: 'ok 😀' });
    expect((row?.metadata.tags as { encoder: string }).encoder).toHaveLength(2000);
  });

  it.each([
    ['a NUL', 'a\u0000.jpg'],
    ['a control character', 'a\u001b[31m.jpg'],
    ['a C1 control', 'a\u0085.jpg'],
    ['a lone surrogate', 'a\ud800.jpg'],
  ])('refuses a file name with %s (400 VALIDATION_FAILED, nothing created)', async (_name, fileName) => {
    const user = uniqueUser('name');
    const res = await p.call(user, '/media/upload-session', { body: { fileName, fileType: 'image/jpeg', fileSize: 1000, mediaType: 'POST_IMAGE' } });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('VALIDATION_FAILED');
    expect((await p.call(user, '/media')).body.items).toEqual([]);
  });

  it('decodes an iPhone-size HEIC (4032×3024) with the event loop free: heartbeats and other tasks go on meanwhile', async () => {
    const input = await corpus.heic({ width: 4032, height: 3024 });
    // libheif's wasm is loaded once already: what follows is the decode alone.
    await decodeHeic(await corpus.heic());
    let turns = 0;
    const ticking = setInterval(() => turns++, 1);
    try {
      const decoded = await decodeHeic(input);
      expect({ width: decoded.width, height: decoded.height, bytes: decoded.data.length }).toEqual({ width: 4032, height: 3024, bytes: 4032 * 3024 * 4 });
    } finally {
      clearInterval(ticking);
    }
    // On the activity's thread the decode ran in one piece and the loop turned once at most.
    expect(turns).toBeGreaterThan(10);
  });

  it('keeps a Unicode file name as given', async () => {
    const user = uniqueUser('uname');
    const session = await uploadFile(p, user, await corpus.avif(), 'image/avif', 'POST_IMAGE', 'Fête 😀 IMG_0001.avif');
    const media = await waitForStatus(p, user, session.mediaId, ['READY', 'REJECTED', 'FAILED']);
    expect({ status: media.status, fileName: media.fileName }).toEqual({ status: 'READY', fileName: 'Fête 😀 IMG_0001.avif' });
  });
});
