import { ApplicationFailure, continueAsNew, log, patched, proxyActivities, setCurrentDetails, workflowInfo } from '@temporalio/workflow';
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
  /** DELETED media whose earlier storage removal had not finished, finished now. */
  deletionsFinished: number;
  /** Uploads a DELETE had claimed in flight whose workflow still ran: their cancellation sent again. */
  cancellationsResent: number;
  /** Deletions that still failed after their retries; the next run picks them up again. */
  errors: number;
  strayObjectsDeleted: number;
  multipartUploadsAborted: number;
}

const PHASES = ['unattached', 'failed', 'unpurged', 'cancelling'] as const;
type Phase = (typeof PHASES)[number];

interface CleanupProgress {
  /** Fixed at the first run so a continued-as-new run works on the same cut-offs. */
  cutoffs: { unattached: string; failed: string; unpurged: string; cancelling?: string };
  phase: Phase | 'sweep';
  after?: { updatedAt: string; id: string };
  report: CleanupReport;
}

const lifecycle = proxyActivities<Activities>(deletionActivity);
const sweep = proxyActivities<Activities>({ ...deletionActivity, startToCloseTimeout: '30 minutes', heartbeatTimeout: '1 minute' });

/** How long an upload a DELETE claimed may read DELETING before the cleanup sends its cancellation again. */
const CANCELLATION_RESEND_AFTER_MS = 5 * 60_000;
const RESEND_CANCELLATIONS_PATCH = 'cleanup-resends-cancellations';

/** Media deleted at once within a page: bounded so a big backlog does not flood S3. */
const PARALLEL_DELETIONS = 10;

/**
 * Run by the `media-cleanup` Temporal Schedule: deletes READY media never attached within
 * the allowed age, retires old failed rows, finishes deletions whose storage removal never
 * completed, sends again the cancellations of uploads a DELETE claimed that never took effect
 * (finishing the deletion where the workflow has ended), then sweeps storage no upload owns. Page by page;
 * safe to run twice at once because every deletion claims its row first.
 */
export async function MediaCleanupWorkflow(settings: CleanupSettings, progress?: CleanupProgress): Promise<CleanupReport> {
  const now = Date.now();
  const state: CleanupProgress = progress ?? {
    cutoffs: {
      unattached: new Date(now - settings.unattachedAfterSeconds * 1000).toISOString(),
      failed: new Date(now - settings.failedRetentionSeconds * 1000).toISOString(),
      // A deletion still retrying after an hour is stuck; running it again is safe (idempotent).
      unpurged: new Date(now - 3600_000).toISOString(),
      // A DELETE's own cancellation takes effect within seconds; one still DELETING after
      // minutes never reached Temporal (503) or its workflow was terminated.
      cancelling: new Date(now - CANCELLATION_RESEND_AFTER_MS).toISOString(),
    },
    phase: 'unattached',
    report: { unattachedDeleted: 0, failedDeleted: 0, kept: 0, deletionsFinished: 0, cancellationsResent: 0, errors: 0, strayObjectsDeleted: 0, multipartUploadsAborted: 0 },
  };
  const pageSize = settings.pageSize ?? 100;
  const { report } = state;

  for (const [index, phase] of PHASES.entries()) {
    if (state.phase !== phase) continue;
    // A phase added in a later release: replaying a history recorded before it, the run goes
    // on to the sweep as it did; a run that reaches it live runs it (patched() is true then).
    if (phase === 'cancelling' && !patched(RESEND_CANCELLATIONS_PATCH)) break;
    const rule: DeletionRule = { kind: phase, before: state.cutoffs[phase] ?? new Date(now - CANCELLATION_RESEND_AFTER_MS).toISOString() };
    for (;;) {
      const page = await lifecycle.findCleanupCandidates({ rule, limit: pageSize, after: state.after });
      for (let i = 0; i < page.length; i += PARALLEL_DELETIONS) {
        // One deletion that exhausts its retries must not abandon the others.
        const batch = page.slice(i, i + PARALLEL_DELETIONS);
        if (phase === 'cancelling') {
          const results = await Promise.allSettled(batch.map((c) => lifecycle.finishCancellation({ mediaId: c.id })));
          for (const r of results) countCancellation(r);
          continue;
        }
        const results = await Promise.allSettled(batch.map((c) => lifecycle.purgeMedia({ mediaId: c.id, rule })));
        for (const r of results) count(phase, r);
      }
      setCurrentDetails(`cleanup: ${JSON.stringify(report)}`);
      state.after = page.length === pageSize ? page[page.length - 1] : undefined;
      if (!state.after) break;
      // A large backlog would grow one history without end; carry on in a fresh run.
      if (workflowInfo().continueAsNewSuggested) return continueAsNew<typeof MediaCleanupWorkflow>(settings, state);
    }
    state.phase = PHASES[index + 1] ?? 'sweep';
  }

  const swept = await sweep.sweepOrphans({ olderThanSeconds: settings.orphanAfterSeconds });
  report.strayObjectsDeleted = swept.strayObjectsDeleted;
  report.multipartUploadsAborted = swept.multipartUploadsAborted;
  setCurrentDetails(`cleanup done: ${JSON.stringify(report)}`);
  log.info('cleanup done', { ...report });
  return report;

  function count(phase: Phase, result: PromiseSettledResult<{ removed: boolean; claimedNow: boolean }>): void {
    if (result.status === 'rejected') report.errors++;
    else if (phase === 'unpurged') report.deletionsFinished += result.value.removed ? 1 : 0;
    else if (!result.value.claimedNow) report.kept++;
    else if (phase === 'unattached') report.unattachedDeleted++;
    else report.failedDeleted++;
  }

  function countCancellation(result: PromiseSettledResult<{ outcome: 'cancelled' | 'purged' | 'none' }>): void {
    if (result.status === 'rejected') report.errors++;
    else if (result.value.outcome === 'cancelled') report.cancellationsResent = (report.cancellationsResent ?? 0) + 1;
    else if (result.value.outcome === 'purged') report.deletionsFinished++;
  }
}

// A receiver may be down for a while: retry with growing pauses for up to a day, then give up.
const delivery = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  scheduleToCloseTimeout: '1 day',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '10 minutes', nonRetryableErrorTypes: ['WEBHOOK_ENDPOINT_REMOVED', 'WEBHOOK_GONE'] },
});

/**
 * Delivers one event to one endpoint. Its own workflow, so an upload finishes at once and a
 * receiver that keeps failing never fails the media; the outcome shows in the Web UI.
 */
export async function MediaWebhookWorkflow(input: { endpointId: string; event: MediaEvent }): Promise<{ delivered: true }> {
  setCurrentDetails(`**${input.event.type}** → endpoint ${input.endpointId}`);
  try {
    await delivery.deliverWebhook.executeWithOptions({ summary: `POST ${input.event.type}` }, [input]);
    return { delivered: true };
  } catch (err) {
    // Failing this workflow (never the media) makes undelivered events findable in the Web UI:
    // WorkflowType="MediaWebhookWorkflow" AND ExecutionStatus="Failed".
    log.warn('webhook not delivered', { endpointId: input.endpointId, eventId: input.event.id, error: String(err) });
    throw ApplicationFailure.nonRetryable(`${input.event.type} ${input.event.id} not delivered to endpoint ${input.endpointId}`, 'WEBHOOK_NOT_DELIVERED', String(err));
  }
}
