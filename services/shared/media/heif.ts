/**
 * Just enough of the HEIF container (ISO/IEC 23008-12, ISO-BMFF boxes) to answer two questions
 * libheif's decoders do not: does the file rotate or mirror its image itself (`irot`/`imir`
 * item properties)? HEIF viewers apply those and ignore an EXIF orientation (iPhones write both,
 * consistently); some Android cameras (Samsung) write only the EXIF orientation, which is then
 * the only record of how the picture is upright. And which codec are its pixels in (the item
 * types in `iinf`)? The `ftyp` brands only hint at it: `mif1`/`miaf` name no codec. Pure: reads
 * a buffer, no I/O.
 */

/** Visits the boxes in `buf[start, end)`: type and payload range. Stops at a malformed box. */
function eachBox(buf: Buffer, start: number, end: number, visit: (type: string, from: number, to: number) => void): void {
  let at = start;
  while (at + 8 <= end) {
    let size = buf.readUInt32BE(at);
    let header = 8;
    if (size === 1) {
      if (at + 16 > end) return;
      size = Number(buf.readBigUInt64BE(at + 8));
      header = 16;
    } else if (size === 0) {
      size = end - at;
    }
    if (size < header || at + size > end) return;
    visit(buf.toString('latin1', at + 4, at + 8), at + header, at + size);
    at += size;
  }
}

/** Visits the children of the top-level `meta` box (a full box: version and flags come before them). */
function eachMetaChild(file: Buffer, visit: (type: string, from: number, to: number) => void): void {
  eachBox(file, 0, file.length, (type, from, to) => {
    if (type === 'meta') eachBox(file, from + 4, to, visit);
  });
}

/** The box types of the item properties (`meta` → `iprp` → `ipco`), e.g. `ispe`, `irot`, `colr`. */
export function heifPropertyTypes(file: Buffer): Set<string> {
  const types = new Set<string>();
  eachMetaChild(file, (t2, f2, e2) => {
    if (t2 !== 'iprp') return;
    eachBox(file, f2, e2, (t3, f3, e3) => {
      if (t3 === 'ipco') eachBox(file, f3, e3, (property) => types.add(property));
    });
  });
  return types;
}

/** True when the file carries HEIF transformations (rotation `irot` or mirror `imir`). */
export function hasHeifTransforms(file: Buffer): boolean {
  const types = heifPropertyTypes(file);
  return types.has('irot') || types.has('imir');
}

/** The codec of a HEIF file's pixels: AV1 (AVIF) or HEVC (HEIC). */
export type HeifCodec = 'av1' | 'hevc';

const CODEC_OF_ITEM_TYPE: Record<string, HeifCodec> = { av01: 'av1', hvc1: 'hevc' };

/**
 * The codec of the primary image, read from its item type (`pitm`, `iinf` → `infe`): `av01` is
 * AV1, `hvc1` HEVC. A primary item that is itself no coded image (an iPhone's `grid` of tiles)
 * takes the codec of the coded items. Undefined when the boxes name neither.
 */
export function heifCodec(file: Buffer): HeifCodec | undefined {
  let primary: number | undefined;
  const itemTypes = new Map<number, string>();
  eachMetaChild(file, (type, from, to) => {
    if (type === 'pitm' && from + 6 <= to) primary = file[from] === 0 ? file.readUInt16BE(from + 4) : file.readUInt32BE(from + 4);
    if (type !== 'iinf' || from + 6 > to) return;
    const entriesAt = from + (file[from] === 0 ? 6 : 8);
    eachBox(file, entriesAt, to, (entry, f2, e2) => {
      // Item types exist from `infe` version 2 on: item_ID (16 bits in 2, 32 in 3), protection index, type.
      const version = file[f2]!;
      if (entry !== 'infe' || version < 2) return;
      const idBytes = version === 2 ? 2 : 4;
      if (f2 + 4 + idBytes + 2 + 4 > e2) return;
      const id = idBytes === 2 ? file.readUInt16BE(f2 + 4) : file.readUInt32BE(f2 + 4);
      itemTypes.set(id, file.toString('latin1', f2 + 4 + idBytes + 2, f2 + 4 + idBytes + 6));
    });
  });
  const primaryCodec = primary === undefined ? undefined : CODEC_OF_ITEM_TYPE[itemTypes.get(primary) ?? ''];
  return primaryCodec ?? [...itemTypes.values()].map((t) => CODEC_OF_ITEM_TYPE[t]).find(Boolean);
}

/** Major brands libvips' HEIF loader recognises a file by; it calls the codec AV1 only for `avif`. */
const LIBVIPS_MAJOR_BRANDS = new Set(['heic', 'heix', 'hevc', 'heim', 'heis', 'hevm', 'hevs', 'mif1', 'msf1', 'avif']);

/**
 * `file` with the `ftyp` major brand libvips needs to open it as what it is: `avif` for AV1
 * (with `mif1`, libvips reports an AVIF as HEVC; with `miaf` it does not open it at all), a
 * brand it knows for HEVC. Only the major brand changes; libheif decodes by the item types and
 * checks the compatible brands, which stay. `file` itself when it needs no change.
 */
export function withLibvipsMajorBrand(file: Buffer, codec: HeifCodec): Buffer {
  if (file.length < 12 || file.toString('latin1', 4, 8) !== 'ftyp') return file;
  const major = file.toString('latin1', 8, 12);
  const wanted = codec === 'av1' ? 'avif' : LIBVIPS_MAJOR_BRANDS.has(major) && major !== 'avif' ? major : 'heic';
  if (major === wanted) return file;
  const copy = Buffer.from(file);
  copy.write(wanted, 8, 'latin1');
  return copy;
}
