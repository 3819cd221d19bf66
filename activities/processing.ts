import { ApplicationFailure, Context } from '@temporalio/activity';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import type { RenditionRow } from '../services/shared/db/entities';
import type { NewRendition } from '../services/shared/db/media-repository';
import { FfmpegExitError, probe, probeFrameSize, probeKeyframeInterval, privateContainerMetadata, probeContainer, remuxFormat, remuxWithoutMetadataArgs, runFfmpeg, UnplayableMediaError, type FfmpegPaths } from '../services/shared/media/ffmpeg';
import { publicDetail, ToolError } from '../services/shared/media/tool-errors';
import {
  buildCopyHlsArgs,
  buildHlsArgs,
  buildPosterArgs,
  displaySize,
  eventPlaylist,
  isCutShort,
  ladderFor,
  listedSegments,
  masterPlaylist,
  masterWithResolutions,
  playlistSeconds,
  posterTime,
  segmentsCovering,
  targetDuration,
  type ListedSegment,
  type ProbeResult,
  type VariantFacts,
} from '../services/shared/media/hls-args';
import { STANDARD_INPUT_RULES, standardInput } from '../services/shared/media/standard-input';
import { continuation, readPublishedPlaylist, type PublishedPlaylist } from '../services/shared/media/event-playlist';
import { makeThumbnails, UndecodableImageError, UnprocessableImageError, type Thumbnail } from '../services/shared/media/images';
import { padShortSegment } from '../services/shared/media/mpegts';
import { DERIVED_CACHE_CONTROL, derivedPrefix, MEDIA_TYPE_RULES, type MediaType } from '../services/shared/media-types';
import type { ClamdScanner } from '../services/shared/scanner';
import { pinnedToVerified, uploadChanged, type ActivityDeps } from './index';
import { heartbeatPerChunk, heartbeatWhile } from './progress';
import { announcePlayable } from './webhooks';
import { makeWorkDir } from './work-dirs';

export interface ProcessingInput {
  mediaId: string;
  storageKey: string;
  mediaType: MediaType;
  fileSize: number;
  /** ETag verification saw: reads are pinned to it (pinnedToVerified). Absent in workflows started before it was recorded. */
  etag?: string;
}

export interface ScanPolicy {
  maxBytes: number;
  oversizeAction: 'reject' | 'skip';
}

const streamContentType: Record<string, string> = { '.m3u8': 'application/vnd.apple.mpegurl', '.ts': 'video/mp2t', '.jpg': 'image/jpeg' };

/**
 * Uploads thumbnails under `derived/{mediaId}/thumbnails/` and describes them as renditions;
 * `onStored` runs after each upload (it may throw to stop before the next one); aborting
 * `signal` stops the PUT in flight.
 */
export async function storeThumbnails({ storage, buckets }: ActivityDeps, mediaId: string, thumbnails: Thumbnail[], onStored: () => void, signal?: AbortSignal): Promise<NewRendition[]> {
  const renditions: NewRendition[] = [];
  for (const t of thumbnails) {
    const key = `${derivedPrefix(mediaId)}thumbnails/${t.width}.${t.format === 'jpeg' ? 'jpg' : 'webp'}`;
    await storage.put(buckets.media, key, t.data, `image/${t.format}`, { cacheControl: DERIVED_CACHE_CONTROL, signal });
    onStored();
    renditions.push({ mediaId, kind: 'thumbnail', label: key.split('/').pop()!, width: t.width, height: t.height, storageKey: key, contentType: `image/${t.format}`, sizeBytes: t.data.length });
  }
  return renditions;
}

/** Scan activity (light queue): clamd INSTREAM over the object streamed from the incoming bucket. */
export function createScanActivities({ storage, media, buckets }: ActivityDeps, scanner: ClamdScanner, policy: ScanPolicy) {
  return {
    async scanOriginal(input: ProcessingInput): Promise<{ verdict: 'CLEAN' | 'SKIPPED' }> {
      if (input.fileSize > policy.maxBytes) {
        const reason = `file of ${input.fileSize} bytes exceeds the scanner limit of ${policy.maxBytes}`;
        if (policy.oversizeAction === 'reject') throw ApplicationFailure.nonRetryable(reason, 'TOO_LARGE_TO_SCAN');
        await media.mergeMetadata(input.mediaId, { scan: { status: 'SKIPPED', reason, at: new Date().toISOString() } });
        Context.current().log.warn('published without a virus scan by configuration (SCAN_OVERSIZE_ACTION=skip)', { mediaId: input.mediaId });
        return { verdict: 'SKIPPED' };
      }
      // Heartbeats as bytes flow to clamd and while it works on its verdict after the last one:
      // a worker killed mid-scan is noticed in seconds, a long verdict is not taken for one.
      const ctx = Context.current();
      let scanned = 0;
      const progress = heartbeatPerChunk(ctx, (bytes) => ({ scanned: (scanned = bytes) }));
      // The bytes verification saw, or none: a replaced object is never scanned in their place.
      // The client's whole-file SHA-256, checked on the bytes clamd reads: S3 enforces it on a
      // single PUT (it is signed into the URL), not on a multipart upload's assembled object.
      const expected = (await media.findById(input.mediaId))?.checksumSha256 ?? undefined;
      const hash = expected ? createHash('sha256') : undefined;
      const source = await pinnedToVerified(() => storage.getStream(buckets.incoming, input.storageKey, { ifMatch: input.etag }));
      if (hash) source.on('data', (chunk: Buffer) => hash.update(chunk));
      const result = await heartbeatWhile(ctx, () => ({ scanned, phase: 'verdict' }), scanner.scan(source.pipe(progress)));
      await media.mergeMetadata(input.mediaId, {
        scan: { status: result.infected ? 'INFECTED' : 'CLEAN', signatures: result.signatures, at: new Date().toISOString() },
      });
      if (result.infected) {
        // The object is deleted by the workflow's compensation, which runs next.
        throw ApplicationFailure.nonRetryable(`malware found: ${result.signatures.join(', ')}`, 'MALWARE', { signatures: result.signatures });
      }
      const actual = hash?.digest('base64');
      if (actual !== expected) {
        throw ApplicationFailure.nonRetryable(`the uploaded file's SHA-256 is ${actual}, the session declared ${expected}`, 'CHECKSUM_MISMATCH');
      }
      return { verdict: 'CLEAN' };
    },
  };
}

