import { continueAsNew, log, proxyActivities, setCurrentDetails, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { DeletionRule } from '../services/shared/media-types';
import type { MediaEvent } from '../activities/webhooks';
import { deletionActivity } from './media-delete.workflow';

export interface CleanupSettings {
  /** READY media unattached for longer than this is deleted. */
  unattachedAfterSeconds: number;
  /** Failed, rejected, expired and cancelled rows older than this are marked DELETED. */
  failedRetentionSeconds: number;
  /** Incoming objects / multipart uploads older than this that no live upload owns are removed. */
  orphanAfterSeconds: number;
  /** Media per page (one candidate query each). Default 100. */
  pageSize?: number;
}

export interface CleanupReport {
  unattachedDeleted: number;
  failedDeleted: number;
  /** Candidates this run did not delete: changed meanwhile (e.g. attached) or deleted by a concurrent run. */
  kept: number;
  strayObjectsDeleted: number;
  multipartUploadsAborted: number;
}

interface CleanupProgress {
  /** Fixed at the first run so a continued-as-new run works on the same cut-offs. */
  cutoffs: { unattached: string; failed: string };
  phase: 'unattached' | 'failed' | 'sweep';
  after?: { updatedAt: string; id: string };
  report: CleanupReport;
}

const lifecycle = proxyActivities<Activities>(deletionActivity);
const sweep = proxyActivities<Activities>({ ...deletionActivity, startToCloseTimeout: '30 minutes', heartbeatTimeout: '1 minute' });

/** Media deleted at once within a page: bounded so a big backlog does not flood S3. */
const PARALLEL_DELETIONS = 10;

/**
 * Run by the `media-cleanup` Temporal Schedule: deletes READY media never attached within
 * the allowed age, retires old failed rows, then sweeps storage no upload owns. Page by page;
 * safe to run twice at once because every deletion claims its row first.
 */
export async function MediaCleanupWorkflow(settings: CleanupSettings, progress?: CleanupProgress): Promise<CleanupReport> {
  const now = Date.now();
  const state: CleanupProgress = progress ?? {
    cutoffs: {
      unattached: new Date(now - settings.unattachedAfterSeconds * 1000).toISOString(),
      failed: new Date(now - settings.failedRetentionSeconds * 1000).toISOString(),
    },
    phase: 'unattached',
    report: { unattachedDeleted: 0, failedDeleted: 0, kept: 0, strayObjectsDeleted: 0, multipartUploadsAborted: 0 },
  };
  const pageSize = settings.pageSize ?? 100;
  const { report } = state;

  for (const phase of ['unattached', 'failed'] as const) {
    if (state.phase !== phase) continue;
    const rule: DeletionRule = phase === 'unattached' ? { kind: 'unattached', before: state.cutoffs.unattached } : { kind: 'failed', before: state.cutoffs.failed };
    for (;;) {
      const page = await lifecycle.findCleanupCandidates({ rule, limit: pageSize, after: state.after });
      for (let i = 0; i < page.length; i += PARALLEL_DELETIONS) {
        const results = await Promise.all(page.slice(i, i + PARALLEL_DELETIONS).map((c) => lifecycle.purgeMedia({ mediaId: c.id, rule })));
        for (const r of results) {
          if (!r.purged) report.kept++;
          else if (phase === 'unattached') report.unattachedDeleted++;
          else report.failedDeleted++;
        }
      }
      setCurrentDetails(`cleanup: ${JSON.stringify(report)}`);
      state.after = page.length === pageSize ? page[page.length - 1] : undefined;
      if (!state.after) break;
      // A large backlog would grow one history without end; carry on in a fresh run.
      if (workflowInfo().continueAsNewSuggested) return continueAsNew<typeof MediaCleanupWorkflow>(settings, state);
    }
    state.phase = phase === 'unattached' ? 'failed' : 'sweep';
  }

  const swept = await sweep.sweepOrphans({ olderThanSeconds: settings.orphanAfterSeconds });
  report.strayObjectsDeleted = swept.strayObjectsDeleted;
  report.multipartUploadsAborted = swept.multipartUploadsAborted;
  setCurrentDetails(`cleanup done: ${JSON.stringify(report)}`);
  log.info('cleanup done', { ...report });
  return report;
}

// A receiver may be down for a while: retry with growing pauses for up to a day, then give up.
const delivery = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  scheduleToCloseTimeout: '1 day',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '10 minutes', nonRetryableErrorTypes: ['WEBHOOK_ENDPOINT_REMOVED'] },
});

/**
 * Delivers one event to one endpoint. Its own workflow, so an upload finishes at once and a
 * receiver that keeps failing never fails the media; the outcome shows in the Web UI.
 */
export async function MediaWebhookWorkflow(input: { endpointId: string; event: MediaEvent }): Promise<{ delivered: boolean }> {
  setCurrentDetails(`**${input.event.type}** → endpoint ${input.endpointId}`);
  try {
    await delivery.deliverWebhook.executeWithOptions({ summary: `POST ${input.event.type}` }, [input]);
    return { delivered: true };
  } catch (err) {
    log.warn('webhook not delivered', { endpointId: input.endpointId, eventId: input.event.id, error: String(err) });
    return { delivered: false };
  }
}
