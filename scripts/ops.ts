import { Client, Connection, WorkflowNotFoundError, type WorkflowExecutionInfo, type WorkflowHandle } from '@temporalio/client';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError, loadTemporalConfig, type TemporalConfig } from '../services/shared/config';
import { UPLOADING_STATUSES, type MediaStatus } from '../services/shared/media-types';
import { temporalConnectionOptions } from '../services/shared/temporal';
import { MediaOwnerKey, MediaStatusKey, MediaTenantKey, MediaTypeKey, mediaWorkflowId } from '../workflows/media-upload.workflow';

/**
 * `npm run ops -- <command>`: operator tools that talk to Temporal only (no database).
 *
 *   stuck [--status S] [--older-than 30m] [--problems] [--owner U] [--tenant T] [--limit 100] [--json]
 *       running upload workflows through the visibility API, each with its Web UI link
 *   cancel <workflowId|mediaId>
 *       cancels the upload; the workflow compensates (storage cleaned) and ends CANCELLED
 *   retry <workflowId|mediaId>
 *       retries now the activity the upload is stuck on (attempts reset, backoff skipped)
 *
 * Exit codes: 0 done, 1 the operation failed or did not apply, 2 bad usage.
 */

/** Statuses of an upload still in progress: what `--status` accepts. */
const IN_PROGRESS: readonly MediaStatus[] = UPLOADING_STATUSES;

const USAGE = `usage:
  npm run ops -- stuck [--status ${IN_PROGRESS.join('|')}] [--older-than 30m] [--problems] [--owner <userId>] [--tenant <tenantId>] [--limit 100] [--json]
  npm run ops -- cancel <workflowId|mediaId>
  npm run ops -- retry <workflowId|mediaId>`;

/** Set by the server on a run whose workflow tasks keep failing or timing out. */
const TemporalReportedProblemsKey = defineSearchAttributeKey('TemporalReportedProblems', SearchAttributeType.KEYWORD_LIST);

/** Bad input: one line on stderr plus the usage, exit code 2. */
export class UsageError extends Error {}

/** The operation did not apply (no such workflow, not running, nothing to retry): exit code 1. */
class OpsError extends Error {}

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `90s`, `30m`, `2h`, `1d` → milliseconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+)\s*([smhd])$/.exec(text.trim());
  if (!match) throw new UsageError(`--older-than: "${text}" is not a duration like 90s, 30m, 2h or 1d`);
  return Number(match[1]) * UNIT_MS[match[2]!]!;
}

export interface StuckFilter {
  status?: MediaStatus;
  /** Only workflows started before this instant. */
  startedBefore?: Date;
  /** Only workflows whose workflow tasks keep failing or timing out (TemporalReportedProblems). */
  problems?: boolean;
  owner?: string;
  /** The uploader's tenant (MediaTenant; `default` for tokens without a tenant claim). */
  tenant?: string;
}

