import { z } from 'zod';
import { MEDIA_TYPES } from './media-types';

const MiB = 1024 * 1024;
const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');
const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === '' ? undefined : v));
const int = (fallback: number) => z.coerce.number().int().nonnegative().default(fallback);

/**
 * Every setting of the API and the workers, read once from the environment at start-up.
 * Names are part of the contract (SPEC.md §10); Helm values map onto them.
 */
const configFields = z
  .object({
    /** API port. Default 8080. */
    PORT: int(8080),
    /** pino log level. Default info. */
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    /** HS256 secret (dev). Either this or JWT_JWKS_URL is required. */
    JWT_SECRET: optionalString,
    /** JWKS URL for RS256/ES256 tokens (production). */
    JWT_JWKS_URL: optionalString,
    /** Expected `iss` claim; checked when set. */
    JWT_ISSUER: optionalString,
    /** Expected `aud` claim; checked when set. */
    JWT_AUDIENCE: optionalString,
    /**
     * Claim carrying the tenant id. A token without it belongs to the tenant `default`, so a
     * single-tenant deployment needs no change. Default `tenant`.
     */
    JWT_TENANT_CLAIM: z.string().min(1).default('tenant'),
    /** Claim listing the project ids (an array of strings) the user may use. Default `projects`. */
    JWT_PROJECTS_CLAIM: z.string().min(1).default('projects'),
    /** PostgreSQL connection string. Required. */
    DATABASE_URL: z.string().min(1, 'DATABASE_URL is required'),
    /**
     * PostgreSQL connections per API process. Each is held for one short statement at a time,
     * never across a call to Temporal or S3. Default 25.
     */
    DB_POOL_SIZE: int(25),
    /**
     * How long the API waits for PostgreSQL to answer one statement, in ms, before it gives up
     * on it, closes that connection (its state is unknown) and answers 503
     * DEPENDENCY_UNAVAILABLE. Client-side (pg `query_timeout`): it holds when the server does not
     * answer at all (stopped, partitioned), not only when it runs slow. The API's statements are
     * short, indexed reads and writes; workers and migrations have no such bound. Default 5000.
     */
    DB_QUERY_TIMEOUT_MS: z.coerce.number().int().min(1).default(5000),
    /**
     * Workflow starts one API process has in flight at once (sessions and batch items alike);
     * further ones wait, holding nothing, and answer 503 OVERLOADED if no slot frees up within
     * the 5 s start deadline. Protects Temporal's frontend, independently of the database pool
     * (session statements take at most half of DB_POOL_SIZE, so reads always find one). Default 64.
     */
    TEMPORAL_START_CONCURRENCY: z.coerce.number().int().min(1).default(64),
    /**
     * Start a session's workflow delayed to its confirmation deadline, so that Temporal runs no
     * workflow task for it until `complete` (Signal-With-Start), a cancellation or the deadline
     * (README: The upload flow). Default true. Set false while API pods of a release that
     * confirmed with a plain signal still run (a rolling upgrade from it, or before rolling back
     * to it): their signal would wait for the deadline.
     */
    UPLOAD_WORKFLOW_START_DELAY: bool.default(true),
    /**
     * How long a stopping API takes at most, from SIGTERM: it drains (SHUTDOWN_DRAIN_SECONDS),
     * stops accepting, lets requests in flight finish, then closes what is left. Default 20 s.
     */
    SHUTDOWN_GRACE_SECONDS: int(20),
    /**
     * After SIGTERM, how long the API keeps accepting and answering while /readyz fails, before
     * it stops accepting: requests a load balancer sent before it saw the pod go, and
     * connections waiting in the listen backlog, are answered instead of reset. Part of
     * SHUTDOWN_GRACE_SECONDS, so at most that. Default 1 s (the chart's preStop pause already
     * removes the pod from load balancers; without one, set the balancer's detection time).
     */
    SHUTDOWN_DRAIN_SECONDS: int(1),
    /** Temporal frontend host:port. Default localhost:7233. */
    TEMPORAL_ADDRESS: z.string().default('localhost:7233'),
    /** Temporal namespace. Default `default`. */
    TEMPORAL_NAMESPACE: z.string().default('default'),
    /** mTLS client certificate and key (Temporal Cloud or a TLS cluster). */
    TEMPORAL_TLS_CERT_PATH: optionalString,
    TEMPORAL_TLS_KEY_PATH: optionalString,
    /** CA bundle for the Temporal server certificate; system roots when unset. */
    TEMPORAL_TLS_CA_PATH: optionalString,
    /** Temporal Cloud API key (implies TLS). */
    TEMPORAL_API_KEY: optionalString,
    /**
     * Name the Temporal server certificate is checked against, when it differs from the host
     * of TEMPORAL_ADDRESS (PrivateLink endpoints, regional mTLS). Unset: that host.
     */
    TEMPORAL_TLS_SERVER_NAME: optionalString,
    /** Task queue for orchestration, S3, DB, scan and image work. Default media-light. */
    TASK_QUEUE_LIGHT: z.string().default('media-light'),
    /** Task queue for video transcoding. Default media-video. */
    TASK_QUEUE_VIDEO: z.string().default('media-video'),
    /**
     * Task queue of document analysis (PDFs), polled by the light worker process with its own
     * concurrency (DOCUMENT_MAX_CONCURRENT_ACTIVITIES): one analysis takes seconds of CPU and
     * a few hundred MiB, eight at once would not fit a light worker pod. Default media-document.
     */
    TASK_QUEUE_DOCUMENT: z.string().default('media-document'),
    /** Documents one light worker process analyses at once. Default 1. */
    DOCUMENT_MAX_CONCURRENT_ACTIVITIES: z.coerce.number().int().min(1).default(1),
    /** S3 endpoint; unset means AWS S3 for S3_REGION. */
    S3_ENDPOINT: optionalString,
    /**
     * How long the API waits for S3 to answer one call (the SDK's retries included), in ms,
     * before it answers 503 DEPENDENCY_UNAVAILABLE: the completion's HEAD, ListParts, the
     * multipart upload of a new session, the readiness check. A stopped S3 still accepts TCP
     * connections, so without it such a request hangs as long as the outage. Workers have no
     * such bound (they move whole objects; Temporal's activity timeouts bound them). Default 5000.
     */
    S3_API_TIMEOUT_MS: z.coerce.number().int().min(1).default(5000),
    /** S3 region. Default us-east-1. */
    S3_REGION: z.string().default('us-east-1'),
    /** Path-style addressing (needed by most S3-compatible servers). Default false. */
    S3_FORCE_PATH_STYLE: bool.default(false),
    /** Private bucket that uploads land in. Default incoming. */
    S3_INCOMING_BUCKET: z.string().default('incoming'),
    /** Bucket served by the CDN; only scanned objects get here. Default media. */
    S3_MEDIA_BUCKET: z.string().default('media'),
    /** Base of public media URLs. Default: the media bucket on S3_ENDPOINT. */
    CDN_BASE_URL: optionalString,
    /** clamd host and TCP port. Default localhost:3310. */
    CLAMD_HOST: z.string().default('localhost'),
    CLAMD_PORT: int(3310),
    /** Presigned URL lifetime. Default 900 s (PROFILE_IMAGE uses PROFILE_IMAGE_URL_TTL_SECONDS). */
    UPLOAD_URL_TTL_SECONDS: int(900),
    /** Presigned URL lifetime for PROFILE_IMAGE. Default 300 s. */
    PROFILE_IMAGE_URL_TTL_SECONDS: int(300),
    /** How long after URL expiry the workflow still waits for `complete`. Default 300 s. */
    CONFIRM_GRACE_SECONDS: int(300),
    /** Files above this size use S3 multipart. Default 8 MiB. */
    MULTIPART_THRESHOLD_BYTES: int(8 * MiB),
    /** Multipart part size (S3 minimum 5 MiB). Default 8 MiB. */
    PART_SIZE_BYTES: z.coerce.number().int().min(5 * MiB).default(8 * MiB),
    /**
     * Largest object sent to clamd; must not exceed clamd's StreamMaxLength. Default 1000 MiB
     * (the dev clamd and the chart's clamd are configured to match).
     */
    CLAMD_STREAM_MAX_BYTES: int(1000 * MiB),
    /**
     * What happens to a file larger than CLAMD_STREAM_MAX_BYTES: `reject` (default; REJECTED
     * with TOO_LARGE_TO_SCAN) or `skip` (published, recorded as unscanned in metadata.scan).
     */
    SCAN_OVERSIZE_ACTION: z.enum(['reject', 'skip']).default('reject'),
    /** Activities one light worker runs at once. Default 8. */
    LIGHT_MAX_CONCURRENT_ACTIVITIES: int(8),
    /** Transcodes one video worker runs at once (each uses every core). Default 1. */
    VIDEO_MAX_CONCURRENT_ACTIVITIES: int(1),
    /** x264 preset of the HLS ladder. Default veryfast. */
    HLS_X264_PRESET: z.enum(['ultrafast', 'superfast', 'veryfast', 'faster', 'fast', 'medium']).default('veryfast'),
    /** HLS segment length in seconds. Default 4. */
    HLS_SEGMENT_SECONDS: z.coerce.number().int().min(1).max(30).default(4),
    /**
     * Wall-clock bound of one document analysis (page count, info, page-1 preview, text) in
     * seconds; MuPDF runs in a child process that is killed after it. What arrived before is
     * kept; a document whose structure was not even read by then FAILS. Default 120.
     */
    DOCUMENT_ANALYSIS_TIMEOUT_SECONDS: z.coerce.number().int().min(1).max(240).default(120),
    /**
     * Resident memory bound of that child process in MiB; killed above it (as for the
     * timeout). A 48 MiB, 200-page plan peaks near 300 MiB (npm run bench). Default 512.
     */
    DOCUMENT_ANALYSIS_MAX_MEMORY_MB: z.coerce.number().int().min(64).default(512),
    /** Extracted text kept per document (GET /media/{id}/text), in UTF-8 bytes; longer text is cut. Default 1 MiB. */
    DOCUMENT_TEXT_MAX_BYTES: z.coerce.number().int().min(1024).max(16 * MiB).default(MiB),
    /** ffmpeg / ffprobe binaries. Default: found on PATH. */
    FFMPEG_PATH: z.string().default('ffmpeg'),
    FFPROBE_PATH: z.string().default('ffprobe'),
    /** Upload sessions one user may create per minute. Default 120. */
    RATE_LIMIT_SESSIONS_PER_MINUTE: int(120),
    /** Upload sessions one tenant (all its users together) may create per minute; 0 = no limit. Default 0. */
    RATE_LIMIT_SESSIONS_PER_MINUTE_PER_TENANT: int(0),
    /** Browser origins allowed by CORS, comma separated; empty → CORS off. */
    CORS_ORIGINS: z
      .string()
      .default('')
      .transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean)),
    /**
     * Port of `/metrics` (API and workers) and of a worker's `/healthz`: never the API's public
     * PORT, so an Ingress routing `/` to the API does not publish the metrics. 0 turns the
     * listener off (several processes on one host: dev, tests). Default 9464.
     */
    METRICS_PORT: int(9464),
    /**
     * Port of the Temporal SDK's own Prometheus endpoint on a worker (`temporal_*` metrics:
     * task slots, schedule-to-start latency, polls); 0 turns it off. Default 9465.
     */
    TEMPORAL_METRICS_PORT: int(9465),
    /** Temporal Web UI base URL, for the links `npm run ops` prints. Default http://localhost:8233. */
    TEMPORAL_UI_URL: z.string().default('http://localhost:8233'),
    /** How long a stopping worker lets running activities finish. Default 30 s. */
    WORKER_SHUTDOWN_GRACE_SECONDS: int(30),
    /**
     * Bytes one user may store: originals of uploads in progress and READY media plus their
     * derived objects. A session that would pass it answers 413 QUOTA_EXCEEDED. 0 = no quota.
     * Default 10 GiB.
     */
    USER_STORAGE_QUOTA_BYTES: int(10 * 1024 * MiB),
    /**
     * Bytes one tenant (all its users together) may store, counted like USER_STORAGE_QUOTA_BYTES.
     * A session that would pass it answers 413 QUOTA_EXCEEDED. 0 = no quota. Default 0.
     */
    TENANT_STORAGE_QUOTA_BYTES: int(0),
    /** Lifetime of the presigned GET of `download-url`. Default 300 s. */
    DOWNLOAD_URL_TTL_SECONDS: z.coerce.number().int().min(1).max(604800).default(300),
    /**
     * Media types whose objects the CDN serves publicly (comma separated). Others get no CDN
     * URLs; their owner reads them through `download-url`. Default: every type.
     */
    PUBLIC_MEDIA_TYPES: z
      .string()
      .default(MEDIA_TYPES.join(','))
      .transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean))
      .pipe(z.array(z.enum(MEDIA_TYPES))),
    /**
     * Temporal Schedule of the unused-media cleanup and orphan sweep: how often it runs
     * (`30m`, `1h`, ...) or `off` (no schedule is created). Default 1h.
     */
    CLEANUP_INTERVAL: z.string().regex(/^(off|\d+\s*(s|m|h|d))$/, 'a duration like 30m or 1h, or off').default('1h'),
    /** Schedule id of the cleanup (one per namespace). Default media-cleanup. */
    CLEANUP_SCHEDULE_ID: z.string().min(1).default('media-cleanup'),
    /** READY media never attached for this long is deleted. Default 86400 s (24 h). */
    CLEANUP_UNATTACHED_AFTER_SECONDS: int(86400),
    /** FAILED/REJECTED/EXPIRED/CANCELLED rows are marked DELETED after this long. Default 7 days. */
    CLEANUP_FAILED_RETENTION_SECONDS: int(7 * 86400),
    /**
     * Incoming objects and multipart uploads older than this that no live upload owns are
     * removed. Must exceed the longest confirmation deadline. Default 3600 s.
     */
    CLEANUP_ORPHAN_AFTER_SECONDS: int(3600),
    /**
     * Webhook endpoints as JSON: `[{"url":"https://...","secret":"..."}]`. Each receives
     * media.ready/rejected/expired/failed/deleted, signed with HMAC-SHA256. Default none.
     */
    WEBHOOK_ENDPOINTS: z
      .string()
      .default('[]')
      .transform((v, ctx) => {
        try {
          return JSON.parse(v) as unknown;
        } catch {
          ctx.addIssue({ code: 'custom', message: 'WEBHOOK_ENDPOINTS is not valid JSON' });
          return z.NEVER;
        }
      })
      .pipe(
        z.array(
          z.object({
            // fetch refuses URLs with credentials in them: say so at start-up, not after a day of retries.
            url: z.url({ protocol: /^https?$/ }).refine((u) => !new URL(u).username && !new URL(u).password, 'webhook URL must not carry credentials'),
            secret: z.string().min(16, 'webhook secret: at least 16 characters'),
          }),
        ),
      ),
  });

