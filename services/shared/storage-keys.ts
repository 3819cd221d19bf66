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
