import { MultiBar, Presets, type SingleBar } from 'cli-progress';
import { existsSync, openAsBlob, readFileSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { devSecretFile, mintDevToken } from '../../scripts/token';
import { MEDIA_TYPES, TERMINAL_STATUSES, type MediaType } from '../shared/media-types';
import {
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
  --concurrency <n>     parts of one file in flight at once (default: 4)
  --sha256              send SHA-256 digests so S3 refuses corrupted bytes

Prints per-file and total progress, follows each file until READY (or why not), then the
URLs. Ctrl-C stops the uploads and cancels every unfinished media (the workflow cleans up).`;

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

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      type: { type: 'string' },
      api: { type: 'string' },
      token: { type: 'string' },
      user: { type: 'string', default: 'dev-user' },
      concurrency: { type: 'string', default: '4' },
      sha256: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help || positionals.length === 0) exitWith(values.help ? 0 : 2, USAGE);
  const mediaType = values.type as MediaType | undefined;
  if (mediaType !== undefined && !MEDIA_TYPES.includes(mediaType)) exitWith(2, `--type must be one of ${MEDIA_TYPES.join(', ')}`);
  const concurrency = Number(values.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1) exitWith(2, '--concurrency must be a positive integer');
  const token = values.token ?? process.env.MEDIA_TOKEN ?? (await devToken(values.user!));
  if (!token) exitWith(2, 'no token: pass --token or MEDIA_TOKEN, or start the dev stack once (npm run dev) so a dev token can be minted');
  const apiUrl = values.api ?? process.env.MEDIA_API_URL ?? 'http://localhost:8080';

  const jobs = positionals.map((path) => planFile(path, mediaType));
  const client = new MediaUploadClient({ baseUrl: apiUrl, token: token!, concurrency });
  const view: ProgressView = process.stderr.isTTY ? new BarsView(jobs) : new LinesView();
  const stop = new AbortController();

  let interrupted = false;
  process.once('SIGINT', () => {
    interrupted = true;
    stop.abort();
    view.stop();
    // A second Ctrl-C does not wait for the cancellations.
    process.once('SIGINT', () => process.exit(130));
  });

  for (const job of jobs.filter((j) => j.problem)) view.status(job, 'not sent');
  const queue = jobs.filter((j) => !j.problem);
  const worker = async () => {
    for (let job = queue.shift(); job && !stop.signal.aborted; job = queue.shift())
      await send(client, job, view, { sha256: values.sha256!, signal: stop.signal });
  };
  await Promise.all(Array.from({ length: FILES_AT_ONCE }, worker));
  if (interrupted) {
    // Every upload has stopped by now, and a session that was being created has its media id.
    await cancelUnfinished(client, jobs);
    process.exit(130);
  }
  view.stop();
  console.log(jobs.map(summary).join('\n'));
  process.exit(jobs.every((j) => j.final?.status === 'READY') ? 0 : 1);
}

function planFile(path: string, forcedType: MediaType | undefined): FileJob {
  const name = basename(path);
  if (!existsSync(path) || !statSync(path).isFile()) return { path, name, size: 0, fileType: '', problem: 'no such file' };
  const size = statSync(path).size;
  const fileType = mimeTypeFromFileName(name) ?? '';
  const mediaType = forcedType ?? defaultMediaType(fileType);
  if (!mediaType)
    return { path, name, size, fileType, problem: `${fileType || 'a file with this extension'} is not an accepted image, video or PDF type` };
  const problem = checkFile({ fileType, fileSize: size }, mediaType);
  return { path, name, size, fileType, mediaType, problem: problem && `${problem.message} (${problem.code})` };
}

async function send(
  client: MediaUploadClient,
  job: FileJob,
  view: ProgressView,
  o: { sha256: boolean; signal: AbortSignal },
): Promise<void> {
  try {
    // A file-backed Blob: parts are read from disk as they are sent, never the whole file at once.
    const source = await openAsBlob(job.path, { type: job.fileType });
    const { mediaId } = await client.upload(source, {
      fileName: job.name,
      fileType: job.fileType,
      mediaType: job.mediaType,
      sha256: o.sha256,
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
    job.error = err instanceof MediaClientError ? `${err.code}: ${err.message}` : String(err);
    view.status(job, 'error');
  }
}

/** Ctrl-C: every media that exists and is not finished is cancelled; its workflow compensates. */
async function cancelUnfinished(client: MediaUploadClient, jobs: FileJob[]): Promise<void> {
  const unfinished = jobs.filter((j) => j.mediaId && !j.final);
  if (unfinished.length === 0) {
    console.error('interrupted; nothing to cancel');
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
  const lines = [`✔ ${job.name}: READY (media ${media.mediaId})`];
  if (media.cdnUrl) lines.push(`    original    ${media.cdnUrl}`);
  for (const t of media.thumbnails) if (t.url) lines.push(`    thumbnail   ${t.width ?? '?'}w ${t.format}  ${t.url}`);
  if (media.poster?.url) lines.push(`    poster      ${media.poster.url}`);
  if (media.hls) lines.push(`    hls         ${media.hls.masterUrl}`);
  if (!media.public) lines.push(`    (not public: read it through GET /api/v1/media/${media.mediaId}/download-url)`);
  return lines.join('\n');
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
    this.fileCount = jobs.filter((j) => !j.problem).length;
    const totalBytes = jobs.filter((j) => !j.problem).reduce((sum, j) => sum + j.size, 0);
    this.total = this.bars.create(Math.max(totalBytes, 1), 0, {
      name: fit('total', width),
      size: formatBytes(totalBytes),
      status: `0/${this.fileCount} files finished`,
    });
  }

  progress(job: FileJob, loaded: number): void {
    this.loaded.set(job, loaded);
    this.fileBars.get(job)?.update(loaded, { status: 'uploading' });
    this.total.update([...this.loaded.values()].reduce((a, b) => a + b, 0));
  }

  status(job: FileJob, status: string): void {
    this.fileBars.get(job)?.update({ status });
    if (FINAL_STATUSES.includes(status) && !job.problem) {
      this.finished.add(job);
      this.total.update({ status: `${this.finished.size}/${this.fileCount} files finished` });
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
async function devToken(user: string): Promise<string | undefined> {
  const secret = process.env.JWT_SECRET ?? (existsSync(devSecretFile) ? readFileSync(devSecretFile, 'utf8').trim() : undefined);
  return secret ? mintDevToken(secret, user) : undefined;
}

function exitWith(code: number, message: string): never {
  (code === 0 ? console.log : console.error)(message);
  process.exit(code);
}

main().catch((err: unknown) => {
  console.error(err instanceof MediaClientError ? `${err.code}: ${err.message}` : err);
  process.exit(1);
});
