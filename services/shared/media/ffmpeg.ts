import ffmpeg from 'fluent-ffmpeg';
import { spawn } from 'node:child_process';
import { redactPresignedUrls } from '../logger';
import type { ProbeResult } from './hls-args';

export interface FfmpegPaths {
  ffmpeg: string;
  ffprobe: string;
}

export class UnplayableMediaError extends Error {}

/** ffprobe through fluent-ffmpeg: the facts the ladder and the read model need. */
export function probe(paths: FfmpegPaths, input: string): Promise<ProbeResult> {
  return new Promise((resolve, reject) => {
    ffmpeg.setFfprobePath(paths.ffprobe);
    ffmpeg.ffprobe(input, (err, data) => {
      // Errors reach Temporal's history and the logs: the presigned input URL must not.
      if (err) return reject(new UnplayableMediaError(`ffprobe could not read the file: ${redactPresignedUrls(String(err.message ?? err).split('\n').slice(-2).join(' '))}`));
      const video = data.streams.find((s) => s.codec_type === 'video');
      const audio = data.streams.find((s) => s.codec_type === 'audio');
      const duration = Number(data.format.duration ?? video?.duration ?? 0);
      if (!video || !video.width || !video.height || !(duration > 0)) return reject(new UnplayableMediaError('no playable video stream'));
      const [num, den] = String(video.avg_frame_rate ?? video.r_frame_rate ?? '0/1').split('/').map(Number);
      const sideRotation = (video as { side_data_list?: Array<{ rotation?: number }> }).side_data_list?.find((d) => d.rotation !== undefined)?.rotation;
      const tagRotation = Number((video.tags as Record<string, string> | undefined)?.rotate ?? 0);
      resolve({
        durationSeconds: duration,
        width: video.width,
        height: video.height,
        hasAudio: !!audio,
        videoCodec: video.codec_name,
        audioCodec: audio?.codec_name,
        frameRate: den ? num! / den : undefined,
        rotation: Number(sideRotation ?? tagRotation) || 0,
      });
    });
  });
}

export interface RunOptions {
  /** Called with percent done (0–100) as ffmpeg reports progress. */
  onProgress?: (percent: number) => void;
  /** Aborting kills ffmpeg (activity cancellation). */
  signal?: AbortSignal;
  durationSeconds?: number;
}

/**
 * Runs ffmpeg with a prebuilt argument array. fluent-ffmpeg assembles its own argument list,
 * which cannot express the one-pass split + var_stream_map ladder verbatim, so ffmpeg is
 * spawned directly with `-progress pipe:1` (ffmpeg's machine-readable progress).
 */
export function runFfmpeg(paths: FfmpegPaths, args: string[], o: RunOptions = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(paths.ffmpeg, ['-progress', 'pipe:1', '-nostats', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const abort = () => child.kill('SIGKILL');
    o.signal?.addEventListener('abort', abort, { once: true });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4000);
    });
    let pending = '';
    child.stdout.on('data', (chunk: Buffer) => {
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        const m = /^out_time_us=(\d+)/.exec(line);
        if (m && o.onProgress && o.durationSeconds) o.onProgress(Math.min(100, Number(m[1]) / 1e4 / o.durationSeconds));
      }
    });
    child.once('error', reject);
    child.once('close', (code, signal) => {
      o.signal?.removeEventListener('abort', abort);
      if (code === 0) return resolve();
      if (o.signal?.aborted) return reject(new Error('ffmpeg cancelled'));
      reject(new Error(`ffmpeg exited with ${code ?? signal}: ${redactPresignedUrls(stderr.split('\n').slice(-5).join(' '))}`));
    });
  });
}