const configSchema = configFields
  .refine((c) => c.JWT_SECRET || c.JWT_JWKS_URL, { message: 'set JWT_SECRET (HS256) or JWT_JWKS_URL (RS256/ES256)' })
  .refine((c) => c.SHUTDOWN_DRAIN_SECONDS <= c.SHUTDOWN_GRACE_SECONDS, {
    message: 'SHUTDOWN_DRAIN_SECONDS is part of SHUTDOWN_GRACE_SECONDS and must not exceed it',
    path: ['SHUTDOWN_DRAIN_SECONDS'],
  })
  .refine((c) => c.CLEANUP_ORPHAN_AFTER_SECONDS > Math.max(c.UPLOAD_URL_TTL_SECONDS, c.PROFILE_IMAGE_URL_TTL_SECONDS) + c.CONFIRM_GRACE_SECONDS, {
    // A younger object may still belong to an upload waiting for its client.
    message: 'CLEANUP_ORPHAN_AFTER_SECONDS must exceed the longest confirmation deadline (URL TTL + CONFIRM_GRACE_SECONDS)',
    path: ['CLEANUP_ORPHAN_AFTER_SECONDS'],
  });

export type Config = z.infer<typeof configSchema>;

export class ConfigError extends Error {}

function parseEnv<T extends z.ZodType>(schema: T, env: NodeJS.ProcessEnv): z.infer<T> {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.') || 'config'}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  return parsed.data;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  return parseEnv(configSchema, env);
}

