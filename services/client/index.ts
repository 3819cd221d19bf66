import { backOff } from 'exponential-backoff';
import type { z } from 'zod';
import type { mediaResponse, uploadSessionResponse } from '../api/schemas';
import { isTerminal, type MediaStatus, type MediaType } from '../shared/media-types';
import { checkFile, defaultMediaType, fileTypeOf } from './files';
import { EventStreamParser } from './sse';

export { acceptedExtensions, checkFile, defaultMediaType, explainFailure, fileTypeOf, formatBytes, mimeTypeFromFileName, type FileProblem } from './files';

/**
 * Client of the media upload API for Node 20+ and browsers alike (global fetch, Blob,
 * WebCrypto): upload session, bytes straight to S3 (one PUT, or parts in parallel with
 * per-part retries and re-signing), resume after a crash, and the wait for a final status.
 */

export type Media = z.infer<typeof mediaResponse>;
export type UploadSession = z.infer<typeof uploadSessionResponse>;

/** A presigned S3 request: send exactly these headers (they are part of the signature). */
export interface PresignedPart {
  partNumber: number;
  url: string;
  headers: Record<string, string>;
}

/** `GET /media/{id}/parts`: what S3 already holds of a multipart upload. */
export interface StoredParts {
  mediaId: string;
  uploadId: string;
  partSize: number;
  partCount: number;
  parts: Array<{ partNumber: number; etag: string; size: number; checksumSha256?: string }>;
}

/** File bytes: a Blob (a browser File, or `fs.openAsBlob` in Node, read lazily) or bytes in memory. */
export type UploadSource = Blob | Uint8Array;

export interface UploadProgress {
  /** Undefined while hashing, before the session exists. */
  mediaId: string | undefined;
  /** `hashing` the whole file for its SHA-256, `uploading` bytes to S3, `completing` (confirming to the API), `uploaded`. */
  phase: 'hashing' | 'uploading' | 'completing' | 'uploaded';
  /** Bytes hashed (hashing) or bytes stored in S3 (the other phases); parts count when they are complete. */
  loaded: number;
  total: number;
}

export interface MediaUploadClientOptions {
  /** Origin of the API, e.g. `http://localhost:8080`; `''` in a browser page served by the API. */
  baseUrl: string;
  /** Bearer token, or a function giving one (called before every request, so it may refresh). */
  token: string | (() => string | Promise<string>);
  /** Parts of one upload in flight at once. Default 4. */
  concurrency?: number;
  /** Retries of a part PUT or an API call after a transient failure (network, 5xx, 429, expired URL). Default 4. */
  partRetries?: number;
  /** First retry delay; doubles per retry up to 10 s, with full jitter. Default 500 ms. */
  retryDelayMs?: number;
  /** How often waitForReady polls `GET /media/{id}` when the event stream is unavailable. Default 1000 ms. */
  pollIntervalMs?: number;
  /** The fetch to use (tests inject faults through it). Default: the global fetch. */
  fetch?: typeof fetch;
  /**
   * Longest wait for one answer of the API (not for the S3 transfers, which take as long as the
   * bytes need); a call that takes longer is abandoned and retried like a network error, so a
   * stuck proxy or API never holds an upload forever. Default 30 000 ms.
   */
  requestTimeoutMs?: number;
}

export interface UploadOptions {
  /** Required for a Uint8Array; defaults to a File's own name. */
  fileName?: string;
  /** MIME type; defaults to the Blob's type, else the one of the file name's extension. */
  fileType?: string;
  /** Defaults to POST_IMAGE for images, POST_VIDEO for videos and DOCUMENT for PDFs. */
  mediaType?: MediaType;
  /** Upload into this project (one the token's projects claim grants; 403 PROJECT_FORBIDDEN otherwise). */
  projectId?: string;
  /**
   * Send SHA-256 digests so that S3 itself refuses corrupted bytes: of the whole file with the
   * session (it signs the single PUT) and of every part of a multipart upload. In a browser
   * this needs a secure context (https or localhost) for WebCrypto.
   */
  sha256?: boolean;
  /** Stops the upload, in-flight PUTs included. The media stays; cancel() it to compensate. */
  signal?: AbortSignal;
  onProgress?: (progress: UploadProgress) => void;
  /** Called once the media exists, before any byte is sent (e.g. to cancel it on Ctrl-C). */
  onSession?: (session: UploadSession) => void;
}

