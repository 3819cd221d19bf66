import { temporal } from '@temporalio/proto';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;
const T = temporal.api.enums.v1.EventType;

/** Where the counting rule comes from (cited by docs/capacity.md). */
export const actionsSource = 'https://docs.temporal.io/cloud/actions';

/**
 * Billable Temporal Cloud actions of one workflow history, by the rule of Temporal Cloud's
 * "Actions" page (actionsSource), as far as a history shows them:
 *  - workflow started: 1 (a child's start counts 2 on its parent's StartChildWorkflowExecutionInitiated,
 *    a continued run's 1 on the ContinuedAsNew event, so those runs' own Started events count 0);
 *  - timer started: 1 (TypeScript's `condition` with a timeout starts one);
 *  - search attribute upsert: 1 per UpsertWorkflowSearchAttributes command, unless it only sets
 *    TemporalChangeVersion (exempt);
 *  - signal: 1 per signal received (sent by a client or another workflow: counted once, here);
 *  - activity started or retried: ActivityTaskStarted's `attempt` (history keeps the last attempt only);
 *  - local activities (and every other marker): all markers of one workflow task count 1;
 *  - update accepted or rejected: 1; workflow execution options updated: 1.
 * Not in a history and so not counted: queries, activity heartbeats that reach the server,
 * workflow task heartbeats of long local activities, schedules, export.
 *
 * Returns the total and the count per kind (kind names as in the list above).
 */
export function billableActions(events: readonly HistoryEvent[]): { total: number; byKind: Record<string, number> } {
  const byKind: Record<string, number> = {};
  const add = (kind: string, n: number) => {
    if (n > 0) byKind[kind] = (byKind[kind] ?? 0) + n;
  };
  const markerTasks = new Set<string>();
  for (const e of events) {
    switch (e.eventType) {
      case T.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED: {
        const a = e.workflowExecutionStartedEventAttributes;
        add('workflow started', a?.parentWorkflowExecution || a?.continuedExecutionRunId ? 0 : 1);
        break;
      }
      case T.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
        add('workflow started', 1);
        break;
      case T.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
        add('child workflow started', 2);
        break;
      case T.EVENT_TYPE_TIMER_STARTED:
        add('timer started', 1);
        break;
      case T.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES: {
        const fields = Object.keys(e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields ?? {});
        add('search attribute upsert', fields.some((f) => f !== 'TemporalChangeVersion') ? 1 : 0);
        break;
      }
      case T.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
        add('signal', 1);
        break;
      case T.EVENT_TYPE_ACTIVITY_TASK_STARTED:
        add('activity started or retried', Math.max(1, e.activityTaskStartedEventAttributes?.attempt ?? 1));
        break;
      case T.EVENT_TYPE_MARKER_RECORDED:
        markerTasks.add(String(e.markerRecordedEventAttributes?.workflowTaskCompletedEventId ?? e.eventId));
        break;
      case T.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
      case T.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_REJECTED:
        add('update', 1);
        break;
      case T.EVENT_TYPE_WORKFLOW_EXECUTION_OPTIONS_UPDATED:
        add('workflow options updated', 1);
        break;
      default:
        break;
    }
  }
  add('local activities (markers per workflow task)', markerTasks.size);
  return { total: Object.values(byKind).reduce((a, b) => a + b, 0), byKind };
}

/** `EVENT_TYPE_ACTIVITY_TASK_STARTED` → `ActivityTaskStarted`. */
export function eventTypeName(type: temporal.api.enums.v1.EventType | null | undefined): string {
  const name = T[type ?? T.EVENT_TYPE_UNSPECIFIED] ?? `EVENT_TYPE_${String(type)}`;
  return name
    .replace(/^EVENT_TYPE_/, '')
    .toLowerCase()
    .replace(/(^|_)([a-z])/g, (_, __, c: string) => c.toUpperCase());
}

/** History events per type name, e.g. `{ ActivityTaskScheduled: 4, … }`. */
export function eventsByType(events: readonly HistoryEvent[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of events) {
    const name = eventTypeName(e.eventType);
    out[name] = (out[name] ?? 0) + 1;
  }
  return out;
}
