import { runFfmpeg } from '../../services/shared/media/ffmpeg';

describe('runFfmpeg', () => {
  it('does not start ffmpeg for a step cancelled before it ran', async () => {
    const controller = new AbortController();
    controller.abort();
    // A path that cannot be spawned: had runFfmpeg tried, the error would be ENOENT, not the cancellation.
    await expect(runFfmpeg({ ffmpeg: '/nonexistent/ffmpeg', ffprobe: '/nonexistent/ffprobe' }, ['-version'], { signal: controller.signal })).rejects.toThrow('ffmpeg cancelled');
  });

  it('still runs when the signal has not fired (the same path fails to spawn)', async () => {
    // Spawned directly: ENOENT; through setpriv (diesWithParent): setpriv's failed exec, whose
    // path stays in the log's detail (the message becomes a failure reason: no paths).
    const run = runFfmpeg({ ffmpeg: '/nonexistent/ffmpeg', ffprobe: '/nonexistent/ffprobe' }, ['-version'], { signal: new AbortController().signal });
    await expect(run).rejects.toThrow(/ENOENT|failed to execute/);
    const err = (await run.catch((e: unknown) => e)) as Error & { detail?: string };
    expect(err.detail ?? err.message).toContain('/nonexistent/ffmpeg');
  });
});