export type ResumeOptions = Pick<UploadOptions, 'sha256' | 'signal' | 'onProgress'>;

export interface UploadResult {
  mediaId: string;
  /** Status right after the confirmation (the workflow takes over from there). */
  status: MediaStatus;
}

export interface WaitOptions {
  /** e.g. `AbortSignal.timeout(600_000)` to give up after ten minutes. */
  signal?: AbortSignal;
  /** Every status the media goes through, once each. */
  onStatus?: (media: Media) => void;
  /** Once, when a video becomes playable (`media.playback` set; usually while PROCESSING). */
  onPlayable?: (media: Media) => void;
}

/** An API error (its stable `code` and HTTP status) or a client-side one (`ABORTED`, `NETWORK_ERROR`, `STORAGE_ERROR`, …). */
export class MediaClientError extends Error {
  readonly code: string;
  readonly status?: number;
  readonly details?: Record<string, unknown>;
  /** Worth another attempt (network failure, 5xx, 429, an expired part URL). */
  readonly retryable: boolean;
  /** The API's `Retry-After` (429, 503), in ms: the earliest a retry is worth it. */
  readonly retryAfterMs?: number;

  constructor(
    code: string,
    message: string,
    extra: { status?: number; details?: Record<string, unknown>; retryable?: boolean; retryAfterMs?: number } = {},
  ) {
    super(message);
    this.name = 'MediaClientError';
    this.code = code;
    this.status = extra.status;
    this.details = extra.details;
    this.retryable = extra.retryable ?? false;
    this.retryAfterMs = extra.retryAfterMs;
  }
}

/**
 * WebCrypto digests in one call, so the whole-file SHA-256 holds the file in memory: it is
 * computed up to this size only. Larger files are multipart anyway and get one digest per part.
 */
const WHOLE_FILE_DIGEST_MAX_BYTES = 64 * 1024 * 1024;
/** Part URLs asked for at once when the session did not include them. */
const PART_URL_BATCH = 100;
/** A complete body listing more parts than this would exceed the API's JSON body limit; S3's own list is used then. */
const MAX_PARTS_IN_COMPLETE = 1000;
const MAX_RETRY_DELAY_MS = 10_000;
/** S3's answers to bytes that do not match their signed digest: read from the source again, they may arrive intact. */
const CORRUPTED_IN_TRANSIT = ['BadDigest', 'XAmzContentSHA256Mismatch'];

export class MediaUploadClient {
  private readonly fetchImpl: typeof fetch;
  private readonly concurrency: number;
  private readonly partRetries: number;
  private readonly retryDelayMs: number;
  private readonly pollIntervalMs: number;
  private readonly requestTimeoutMs: number;

  constructor(private readonly options: MediaUploadClientOptions) {
    // Called unbound, window.fetch throws "Illegal invocation": always call it through globalThis.
    this.fetchImpl = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.concurrency = Math.max(1, options.concurrency ?? 4);
    this.partRetries = Math.max(0, options.partRetries ?? 4);
    this.retryDelayMs = options.retryDelayMs ?? 500;
    this.pollIntervalMs = options.pollIntervalMs ?? 1000;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
  }

