import { invalidSubReason } from '../../services/api/auth';
import { uploadSessionRequest } from '../../services/api/schemas';
import { detectMimeType, matchesDeclaredType } from '../../services/shared/magic-bytes';
import { MEDIA_TYPE_RULES } from '../../services/shared/media-types';
import { MAX_TEXT_LENGTH, sanitizeForReadModel, sanitizeText } from '../../services/shared/sanitize';
import { encodeKeyPath, pickParts, type PartCopy } from '../../services/shared/storage';
import { ownerKeySegment } from '../../services/shared/storage-keys';
import { hasHeifTransforms, heifCodec, heifPropertyTypes, withLibvipsMajorBrand } from '../../services/shared/media/heif';

/** An ISO-BMFF `ftyp` box with a major brand and compatible brands, padded to 64 bytes. */
const ftyp = (major: string, ...compatible: string[]) => {
  const box = Buffer.concat([Buffer.alloc(4), Buffer.from(`ftyp${major}`, 'latin1'), Buffer.alloc(4), Buffer.from(compatible.join(''), 'latin1')]);
  box.writeUInt32BE(box.length, 0);
  return Buffer.concat([box, Buffer.alloc(64 - box.length)]);
};

describe('HEIF/AVIF sniffing by ftyp brands', () => {
  it.each([
    [ftyp('heic', 'mif1', 'heic'), 'image/heic'],
    [ftyp('heix', 'mif1'), 'image/heic'],
    [ftyp('hevc', 'msf1'), 'image/heic'],
    [ftyp('heim', 'mif1'), 'image/heic'],
    [ftyp('heis', 'mif1'), 'image/heic'],
    [ftyp('mif1', 'heic', 'miaf'), 'image/heic'],
    [ftyp('mif1', 'miaf'), 'image/heif'],
    [ftyp('msf1', 'miaf'), 'image/heif'],
    [ftyp('avif', 'mif1', 'miaf'), 'image/avif'],
    [ftyp('avis', 'msf1'), 'image/avif'],
    [ftyp('mif1', 'avif', 'miaf'), 'image/avif'],
    [ftyp('miaf', 'avif', 'mif1'), 'image/avif'],
    [ftyp('miaf', 'mif1', 'heic'), 'image/heic'],
    [ftyp('isom', 'iso2', 'avc1', 'mp41'), 'video/mp4'],
    [ftyp('mp42', 'isom'), 'video/mp4'],
    [ftyp('qt  '), 'video/quicktime'],
  ])('detects %#', (head, mime) => {
    expect(detectMimeType(head)).toBe(mime);
  });

  it('treats HEIC and HEIF as one type, and never an image as video or AVIF as HEIC', () => {
    expect(matchesDeclaredType('image/heif', 'image/heic')).toBe(true);
    expect(matchesDeclaredType('image/heic', 'image/heif')).toBe(true);
    expect(matchesDeclaredType('image/avif', 'image/heic')).toBe(false);
    expect(matchesDeclaredType('image/heic', 'image/avif')).toBe(false);
    expect(matchesDeclaredType('video/mp4', 'image/heic')).toBe(false);
    expect(matchesDeclaredType('image/avif', 'video/mp4')).toBe(false);
  });

  it('accepts HEIC, HEIF and AVIF for both image media types, and no video type for images', () => {
    for (const type of ['POST_IMAGE', 'PROFILE_IMAGE'] as const) {
      expect(MEDIA_TYPE_RULES[type].allowedMimeTypes).toEqual(expect.arrayContaining(['image/heic', 'image/heif', 'image/avif']));
      expect(MEDIA_TYPE_RULES[type].allowedMimeTypes.some((m) => m.startsWith('video/'))).toBe(false);
    }
  });
});

