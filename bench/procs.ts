import { readdirSync, readFileSync } from 'node:fs';

export interface ChildProcessInfo {
  pid: number;
  name: string;
}

/**
 * Live (non-zombie) direct children of `ppid`, read from /proc; empty where there is no /proc.
 * Direct children only: PostgreSQL's backends come and go with connection pools and are not ours.
 */
export function childProcesses(ppid = process.pid): ChildProcessInfo[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  const out: ChildProcessInfo[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    // `pid (comm) state ppid …`; comm may itself contain spaces and parentheses.
    const close = stat.lastIndexOf(')');
    const [state, parent] = stat.slice(close + 2).split(' ');
    if (Number(parent) === ppid && state !== 'Z') out.push({ pid: Number(entry), name: stat.slice(stat.indexOf('(') + 1, close) });
  }
  return out;
}

/** Whether `pid` runs ExifTool (`perl …/exiftool -stay_open …`: the metadata scrubber's pool). */
export function isExiftoolPool(pid: number): boolean {
  try {
    const command = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return command.includes('exiftool') && command.includes('-stay_open');
  } catch {
    return false;
  }
}

/** Children started since `before` that are still running after up to `graceMs`. */
export async function leftoverChildren(before: ReadonlySet<number>, graceMs = 2000): Promise<ChildProcessInfo[]> {
  const deadline = Date.now() + graceMs;
  for (;;) {
    const extra = childProcesses().filter((c) => !before.has(c.pid));
    if (extra.length === 0 || Date.now() >= deadline) return extra;
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface ProcStat {
  pid: number;
  ppid: number;
  name: string;
  /** utime + stime + cutime + cstime, in clock ticks (children's time once they are reaped). */
  ticks: number;
}

function processTable(): ProcStat[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  const out: ProcStat[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const f = stat.slice(close + 2).split(' ');
      out.push({ pid: Number(entry), ppid: Number(f[1]), name: stat.slice(stat.indexOf('(') + 1, close), ticks: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]) });
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** Linux's USER_HZ: 100 on every mainstream architecture. */
const ticksPerSecond = 100;

/** A direct child of this process with the CPU seconds of its whole subtree so far. */
export interface ChildCpu {
  pid: number;
  name: string;
  seconds: number;
}

/**
 * Each direct child of this process with its whole subtree (PostgreSQL's backends count to
 * postgres, ffmpeg to the worker that runs it), read from /proc; empty where there is none.
 */
export function childCpu(): ChildCpu[] {
  const table = processTable();
  const children = new Map<number, ProcStat[]>();
  for (const p of table) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p]);
  const subtree = (p: ProcStat): number => p.ticks + (children.get(p.pid) ?? []).reduce((sum, c) => sum + subtree(c), 0);
  return (children.get(process.pid) ?? []).map((c) => ({ pid: c.pid, name: c.name, seconds: subtree(c) / ticksPerSecond }));
}

/** CPU seconds used so far by this process (all its threads: API, worker, libuv pool). */
export function ownCpuSeconds(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
}

/** CPU seconds used so far by this process and by each direct child with its subtree, by name. */
export function cpuSeconds(): Map<string, number> {
  const result = new Map<string, number>([['node (this process)', ownCpuSeconds()]]);
  for (const child of childCpu()) result.set(child.name, (result.get(child.name) ?? 0) + child.seconds);
  return result;
}

/** `after − before` per name, largest first. */
export function cpuDelta(before: Map<string, number>, after: Map<string, number>): Array<[string, number]> {
  return [...after].map(([name, s]): [string, number] => [name, s - (before.get(name) ?? 0)]).sort((a, b) => b[1] - a[1]);
}

/** Busy and total jiffies of all cores so far (`cpu` line of /proc/stat); undefined where there is none. */
function machineJiffies(): { busy: number; total: number } | undefined {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const total = fields.reduce((sum, v) => sum + v, 0);
    // idle and iowait are the 4th and 5th fields.
    return { busy: total - fields[3]! - fields[4]!, total };
  } catch {
    return undefined;
  }
}

/**
 * Waits until the whole machine is quiet: under `busyBelow` (a fraction of all cores) over a
 * `windowMs` window, for at most `maxMs`. A section's figures say "idle machine": work an
 * earlier section queued (first workflow tasks, a Temporal server still persisting) must not
 * run under the next one. Resolves with how long it waited (ms) and the last window's busy
 * fraction; `quiet` is false when the limit ran out first.
 */
export async function waitForQuietMachine(o: { busyBelow?: number; windowMs?: number; maxMs?: number } = {}): Promise<{ quiet: boolean; waitedMs: number; busy: number }> {
  const { busyBelow = 0.15, windowMs = 1000, maxMs = 90_000 } = o;
  const t0 = Date.now();
  for (;;) {
    const before = machineJiffies();
    await new Promise((r) => setTimeout(r, windowMs));
    const after = machineJiffies();
    if (!before || !after) return { quiet: true, waitedMs: Date.now() - t0, busy: 0 };
    const busy = (after.busy - before.busy) / Math.max(1, after.total - before.total);
    if (busy < busyBelow || Date.now() - t0 >= maxMs) return { quiet: busy < busyBelow, waitedMs: Date.now() - t0, busy };
  }
}