  /** Creates the session, sends the bytes to S3 and confirms the upload. Then see waitForReady(). */
  async upload(source: UploadSource, options: UploadOptions = {}): Promise<UploadResult> {
    const fileName = options.fileName ?? (source as { name?: string }).name;
    if (!fileName) throw new MediaClientError('VALIDATION_FAILED', 'fileName is required for bytes without a name');
    const fileType = fileTypeOf(options.fileType || (source instanceof Blob ? source.type : ''), fileName);
    const fileSize = sizeOf(source);
    const mediaType = options.mediaType ?? defaultMediaType(fileType);
    if (!mediaType)
      throw new MediaClientError('UNSUPPORTED_MEDIA_TYPE', `${fileType || 'this file type'} is not an accepted image, video or PDF type`);
    const problem = checkFile({ fileType, fileSize }, mediaType);
    if (problem) throw new MediaClientError(problem.code, problem.message);

    const report = (phase: UploadProgress['phase'], loaded: number, mediaId?: string) =>
      options.onProgress?.({ mediaId, phase, loaded, total: fileSize });
    let checksumSha256: string | undefined;
    if (options.sha256 && fileSize <= WHOLE_FILE_DIGEST_MAX_BYTES) {
      report('hashing', 0);
      checksumSha256 = await sha256Base64(source);
      report('hashing', fileSize);
    }
    // Not aborted midway: a media the server created must reach onSession, so that the caller
    // can cancel it, rather than wait for its deadline unknown to anyone.
    const session = await this.createSession({ fileName, fileType, fileSize, mediaType, checksumSha256, projectId: options.projectId });
    options.onSession?.(session);
    if (options.signal?.aborted) throw aborted();
    const { mediaId, upload } = session;
    report('uploading', 0, mediaId);

    if (upload.method === 'PUT') {
      await this.retrying(() => this.put(upload, source, options.signal, { resignable: false, what: 'upload' }), options.signal);
      report('completing', fileSize, mediaId);
      const confirmed = await this.complete(mediaId, undefined, options.signal);
      report('uploaded', fileSize, mediaId);
      return confirmed;
    }
    const etags = new Map<number, string>();
    await this.uploadParts({
      mediaId,
      source,
      partSize: upload.partSize,
      partCount: upload.partCount,
      etags,
      // Digests are signed into part URLs: the session's URLs carry none.
      initialUrls: options.sha256 ? [] : upload.parts,
      sha256: options.sha256 ?? false,
      signal: options.signal,
      report: (loaded) => report('uploading', loaded, mediaId),
    });
    report('completing', fileSize, mediaId);
    const confirmed = await this.complete(mediaId, etags, options.signal);
    report('uploaded', fileSize, mediaId);
    return confirmed;
  }

  /**
   * Finishes an upload another process started (e.g. one that crashed): asks S3 which parts it
   * has (`GET /media/{id}/parts`), sends only the missing ones with fresh URLs, and confirms.
   * Parts already in S3 are trusted as they are. A single-PUT upload cannot be resumed unless
   * its object is complete (then it is only confirmed).
   */
  async resume(mediaId: string, source: UploadSource, options: ResumeOptions = {}): Promise<UploadResult> {
    const media = await this.getMedia(mediaId, options.signal);
    if (media.status !== 'AWAITING_UPLOAD') return { mediaId, status: media.status };
    const fileSize = sizeOf(source);
    if (fileSize !== media.fileSize) {
      throw new MediaClientError('SOURCE_MISMATCH', `the file has ${fileSize} bytes; media ${mediaId} was declared with ${media.fileSize}`);
    }
    let stored: StoredParts;
    try {
      stored = await this.listParts(mediaId, options.signal);
    } catch (err) {
      if (!(err instanceof MediaClientError && err.code === 'INVALID_STATE')) throw err;
      try {
        return await this.complete(mediaId, undefined, options.signal);
      } catch (completeErr) {
        if (completeErr instanceof MediaClientError && completeErr.code === 'UPLOAD_NOT_FOUND') {
          throw new MediaClientError(
            'NOT_RESUMABLE',
            'a single-PUT upload that never reached storage cannot be resumed; upload the file again',
          );
        }
        throw completeErr;
      }
    }
    const lengthOf = partLengths(fileSize, stored.partSize, stored.partCount);
    const etags = new Map(stored.parts.filter((p) => p.size === lengthOf(p.partNumber)).map((p) => [p.partNumber, p.etag]));
    const alreadyStored = [...etags.keys()].reduce((sum, n) => sum + lengthOf(n), 0);
    const report = (phase: UploadProgress['phase'], loaded: number) => options.onProgress?.({ mediaId, phase, loaded, total: fileSize });
    report('uploading', alreadyStored);
    await this.uploadParts({
      mediaId,
      source,
      partSize: stored.partSize,
      partCount: stored.partCount,
      etags,
      initialUrls: [],
      sha256: options.sha256 ?? false,
      signal: options.signal,
      report: (loaded) => report('uploading', loaded),
    });
    report('completing', fileSize);
    const confirmed = await this.complete(mediaId, etags, options.signal);
    report('uploaded', fileSize);
    return confirmed;
  }

  /**
   * Resolves with the media once it is terminal (READY, REJECTED, FAILED, EXPIRED, CANCELLED,
   * DELETED). Follows the SSE stream `GET /media/{id}/events`; if the stream cannot be opened
   * or breaks (a proxy that buffers, an idle timeout), polls `GET /media/{id}` instead.
   */
  async waitForReady(mediaId: string, options: WaitOptions = {}): Promise<Media> {
    return this.waitUntil(mediaId, (media) => isTerminal(media.status), options);
  }