describe('read-model text sanitizing', () => {
  it('removes NUL padding, control characters and lone surrogates, keeps pairs, tabs and newlines', () => {
    expect(sanitizeText(`Canon${'\u0000'.repeat(11)}`)).toBe('Canon');
    expect(sanitizeText('a\u0001b\u001bc\u007fd\u0085e\tf\ng\rh')).toBe('abcde\tf\ngh');
    expect(sanitizeText('x\ud800y\udc00z')).toBe('xyz');
    expect(sanitizeText('emoji 😀 ünï')).toBe('emoji 😀 ünï');
  });

  it('bounds the length without splitting a surrogate pair', () => {
    expect(sanitizeText('a'.repeat(MAX_TEXT_LENGTH * 3))).toHaveLength(MAX_TEXT_LENGTH);
    const cut = sanitizeText(`${'a'.repeat(MAX_TEXT_LENGTH - 1)}😀`);
    expect(cut).toBe('a'.repeat(MAX_TEXT_LENGTH - 1));
  });

  it('cleans nested values and keys, drops binary data and bounds arrays and depth', () => {
    let deep: Record<string, unknown> = { leaf: 'x' };
    for (let i = 0; i < 20; i++) deep = { deep };
    const out = sanitizeForReadModel({
      'ke\u0000y': 'v\u0000',
      tags: { title: 'T\ud800', list: Array.from({ length: 1000 }, (_, i) => i) },
      blob: Buffer.from('abc'),
      when: new Date(0),
      nan: Number.NaN,
      deep,
    }) as Record<string, any>;
    expect(out.key).toBe('v');
    expect(out.tags.title).toBe('T');
    expect(out.tags.list).toHaveLength(200);
    expect(out.blob).toBeUndefined();
    expect(out.when).toBe('1970-01-01T00:00:00.000Z');
    expect(out.nan).toBeNull();
    expect(JSON.stringify(out)).not.toMatch(/\\u0000|\\ud8/);
  });

  it('refuses file names with NUL, controls or lone surrogates (400) and keeps Unicode ones', () => {
    const request = (fileName: string) => uploadSessionRequest.safeParse({ fileName, fileType: 'image/jpeg', fileSize: 1, mediaType: 'POST_IMAGE' }).success;
    for (const bad of ['a\u0000.jpg', 'a\u0007.jpg', 'a\u0085.jpg', 'a\ud800.jpg']) expect(request(bad)).toBe(false);
    for (const good of ['ünïcødé 😀.jpg', 'IMG_0001.HEIC', "o'brien (1).jpg"]) expect(request(good)).toBe(true);
  });
});

describe('user ids (JWT sub)', () => {
  it.each(["o'brien@example.com", 'user!1', 'auth0|abc', 'a b', 'ünïcødé', '😀', 'a/b', '..', '%2F', `${'é'.repeat(127)}x`])('accepts %j', (sub) => {
    expect(invalidSubReason(sub)).toBeUndefined();
    expect(ownerKeySegment(sub)).toMatch(/^[0-9a-f]{32}$/);
  });
  it.each([`${'é'.repeat(128)}`, 'a\u0000b', 'a\nb', 'a\u0085b', 'a\u007fb', 'a\ud800b'])('refuses %j', (sub) => {
    expect(invalidSubReason(sub)).toBeDefined();
  });
  it('gives different users different owner segments and one user always the same', () => {
    expect(ownerKeySegment('a/b')).not.toBe(ownerKeySegment('a%2Fb'));
    expect(ownerKeySegment('user!1')).toBe(ownerKeySegment('user!1'));
  });
});

describe('object keys in signed URLs', () => {
  it('percent-encodes everything but RFC 3986 unreserved characters and /', () => {
    expect(encodeKeyPath("post_image/o'brien%40example.com/(1)*!.jpg")).toBe('post_image/o%27brien%2540example.com/%281%29%2A%21.jpg');
    expect(encodeKeyPath('a b/ü~-_.x')).toBe('a%20b/%C3%BC~-_.x');
  });
});

