import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startProcess, tcpOpen, waitFor, type ManagedProcess } from './process';
import { clamd } from './tools';

/**
 * The EICAR test file's MD5 signature: signature downloads are not reachable here, so the
 * local database is generated and detects at least the standard antivirus test file.
 */
export const eicarSignatureName = 'Eicar-Test-File';
const eicarString = 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*';
/** Whole-file MD5 of the 68-byte EICAR file (.hdb). */
const hashSignatures = `44d88612fea8a8f36de82e1278abb02f:68:${eicarSignatureName}\n`;
/** The EICAR string anywhere in any file (.ndb body signature), e.g. behind an image header. */
const bodySignatures = `${eicarSignatureName}-Embedded:0:*:${Buffer.from(eicarString, 'latin1').toString('hex')}\n`;

export interface ClamdOptions {
  dataDir: string;
  port: number;
  /** clamd's own stream limit; larger uploads are handled by the scan policy. */
  streamMaxLength?: string;
  logFile?: string;
}

export interface ClamdServer {
  host: string;
  port: number;
  process: ManagedProcess;
}

export async function startClamd(options: ClamdOptions): Promise<ClamdServer> {
  const dbDir = join(options.dataDir, 'db');
  const tmpDir = join(options.dataDir, 'tmp');
  mkdirSync(dbDir, { recursive: true });
  mkdirSync(tmpDir, { recursive: true });
  writeFileSync(join(dbDir, 'local-eicar.hdb'), hashSignatures);
  writeFileSync(join(dbDir, 'local-eicar.ndb'), bodySignatures);
  const conf = join(options.dataDir, 'clamd.conf');
  writeFileSync(
    conf,
    [
      'Foreground yes',
      `TCPSocket ${options.port}`,
      'TCPAddr 127.0.0.1',
      `DatabaseDirectory ${dbDir}`,
      // clamd writes streams here; an unwritable directory makes INSTREAM fail silently.
      `TemporaryDirectory ${tmpDir}`,
      `StreamMaxLength ${options.streamMaxLength ?? '1000M'}`,
      'LogTime yes',
      `LogFile ${join(options.dataDir, 'clamd-events.log')}`,
      'MaxThreads 4',
      '',
    ].join('\n'),
  );
  const proc = startProcess('clamd', clamd(), ['--config-file', conf], { logFile: options.logFile });
  await waitFor('clamd', () => tcpOpen(options.port), 60_000, proc);
  return { host: '127.0.0.1', port: options.port, process: proc };
}
