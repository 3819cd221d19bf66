/**
 * This API as the backend of Uppy's `@uppy/aws-s3` plugin (v5: the signing-function options).
 * Browser only (Uppy's XHR uploads); an ES module because the Uppy packages are.
 *
 *   new Uppy().use(Dashboard, { inline: true, target: '#uploads' }).use(AwsS3, await awsS3Options(client));
 *
 * Each Uppy file gets one upload session. Its media id is the `key` Uppy carries through the
 * multipart calls, so they map onto the API one to one: parts are presigned lazily through
 * `POST /media/{id}/parts` (the session's first URLs used first), a resume lists
 * `GET /media/{id}/parts`, an abort is `DELETE /media/{id}` (the workflow compensates), and the
 * upload is confirmed with `POST /media/{id}/complete`, after the last byte of a single PUT too.
 * Whether a file is multipart and where its parts end come from the API's own plan
 * (`GET /upload-options` and planUpload), so Uppy cuts the parts the session expects.
 */
import AwsS3, { type AwsS3Options, type AwsS3Part, type AwsS3UploadParameters } from '@uppy/aws-s3';
import type { Body, Meta, UppyFile } from '@uppy/core';
import { planUpload } from '../shared/upload-plan.js';
import type { MediaType } from '../shared/media-types.js';
import { defaultMediaType, fileTypeOf, MediaClientError, type MediaUploadClient, type PresignedPart, type UploadSession } from './index.js';

/** Part URLs asked for in one `POST /media/{id}/parts` when the session's own run out. */
const PART_URLS_PER_REQUEST = 10;

export interface AwsS3OptionsSettings {
  /** Media type of every file; default POST_IMAGE for images and POST_VIDEO for videos. */
  mediaType?: MediaType;
  /**
   * Project of every file (the session's `projectId`; the token must grant it, else the file
   * fails with PROJECT_FORBIDDEN). A file's own `meta.projectId` (Uppy's `setFileMeta`) wins.
   */
  projectId?: string;
}

/**
 * Options for `uppy.use(AwsS3, …)` that upload through `client`'s API. Asks the API once for
 * its multipart threshold and part size. Errors of the API reach Uppy as MediaClientError
 * (with the stable `code`), which the Dashboard shows on the file.
 */
export async function awsS3Options<M extends Meta, B extends Body>(
  client: MediaUploadClient,
  settings: AwsS3OptionsSettings = {},
): Promise<AwsS3Options<M, B>> {
  const limits = await client.uploadOptions();
  const planOf = (size: number) => planUpload(size, limits.multipartThresholdBytes, limits.partSizeBytes);
  /** One session per Uppy file, created on the first call that needs it. */
  const sessions = new Map<string, Promise<UploadSession>>();
  /** Presigned part URLs not used yet, by media id and part number; each is used once. */
  const partUrls = new Map<string, Map<number, PresignedPart>>();
  /** Single-PUT URLs handed to Uppy, with the media each one confirms once its bytes are in S3. */
  const singlePuts = new Map<string, string>();

  const sessionOf = (file: UppyFile<M, B>): Promise<UploadSession> => {
    let session = sessions.get(file.id);
    if (!session) {
      const fileType = fileTypeOf(file.type, file.name ?? '');
      const mediaType = settings.mediaType ?? defaultMediaType(fileType);
      const projectId = typeof file.meta.projectId === 'string' && file.meta.projectId ? file.meta.projectId : settings.projectId;
      session = mediaType
        ? client.createSession({ fileName: file.name ?? 'file', fileType, fileSize: file.size ?? 0, mediaType, projectId })
        : Promise.reject(new MediaClientError('UNSUPPORTED_MEDIA_TYPE', `${fileType || 'this file type'} is not an accepted image or video type`));
      // A failed creation may be tried again (Uppy's retry button).
      session.catch(() => sessions.delete(file.id));
      sessions.set(file.id, session);
    }
    return session;
  };

  const unusedUrls = (mediaId: string) => {
    let urls = partUrls.get(mediaId);
    if (!urls) partUrls.set(mediaId, (urls = new Map()));
    return urls;
  };

  return {
    shouldUseMultipart: (file) => planOf(file.size ?? 0).multipart,
    // Uppy cuts parts exactly where the API's plan ends them (the session's partSize).
    getChunkSize: (file) => planOf(file.size).partSize,

    async getUploadParameters(file): Promise<AwsS3UploadParameters> {
      const { mediaId, upload } = await sessionOf(file);
      if (upload.method !== 'PUT') throw new MediaClientError('INVALID_RESPONSE', 'the API planned a multipart upload for this file');
      singlePuts.set(upload.url, mediaId);
      return { method: 'PUT', url: upload.url, headers: upload.headers };
    },

    async uploadPartBytes(options) {
      const result = await AwsS3.uploadPartBytes(options);
      // A single PUT is confirmed after its last byte, as a multipart upload is by completeMultipartUpload.
      const mediaId = singlePuts.get(options.signature.url);
      if (mediaId) {
        singlePuts.delete(options.signature.url);
        await client.confirm(mediaId, undefined, options.signal);
      }
      return result;
    },

    async createMultipartUpload(file) {
      const { mediaId, upload } = await sessionOf(file);
      if (upload.method !== 'MULTIPART') throw new MediaClientError('INVALID_RESPONSE', 'the API planned a single PUT for this file');
      const urls = unusedUrls(mediaId);
      for (const part of upload.parts) urls.set(part.partNumber, part);
      return { uploadId: upload.uploadId, key: mediaId };
    },

    async signPart(file, { key: mediaId, partNumber, signal }): Promise<AwsS3UploadParameters> {
      const urls = unusedUrls(mediaId);
      if (!urls.has(partNumber)) {
        // Lazily, a few at a time: this part and the next ones Uppy will ask for.
        const { partCount } = planOf(file.size ?? 0);
        const wanted = Array.from({ length: Math.min(PART_URLS_PER_REQUEST, partCount - partNumber + 1) }, (_, i) => partNumber + i);
        for (const part of await client.presignParts(mediaId, wanted, signal)) urls.set(part.partNumber, part);
      }
      const part = urls.get(partNumber);
      if (!part) throw new MediaClientError('INVALID_RESPONSE', `no URL for part ${partNumber}`);
      // Used once: a retry after an expired URL gets a fresh one.
      urls.delete(partNumber);
      return { method: 'PUT', url: part.url, headers: part.headers };
    },

    async listParts(_file, { key: mediaId, signal }): Promise<AwsS3Part[]> {
      const stored = await client.listParts(mediaId, signal);
      return stored.parts.map((p) => ({ PartNumber: p.partNumber, ETag: p.etag, Size: p.size }));
    },

    async completeMultipartUpload(_file, { key: mediaId, parts, signal }) {
      partUrls.delete(mediaId);
      await client.confirm(
        mediaId,
        parts.map((p) => ({ partNumber: p.PartNumber!, etag: p.ETag! })),
        signal,
      );
      return {};
    },

    async abortMultipartUpload(file, { key: mediaId }) {
      partUrls.delete(mediaId);
      sessions.delete(file.id);
      // Cancelling the media: its workflow aborts the multipart upload and deletes what it held.
      await client.cancel(mediaId);
    },
  } satisfies AwsS3Options<M, B>;
}
