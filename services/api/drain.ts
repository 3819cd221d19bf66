import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { Server as NetServer, type Socket } from 'node:net';

/** What one connection holds: responses not yet finished, and how much it had sent when the last one finished. */
interface ConnectionState {
  responses: Set<ServerResponse>;
  /** Event streams among `responses`: they never finish and do not hold the drain. */
  streams: number;
  /** socket.bytesRead when the last response finished (0 before any): more read since means a request is arriving. */
  bytesAtRest: number;
  /** Seen idle at the previous poll. */
  idleBefore: boolean;
}

const POLL_MS = 100;

export interface DrainOptions {
  /** ms to keep accepting and answering before the listener closes (readiness already fails). */
  drainMs: number;
  /** Epoch ms at which every connection left is closed, whatever it holds. */
  closeAllAt: number;
}

/**
 * Tracks the connections of an HTTP server so that it can be stopped without resetting a
 * request that reached it. Install right after listen. `drain()` resolves once the listener
 * and every connection are closed: event streams as soon as nothing else is left (clients
 * reconnect), everything still open at `closeAllAt`.
 *
 * Why not server.close(): it resets every connection still in the listen backlog, so the
 * listener stays open for `drainMs` first; and http's close() also runs
 * closeIdleConnections(), which a change merged into Node after 24.22 (nodejs/node#63470)
 * extends to accepted connections that have not sent a byte yet, whose request may still be
 * in the kernel's buffer. So the listener is closed with net's close(), and a connection is
 * closed here only when it has no response pending and has read nothing since its last one,
 * at two polls in a row (a poll of the event loop, which reads what has arrived, lies between
 * them). http-terminator (destroy) and stoppable (end) close every connection with no request
 * parsed yet at once: that same loss.
 */
export function drainable(server: Server): { drain(options: DrainOptions): Promise<void> } {
  const connections = new Map<Socket, ConnectionState>();
  server.on('connection', (socket: Socket) => {
    connections.set(socket, { responses: new Set(), streams: 0, bytesAtRest: 0, idleBefore: false });
    socket.once('close', () => connections.delete(socket));
  });
  // Prepended: counted before the app answers (it may answer synchronously).
  server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
    const state = connections.get(req.socket);
    if (!state) return;
    const stream = (req.url ?? '').split('?')[0]!.endsWith('/events');
    state.responses.add(res);
    if (stream) state.streams++;
    res.once('close', () => {
      state.responses.delete(res);
      if (stream) state.streams--;
      state.bytesAtRest = req.socket.bytesRead;
    });
  });
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

  return {
    async drain({ drainMs, closeAllAt }) {
      // Responses begun before the signal close their connection too (the app marks new ones).
      for (const state of connections.values()) for (const res of state.responses) if (!res.headersSent) res.setHeader('connection', 'close');
      await sleep(Math.min(drainMs, closeAllAt - Date.now()));
      NetServer.prototype.close.call(server);
      while (Date.now() < closeAllAt && [...connections.values()].some((s) => s.responses.size > s.streams || s.streams === 0)) {
        for (const [socket, state] of connections) {
          const idle = state.responses.size === 0 && socket.bytesRead === state.bytesAtRest;
          if (idle && state.idleBefore) socket.destroy();
          state.idleBefore = idle;
        }
        await sleep(Math.min(POLL_MS, closeAllAt - Date.now()));
      }
      server.closeAllConnections();
    },
  };
}
