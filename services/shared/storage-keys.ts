import { createHash } from 'node:crypto';

/** The first 128 bits of SHA-256 over the UTF-8 text, in lowercase hex (32 characters). */
function keyHash(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex').slice(0, 32);
}

/**
 * The owner segment of storage keys: `keyHash` over `user:` and the `sub`. Identity providers
 * issue subs with any printable Unicode (`auth0|…`, e-mail addresses, `a/b`, `..`, `%2F`, emoji);
 * raw, those would need escaping that S3 servers and signers disagree on, and would leak user ids
 * into object keys and CDN URLs. The hash is stable (one user's originals share a prefix) and
 * needs no escaping anywhere. The `user:` prefix keeps a sub such as `project:P` off project P's
 * segment. Rows stored before it keep their stored keys (keys are read from the row, never
 * recomputed).
 */
export function ownerKeySegment(userId: string): string {
  return keyHash(`user:${userId}`);
}

/**
 * The tenant segment of storage keys (first segment): `keyHash`
 * over `tenant:` and the tenant id, so a tenant and a user of the same name never share a
 * segment. Every key of a tenant starts with it: one prefix to list, copy or delete a tenant.
 */
export function tenantKeySegment(tenantId: string): string {
  return keyHash(`tenant:${tenantId}`);
}

/** The project segment of storage keys (second segment, in place of the owner's): as above, over `project:` and the id. */
export function projectKeySegment(projectId: string): string {
  return keyHash(`project:${projectId}`);
}

/** `{tenant}/{project or owner}`: the prefix of an original's key (services/shared/media-types.ts `originalKey`). */
export function originalKeyPrefix(scope: { tenantId: string; userId: string; projectId?: string | null }): { tenant: string; owner: string } {
  return { tenant: tenantKeySegment(scope.tenantId), owner: scope.projectId ? projectKeySegment(scope.projectId) : ownerKeySegment(scope.userId) };
}
