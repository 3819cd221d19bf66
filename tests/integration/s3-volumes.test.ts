import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBuckets } from '../../devstack/buckets';
import { buckets, devS3Credentials } from '../../devstack/credentials';
import { reservePorts } from '../../devstack/ports';
import { growBucketVolumes, s3InternalPortCount, startS3Server, type S3Server } from '../../devstack/s3';

/** Writable volumes per collection (SeaweedFS stores each bucket in a collection of its name), from the master's `/vol/status`. */
async function writableVolumes(s3: S3Server): Promise<Record<string, number>> {
  type Volume = { Collection: string; ReadOnly: boolean };
  const status = (await (await fetch(`${s3.masterUrl}/vol/status`)).json()) as { Volumes: { DataCenters: Record<string, Record<string, Record<string, Volume[] | null>>> } };
  const counts: Record<string, number> = {};
  for (const racks of Object.values(status.Volumes.DataCenters)) {
    for (const nodes of Object.values(racks)) {
      for (const volumes of Object.values(nodes)) {
        for (const v of volumes ?? []) if (!v.ReadOnly) counts[v.Collection] = (counts[v.Collection] ?? 0) + 1;
      }
    }
  }
  return counts;
}

/**
 * The dev stack's S3 server has volumes for each bucket before the first upload: SeaweedFS
 * would otherwise create them on the first write, and that PUT (a user's first upload, or the
 * first segment of the first video) would wait for it.
 */
describe('SeaweedFS volumes of the dev stack buckets', () => {
  let dir: string;
  let s3: S3Server | undefined;
  afterAll(async () => {
    await s3?.process.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('exist for every bucket once the stack is up, and a restart with data grows none', async () => {
    dir = mkdtempSync(join(tmpdir(), 'media-s3-volumes-'));
    const [port, ...internalPorts] = (await reservePorts(1 + s3InternalPortCount)) as [number, ...number[]];
    const start = () => startS3Server({ dataDir: join(dir, 's3'), port, internalPorts, ...devS3Credentials, logFile: join(dir, 's3.log') });
    s3 = await start();
    await createBuckets(s3.endpoint, ['*']);
    const names = Object.values(buckets);
    // Before: SeaweedFS has not created any (it does so on a collection's first write).
    const before = await writableVolumes(s3);
    for (const bucket of names) expect(before[bucket] ?? 0).toBe(0);

    await growBucketVolumes(s3, names);
    const grown = await writableVolumes(s3);
    for (const bucket of names) expect(grown[bucket]).toBeGreaterThan(0);

    // As `npm run dev` with its data kept: the same call after a restart adds no volume.
    await s3.process.stop();
    s3 = await start();
    await growBucketVolumes(s3, names);
    const again = await writableVolumes(s3);
    for (const bucket of names) expect(again[bucket]).toBe(grown[bucket]);
  }, 180_000);

  it('leaves no Unix sockets or log files in /tmp, even when killed', async () => {
    await s3?.process.stop();
    const [port, ...internalPorts] = (await reservePorts(1 + s3InternalPortCount)) as [number, ...number[]];
    const ports = [port, ...internalPorts].map(String);
    // Its own files in /tmp: sockets named by one of its ports, glog's weed.* logs (pid in the name).
    const leftovers = (pid?: number) =>
      readdirSync('/tmp').filter((f) => (f.startsWith('seaweedfs-') && ports.some((p) => f.endsWith(`-${p}.sock`))) || (pid !== undefined && f.startsWith('weed.') && f.endsWith(`.${pid}`)));
    // Files of earlier runs' servers may carry the same port numbers: only new ones count.
    const staleBefore = leftovers();
    s3 = await startS3Server({ dataDir: join(dir, 's3-killed'), port, internalPorts, ...devS3Credentials, logFile: join(dir, 's3-killed.log') });
    const pid = s3.process.child.pid!;
    // While it runs the sockets are there (so the names checked below are the ones it uses).
    expect(existsSync(`/tmp/seaweedfs-master-grpc-${internalPorts[1]}.sock`)).toBe(true);
    s3.process.child.kill('SIGKILL');
    await s3.process.stop();
    s3 = undefined;
    expect(leftovers(pid).filter((f) => !staleBefore.includes(f))).toEqual([]);
  }, 180_000);
});
