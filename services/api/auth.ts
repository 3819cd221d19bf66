import type { RequestHandler } from 'express';
import { createRemoteJWKSet, jwtVerify, type JWTVerifyGetKey } from 'jose';
import type { Config } from '../shared/config';
import { ApiError } from './errors';

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
        if (typeof payload.sub !== 'string' || payload.sub.length === 0 || payload.sub.length > 200) {
          throw new ApiError('UNAUTHENTICATED', 'token has no valid sub claim');
        }
        req.user = { userId: payload.sub };
        next();
      })
      .catch((err: unknown) => next(err instanceof ApiError ? err : new ApiError('UNAUTHENTICATED', 'invalid or expired token')));
  };
}
