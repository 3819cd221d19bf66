import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { connect } from 'node:net';

/** A child process that belongs to the dev stack or a test run and is stopped with it. */
export interface ManagedProcess {
  readonly name: string;
  readonly child: ChildProcess;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
  stop(graceMs?: number): Promise<void>;
}

export interface StartOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Output goes here; otherwise it is inherited (dev) or dropped. */
  logFile?: string;
  inheritOutput?: boolean;
}

const running = new Set<ManagedProcess>();

export function startProcess(name: string, command: string, args: string[], options: StartOptions = {}): ManagedProcess {
  const stdio: 'inherit' | ['ignore', 'pipe', 'pipe'] = options.inheritOutput ? 'inherit' : ['ignore', 'pipe', 'pipe'];
  const child = spawn(command, args, { cwd: options.cwd, env: { ...process.env, ...options.env }, stdio });
  if (options.logFile) {
    mkdirSync(dirname(options.logFile), { recursive: true });
    const log = createWriteStream(options.logFile, { flags: 'a' });
    // Two sources share one file: neither may end it; it closes when the child exits.
    child.stdout?.pipe(log, { end: false });
    child.stderr?.pipe(log, { end: false });
    child.once('close', () => log.end());
  } else {
    child.stdout?.resume();
    child.stderr?.resume();
  }
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  const managed: ManagedProcess = {
    name,
    child,
    async stop(graceMs = 5000) {
      running.delete(managed);
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      }
    },
  };
  running.add(managed);
  return managed;
}

/** Kills whatever is still running; last resort on process exit so nothing is orphaned. */
export function killAllSync(): void {
  for (const p of running) if (p.child.exitCode === null) p.child.kill('SIGKILL');
  running.clear();
}
process.once('exit', killAllSync);

export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 60_000, proc?: ManagedProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (proc && proc.child.exitCode !== null) {
      throw new Error(`${what}: process exited with code ${proc.child.exitCode} before it was ready`);
    }
    try {
      if (await check()) return;
    } catch (err) {
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} was not ready after ${timeoutMs} ms${lastError ? `: ${String(lastError)}` : ''}`);
}

export function tcpOpen(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
