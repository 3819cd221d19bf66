import { createServer, request, Agent, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { drainable } from '../../services/api/drain';

/**
 * drainable() on a plain http server on loopback: what a stopping API owes the requests that
 * reached it (services/api/server.ts calls it on SIGTERM).
 */
describe('drainable', () => {
  let server: Server;
  let port: number;
  /** Responses the handler holds open until the test ends them, by path. */
  const held = new Map<string, ServerResponse>();
  let drain: ReturnType<typeof drainable>['drain'];

  beforeEach(async () => {
    held.clear();
    server = createServer((req, res) => {
      const path = req.url ?? '/';
      if (path.startsWith('/hold') || path.endsWith('/events')) {
        if (path.endsWith('/events')) res.writeHead(200, { 'content-type': 'text/event-stream' }).write(': open\n\n');
        held.set(path, res);
        return;
      }
      res.end(`answer ${path}`);
    });
    ({ drain } = drainable(server));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterEach(() => {
    server.closeAllConnections();
    server.close();
  });

  /** GET over `agent`; resolves with status, body and the Connection header, or rejects on a reset. */
  const get = (path: string, agent?: Agent) => {
    const answer = new Promise<{ status: number; body: string; connection?: string }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path, agent }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, body, connection: res.headers.connection }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
    // Awaited later in the test; a reset before that must fail the test, not the process.
    answer.catch(() => undefined);
    return answer;
  };
  const until = async (check: () => boolean) => {
    while (!check()) await new Promise((r) => setTimeout(r, 10));
  };

  it('answers a request in flight and one that arrives during the drain window, then resolves', async () => {
    const inFlight = get('/hold/1');
    await until(() => held.has('/hold/1'));
    let drained = false;
    const draining = drain({ drainMs: 300, closeAllAt: Date.now() + 5_000 }).then(() => (drained = true));
    // Arrives after the signal, while the listener still accepts.
    const late = await get('/late');
    expect(late).toMatchObject({ status: 200, body: 'answer /late' });
    expect(drained).toBe(false);
    held.get('/hold/1')!.end('finished');
    expect(await inFlight).toMatchObject({ status: 200, body: 'finished', connection: 'close' });
    await draining;
    expect(drained).toBe(true);
  });

  it('closes an idle keep-alive connection and stops accepting after the window', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    expect((await get('/first', agent)).body).toBe('answer /first');
    const started = Date.now();
    await drain({ drainMs: 100, closeAllAt: Date.now() + 5_000 });
    // The idle connection did not hold the drain until closeAllAt.
    expect(Date.now() - started).toBeLessThan(5_000);
    await expect(get('/after')).rejects.toThrow(/ECONNREFUSED/);
    agent.destroy();
  });

  it('does not wait for an event stream: it is closed once nothing else is open (the client reconnects)', async () => {
    const events = get('/media/1/events');
    await until(() => held.has('/media/1/events'));
    const closeAllAt = Date.now() + 5_000;
    await drain({ drainMs: 50, closeAllAt });
    expect(Date.now()).toBeLessThan(closeAllAt);
    await expect(events).rejects.toThrow();
  });

  it('closes what is still open at closeAllAt', async () => {
    const events = get('/media/1/events');
    await until(() => held.has('/media/1/events'));
    const stuck = get('/hold/stuck');
    await until(() => held.has('/hold/stuck'));
    const closeAllAt = Date.now() + 600;
    await drain({ drainMs: 50, closeAllAt });
    // The stuck response held the drain to closeAllAt; both were then closed, not answered.
    expect(Date.now()).toBeGreaterThanOrEqual(closeAllAt);
    await expect(stuck).rejects.toThrow();
    await expect(events).rejects.toThrow();
  });
});
