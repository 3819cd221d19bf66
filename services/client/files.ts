import { canonicalMimeType, FILE_EXTENSIONS, MEDIA_TYPE_RULES, type MediaType } from '../shared/media-types';

/** File extension → MIME type: the server's own table, plus the common spellings it does not emit. */
const MIME_BY_EXTENSION: Record<string, string> = {
  ...Object.fromEntries(Object.entries(FILE_EXTENSIONS).map(([mime, ext]) => [ext, mime])),
  jpeg: 'image/jpeg',
  jpe: 'image/jpeg',
  m4v: 'video/mp4',
  qt: 'video/quicktime',
};

/** The MIME type the API expects for a file name, from its extension; undefined when unknown. */
export function mimeTypeFromFileName(fileName: string): string | undefined {
  const dot = fileName.lastIndexOf('.');
  return dot === -1 ? undefined : MIME_BY_EXTENSION[fileName.slice(dot + 1).toLowerCase()];
}

/**
 * The MIME type to declare for a file: its own type without parameters (a MediaRecorder Blob
 * is typed `video/webm;codecs=vp8,opus`; the API and S3 take the bare type), else the one its
 * extension implies (browsers give HEIC files no type); '' when neither says.
 */
export function fileTypeOf(type: string | undefined, fileName: string): string {
  return canonicalMimeType(type ?? '') || mimeTypeFromFileName(fileName) || '';
}

/** Images go to POST_IMAGE, videos to POST_VIDEO, PDFs to DOCUMENT; PROFILE_IMAGE is only ever chosen explicitly. */
const DEFAULT_MEDIA_TYPES: readonly MediaType[] = ['POST_IMAGE', 'POST_VIDEO', 'DOCUMENT'];

/**
 * File extensions (without the dot) whose type `mediaTypes` accept, in the rules' order:
 * what to tell someone whose file was refused for its extension.
 */
export function acceptedExtensions(mediaTypes: readonly MediaType[] = DEFAULT_MEDIA_TYPES): string[] {
  const mimes = new Set(mediaTypes.flatMap((type) => MEDIA_TYPE_RULES[type].allowedMimeTypes));
  return Object.entries(MIME_BY_EXTENSION)
    .filter(([, mime]) => mimes.has(mime))
    .map(([ext]) => ext);
}


export function defaultMediaType(mimeType: string): MediaType | undefined {
  return DEFAULT_MEDIA_TYPES.find((type) => MEDIA_TYPE_RULES[type].allowedMimeTypes.includes(mimeType));
}

export interface FileProblem {
  /** The code the API would answer with (`UNSUPPORTED_MEDIA_TYPE`, `FILE_TOO_LARGE`, `EMPTY_FILE`). */
  code: string;
  message: string;
}

/**
 * The server's limits checked before any request (same rules table as the API), so a
 * rejected file gets its message at once. The server checks again; this is a courtesy.
 */
export function checkFile(file: { fileType: string; fileSize: number }, mediaType: MediaType): FileProblem | undefined {
  const rule = MEDIA_TYPE_RULES[mediaType];
  if (!rule.allowedMimeTypes.includes(file.fileType)) {
    return {
      code: 'UNSUPPORTED_MEDIA_TYPE',
      message: `${file.fileType || 'this file type'} is not accepted for ${mediaType} (accepted: ${rule.allowedMimeTypes.join(', ')})`,
    };
  }
  if (file.fileSize === 0) return { code: 'EMPTY_FILE', message: 'the file is empty' };
  if (file.fileSize > rule.maxBytes) {
    return {
      code: 'FILE_TOO_LARGE',
      message: `${mediaType} files may be at most ${formatBytes(rule.maxBytes)} (this one is ${formatBytes(file.fileSize)})`,
    };
  }
  return undefined;
}

/** 1536 → "1.5 KiB". */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** What a `failureReason` (`CODE: detail`, as the workflow records it) means for the person who uploaded. */
const FAILURE_MEANINGS: Record<string, string> = {
  CONTENT_MISMATCH: "the file's content does not match its type",
  SIZE_MISMATCH: 'the stored file does not have the declared size',
  UPLOAD_INCOMPLETE: 'the upload never completed',
  UPLOAD_CHANGED: 'the file was uploaded again after it had been checked; upload it as a new file',
  CHECKSUM_MISMATCH: 'the uploaded bytes are not the file whose checksum was declared (a part was corrupted or replaced); upload it again',
  MALWARE: 'the virus scanner flagged the file',
  TOO_LARGE_TO_SCAN: 'the file is too large to be scanned',
  UNDECODABLE_MEDIA: 'the file could not be decoded as an image, video or PDF (a PDF cut short is one)',
  DOCUMENT_TOO_COMPLEX: 'the PDF could not be read within the time and memory a document may take',
  UNPROCESSABLE_IMAGE: 'the image decoded but its thumbnails could not be written',
  NO_VIDEO_STREAM: 'the file has sound (and perhaps cover art) but no video',
  PRIVATE_METADATA_NOT_REMOVABLE: "the photo's location or description could not be removed, so it was not published; export it without location and upload it again",
  UPLOAD_EXPIRED: 'the upload was not completed in time',
  CANCELLED_BY_USER: 'the upload was cancelled',
};

export function explainFailure(failureReason: string | null | undefined): string {
  if (!failureReason) return 'no reason recorded';
  const code = failureReason.split(':', 1)[0]!;
  const meaning = FAILURE_MEANINGS[code];
  return meaning ? `${meaning} (${failureReason})` : failureReason;
}
