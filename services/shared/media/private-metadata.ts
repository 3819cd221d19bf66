import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DefaultExiftoolArgs, ExifTool, exiftoolPath } from 'exiftool-vendored';
import { diesWithParent } from '../child-process';
import { FILE_EXTENSIONS } from '../media-types';
import { publicDetail } from './tool-errors';

/**
 * ExifTool arguments that delete where a picture was taken and what its owner wrote about it,
 * in every metadata block an image format can carry: the EXIF GPS IFD, GPS tags in XMP (exif
 * namespace, drones), IPTC IIM and the IPTC / Photoshop XMP namespaces (city, sub-location,
 * country, caption), free text (EXIF ImageDescription / UserComment / XP*, XMP dc:description
 * and dc:title, JPEG/GIF/PNG comments, PNG Description) and trailers (a motion photo's video).
 * What display needs is left as it is:
 * EXIF Orientation, the ICC profile, HEIF boxes (irot/imir/colr), XMP used by HDR gain maps.
 */
export const PRIVATE_METADATA_DELETIONS: readonly string[] = [
  '-GPS:all=',
  '-XMP:GPS*=',
  '-XMP-drone-dji:GPS*=',
  '-IPTC:all=',
  '-XMP-iptcCore:all=',
  '-XMP-iptcExt:all=',
  '-XMP-photoshop:all=',
  '-EXIF:ImageDescription=',
  '-EXIF:UserComment=',
  '-EXIF:XPComment=',
  '-EXIF:XPTitle=',
  '-EXIF:XPSubject=',
  '-XMP-dc:Description=',
  '-XMP-dc:Title=',
  '-XMP-exif:UserComment=',
  '-Comment=',
  '-PNG:Description=',
  // A motion photo's video, appended to the JPEG, carries a location of its own (QuickTime ©xyz);
  // ExifTool cannot edit inside it, so it goes and the still stays.
  '-Trailer:all=',
];

const LOCATION_TAG = /gps|latitude|longitude|location|^city$|country|province|sub-?location|^state$/i;
/** Points in the picture, not places: EXIF SubjectLocation, maker notes' focus and face locations. */
const PICTURE_POINT_TAG = /^(Subject|Focus|AF\w*|Face\w*)Location\d*$/i;
const DESCRIPTION_TAG = /^(ImageDescription|UserComment|XPComment|XPTitle|XPSubject|Caption-Abstract|Description|Title|Comment)$/;
/** An appended (motion photo) video, as ExifTool names it: Google/generic trailer, Samsung trailer. */
const EMBEDDED_VIDEO_TAG = /^(EmbeddedVideo|EmbeddedVideoFile|MotionPhotoVideo)$/;
/** Groups that describe the file or the colour profile, never the photo (ICC `ProfileDescription` and friends). */
const NEUTRAL_GROUP = /^(ExifTool|System|ICC.*)$/;

/** What ExifTool is asked to read: embedded documents too (`-ee`: a motion photo's video, MPF images), each key `Doc:Group:Tag`. */
export const PRIVATE_METADATA_READ_ARGS: readonly string[] = ['-ee', '-G3:1', '-a'];

/**
 * The private tags in ExifTool's JSON (`Group:Tag` keys, or `Doc:Group:Tag` as read with
 * PRIVATE_METADATA_READ_ARGS): location anywhere (Composite GPS included: it is computed from
 * one), free-text descriptions outside the file and colour-profile groups, an embedded motion
 * photo video. Empty when clean.
 */
export function privateTagsIn(tags: Record<string, unknown>): string[] {
  return Object.keys(tags).filter((key) => {
    const parts = key.split(':');
    if (parts.length < 2) return false;
    const name = parts.at(-1)!;
    // A video inside the image: its own location cannot be read or edited in place, only removed.
    if (EMBEDDED_VIDEO_TAG.test(name)) return true;
    if (parts.slice(0, -1).some((group) => NEUTRAL_GROUP.test(group))) return false;
    return (LOCATION_TAG.test(name) && !PICTURE_POINT_TAG.test(name)) || DESCRIPTION_TAG.test(name);
  });
}