/** Image activity (light queue): sharp thumbnails + metadata into the media bucket and read model. */
export function createImageActivities(deps: ActivityDeps) {
  const { storage, media, buckets } = deps;
  return {
    async processImage(input: ProcessingInput): Promise<{ thumbnails: number }> {
      const ctx = Context.current();
      ctx.heartbeat({ phase: 'download' });
      const original = await pinnedToVerified(() => storage.getBuffer(buckets.incoming, input.storageKey, { ifMatch: input.etag }));
      let result: Awaited<ReturnType<typeof makeThumbnails>>;
      try {
        result = await makeThumbnails(original, MEDIA_TYPE_RULES[input.mediaType].thumbnailWidths);
      } catch (err) {
        if (err instanceof UndecodableImageError) {
          ctx.log.warn('image rejected as undecodable', { mediaId: input.mediaId, detail: err.detail ?? err.message });
          throw ApplicationFailure.nonRetryable(err.message, 'UNDECODABLE_MEDIA');
        }
        // sharp fails the same way on every attempt: eight retries only delay the FAILED by minutes.
        if (err instanceof UnprocessableImageError) throw ApplicationFailure.nonRetryable(err.message, 'UNPROCESSABLE_IMAGE');
        throw err;
      }
      // A retry starts clean: earlier partial output is removed, then every key is rewritten.
      stopIfCancelled(ctx, { phase: 'upload' });
      await storage.deletePrefix(buckets.media, `${derivedPrefix(input.mediaId)}thumbnails/`);
      const renditions = await storeThumbnails(deps, input.mediaId, result.thumbnails, () => stopIfCancelled(ctx, { phase: 'upload' }), ctx.cancellationSignal);
      await media.mergeMetadata(input.mediaId, { ...result.facts });
      await media.replaceRenditions(input.mediaId, renditions);
      return { thumbnails: renditions.length };
    },
  };
}

export interface VideoSettings {
  ffmpeg: FfmpegPaths;
  preset: string;
  segmentSeconds: number;
}

/**
 * Heartbeats (the way a cancellation reaches a running activity) and stops before a write to
 * the media bucket once the activity was aborted, so nothing lands after compensation.
 * @throws the CancelledFailure when the workflow cancelled the activity; a plain (retryable)
 *   Error when the worker is shutting down or the server no longer knows the attempt.
 */
function stopIfCancelled(ctx: Context, details: Record<string, unknown>): void {
  ctx.heartbeat(details);
  if (!ctx.cancellationSignal.aborted) return;
  const reason: unknown = ctx.cancellationSignal.reason;
  if (ctx.cancellationDetails?.cancelRequested) throw reason;
  throw new Error(`stopped before writing: ${reason instanceof Error ? reason.message : String(reason)}`);
}

/**
 * The error to report, without the worker's temp paths (`dir`): failure reasons are shown to
 * users and a local path means nothing to them. ApplicationFailures are built here without paths.
 */
export function withoutLocalPaths(err: unknown, dir: string): unknown {
  if (!(err instanceof Error) || err instanceof ApplicationFailure || !err.message.includes(dir)) return err;
  const clean = new Error(err.message.split(dir).join('<work dir>'));
  clean.name = err.name;
  return clean;
}

/**
 * The poster frame into `file`: 10 % into the video stream, else (a seek past the last frame
 * writes nothing) the first frame.
 * @throws UnplayableMediaError when not even the first frame decodes.
 */
async function takePoster(settings: VideoSettings, facts: ProbeResult, source: string, file: string, signal: AbortSignal): Promise<Buffer> {
  for (const at of [posterTime(facts), 'first'] as const) {
    try {
      await runFfmpeg(settings.ffmpeg, buildPosterArgs(facts, source, file, at), { signal });
      const data = await readFile(file);
      if (data.length > 0) return data;
    } catch (err) {
      if (signal.aborted) throw err;
      // ENOENT or an ffmpeg error: try the next position, then give up as undecodable.
    }
  }
  throw new UnplayableMediaError('no video frame could be decoded');
}

/** How the first playable rendition was made, recorded as `metadata.firstRendition` (public). */
export interface FirstRendition {
  /** `copy`: the original's streams segmented as they are; `fast`: one low rung encoded fast. */
  path: 'copy' | 'fast';
  /** Why the original is not standard input (empty for `copy`). */
  reasons: string[];
  /** Directory of the variant under `hls/` (`source` or `fast`), outside the ladder's. */
  rendition: string;
  /**
   * Milliseconds spent in each phase of this attempt, plus `playable at` and `encoded at` (since
   * the activity started: announced playable, ffmpeg exited) and `copy|fast encode` (ffmpeg's
   * run). Returned to the workflow history for operators and the bench, not stored in the read model.
   */
  phasesMs?: Record<string, number>;
}

/** Milliseconds per named phase, measured between successive `enter` calls. */
function phaseClock() {
  const phasesMs: Record<string, number> = {};
  let current: { name: string; since: number } | undefined;
  const enter = (name?: string) => {
    const now = performance.now();
    if (current) phasesMs[current.name] = Math.round((phasesMs[current.name] ?? 0) + now - current.since);
    current = name ? { name, since: now } : undefined;
  };
  /** Records a duration measured elsewhere (overlapping phases). */
  const mark = (name: string, ms: number) => (phasesMs[name] = Math.round(ms));
  return { enter, mark, phasesMs };
}

/**
 * Seconds at the start of the video stream whose keyframe spacing decides a stream copy:
 * 2.5 × the longest spacing accepted, so a stream at the limit shows two whole GOPs and one
 * past it shows a longer one. ffprobe reads every byte of the window over HTTP (a 1080p phone
 * clip: ~2 MB a second), so it is no longer than that.
 */
const KEYFRAME_WINDOW_SECONDS = 2.5 * STANDARD_INPUT_RULES.maxKeyframeIntervalSeconds;
/**
 * x264 preset of the fast rung: its job is to be watchable quickly; the ladder follows at the
 * configured preset and quality.
 */
const FAST_RUNG_PRESET = 'ultrafast';
/**
 * Target durations of the first rendition published before it is announced playable. Three:
 * a player that follows RFC 8216 §6.3.3 (and §4.3.5.2 for EXT-X-START) starts a playlist
 * without ENDLIST no earlier than three target durations before its end, so with that much
 * listed it can start at the first segment (and `#EXT-X-START:TIME-OFFSET=0` asks it to);
 * less would make it wait for the next reload. A shorter clip is announced once all is out.
 */
const PLAYABLE_AFTER_TARGET_DURATIONS = 3;
/**
 * Segment length of the first rendition, seconds (at most HLS_SEGMENT_SECONDS): short, so the
 * three target durations before the announcement are 6 s of video (a phone's 1080p: ~12 MB to upload;
 * the fast rung: 6 s to encode) rather than 12 s. A copy still cuts only at keyframes (phones
 * write one every 1–2 s).
 */
const FIRST_RENDITION_SEGMENT_SECONDS = 2;
/** How often ffmpeg's output is read for new segments while it writes them (first rendition and ladder), ms. */
const SEGMENT_POLL_MS = 200;
/** Private metadata key: set while the first rendition is announced but not yet complete. */
const FIRST_RENDITION_IN_PROGRESS = 'firstRenditionInProgress';
/** Metadata key: `{ detail: ffmpeg's words, attempt }` when the first rendition's stream copy stopped on corrupt packets (the next attempt encodes). */
const FIRST_RENDITION_COPY_REFUSED = 'firstRenditionCopyRefused';
/**
 * Playlists that change: the first rendition's EVENT media playlist grows as segments land and
 * its master is rewritten then and when the ladder is done. Caches and players revalidate them
 * (ETag) instead of keeping them for a year like every other derived object (segments included).
 */
