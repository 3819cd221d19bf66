import { temporal } from '@temporalio/proto';
import { billableActions, eventsByType, eventTypeName } from '../../bench/temporal-actions';

const T = temporal.api.enums.v1.EventType;
type Event = temporal.api.history.v1.IHistoryEvent;

// Histories carry int64 ids as Long; the counter only compares them by their string form, as numbers have.
const id = (n: number) => n as unknown as NonNullable<Event['eventId']>;
let nextId = 1;
const ev = (eventType: temporal.api.enums.v1.EventType, attrs: Partial<Event> = {}): Event => ({ eventId: id(nextId++), eventType, ...attrs });
const upsert = (...keys: string[]) =>
  ev(T.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES, {
    upsertWorkflowSearchAttributesEventAttributes: { searchAttributes: { indexedFields: Object.fromEntries(keys.map((k) => [k, {}])) } },
  });
const marker = (workflowTaskCompletedEventId: number) => ev(T.EVENT_TYPE_MARKER_RECORDED, { markerRecordedEventAttributes: { markerName: 'core_local_activity', workflowTaskCompletedEventId: id(workflowTaskCompletedEventId) } });
const activityStarted = (attempt: number) => ev(T.EVENT_TYPE_ACTIVITY_TASK_STARTED, { activityTaskStartedEventAttributes: { attempt } });

describe('billableActions', () => {
  it('counts a start, a condition timer, a signal and each upsert once; workflow tasks and completions not at all', () => {
    const history = [
      ev(T.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, { workflowExecutionStartedEventAttributes: {} }),
      ev(T.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED),
      ev(T.EVENT_TYPE_WORKFLOW_TASK_STARTED),
      ev(T.EVENT_TYPE_WORKFLOW_TASK_COMPLETED),
      ev(T.EVENT_TYPE_TIMER_STARTED),
      ev(T.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED),
      ev(T.EVENT_TYPE_TIMER_CANCELED),
      upsert('MediaStatus'),
      upsert('MediaStatus', 'MediaType'),
      ev(T.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED),
    ];
    expect(billableActions(history)).toEqual({
      total: 5,
      byKind: { 'workflow started': 1, 'timer started': 1, signal: 1, 'search attribute upsert': 2 },
    });
  });

  it('counts every attempt of an activity, as the started event records the last one', () => {
    const history = [ev(T.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED), activityStarted(3), ev(T.EVENT_TYPE_ACTIVITY_TASK_COMPLETED), ev(T.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED), activityStarted(1)];
    expect(billableActions(history).byKind).toEqual({ 'activity started or retried': 4 });
  });

  it('counts all markers of one workflow task as one action', () => {
    const history = [marker(10), marker(10), marker(14), ev(T.EVENT_TYPE_WORKFLOW_TASK_COMPLETED), marker(20)];
    expect(billableActions(history)).toEqual({ total: 3, byKind: { 'local activities (markers per workflow task)': 3 } });
  });

  it('does not count an upsert of TemporalChangeVersion alone', () => {
    expect(billableActions([upsert('TemporalChangeVersion')]).total).toBe(0);
    expect(billableActions([upsert('TemporalChangeVersion', 'MediaStatus')]).total).toBe(1);
  });

  it('counts a child start twice on the parent and not again on the child, a continued run on ContinuedAsNew', () => {
    const parent = [ev(T.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED), ev(T.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW)];
    const child = [ev(T.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, { workflowExecutionStartedEventAttributes: { parentWorkflowExecution: { workflowId: 'p' } } })];
    const continued = [ev(T.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, { workflowExecutionStartedEventAttributes: { continuedExecutionRunId: 'r1' } })];
    expect(billableActions(parent)).toEqual({ total: 3, byKind: { 'child workflow started': 2, 'workflow started': 1 } });
    expect(billableActions(child).total).toBe(0);
    expect(billableActions(continued).total).toBe(0);
  });

  it('counts accepted and rejected updates and options updates', () => {
    const history = [ev(T.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED), ev(T.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_REJECTED), ev(T.EVENT_TYPE_WORKFLOW_EXECUTION_OPTIONS_UPDATED)];
    expect(billableActions(history).byKind).toEqual({ update: 2, 'workflow options updated': 1 });
  });
});

describe('eventsByType', () => {
  it('names event types as the Web UI does and counts them', () => {
    expect(eventTypeName(T.EVENT_TYPE_ACTIVITY_TASK_STARTED)).toBe('ActivityTaskStarted');
    expect(eventsByType([marker(1), marker(1), ev(T.EVENT_TYPE_TIMER_STARTED)])).toEqual({ MarkerRecorded: 2, TimerStarted: 1 });
  });
});