  /**
   * Resolves with the media as soon as a video can be played — `media.playback.masterUrl` is
   * set, usually seconds after the upload while the status is still PROCESSING — or once it is
   * terminal without becoming playable (REJECTED, FAILED, CANCELLED…; `playback` is null then).
   * Follows the event stream like waitForReady, polling when it is unavailable.
   */
  async waitForPlayable(mediaId: string, options: WaitOptions = {}): Promise<Media> {
    return this.waitUntil(mediaId, (media) => !!media.playback || isTerminal(media.status), options);
  }

  /** The media once `done(media)`: from the SSE stream, else by polling GET /media/{id}. */
  private async waitUntil(mediaId: string, done: (media: Media) => boolean, options: WaitOptions): Promise<Media> {
    const { signal } = options;
    let lastStatus: string | undefined;
    let playable = false;
    const seen = (media: Media) => {
      if (media.playback && !playable) {
        playable = true;
        options.onPlayable?.(media);
      }
      if (media.status === lastStatus) return;
      lastStatus = media.status;
      options.onStatus?.(media);
    };
    try {
      const media = await this.followEvents(mediaId, seen, done, signal);
      if (media) return media;
    } catch (err) {
      if (signal?.aborted) throw aborted();
      // The API refusing us (unknown media, bad token) is final; anything else falls back to polling.
      if (err instanceof MediaClientError && err.status !== undefined && err.status < 500 && !err.retryable) throw err;
    }
    for (;;) {
      const media = await this.getMedia(mediaId, signal);
      seen(media);
      if (done(media)) return media;
      await delay(this.pollIntervalMs, signal);
    }
  }

  /**
   * `POST /media/upload-session`: the media, its workflow and the presigned upload (one PUT,
   * or a multipart upload with its first part URLs). Sent with an Idempotency-Key, so a
   * retried request returns the same session instead of a second media.
   */
  createSession(
    file: { fileName: string; fileType: string; fileSize: number; mediaType: MediaType; checksumSha256?: string; projectId?: string },
    signal?: AbortSignal,
  ): Promise<UploadSession> {
    const { checksumSha256, projectId, ...rest } = file;
    return this.request<UploadSession>('POST', '/media/upload-session', {
      body: { ...rest, ...(checksumSha256 ? { checksumSha256 } : {}), ...(projectId ? { projectId } : {}) },
      headers: { 'idempotency-key': randomKey() },
      signal,
    });
  }

  /** `POST /media/{id}/parts`: freshly presigned URLs of these parts (at most 1000 at once). */
  async presignParts(mediaId: string, partNumbers: number[], signal?: AbortSignal): Promise<PresignedPart[]> {
    return (await this.presignPartBatch(mediaId, partNumbers, undefined, signal)).parts;
  }

  /**
   * `POST /media/{id}/complete`: the bytes are all in S3, the workflow takes over. A multipart
   * upload may pass its parts (the API checks them against S3's list); a single PUT passes none.
   */
  confirm(mediaId: string, parts?: Array<{ partNumber: number; etag: string }>, signal?: AbortSignal): Promise<UploadResult> {
    return this.complete(mediaId, parts && new Map(parts.map((p) => [p.partNumber, p.etag])), signal);
  }

  /** `GET /upload-options`: the multipart threshold and part size the API plans uploads with. */
  uploadOptions(signal?: AbortSignal): Promise<{ multipartThresholdBytes: number; partSizeBytes: number; maxParts: number }> {
    return this.request('GET', '/upload-options', { signal });
  }

  private presignPartBatch(mediaId: string, partNumbers: number[], checksums: Record<string, string> | undefined, signal?: AbortSignal) {
    return this.request<{ parts: PresignedPart[] }>('POST', `/media/${encodeURIComponent(mediaId)}/parts`, {
      body: { partNumbers, ...(checksums ? { checksums } : {}) },
      signal,
    });
  }

  getMedia(mediaId: string, signal?: AbortSignal): Promise<Media> {
    return this.request<Media>('GET', `/media/${encodeURIComponent(mediaId)}`, { signal });
  }

  listParts(mediaId: string, signal?: AbortSignal): Promise<StoredParts> {
    return this.request<StoredParts>('GET', `/media/${encodeURIComponent(mediaId)}/parts`, { signal });
  }

