import { createServer, type Server } from 'node:net';
import { lostPortRace, reservePorts, retryOnPortRace } from '../../devstack/ports';
import { startProcess, tcpOpen, waitFor, type ManagedProcess } from '../../devstack/process';

const listen = (port: number) =>
  new Promise<Server>((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
const close = (server: Server) => new Promise<void>((resolve) => server.close(() => resolve()));

describe('reservePorts', () => {
  it('hands out distinct ports, none of them excluded, all free again afterwards', async () => {
    const first = await reservePorts(13);
    const second = await reservePorts(13, first);
    expect(new Set(first).size).toBe(13);
    expect(second.filter((p) => first.includes(p))).toEqual([]);
    // Released: each can be bound by the server it was picked for.
    const servers = await Promise.all([...first, ...second].map(listen));
    await Promise.all(servers.map(close));
  });

  it('within a range (the production Temporal server\'s membership ports): distinct, in range, skipping a taken one', async () => {
    const range = { min: 31000, max: 31011 };
    const [taken] = await reservePorts(1, [], range);
    const holder = await listen(taken);
    try {
      const picked = await reservePorts(6, [], range);
      expect(new Set(picked).size).toBe(6);
      expect(picked.every((p) => p >= range.min && p <= range.max)).toBe(true);
      expect(picked).not.toContain(taken);
    } finally {
      await close(holder);
    }
    // A range without room for the count fails with a message that names it.
    await expect(reservePorts(3, [], { min: taken, max: taken })).rejects.toThrow(`no 3 free ports between ${taken} and ${taken}`);
  });
});

describe('retryOnPortRace', () => {
  /** A real child process that binds `port` the way SeaweedFS or clamd would. */
  const startListener = async (port: number): Promise<ManagedProcess> => {
    const proc = startProcess('listener', process.execPath, [
      '-e',
      `require('node:net').createServer().listen(${port}, '127.0.0.1')`,
    ]);
    await waitFor('listener', () => tcpOpen(port), 10_000, proc);
    return proc;
  };

  it('starts a server again on a fresh port when another process took its port first', async () => {
    const [taken] = await reservePorts(1);
    const thief = await listen(taken);
    const attempts: number[] = [];
    let started: ManagedProcess | undefined;
    try {
      started = await retryOnPortRace(async (attempt) => {
        const port = attempt === 0 ? taken : (await reservePorts(1, [taken]))[0];
        attempts.push(port);
        // The thief answers tcpOpen too: wait for the exit or for the listener's own port.
        const proc = startProcess('listener', process.execPath, [
          '-e',
          `require('node:net').createServer().listen(${port}, '127.0.0.1', () => console.log('listening'))`,
        ]);
        await waitFor('listener', async () => proc.recentOutput().includes('listening'), 10_000, proc);
        return proc;
      });
      expect(attempts).toHaveLength(2);
      expect(attempts[0]).toBe(taken);
      expect(attempts[1]).not.toBe(taken);
      expect(started.child.exitCode).toBeNull();
    } finally {
      await started?.stop();
      await close(thief);
    }
  });

  it('names the port race in the start error, so it can be told from other failures', async () => {
    const [port] = await reservePorts(1);
    const first = await startListener(port);
    try {
      const second = startProcess('listener', process.execPath, ['-e', `require('node:net').createServer().listen(${port}, '127.0.0.1')`]);
      const failure = await waitFor('second listener', async () => false, 10_000, second).catch((err: unknown) => err);
      expect(lostPortRace(failure)).toBe(true);
      expect(String(failure)).toContain('process exited with code 1 before it was ready');
    } finally {
      await first.stop();
    }
  });

  it('throws any other start failure at once, without a second attempt', async () => {
    let calls = 0;
    await expect(
      retryOnPortRace(async () => {
        calls++;
        throw new Error('clamd: database not found');
      }),
    ).rejects.toThrow('database not found');
    expect(calls).toBe(1);
  });

  it('gives up after the last attempt and throws the port race', async () => {
    let calls = 0;
    await expect(
      retryOnPortRace(async () => {
        calls++;
        throw new Error('listen tcp 127.0.0.1:7000: bind: address already in use');
      }, 3),
    ).rejects.toThrow('address already in use');
    expect(calls).toBe(3);
  });

  /** A real child process that binds both ports, as SeaweedFS binds its S3 port and its internal ones. */
  const startTwoPortServer = async (fixedPort: number, pickedPort: number): Promise<ManagedProcess> => {
    const proc = startProcess('two-port server', process.execPath, [
      '-e',
      `const net = require('node:net'); let n = 0; for (const p of [${fixedPort}, ${pickedPort}]) net.createServer().listen(p, '127.0.0.1', () => ++n === 2 && console.log('listening'));`,
    ]);
    await waitFor('two-port server', async () => proc.recentOutput().includes('listening'), 10_000, proc);
    return proc;
  };

  it('with a fixed port beside picked ones: starts again on a fresh picked port and the same fixed port when a picked one raced', async () => {
    const [fixedPort, taken] = await reservePorts(2);
    const thief = await listen(taken);
    const attempts: Array<[number, number]> = [];
    let started: ManagedProcess | undefined;
    try {
      started = await retryOnPortRace(
        async (attempt) => {
          const picked = attempt === 0 ? taken : (await reservePorts(1, [fixedPort, taken]))[0];
          attempts.push([fixedPort, picked]);
          return startTwoPortServer(fixedPort, picked);
        },
        4,
        [{ port: fixedPort, what: 's3', envName: 'DEV_S3_PORT' }],
      );
      expect(attempts).toHaveLength(2);
      expect(attempts.map(([fixed]) => fixed)).toEqual([fixedPort, fixedPort]);
      expect(attempts[1]![1]).not.toBe(taken);
    } finally {
      await started?.stop();
      await close(thief);
    }
  });

  it('with a fixed port: fails at once, naming the port and its variable, when the fixed port itself was taken', async () => {
    const [fixedPort, picked] = await reservePorts(2);
    const thief = await listen(fixedPort);
    let calls = 0;
    try {
      await expect(
        retryOnPortRace(
          async () => {
            calls++;
            return startTwoPortServer(fixedPort, picked);
          },
          4,
          [{ port: fixedPort, what: 's3', envName: 'DEV_S3_PORT' }],
        ),
      ).rejects.toThrow(`port ${fixedPort} for s3 is already in use: stop what holds it or set DEV_S3_PORT to another port`);
      expect(calls).toBe(1);
    } finally {
      await close(thief);
    }
  });
});
