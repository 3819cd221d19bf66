import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { connect } from 'node:net';
import { portRaceText } from './ports';

/** A child process that belongs to the dev stack or a test run and is stopped with it. */
export interface ManagedProcess {
  readonly name: string;
  readonly child: ChildProcess;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
  stop(graceMs?: number): Promise<void>;
  /** The last few KiB of stdout and stderr (empty with inherited output): why it exited. */
  recentOutput(): string;
}

const outputTailBytes = 4096;

export interface StartOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Output goes here; otherwise it is inherited (dev) or dropped. */
  logFile?: string;
  inheritOutput?: boolean;
  /** With `logFile`: the output also goes to this process's stdout and stderr (dev services). */
  echo?: boolean;
}

const running = new Set<ManagedProcess>();

export function startProcess(name: string, command: string, args: string[], options: StartOptions = {}): ManagedProcess {
  const stdio: 'inherit' | ['ignore', 'pipe', 'pipe'] = options.inheritOutput ? 'inherit' : ['ignore', 'pipe', 'pipe'];
  const child = spawn(command, args, { cwd: options.cwd, env: { ...process.env, ...options.env }, stdio });
  let tail = '';
  const keepTail = (chunk: Buffer) => {
    tail = (tail + chunk.toString('utf8')).slice(-outputTailBytes);
  };
  child.stdout?.on('data', keepTail);
  child.stderr?.on('data', keepTail);
  if (options.logFile) {
    mkdirSync(dirname(options.logFile), { recursive: true });
    const log = createWriteStream(options.logFile, { flags: 'a' });
    // Two sources share one file: neither may end it; it closes when the child exits.
    child.stdout?.pipe(log, { end: false });
    child.stderr?.pipe(log, { end: false });
    child.once('close', () => log.end());
  }
  if (options.echo) {
    child.stdout?.pipe(process.stdout, { end: false });
    child.stderr?.pipe(process.stderr, { end: false });
  }
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  const managed: ManagedProcess = {
    name,
    child,
    recentOutput: () => tail,
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
      // The output says why; a port race line is kept even when more lines follow it, since
      // retryOnPortRace reads it from this message.
      const lines = proc.recentOutput().trim().split('\n');
      const portRace = lines.filter((line) => portRaceText.test(line)).slice(-1);
      const output = [...new Set([...portRace, ...lines.slice(-5)])].join('\n');
      throw new Error(`${what}: process exited with code ${proc.child.exitCode} before it was ready${output ? `:\n${output}` : ''}`);
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
