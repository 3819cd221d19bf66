import type { RequestHandler } from 'express';
import { createRemoteJWKSet, jwtVerify, type JWTVerifyGetKey } from 'jose';
import type { Config } from '../shared/config';
import { isWellFormedText } from '../shared/sanitize';
import { ApiError } from './errors';

/** Longest `sub` accepted, in UTF-8 bytes (SPEC §4: any printable Unicode up to 255 bytes). */
export const MAX_SUB_BYTES = 255;
// C0 controls, DEL and C1 controls: not printable, and unsafe in logs and search attributes.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * Why a `sub` claim is not a usable user id, or undefined when it is. Any printable Unicode
 * is fine (`auth0|…`, e-mail addresses, spaces, emoji, `a/b`, `%2F`): storage keys never carry
 * it raw (services/shared/storage-keys.ts).
 */
export function invalidSubReason(sub: string): string | undefined {
  if (Buffer.byteLength(sub, 'utf8') > MAX_SUB_BYTES) return `sub claim is longer than ${MAX_SUB_BYTES} bytes`;
  if (CONTROL.test(sub) || !isWellFormedText(sub)) return 'sub claim has control characters or lone surrogates';
  return undefined;
}

export interface AuthenticatedUser {
  userId: string;
}

declare module 'express-serve-static-core' {
  interface Request {
    user?: AuthenticatedUser;
  }
}

/**
 * Bearer JWT: HS256 with JWT_SECRET (dev), or RS256/ES256 from JWT_JWKS_URL (production);
 * issuer and audience are checked when configured. `sub` is the user id.
 */
export function authenticate(config: Pick<Config, 'JWT_SECRET' | 'JWT_JWKS_URL' | 'JWT_ISSUER' | 'JWT_AUDIENCE'>): RequestHandler {
  const key: Uint8Array | JWTVerifyGetKey = config.JWT_JWKS_URL
    ? createRemoteJWKSet(new URL(config.JWT_JWKS_URL))
    : new TextEncoder().encode(config.JWT_SECRET);
  const algorithms = config.JWT_JWKS_URL ? ['RS256', 'ES256'] : ['HS256'];
  return (req, _res, next) => {
    const header = req.headers.authorization ?? '';
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) return next(new ApiError('UNAUTHENTICATED', 'missing bearer token'));
    const verify = typeof key === 'function'
      ? jwtVerify(match[1]!, key, { algorithms, issuer: config.JWT_ISSUER, audience: config.JWT_AUDIENCE })
      : jwtVerify(match[1]!, key, { algorithms, issuer: config.JWT_ISSUER, audience: config.JWT_AUDIENCE });
    verify
      .then(({ payload }) => {
        if (typeof payload.sub !== 'string' || payload.sub.length === 0) throw new ApiError('UNAUTHENTICATED', 'token has no valid sub claim');
        const invalid = invalidSubReason(payload.sub);
        if (invalid) throw new ApiError('INVALID_TOKEN_SUBJECT', invalid);
        req.user = { userId: payload.sub };
        next();
      })
      .catch((err: unknown) => next(err instanceof ApiError ? err : new ApiError('UNAUTHENTICATED', 'invalid or expired token')));
  };
}
