import type { RequestHandler } from 'express';
import { createRemoteJWKSet, jwtVerify, type CryptoKey, type JWTVerifyGetKey } from 'jose';
import { LRUCache } from 'lru-cache';
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
  if (sub.length === 0) return 'sub claim is empty';
  if (Buffer.byteLength(sub, 'utf8') > MAX_SUB_BYTES) return `sub claim is longer than ${MAX_SUB_BYTES} bytes`;
  if (CONTROL.test(sub) || !isWellFormedText(sub)) return 'sub claim has control characters or lone surrogates';
  return undefined;
}

/** Longest tenant or project id accepted, in UTF-8 bytes. */
export const MAX_SCOPE_ID_BYTES = 128;
/** Most project ids one token may grant (bounds the `= ANY(...)` of scoped queries). */
export const MAX_PROJECTS = 1000;
/** The tenant of a token without a tenant claim: today's single-tenant deployments. */
export const DEFAULT_TENANT = 'default';

// Format characters (zero-width U+200B–U+200D, bidi overrides U+202A–U+202E and U+2066–U+2069,
// U+FEFF, soft hyphen) and the line/paragraph separators U+2028/U+2029: invisible, so two ids
// that look the same would differ, and a bidi override makes an id read as another one.
const INVISIBLE = /[\p{Cf}\p{Zl}\p{Zp}]/u;

/**
 * Why a tenant or project id is not usable, or undefined when it is: 1–128 bytes of printable
 * Unicode, without leading or trailing whitespace (so not whitespace only), control, format or
 * separator characters (a name is what an administrator reads; ids that look alike must be alike).
 */
export function invalidScopeIdReason(id: string): string | undefined {
  if (id.length === 0) return 'is empty';
  if (Buffer.byteLength(id, 'utf8') > MAX_SCOPE_ID_BYTES) return `is longer than ${MAX_SCOPE_ID_BYTES} bytes`;
  if (CONTROL.test(id) || !isWellFormedText(id)) return 'has control characters or lone surrogates';
  if (INVISIBLE.test(id)) return 'has invisible (format, bidi or separator) characters';
  if (id.trim() !== id) return 'has leading or trailing whitespace';
  return undefined;
}

export interface AuthenticatedUser {
  userId: string;
  /** From the tenant claim; `default` when the token has none. */
  tenantId: string;
  /** Project ids the token grants (the projects claim); empty when it has none. */
  projects: string[];
}

type ScopeClaims = Pick<Config, 'JWT_TENANT_CLAIM' | 'JWT_PROJECTS_CLAIM'>;

/**
 * The tenant and projects of a verified payload. Throws 401 INVALID_TOKEN_TENANT (claim not a
 * string, empty, over 128 bytes, control characters) or INVALID_TOKEN_PROJECTS (not an array
 * of such strings, or more than 1000 of them).
 */
export function scopeOf(payload: Record<string, unknown>, claims: ScopeClaims): Pick<AuthenticatedUser, 'tenantId' | 'projects'> {
  const tenant = payload[claims.JWT_TENANT_CLAIM];
  if (tenant !== undefined && typeof tenant !== 'string') throw new ApiError('INVALID_TOKEN_TENANT', `${claims.JWT_TENANT_CLAIM} claim is not a string`);
  const tenantInvalid = tenant === undefined ? undefined : invalidScopeIdReason(tenant);
  if (tenantInvalid) throw new ApiError('INVALID_TOKEN_TENANT', `${claims.JWT_TENANT_CLAIM} claim ${tenantInvalid}`);
  // Absent means no project; null or any other non-array is a token the issuer got wrong.
  const projects = claims.JWT_PROJECTS_CLAIM in payload ? payload[claims.JWT_PROJECTS_CLAIM] : [];
  if (!Array.isArray(projects) || !projects.every((p): p is string => typeof p === 'string')) {
    throw new ApiError('INVALID_TOKEN_PROJECTS', `${claims.JWT_PROJECTS_CLAIM} claim is not an array of strings`);
  }
  if (projects.length > MAX_PROJECTS) throw new ApiError('INVALID_TOKEN_PROJECTS', `${claims.JWT_PROJECTS_CLAIM} claim lists more than ${MAX_PROJECTS} projects`);
  for (const project of projects) {
    const invalid = invalidScopeIdReason(project);
    if (invalid) throw new ApiError('INVALID_TOKEN_PROJECTS', `a project id of the ${claims.JWT_PROJECTS_CLAIM} claim ${invalid}`);
  }
  return { tenantId: tenant ?? DEFAULT_TENANT, projects: [...new Set(projects)] };
}