/** Visibility list filter over the custom search attributes (the same text works in the Web UI). */
export function stuckQuery(filter: StuckFilter): string {
  const quote = (value: string) => `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  const clauses = ['WorkflowType = "MediaUploadWorkflow"', 'ExecutionStatus = "Running"'];
  if (filter.status) clauses.push(`MediaStatus = ${quote(filter.status)}`);
  if (filter.owner) clauses.push(`MediaOwner = ${quote(filter.owner)}`);
  if (filter.tenant) clauses.push(`MediaTenant = ${quote(filter.tenant)}`);
  if (filter.startedBefore) clauses.push(`StartTime < ${quote(filter.startedBefore.toISOString())}`);
  // The categories the Web UI's "task failures" view uses.
  if (filter.problems) clauses.push('TemporalReportedProblems IN ("category=WorkflowTaskFailed", "category=WorkflowTaskTimedOut")');
  return clauses.join(' AND ');
}

/** Web UI page of one workflow run. */
export function workflowUrl(config: Pick<TemporalConfig, 'TEMPORAL_UI_URL' | 'TEMPORAL_NAMESPACE'>, workflowId: string, runId: string): string {
  return `${config.TEMPORAL_UI_URL.replace(/\/$/, '')}/namespaces/${encodeURIComponent(config.TEMPORAL_NAMESPACE)}/workflows/${encodeURIComponent(workflowId)}/${encodeURIComponent(runId)}/history`;
}

/** Web UI workflow list with a filter already applied. */
export function workflowListUrl(config: Pick<TemporalConfig, 'TEMPORAL_UI_URL' | 'TEMPORAL_NAMESPACE'>, query: string): string {
  return `${config.TEMPORAL_UI_URL.replace(/\/$/, '')}/namespaces/${encodeURIComponent(config.TEMPORAL_NAMESPACE)}/workflows?query=${encodeURIComponent(query)}`;
}

/** A media id stands for its upload workflow; anything else is taken as a workflow id. */
export function workflowIdOf(idOrMediaId: string): string {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(idOrMediaId) ? mediaWorkflowId(idOrMediaId.toLowerCase()) : idOrMediaId;
}

function formatAge(ms: number): string {
  const minutes = Math.floor(ms / 60_000);
  if (minutes < 1) return `${Math.floor(ms / 1000)}s`;
  if (minutes < 120) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  return hours < 48 ? `${hours}h${minutes % 60 ? `${minutes % 60}m` : ''}` : `${Math.floor(hours / 24)}d`;
}

interface StuckUpload {
  workflowId: string;
  runId: string;
  mediaStatus: string;
  mediaType: string;
  owner: string;
  /** '?' for workflows started before tenants (tenant `default`). */
  tenant: string;
  startTime: string;
  age: string;
  url: string;
}

function describeExecution(config: TemporalConfig, info: WorkflowExecutionInfo, now: number): StuckUpload {
  return {
    workflowId: info.workflowId,
    runId: info.runId,
    mediaStatus: info.typedSearchAttributes.get(MediaStatusKey) ?? '?',
    mediaType: info.typedSearchAttributes.get(MediaTypeKey) ?? '?',
    owner: info.typedSearchAttributes.get(MediaOwnerKey) ?? '?',
    tenant: info.typedSearchAttributes.get(MediaTenantKey) ?? '?',
    startTime: info.startTime.toISOString(),
    age: formatAge(now - info.startTime.getTime()),
    url: workflowUrl(config, info.workflowId, info.runId),
  };
}

async function stuck(client: Client, config: TemporalConfig, args: string[]): Promise<number> {
  const { values } = parseCommandLine(args, {
    status: { type: 'string' },
    'older-than': { type: 'string' },
    problems: { type: 'boolean', default: false },
    owner: { type: 'string' },
    tenant: { type: 'string' },
    limit: { type: 'string', default: '100' },
    json: { type: 'boolean', default: false },
  });
  const status = values.status?.toUpperCase();
  if (status !== undefined && !IN_PROGRESS.includes(status as MediaStatus)) {
    throw new UsageError(`--status: "${values.status}" is not one of ${IN_PROGRESS.join(', ')}`);
  }
  const limit = Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1) throw new UsageError(`--limit: "${values.limit}" is not a positive integer`);
  const now = Date.now();
  const query = stuckQuery({
    status: status as MediaStatus | undefined,
    owner: values.owner,
    tenant: values.tenant,
    problems: values.problems,
    startedBefore: values['older-than'] === undefined ? undefined : new Date(now - parseDuration(values['older-than'])),
  });

  // Visibility returns newest first and SQL visibility cannot ORDER BY: read every match and
  // keep the oldest, the ones most likely stuck.
  const matches: StuckUpload[] = [];
  for await (const info of client.workflow.list({ query, pageSize: 1000 })) matches.push(describeExecution(config, info, now));
  // ISO 8601 instants in UTC sort as text.
  const shown = matches.sort((a, b) => a.startTime.localeCompare(b.startTime)).slice(0, limit);
  if (values.json) {
    for (const upload of shown) console.log(JSON.stringify(upload));
    return 0;
  }
  console.log(`query: ${query}`);
  console.log(`Web UI: ${workflowListUrl(config, query)}`);
  if (!shown.length) {
    console.log('no running upload workflow matches');
    return 0;
  }
  console.log(`${matches.length} upload(s)${matches.length > limit ? `, the oldest ${limit} shown (raise --limit)` : ''}, oldest first:`);
  for (const u of shown) {
    console.log(`\n  ${u.workflowId}  ${u.mediaStatus}  ${u.mediaType}  age ${u.age}  tenant ${u.tenant}  owner ${u.owner}\n  ${u.url}`);
  }
  return 0;
}

/** util.parseArgs with its errors (unknown option, missing value) turned into usage errors. */
function parseCommandLine<T extends ParseArgsConfig['options']>(args: string[], options: T, positionals = 0) {
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: positionals > 0, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message.split('\n')[0]!);
  }
  if (parsed.positionals.length > positionals) throw new UsageError(`unexpected argument "${parsed.positionals[positionals]}"`);
  return parsed;
}

/** The running upload workflow, or a one-line reason why there is none. */
async function runningHandle(client: Client, args: string[], command: string): Promise<{ handle: WorkflowHandle; runId: string; mediaStatus: string }> {
  const idOrMediaId = parseCommandLine(args, {}, 1).positionals[0];
  if (!idOrMediaId) throw new UsageError(`${command} needs a workflow id or a media id`);
  const workflowId = workflowIdOf(idOrMediaId);
  const handle = client.workflow.getHandle(workflowId);
  let description;
  try {
    description = await handle.describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw new OpsError(`no workflow ${workflowId}`);
    throw err;
  }
  const mediaStatus = description.typedSearchAttributes.get(MediaStatusKey) ?? '?';
  if (description.status.name !== 'RUNNING') {
    throw new OpsError(`${workflowId} is not running (${description.status.name}, media ${mediaStatus}): nothing to ${command}`);
  }
  return { handle: client.workflow.getHandle(workflowId, description.runId), runId: description.runId, mediaStatus };
}

async function cancel(client: Client, config: TemporalConfig, args: string[]): Promise<number> {
  const { handle, runId, mediaStatus } = await runningHandle(client, args, 'cancel');
  await handle.cancel();
  console.log(`cancellation requested for ${handle.workflowId} (was ${mediaStatus}); it compensates (storage cleaned) and ends CANCELLED`);
  // Wait a little for the outcome, so the operator sees it; a slow compensation keeps going without us.
  const closed = await Promise.race([handle.result().then(
    () => true,
    () => true,
  ), new Promise<false>((resolve) => setTimeout(() => resolve(false), 30_000).unref())]);
  if (closed) {
    const after = await handle.describe();
    console.log(`${handle.workflowId}: ${after.status.name}, media ${after.typedSearchAttributes.get(MediaStatusKey) ?? '?'}`);
  } else {
    console.log(`still compensating after 30 s: ${workflowUrl(config, handle.workflowId, runId)}`);
  }
  return 0;
}

async function retry(client: Client, config: TemporalConfig, args: string[]): Promise<number> {
  const { handle, runId, mediaStatus } = await runningHandle(client, args, 'retry');
  const description = await handle.describe();
  // An activity that has failed at least once is waiting for its next attempt (or running it again).
  const pending = description.raw.pendingActivities ?? [];
  const failing = pending.filter((a) => (a.attempt ?? 1) > 1 || a.lastFailure);
  if (!failing.length) {
    const problems = description.typedSearchAttributes.get(TemporalReportedProblemsKey) ?? [];
    const waiting = pending.map((a) => a.activityType?.name).filter(Boolean);
    const why = problems.length
      ? `its workflow task keeps failing (${problems.join(', ')}), which an activity retry cannot fix: see the task failure in the Web UI, deploy a fixed worker (Temporal keeps retrying the task) or cancel it`
      : waiting.length
        ? `its activities (${waiting.join(', ')}) have not failed`
        : mediaStatus === 'AWAITING_UPLOAD'
          ? 'it waits for the client to upload and call complete, and expires on its own at the deadline (cancel it to end it now)'
          : 'no activity is pending';
    throw new OpsError(`${handle.workflowId} (${mediaStatus}) has nothing to retry: ${why}`);
  }
  for (const activity of failing) {
    await client.workflowService.resetActivity({
      namespace: config.TEMPORAL_NAMESPACE,
      execution: { workflowId: handle.workflowId, runId },
      identity: `ops@${process.env.USER ?? 'unknown'}`,
      id: activity.activityId,
      // A fresh attempt starts clean (the transcode restarts rather than resuming stale progress).
      resetHeartbeat: true,
    });
    console.log(
      `retrying ${activity.activityType?.name ?? activity.activityId} of ${handle.workflowId} now (it was on attempt ${activity.attempt}` +
        `${activity.lastFailure?.message ? `, last failure: ${activity.lastFailure.message}` : ''}); attempts start again from 1`,
    );
  }
  console.log(workflowUrl(config, handle.workflowId, runId));
  return 0;
}

const commands: Record<string, (client: Client, config: TemporalConfig, args: string[]) => Promise<number>> = { stuck, cancel, retry };

async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  const run = command ? commands[command] : undefined;
  if (!run) throw new UsageError(command ? `unknown command "${command}"` : 'no command given');
  const config = loadTemporalConfig();
  const connection = await Connection.connect({ ...temporalConnectionOptions(config), connectTimeout: 5000 }).catch((err: unknown) => {
    // Name the address tried and the variable that sets it, not only the SDK's own words.
    throw new OpsError(
      `cannot connect to Temporal at ${config.TEMPORAL_ADDRESS} (${err instanceof Error ? err.message : String(err)}): ` +
        'start it (npm run dev) or set TEMPORAL_ADDRESS (and TEMPORAL_NAMESPACE, TEMPORAL_TLS_* if needed) to the frontend to use',
    );
  });
  try {
    return await run(new Client({ connection, namespace: config.TEMPORAL_NAMESPACE }), config, args);
  } finally {
    await connection.close();
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      if (err instanceof UsageError) {
        console.error(`ops: ${err.message}\n${USAGE}`);
        process.exit(2);
      }
      const message = err instanceof ConfigError || err instanceof OpsError ? err.message : err instanceof Error ? `${err.name}: ${err.message}` : String(err);
      console.error(`ops: ${message}`);
      process.exit(1);
    },
  );
}
