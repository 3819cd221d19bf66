import { createHash } from 'node:crypto';

/**
 * The owner segment of storage keys: the first 128 bits of SHA-256 over the UTF-8 `sub`, in
 * lowercase hex (32 characters). Identity providers issue subs with any printable Unicode
 * (`auth0|…`, e-mail addresses, `a/b`, `..`, `%2F`, emoji); raw, those would need escaping that
 * S3 servers and signers disagree on, and would leak user ids into object keys and CDN URLs.
 * The hash is stable (one user's originals share a prefix) and needs no escaping anywhere.
 */
export function ownerKeySegment(userId: string): string {
  return createHash('sha256').update(userId, 'utf8').digest('hex').slice(0, 32);
}

/**
 * The tenant segment of storage keys (first segment): the same hashing as `ownerKeySegment`,
 * over `tenant:` and the tenant id, so a tenant and a user of the same name never share a
 * segment. Every key of a tenant starts with it: one prefix to list, copy or delete a tenant.
 */
export function tenantKeySegment(tenantId: string): string {
  return ownerKeySegment(`tenant:${tenantId}`);
}

/** The project segment of storage keys (second segment, in place of the owner's): as above, over `project:` and the id. */
export function projectKeySegment(projectId: string): string {
  return ownerKeySegment(`project:${projectId}`);
}

/** `{tenant}/{project or owner}`: the prefix of an original's key (services/shared/media-types.ts `originalKey`). */
export function originalKeyPrefix(scope: { tenantId: string; userId: string; projectId?: string | null }): { tenant: string; owner: string } {
  return { tenant: tenantKeySegment(scope.tenantId), owner: scope.projectId ? projectKeySegment(scope.projectId) : ownerKeySegment(scope.userId) };
}
