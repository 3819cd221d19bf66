/**
 * Just enough of the HEIF container (ISO/IEC 23008-12, ISO-BMFF boxes) to answer one question
 * libheif's decoders do not: does the file rotate or mirror its image itself (`irot`/`imir`
 * item properties)? HEIF viewers apply those and ignore an EXIF orientation (iPhones write both,
 * consistently); some Android cameras (Samsung) write only the EXIF orientation, which is then
 * the only record of how the picture is upright. Pure: reads a buffer, no I/O.
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

/** The box types of the item properties (`meta` → `iprp` → `ipco`), e.g. `ispe`, `irot`, `colr`. */
export function heifPropertyTypes(file: Buffer): Set<string> {
  const types = new Set<string>();
  eachBox(file, 0, file.length, (type, from, to) => {
    // `meta` is a full box: version and flags come before its children.
    if (type !== 'meta') return;
    eachBox(file, from + 4, to, (t2, f2, e2) => {
      if (t2 !== 'iprp') return;
      eachBox(file, f2, e2, (t3, f3, e3) => {
        if (t3 === 'ipco') eachBox(file, f3, e3, (property) => types.add(property));
      });
    });
  });
  return types;
}

/** True when the file carries HEIF transformations (rotation `irot` or mirror `imir`). */
export function hasHeifTransforms(file: Buffer): boolean {
  const types = heifPropertyTypes(file);
  return types.has('irot') || types.has('imir');
}
