import { spawnSync } from 'node:child_process';

let setprivWithPdeathsig: boolean | undefined;

/**
 * Whether `diesWithParent` can tie a child to this process: util-linux `setpriv` with
 * `--pdeathsig` is on PATH (Linux; Debian's util-linux, which the worker image has). Checked
 * once per process.
 */
export function parentDeathSignalAvailable(): boolean {
  setprivWithPdeathsig ??= (spawnSync('setpriv', ['--help'], { encoding: 'utf8' }).stdout ?? '').includes('--pdeathsig');
  return setprivWithPdeathsig;
}

/**
 * `[command, args]` for spawn/execFile that run `command args` as a child the kernel SIGKILLs
 * when this process dies, even by SIGKILL or the OOM killer (PR_SET_PDEATHSIG, set by `setpriv`,
 * which then execs the command under its own pid: `child.pid`, `child.kill` and /proc reads
 * still reach the command). Without setpriv the command is returned unchanged (the worker logs
 * that once at start): such a child outlives a killed worker.
 *
 * The kernel sends the signal when the *thread* that forked exits: spawn from the main thread
 * (Node's child_process forks there), never from a worker_thread that may end first. A command
 * that cannot be executed fails as exit code 127 with setpriv's message on stderr, not as a
 * spawn ENOENT.
 */
export function diesWithParent(command: string, args: readonly string[]): [string, string[]] {
  return parentDeathSignalAvailable() ? ['setpriv', ['--pdeathsig', 'SIGKILL', '--', command, ...args]] : [command, [...args]];
}