const temporalConfigSchema = configFields.pick({
  TEMPORAL_ADDRESS: true,
  TEMPORAL_NAMESPACE: true,
  TEMPORAL_TLS_CERT_PATH: true,
  TEMPORAL_TLS_KEY_PATH: true,
  TEMPORAL_TLS_CA_PATH: true,
  TEMPORAL_API_KEY: true,
  TEMPORAL_TLS_SERVER_NAME: true,
  TEMPORAL_UI_URL: true,
});
export type TemporalConfig = z.infer<typeof temporalConfigSchema>;

/** Only the Temporal settings, for tools that talk to Temporal alone (`npm run ops`). */
export function loadTemporalConfig(env: NodeJS.ProcessEnv = process.env): TemporalConfig {
  return parseEnv(temporalConfigSchema, env);
}

/** Public base URL of the media bucket. */
export function cdnBaseUrl(config: Config): string {
  if (config.CDN_BASE_URL) return config.CDN_BASE_URL.replace(/\/$/, '');
  if (config.S3_ENDPOINT) return `${config.S3_ENDPOINT.replace(/\/$/, '')}/${config.S3_MEDIA_BUCKET}`;
  return `https://${config.S3_MEDIA_BUCKET}.s3.${config.S3_REGION}.amazonaws.com`;
}
