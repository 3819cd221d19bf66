import { z } from 'zod';

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
const configSchema = z
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
    /** PostgreSQL connection string. Required. */
    DATABASE_URL: z.string().min(1, 'DATABASE_URL is required'),
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
    /** Task queue for orchestration, S3, DB, scan and image work. Default media-light. */
    TASK_QUEUE_LIGHT: z.string().default('media-light'),
    /** Task queue for video transcoding. Default media-video. */
    TASK_QUEUE_VIDEO: z.string().default('media-video'),
    /** S3 endpoint; unset means AWS S3 for S3_REGION. */
    S3_ENDPOINT: optionalString,
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
    /** Upload sessions one user may create per minute. Default 120. */
    RATE_LIMIT_SESSIONS_PER_MINUTE: int(120),
    /** Browser origins allowed by CORS, comma separated; empty → CORS off. */
    CORS_ORIGINS: z
      .string()
      .default('')
      .transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean)),
    /** Port of the worker's /metrics and /healthz. Default 9464. */
    METRICS_PORT: int(9464),
    /** How long a stopping worker lets running activities finish. Default 30 s. */
    WORKER_SHUTDOWN_GRACE_SECONDS: int(30),
  })
  .refine((c) => c.JWT_SECRET || c.JWT_JWKS_URL, { message: 'set JWT_SECRET (HS256) or JWT_JWKS_URL (RS256/ES256)' });

export type Config = z.infer<typeof configSchema>;

export class ConfigError extends Error {}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = configSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.') || 'config'}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  return parsed.data;
}

/** Public base URL of the media bucket. */
export function cdnBaseUrl(config: Config): string {
  if (config.CDN_BASE_URL) return config.CDN_BASE_URL.replace(/\/$/, '');
  if (config.S3_ENDPOINT) return `${config.S3_ENDPOINT.replace(/\/$/, '')}/${config.S3_MEDIA_BUCKET}`;
  return `https://${config.S3_MEDIA_BUCKET}.s3.${config.S3_REGION}.amazonaws.com`;
}
