import { spawn } from 'node:child_process';
import { waitForQuietMachine } from '../../bench/procs';

// The bench waits for a quiet machine before each section; this checks that the wait reads
// the machine's load: a core kept busy keeps it from being quiet, and a threshold above any
// load is met at once.
describe('waitForQuietMachine', () => {
  it('answers quiet at once when the threshold is above any load', async () => {
    const result = await waitForQuietMachine({ busyBelow: 1.01, windowMs: 200, maxMs: 5_000 });
    expect(result.quiet).toBe(true);
    expect(result.waitedMs).toBeLessThan(2_000);
  });

  it('is not quiet while processes keep every core busy, and says how busy', async () => {
    const cores = (await import('node:os')).availableParallelism();
    const spinners = Array.from({ length: cores }, () => spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
    try {
      await new Promise((r) => setTimeout(r, 300));
      const result = await waitForQuietMachine({ busyBelow: 0.5, windowMs: 300, maxMs: 1_000 });
      expect(result.quiet).toBe(false);
      expect(result.busy).toBeGreaterThanOrEqual(0.5);
      expect(result.waitedMs).toBeGreaterThanOrEqual(1_000);
    } finally {
      for (const s of spinners) s.kill('SIGKILL');
    }
  });
});
