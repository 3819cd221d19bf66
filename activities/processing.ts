import { ApplicationFailure, Context } from '@temporalio/activity';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type { NewRendition } from '../services/shared/db/media-repository';
import { probe, runFfmpeg, UnplayableMediaError, type FfmpegPaths } from '../services/shared/media/ffmpeg';
import { buildHlsArgs, buildPosterArgs, ladderFor } from '../services/shared/media/hls-args';
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

/** Uploads thumbnails under `derived/{mediaId}/thumbnails/` and describes them as renditions. */
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
      ctx.heartbeat({ phase: 'upload' });
      await storage.deletePrefix(buckets.media, `${derivedPrefix(input.mediaId)}thumbnails/`);
      const renditions = await storeThumbnails(deps, input.mediaId, result.thumbnails, () => ctx.heartbeat({ phase: 'upload' }));
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

/** Video activity (video queue): ffprobe, poster + thumbnails, HLS ladder in one ffmpeg pass. */
export function createVideoActivities(deps: ActivityDeps, settings: VideoSettings) {
  const { storage, media, buckets } = deps;
  return {
    async transcodeVideo(input: ProcessingInput): Promise<{ renditions: string[] }> {
      const ctx = Context.current();
      // ffmpeg reads the original over HTTP with range requests: no local copy of the source.
      const source = (await storage.presignGet(buckets.incoming, input.storageKey, 6 * 3600)).url;
      let facts;
      try {
        facts = await probe(settings.ffmpeg, source);
      } catch (err) {
        // ffprobe cannot tell a broken file from an unreachable one: only an object that S3
        // still serves makes it bad content; anything else is a transient fault to retry.
        if (err instanceof UnplayableMediaError && (await storage.head(buckets.incoming, input.storageKey))) {
          throw ApplicationFailure.nonRetryable(err.message, 'UNDECODABLE_MEDIA');
        }
        throw err;
      }
      const work = await mkdtemp(join(tmpdir(), `transcode-${input.mediaId}-`));
      try {
        ctx.heartbeat({ phase: 'poster', percent: 0 });
        const posterFile = join(work, 'poster.jpg');
        await runFfmpeg(settings.ffmpeg, buildPosterArgs(facts, source, posterFile), { signal: ctx.cancellationSignal });
        const rungs = ladderFor(facts);
        const hlsDir = join(work, 'hls');
        await runFfmpeg(settings.ffmpeg, buildHlsArgs(facts, rungs, { input: source, outputDir: hlsDir, segmentSeconds: settings.segmentSeconds, preset: settings.preset }), {
          signal: ctx.cancellationSignal,
          durationSeconds: facts.durationSeconds,
          onProgress: (percent) => ctx.heartbeat({ phase: 'hls', percent: Math.round(percent) }),
        });

        // A retry after a crash starts clean: nothing of an earlier attempt survives.
        await storage.deletePrefix(buckets.media, derivedPrefix(input.mediaId));
        const prefix = derivedPrefix(input.mediaId);
        const renditions: NewRendition[] = [];
        const posterData = await readFile(posterFile);
        const { facts: posterFacts, thumbnails } = await makeThumbnails(posterData, MEDIA_TYPE_RULES[input.mediaType].thumbnailWidths);
        await storage.put(buckets.media, `${prefix}poster.jpg`, posterData, 'image/jpeg', DERIVED_CACHE_CONTROL);
        renditions.push({ mediaId: input.mediaId, kind: 'poster', label: 'poster.jpg', width: posterFacts.width, height: posterFacts.height, storageKey: `${prefix}poster.jpg`, contentType: 'image/jpeg', sizeBytes: posterData.length });
        renditions.push(...(await storeThumbnails(deps, input.mediaId, thumbnails, () => ctx.heartbeat({ phase: 'upload' }))));
        const files = await listFiles(hlsDir);
        let hlsBytes = 0;
        for (const [i, file] of files.entries()) {
          const rel = relative(hlsDir, file);
          const ext = rel.slice(rel.lastIndexOf('.'));
          const data = await readFile(file);
          hlsBytes += data.length;
          await storage.put(buckets.media, `${prefix}hls/${rel}`, data, streamContentType[ext] ?? 'application/octet-stream', DERIVED_CACHE_CONTROL);
          if (i % 10 === 0) ctx.heartbeat({ phase: 'upload', percent: Math.round((100 * i) / files.length) });
        }
        // The master row carries the size of the whole ladder (playlists and segments), which the storage quota counts.
        renditions.push({ mediaId: input.mediaId, kind: 'hls', label: 'master', width: null, height: null, storageKey: `${prefix}hls/master.m3u8`, contentType: streamContentType['.m3u8']!, sizeBytes: hlsBytes });
        for (const r of rungs) {
          const width = Math.round((facts.width / facts.height) * r.height / 2) * 2;
          renditions.push({ mediaId: input.mediaId, kind: 'hls', label: r.name, width, height: r.height, storageKey: `${prefix}hls/${r.name}/index.m3u8`, contentType: streamContentType['.m3u8']!, sizeBytes: null });
        }
        await media.mergeMetadata(input.mediaId, {
          width: facts.width,
          height: facts.height,
          durationSeconds: facts.durationSeconds,
          videoCodec: facts.videoCodec,
          audioCodec: facts.audioCodec,
          frameRate: facts.frameRate,
          hasAudio: facts.hasAudio,
          rotation: facts.rotation,
        });
        await media.replaceRenditions(input.mediaId, renditions);
        return { renditions: rungs.map((r) => r.name) };
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
