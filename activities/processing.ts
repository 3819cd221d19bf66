import { ApplicationFailure, Context } from '@temporalio/activity';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type { NewRendition } from '../services/shared/db/media-repository';
import { probe, probeFrameSize, runFfmpeg, UnplayableMediaError, type FfmpegPaths } from '../services/shared/media/ffmpeg';
import { buildHlsArgs, buildPosterArgs, displaySize, ladderFor, masterWithResolutions, posterTime, type ProbeResult } from '../services/shared/media/hls-args';
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

/** Video activity (video queue): ffprobe, poster + thumbnails, HLS ladder in one ffmpeg pass. */
export function createVideoActivities(deps: ActivityDeps, settings: VideoSettings) {
  const { storage, media, buckets } = deps;
  return {
    async transcodeVideo(input: ProcessingInput): Promise<{ renditions: string[] }> {
      const ctx = Context.current();
      // ffmpeg reads the original over HTTP with range requests: no local copy of the source.
      const source = (await storage.presignGet(buckets.incoming, input.storageKey, 6 * 3600)).url;
      const work = await mkdtemp(join(tmpdir(), `transcode-${input.mediaId}-`));
      try {
        const facts = await probe(settings.ffmpeg, source);
        ctx.heartbeat({ phase: 'poster', percent: 0 });
        const posterData = await takePoster(settings, facts, source, join(work, 'poster.jpg'), ctx.cancellationSignal);
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

        // A retry after a crash starts clean: nothing of an earlier attempt survives.
        stopIfCancelled(ctx, { phase: 'upload' });
        await storage.deletePrefix(buckets.media, derivedPrefix(input.mediaId));
        const prefix = derivedPrefix(input.mediaId);
        const renditions: NewRendition[] = [];
        const { facts: posterFacts, thumbnails } = await makeThumbnails(posterData, MEDIA_TYPE_RULES[input.mediaType].thumbnailWidths);
        stopIfCancelled(ctx, { phase: 'upload' });
        await storage.put(buckets.media, `${prefix}poster.jpg`, posterData, 'image/jpeg', DERIVED_CACHE_CONTROL);
        renditions.push({ mediaId: input.mediaId, kind: 'poster', label: 'poster.jpg', width: posterFacts.width, height: posterFacts.height, storageKey: `${prefix}poster.jpg`, contentType: 'image/jpeg', sizeBytes: posterData.length });
        renditions.push(...(await storeThumbnails(deps, input.mediaId, thumbnails, () => stopIfCancelled(ctx, { phase: 'upload' }))));
        const files = await listFiles(hlsDir);
        let hlsBytes = 0;
        for (const [i, file] of files.entries()) {
          const rel = relative(hlsDir, file);
          const ext = rel.slice(rel.lastIndexOf('.'));
          const data = await readFile(file);
          hlsBytes += data.length;
          stopIfCancelled(ctx, { phase: 'upload', percent: Math.round((100 * i) / files.length) });
          await storage.put(buckets.media, `${prefix}hls/${rel}`, data, streamContentType[ext] ?? 'application/octet-stream', DERIVED_CACHE_CONTROL);
        }
        // The master row carries the size of the whole ladder (playlists and segments), which the storage quota counts.
        renditions.push({ mediaId: input.mediaId, kind: 'hls', label: 'master', width: null, height: null, storageKey: `${prefix}hls/master.m3u8`, contentType: streamContentType['.m3u8']!, sizeBytes: hlsBytes });
        for (const r of rungs) {
          renditions.push({ mediaId: input.mediaId, kind: 'hls', label: r.name, ...sizes[r.name]!, storageKey: `${prefix}hls/${r.name}/index.m3u8`, contentType: streamContentType['.m3u8']!, sizeBytes: null });
        }
        const shown = displaySize(facts);
        await media.mergeMetadata(input.mediaId, {
          // As displayed (rotation applied), like an image's EXIF orientation; the coded size beside it.
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
        });
        await media.replaceRenditions(input.mediaId, renditions);
        return { renditions: rungs.map((r) => r.name) };
      } catch (err) {
        // ffprobe cannot tell a broken file from an unreachable one: only an object that S3
        // still serves makes it bad content; anything else is a transient fault to retry.
        if (err instanceof UnplayableMediaError && (await storage.head(buckets.incoming, input.storageKey))) {
          throw ApplicationFailure.nonRetryable(err.message, err.code);
        }
        throw withoutLocalPaths(err, work);
      } finally {
        await rm(work, { recursive: true, force: true });
      }
    },
  };
}

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name)).sort();
}