const REWRITTEN_PLAYLIST_CACHE_CONTROL = 'no-cache';

/**
 * Runs `each` over `items`, `limit` at a time, in order of start. After a failure no item
 * starts, every call in flight ends, then the first failure is thrown (nothing may be written
 * after the activity has ended: compensation sweeps after it).
 */
async function forEachLimited<T>(items: T[], limit: number, each: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (next < items.length && !failed) {
      try {
        await each(items[next++]!);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  const outcomes = await Promise.allSettled(Array.from({ length: Math.min(limit, items.length) }, worker));
  const failure = outcomes.find((o) => o.status === 'rejected');
  if (failure) throw failure.reason;
}

/** The video facts the read model shows: as displayed (rotation applied, like an image's EXIF orientation), the coded size beside it. */
function videoMetadata(facts: ProbeResult): Record<string, unknown> {
  const shown = displaySize(facts);
  return {
    width: shown.width,
    height: shown.height,
    codedWidth: facts.width,
    codedHeight: facts.height,
    rotation: facts.rotation,
    durationSeconds: facts.durationSeconds,
    videoCodec: facts.videoCodec,
    audioCodec: facts.audioCodec,
    frameRate: facts.frameRate,
    hasAudio: facts.hasAudio,
  };
}

/** Parallel PUTs per activity: segments are a few MB each, and one PUT at a time leaves S3 and the link idle between them. */
const UPLOAD_CONCURRENCY = 4;

/**
 * Uploads every file under `dir` to `{keyPrefix}{relative path}`, `UPLOAD_CONCURRENCY` at a
 * time, `last.file` (the master playlist) after all the others have landed, so a player
 * reading it finds every playlist and segment it names.
 * @returns bytes uploaded.
 */
async function uploadTree(deps: ActivityDeps, ctx: Context, dir: string, keyPrefix: string, last: { file: string; cacheControl: string }, uploaded = new Map<string, number>()): Promise<number> {
  const files = (await listFiles(dir)).filter((f) => f !== last.file && !uploaded.has(f));
  let bytes = [...uploaded.values()].reduce((sum, n) => sum + n, 0);
  let done = 0;
  const put = async (file: string, cacheControl: string) => {
    stopIfCancelled(ctx, { phase: 'upload', percent: Math.round((100 * done) / (files.length + 1)) });
    bytes += await putFile(deps, ctx, dir, keyPrefix, file, cacheControl);
    done++;
  };
  await forEachLimited(files, UPLOAD_CONCURRENCY, (file) => put(file, DERIVED_CACHE_CONTROL));
  await put(last.file, last.cacheControl);
  return bytes;
}

/** PUTs one local file under `keyPrefix` + its path below `dir`, typed by its extension; resolves with its size, bytes. */
async function putFile(deps: ActivityDeps, ctx: Context, dir: string, keyPrefix: string, file: string, cacheControl: string): Promise<number> {
  const rel = relative(dir, file);
  const data = rel.endsWith('.ts') ? padShortSegment(await readFile(file)) : await readFile(file);
  await deps.storage.put(deps.buckets.media, `${keyPrefix}${rel}`, data, streamContentType[rel.slice(rel.lastIndexOf('.'))] ?? 'application/octet-stream', { cacheControl, signal: ctx.cancellationSignal });
  return data.length;
}

/**
 * Runs an ffmpeg HLS command that writes below `dir` and uploads each segment under
 * `keyPrefix` + its path below `dir` as soon as ffmpeg has finished it (`temp_file`: a `.ts`
 * name is complete), so the uploads overlap the encode instead of following it. Playlists stay
 * local: they name the segments, so the caller uploads them after. Resolves, once ffmpeg has
 * exited and every segment is up, with the uploaded files and their sizes (bytes). On a
 * failure (ffmpeg's, a PUT's, cancellation) ffmpeg is stopped and has exited, and no PUT is in
 * flight, before it rejects: nothing is written after the activity ends.
 */
async function encodeUploadingSegments(
  deps: ActivityDeps,
  ctx: Context,
  ffmpeg: FfmpegPaths,
  args: string[],
  o: { dir: string; keyPrefix: string; durationSeconds: number },
): Promise<Map<string, number>> {
  const uploaded = new Map<string, number>();
  // ffmpeg stops on cancellation and when an upload fails (nothing would read its output).
  const stop = new AbortController();
  let exit: { error?: unknown } | undefined;
  const encoding = runFfmpeg(ffmpeg, args, {
    signal: AbortSignal.any([ctx.cancellationSignal, stop.signal]),
    durationSeconds: o.durationSeconds,
    onProgress: (percent) => ctx.heartbeat({ phase: 'hls', percent: Math.round(percent), segmentsUploaded: uploaded.size }),
  }).then(
    () => void (exit = {}),
    (error: unknown) => void (exit = { error }),
  );
  try {
    for (;;) {
      // Read before listing: once ffmpeg has exited, this listing is its last.
      const exited = exit;
      if (exited?.error !== undefined) throw exited.error;
      const ready = (await listFiles(o.dir).catch(() => [])).filter((f) => f.endsWith('.ts') && !uploaded.has(f));
      await forEachLimited(ready, UPLOAD_CONCURRENCY, async (file) => {
        stopIfCancelled(ctx, { phase: 'hls' });
        uploaded.set(file, await putFile(deps, ctx, o.dir, o.keyPrefix, file, DERIVED_CACHE_CONTROL));
      });
      if (exited) return uploaded;
      if (ready.length === 0) await Promise.race([encoding, delay(SEGMENT_POLL_MS)]);
    }
  } catch (err) {
    // A cancelled activity's ffmpeg exits killed and its PUTs in flight abort: the cancellation is the error.
    stopIfCancelled(ctx, { phase: 'hls' });
    throw err;
  } finally {
    stop.abort();
    await encoding;
  }
}

/** The first rendition a media's metadata records as published whole by the first-rendition step, if any. */
function completeFirstRendition(metadata: Record<string, unknown> | null | undefined): FirstRendition | undefined {
  const recorded = metadata?.firstRendition as FirstRendition | undefined;
  return recorded?.path && metadata?.[FIRST_RENDITION_IN_PROGRESS] !== true ? recorded : undefined;
}

/**
 * Private metadata key: the first rendition as its step left it complete (PublishedFirstRendition),
 * which a retry of the ladder restores before deleting rungs and counts once in the quota.
 */
const FIRST_RENDITION_PUBLISHED = 'firstRenditionPublished';

/** The first rendition once complete (ENDLIST): what a retry of `transcodeVideo` restores and counts. */
interface PublishedFirstRendition {
  /** Text of its master playlist. */
  master: string;
  /** Bytes of its segments and playlists, which the storage quota counts (poster and thumbnails have rows of their own). */
  bytes: number;
  /** Picture size of its segments, pixels. */
  width: number;
  height: number;
}

/** The rows that make `playback` show the first rendition: the master (carrying the rendition's `bytes`) and its variant. */
function firstRenditionRows(mediaId: string, rendition: string, size: { width: number; height: number }, bytes: number): NewRendition[] {
  const hls = `${derivedPrefix(mediaId)}hls/`;
  return [
    { mediaId, kind: 'hls', label: 'master', width: null, height: null, storageKey: `${hls}master.m3u8`, contentType: streamContentType['.m3u8']!, sizeBytes: bytes },
    { mediaId, kind: 'hls', label: rendition, width: size.width, height: size.height, storageKey: `${hls}${rendition}/index.m3u8`, contentType: streamContentType['.m3u8']!, sizeBytes: null },
  ];
}

/** A stored row as it is written again by `replaceRenditions`. */
const asNewRendition = ({ mediaId, kind, label, width, height, storageKey, contentType, sizeBytes }: RenditionRow): NewRendition => ({ mediaId, kind, label, width, height, storageKey, contentType, sizeBytes });

/**
 * What an attempt of the first-rendition step that died after publishing its EVENT playlist
 * left behind, which a retry continues instead of re-publishing (players may be on it).
 */
interface EarlierFirstRendition {
  first: FirstRendition;
  playlist: PublishedPlaylist;
  /** Bytes of the listed segments, and their peak bits per second. */
  segmentBytes: number;
  peakBitsPerSecond: number;
  /** Picture size and CODECS of the published segments. */
  size: VariantFacts;
  /** Poster and thumbnail rows when the rendition's rows were written (it was shown playable); undefined otherwise. */
  shownRows?: NewRendition[];
  /** Segment keys under the variant that no published playlist lists: PUTs of the dead attempt, never seen by a player. */
  unlisted: string[];
}

/** What ffmpeg says when packets of the upload are broken: its stream copy's bitstream filter refuses them. */
const CORRUPT_INPUT = /Error applying bitstream filters|Invalid NAL unit size/;

/**
 * Video activities (video queue): `publishFirstRendition` makes the media playable within
 * seconds of the scan, `transcodeVideo` writes the ladder (poster + thumbnails first when no
 * first rendition was published: workflows started before that step existed).
 */
export function createVideoActivities(deps: ActivityDeps, settings: VideoSettings) {
  const { storage, media, buckets } = deps;

  /**
   * Deletes everything an earlier attempt derived for a media, its rows first: a reader never
   * sees a row whose object is gone.
   */
  async function startClean(mediaId: string): Promise<void> {
    if ((await media.renditions(mediaId)).length > 0) await media.replaceRenditions(mediaId, []);
    await storage.deletePrefix(buckets.media, derivedPrefix(mediaId));
  }

  /**
   * Throws UPLOAD_CHANGED when the original in `incoming` is no longer the object verification
   * saw. ffmpeg reads it by URL, unpinned: this runs before anything made from it is announced
   * or listed in a playlist, and when the step ends.
   */
  async function ensureUnchanged(input: ProcessingInput): Promise<void> {
    if (input.etag && (await storage.head(buckets.incoming, input.storageKey))?.etag !== input.etag) throw uploadChanged();
  }

  /**
   * Presigned source URL + a work dir, with bad content and temp paths turned into the failures
   * the workflow expects. `onCorruptPackets` runs when ffmpeg stopped on the upload's own broken
   * packets (the object is still there); it may throw a failure of its own instead of the
   * default, or answer `retry` to have this failure retried rather than taken as final.
   */
  async function withSource<T>(input: ProcessingInput, work: (source: string, dir: string) => Promise<T>, onCorruptPackets?: (err: FfmpegExitError) => Promise<'retry' | undefined>): Promise<T> {
    // ffmpeg reads the original over HTTP with range requests: no local copy of the source.
    const source = (await storage.presignGet(buckets.incoming, input.storageKey, 6 * 3600)).url;
    const dir = await makeWorkDir('transcode', input.mediaId);
    try {
      const result = await work(source, dir);
      // Output made from an object replaced since verification fails the upload here (its
      // compensation removes that output) instead of being kept.
      await ensureUnchanged(input);
      return result;
    } catch (err) {
      // ffprobe cannot tell a broken file from an unreachable one: only an object that S3
      // still serves makes it bad content; anything else is a transient fault to retry.
      // The tools' own words (paths, URLs, many lines) go to the log; the reason carries a sentence.
      if (err instanceof ToolError) {
        Context.current().log.warn('video step failed', { mediaId: input.mediaId, error: err.message, detail: err.detail });
      }
      if (err instanceof UnplayableMediaError && (await storage.head(buckets.incoming, input.storageKey))) {
        throw ApplicationFailure.nonRetryable(err.message, err.code);
      }
      // ffmpeg stopped on the upload's own data (a corrupt packet its stream copy cannot pass):
      // the same bytes fail the same way on every attempt. Once it has failed so twice (a read
      // cut short by a network fault can look the same once), retrying only delays the outcome.
      if (err instanceof FfmpegExitError && CORRUPT_INPUT.test(err.detail ?? '') && (await storage.head(buckets.incoming, input.storageKey))) {
        const retry = (await onCorruptPackets?.(err)) === 'retry';
        if (!retry && Context.current().info.attempt >= 2) throw ApplicationFailure.nonRetryable(`the video's data is corrupt: ${publicDetail(err.detail ?? '')}`, 'UNDECODABLE_MEDIA');
      }
      throw withoutLocalPaths(err, dir);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** The published, unfinished first rendition of an earlier attempt, if its playlist lists any segment. */
  async function earlierFirstRendition(mediaId: string, metadata: Record<string, unknown> | null | undefined): Promise<EarlierFirstRendition | undefined> {
    const first = metadata?.firstRendition as FirstRendition | undefined;
    if (!first?.path || metadata?.[FIRST_RENDITION_IN_PROGRESS] !== true) return undefined;
    const variantKey = `${derivedPrefix(mediaId)}hls/${first.rendition}/`;
    const text = await storage.getIfExists(buckets.media, `${variantKey}index.m3u8`);
    const playlist = text && readPublishedPlaylist(text.toString('utf8'));
    if (!playlist) return undefined;
    const sizes = await storage.objectSizes(buckets.media, variantKey);
    let segmentBytes = 0;
    let peakBitsPerSecond = 0;
    for (const s of playlist.segments) {
      const bytes = sizes.get(`${variantKey}${s.uri}`);
      // A listed segment that is not there is not a state a PUT-then-list order can leave: start clean.
      if (bytes === undefined) return undefined;
      segmentBytes += bytes;
      if (s.seconds > 0) peakBitsPerSecond = Math.max(peakBitsPerSecond, (bytes * 8) / s.seconds);
    }
    const listed = new Set(playlist.segments.map((s) => `${variantKey}${s.uri}`));
    const firstSegment = await storage.presignGet(buckets.media, `${variantKey}${playlist.segments[0]!.uri}`, 600);
    const rows = await media.renditions(mediaId);
    return {
      first: { path: first.path, reasons: first.reasons, rendition: first.rendition },
      playlist,
      segmentBytes,
      peakBitsPerSecond,
      size: await probeFrameSize(settings.ffmpeg, firstSegment.url),
      shownRows: rows.some((r) => r.kind === 'hls' && r.label === 'master') ? rows.filter((r) => r.kind !== 'hls').map(asNewRendition) : undefined,
      unlisted: [...sizes.keys()].filter((k) => k.endsWith('.ts') && !listed.has(k)),
    };
  }

  /**
   * A video original is published as uploaded (`promoteOriginal` copies it server-side) unless
   * its container says where it was taken or carries its owner's words (`privateContainerMetadata`:
   * a phone's location, a title, XMP, a telemetry or subtitle track). Such an original is
   * re-written here, where ffmpeg is, its video and audio streams copied untouched without that
   * metadata into the container it is (`remuxFormat`), and put in the media bucket under its
   * key, so `promoteOriginal` finds it published and only removes the upload. Records the tag
   * names removed as `metadata.originalMetadataRemoved` (names, never values).
   * A re-write that comes out shorter than the original (ffmpeg reading over HTTP exits 0 when
   * the connection drops) is retried, never published.
   * @throws PRIVATE_METADATA_NOT_REMOVABLE (non-retryable) when the re-written file still has
   * some, or when ffmpeg fails to write it twice in a row on an upload S3 still serves.
   */
  async function publishOriginalWithoutPrivateMetadata(ctx: Context, input: ProcessingInput, mimeType: string | undefined, source: string, work: string, sourceSeconds: number | undefined /* of the video stream */): Promise<void> {
    const container = await probeContainer(settings.ffmpeg, source);
    const found = privateContainerMetadata(container);
    if (found.length === 0) return;
    if (!mimeType) throw new Error(`media ${input.mediaId} has no row`);
    const phase = 'original without private metadata';
    const file = join(work, 'original');
    const head = await pinnedToVerified(() => storage.readHead(buckets.incoming, input.storageKey, 12, { ifMatch: input.etag }));
    const ftypBrand = head.subarray(4, 8).toString('latin1') === 'ftyp' ? head.subarray(8, 12).toString('latin1') : undefined;
    const args = remuxWithoutMetadataArgs(source, file, remuxFormat(container, ftypBrand));
    const rewrite = () =>
      // Also heartbeats while ffmpeg reports nothing (its +faststart pass moves the index to the front).
      heartbeatWhile(ctx, () => ({ phase }), runFfmpeg(settings.ffmpeg, args, { signal: ctx.cancellationSignal, durationSeconds: sourceSeconds, onProgress: (percent) => ctx.heartbeat({ phase, percent: Math.round(percent) }) }));
    const failed = () => rewrite().then(() => undefined, (err: unknown) => err);
    const first = await failed();
    if (first !== undefined) {
      if (!(first instanceof FfmpegExitError)) throw first;
      // Once more before deciding: a read cut short by a network fault can fail it once.
      const second = await failed();
      if (second instanceof FfmpegExitError && second.detail === first.detail && (await storage.head(buckets.incoming, input.storageKey))) {
        // Never published with its location, as an image ExifTool cannot rewrite is not.
        throw ApplicationFailure.nonRetryable(`the original could not be re-written without ${found.join(', ')}: ${publicDetail(second.detail ?? '')}`, 'PRIVATE_METADATA_NOT_REMOVABLE');
      }
      if (second !== undefined) throw second;
    }
    // Video against video: the tracks the re-write drops (data, subtitles) may run longer.
    const written = await probe(settings.ffmpeg, file);
    const writtenSeconds = written.videoDurationSeconds ?? written.durationSeconds;
    if (sourceSeconds !== undefined && sourceSeconds - writtenSeconds > Math.max(0.5, 0.01 * sourceSeconds)) {
      throw new Error(`the re-written original holds ${writtenSeconds.toFixed(1)} s of the ${sourceSeconds.toFixed(1)} s of video uploaded: its read was cut short`);
    }
    const left = privateContainerMetadata(await probeContainer(settings.ffmpeg, file));
    if (left.length > 0) throw ApplicationFailure.nonRetryable(`the original's container still carries ${left.join(', ')} after it was re-written`, 'PRIVATE_METADATA_NOT_REMOVABLE');
    stopIfCancelled(ctx, { phase });
    const size = (await stat(file)).size;
    const body = createReadStream(file).pipe(heartbeatPerChunk(ctx, (bytes) => ({ phase: `${phase}: upload`, percent: Math.round((100 * bytes) / size) })));
    await storage.put(buckets.media, input.storageKey, body, mimeType, { contentLength: size, signal: ctx.cancellationSignal });
    await media.mergeMetadata(input.mediaId, { originalMetadataRemoved: found });
  }

  /** Poster + thumbnails into the media bucket; their rendition rows. */
  async function publishPoster(ctx: Context, input: ProcessingInput, posterData: Buffer): Promise<NewRendition[]> {
    const prefix = derivedPrefix(input.mediaId);
    const { facts: posterFacts, thumbnails } = await makeThumbnails(posterData, MEDIA_TYPE_RULES[input.mediaType].thumbnailWidths);
    stopIfCancelled(ctx, { phase: 'upload' });
    await storage.put(buckets.media, `${prefix}poster.jpg`, posterData, 'image/jpeg', { cacheControl: DERIVED_CACHE_CONTROL, signal: ctx.cancellationSignal });
    return [
      { mediaId: input.mediaId, kind: 'poster', label: 'poster.jpg', width: posterFacts.width, height: posterFacts.height, storageKey: `${prefix}poster.jpg`, contentType: 'image/jpeg', sizeBytes: posterData.length },
      ...(await storeThumbnails(deps, input.mediaId, thumbnails, () => stopIfCancelled(ctx, { phase: 'upload' }), ctx.cancellationSignal)),
    ];
  }

  return {
    /**
     * After the scan: probes the original and publishes one playable HLS rendition with the
     * poster under `derived/{mediaId}/hls/` — the original's streams copied into segments when
     * it is standard input, else one low rung encoded with a fast preset (rotation applied).
     * Progressive: segments are uploaded while ffmpeg writes them, and once
     * `PLAYABLE_AFTER_TARGET_DURATIONS` target durations are out the master and an EVENT variant playlist are published,
     * the rows written and `playable` announced (SSE + webhook) by this activity itself; the
     * playlist then grows and ends with `#EXT-X-ENDLIST`. Heartbeats carry the phase, ffmpeg's
     * percent, the segments published and whether it is playable yet.
     * Idempotent: once recorded complete, a retry (or a workflow replaying after a crash)
     * publishes nothing again. A retry of an attempt that died after publishing its EVENT
     * playlist keeps every published segment, re-runs ffmpeg and appends only what follows them
     * (after `#EXT-X-DISCONTINUITY`, under new names, when the re-run cuts elsewhere; see
     * `continuation`), and announces nothing again; one that died before starts clean.
     */
    async publishFirstRendition(input: ProcessingInput): Promise<FirstRendition> {
      const ctx = Context.current();
      const metadata = (await media.findById(input.mediaId))?.metadata;
      const recorded = completeFirstRendition(metadata);
      if (recorded) return recorded;
      // An attempt whose stream copy stopped on the upload's corrupt packets: this one encodes
      // (the decoder conceals what the copy's bitstream filter refuses), starting clean, since
      // copying on would stop at the same packet.
      const copyRefused = metadata?.[FIRST_RENDITION_COPY_REFUSED] as { detail: string; attempt: number } | undefined;
      // An attempt that died after publishing: its segments stay and this one appends to them.
      const continued = await earlierFirstRendition(input.mediaId, metadata);
      const earlier = copyRefused && continued?.first.path === 'copy' ? undefined : continued;
      const clock = phaseClock();
      const started = performance.now();
      let chosen: FirstRendition | undefined;
      /**
       * A stream copy that ffmpeg stopped on broken packets: recorded, and retried as an encode.
       * The encode right after it gets the second chance any first failure gets (a read cut
       * short can look alike once) before corrupt input is taken as final.
       */
      const encodeNextTime = async (err: FfmpegExitError): Promise<'retry' | undefined> => {
        if (chosen?.path !== 'copy') return copyRefused && ctx.info.attempt === copyRefused.attempt + 1 ? 'retry' : undefined;
        const detail = publicDetail(err.detail ?? '');
        await media.mergeMetadata(input.mediaId, { [FIRST_RENDITION_COPY_REFUSED]: { detail, attempt: ctx.info.attempt } });
        throw ApplicationFailure.retryable(`the stream copy stopped on corrupt packets (${detail}); the next attempt encodes`, 'COPY_REFUSED');
      };
      return withSource(input, async (source, work) => {
        ctx.heartbeat({ phase: 'probe' });
        clock.enter('probe + keyframes');
        // Both read the source over HTTP: side by side, the keyframes of the first video stream
        // that is not cover art, read again only when probe chose another stream.
        const firstKeyframes = probeKeyframeInterval(settings.ffmpeg, source, 'V:0', KEYFRAME_WINDOW_SECONDS);
        firstKeyframes.catch(() => undefined);
        const facts = await probe(settings.ffmpeg, source);
        const videoStreamIndex = facts.videoStreamIndex ?? 0;
        const seen = await firstKeyframes.catch(() => undefined);
        const keyframes = seen?.streamIndex === videoStreamIndex ? seen : await probeKeyframeInterval(settings.ffmpeg, source, videoStreamIndex, KEYFRAME_WINDOW_SECONDS);
        const decision = standardInput({ ...facts, keyframeIntervalSeconds: keyframes.seconds, openGop: keyframes.openGop });
        // A continued rendition keeps its path, whatever the rules now say: its segments are published.
        const copy = decision.standard && !copyRefused;
        const reasons = copyRefused ? [...decision.reasons, `the stream copy stopped on corrupt packets: ${copyRefused.detail}`] : decision.reasons;
        const first: FirstRendition = (chosen = earlier?.first ?? { path: copy ? 'copy' : 'fast', reasons, rendition: copy ? 'source' : 'fast' });
        // The poster is taken while the rendition is written (two ffmpeg reading the source at once): it is published with it.
        const poster = earlier?.shownRows ? undefined : takePoster(settings, facts, source, join(work, 'poster.jpg'), ctx.cancellationSignal);
        // Settled here so that a failure of the rendition's ffmpeg never leaves it unhandled; rethrown below.
        poster?.catch(() => undefined);

        clock.enter('clean');
        stopIfCancelled(ctx, { phase: 'clean' });
        const prefix = derivedPrefix(input.mediaId);
        if (earlier) {
          // Published segments stay byte for byte (a player may be on them); only segments no
          // playlist lists go, the dead attempt's last PUTs, which no player has seen.
          await storage.deleteKeys(buckets.media, earlier.unlisted);
        } else {
          // Nothing was published: what an earlier attempt uploaded goes.
          await startClean(input.mediaId);
        }

        const hlsDir = join(work, 'hls');
        const variantDir = join(hlsDir, first.rendition);
        await mkdir(variantDir, { recursive: true });
        // A continued rendition whose rows were written was announced: never again.
        const progress = { phase: `first-rendition:${first.path}`, percent: 0, segmentsPublished: earlier?.playlist.segments.length ?? 0, playable: !!earlier?.shownRows };
        // ffmpeg stops on cancellation and when publishing fails (nothing would read its output).
        const stop = new AbortController();
        // A continued rendition is cut no longer than the target it was published with (which may
        // not change): the same cuts as before, or shorter ones after a configuration change.
        const segmentSeconds = Math.min(settings.segmentSeconds, FIRST_RENDITION_SEGMENT_SECONDS, earlier?.playlist.targetSeconds ?? Infinity);
        const io = { input: source, segmentSeconds, playlistType: 'event' as const };
        const args =
          first.path === 'copy'
            ? buildCopyHlsArgs(facts, { ...io, outputDir: variantDir })
            : buildHlsArgs(facts, [{ ...ladderFor(facts)[0]!, name: first.rendition }], { ...io, outputDir: hlsDir, preset: FAST_RUNG_PRESET });
        clock.enter('to playable');
        const encodeStarted = performance.now();
        let encoded: { error?: unknown; ms: number; at: number } | undefined;
        // A continued rendition that was published whole (ENDLIST) needs no ffmpeg: only its playlists, rows and record are written again.
        const encoding = (
          earlier?.playlist.ended
            ? Promise.resolve()
            : runFfmpeg(settings.ffmpeg, args, {
                signal: AbortSignal.any([ctx.cancellationSignal, stop.signal]),
                durationSeconds: facts.durationSeconds,
                onProgress: (percent) => {
                  progress.percent = Math.round(percent);
                  ctx.heartbeat(progress);
                },
              })
        ).then(
          () => void (encoded = { ms: performance.now() - encodeStarted, at: performance.now() - started }),
          (error: unknown) => void (encoded = { error, ms: performance.now() - encodeStarted, at: performance.now() - started }),
        );

        const variantKey = `${prefix}hls/${first.rendition}/`;
        const masterKey = `${prefix}hls/master.m3u8`;
        // EXT-X-TARGETDURATION may never change between versions of the playlist (RFC 8216
        // §4.3.3.1), so it is fixed before the first one: a continued playlist keeps the target it
        // was published with; the fast rung's keyframes are forced at every segment length; a
        // copy cuts at the source's keyframes, wherever they are in the whole file, so its target
        // is known once ffmpeg has listed every segment (a copy runs at ~200× real time) and
        // stays unset until then.
        let targetSeconds = earlier?.playlist.targetSeconds ?? (first.path === 'fast' ? segmentSeconds : undefined);
        const published: ListedSegment[] = [...(earlier?.playlist.segments ?? [])];
        let segmentBytes = earlier?.segmentBytes ?? 0;
        let peakBitsPerSecond = earlier?.peakBitsPerSecond ?? 0;
        let size: VariantFacts | undefined = earlier?.size;
        let posterRows: NewRendition[] | undefined = earlier?.shownRows;
        const putPlaylist = async (key: string, text: string) => {
          stopIfCancelled(ctx, progress);
          await storage.put(buckets.media, key, Buffer.from(text), streamContentType['.m3u8']!, { cacheControl: REWRITTEN_PLAYLIST_CACHE_CONTROL, signal: ctx.cancellationSignal });
        };
        /** Variant playlist, then master (which names it), then the rows that make `playback` show them. */
        const publishPlaylists = async (ended: boolean): Promise<PublishedFirstRendition> => {
          size ??= await probeFrameSize(settings.ffmpeg, join(variantDir, published[0]!.uri));
          const variant = eventPlaylist(published, { targetSeconds: targetSeconds!, ended });
          const master = masterPlaylist([{ uri: `${first.rendition}/index.m3u8`, bandwidth: peakBitsPerSecond, ...size }], { startAtZero: true });
          await putPlaylist(`${variantKey}index.m3u8`, variant);
          await putPlaylist(masterKey, master);
          stopIfCancelled(ctx, progress);
          const bytes = segmentBytes + Buffer.byteLength(variant) + Buffer.byteLength(master);
          await media.replaceRenditions(input.mediaId, [...posterRows!, ...firstRenditionRows(input.mediaId, first.rendition, size, bytes)]);
          return { master, bytes, width: size.width, height: size.height };
        };
        // Index, in ffmpeg's listing, of the next segment to publish; for a continued rendition
        // undefined until the re-run's cuts are compared with the published ones. A re-run that
        // cut elsewhere appends under names of its own (`rename`), after a discontinuity.
        let next: number | undefined = earlier ? undefined : 0;
        let rename = '';
        let discontinuity = false;
        try {
          for (;;) {
            // Read before listing: once ffmpeg has exited, this listing is its last.
            const finished = encoded;
            if (finished?.error !== undefined) throw finished.error;
            const listed = listedSegments(await readFile(join(variantDir, 'index.m3u8'), 'utf8').catch(() => ''));
            if (finished && targetSeconds === undefined) targetSeconds = targetDuration(listed);
            if (next === undefined) {
              const plan = continuation(published, listed, finished !== undefined);
              if (plan) [next, discontinuity, rename] = [plan.from, plan.discontinuity, plan.discontinuity ? `a${ctx.info.attempt}-` : ''];
            }
            // Before the announcement only the segments it needs, for the target known so far
            // (it only grows: none is uploaded in vain; a stream copy writes the whole clip in a
            // second or two, and uploading all of it first would delay playback); after it, a
            // bounded batch, so the playlist players reload grows in steps of seconds.
            const needed = segmentsCovering(listed, PLAYABLE_AFTER_TARGET_DURATIONS * (targetSeconds ?? Math.max(segmentSeconds, targetDuration(listed))));
            const fresh = next === undefined ? [] : listed.slice(next, progress.playable ? next + 2 * UPLOAD_CONCURRENCY : Math.max(next, needed));
            await forEachLimited(fresh, UPLOAD_CONCURRENCY, async (segment) => {
              const data = padShortSegment(await readFile(join(variantDir, segment.uri)));
              stopIfCancelled(ctx, progress);
              await storage.put(buckets.media, `${variantKey}${rename}${segment.uri}`, data, streamContentType['.ts']!, { cacheControl: DERIVED_CACHE_CONTROL, signal: ctx.cancellationSignal });
              segmentBytes += data.length;
              // No encoder states a bitrate for copied streams: the peak of the segments is the variant's BANDWIDTH.
              if (segment.seconds > 0) peakBitsPerSecond = Math.max(peakBitsPerSecond, (data.length * 8) / segment.seconds);
            });
            published.push(...fresh.map((s, i) => ({ uri: `${rename}${s.uri}`, seconds: s.seconds, ...(discontinuity && i === 0 ? { discontinuity } : {}) })));
            if (fresh.length > 0) [next, discontinuity] = [next! + fresh.length, false];
            progress.segmentsPublished = published.length;
            const all = finished !== undefined && next === listed.length;
            const publishedSeconds = playlistSeconds(published);
            if (!progress.playable && published.length > 0 && targetSeconds !== undefined && (publishedSeconds >= PLAYABLE_AFTER_TARGET_DURATIONS * targetSeconds - 1e-3 || all)) {
              clock.enter('poster wait');
              posterRows ??= await publishPoster(ctx, input, await poster!);
              clock.enter('announce');
              // Nothing made from a replaced original is listed or announced.
              await ensureUnchanged(input);
              // Metadata before the rows that make `playback` show: a reader never sees playback without firstRendition.
              await media.mergeMetadata(input.mediaId, { ...videoMetadata(facts), firstRendition: first, [FIRST_RENDITION_IN_PROGRESS]: true });
              await publishPlaylists(all);
              // A cancel that arrived while the rows were written announces nothing: compensation removes them.
              stopIfCancelled(ctx, progress);
              await announcePlayable(deps, ctx.client, input.mediaId);
              progress.playable = true;
              clock.enter('after playable');
              clock.mark('playable at', performance.now() - started);
            } else if (progress.playable && fresh.length > 0) {
              // Players of an EVENT playlist reload it (no-cache) and find the new segments.
              await ensureUnchanged(input);
              await putPlaylist(`${variantKey}index.m3u8`, eventPlaylist(published, { targetSeconds: targetSeconds!, ended: false }));
            }
            if (all) {
              clock.mark(`${first.path} encode`, finished.ms);
              clock.mark('encoded at', finished.at);
              break;
            }
            // Segments already written wait for no poll (unless a copy waits for its target duration).
            if (fresh.length > 0 && next !== undefined && next < listed.length) continue;
            ctx.heartbeat(progress);
            await Promise.race([encoding, delay(SEGMENT_POLL_MS)]);
          }
          if (published.length === 0) throw new UnplayableMediaError('ffmpeg wrote no segment');
          // The whole rendition: ENDLIST, the true peak in the master, every byte counted in the master row (the storage quota).
          clock.enter('final playlists');
          const complete = await publishPlaylists(true);
          await media.mergeMetadata(input.mediaId, { [FIRST_RENDITION_IN_PROGRESS]: false, [FIRST_RENDITION_PUBLISHED]: complete });
        } finally {
          // Publishing failed or was cancelled: ffmpeg stops and has exited before the activity does.
          stop.abort();
          await encoding;
        }
        clock.enter();
        return { ...first, phasesMs: clock.phasesMs };
      }, encodeNextTime);
    },

    /**
     * The HLS ladder in one ffmpeg pass. After a first rendition, its variant's files stay
     * where they are (a player that started on them plays on) and the master playlist is
     * rewritten last to list the ladder; otherwise poster, thumbnails and ladder are published
     * from scratch as before.
     */
    async transcodeVideo(input: ProcessingInput): Promise<{ renditions: string[] }> {
      const ctx = Context.current();
      const row = await media.findById(input.mediaId);
      const metadata = row?.metadata;
      const first = completeFirstRendition(metadata);
      return withSource(input, async (source, work) => {
        const facts = await probe(settings.ffmpeg, source);
        let posterData: Buffer | undefined;
        if (!first) {
          ctx.heartbeat({ phase: 'poster', percent: 0 });
          posterData = await takePoster(settings, facts, source, join(work, 'poster.jpg'), ctx.cancellationSignal);
        }
        const rungs = ladderFor(facts);
        const hlsDir = join(work, 'hls');
        const prefix = derivedPrefix(input.mediaId);
        // Segments are uploaded while ffmpeg writes the next ones, so what an earlier attempt left goes first.
        stopIfCancelled(ctx, { phase: 'clean' });
        let renditions: NewRendition[] = [];
        let earlyBytes = 0;
        if (first) {
          // Poster, thumbnails and the first rendition's files stay published; their bytes still count.
          const existing = await media.renditions(input.mediaId);
          renditions = existing.filter((r) => r.kind !== 'hls').map(asNewRendition);
          const firstPublished = metadata?.[FIRST_RENDITION_PUBLISHED] as PublishedFirstRendition | undefined;
          // The first rendition's segments and variant playlist (its master is replaced by this
          // step's). Media whose first rendition was published before that record existed: the
          // master row counts it (twice on a retry after this step's rows were written).
          earlyBytes = firstPublished
            ? firstPublished.bytes - Buffer.byteLength(firstPublished.master)
            : Number(existing.find((r) => r.kind === 'hls' && r.label === 'master')?.sizeBytes ?? 0);
          const masterKey = `${prefix}hls/master.m3u8`;
          const liveMaster = (await storage.getIfExists(buckets.media, masterKey))?.toString('utf8');
          // A retry after an attempt's master landed (killed, or its result lost, after the
          // upload): playback and the master go back to the first rendition before the rungs
          // they list are deleted, so nothing published ever names a missing playlist.
          if (firstPublished && liveMaster !== undefined && liveMaster !== firstPublished.master) {
            await media.replaceRenditions(input.mediaId, [...renditions, ...firstRenditionRows(input.mediaId, first.rendition, { width: firstPublished.width, height: firstPublished.height }, firstPublished.bytes)]);
            stopIfCancelled(ctx, { phase: 'clean' });
            await storage.put(buckets.media, masterKey, Buffer.from(firstPublished.master), streamContentType['.m3u8']!, { cacheControl: REWRITTEN_PLAYLIST_CACHE_CONTROL, signal: ctx.cancellationSignal });
          } else if (!firstPublished && liveMaster !== undefined && rungs.some((r) => liveMaster.includes(`${r.name}/index.m3u8`))) {
            // The same for a first rendition published before its master was recorded: with no
            // master to go back to, playback is hidden and the master removed until this step
            // writes its own.
            await media.replaceRenditions(input.mediaId, renditions);
            stopIfCancelled(ctx, { phase: 'clean' });
            await storage.delete(buckets.media, masterKey);
          }
          // A retry after a crash mid-upload starts its rungs clean (ladder names never clash with `source`/`fast`).
          for (const r of rungs) await storage.deletePrefix(buckets.media, `${prefix}hls/${r.name}/`);
        } else {
          // A retry after a crash starts clean: nothing of an earlier attempt survives.
          await startClean(input.mediaId);
        }
        const segments = await encodeUploadingSegments(deps, ctx, settings.ffmpeg, buildHlsArgs(facts, rungs, { input: source, outputDir: hlsDir, segmentSeconds: settings.segmentSeconds, preset: settings.preset }), {
          dir: hlsDir,
          keyPrefix: `${prefix}hls/`,
          durationSeconds: facts.durationSeconds,
        });
        // ffmpeg encodes a video cut after an intact index as far as its data goes, and exits 0.
        const encodedSeconds = playlistSeconds(listedSegments(await readFile(join(hlsDir, rungs[0]!.name, 'index.m3u8'), 'utf8')));
        const declaredSeconds = facts.videoDurationSeconds ?? facts.durationSeconds;
        if (isCutShort(encodedSeconds, declaredSeconds)) {
          throw ApplicationFailure.nonRetryable(`the video is cut short: ${encodedSeconds.toFixed(1)} s of the ${declaredSeconds.toFixed(1)} s its index declares decode`, 'UNDECODABLE_MEDIA');
        }
        // The sizes published are those of the segments written, read back, not computed.
        const sizes: Record<string, VariantFacts> = {};
        for (const r of rungs) sizes[r.name] = await probeFrameSize(settings.ffmpeg, join(hlsDir, r.name, 'segment_000.ts'));
        const masterFile = join(hlsDir, 'master.m3u8');
        await writeFile(masterFile, masterWithResolutions(await readFile(masterFile, 'utf8'), sizes));

        stopIfCancelled(ctx, { phase: 'upload' });
        if (!first) renditions = await publishPoster(ctx, input, posterData!);
        // Playlists after the segments they name, the master last.
        const hlsBytes = await uploadTree(deps, ctx, hlsDir, `${prefix}hls/`, { file: masterFile, cacheControl: first ? REWRITTEN_PLAYLIST_CACHE_CONTROL : DERIVED_CACHE_CONTROL }, segments);
        // The master row carries the size of every rendition (playlists and segments), which the storage quota counts.
        renditions.push({ mediaId: input.mediaId, kind: 'hls', label: 'master', width: null, height: null, storageKey: `${prefix}hls/master.m3u8`, contentType: streamContentType['.m3u8']!, sizeBytes: hlsBytes + earlyBytes });
        for (const r of rungs) {
          renditions.push({ mediaId: input.mediaId, kind: 'hls', label: r.name, width: sizes[r.name]!.width, height: sizes[r.name]!.height, storageKey: `${prefix}hls/${r.name}/index.m3u8`, contentType: streamContentType['.m3u8']!, sizeBytes: null });
        }
        await publishOriginalWithoutPrivateMetadata(ctx, input, row?.mimeType, source, work, facts.videoDurationSeconds ?? facts.durationSeconds);
        await media.mergeMetadata(input.mediaId, videoMetadata(facts));
        await media.replaceRenditions(input.mediaId, renditions);
        return { renditions: rungs.map((r) => r.name) };
      });
    },
  };
}

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name)).sort();
}
