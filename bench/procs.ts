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

/** Children started since `before` that are still running after up to `graceMs`. */
export async function leftoverChildren(before: ReadonlySet<number>, graceMs = 2000): Promise<ChildProcessInfo[]> {
  const deadline = Date.now() + graceMs;
  for (;;) {
    const extra = childProcesses().filter((c) => !before.has(c.pid));
    if (extra.length === 0 || Date.now() >= deadline) return extra;
    await new Promise((r) => setTimeout(r, 100));
  }
}
