import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  type S3ClientResolvedConfig,
  type ServiceInputTypes,
  type ServiceOutputTypes,
} from '@aws-sdk/client-s3';
import { S3RequestPresigner } from '@aws-sdk/s3-request-presigner';
import { formatUrl } from '@aws-sdk/util-format-url';
import { HttpRequest } from '@smithy/protocol-http';
import type { Command } from '@smithy/types';
import type { Readable } from 'node:stream';
import type { Config } from './config';

export interface PresignedRequest {
  url: string;
  /** Headers the client must send exactly as given (they are part of the signature). */
  headers: Record<string, string>;
}

export interface UploadedPart {
  partNumber: number;
  etag: string;
  size: number;
  /** Base64 SHA-256, present when the upload was created with per-part checksums. */
  checksumSha256?: string;
}

export interface ObjectHead {
  size: number;
  contentType?: string;
  /** The object's ETag, quoted as S3 gives it: a read or copy with `ifMatch` set to it gets these bytes or fails. */
  etag?: string;
}

/**
 * `ifMatch`: the ETag the bytes must still have (S3 If-Match / x-amz-copy-source-if-match). A
 * presigned PUT stays valid after the upload was confirmed, so the object can be replaced under
 * a running workflow; a pinned read or copy then fails with 412 (isPreconditionFailed) instead
 * of reading bytes that were never verified or scanned.
 */
export interface Pinned {
  ifMatch?: string;
}

/** S3 answered 412: the object no longer has the ETag a pinned read or copy asked for. */
export function isPreconditionFailed(err: unknown): boolean {
  return isS3Error(err, 'PreconditionFailed', 412);
}

/** What S3 did not do in time: the call gave up after `timeoutMs` (named like the SDK's own timeouts). */
export class S3TimeoutError extends Error {
  override readonly name = 'TimeoutError';
  constructor(
    readonly timeoutMs: number,
    options?: { cause?: unknown },
  ) {
    super(`S3 did not answer within ${timeoutMs} ms`, options);
  }
}

type S3Command<Input extends ServiceInputTypes, Output extends ServiceOutputTypes> = Command<ServiceInputTypes, Input, ServiceOutputTypes, Output, S3ClientResolvedConfig>;

/**
 * One S3 client per process and one presigner built from it: endpoint and credential
 * provider are resolved once here, so presigning a URL is a local HMAC, not an SDK round trip
 * through the middleware stack.
 *
 * `limits.callTimeoutMs` (the API: S3_API_TIMEOUT_MS) bounds every S3 request made through this
 * object, the SDK's retries included: past it the request is aborted and rejects with an
 * `S3TimeoutError`. Unset (workers), calls wait as long as S3 keeps the
 * connection open.
 */
export class Storage {
  readonly client: S3Client;
  private readonly presigner: S3RequestPresigner;
  private readonly endpoint: URL | undefined;

  constructor(
    private readonly options: Pick<Config, 'S3_ENDPOINT' | 'S3_REGION' | 'S3_FORCE_PATH_STYLE'>,
    credentials?: { accessKeyId: string; secretAccessKey: string },
    private readonly limits: { callTimeoutMs?: number } = {},
  ) {
    this.client = new S3Client({
      region: options.S3_REGION,
      endpoint: options.S3_ENDPOINT,
      forcePathStyle: options.S3_FORCE_PATH_STYLE,
      credentials,
      // A default presigned PutObject would carry a CRC32 of an empty body, which S3-compatible
      // servers then enforce against the real upload.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // An unreachable endpoint fails fast (and is retried by the caller). A server that accepts
      // connections but does not answer (stopped) is bounded by limits.callTimeoutMs only: the
      // SDK merely logs a warning past requestTimeout.
      requestHandler: { connectionTimeout: 3000, requestTimeout: 120_000 },
    });
    this.presigner = new S3RequestPresigner({
      service: 's3',
      region: options.S3_REGION,
      credentials: this.client.config.credentials,
      sha256: this.client.config.sha256,
    });
    this.endpoint = options.S3_ENDPOINT ? new URL(options.S3_ENDPOINT) : undefined;
  }

