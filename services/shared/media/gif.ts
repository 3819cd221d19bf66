/** How a GIF file ends: inside a block (`cut`), between blocks without the trailer byte, or with it (bytes after it ignored). */
export type GifEnding = 'cut' | 'no-trailer' | 'whole';

/**
 * Whether a GIF ends inside one of its blocks: a copy cut short. libvips (libnsgif) decodes the
 * frames it has and says nothing, so a cut animated GIF would pass as whole (its first frame,
 * the thumbnail, is intact) and be published broken. A GIF that merely lacks its trailer byte
 * (0x3B) ends between blocks and shows whole in every viewer, as does one with bytes appended
 * after the trailer: neither counts as cut.
 *
 * Block structure from the GIF89a specification: header (6 bytes), logical screen descriptor
 * (7), optional global colour table; then extensions (0x21, label, data sub-blocks), images
 * (0x2C, 9-byte descriptor, optional local colour table, LZW code size, data sub-blocks) and the
 * trailer (0x3B). Data sub-blocks are a length byte and that many bytes, ended by length 0.
 *
 * @param gif the whole file, starting with `GIF87a` or `GIF89a`
 * @returns true when the data ends inside a block; false for a whole file or one that is not a GIF
 */
export function gifIsCutShort(gif: Buffer): boolean {
  return gifEnding(gif) === 'cut';
}

/** How `gif` ends (see gifIsCutShort); `whole` for a file that is not a GIF. */
export function gifEnding(gif: Buffer): GifEnding {
  if (gif.length < 6 || !/^GIF8[79]a$/.test(gif.toString('latin1', 0, 6))) return 'whole';
  const colourTable = (packed: number) => (packed & 0x80 ? 3 * 2 ** ((packed & 0x07) + 1) : 0);
  let pos = 13;
  if (gif.length < pos) return 'cut';
  pos += colourTable(gif[10]!);
  /** The position after the data sub-blocks starting at `at`, or undefined when the file ends first. */
  const afterSubBlocks = (at: number): number | undefined => {
    for (let p = at; p < gif.length; p += gif[p]! + 1) {
      if (gif[p] === 0) return p + 1;
    }
    return undefined;
  };
  while (pos < gif.length) {
    const introducer = gif[pos];
    if (introducer === 0x21) {
      const end = afterSubBlocks(pos + 2);
      if (end === undefined) return 'cut';
      pos = end;
    } else if (introducer === 0x2c) {
      if (pos + 10 > gif.length) return 'cut';
      // Descriptor, local colour table, then the LZW minimum code size byte.
      const end = afterSubBlocks(pos + 10 + colourTable(gif[pos + 9]!) + 1);
      if (end === undefined) return 'cut';
      pos = end;
    } else {
      // The trailer, or bytes after the last block that decoders ignore.
      return 'whole';
    }
  }
  return pos > gif.length ? 'cut' : 'no-trailer';
}