  /**
   * `GET /media/{id}/text`: the text extracted from a READY document (page texts separated by
   * form feeds, '' for a scan; `truncated` past the server's cap). TEXT_NOT_FOUND for other
   * media and password-protected PDFs.
   */
  getText(mediaId: string, signal?: AbortSignal): Promise<{ mediaId: string; text: string; sizeBytes: number; truncated: boolean; pagesRead: number }> {
    return this.request('GET', `/media/${encodeURIComponent(mediaId)}/text`, { signal });
  }

  /** `DELETE /media/{id}`: cancels an upload in flight (the workflow compensates) or deletes a finished media. */
  cancel(mediaId: string, signal?: AbortSignal): Promise<{ mediaId: string; status: MediaStatus; action: string }> {
    return this.request('DELETE', `/media/${encodeURIComponent(mediaId)}`, { signal });
  }

  private complete(mediaId: string, etags: Map<number, string> | undefined, signal?: AbortSignal): Promise<UploadResult> {
    // The part list lets the API check S3 holds what we sent; without every ETag (a CORS policy
    // that hides them) or for very many parts, the API uses S3's own list.
    const listed = etags && etags.size <= MAX_PARTS_IN_COMPLETE && [...etags.values()].every(Boolean);
    const body = listed ? { parts: [...etags].map(([partNumber, etag]) => ({ partNumber, etag })) } : {};
    return this.request<UploadResult>('POST', `/media/${encodeURIComponent(mediaId)}/complete`, { body, signal });
  }