/**
 * ExifTool arguments deleting exactly `tags` (keys as privateTagsIn returns them) where they
 * can be deleted one by one: tags of the file itself, not Composite ones (computed from others)
 * nor those of embedded documents (`Doc1:…`, edited only as a whole trailer).
 * @example deletionsOf(['PNG:Title', 'Composite:GPSPosition', 'Doc1:UserData:GPSCoordinates']) // ['-PNG:Title=']
 */
export function deletionsOf(tags: readonly string[]): string[] {
  return tags.filter((key) => key.split(':').length === 2 && !key.startsWith('Composite:')).map((key) => `-${key}=`);
}

/** A file whose location or description ExifTool could not delete: it must not be published. */
export class PrivateMetadataError extends Error {
  readonly code = 'PRIVATE_METADATA_NOT_REMOVABLE';
}

/** Removes location and descriptions from an original, without touching its pixels. */
export interface MetadataScrubber {
  /**
   * The bytes to publish: `data` itself when it carries no private tag, else a copy with those
   * tags deleted (same pixels, orientation and colour profile). Works in `dir`, an empty
   * directory the caller owns and removes.
   * @throws PrivateMetadataError when a private tag is still there after deleting
   */
  scrub(data: Buffer, mimeType: string, dir: string): Promise<Buffer>;
  /** Stops the ExifTool processes. */
  end(): Promise<void>;
}

/**
 * The scrubber on ExifTool (npm `exiftool-vendored`: the Perl script, run by the system's perl
 * with `-stay_open`, a few processes reused across files, each SIGKILLed when this process dies).
 */
export function createExiftoolScrubber(options: { maxProcs?: number } = {}): MetadataScrubber {
  const exiftool = new ExifTool({
    maxProcs: options.maxProcs ?? 2,
    useMWG: false,
    // ExifTool cannot be half-way through a write it was told to retry: one attempt each.
    taskRetries: 0,
    processFactory: async () => {
      const [command, args] = diesWithParent('perl', [await exiftoolPath(), ...DefaultExiftoolArgs]);
      return spawn(command, args, { stdio: 'pipe', env: { ...process.env, LANG: 'C' } });
    },
  });
  const privateTags = async (file: string) => privateTagsIn(await exiftool.readRaw(file, { readArgs: [...PRIVATE_METADATA_READ_ARGS] }));
  return {
    async scrub(data, mimeType, dir) {
      const file = join(dir, `original.${FILE_EXTENSIONS[mimeType] ?? 'bin'}`);
      await writeFile(file, data);
      // A file with nothing private is published as uploaded, byte for byte.
      if ((await privateTags(file)).length === 0) return data;
      const deleteTags = async (args: readonly string[]) => {
        try {
          await exiftool.write(file, {}, { writeArgs: [...args, '-overwrite_original'] });
        } catch (err) {
          // ExifTool refuses to rewrite a file whose structure it cannot follow; its message names our temp file.
          throw new PrivateMetadataError(`location or description could not be removed from the original: ${publicDetail(err instanceof Error ? err.message : String(err))}`);
        }
      };
      await deleteTags(PRIVATE_METADATA_DELETIONS);
      let left = await privateTags(file);
      // Blocks and names the list does not cover (XMP-tiff:ImageDescription, PNG:Title, a maker
      // note's City): deleted by the names found, then read once more.
      const byName = deletionsOf(left);
      if (byName.length > 0) {
        await deleteTags(byName);
        left = await privateTags(file);
      }
      if (left.length > 0) throw new PrivateMetadataError(`location or description could not be removed from the original (${left.slice(0, 5).join(', ')})`);
      return readFile(file);
    },
    end: () => exiftool.end(),
  };
}
