import { MultiBar, Presets, type SingleBar } from 'cli-progress';
import { existsSync, openAsBlob, readFileSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { devSecretFile, mintDevToken } from '../../scripts/token';
import { MEDIA_TYPES, TERMINAL_STATUSES, type MediaType } from '../shared/media-types';
import {
  acceptedExtensions,
  checkFile,
  defaultMediaType,
  explainFailure,
  formatBytes,
  MediaClientError,
  MediaUploadClient,
  mimeTypeFromFileName,
  type Media,
} from '../client';

const USAGE = `usage: npm run upload -- <files...> [options]

  --type <MEDIA_TYPE>   ${MEDIA_TYPES.join(' | ')} (default: POST_IMAGE for images, POST_VIDEO for videos, DOCUMENT for PDFs)
  --api <url>           API origin (default: $MEDIA_API_URL or http://localhost:8080)
  --token <jwt>         bearer token (default: $MEDIA_TOKEN, else a dev token for --user signed
                        with $JWT_SECRET or the secret of the dev stack started by npm run dev)
  --user <id>           user of the minted dev token (default: dev-user)
  --tenant <id>         tenant claim of the minted dev token (default: none, i.e. tenant default)
  --project <id>        upload into this project (projectId; a minted dev token grants it)
  --concurrency <n>     parts of one file in flight at once (default: 4)
  --sha256              send SHA-256 digests so S3 refuses corrupted bytes

Prints per-file and total progress on stderr, follows each file until READY (or why not),
then the URLs on stdout, one per line, smallest rendition first. Ctrl-C stops the uploads and
cancels every unfinished media (the workflow cleans up).

Exit codes: 0 every file READY, 1 a file did not end READY (or the token was refused),
2 bad usage, 130 interrupted.`;

/** Bad command line: one line and the usage on stderr, exit code 2 (as \`npm run ops\`). */
class UsageError extends Error {}


/**
 * A repeated SIGINT this soon after the first is the same Ctrl-C delivered again: a terminal
 * signals the whole process group (npm, sh, tsx, node) and tsx relays it to node as well, so
 * under load node can see one Ctrl-C twice (a CI run exited 130 without cancelling).
 */
const SAME_CTRL_C_MS = 1000;

/** Files uploading at once; each also sends `--concurrency` parts at once. */
const FILES_AT_ONCE = 2;
/** Media statuses after which nothing changes, plus the CLI's own `error`. */
const FINAL_STATUSES: readonly string[] = [...TERMINAL_STATUSES, 'error'];
/** Without a terminal, progress is one line per quarter. */
const PLAIN_PROGRESS_STEP = 0.25;

interface FileJob {
  path: string;
  name: string;
  size: number;
  fileType: string;
  mediaType?: MediaType;
  /** Why the file is not sent at all (client-side checks mirror the server's limits). */
  problem?: string;
  mediaId?: string;
  final?: Media;
  error?: string;
}

/** What the user sees while files upload: bars on a terminal, plain lines otherwise. */
interface ProgressView {
  progress(job: FileJob, loaded: number): void;
  status(job: FileJob, status: string): void;
  stop(): void;
}

function parseCommandLine() {
  try {
    return parseArgs({
      allowPositionals: true,
      strict: true,
      options: {
      type: { type: 'string' },
      api: { type: 'string' },
      token: { type: 'string' },
      user: { type: 'string', default: 'dev-user' },
      tenant: { type: 'string' },
      project: { type: 'string' },
      concurrency: { type: 'string', default: '4' },
      sha256: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    // parseArgs explains unknown options and missing values on its first line.
    throw new UsageError((err as Error).message.split('\n')[0]!);
  }
}

async function main(): Promise<void> {
  const { values, positionals } = parseCommandLine();
  if (values.help) exitWith(0, USAGE);
  if (positionals.length === 0) throw new UsageError('no files given');
  const mediaType = values.type as MediaType | undefined;
  if (mediaType !== undefined && !MEDIA_TYPES.includes(mediaType)) throw new UsageError(`--type must be one of ${MEDIA_TYPES.join(', ')}`);
  const concurrency = Number(values.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new UsageError('--concurrency must be a positive integer');
  const token = values.token ?? process.env.MEDIA_TOKEN ?? (await devToken(values.user!, values.tenant, values.project));
  if (!token) throw new UsageError('no token: pass --token or MEDIA_TOKEN, or start the dev stack once (npm run dev) so a dev token can be minted');
  const apiUrl = values.api ?? process.env.MEDIA_API_URL ?? 'http://localhost:8080';

  const jobs = positionals.map((path) => planFile(path, mediaType));
  const client = new MediaUploadClient({ baseUrl: apiUrl, token: token!, concurrency });
  const view: ProgressView = process.stderr.isTTY ? new BarsView(jobs) : new LinesView();
  const stop = new AbortController();

  let interruptedAt: number | undefined;
  process.on('SIGINT', () => {
    if (interruptedAt === undefined) {
      interruptedAt = Date.now();
      stop.abort();
      view.stop();
      console.error('interrupted: cancelling unfinished uploads (Ctrl-C again to quit at once)');
    } else if (Date.now() - interruptedAt > SAME_CTRL_C_MS) {
      // A second Ctrl-C does not wait for the cancellations.
      process.exit(130);
    }
  });

  for (const job of jobs.filter((j) => j.problem)) view.status(job, 'not sent');
  const queue = jobs.filter((j) => !j.problem);
  const run: RunState = { signal: stop.signal, sha256: values.sha256!, projectId: values.project, refused: undefined };
  const worker = async () => {
    for (let job = queue.shift(); job && !stop.signal.aborted; job = queue.shift()) {
      await send(client, job, view, run);
      if (run.refused && !stop.signal.aborted) {
        // The token is the same for every file: the next ones would be refused alike.
        stop.abort();
        view.stop();
        console.error(`upload: the API refused the token: ${run.refused} (pass a valid --token or MEDIA_TOKEN)`);
      }
    }
  };
  await Promise.all(Array.from({ length: FILES_AT_ONCE }, worker));
  if (interruptedAt !== undefined) {
    // Every upload has stopped by now, and a session that was being created has its media id.
    await cancelUnfinished(client, jobs);
    process.exit(130);
  }
  if (run.refused) {
    await cancelUnfinished(client, jobs);
    process.exit(1);
  }
  view.stop();
  // People read the outcome on stderr; stdout has the URLs alone, for scripts.
  console.error(jobs.map(summary).join('\n'));
  const urls = urlList(jobs);
  if (urls) console.log(urls);
  process.exit(jobs.every((j) => j.final?.status === 'READY') ? 0 : 1);
}

interface RunState {
  signal: AbortSignal;
  sha256: boolean;
  /** The project every file goes to (`--project`). */
  projectId: string | undefined;
  /** Why the API refused the token (401), once any upload met it. */
  refused: string | undefined;
}

function planFile(path: string, forcedType: MediaType | undefined): FileJob {
  const name = basename(path);
  if (!existsSync(path) || !statSync(path).isFile()) return { path, name, size: 0, fileType: '', problem: 'no such file' };
  const size = statSync(path).size;
  const fileType = mimeTypeFromFileName(name) ?? '';
  const mediaType = forcedType ?? defaultMediaType(fileType);
  if (!mediaType) {
    const dot = name.lastIndexOf('.');
    const extension = dot > 0 ? `.${name.slice(dot + 1)}` : 'a file without an extension';
    const accepted = acceptedExtensions().map((e) => `.${e}`).join(' ');
    return { path, name, size, fileType, problem: `${extension} (${fileType || 'unknown type'}) is not an accepted type; accepted: ${accepted}` };
  }
  const problem = checkFile({ fileType, fileSize: size }, mediaType);
  return { path, name, size, fileType, mediaType, problem: problem && `${problem.message} (${problem.code})` };
}

async function send(
  client: MediaUploadClient,
  job: FileJob,
  view: ProgressView,
  o: RunState,
): Promise<void> {
  try {
    // A file-backed Blob: parts are read from disk as they are sent, never the whole file at once.
    const source = await openAsBlob(job.path, { type: job.fileType });
    const { mediaId } = await client.upload(source, {
      fileName: job.name,
      fileType: job.fileType,
      mediaType: job.mediaType,
      sha256: o.sha256,
      projectId: o.projectId,
      signal: o.signal,
      onSession: (session) => {
        job.mediaId = session.mediaId;
        view.status(job, 'uploading');
      },
      onProgress: (p) => (p.phase === 'hashing' ? view.status(job, 'hashing') : view.progress(job, p.loaded)),
    });
    job.final = await client.waitForReady(mediaId, { signal: o.signal, onStatus: (media) => view.status(job, media.status) });
  } catch (err) {
    if (o.signal.aborted) return;
    if (err instanceof MediaClientError && err.status === 401) {
      o.refused ??= `${err.message} (${err.code})`;
      return;
    }
    job.error = err instanceof MediaClientError ? `${err.code}: ${err.message}` : String(err);
    view.status(job, 'error');
  }
}

/** Ctrl-C: every media that exists and is not finished is cancelled; its workflow compensates. */
async function cancelUnfinished(client: MediaUploadClient, jobs: FileJob[]): Promise<void> {
  const unfinished = jobs.filter((j) => j.mediaId && !j.final);
  if (unfinished.length === 0) {
    console.error('nothing to cancel');
    return;
  }
  await Promise.all(
    unfinished.map(async (job) => {
      try {
        await client.cancel(job.mediaId!);
        console.error(`cancelled ${job.name} (media ${job.mediaId})`);
      } catch (err) {
        console.error(`could not cancel ${job.name} (media ${job.mediaId}): ${(err as Error).message}`);
      }
    }),
  );
}

function summary(job: FileJob): string {
  if (job.problem) return `✖ ${job.name}: not sent: ${job.problem}`;
  if (job.error) return `✖ ${job.name}: ${job.error}`;
  const media = job.final!;
  if (media.status !== 'READY') return `✖ ${job.name}: ${media.status}: ${explainFailure(media.failureReason)} (media ${media.mediaId})`;
  const note = media.public ? '' : `; not public: read it through GET /api/v1/media/${media.mediaId}/download-url`;
  return `✔ ${job.name}: READY (media ${media.mediaId}${note})`;
}

/**
 * The URLs of every READY file, one per line in aligned columns (file, what, size, URL):
 * per file the smallest rendition first, then the poster, the original and the HLS playlist.
 */
function urlList(jobs: FileJob[]): string {
  const rows: string[][] = [];
  for (const job of jobs) {
    const media = job.final;
    if (media?.status !== 'READY') continue;
    const width = media.metadata.width;
    const height = media.metadata.height;
    const own = typeof width === 'number' && typeof height === 'number' ? `${width}x${height}` : formatBytes(media.fileSize);
    const entries = [
      ...[...media.thumbnails]
        .sort((a, b) => (a.width ?? 0) - (b.width ?? 0) || a.format.localeCompare(b.format))
        .map((t) => ['thumbnail', `${t.width ?? '?'}w ${t.format}`, t.url]),
      ['poster', media.poster ? `${media.poster.width ?? '?'}x${media.poster.height ?? '?'}` : '', media.poster?.url],
      ['original', own, media.cdnUrl],
      ['hls', media.hls ? `${media.hls.renditions.length} renditions` : '', media.hls?.masterUrl],
    ];
    for (const [what, size, url] of entries) if (url) rows.push([job.name, what!, size!, url]);
  }
  const widths = [0, 1, 2].map((column) => Math.max(0, ...rows.map((row) => row[column]!.length)));
  return rows.map((row) => row.map((cell, i) => (i < 3 ? cell.padEnd(widths[i]!) : cell)).join('  ')).join('\n');
}

class BarsView implements ProgressView {
  private readonly bars: MultiBar;
  private readonly fileBars = new Map<FileJob, SingleBar>();
  private readonly loaded = new Map<FileJob, number>();
  private readonly total: SingleBar;
  private readonly fileCount: number;
  private readonly finished = new Set<FileJob>();

  constructor(jobs: FileJob[]) {
    const width = Math.min(40, Math.max(5, ...jobs.map((j) => j.name.length)));
    this.bars = new MultiBar(
      { format: '{name} |{bar}| {percentage}% | {size} | {status}', hideCursor: true, autopadding: true, barsize: 30 },
      Presets.shades_classic,
    );
    for (const job of jobs) {
      this.fileBars.set(
        job,
        this.bars.create(Math.max(job.size, 1), 0, { name: fit(job.name, width), size: formatBytes(job.size), status: 'queued' }),
      );
    }
    // Every file given counts, sent or not: one refused at once is finished from the start.
    this.fileCount = jobs.length;
    const totalBytes = jobs.filter((j) => !j.problem).reduce((sum, j) => sum + j.size, 0);
    this.total = this.bars.create(Math.max(totalBytes, 1), 0, {
      name: fit('total', width),
      size: formatBytes(totalBytes),
      status: this.totalStatus(),
    });
  }

  private totalStatus(): string {
    const notSent = [...this.finished].filter((j) => j.problem).length;
    return `${this.finished.size}/${this.fileCount} files finished${notSent ? ` (${notSent} not sent)` : ''}`;
  }

  progress(job: FileJob, loaded: number): void {
    this.loaded.set(job, loaded);
    this.fileBars.get(job)?.update(loaded, { status: 'uploading' });
    this.total.update([...this.loaded.values()].reduce((a, b) => a + b, 0));
  }

  status(job: FileJob, status: string): void {
    this.fileBars.get(job)?.update({ status });
    if (FINAL_STATUSES.includes(status) || job.problem) {
      this.finished.add(job);
      this.total.update({ status: this.totalStatus() });
    }
  }

  stop(): void {
    this.bars.stop();
  }
}

class LinesView implements ProgressView {
  private readonly reported = new Map<FileJob, number>();
  private readonly lastStatus = new Map<FileJob, string>();

  progress(job: FileJob, loaded: number): void {
    const step = Math.floor(loaded / Math.max(job.size, 1) / PLAIN_PROGRESS_STEP);
    if (step <= (this.reported.get(job) ?? 0)) return;
    this.reported.set(job, step);
    console.error(`${job.name}: uploaded ${Math.round(step * PLAIN_PROGRESS_STEP * 100)}% of ${formatBytes(job.size)}`);
  }

  status(job: FileJob, status: string): void {
    if (this.lastStatus.get(job) === status) return;
    this.lastStatus.set(job, status);
    const detail =
      status === 'uploading'
        ? ` ${formatBytes(job.size)} as ${job.mediaType} (media ${job.mediaId})`
        : status === 'not sent'
          ? `: ${job.problem}`
          : '';
    console.error(`${job.name}: ${status}${detail}`);
  }

  stop(): void {}
}

function fit(text: string, width: number): string {
  return text.length > width ? `${text.slice(0, width - 1)}…` : text.padEnd(width);
}

/** A dev token signed with JWT_SECRET or the dev stack's secret, when either is at hand. */
async function devToken(user: string, tenant: string | undefined, project: string | undefined): Promise<string | undefined> {
  const secret = process.env.JWT_SECRET ?? (existsSync(devSecretFile) ? readFileSync(devSecretFile, 'utf8').trim() : undefined);
  const claims = { ...(tenant ? { tenant } : {}), ...(project ? { projects: [project] } : {}) };
  return secret ? mintDevToken(secret, user, '24h', claims) : undefined;
}

function exitWith(code: number, message: string): never {
  (code === 0 ? console.log : console.error)(message);
  process.exit(code);
}

main().catch((err: unknown) => {
  if (err instanceof UsageError) exitWith(2, `upload: ${err.message}\n${USAGE}`);
  // One line, never a stack trace: the message says what went wrong.
  console.error(`upload: ${err instanceof MediaClientError ? `${err.code}: ${err.message}` : err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
