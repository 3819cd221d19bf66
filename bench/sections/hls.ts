import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createVideoActivities } from '../../activities/processing';
import { ffmpeg as ffmpegTools } from '../../devstack/tools';
import { probe } from '../../services/shared/media/ffmpeg';
import { buildHlsArgs, ladderFor } from '../../services/shared/media/hls-args';
import { activityHarness } from '../activity-env';
import { lavfiClip, median, run } from '../fixtures';
import { mib, ratio } from '../measure';
import type { BenchContext } from '../platform';
import type { Row } from '../report';
import type { Section } from '../section';

export interface HlsOptions {
  seconds: number;
  iterations: number;
}

/**
 * 20 s of 1080p30: about 11–14 s per transcode on 2 cores; three alternating pairs (median of
 * three, not the mean of two: single runs vary by ±20% on a busy 2-core box) stay under 1.5 min.
 */
const defaults: HlsOptions = { seconds: 20, iterations: 3 };

const sec = (msValue: number) => `${(msValue / 1000).toFixed(2)} s`;

interface ActivityRun {
  total: number;
  /** presign + ffprobe over HTTP, until the first heartbeat. */
  probe: number;
  /** poster + HLS ffmpeg runs (first heartbeat → last HLS progress). */
  ffmpeg: number;
  /** poster thumbnails, S3 uploads, read model (last HLS progress → return). */
  after: number;
}

/**
 * SPEC.md §9: the real transcodeVideo activity (presigned source over HTTP, ffprobe, poster,
 * the one-pass HLS ladder, poster thumbnails, S3 uploads, read model; in a
 * MockActivityEnvironment) against the bare ffmpeg command of the same ladder (buildHlsArgs,
 * same rungs, preset and segment length) from a local file into a temp dir.
 */
export async function measureHls(ctx: BenchContext, options: Partial<HlsOptions> = {}): Promise<Row[]> {
  const o = { ...defaults, ...options };
  const tools = ffmpegTools();
  const preset = ctx.config.HLS_X264_PRESET;
  const segmentSeconds = ctx.config.HLS_SEGMENT_SECONDS;
  const work = await mkdtemp(join(tmpdir(), 'bench-hls-'));
  const harness = await activityHarness(ctx);
  try {
    const clip = join(work, 'clip.mp4');
    await lavfiClip(tools.ffmpeg, clip, o.seconds);
    const size = (await stat(clip)).size;
    const storageKey = `post_video/bench-hls/${Date.now()}-clip.mp4`;
    await ctx.storage.put(ctx.config.S3_INCOMING_BUCKET, storageKey, await readFile(clip), 'video/mp4');
    const facts = await probe(tools, clip);
    const rungs = ladderFor(facts);

    const { transcodeVideo } = createVideoActivities(harness.deps, { ffmpeg: tools, preset, segmentSeconds });
    const mediaId = await harness.mediaRow('POST_VIDEO', storageKey, size, 'video/mp4');
    const input = { mediaId, storageKey, mediaType: 'POST_VIDEO' as const, fileSize: size };

    const activity = async (): Promise<ActivityRun> => {
      const t0 = performance.now();
      let firstBeat: number | undefined;
      let lastHls: number | undefined;
      const env = harness.env((details) => {
        const now = performance.now();
        firstBeat ??= now;
        if ((details as { phase?: string } | undefined)?.phase === 'hls') lastHls = now;
      });
      await env.run(transcodeVideo, input);
      const end = performance.now();
      const first = firstBeat ?? t0;
      const hlsEnd = lastHls ?? first;
      return { total: end - t0, probe: first - t0, ffmpeg: hlsEnd - first, after: end - hlsEnd };
    };
    const bare = async (i: number): Promise<number> => {
      const out = join(work, `bare-${i}`);
      const args = buildHlsArgs(facts, rungs, { input: clip, outputDir: out, segmentSeconds, preset });
      const t0 = performance.now();
      await run(tools.ffmpeg, args);
      const elapsed = performance.now() - t0;
      await rm(out, { recursive: true, force: true });
      return elapsed;
    };

    // Untimed warm-up: the ladder over the first 2 s (page cache, ffmpeg's libraries, CPU clocks).
    const warm = buildHlsArgs(facts, rungs, { input: clip, outputDir: join(work, 'warm-up'), segmentSeconds, preset });
    await run(tools.ffmpeg, [...warm.slice(0, 3), '-t', '2', ...warm.slice(3)]);
    await rm(join(work, 'warm-up'), { recursive: true, force: true });

    const activityRuns: ActivityRun[] = [];
    const bareMs: number[] = [];
    for (let i = 0; i < o.iterations; i++) {
      // A B, B A, …: both see the same share of any drift.
      if (i % 2 === 0) {
        activityRuns.push(await activity());
        bareMs.push(await bare(i));
      } else {
        bareMs.push(await bare(i));
        activityRuns.push(await activity());
      }
    }
    const stored = await harness.deps.media.renditions(mediaId);
    const a = (k: keyof ActivityRun) => median(activityRuns.map((r) => r[k]));
    const b = median(bareMs);
    return [
      {
        metric: 'input',
        value: `${o.seconds} s ${facts.width}×${facts.height}@${Math.round(facts.frameRate ?? 0)} lavfi testsrc2 + sine, ${mib(size)}; ladder ${rungs.map((r) => r.name).join('/')}, preset ${preset}, ${segmentSeconds} s segments; ${o.iterations} alternating runs, medians`,
      },
      { metric: 'transcodeVideo activity (median)', value: `${sec(a('total'))} (runs ${activityRuns.map((r) => sec(r.total)).join(', ')}; ${stored.length} renditions rows)` },
      { metric: '  presign + ffprobe over HTTP', value: sec(a('probe')) },
      { metric: '  poster + HLS ffmpeg, source over HTTP', value: sec(a('ffmpeg')) },
      { metric: '  poster thumbnails, S3 uploads, DB', value: `${sec(a('after'))} (from the last HLS progress heartbeat)` },
      { metric: 'bare ffmpeg HLS, local file (median)', value: `${sec(b)} (runs ${bareMs.map(sec).join(', ')})` },
      { metric: 'ratio activity / bare ffmpeg', value: ratio(a('total'), b), target: '≤ 1.1×', met: a('total') / b <= 1.1 },
    ];
  } finally {
    await harness.close();
    await rm(work, { recursive: true, force: true });
  }
}

export const hlsSection: Section = { name: 'HLS: transcodeVideo activity vs bare ffmpeg', run: (ctx) => measureHls(ctx) };