  /**
   * `client.send` within `limits.callTimeoutMs` (if set), also stopped by `signal`. The
   * deadline's abort is not retried by the SDK, so the wait never exceeds it.
   */
  private async send<Input extends ServiceInputTypes, Output extends ServiceOutputTypes>(command: S3Command<Input, Output>, signal?: AbortSignal): Promise<Output> {
    const timeoutMs = this.limits.callTimeoutMs;
    if (timeoutMs === undefined) return this.client.send(command, { abortSignal: signal });
    const deadline = AbortSignal.timeout(timeoutMs);
    try {
      return await this.client.send(command, { abortSignal: signal ? AbortSignal.any([signal, deadline]) : deadline });
    } catch (err) {
      if (deadline.aborted && !signal?.aborted) throw new S3TimeoutError(timeoutMs, { cause: err });
      throw err;
    }
  }

  private request(method: string, bucket: string, key: string, query: Record<string, string>, headers: Record<string, string>) {
    const encodedKey = encodeKeyPath(key);
    const base = this.endpoint ?? new URL(`https://s3.${this.options.S3_REGION}.amazonaws.com`);
    const pathStyle = this.options.S3_FORCE_PATH_STYLE || !!this.endpoint;
    const hostname = pathStyle ? base.hostname : `${bucket}.${base.hostname}`;
    const port = base.port ? Number(base.port) : undefined;
    return new HttpRequest({
      method,
      protocol: base.protocol,
      hostname,
      port,
      path: pathStyle ? `${base.pathname.replace(/\/$/, '')}/${bucket}/${encodedKey}` : `/${encodedKey}`,
      query,
      headers: { host: port ? `${hostname}:${port}` : hostname, ...headers },
    });
  }

  private async presign(
    method: string,
    bucket: string,
    key: string,
    expiresIn: number,
    query: Record<string, string>,
    headers: Record<string, string>,
  ): Promise<PresignedRequest> {
    const signed = await this.presigner.presign(this.request(method, bucket, key, query, headers), {
      expiresIn,
      signableHeaders: new Set(Object.keys(headers)),
      // Checksum headers must be sent by the client, not moved into the query string.
      unhoistableHeaders: new Set(Object.keys(headers).filter((h) => h.startsWith('x-amz-'))),
    });
    const clientHeaders = Object.fromEntries(Object.entries(headers).filter(([name]) => name !== 'content-length'));
    return { url: formatUrl(signed), headers: clientHeaders };
  }

  /** A PUT URL that S3 honours only for this exact type, length and (optional) SHA-256. */
  presignPut(bucket: string, key: string, o: { contentType: string; contentLength: number; checksumSha256?: string; expiresIn: number }) {
    const headers: Record<string, string> = { 'content-type': o.contentType, 'content-length': String(o.contentLength) };
    if (o.checksumSha256) headers['x-amz-checksum-sha256'] = o.checksumSha256;
    return this.presign('PUT', bucket, key, o.expiresIn, {}, headers);
  }

  presignPart(bucket: string, key: string, o: { uploadId: string; partNumber: number; contentLength: number; checksumSha256?: string; expiresIn: number }) {
    const headers: Record<string, string> = { 'content-length': String(o.contentLength) };
    if (o.checksumSha256) headers['x-amz-checksum-sha256'] = o.checksumSha256;
    return this.presign('PUT', bucket, key, o.expiresIn, { partNumber: String(o.partNumber), uploadId: o.uploadId }, headers);
  }

  /**
   * With `contentDisposition`, S3 answers the GET with that Content-Disposition (e.g.
   * `attachment`: never shown inline). With `pin.ifMatch`, the URL is signed with an If-Match
   * header that the reader must send (`headers`).
   */
  presignGet(bucket: string, key: string, expiresIn: number, contentDisposition?: string, pin: Pinned = {}) {
    return this.presign('GET', bucket, key, expiresIn, contentDisposition ? { 'response-content-disposition': contentDisposition } : {}, pin.ifMatch ? { 'if-match': pin.ifMatch } : {});
  }

