import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { reservePorts } from './ports';
import { startProcess, tcpOpen, waitFor, type ManagedProcess, type StartOptions } from './process';
import { seaweedfs } from './tools';

/** How many ports `weed server` listens on besides the S3 port. */
export const s3InternalPortCount = 9;

export interface S3ServerOptions {
  dataDir: string;
  /** S3 API port. */
  port: number;
  /**
   * The nine internal SeaweedFS ports (master, volume, filer, gRPC, …), from the same
   * reservePorts call as `port` so none equals it; omitted → reserved here, apart from `port`.
   */
  internalPorts?: number[];
  accessKeyId: string;
  secretAccessKey: string;
  /** Prometheus `/metrics` port (request counts per S3 operation); omitted → none. */
  metricsPort?: number;
  logFile?: string;
  inheritOutput?: boolean;
}

export interface S3Server {
  endpoint: string;
  /** The SeaweedFS master's HTTP API (volume assignment and growth), loopback only. */
  masterUrl: string;
  process: ManagedProcess;
}

/**
 * SeaweedFS (`weed server` with master, volume, filer and S3 gateway in one process).
 * An identity is configured so that the gateway verifies SigV4 signatures and presigned
 * URL expiry; without one it would accept anonymous writes.
 */
export async function startS3Server(options: S3ServerOptions): Promise<S3Server> {
  mkdirSync(options.dataDir, { recursive: true });
  const s3Config = join(options.dataDir, 's3-identities.json');
  writeFileSync(
    s3Config,
    JSON.stringify({
      identities: [
        {
          name: 'platform',
          credentials: [{ accessKey: options.accessKeyId, secretKey: options.secretAccessKey }],
          actions: ['Admin', 'Read', 'List', 'Tagging', 'Write'],
        },
      ],
    }),
  );
  // Every listener gets a port picked at run time so that two runs never collide.
  const [master, masterGrpc, volume, volumeGrpc, filer, filerGrpc, s3Grpc, iceberg, lance] =
    options.internalPorts ?? (await reservePorts(s3InternalPortCount, [options.port]));
  const args = [
    // glog would otherwise write weed.* files into /tmp on every start; stderr goes to logFile.
    '-logtostderr',
    'server',
    `-dir=${options.dataDir}`,
    '-ip=127.0.0.1',
    '-ip.bind=127.0.0.1',
    `-master.port=${master}`,
    `-master.port.grpc=${masterGrpc}`,
    '-master.volumeSizeLimitMB=256',
    '-master.telemetry=false',
    `-volume.port=${volume}`,
    `-volume.port.grpc=${volumeGrpc}`,
    '-volume.max=0',
    `-filer.port=${filer}`,
    `-filer.port.grpc=${filerGrpc}`,
    '-s3',
    `-s3.port=${options.port}`,
    `-s3.port.grpc=${s3Grpc}`,
    `-s3.port.iceberg=${iceberg}`,
    `-s3.port.lance=${lance}`,
    `-s3.config=${s3Config}`,
    '-s3.iam=false',
  ];
  if (options.metricsPort) args.push(`-metricsPort=${options.metricsPort}`, '-metricsIp=127.0.0.1');
  const opts: StartOptions = { logFile: options.logFile, inheritOutput: options.inheritOutput, cwd: options.dataDir };
  const proc = startProcess('s3', seaweedfs(), args, opts);
  const sockets = localSockets([
    `master-grpc-${masterGrpc}`,
    `volume-grpc-${volumeGrpc}`,
    `filer-grpc-${filerGrpc}`,
    `s3-grpc-${s3Grpc}`,
    `filer-${filer}`,
    `s3-${options.port}`,
    `s3-${s3Grpc}`,
  ]);
  proc.child.once('exit', () => {
    for (const path of sockets) rmSync(path, { force: true });
  });
  const endpoint = `http://127.0.0.1:${options.port}`;
  await waitFor('S3 server (SeaweedFS)', async () => {
    if (!(await tcpOpen(options.port))) return false;
    // The gateway answers before the filer is wired; an authenticated-but-unsigned request
    // gets 403 from a ready gateway and 503/500 from one still starting. Bounded: another
    // process holding the port may accept and never answer, and waitFor must get to see the exit.
    const res = await fetch(`${endpoint}/`, { signal: AbortSignal.timeout(2000) });
    return res.status === 403;
  }, 90_000, proc);
  return { endpoint, masterUrl: `http://127.0.0.1:${master}`, process: proc };
}

/**
 * The Unix sockets `weed server` creates beside its TCP listeners (the gRPC of each part, the
 * filer's and the gateway's HTTP), named by port under /tmp and left behind when it is killed
 * (some on any exit); without this every test run leaves a dozen there.
 */
function localSockets(names: string[]): string[] {
  return [...new Set(['/tmp', tmpdir()])].flatMap((dir) => names.map((name) => join(dir, `seaweedfs-${name}.sock`)));
}

/**
 * Makes each bucket writable before the first upload. SeaweedFS stores a bucket in a
 * collection of its own and creates that collection's volumes on its first write: that PUT
 * waits about 1 s (8 s right after start, while the volume server is still registering), which
 * a user of a fresh stack would see on the first derived file of the first video. A file-id
 * assignment in the collection does the same growth now: `/dir/assign` grows volumes only
 * when the collection has none writable, so a restarted stack with data grows nothing. Retried
 * until the volume server has registered with the master.
 */
export async function growBucketVolumes(server: Pick<S3Server, 'masterUrl' | 'process'>, bucketNames: string[], timeoutMs = 60_000): Promise<void> {
  await Promise.all(
    bucketNames.map((bucket) =>
      waitFor(
        `SeaweedFS volumes for bucket ${bucket}`,
        async () => {
          // Longer than the master's own wait for a volume inside one assignment (10 s).
          const res = await fetch(`${server.masterUrl}/dir/assign?collection=${encodeURIComponent(bucket)}`, { signal: AbortSignal.timeout(15_000) });
          const body = (await res.json().catch(() => ({}))) as { fid?: string; error?: string };
          // waitFor keeps the last error and says it if the volume server never registers.
          if (!res.ok || !body.fid) throw new Error(`SeaweedFS /dir/assign for ${bucket}: ${body.error ?? `HTTP ${res.status}`}`);
          return true;
        },
        timeoutMs,
        server.process,
      ),
    ),
  );
}
