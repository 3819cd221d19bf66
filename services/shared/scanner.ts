import type { Readable } from 'node:stream';
// clamscan ships no type declarations; the part used here is typed below.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const NodeClam = require('clamscan') as new () => { init(options: object): Promise<ClamClient> };

interface ClamClient {
  scanStream(stream: Readable): Promise<{ isInfected: boolean | null; viruses: string[] }>;
}

export interface ScanResult {
  infected: boolean;
  signatures: string[];
}

/** clamd over TCP with INSTREAM (clamscan library); the object streams through, never buffered whole. */
export class ClamdScanner {
  private client?: Promise<ClamClient>;

  constructor(private readonly options: { host: string; port: number; timeoutMs?: number }) {}

  private connect(): Promise<ClamClient> {
    this.client ??= new NodeClam()
      .init({
        removeInfected: false,
        clamscan: { active: false },
        clamdscan: { host: this.options.host, port: this.options.port, timeout: this.options.timeoutMs ?? 120_000, localFallback: false, active: true },
        preference: 'clamdscan',
      })
      .catch((err: unknown) => {
        // Scanner unreachable: forget the attempt so the retry connects afresh.
        this.client = undefined;
        throw err;
      });
    return this.client;
  }

  async scan(stream: Readable): Promise<ScanResult> {
    const client = await this.connect();
    const result = await client.scanStream(stream);
    if (result.isInfected === null) throw new Error('clamd gave no verdict');
    return { infected: result.isInfected, signatures: result.viruses ?? [] };
  }
}
