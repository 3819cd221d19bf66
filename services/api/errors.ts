import { QUERY_READ_TIMEOUT } from '../shared/db/data-source';
/** Every error the API answers with: a stable code and its HTTP status. */
export const ERRORS = {
  VALIDATION_FAILED: 400,
  INVALID_JSON: 400,
  INVALID_CURSOR: 400,
  UNSUPPORTED_MEDIA_TYPE: 415,
  UNSUPPORTED_CONTENT_TYPE: 415,
  FILE_TOO_LARGE: 413,
  PAYLOAD_TOO_LARGE: 413,
  QUOTA_EXCEEDED: 413,
  UNAUTHENTICATED: 401,
  /** A valid token whose `sub` is no usable user id (empty, over 255 bytes, control characters). */
  INVALID_TOKEN_SUBJECT: 401,
  /** A valid token whose tenant claim is no usable tenant id (not a string, empty, over 128 bytes, control characters). */
  INVALID_TOKEN_TENANT: 401,
  /** A valid token whose projects claim is not an array of usable project ids. */
  INVALID_TOKEN_PROJECTS: 401,
  /** The token does not grant the project (a session's or a listing's `projectId`). */
  PROJECT_FORBIDDEN: 403,
  /** A project member may read another member's media, but only its uploader may change it. */
  NOT_UPLOADER: 403,
  MEDIA_NOT_FOUND: 404,
  BATCH_NOT_FOUND: 404,
  VARIANT_NOT_FOUND: 404,
  TEXT_NOT_FOUND: 404,
  NOT_FOUND: 404,
  INVALID_STATE: 409,
  UPLOAD_NOT_FOUND: 409,
  PARTS_MISMATCH: 409,
  IDEMPOTENCY_CONFLICT: 409,
  MEDIA_NOT_READY: 409,
  ALREADY_ATTACHED: 409,
  RATE_LIMITED: 429,
  /** This API process is saturated (database pool, workflow start slots); another try soon succeeds. */
  OVERLOADED: 503,
  /** Temporal, S3 or PostgreSQL is down, slow or throttling. */
  DEPENDENCY_UNAVAILABLE: 503,
  INTERNAL: 500,
} as const;

export type ErrorCode = keyof typeof ERRORS;

export class ApiError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.status = ERRORS[code];
  }
}

export function errorBody(code: ErrorCode, message: string, details?: Record<string, unknown>) {
  return { error: { code, message, ...(details ? { details } : {}) } };
}

/** Retry-After (seconds) sent with each 503 code: a saturated process frees up sooner than a dependency recovers. */
export const RETRY_AFTER_SECONDS: Partial<Record<ErrorCode, number>> = { OVERLOADED: 2, DEPENDENCY_UNAVAILABLE: 5 };

type SdkError = { name?: string; code?: string | number; $metadata?: { httpStatusCode?: number }; message?: string; cause?: unknown };

/**
 * The 503 an SDK error stands for, or undefined when it is not a dependency fault (a bug: 500).
 * - pg pool exhaustion (`timeout exceeded when trying to connect`), too many connections,
 *   statement timeouts → OVERLOADED;
 * - connection refused/reset, PostgreSQL restarting, Temporal gRPC errors (UNAVAILABLE,
 *   DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED), S3 5xx and throttling (SlowDown, 429), an S3 call past
 *   S3_API_TIMEOUT_MS (`TimeoutError`), a statement PostgreSQL did not answer within
 *   DB_QUERY_TIMEOUT_MS (pg's `Query read timeout`) → DEPENDENCY_UNAVAILABLE.
 */
export function dependencyFault(err: unknown): ApiError | undefined {
  if (!err || typeof err !== 'object') return undefined;
  const e = err as SdkError;
  const message = e.message ?? '';
  if (/timeout exceeded when trying to connect/.test(message) || e.code === '53300' || e.code === '57014') {
    return new ApiError('OVERLOADED', 'the service is saturated; retry after the Retry-After seconds');
  }
  const outage =
    ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', '57P01', '57P03', '08006', '08001'].includes(String(e.code ?? '')) ||
    ['ServiceError', 'ConnectionError', 'TimeoutError', 'SlowDown', 'ThrottlingException', 'RequestTimeout', 'ServiceUnavailable'].includes(
      e.name ?? '',
    ) ||
    (e.$metadata?.httpStatusCode ?? 0) >= 500 ||
    e.$metadata?.httpStatusCode === 429 ||
    /ECONNREFUSED|Connection terminated|connect ETIMEDOUT|UNAVAILABLE|DEADLINE_EXCEEDED|RESOURCE_EXHAUSTED/.test(message) ||
    // Not OVERLOADED like a server-side statement timeout (57014): the server did not answer at
    // all (stopped, cut off), which no spare capacity in this process would have changed.
    message === QUERY_READ_TIMEOUT;
  return outage ? dependencyError() : undefined;
}

export function isDependencyFault(err: unknown): boolean {
  return dependencyFault(err) !== undefined;
}

export function dependencyError(): ApiError {
  return new ApiError('DEPENDENCY_UNAVAILABLE', 'a backing service is unavailable; retry shortly');
}
