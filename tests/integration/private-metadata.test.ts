import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { ExifTool } from 'exiftool-vendored';
import sharp from 'sharp';
import { ffmpeg as ffmpegTools } from '../../devstack/tools';
import { decodeHeic } from '../../services/shared/media/heic-decoder';
import { createActivities } from '../../activities';
import { PRIVATE_METADATA_READ_ARGS, PrivateMetadataError, privateTagsIn, type MetadataScrubber } from '../../services/shared/media/private-metadata';
import * as corpus from '../fixtures/corpus-images';
import { generate } from '../fixtures/corpus-video';
import { realJpeg } from '../fixtures/media';
import { startPlatform, uniqueUser, uploadFile, waitForStatus, type Platform } from '../harness/platform';

// A reader of its own: not the scrubber's processes.
const exiftool = new ExifTool({ maxProcs: 1, useMWG: false });

/** What a phone, an editor or a drone writes about where and what: every place a location or caption hides. */
const PRIVATE_TAGS = {
  GPSLatitude: 48.8584,
  GPSLatitudeRef: 'N',
  GPSLongitude: 2.2945,
  GPSLongitudeRef: 'E',
  ImageDescription: 'at home, 12 Secret Street',
  'XMP-exif:GPSLatitude': '48.8584 N',
  'XMP-photoshop:City': 'Paris',
  'XMP-iptcExt:LocationShownCity': 'Paris',
  'XMP-dc:Description': 'my flat',
  'IPTC:City': 'Paris',
  'IPTC:Caption-Abstract': 'my flat',
} as const;

