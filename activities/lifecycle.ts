import { Context } from '@temporalio/activity';
import { CANCEL_REQUESTED, type DeletionRule } from '../services/shared/db/media-repository';
import { cancelIfRunning } from '../services/shared/temporal';
import { removeEverythingStored, type ActivityDeps } from './index';

export interface SweepReport {
  strayObjectsDeleted: number;
  multipartUploadsAborted: number;
}

/**
 * What happens after READY: deleting media (the owner's DELETE, a replaced profile image, the
 * cleanup schedule) and sweeping storage that no upload owns. Every activity is idempotent
 * and safe to run twice at once.
 */
export function createLifecycleActivities(deps: ActivityDeps) {
  const { storage, media, buckets, publish } = deps;
  /**
   * Claims the media for deletion (DELETING) if `rule` still selects it (see DeletionRule),
   * removes every stored object through the upload's own compensation, then marks it DELETED
   * with `purgedAt` and publishes `media.deleted`. `removed`: this call ran the removal;
   * `claimedNow`: this call made the media DELETED (so two runs at once report each deletion
   * once).
   */
  async function purgeMedia(input: { mediaId: string; rule: DeletionRule }): Promise<{ removed: boolean; claimedNow: boolean; derivedDeleted: number }> {
    const claim = await media.claimForDeletion(input.mediaId, input.rule);
    if (!claim) return { removed: false, claimedNow: false, derivedDeleted: 0 };
    const { row } = claim;
    const derivedDeleted = await removeEverythingStored(deps, { mediaId: row.id, storageKey: row.storageKey, uploadId: row.uploadId ?? undefined });
    // Until this is recorded, the cleanup schedule retries the removal of a DELETING row.
    const claimedNow = await media.finishDeletion(row.id);
    await publish?.(Context.current().client, row.id, 'DELETED');
    Context.current().log.info('media deleted', { mediaId: row.id, rule: input.rule.kind, derivedDeleted, claimedNow });
    return { removed: true, claimedNow, derivedDeleted };
  }

  return {
    purgeMedia,

    /**
     * An upload a DELETE claimed in flight (rule 'cancelling') that still reads DELETING: sends
     * the cancellation again if its workflow runs (it compensates and ends the upload
     * CANCELLED); if the workflow has ended without taking the row, removes what is stored and
     * marks it DELETED (as purgeMedia). `none`: the row has moved on meanwhile.
     */
    async finishCancellation(input: { mediaId: string }): Promise<{ outcome: 'cancelled' | 'purged' | 'none' }> {
      const row = await media.findById(input.mediaId);
      if (row?.status !== 'DELETING' || row.metadata?.[CANCEL_REQUESTED] !== true) return { outcome: 'none' };
      if (await cancelIfRunning(Context.current().client.workflow.getHandle(row.workflowId))) {
        Context.current().log.info('cancellation sent again', { mediaId: row.id, workflowId: row.workflowId });
        return { outcome: 'cancelled' };
      }
      const { removed } = await purgeMedia({ mediaId: row.id, rule: { kind: 'finished' } });
      return { outcome: removed ? 'purged' : 'none' };
    },

    /** One page of media ids a cleanup rule selects, after the previous page. */
    async findCleanupCandidates(input: { rule: DeletionRule; limit: number; after?: { updatedAt: string; id: string } }) {
      return media.cleanupCandidates(input.rule, input.limit, input.after);
    },

    /**
     * Removes incoming objects and aborts multipart uploads older than `olderThanSeconds` that
     * no upload in progress owns: leftovers of crashed clients, lost compensations or
     * uploads whose row was never committed. Works one S3 page at a time and heartbeats.
     */
    async sweepOrphans(input: { olderThanSeconds: number }): Promise<SweepReport> {
      const cutoff = Date.now() - input.olderThanSeconds * 1000;
      const report: SweepReport = { strayObjectsDeleted: 0, multipartUploadsAborted: 0 };
      for await (const page of storage.objectPages(buckets.incoming)) {
        const old = page.filter((o) => o.lastModified.getTime() < cutoff).map((o) => o.key);
        const live = await media.stillInProgress('storage_key', old);
        const stray = old.filter((k) => !live.has(k));
        await storage.deleteKeys(buckets.incoming, stray);
        report.strayObjectsDeleted += stray.length;
        Context.current().heartbeat(report);
      }
      for await (const page of storage.multipartUploadPages(buckets.incoming)) {
        const old = page.filter((u) => u.initiated.getTime() < cutoff);
        const live = await media.stillInProgress('upload_id', old.map((u) => u.uploadId));
        for (const upload of old.filter((u) => !live.has(u.uploadId))) {
          await storage.abortMultipartUpload(buckets.incoming, upload.key, upload.uploadId);
          report.multipartUploadsAborted++;
          Context.current().heartbeat(report);
        }
      }
      Context.current().log.info('orphan sweep', { ...report });
      return report;
    },
  };
}