  /** Sends the parts not in `etags` yet, `concurrency` at a time; fills `etags` as parts land. */
  private async uploadParts(job: {
    mediaId: string;
    source: UploadSource;
    partSize: number;
    partCount: number;
    etags: Map<number, string>;
    initialUrls: PresignedPart[];
    sha256: boolean;
    signal?: AbortSignal;
    report: (loaded: number) => void;
  }): Promise<void> {
    const { mediaId, source, etags } = job;
    const lengthOf = partLengths(sizeOf(source), job.partSize, job.partCount);
    const missing = Array.from({ length: job.partCount }, (_, i) => i + 1).filter((n) => !etags.has(n));
    let loaded = [...etags.keys()].reduce((sum, n) => sum + lengthOf(n), 0);
    const sliceOf = (n: number) => slice(source, (n - 1) * job.partSize, (n - 1) * job.partSize + lengthOf(n));

    // One failed part stops its siblings; the caller's signal stops them all.
    const pool = new AbortController();
    const stop = () => pool.abort();
    job.signal?.addEventListener('abort', stop, { once: true });
    if (job.signal?.aborted) pool.abort();

    const urls = new Map<number, Promise<PresignedPart>>(job.initialUrls.map((p) => [p.partNumber, Promise.resolve(p)]));
    // Which signing request each URL came from (0: the session's): URLs signed together expire together.
    const signedIn = new Map<number, number>(job.initialUrls.map((p) => [p.partNumber, 0]));
    let signings = 0;
    const digests = new Map<number, string>();
    const requestUrls = (partNumbers: number[], checksums?: Record<string, string>) => {
      const signing = ++signings;
      const batch = this.presignPartBatch(mediaId, partNumbers, checksums, pool.signal);
      for (const n of partNumbers) {
        const url = batch.then(
          (r) =>
            r.parts.find((p) => p.partNumber === n) ?? Promise.reject(new MediaClientError('INVALID_RESPONSE', `no URL for part ${n}`)),
        );
        // Parts of a batch no worker has reached yet must not surface as unhandled rejections.
        url.catch(() => undefined);
        urls.set(n, url);
        signedIn.set(n, signing);
      }
    };
    const urlFor = async (n: number): Promise<PresignedPart> => {
      if (!urls.has(n)) {
        if (job.sha256) {
          // Each URL signs its part's digest, so each part gets its own request.
          const digest = digests.get(n) ?? (await sha256Base64(sliceOf(n)));
          digests.set(n, digest);
          requestUrls([n], { [n]: digest });
        } else {
          const from = missing.indexOf(n);
          requestUrls([n, ...missing.slice(from + 1).filter((m) => !urls.has(m) && !etags.has(m))].slice(0, PART_URL_BATCH));
        }
      }
      return urls.get(n)!;
    };

    const sendPart = async (n: number) => {
      let target: PresignedPart;
      try {
        target = await urlFor(n);
      } catch (err) {
        urls.delete(n);
        throw err;
      }
      try {
        const etag = await this.put(target, sliceOf(n), pool.signal, { resignable: true, what: `part ${n}` });
        etags.set(n, etag);
        loaded += lengthOf(n);
        job.report(loaded);
      } catch (err) {
        // A refused signature is almost always an expired URL, and URLs signed together (or
        // earlier) expire with it: their next attempts ask for fresh ones; later ones are kept.
        if (err instanceof MediaClientError && err.status === 403) {
          const expired = signedIn.get(n) ?? 0;
          missing.filter((m) => !etags.has(m) && (signedIn.get(m) ?? 0) <= expired).forEach((m) => urls.delete(m));
        }
        throw err;
      }
    };

    let next = 0;
    let firstError: unknown;
    const worker = async () => {
      while (next < missing.length && !pool.signal.aborted) {
        const n = missing[next++]!;
        try {
          await this.retrying(() => sendPart(n), pool.signal);
        } catch (err) {
          firstError ??= err;
          pool.abort();
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(this.concurrency, missing.length) }, worker));
    } finally {
      job.signal?.removeEventListener('abort', stop);
    }
    if (job.signal?.aborted) throw aborted();
    if (firstError) throw firstError;
  }

  /** One presigned PUT; resolves with the ETag S3 answered ('' when CORS hides it). */
  private async put(
    target: { url: string; headers: Record<string, string> },
    body: UploadSource,
    signal: AbortSignal | undefined,
    o: { resignable: boolean; what: string },
  ): Promise<string> {
    let res: Response;
    let text: string;
    try {
      res = await this.fetchImpl(target.url, { method: 'PUT', headers: target.headers, body: body as RequestInit['body'], signal });
      text = await res.text();
    } catch (err) {
      throw transportError(err, signal, o.what);
    }
    if (res.ok) return res.headers.get('etag') ?? '';
    const s3Code = /<Code>([^<]+)<\/Code>/.exec(text)?.[1];
    throw new MediaClientError(
      res.status === 403 ? 'STORAGE_DENIED' : 'STORAGE_ERROR',
      `${o.what}: storage answered ${res.status}${s3Code ? ` ${s3Code}` : ''}`,
      {
        status: res.status,
        details: s3Code ? { s3Code } : undefined,
        retryable: isTransient(res.status) || (o.resignable && res.status === 403) || CORRUPTED_IN_TRANSIT.includes(s3Code ?? ''),
      },
    );
  }

  /** A JSON API call; transient failures are retried (creating a session is safe to repeat: it carries an Idempotency-Key). */
  private request<T>(
    method: string,
    path: string,
    init: { body?: unknown; headers?: Record<string, string>; signal?: AbortSignal } = {},
  ): Promise<T> {
    return this.retrying(async () => {
      const headers: Record<string, string> = { authorization: `Bearer ${await this.bearer()}`, ...init.headers };
      if (init.body !== undefined) headers['content-type'] = 'application/json';
      let res: Response;
      let text: string;
      try {
        res = await this.fetchImpl(this.apiUrl(path), {
          method,
          headers,
          body: init.body === undefined ? undefined : JSON.stringify(init.body),
          // The caller's abort ends the call; the timeout ends this attempt only (a retryable NETWORK_ERROR).
          signal: init.signal ? AbortSignal.any([init.signal, AbortSignal.timeout(this.requestTimeoutMs)]) : AbortSignal.timeout(this.requestTimeoutMs),
        });
        text = await res.text();
      } catch (err) {
        throw transportError(err, init.signal, `${method} ${path}`);
      }
      const body = parseJson(text);
      if (!res.ok) throw apiError(res.status, body, text, res.headers.get('retry-after'));
      return body as T;
    }, init.signal);
  }

  /** Reads the event stream until `until` holds (a `status` or `playable` event); undefined when the stream ends first. */
  private async followEvents(mediaId: string, onMedia: (media: Media) => void, until: (media: Media) => boolean, signal?: AbortSignal): Promise<Media | undefined> {
    let res: Response;
    try {
      res = await this.fetchImpl(this.apiUrl(`/media/${encodeURIComponent(mediaId)}/events`), {
        headers: { authorization: `Bearer ${await this.bearer()}`, accept: 'text/event-stream' },
        signal,
      });
    } catch (err) {
      throw transportError(err, signal, 'event stream');
    }
    if (!res.ok || !res.body) {
      const text = await res.text().catch(() => '');
      throw apiError(res.status, parseJson(text), text);
    }
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    const parser = new EventStreamParser();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return undefined;
        for (const event of parser.push(decoder.decode(value, { stream: true }))) {
          if (event.event !== 'status' && event.event !== 'playable') continue;
          const media = JSON.parse(event.data) as Media;
          onMedia(media);
          if (until(media)) return media;
        }
      }
    } finally {
      await reader.cancel().catch(() => undefined);
    }
  }

  /**
   * Retries transient failures, at most `partRetries` times, with jittered exponential backoff.
   * An answer with Retry-After (a 503 OVERLOADED / DEPENDENCY_UNAVAILABLE, a 429) waits that long
   * first (capped at 10 s), then the jittered backoff, so clients told the same Retry-After do
   * not all come back at the same instant.
   */
  private retrying<T>(attempt: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    return backOff(attempt, {
      numOfAttempts: this.partRetries + 1,
      startingDelay: this.retryDelayMs,
      timeMultiple: 2,
      maxDelay: MAX_RETRY_DELAY_MS,
      jitter: 'full',
      retry: async (err: unknown) => {
        if (signal?.aborted || !(err instanceof MediaClientError) || !err.retryable) return false;
        if (err.retryAfterMs) await delay(Math.min(err.retryAfterMs, MAX_RETRY_DELAY_MS), signal);
        return true;
      },
    });
  }

  private async bearer(): Promise<string> {
    const { token } = this.options;
    return typeof token === 'function' ? token() : token;
  }

  private apiUrl(path: string): string {
    return `${this.options.baseUrl.replace(/\/$/, '')}/api/v1${path}`;
  }
}