declare module 'express-serve-static-core' {
  interface Request {
    user?: AuthenticatedUser;
  }
}

/** Verified tokens remembered per API process (a client sends the same token with every call of an upload). */
export const VERIFIED_TOKEN_CACHE_SIZE = 10_000;
/**
 * Longest a verified token is remembered, ms. Expiry is never outlived (an entry lives at most
 * until the token's `exp`); the cap bounds how long a token signed by a key the identity
 * provider has since removed from its JWKS is still accepted.
 */
export const VERIFIED_TOKEN_TTL_MS = 60_000;

/**
 * Bearer JWT: HS256 with JWT_SECRET (dev), or RS256/ES256 from JWT_JWKS_URL (production);
 * issuer and audience are checked when configured. `sub` is the user id; the tenant and the
 * granted projects come from JWT_TENANT_CLAIM and JWT_PROJECTS_CLAIM (see `scopeOf`).
 * A token that passed is remembered (the exact token string, until its `exp`, at most
 * VERIFIED_TOKEN_TTL_MS): its next requests skip the signature check, a WebCrypto job on the
 * libuv thread pool and a hop of the event loop per request. Rejections are not remembered.
 */
export function authenticate(config: Pick<Config, 'JWT_SECRET' | 'JWT_JWKS_URL' | 'JWT_ISSUER' | 'JWT_AUDIENCE'> & ScopeClaims): RequestHandler {
  // The HS256 secret is imported into a CryptoKey once: given raw bytes, jose imports them
  // again on every verification (a WebCrypto importKey per request).
  const key: Promise<CryptoKey> | JWTVerifyGetKey = config.JWT_JWKS_URL
    ? createRemoteJWKSet(new URL(config.JWT_JWKS_URL))
    : crypto.subtle.importKey('raw', new TextEncoder().encode(config.JWT_SECRET), { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']);
  const algorithms = config.JWT_JWKS_URL ? ['RS256', 'ES256'] : ['HS256'];
  const verified = new LRUCache<string, AuthenticatedUser>({ max: VERIFIED_TOKEN_CACHE_SIZE, ttl: VERIFIED_TOKEN_TTL_MS });
  return (req, _res, next) => {
    const header = req.headers.authorization ?? '';
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) return next(new ApiError('UNAUTHENTICATED', 'missing bearer token'));
    const token = match[1]!;
    const known = verified.get(token);
    if (known) {
      req.user = known;
      return next();
    }
    const options = { algorithms, issuer: config.JWT_ISSUER, audience: config.JWT_AUDIENCE };
    const verify = typeof key === 'function' ? jwtVerify(token, key, options) : key.then((secret) => jwtVerify(token, secret, options));
    verify
      .then(({ payload }) => {
        if (typeof payload.sub !== 'string') throw new ApiError('UNAUTHENTICATED', 'token has no sub claim');
        const invalid = invalidSubReason(payload.sub);
        if (invalid) throw new ApiError('INVALID_TOKEN_SUBJECT', invalid);
        req.user = { userId: payload.sub, ...scopeOf(payload, config) };
        // Until exp (seconds since the epoch), never past it; a token without exp for the cap.
        const ttl = payload.exp === undefined ? VERIFIED_TOKEN_TTL_MS : Math.min(VERIFIED_TOKEN_TTL_MS, payload.exp * 1000 - Date.now());
        if (ttl > 0) verified.set(token, req.user, { ttl });
        next();
      })
      .catch((err: unknown) => next(err instanceof ApiError ? err : new ApiError('UNAUTHENTICATED', 'invalid or expired token')));
  };
}
