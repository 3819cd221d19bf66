import { ApplicationFailure, Context } from '@temporalio/activity';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type { NewRendition } from '../services/shared/db/media-repository';
import { probe, probeFrameSize, probeKeyframeInterval, runFfmpeg, UnplayableMediaError, type FfmpegPaths } from '../services/shared/media/ffmpeg';
import { buildCopyHlsArgs, buildHlsArgs, buildPosterArgs, displaySize, ladderFor, masterPlaylist, masterWithResolutions, posterTime, segmentDurations, type ProbeResult } from '../services/shared/media/hls-args';
import { standardInput } from '../services/shared/media/standard-input';
import { makeThumbnails, UndecodableImageError, type Thumbnail } from '../services/shared/media/images';
import { DERIVED_CACHE_CONTROL, derivedPrefix, MEDIA_TYPE_RULES, type MediaType } from '../services/shared/media-types';
import type { ClamdScanner } from '../services/shared/scanner';
import type { ActivityDeps } from './index';
import { heartbeatPerChunk } from './progress';

export interface ProcessingInput {
  mediaId: string;
  storageKey: string;
  mediaType: MediaType;
  fileSize: number;
}

export interface ScanPolicy {
  maxBytes: number;
  oversizeAction: 'reject' | 'skip';
}

const streamContentType: Record<string, string> = { '.m3u8': 'application/vnd.apple.mpegurl', '.ts': 'video/mp2t', '.jpg': 'image/jpeg' };

/**
 * Uploads thumbnails under `derived/{mediaId}/thumbnails/` and describes them as renditions;
 * `onStored` runs after each upload (it may throw to stop before the next one).
 */
