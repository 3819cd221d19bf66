import { EventEmitter } from 'node:events';
import { Client } from 'pg';
import { STATUS_CHANNEL } from '../shared/db/media-repository';
import type { Logger } from '../shared/logger';

/**
 * One LISTEN connection per API process fans status changes out to SSE subscribers; it
 * reconnects by itself after a database restart.
 */
export class StatusNotifier {
  private readonly emitter = new EventEmitter();
  private client?: Client;
  private stopped = false;

  constructor(
    private readonly databaseUrl: string,
    private readonly log: Logger,
  ) {
    this.emitter.setMaxListeners(0);
  }

  async start(): Promise<void> {
    if (this.stopped) return;
    const client = new Client({ connectionString: this.databaseUrl });
    client.on('notification', (msg) => msg.payload && this.emitter.emit(msg.payload));
    client.on('error', (err) => {
      this.log.warn({ err: err.message }, 'status listener lost its connection; reconnecting');
      this.reconnectLater();
    });
    await client.connect();
    await client.query(`LISTEN ${STATUS_CHANNEL}`);
    this.client = client;
  }

  private reconnectLater(): void {
    const old = this.client;
    this.client = undefined;
    old?.end().catch(() => undefined);
    if (this.stopped) return;
    setTimeout(() => {
      if (this.stopped) return;
      this.start().catch(() => this.reconnectLater());
    }, 1000).unref();
  }

  subscribe(mediaId: string, onChange: () => void): () => void {
    this.emitter.on(mediaId, onChange);
    return () => this.emitter.off(mediaId, onChange);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.client?.end().catch(() => undefined);
  }
}