function sizeOf(source: UploadSource): number {
  return source instanceof Uint8Array ? source.byteLength : source.size;
}

function slice(source: UploadSource, start: number, end: number): UploadSource {
  return source instanceof Uint8Array ? source.subarray(start, end) : source.slice(start, end);
}

/** Length of part n: every part is partSize except the last, which holds the rest. */
function partLengths(fileSize: number, partSize: number, partCount: number): (n: number) => number {
  return (n) => (n < partCount ? partSize : fileSize - partSize * (partCount - 1));
}

async function sha256Base64(data: UploadSource): Promise<string> {
  const subtle = globalThis.crypto?.subtle;
  if (!subtle)
    throw new MediaClientError('SHA256_UNAVAILABLE', 'SHA-256 needs WebCrypto, which browsers offer on https and localhost pages only');
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(await data.arrayBuffer());
  const digest = new Uint8Array(await subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
  return btoa(String.fromCharCode(...digest));
}

/** 128 random bits as hex (crypto.randomUUID is missing from browsers on plain-http pages). */
function randomKey(): string {
  return Array.from(globalThis.crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
}

function isTransient(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

function aborted(): MediaClientError {
  return new MediaClientError('ABORTED', 'aborted');
}

function transportError(err: unknown, signal: AbortSignal | undefined, what: string): MediaClientError {
  if (signal?.aborted) return aborted();
  if (err instanceof MediaClientError) return err;
  const cause = (err as { cause?: { message?: string } }).cause?.message;
  return new MediaClientError('NETWORK_ERROR', `${what}: ${(err as Error).message}${cause ? ` (${cause})` : ''}`, { retryable: true });
}

function apiError(status: number, body: unknown, text: string, retryAfter?: string | null): MediaClientError {
  const error = (body as { error?: { code?: string; message?: string; details?: Record<string, unknown> } } | undefined)?.error;
  // Seconds only: the API never sends an HTTP date.
  const retryAfterSeconds = Number(retryAfter ?? NaN);
  return new MediaClientError(error?.code ?? `HTTP_${status}`, error?.message ?? (text.slice(0, 200) || `HTTP ${status}`), {
    status,
    details: error?.details,
    retryable: isTransient(status),
    retryAfterMs: Number.isFinite(retryAfterSeconds) && retryAfterSeconds > 0 ? retryAfterSeconds * 1000 : undefined,
  });
}

function parseJson(text: string): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(aborted());
    const onAbort = () => {
      clearTimeout(timer);
      reject(aborted());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
