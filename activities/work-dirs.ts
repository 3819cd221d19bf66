import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** What an activity's temp dir holds: a video's segments and poster, a downloaded PDF, or an image original being scrubbed. */
const WORK_DIR_KINDS = ['transcode', 'document', 'scrub'] as const;
export type WorkDirKind = (typeof WORK_DIR_KINDS)[number];

/** `<kind>-<pid>.<start ticks>-<mediaId>-XXXXXX`: the owner's pid and start (see startTicks). */
const workDirName = new RegExp(`^(?:${WORK_DIR_KINDS.join('|')})-(\\d+)\\.(\\d+)-`);

/**
 * When process `pid` started, in clock ticks after boot (field 22 of /proc/<pid>/stat); undefined
 * without /proc (not Linux) or once the process is gone. With the pid it names one process even
 * after the pid is reused: a worker restarted in its container (OOM) often gets the dead one's pid.
 */
async function startTicks(pid: number | 'self'): Promise<string | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Field 2 (the command name) is in parentheses and may hold spaces: count from after it.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

let ownTag: Promise<string> | undefined;

/**
 * A fresh temp dir under `dir` (default tmpdir()) for one activity attempt on `mediaId`, named
 * after this process so that sweepOrphanedWorkDirs can tell when its owner is gone. The caller
 * removes it.
 */
export async function makeWorkDir(kind: WorkDirKind, mediaId: string, dir = tmpdir()): Promise<string> {
  ownTag ??= startTicks('self').then((ticks) => `${process.pid}.${ticks ?? 0}`);
  return mkdtemp(join(dir, `${kind}-${await ownTag}-${mediaId}-`));
}

/** Whether the process that named a work dir `<pid>.<ticks>` still runs. */
async function ownerAlive(pid: number, ticks: string): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it runs, as another user.
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  // Ticks 0: made where /proc was missing, the pid is all there is to go by.
  if (ticks === '0') return true;
  const now = await startTicks(pid);
  // Unreadable now: it just exited, or /proc hides it; keep the dir rather than guess.
  return now === undefined || now === ticks;
}

/**
 * Removes the work dirs under `dir` (default tmpdir()) whose owner process is gone: what a
 * worker killed mid-activity (SIGKILL, OOM) leaves, since its `finally` never ran. Dirs of
 * processes that still run (another worker on the host, this process) are kept; so are names
 * of any other shape. Run at worker start, before the first activity.
 * @returns the paths removed.
 */
export async function sweepOrphanedWorkDirs(dir = tmpdir()): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await readdir(dir)) {
    const owner = workDirName.exec(name);
    if (!owner || (await ownerAlive(Number(owner[1]), owner[2]!))) continue;
    await rm(join(dir, name), { recursive: true, force: true });
    removed.push(join(dir, name));
  }
  return removed;
}