export async function storeThumbnails({ storage, buckets }: ActivityDeps, mediaId: string, thumbnails: Thumbnail[], onStored: () => void): Promise<NewRendition[]> {
  const renditions: NewRendition[] = [];
  for (const t of thumbnails) {
    const key = `${derivedPrefix(mediaId)}thumbnails/${t.width}.${t.format === 'jpeg' ? 'jpg' : 'webp'}`;
    await storage.put(buckets.media, key, t.data, `image/${t.format}`, DERIVED_CACHE_CONTROL);
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
      // Heartbeats as bytes flow to clamd: a worker killed mid-scan is noticed in seconds.
      const progress = heartbeatPerChunk(Context.current(), (scanned) => ({ scanned }));
      const source = await storage.getStream(buckets.incoming, input.storageKey);
      const result = await scanner.scan(source.pipe(progress));
      await media.mergeMetadata(input.mediaId, {
        scan: { status: result.infected ? 'INFECTED' : 'CLEAN', signatures: result.signatures, at: new Date().toISOString() },
      });
      if (result.infected) {
        // The object is deleted by the workflow's compensation, which runs next.
        throw ApplicationFailure.nonRetryable(`malware found: ${result.signatures.join(', ')}`, 'MALWARE', { signatures: result.signatures });
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
      const original = await storage.getBuffer(buckets.incoming, input.storageKey);
      let result: Awaited<ReturnType<typeof makeThumbnails>>;
      try {
        result = await makeThumbnails(original, MEDIA_TYPE_RULES[input.mediaType].thumbnailWidths);
      } catch (err) {
        if (err instanceof UndecodableImageError) throw ApplicationFailure.nonRetryable(err.message, 'UNDECODABLE_MEDIA');
        throw err;
      }
      // A retry starts clean: earlier partial output is removed, then every key is rewritten.
      stopIfCancelled(ctx, { phase: 'upload' });
      await storage.deletePrefix(buckets.media, `${derivedPrefix(input.mediaId)}thumbnails/`);
      const renditions = await storeThumbnails(deps, input.mediaId, result.thumbnails, () => stopIfCancelled(ctx, { phase: 'upload' }));
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
}

/** Seconds at the start of the video stream whose keyframe spacing decides a stream copy. */
const KEYFRAME_WINDOW_SECONDS = 20;
/**
 * x264 preset of the fast rung: its job is to be watchable quickly; the ladder follows at the
 * configured preset and quality.
 */
const FAST_RUNG_PRESET = 'ultrafast';
/**
 * The first rendition's master playlist is rewritten when the ladder is done: caches revalidate
 * it (ETag) instead of keeping it for a year like every other derived object.
 */
const REWRITTEN_PLAYLIST_CACHE_CONTROL = 'no-cache';

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
async function uploadTree(deps: ActivityDeps, ctx: Context, dir: string, keyPrefix: string, last: { file: string; cacheControl: string }): Promise<number> {
  const files = (await listFiles(dir)).filter((f) => f !== last.file);
  let bytes = 0;
  let done = 0;
  const put = async (file: string, cacheControl: string) => {
    const rel = relative(dir, file);
    const ext = rel.slice(rel.lastIndexOf('.'));
    const data = await readFile(file);
    bytes += data.length;
    stopIfCancelled(ctx, { phase: 'upload', percent: Math.round((100 * done) / (files.length + 1)) });
    await deps.storage.put(deps.buckets.media, `${keyPrefix}${rel}`, data, streamContentType[ext] ?? 'application/octet-stream', cacheControl);
    done++;
  };
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (next < files.length && !failed) {
      try {
        await put(files[next++]!, DERIVED_CACHE_CONTROL);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  // Every PUT in flight has ended before the activity does (cancellation waits for the activity,
  // then compensation sweeps: nothing may land after it), then the first failure is thrown.
  const outcomes = await Promise.allSettled(Array.from({ length: Math.min(UPLOAD_CONCURRENCY, files.length) }, worker));
  const failure = outcomes.find((o) => o.status === 'rejected');
  if (failure) throw failure.reason;
  await put(last.file, last.cacheControl);
  return bytes;
}

/** The recorded first rendition of a media, if the first-rendition step has published one. */
async function recordedFirstRendition({ media }: ActivityDeps, mediaId: string): Promise<FirstRendition | undefined> {
  const recorded = (await media.findById(mediaId))?.metadata?.firstRendition as FirstRendition | undefined;
  return recorded?.path ? recorded : undefined;
}

/**
 * Video activities (video queue): `publishFirstRendition` makes the media playable within
 * seconds of the scan, `transcodeVideo` writes the ladder (poster + thumbnails first when no
 * first rendition was published: workflows started before that step existed).
 */
export function createVideoActivities(deps: ActivityDeps, settings: VideoSettings) {
  const { storage, media, buckets } = deps;

  /** Presigned source URL + a work dir, with bad content and temp paths turned into the failures the workflow expects. */
  async function withSource<T>(input: ProcessingInput, work: (source: string, dir: string) => Promise<T>): Promise<T> {
    // ffmpeg reads the original over HTTP with range requests: no local copy of the source.
    const source = (await storage.presignGet(buckets.incoming, input.storageKey, 6 * 3600)).url;
    const dir = await mkdtemp(join(tmpdir(), `transcode-${input.mediaId}-`));
    try {
      return await work(source, dir);
    } catch (err) {
      // ffprobe cannot tell a broken file from an unreachable one: only an object that S3
      // still serves makes it bad content; anything else is a transient fault to retry.
      if (err instanceof UnplayableMediaError && (await storage.head(buckets.incoming, input.storageKey))) {
        throw ApplicationFailure.nonRetryable(err.message, err.code);
      }
      throw withoutLocalPaths(err, dir);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** Poster + thumbnails into the media bucket; their rendition rows. */
  async function publishPoster(ctx: Context, input: ProcessingInput, posterData: Buffer): Promise<NewRendition[]> {
    const prefix = derivedPrefix(input.mediaId);
    const { facts: posterFacts, thumbnails } = await makeThumbnails(posterData, MEDIA_TYPE_RULES[input.mediaType].thumbnailWidths);
    stopIfCancelled(ctx, { phase: 'upload' });
    await storage.put(buckets.media, `${prefix}poster.jpg`, posterData, 'image/jpeg', DERIVED_CACHE_CONTROL);
    return [
      { mediaId: input.mediaId, kind: 'poster', label: 'poster.jpg', width: posterFacts.width, height: posterFacts.height, storageKey: `${prefix}poster.jpg`, contentType: 'image/jpeg', sizeBytes: posterData.length },
      ...(await storeThumbnails(deps, input.mediaId, thumbnails, () => stopIfCancelled(ctx, { phase: 'upload' }))),
    ];
  }

  return {
    /**
     * After the scan: probes the original and publishes one playable HLS rendition with the
     * poster under `derived/{mediaId}/hls/` — the original's streams copied into segments when
     * it is standard input, else one low rung encoded with a fast preset (rotation applied).
     * Idempotent: once recorded, a retry (or a workflow replaying after a crash) publishes nothing again.
     */
    async publishFirstRendition(input: ProcessingInput): Promise<FirstRendition> {
      const ctx = Context.current();
      const recorded = await recordedFirstRendition(deps, input.mediaId);
      if (recorded) return recorded;
      return withSource(input, async (source, work) => {
        ctx.heartbeat({ phase: 'probe' });
        const facts = await probe(settings.ffmpeg, source);
        const keyframeIntervalSeconds = await probeKeyframeInterval(settings.ffmpeg, source, facts.videoStreamIndex ?? 0, KEYFRAME_WINDOW_SECONDS);
        const decision = standardInput({ ...facts, keyframeIntervalSeconds });
        const first: FirstRendition = { path: decision.standard ? 'copy' : 'fast', reasons: decision.reasons, rendition: decision.standard ? 'source' : 'fast' };
        // The poster is taken while the rendition is written (two ffmpeg reading the source at once): it is published with it.
        ctx.heartbeat({ phase: 'poster' });
        const poster = takePoster(settings, facts, source, join(work, 'poster.jpg'), ctx.cancellationSignal);
        // Settled here so that a failure of the rendition's ffmpeg never leaves it unhandled; rethrown below.
        poster.catch(() => undefined);

        const hlsDir = join(work, 'hls');
        const variantDir = join(hlsDir, first.rendition);
        const run = { signal: ctx.cancellationSignal, durationSeconds: facts.durationSeconds, onProgress: (percent: number) => ctx.heartbeat({ phase: `first-rendition:${first.path}`, percent: Math.round(percent) }) };
        const masterFile = join(hlsDir, 'master.m3u8');
        const segmentSize = () => probeFrameSize(settings.ffmpeg, join(variantDir, 'segment_000.ts'));
        let size: { width: number; height: number };
        if (first.path === 'copy') {
          await mkdir(variantDir, { recursive: true });
          await runFfmpeg(settings.ffmpeg, buildCopyHlsArgs(facts, { input: source, outputDir: variantDir, segmentSeconds: settings.segmentSeconds }), run);
          // No encoder states a bitrate for copied streams: the peak of the segments written is the variant's BANDWIDTH.
          const durations = segmentDurations(await readFile(join(variantDir, 'index.m3u8'), 'utf8'));
          let peak = 0;
          for (const [i, seconds] of durations.entries()) {
            const { size } = await stat(join(variantDir, `segment_${String(i).padStart(3, '0')}.ts`));
            if (seconds > 0) peak = Math.max(peak, (size * 8) / seconds);
          }
          size = await segmentSize();
          await writeFile(masterFile, masterPlaylist([{ uri: `${first.rendition}/index.m3u8`, bandwidth: peak, ...size }]));
        } else {
          const rung = { ...ladderFor(facts)[0]!, name: first.rendition };
          await runFfmpeg(settings.ffmpeg, buildHlsArgs(facts, [rung], { input: source, outputDir: hlsDir, segmentSeconds: settings.segmentSeconds, preset: FAST_RUNG_PRESET }), run);
          size = await segmentSize();
          await writeFile(masterFile, masterWithResolutions(await readFile(masterFile, 'utf8'), { [first.rendition]: size }));
        }

        const posterData = await poster;

        // Nothing of this media is public yet: a retry after a crash starts clean.
        stopIfCancelled(ctx, { phase: 'upload' });
        const prefix = derivedPrefix(input.mediaId);
        await storage.deletePrefix(buckets.media, prefix);
        const renditions = await publishPoster(ctx, input, posterData);
        const hlsBytes = await uploadTree(deps, ctx, hlsDir, `${prefix}hls/`, { file: masterFile, cacheControl: REWRITTEN_PLAYLIST_CACHE_CONTROL });
        renditions.push(
          { mediaId: input.mediaId, kind: 'hls', label: 'master', width: null, height: null, storageKey: `${prefix}hls/master.m3u8`, contentType: streamContentType['.m3u8']!, sizeBytes: hlsBytes },
          { mediaId: input.mediaId, kind: 'hls', label: first.rendition, ...size, storageKey: `${prefix}hls/${first.rendition}/index.m3u8`, contentType: streamContentType['.m3u8']!, sizeBytes: null },
        );
        stopIfCancelled(ctx, { phase: 'record' });
        await media.replaceRenditions(input.mediaId, renditions);
        // Recorded last: its presence is what makes a retry skip the work above.
        await media.mergeMetadata(input.mediaId, { ...videoMetadata(facts), firstRendition: first });
        return first;
      });
    },

    /**
     * The HLS ladder in one ffmpeg pass. After a first rendition, its variant's files stay
     * where they are (a player that started on them plays on) and the master playlist is
     * rewritten last to list the ladder; otherwise poster, thumbnails and ladder are published
     * from scratch as before.
     */
    async transcodeVideo(input: ProcessingInput): Promise<{ renditions: string[] }> {
      const ctx = Context.current();
      const first = await recordedFirstRendition(deps, input.mediaId);
      return withSource(input, async (source, work) => {
        const facts = await probe(settings.ffmpeg, source);
        let posterData: Buffer | undefined;
        if (!first) {
          ctx.heartbeat({ phase: 'poster', percent: 0 });
          posterData = await takePoster(settings, facts, source, join(work, 'poster.jpg'), ctx.cancellationSignal);
        }
        const rungs = ladderFor(facts);
        const hlsDir = join(work, 'hls');
        await runFfmpeg(settings.ffmpeg, buildHlsArgs(facts, rungs, { input: source, outputDir: hlsDir, segmentSeconds: settings.segmentSeconds, preset: settings.preset }), {
          signal: ctx.cancellationSignal,
          durationSeconds: facts.durationSeconds,
          onProgress: (percent) => ctx.heartbeat({ phase: 'hls', percent: Math.round(percent) }),
        });
        // The sizes published are those of the segments written, read back, not computed.
        const sizes: Record<string, { width: number; height: number }> = {};
        for (const r of rungs) sizes[r.name] = await probeFrameSize(settings.ffmpeg, join(hlsDir, r.name, 'segment_000.ts'));
        const masterFile = join(hlsDir, 'master.m3u8');
        await writeFile(masterFile, masterWithResolutions(await readFile(masterFile, 'utf8'), sizes));

        stopIfCancelled(ctx, { phase: 'upload' });
        const prefix = derivedPrefix(input.mediaId);
        let renditions: NewRendition[];
        let earlyBytes = 0;
        if (first) {
          // Poster, thumbnails and the first rendition's files stay published; their bytes still count.
          const existing = await media.renditions(input.mediaId);
          earlyBytes = Number(existing.find((r) => r.kind === 'hls' && r.label === 'master')?.sizeBytes ?? 0);
          // A retry after a crash mid-upload starts its rungs clean (ladder names never clash with `source`/`fast`).
          for (const r of rungs) await storage.deletePrefix(buckets.media, `${prefix}hls/${r.name}/`);
          renditions = existing.filter((r) => r.kind !== 'hls').map(({ mediaId, kind, label, width, height, storageKey, contentType, sizeBytes }) => ({ mediaId, kind, label, width, height, storageKey, contentType, sizeBytes }));
        } else {
          // A retry after a crash starts clean: nothing of an earlier attempt survives.
          await storage.deletePrefix(buckets.media, prefix);
          renditions = await publishPoster(ctx, input, posterData!);
        }
        const hlsBytes = await uploadTree(deps, ctx, hlsDir, `${prefix}hls/`, { file: masterFile, cacheControl: first ? REWRITTEN_PLAYLIST_CACHE_CONTROL : DERIVED_CACHE_CONTROL });
        // The master row carries the size of every rendition (playlists and segments), which the storage quota counts.
        renditions.push({ mediaId: input.mediaId, kind: 'hls', label: 'master', width: null, height: null, storageKey: `${prefix}hls/master.m3u8`, contentType: streamContentType['.m3u8']!, sizeBytes: hlsBytes + earlyBytes });
        for (const r of rungs) {
          renditions.push({ mediaId: input.mediaId, kind: 'hls', label: r.name, ...sizes[r.name]!, storageKey: `${prefix}hls/${r.name}/index.m3u8`, contentType: streamContentType['.m3u8']!, sizeBytes: null });
        }
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
