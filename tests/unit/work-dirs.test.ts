import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { makeWorkDir, sweepOrphanedWorkDirs } from '../../activities/work-dirs';

/** This process's start in clock ticks after boot (/proc/self/stat, field 22). */
const ownTicks = () => {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
};

describe('work dirs of dead workers', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'work-dirs-test-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('names a work dir after its kind, its owner process and the media', async () => {
    const made = await makeWorkDir('transcode', '0b5e6a2c-9f0e-4f7e-8d55-1c2b3a4d5e6f', dir);
    expect(basename(made)).toMatch(new RegExp(`^transcode-${process.pid}\\.${ownTicks()}-0b5e6a2c-9f0e-4f7e-8d55-1c2b3a4d5e6f-\\w{6}$`));
  });

  it('removes the dirs of exited processes and of an earlier process under the same pid; keeps live owners and other names', async () => {
    const live = await makeWorkDir('document', 'live', dir);
    // A process that has exited (and was reaped by spawnSync): its pid names nobody now.
    const deadPid = spawnSync(process.execPath, ['-e', '']).pid;
    const dead = join(dir, `transcode-${deadPid}.12345-dead-abcdef`);
    // This pid, another start: a worker restarted in its container often gets the dead one's pid.
    const reused = join(dir, `document-${process.pid}.${ownTicks() - 1}-reused-abcdef`);
    // Made without /proc: the pid alone is the owner.
    const pidOnly = join(dir, `transcode-${process.pid}.0-pid-only-abcdef`);
    const others = ['transcode-0b5e6a2c-9f0e-4f7e-8d55-1c2b3a4d5e6f-abcdef', 'fixture-abcdef'].map((name) => join(dir, name));
    for (const d of [dead, reused, pidOnly, ...others]) mkdirSync(d);

    expect((await sweepOrphanedWorkDirs(dir)).sort()).toEqual([dead, reused].sort());
    expect(readdirSync(dir).map((name) => join(dir, name)).sort()).toEqual([live, pidOnly, ...others].sort());
    expect(existsSync(live)).toBe(true);
  });
});