describe('pickParts: one part per part number, the latest upload', () => {
  const copy = (partNumber: number, etag: string, lastModified: number): PartCopy => ({ partNumber, etag: `"${etag}"`, size: 5, lastModified });

  it('counts a part listed twice with the same ETag once', () => {
    const { parts, mismatched } = pickParts([copy(1, 'a', 1000), copy(2, 'b', 1000), copy(1, 'a', 2000)]);
    expect(parts.map((p) => [p.partNumber, p.etag])).toEqual([[1, '"a"'], [2, '"b"']]);
    expect(mismatched).toEqual([]);
  });

  it('takes the copy uploaded last, whatever the listing order', () => {
    expect(pickParts([copy(1, 'new', 3000), copy(1, 'old', 1000)]).parts[0]!.etag).toBe('"new"');
    expect(pickParts([copy(1, 'old', 1000), copy(1, 'new', 3000)]).parts[0]!.etag).toBe('"new"');
  });

  it('refuses a claimed ETag of an older copy or of no copy, accepts the latest with or without quotes', () => {
    const copies = [copy(1, 'old', 1000), copy(1, 'new', 3000), copy(2, 'b', 1000)];
    expect(pickParts(copies, [{ partNumber: 1, etag: '"old"' }, { partNumber: 2, etag: 'b' }]).mismatched).toEqual([1]);
    expect(pickParts(copies, [{ partNumber: 1, etag: 'zzz' }, { partNumber: 3, etag: 'c' }]).mismatched).toEqual([1, 3]);
    expect(pickParts(copies, [{ partNumber: 1, etag: 'new' }, { partNumber: 2, etag: '"b"' }])).toEqual({
      parts: [{ partNumber: 1, etag: '"new"', size: 5 }, { partNumber: 2, etag: '"b"', size: 5 }],
      mismatched: [],
      ambiguous: [],
    });
  });

  it('lets the claimed ETag choose among copies S3 dated to the same second', () => {
    const copies = [copy(1, 'x', 1000), copy(1, 'y', 1000)];
    expect(pickParts(copies, [{ partNumber: 1, etag: 'y' }]).parts[0]!.etag).toBe('"y"');
    expect(pickParts(copies, [{ partNumber: 1, etag: 'x' }]).parts[0]!.etag).toBe('"x"');
  });

  it('leaves out, as ambiguous, a part whose copies of its newest second differ and that nobody claimed', () => {
    // SeaweedFS lists copies by a random name: either order may come.
    for (const copies of [
      [copy(1, 'a', 1000), copy(2, 'x', 2000), copy(2, 'y', 2000), copy(3, 'c', 1000)],
      [copy(1, 'a', 1000), copy(2, 'y', 2000), copy(2, 'x', 2000), copy(3, 'c', 1000)],
    ]) {
      const { parts, ambiguous, mismatched } = pickParts(copies);
      expect(parts.map((p) => p.partNumber)).toEqual([1, 3]);
      expect(ambiguous).toEqual([2]);
      expect(mismatched).toEqual([]);
      // A claim of another part leaves it ambiguous; a claim of it decides.
      expect(pickParts(copies, [{ partNumber: 1, etag: 'a' }]).ambiguous).toEqual([2]);
      expect(pickParts(copies, [{ partNumber: 2, etag: 'y' }])).toMatchObject({ ambiguous: [], mismatched: [] });
    }
    // Same bytes twice in one second, or an older copy that differs: nothing ambiguous.
    expect(pickParts([copy(1, 'x', 1000), copy(1, 'x', 1000)]).ambiguous).toEqual([]);
    expect(pickParts([copy(1, 'old', 1000), copy(1, 'x', 2000), copy(1, 'x', 2000)])).toMatchObject({ ambiguous: [], parts: [{ etag: '"x"' }] });
  });
});

