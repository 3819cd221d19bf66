import { Client as TemporalClient, Connection } from '@temporalio/client';
import { Client as PgClient } from 'pg';
import { devS3Credentials, buckets } from '../../devstack/credentials';
import { UPLOADING_STATUSES, type MediaStatus } from '../../services/shared/media-types';
import { Storage } from '../../services/shared/storage';

export interface InvariantReport {
  counts: Record<string, number>;
  violations: string[];
}

/**
 * What must hold after any test run, whatever the tests did: no object or multipart upload in
 * the incoming bucket without a live workflow, nothing in the media bucket that did not get
 * through the scan (its media is READY), and no media waiting on a workflow that is gone.
 */
export async function checkInvariants(env: Record<string, string>): Promise<InvariantReport> {
  const storage = new Storage({ S3_ENDPOINT: env.S3_ENDPOINT, S3_REGION: 'us-east-1', S3_FORCE_PATH_STYLE: true }, devS3Credentials);
  const pg = new PgClient({ connectionString: env.DATABASE_URL });
  const connection = await Connection.connect({ address: env.TEMPORAL_ADDRESS });
  const temporal = new TemporalClient({ connection });
  await pg.connect();
  const violations: string[] = [];
  try {
    const rows = (await pg.query<{ id: string; status: MediaStatus; storage_key: string; workflow_id: string }>('SELECT id, status, storage_key, workflow_id FROM media')).rows;
    const byKey = new Map(rows.map((r) => [r.storage_key, r]));
    const byId = new Map(rows.map((r) => [r.id, r]));
    const running = new Set<string>();
    for await (const wf of temporal.workflow.list({ query: 'ExecutionStatus="Running"' })) running.add(wf.workflowId);

    const incoming = await storage.listKeys(buckets.incoming, '');
    for (const key of incoming) {
      const row = byKey.get(key);
      if (!row || !running.has(row.workflow_id)) violations.push(`incoming/${key} has no live workflow (${row?.status ?? 'no media row'})`);
    }
    const uploads = [];
    for await (const page of storage.multipartUploadPages(buckets.incoming)) uploads.push(...page);
    for (const u of uploads) {
      const row = byKey.get(u.key);
      if (!row || !running.has(row.workflow_id)) violations.push(`multipart upload of ${u.key} has no live workflow (${row?.status ?? 'no media row'})`);
    }
    const published = await storage.listKeys(buckets.media, '');
    for (const key of published) {
      const derived = /^derived\/([0-9a-f-]{36})\//.exec(key);
      const row = derived ? byId.get(derived[1]!) : byKey.get(key);
      if (row?.status !== 'READY') violations.push(`media/${key} is published but its media is ${row?.status ?? 'unknown'}`);
    }
    const waiting = rows.filter((r) => UPLOADING_STATUSES.includes(r.status) && !running.has(r.workflow_id));
    for (const r of waiting) violations.push(`media ${r.id} is ${r.status} but its workflow is not running`);
    return {
      counts: {
        media: rows.length,
        ready: rows.filter((r) => r.status === 'READY').length,
        inFlight: rows.filter((r) => UPLOADING_STATUSES.includes(r.status)).length,
        runningWorkflows: running.size,
        incomingObjects: incoming.length,
        openMultipartUploads: uploads.length,
        mediaBucketObjects: published.length,
      },
      violations,
    };
  } finally {
    await pg.end();
    await connection.close();
    storage.client.destroy();
  }
}
