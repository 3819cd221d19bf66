import type { ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { until } from '../../devstack/poll';
import { ffmpeg as ffmpegTools } from '../../devstack/tools';
import { makeWorkDir, sweepOrphanedWorkDirs } from '../../activities/work-dirs';
import { testVideo } from '../fixtures/media';
import { startPlatform, uniqueUser, waitForStatus, type Platform } from '../harness/platform';
import { exited, killGroup, spawnWorker } from '../harness/worker-process';

/** `/proc/<pid>/stat`: the command name, state and parent pid; undefined once the pid is gone. */
function procStat(pid: number): { comm: string; state: string; ppid: number } | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { comm: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')), state: state!, ppid: Number(ppid) };
}

/** Whether `pid` still runs: a zombie (dead, waiting for a parent to reap it) does not. */
const running = (pid: number) => {
  const stat = procStat(pid);
  return !!stat && stat.state !== 'Z';
};

/** Pids of the running ffmpeg processes whose parent is `parent`. */
function ffmpegChildren(parent: number): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number)
    .filter((pid) => {
      const stat = procStat(pid);
      return stat?.ppid === parent && stat.comm === 'ffmpeg' && stat.state !== 'Z';
    });
}

/** Temp dirs of `mediaId`'s transcode under tmpdir(). */
const transcodeDirs = (mediaId: string) => readdirSync(tmpdir()).filter((name) => name.startsWith('transcode-') && name.includes(mediaId));

describe('a video worker killed with SIGKILL', () => {
  let p: Platform;
  let worker: ChildProcess | undefined;
  let replacement: ChildProcess | undefined;
  let liveDir: string | undefined;
  beforeAll(async () => {
    const { ffmpeg, ffprobe } = ffmpegTools();
    // A slow preset: the ladder's ffmpeg runs far longer than the few seconds its death may take.
    p = await startPlatform({ FFMPEG_PATH: ffmpeg, FFPROBE_PATH: ffprobe, HLS_X264_PRESET: 'medium', MULTIPART_THRESHOLD_BYTES: String(100 * 1024 * 1024) }, { videoWorker: false });
  });
  afterAll(async () => {
    for (const w of [worker, replacement]) if (w) killGroup(w, 'SIGKILL');
    for (const w of [worker, replacement]) if (w) await exited(w, 10_000);
    if (liveDir) await rm(liveDir, { recursive: true, force: true });
    // The replacement's own temp dir, now that it is dead too.
    await sweepOrphanedWorkDirs();
    await p?.stop();
  });

  it('takes its ffmpeg with it; the next worker removes its temp dir and keeps the temp dirs of live workers', async () => {
    const user = uniqueUser('kill-leftovers');
    const clip = await testVideo(p.config.FFMPEG_PATH, 20, 1080);
    const res = await p.call(user, '/media/upload-session', { body: { fileName: 'long.mp4', fileType: 'video/mp4', fileSize: clip.length, mediaType: 'POST_VIDEO' } });
    expect((await fetch(res.body.upload.url, { method: 'PUT', body: clip, headers: res.body.upload.headers })).status).toBe(200);
    const mediaId: string = res.body.mediaId;
    worker = spawnWorker(p, 'video');
    const workerPid = worker.pid!;
    await p.call(user, `/media/${mediaId}/complete`, { body: {} });

    // The ladder's ffmpeg (not the first rendition's short one): the transcode step has started and ffmpeg runs under the worker.
    const handle = p.temporal.workflow.getHandle(`media-upload/${mediaId}`);
    const encoders = await until('the transcode step running ffmpeg under the spawned worker', async () => {
      const pending = (await handle.describe()).raw.pendingActivities ?? [];
      const found = pending.some((a) => a.activityType?.name === 'transcodeVideo') ? ffmpegChildren(workerPid) : [];
      return found.length > 0 ? found : undefined;
    }, { timeoutMs: 120_000, intervalMs: 200 });
    expect(transcodeDirs(mediaId)).toHaveLength(1);

    // The worker alone, as the OOM killer would: not its process group.
    process.kill(workerPid, 'SIGKILL');
    expect(await exited(worker, 10_000)).toBe(true);
    // Within 5 s: without the kernel's signal ffmpeg runs on to the end of its encode.
    await until('ffmpeg gone', async () => (encoders.some(running) ? undefined : true), { timeoutMs: 5_000, intervalMs: 100 }).catch(() => undefined);
    expect(encoders.filter(running)).toEqual([]);
    const orphaned = transcodeDirs(mediaId);
    expect(orphaned).toHaveLength(1);

    // A worker that still runs on this host: this process, which hosts the platform's light worker.
    liveDir = await makeWorkDir('document', 'still-working');
    replacement = spawnWorker(p, 'video');
    await until("the dead worker's temp dir swept by the next worker", async () => (existsSync(join(tmpdir(), orphaned[0]!)) ? undefined : true), { timeoutMs: 60_000 });
    expect(existsSync(liveDir)).toBe(true);

    // The replacement picks the media up; cancelled, it leaves nothing published behind.
    expect((await p.call(user, `/media/${mediaId}`, { method: 'DELETE' })).status).toBe(202);
    expect((await waitForStatus(p, user, mediaId, ['CANCELLED', 'READY', 'FAILED'], 120_000)).status).toBe('CANCELLED');
  });
});