describe('HEIF item properties', () => {
  const box = (type: string, ...payload: Buffer[]) => {
    const body = Buffer.concat(payload);
    const head = Buffer.alloc(8);
    head.writeUInt32BE(8 + body.length, 0);
    head.write(type, 4, 'latin1');
    return Buffer.concat([head, body]);
  };
  const file = (...properties: Buffer[]) =>
    Buffer.concat([
      box('ftyp', Buffer.from('heic\0\0\0\0mif1heic', 'latin1')),
      box('meta', Buffer.alloc(4), box('hdlr', Buffer.alloc(20)), box('iprp', box('ipco', ...properties), box('ipma', Buffer.alloc(8)))),
      box('mdat', Buffer.alloc(32, 7)),
    ]);

  it('finds the property boxes below meta/iprp/ipco', () => {
    expect([...heifPropertyTypes(file(box('ispe', Buffer.alloc(12)), box('colr', Buffer.from('nclx')), box('irot', Buffer.from([1]))))]).toEqual(['ispe', 'colr', 'irot']);
  });

  it('tells files that rotate or mirror themselves from files that do not', () => {
    expect(hasHeifTransforms(file(box('ispe', Buffer.alloc(12)), box('irot', Buffer.from([1]))))).toBe(true);
    expect(hasHeifTransforms(file(box('ispe', Buffer.alloc(12)), box('imir', Buffer.from([0]))))).toBe(true);
    expect(hasHeifTransforms(file(box('ispe', Buffer.alloc(12))))).toBe(false);
  });

  it('stops at a malformed box instead of reading past the buffer', () => {
    const broken = file(box('ispe', Buffer.alloc(12)));
    broken.writeUInt32BE(0xffffff, 0);
    expect(heifPropertyTypes(broken).size).toBe(0);
    expect(heifPropertyTypes(Buffer.alloc(3)).size).toBe(0);
  });

  // meta → pitm (primary item) and iinf → infe (version 2: item_ID, protection index, item_type).
  const infe = (id: number, type: string) => box('infe', Buffer.concat([Buffer.from([2, 0, 0, 0, 0, id, 0, 0]), Buffer.from(type, 'latin1'), Buffer.from([0])]));
  const withItems = (major: string, primary: number, ...items: Buffer[]) =>
    Buffer.concat([
      box('ftyp', Buffer.from(`${major}\0\0\0\0mif1miaf`, 'latin1')),
      box('meta', Buffer.alloc(4), box('hdlr', Buffer.alloc(20)), box('pitm', Buffer.from([0, 0, 0, 0, 0, primary])), box('iinf', Buffer.from([0, 0, 0, 0, 0, items.length]), ...items)),
      box('mdat', Buffer.alloc(32, 7)),
    ]);

  it('names the codec by the item types, whatever the brands say', () => {
    expect(heifCodec(withItems('mif1', 1, infe(1, 'av01'), infe(2, 'Exif')))).toBe('av1');
    expect(heifCodec(withItems('avif', 1, infe(1, 'hvc1')))).toBe('hevc');
    // An iPhone's primary item is a grid of HEVC tiles.
    expect(heifCodec(withItems('heic', 1, infe(1, 'grid'), infe(2, 'hvc1'), infe(3, 'hvc1')))).toBe('hevc');
    expect(heifCodec(withItems('mif1', 1, infe(1, 'Exif')))).toBeUndefined();
    expect(heifCodec(Buffer.from('not a heif file'))).toBeUndefined();
  });

  it('gives libvips the major brand it opens a file by, changing nothing else', () => {
    const mif1 = withItems('mif1', 1, infe(1, 'av01'));
    const fixed = withLibvipsMajorBrand(mif1, 'av1');
    expect(fixed.toString('latin1', 8, 12)).toBe('avif');
    expect(Buffer.concat([fixed.subarray(0, 8), fixed.subarray(12)])).toEqual(Buffer.concat([mif1.subarray(0, 8), mif1.subarray(12)]));
    expect(mif1.toString('latin1', 8, 12)).toBe('mif1');
    expect(withLibvipsMajorBrand(withItems('miaf', 1, infe(1, 'hvc1')), 'hevc').toString('latin1', 8, 12)).toBe('heic');
    const heic = withItems('mif1', 1, infe(1, 'hvc1'));
    expect(withLibvipsMajorBrand(heic, 'hevc')).toBe(heic);
  });
});
