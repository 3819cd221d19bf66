import { patched, proxyActivities, setCurrentDetails } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { DeletionRule } from '../services/shared/media-types';

export const mediaDeletionWorkflowId = (mediaId: string) => `media-delete/${mediaId}`;

export interface MediaDeletionInput {
  mediaId: string;
  /** Which state the media must still be in to be deleted; default any finished media. */
  rule?: DeletionRule;
  /** Inputs of deletions started before `purgeMedia` existed (still replayed by old histories). */
  storageKey?: string;
  uploadId?: string;
}

// Deletion must finish whatever the outage: retry with backoff for up to a day.
export const deletionActivity = {
  startToCloseTimeout: '2 minutes',
  scheduleToCloseTimeout: '1 day',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '5 minutes' },
} as const;

const { purgeMedia, compensateUpload, recordStatus } = proxyActivities<Activities>(deletionActivity);

/**
 * Deletes a finished media (the owner's DELETE, a replaced profile image): the row is claimed
 * first, then everything stored goes through the same compensation an upload failure uses.
 */
export async function MediaDeletionWorkflow(input: MediaDeletionInput): Promise<{ purged: boolean }> {
  setCurrentDetails(`deleting media ${input.mediaId}`);
  if (!patched('purge-media')) {
    // A deletion started by the previous release replays its own steps (deprecate once none run).
    await compensateUpload({ mediaId: input.mediaId, storageKey: input.storageKey!, uploadId: input.uploadId });
    await recordStatus({ mediaId: input.mediaId, status: 'DELETED' });
    return { purged: true };
  }
  const { claimedNow: purged } = await purgeMedia({ mediaId: input.mediaId, rule: input.rule ?? { kind: 'finished' } });
  setCurrentDetails(purged ? `media ${input.mediaId} deleted` : `media ${input.mediaId}: deleted already, or no longer ${input.rule?.kind ?? 'finished'}`);
  return { purged };
}
