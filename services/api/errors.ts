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