  /**
   * Part checksums, when the client gives them, are signed into each part URL and enforced by
   * S3 on UploadPart; the upload itself is created without a checksum algorithm because
   * S3-compatible servers differ in completing uploads that declare one.
   */
  async createMultipartUpload(bucket: string, key: string, contentType: string): Promise<string> {
    const out = await this.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ContentType: contentType }));
    if (!out.UploadId) throw new Error('S3 returned no UploadId');
    return out.UploadId;
  }

  /**
   * Parts already uploaded, one per part number (the latest upload of it, see `pickParts`), in
   * order; undefined when the multipart upload no longer exists. A part sent twice within one
   * second with different bytes is left out (`pickParts`' ambiguous): a resuming client sends
   * it again, and the upload is not taken as complete at its deadline.
   */
  async listParts(bucket: string, key: string, uploadId: string): Promise<UploadedPart[] | undefined> {
    const copies = await this.listPartCopies(bucket, key, uploadId);
    return copies && pickParts(copies).parts;
  }

  /**
   * Every part upload S3 lists, one entry per upload. A part sent twice (a client retrying
   * after a lost response) is listed twice by some S3-compatible servers (SeaweedFS), which
   * then assemble whichever copy the completion names by ETag; AWS S3 keeps the latest only.
   */
  async listPartCopies(bucket: string, key: string, uploadId: string): Promise<PartCopy[] | undefined> {
    const copies: PartCopy[] = [];
    let marker: string | undefined;
    try {
      do {
        const out = await this.send(new ListPartsCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumberMarker: marker }));
        for (const p of out.Parts ?? []) {
          copies.push({ partNumber: p.PartNumber!, etag: p.ETag!, size: p.Size ?? 0, checksumSha256: p.ChecksumSHA256, lastModified: p.LastModified?.getTime() ?? 0 });
        }
        marker = out.IsTruncated ? out.NextPartNumberMarker : undefined;
      } while (marker);
    } catch (err) {
      if (isS3Error(err, 'NoSuchUpload', 404)) return undefined;
      throw err;
    }
    return copies;
  }

  /** Parts created with checksums must be completed with them (S3 rejects the list otherwise). */
  async completeMultipartUpload(bucket: string, key: string, uploadId: string, parts: Array<Pick<UploadedPart, 'partNumber' | 'etag' | 'checksumSha256'>>) {
    await this.send(
      new CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key: key,
        UploadId: uploadId,
        MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.partNumber, ETag: p.etag, ChecksumSHA256: p.checksumSha256 })) },
      }),
    );
  }

  /** Idempotent: an upload that is already gone counts as aborted. */
  async abortMultipartUpload(bucket: string, key: string, uploadId: string): Promise<void> {
    try {
      await this.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }));
    } catch (err) {
      if (!isS3Error(err, 'NoSuchUpload', 404)) throw err;
    }
  }

  /** Resolves when the bucket exists and is reachable with these credentials (readiness). */
  async headBucket(bucket: string): Promise<void> {
    await this.send(new HeadBucketCommand({ Bucket: bucket }));
  }

  /** Aborts every multipart upload open for exactly `key`; returns how many there were. */
  async abortMultipartUploadsOf(bucket: string, key: string): Promise<number> {
    const out = await this.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: key }));
    const uploads = (out.Uploads ?? []).filter((u) => u.Key === key && u.UploadId);
    for (const u of uploads) await this.abortMultipartUpload(bucket, key, u.UploadId!);
    return uploads.length;
  }

  async head(bucket: string, key: string): Promise<ObjectHead | undefined> {
    try {
      const out = await this.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      return { size: out.ContentLength ?? 0, contentType: out.ContentType, etag: out.ETag };
    } catch (err) {
      if (isS3Error(err, 'NotFound', 404) || isS3Error(err, 'NoSuchKey', 404)) return undefined;
      throw err;
    }
  }

  /** The first `length` bytes of an object (magic-number checks). */
  async readHead(bucket: string, key: string, length: number, pin: Pinned = {}): Promise<Buffer> {
    const out = await this.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=0-${length - 1}`, IfMatch: pin.ifMatch }));
    return Buffer.from(await out.Body!.transformToByteArray());
  }

  /** Whole object in memory: only for objects bounded by a media type limit (images). */
  async getBuffer(bucket: string, key: string, pin: Pinned = {}): Promise<Buffer> {
    const out = await this.send(new GetObjectCommand({ Bucket: bucket, Key: key, IfMatch: pin.ifMatch }));
    return Buffer.from(await out.Body!.transformToByteArray());
  }

  async getStream(bucket: string, key: string, pin: Pinned = {}): Promise<Readable> {
    const out = await this.send(new GetObjectCommand({ Bucket: bucket, Key: key, IfMatch: pin.ifMatch }));
    return out.Body as Readable;
  }

  /**
   * `cacheControl`: the object's Cache-Control header. `contentLength`: bytes of a stream body
   * (a Buffer's is known). With `signal`, aborting it stops the request where it is (an activity
   * that was cancelled or timed out writes nothing more, even with a PUT in flight) and the call
   * rejects with an `AbortError`; the object is then absent or as it was before.
   */
  async put(bucket: string, key: string, body: Buffer | Readable, contentType: string, o: { cacheControl?: string; contentLength?: number; signal?: AbortSignal } = {}) {
    await this.send(
      new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: contentType, CacheControl: o.cacheControl, ContentLength: o.contentLength }),
      o.signal,
    );
  }

  /** Whole object in memory, or undefined when there is none (small objects: playlists). */
  async getIfExists(bucket: string, key: string): Promise<Buffer | undefined> {
    try {
      return await this.getBuffer(bucket, key);
    } catch (err) {
      if (isS3Error(err, 'NoSuchKey', 404)) return undefined;
      throw err;
    }
  }

  /** With `replace`, the copy gets these headers instead of the source's (S3 MetadataDirective REPLACE). */
  async copy(fromBucket: string, key: string, toBucket: string, toKey = key, replace?: { contentType: string; contentDisposition: string }, pin: Pinned = {}): Promise<void> {
    const source = `${fromBucket}/${encodeKeyPath(key)}`;
    await this.send(
      new CopyObjectCommand({
        Bucket: toBucket,
        Key: toKey,
        CopySource: source,
        CopySourceIfMatch: pin.ifMatch,
        ...(replace ? { MetadataDirective: 'REPLACE', ContentType: replace.contentType, ContentDisposition: replace.contentDisposition } : {}),
      }),
    );
  }

  /** Idempotent: deleting a missing key succeeds. */
  async delete(bucket: string, key: string): Promise<void> {
    await this.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
  }

  /** Size in bytes of every object below `prefix`, by key. */
  async objectSizes(bucket: string, prefix: string): Promise<Map<string, number>> {
    const sizes = new Map<string, number>();
    for await (const page of this.objectPages(bucket, prefix)) for (const o of page) sizes.set(o.key, o.size);
    return sizes;
  }

  async listKeys(bucket: string, prefix: string): Promise<string[]> {
    return [...(await this.objectSizes(bucket, prefix)).keys()];
  }

  /** Every object below `prefix`, one S3 page (≤ 1000) at a time, so a big bucket never sits in memory. */
  async *objectPages(bucket: string, prefix = ''): AsyncGenerator<Array<{ key: string; lastModified: Date; size: number }>> {
    let token: string | undefined;
    do {
      const out = await this.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
      yield (out.Contents ?? []).filter((o) => o.Key).map((o) => ({ key: o.Key!, lastModified: o.LastModified ?? new Date(0), size: o.Size ?? 0 }));
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token);
  }

  /** Multipart uploads not yet completed or aborted, one S3 page at a time. */
  async *multipartUploadPages(bucket: string): AsyncGenerator<Array<{ key: string; uploadId: string; initiated: Date }>> {
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    do {
      const out = await this.send(new ListMultipartUploadsCommand({ Bucket: bucket, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }));
      yield (out.Uploads ?? [])
        .filter((u) => u.Key && u.UploadId)
        .map((u) => ({ key: u.Key!, uploadId: u.UploadId!, initiated: u.Initiated ?? new Date(0) }));
      [keyMarker, uploadIdMarker] = out.IsTruncated ? [out.NextKeyMarker, out.NextUploadIdMarker] : [undefined, undefined];
    } while (keyMarker);
  }

  /** Deletes every object below `prefix`; returns how many were deleted. */
  async deletePrefix(bucket: string, prefix: string): Promise<number> {
    const keys = await this.listKeys(bucket, prefix);
    await this.deleteKeys(bucket, keys);
    return keys.length;
  }

  /** Deletes these keys, up to 1000 per request; missing keys are fine. */
  async deleteKeys(bucket: string, keys: string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += 1000) {
      const chunk = keys.slice(i, i + 1000);
      await this.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: chunk.map((Key) => ({ Key })), Quiet: true } }));
    }
  }
}

/**
 * An object key as a URL path: every byte but RFC 3986 unreserved characters and `/`
 * percent-encoded. SigV4 signs the path exactly as sent and S3 re-encodes the key it decoded
 * this way before checking; `encodeURIComponent` leaves `!'()*` raw, which S3 then signs as
 * `%21%27%28%29%2A` (403 SignatureDoesNotMatch). Keys written before owner segments were
 * hashed may hold such characters, so every signed or copied key goes through here.
 */
export function encodeKeyPath(key: string): string {
  return key
    .split('/')
    .map((segment) => encodeURIComponent(segment).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`))
    .join('/');
}

/**
 * Private metadata key (never served): `[{ partNumber, etag }]`, the ETags a refused
 * `complete` named for parts whose latest copies were other bytes (409 PARTS_MISMATCH). A
 * client that walks away after that refusal has said which bytes it meant: at the deadline
 * the upload is only taken as complete if those parts' latest copies are the ones it named.
 */
export const REFUSED_PART_CLAIMS = 'refusedPartClaims';

/** One upload of a part as S3 lists it; `lastModified` in epoch ms (S3 dates parts to the second). */
export type PartCopy = UploadedPart & { lastModified: number };

const bareEtag = (etag: string) => etag.replace(/"/g, '');

/**
 * One part per part number, in order. The latest upload of a part number counts: the copies
 * with the newest `lastModified`. S3 dates parts to the second and SeaweedFS lists the copies
 * of a part by a random name, so copies sent within the same second cannot be ordered: among
 * those the ETag the client `claimed` (it knows what it sent last) decides. Unclaimed, copies of
 * that second with different ETags are `ambiguous` and left out of `parts` (guessing published
 * the bytes a client had replaced half the time): the part counts as not uploaded until the
 * client names its ETag or sends it again. `mismatched` lists the part numbers whose claimed
 * ETag is not a latest copy (a stale or unknown ETag: the completion must be refused).
 * `claimed` may name some parts only; the others are taken as above.
 */
export function pickParts(
  copies: PartCopy[],
  claimed?: ReadonlyArray<{ partNumber: number; etag: string }>,
): { parts: UploadedPart[]; mismatched: number[]; ambiguous: number[] } {
  const byNumber = new Map<number, PartCopy[]>();
  for (const copy of copies) byNumber.set(copy.partNumber, [...(byNumber.get(copy.partNumber) ?? []), copy]);
  const wanted = new Map((claimed ?? []).map((p) => [p.partNumber, bareEtag(p.etag)]));
  const parts: UploadedPart[] = [];
  const mismatched: number[] = [];
  const ambiguous: number[] = [];
  for (const [partNumber, all] of [...byNumber].sort(([a], [b]) => a - b)) {
    const newest = Math.max(...all.map((c) => c.lastModified));
    const latest = all.filter((c) => c.lastModified === newest);
    const etag = wanted.get(partNumber);
    if (etag === undefined && new Set(latest.map((c) => bareEtag(c.etag))).size > 1) {
      ambiguous.push(partNumber);
      continue;
    }
    const chosen = etag === undefined ? latest[0]! : latest.find((c) => bareEtag(c.etag) === etag);
    if (!chosen) mismatched.push(partNumber);
    const { lastModified: _at, ...part } = chosen ?? latest[0]!;
    parts.push(part);
  }
  for (const partNumber of wanted.keys()) if (!byNumber.has(partNumber)) mismatched.push(partNumber);
  return { parts, mismatched: mismatched.sort((a, b) => a - b), ambiguous };
}

export function isS3Error(err: unknown, name: string, status?: number): boolean {
  if (!(err instanceof S3ServiceException) && !(err instanceof Error)) return false;
  const e = err as S3ServiceException;
  return e.name === name || (status !== undefined && e.$metadata?.httpStatusCode === status);
}
