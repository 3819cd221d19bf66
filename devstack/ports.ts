import { createServer, type Server } from 'node:net';

/** Listens on `port` of loopback (0: any free one the OS picks). */
function listenOn(port = 0): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** `[number, number, …]` of length N for a literal N (so destructuring needs no checks). */
export type Ports<N extends number, R extends number[] = []> = number extends N ? number[] : R['length'] extends N ? R : Ports<N, [...R, number]>;

/**
 * `count` distinct TCP ports on loopback that are free right now (within `range` when given,
 * else wherever the OS puts them: on Linux its ephemeral range, 32768 and up). Every port stays bound
 * until all are chosen, so the OS cannot hand out one port twice within a set (it may reuse
 * a port as soon as it is released); ports in `exclude` (handed out earlier to the same
 * stack but perhaps not bound yet by their server) are never returned.
 */
export async function reservePorts<N extends number>(count: N, exclude: Iterable<number> = [], range?: { min: number; max: number }): Promise<Ports<N>> {
  const excluded = new Set(exclude);
  const held: Server[] = [];
  const ports: number[] = [];
  try {
    for (let tries = 0; ports.length < count; tries++) {
      if (range && tries > 1000) throw new Error(`no ${count} free ports between ${range.min} and ${range.max}`);
      // In a range: random candidates (one that is taken is skipped); else the OS picks.
      const server = range ? await listenOn(range.min + Math.floor(Math.random() * (range.max - range.min + 1))).catch(() => undefined) : await listenOn();
      if (!server) continue;
      held.push(server);
      const address = server.address();
      if (typeof address !== 'object' || !address) throw new Error('no port');
      if (!excluded.has(address.port)) ports.push(address.port);
    }
    return ports as Ports<N>;
  } finally {
    await Promise.all(held.map(close));
  }
}

/** One TCP port on loopback that is free right now; use reservePorts for several. */
export async function freePort(): Promise<number> {
  const [port] = await reservePorts(1);
  return port;
}

/** What a server prints when its port is taken (SeaweedFS, clamd, Temporal, PostgreSQL). */
export const portRaceText = /address already in use|EADDRINUSE|could not bind/i;

/** True when a server failed to start because another process took its port first. */
export function lostPortRace(err: unknown): boolean {
  return err instanceof Error && portRaceText.test(err.message);
}

/** A port given in the configuration (`npm run dev`), never picked afresh. */
export interface FixedPort {
  port: number;
  /** The server it is for, as assertPortFree names it. */
  what: string;
  /** The variable that sets it. */
  envName: string;
}

/**
 * Starts a server on ports picked at run time, and starts it again on fresh ports when it
 * lost a port race (a port free when picked was taken before the server bound it: another
 * test run, another stack). Any other failure is thrown at once.
 *
 * A server may also listen on fixed ports (`fixed`) beside the picked ones (SeaweedFS: a
 * configured S3 port, nine internal ports picked at run time). The race error does not reliably
 * say which port it lost, so after one each fixed port is tried: one that another process holds
 * fails the start at once with assertPortFree's message; otherwise a picked port raced and the
 * server is started again.
 *
 * @param start called with the attempt number (0 first); picks its ports and starts.
 * @param attempts how many starts in all before the port race error is thrown.
 * @param fixed the server's fixed ports, the same on every attempt.
 */
export async function retryOnPortRace<T>(start: (attempt: number) => Promise<T>, attempts = 4, fixed: FixedPort[] = []): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await start(attempt);
    } catch (err) {
      if (attempt + 1 >= attempts || !lostPortRace(err)) throw err;
      // The server has exited and closed its listeners: a fixed port held now is held by another process.
      for (const f of fixed) await assertPortFree(f.port, f.what, f.envName);
    }
  }
}

/** Fails with one clear line when a configured port is taken. */
export function assertPortFree(port: number, what: string, envName: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new Error(
          err.code === 'EADDRINUSE'
            ? `port ${port} for ${what} is already in use: stop what holds it or set ${envName} to another port`
            : `cannot listen on port ${port} for ${what}: ${err.message}`,
        ),
      ),
    );
    server.listen(port, '127.0.0.1', () => server.close(() => resolve()));
  });
}