/** `data` with the tags written by ExifTool (as a phone or an editor would). */
async function withTags(data: Buffer, ext: string, tags: Record<string, unknown>): Promise<Buffer> {
  const dir = await mkdtemp(join(tmpdir(), 'private-metadata-'));
  try {
    const file = join(dir, `in.${ext}`);
    await writeFile(file, data);
    await exiftool.write(file, tags, { writeArgs: ['-overwrite_original'] });
    return await readFile(file);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** ExifTool's view of `data`, embedded documents included (`Group:Tag` keys, `Doc1:Group:Tag` for those). */
async function tagsOf(data: Buffer, ext: string): Promise<Record<string, unknown>> {
  const dir = await mkdtemp(join(tmpdir(), 'private-metadata-'));
  try {
    const file = join(dir, `out.${ext}`);
    await writeFile(file, data);
    return await exiftool.readRaw(file, { readArgs: [...PRIVATE_METADATA_READ_ARGS, '-n'] });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Decoded pixels as stored (no orientation applied): what "losslessly" is measured by. */
async function storedPixels(data: Buffer, ext: string): Promise<{ width: number; height: number; data: Buffer }> {
  if (ext === 'heic') {
    const decoded = await decodeHeic(data);
    return { width: decoded.width, height: decoded.height, data: Buffer.from(decoded.data) };
  }
  const { data: pixels, info } = await sharp(data, { animated: ext === 'gif' }).raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: pixels };
}

/** A Google-style motion photo: a JPEG with its clip appended, the clip tagged with where it was shot (QuickTime ©xyz). */
async function motionPhoto(): Promise<Buffer> {
  const dir = await mkdtemp(join(tmpdir(), 'private-metadata-'));
  try {
    const clip = join(dir, 'clip.mp4');
    await new Promise<void>((resolve, reject) =>
      execFile(
        ffmpegTools().ffmpeg,
        ['-hide_banner', '-nostdin', '-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=10:duration=1', '-c:v', 'libx264', '-preset', 'ultrafast', '-metadata', `location=${CLIP_LOCATION}`, clip],
        (err) => (err ? reject(err) : resolve()),
      ),
    );
    return Buffer.concat([await corpus.orientedJpeg(1), await readFile(clip)]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
const CLIP_LOCATION = '+48.8584+002.2945/';

interface Case {
  name: string;
  ext: string;
  fileType: string;
  make: () => Promise<Buffer>;
  /** EXIF Orientation the published original still says (display needs it). */
  orientation?: number;
  icc?: boolean;
  /** Tags that are not private and must be published as uploaded. */
  kept?: Record<string, unknown>;
}

const CASES: Case[] = [
  {
    name: 'a phone JPEG (orientation 6, Display P3)',
    ext: 'jpg',
    fileType: 'image/jpeg',
    make: async () => withTags(await sharp(await corpus.orientedJpeg(6)).withMetadata({ orientation: 6 }).withIccProfile('p3').withExifMerge({ IFD0: { Make: 'TestCam', Model: 'Model 1' } }).jpeg().toBuffer(), 'jpg', PRIVATE_TAGS),
    orientation: 6,
    icc: true,
  },
  {
    name: 'a PNG with an eXIf chunk',
    ext: 'png',
    fileType: 'image/png',
    make: async () => withTags(await sharp(await corpus.uprightPicture()).withMetadata({ orientation: 3 }).png().toBuffer(), 'png', { ...PRIVATE_TAGS, 'PNG:Description': 'my flat' }),
    orientation: 3,
    icc: true,
  },
  {
    name: 'a WebP',
    ext: 'webp',
    fileType: 'image/webp',
    make: async () => withTags(await sharp(await corpus.uprightPicture()).withMetadata({ orientation: 8 }).webp({ lossless: true }).toBuffer(), 'webp', PRIVATE_TAGS),
    orientation: 8,
    icc: true,
  },
  {
    name: 'an AVIF',
    ext: 'avif',
    fileType: 'image/avif',
    make: async () => withTags(await corpus.avifWithExifOrientation(6), 'avif', { GPSLatitude: 48.8584, GPSLatitudeRef: 'N', GPSLongitude: 2.2945, GPSLongitudeRef: 'E', ImageDescription: 'my flat', 'XMP-exif:GPSLatitude': '48.8584 N' }),
    orientation: 6,
  },
  {
    name: 'an iPhone-style HEIC',
    ext: 'heic',
    fileType: 'image/heic',
    make: async () => withTags(await corpus.heic({ displayP3: true }), 'heic', { GPSLatitude: 48.8584, GPSLatitudeRef: 'N', GPSLongitude: 2.2945, GPSLongitudeRef: 'E', ImageDescription: 'my flat', 'XMP-exif:GPSLatitude': '48.8584 N' }),
    icc: true,
  },
  {
    name: 'a Samsung-style HEIC whose only orientation is EXIF (no irot)',
    ext: 'heic',
    fileType: 'image/heic',
    make: async () => withTags(await corpus.heic({ exifOrientation: 6 }), 'heic', { GPSLatitude: 48.8584, GPSLatitudeRef: 'N', GPSLongitude: 2.2945, GPSLongitudeRef: 'E', ImageDescription: 'my flat' }),
    orientation: 6,
  },
  // Names the deletion list does not cover are deleted by the names found; a focus point
  // (EXIF SubjectLocation: pixel coordinates) is not a place and stays.
  {
    name: 'a JPEG with a description in XMP-tiff, a title in XMP-dc and a focus point',
    ext: 'jpg',
    fileType: 'image/jpeg',
    make: async () => withTags(await corpus.orientedJpeg(1), 'jpg', { 'XMP-tiff:ImageDescription': 'my flat', 'XMP-dc:Title': 'my flat', 'ExifIFD:SubjectLocation': '200 120', GPSLatitude: 48.8584, GPSLatitudeRef: 'N' }),
    kept: { 'ExifIFD:SubjectLocation': '200 120' },
  },
  {
    name: 'a PNG with a Title and a Description text chunk',
    ext: 'png',
    fileType: 'image/png',
    make: async () => withTags(await sharp(await corpus.uprightPicture()).png().toBuffer(), 'png', { 'PNG:Title': 'my flat', 'PNG:Description': 'my flat' }),
  },
  { name: 'a motion photo (JPEG + located clip)', ext: 'jpg', fileType: 'image/jpeg', make: motionPhoto },
  {
    name: 'an animated GIF with XMP',
    ext: 'gif',
    fileType: 'image/gif',
    make: async () => withTags(await corpus.animated(ffmpegTools().ffmpeg, 'gif'), 'gif', { 'XMP-exif:GPSLatitude': '48.8584 N', 'XMP-exif:GPSLongitude': '2.2945 E', 'XMP-dc:Description': 'my flat', Comment: 'my flat' }),
  },
];

afterAll(() => exiftool.end());

describe('published image originals', () => {
  let p: Platform;
  beforeAll(async () => {
    p = await startPlatform({}, { videoWorker: false });
  });
  afterAll(() => p?.stop());

  it.each(CASES)('$name: the public original has no location or description, and the same pixels, orientation and profile', async ({ ext, fileType, make, orientation, icc, kept }) => {
    const upload = await make();
    const uploaded = await tagsOf(upload, ext);
    // The fixture does carry what must not be served.
    expect(privateTagsIn(uploaded).length).toBeGreaterThan(0);

    const user = uniqueUser('gps');
    const { mediaId } = await uploadFile(p, user, upload, fileType, 'POST_IMAGE', `photo.${ext}`);
    const media = await waitForStatus(p, user, mediaId, ['READY', 'FAILED', 'REJECTED']);
    expect(media.status).toBe('READY');
    // Fetched as anyone on the internet would: no token.
    const res = await fetch(media.cdnUrl);
    expect(res.status).toBe(200);
    const served = Buffer.from(await res.arrayBuffer());

    const tags = await tagsOf(served, ext);
    expect(privateTagsIn(tags)).toEqual([]);
    expect(Object.keys(tags).filter((k) => /gps/i.test(k))).toEqual([]);
    expect(JSON.stringify(tags)).not.toMatch(/Secret Street|my flat|Paris/);
    expect(served.includes(CLIP_LOCATION)).toBe(false);
    if (orientation) expect(tags['IFD0:Orientation']).toBe(orientation);
    if (icc) expect(tags['ICC_Profile:ProfileDescription']).toBe(uploaded['ICC_Profile:ProfileDescription']);
    expect(tags['File:MIMEType']).toBe(fileType);
    if (kept) expect(tags).toMatchObject(kept);

    // Lossless: the stored pixels are the uploaded ones, not a re-encode.
    const [before, after] = await Promise.all([storedPixels(upload, ext), storedPixels(served, ext)]);
    expect({ width: after.width, height: after.height }).toEqual({ width: before.width, height: before.height });
    expect(after.data.equals(before.data)).toBe(true);
    // The read model still read the camera from the upload; the API serves no location.
    if (fileType === 'image/jpeg' && orientation) expect(media.metadata).toMatchObject({ camera: 'TestCam Model 1', orientation: 6 });
    expect(JSON.stringify(media)).not.toMatch(/Secret Street|my flat|48\.85/);
  });

  it('never publishes an image whose location stays: REJECTED when it cannot be removed, retried when no scrubber is configured', async () => {
    const buckets = { incoming: p.config.S3_INCOMING_BUCKET, media: p.config.S3_MEDIA_BUCKET };
    const storageKey = `private-metadata-test/${randomUUID()}.jpg`;
    await p.storage.put(buckets.incoming, storageKey, await withTags(await corpus.orientedJpeg(1), 'jpg', PRIVATE_TAGS), 'image/jpeg');
    const input = { mediaId: randomUUID(), storageKey, scrub: { mimeType: 'image/jpeg' } };
    const refusing: MetadataScrubber = {
      scrub: () => Promise.reject(new PrivateMetadataError('location or description could not be removed from the original')),
      end: () => Promise.resolve(),
    };
    try {
      const rejected = await new MockActivityEnvironment().run(createActivities({ storage: p.storage, media: p.media, buckets, scrubber: refusing }).promoteOriginal, input).catch((err: unknown) => err);
      expect(rejected).toBeInstanceOf(ApplicationFailure);
      expect(rejected).toMatchObject({ type: 'PRIVATE_METADATA_NOT_REMOVABLE', nonRetryable: true });
      const unconfigured = new MockActivityEnvironment().run(createActivities({ storage: p.storage, media: p.media, buckets }).promoteOriginal, input);
      await expect(unconfigured).rejects.toThrow(/no metadata scrubber/);
      expect(await p.storage.head(buckets.media, storageKey)).toBeUndefined();
    } finally {
      await p.storage.delete(buckets.incoming, storageKey);
    }
  });

  it('publishes a JPEG lacking only its end marker and a GIF lacking only its trailer whole, located or not', async () => {
    const located = await withTags(await corpus.orientedJpeg(1), 'jpg', PRIVATE_TAGS);
    const plain = await corpus.orientedJpeg(1);
    const gif = await corpus.animated(ffmpegTools().ffmpeg, 'gif');
    const commented = await withTags(gif, 'gif', { Comment: 'my flat', 'XMP-exif:GPSLatitude': '48.8584 N' });
    const cases = [
      { name: 'located JPEG', upload: located.subarray(0, located.length - 2), ext: 'jpg', fileType: 'image/jpeg', end: 'ffd9' },
      { name: 'plain JPEG', upload: plain.subarray(0, plain.length - 2), ext: 'jpg', fileType: 'image/jpeg', end: 'ffd9' },
      { name: 'commented GIF', upload: commented.subarray(0, commented.length - 1), ext: 'gif', fileType: 'image/gif', end: '3b' },
      { name: 'plain GIF', upload: gif.subarray(0, gif.length - 1), ext: 'gif', fileType: 'image/gif', end: '3b' },
    ];
    const outcomes = await Promise.all(
      cases.map(async ({ name, upload, ext, fileType, end }) => {
        const user = uniqueUser('ending');
        const { mediaId } = await uploadFile(p, user, upload, fileType, 'POST_IMAGE', `photo.${ext}`);
        const media = await waitForStatus(p, user, mediaId, ['READY', 'FAILED', 'REJECTED']);
        if (media.status !== 'READY') return `${name}: ${media.status} ${media.failureReason}`;
        const served = Buffer.from(await (await fetch(media.cdnUrl)).arrayBuffer());
        const tags = await tagsOf(served, ext);
        // The upload and the end it lacked: nothing else added, nothing private left.
        const whole = served.subarray(0, upload.length).equals(upload) || privateTagsIn(await tagsOf(upload, ext)).length > 0;
        return `${name}: ${media.status}, ends ${served.subarray(-end.length / 2).toString('hex')}, private ${privateTagsIn(tags).length}, upload kept ${whole}`;
      }),
    );
    expect(outcomes).toEqual(cases.map(({ name, end }) => `${name}: READY, ends ${end}, private 0, upload kept true`));
  });

  it('publishes an image with nothing private byte for byte as uploaded', async () => {
    const upload = await realJpeg(64 * 1024);
    const user = uniqueUser('gps');
    const { mediaId, storageKey } = await uploadFile(p, user, upload, 'image/jpeg', 'POST_IMAGE', 'plain.jpg');
    expect((await waitForStatus(p, user, mediaId, ['READY', 'FAILED', 'REJECTED'])).status).toBe('READY');
    expect((await p.storage.getBuffer(p.config.S3_MEDIA_BUCKET, storageKey)).equals(upload)).toBe(true);
  });
});

/** ffmpeg in a temp dir (`{dir}` in an argument names it, `inputs` are written there first): the bytes of `out`. */
const ffmpegFile = (out: string, args: string[], inputs: Record<string, Buffer> = {}) => generate(ffmpegTools().ffmpeg, out, args, inputs);

/** Runs ffprobe/ffmpeg on `data` written to a temp file; stdout. */
async function onFile(data: Buffer, ext: string, tool: 'ffprobe' | 'ffmpeg', args: (file: string) => string[]): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'private-metadata-'));
  try {
    const file = join(dir, `in.${ext}`);
    await writeFile(file, data);
    return await new Promise<string>((resolve, reject) =>
      execFile(ffmpegTools()[tool], args(file), { maxBuffer: 16 * 1024 * 1024 }, (err, stdout) => (err ? reject(err) : resolve(stdout))),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** MD5 of each stream's packets as stored (`-c copy`): equal when the streams were not re-encoded. */
const streamDigests = (data: Buffer, ext: string) => onFile(data, ext, 'ffmpeg', (file) => ['-hide_banner', '-nostdin', '-v', 'error', '-i', file, '-map', '0:V', '-map', '0:a?', '-c', 'copy', '-f', 'streamhash', '-hash', 'md5', '-']);
/** Clockwise rotation of the first video stream's display matrix, 0 when none. */
const rotation = async (data: Buffer, ext: string) => {
  const out = JSON.parse(await onFile(data, ext, 'ffprobe', (file) => ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream_side_data=rotation', '-of', 'json', file])) as { streams: Array<{ side_data_list?: Array<{ rotation?: number }> }> };
  return out.streams[0]?.side_data_list?.find((d) => d.rotation !== undefined)?.rotation ?? 0;
};

const clip = ['-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=30:duration=2', '-f', 'lavfi', '-i', 'sine=f=440:d=2', '-shortest'];
const h264 = ['-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-c:a', 'aac'];

interface VideoCase {
  name: string;
  ext: string;
  fileType: string;
  make: () => Promise<Buffer>;
  /** Tag names `metadata.originalMetadataRemoved` lists (at least). */
  removed: string[];
  rotation?: number;
}

/** What phones, editors and browsers write about where and what into a video container. */
const VIDEO_CASES: VideoCase[] = [
  {
    name: "an Android phone's MP4 (©xyz location, title)",
    ext: 'mp4',
    fileType: 'video/mp4',
    make: () => ffmpegFile('a.mp4', [...clip, ...h264, '-metadata', `location=${CLIP_LOCATION}`, '-metadata', 'title=my flat']),
    removed: ['location', 'title'],
  },
  {
    name: "an iPhone's MOV, portrait (QuickTime keys: ISO 6709 location, description; display matrix 90°)",
    ext: 'mov',
    fileType: 'video/quicktime',
    // Re-muxed from an MP4, as an editor does: ffprobe then reports the MP4's major brand (a
    // copied metadata key) though the file's ftyp box says QuickTime.
    make: async () =>
      ffmpegFile('i.mov', ['-i', '{dir}/p.mp4', '-c', 'copy', '-metadata:s:v', 'rotate=90', '-movflags', 'use_metadata_tags', '-metadata', `com.apple.quicktime.location.ISO6709=${CLIP_LOCATION}`, '-metadata', 'com.apple.quicktime.description=my flat', '-metadata', 'com.apple.quicktime.make=Apple'], {
        'p.mp4': await ffmpegFile('p.mp4', [...clip, ...h264]),
      }),
    removed: ['com.apple.quicktime.location.ISO6709', 'com.apple.quicktime.description'],
    rotation: 90,
  },
  {
    name: 'an MP4 an editor tagged with XMP GPS and a description',
    ext: 'mp4',
    fileType: 'video/mp4',
    make: async () => withTags(await ffmpegFile('x.mp4', [...clip, ...h264]), 'mp4', { 'XMP-exif:GPSLatitude': '48.8584 N', 'XMP-exif:GPSLongitude': '2.2945 E', 'XMP-dc:Description': 'my flat' }),
    removed: ['xmp'],
  },
  {
    // Any EBML file passes as video/webm: it is re-written as the Matroska it is.
    name: 'an H.264 + AAC Matroska file declared video/webm, with a title',
    ext: 'mkv',
    fileType: 'video/webm',
    make: () => ffmpegFile('m.mkv', [...clip, ...h264, '-metadata', 'title=my flat']),
    removed: ['title'],
  },
  {
    // A QuickTime file passes as video/mp4; MP4 has no sample entry for its PCM audio.
    name: 'a MOV with PCM audio declared video/mp4, with a location',
    ext: 'mov',
    fileType: 'video/mp4',
    make: () => ffmpegFile('pcm.mov', [...clip, '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-c:a', 'pcm_s16le', '-metadata', `location=${CLIP_LOCATION}`, '-metadata', 'comment=my flat']),
    removed: ['location', 'comment'],
  },
  {
    // DJI drones and dash cams write where they are as subtitles; here the track runs 7 s past
    // the 2 s of video, so the re-write (video and audio only) is shorter than the file.
    name: 'an MP4 with a GPS subtitle track that runs past the video',
    ext: 'mp4',
    fileType: 'video/mp4',
    make: () =>
      ffmpegFile('s.mp4', ['-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=30:duration=2', '-f', 'lavfi', '-i', 'sine=f=440:d=2', '-i', '{dir}/gps.srt', '-map', '0:v', '-map', '1:a', '-map', '2:s', ...h264, '-c:s', 'mov_text'], {
        'gps.srt': Buffer.from('1\n00:00:00,000 --> 00:00:09,000\nGPS 48.8584 N 2.2945 E my flat\n'),
      }),
    removed: ['subtitle stream 2'],
  },
  {
    name: 'a WebM with a title',
    ext: 'webm',
    fileType: 'video/webm',
    make: () => ffmpegFile('w.webm', [...clip, '-c:v', 'libvpx', '-deadline', 'realtime', '-c:a', 'libopus', '-metadata', 'title=my flat']),
    removed: ['title'],
  },
];

describe('published video originals', () => {
  let p: Platform;
  beforeAll(async () => {
    const { ffmpeg, ffprobe } = ffmpegTools();
    p = await startPlatform({ FFMPEG_PATH: ffmpeg, FFPROBE_PATH: ffprobe, HLS_X264_PRESET: 'ultrafast' });
  });
  afterAll(() => p?.stop());

  it.each(VIDEO_CASES)('$name: the public original has no location, title or description, and the same streams', async ({ ext, fileType, make, removed, rotation: turned }) => {
    const upload = await make();
    // The fixture does carry what must not be served (ExifTool reads it, independently of ffprobe).
    expect(JSON.stringify(await tagsOf(upload, ext))).toMatch(/my flat/);

    const user = uniqueUser('video-gps');
    const { mediaId } = await uploadFile(p, user, upload, fileType, 'POST_VIDEO', `clip.${ext}`);
    const media = await waitForStatus(p, user, mediaId, ['READY', 'FAILED', 'REJECTED'], 120_000);
    expect({ status: media.status, failureReason: media.failureReason }).toEqual({ status: 'READY', failureReason: null });
    expect(media.metadata.originalMetadataRemoved).toEqual(expect.arrayContaining(removed));
    const res = await fetch(media.cdnUrl);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(fileType);
    const served = Buffer.from(await res.arrayBuffer());

    const tags = await tagsOf(served, ext);
    expect(Object.keys(tags).filter((k) => /gps|location|description|title/i.test(k) && !/:HandlerDescription$/.test(k))).toEqual([]);
    expect(JSON.stringify(tags)).not.toMatch(/my flat|48\.85|2\.29/);
    expect(served.includes(CLIP_LOCATION)).toBe(false);
    // Lossless: every stream's packets as uploaded, and what display needs kept.
    expect(await streamDigests(served, ext)).toBe(await streamDigests(upload, ext));
    expect(await rotation(served, ext)).toBe(turned ?? 0);
    // The same container: an ISO-BMFF file keeps its ftyp major brand (`qt  ` for a MOV), an EBML one its first bytes.
    expect(served.subarray(0, 12).toString('latin1').slice(4)).toBe(upload.subarray(0, 12).toString('latin1').slice(4));
    expect(JSON.stringify(media)).not.toMatch(/my flat|48\.85/);
  });

  it('publishes a video with nothing private byte for byte as uploaded (a server-side copy)', async () => {
    const upload = await ffmpegFile('plain.mp4', [...clip, ...h264]);
    const user = uniqueUser('video-gps');
    const { mediaId, storageKey } = await uploadFile(p, user, upload, 'video/mp4', 'POST_VIDEO', 'plain.mp4');
    const media = await waitForStatus(p, user, mediaId, ['READY', 'FAILED', 'REJECTED'], 120_000);
    expect(media.status).toBe('READY');
    expect(media.metadata.originalMetadataRemoved).toBeUndefined();
    expect((await p.storage.getBuffer(p.config.S3_MEDIA_BUCKET, storageKey)).equals(upload)).toBe(true);
  });
});
