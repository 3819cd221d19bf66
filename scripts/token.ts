import { SignJWT } from 'jose';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

/** State of `npm run dev`: `.data/dev`, or DEV_DATA_DIR when set (dev, token and the CLI agree). */
export const devDataDir = process.env.DEV_DATA_DIR ?? join(__dirname, '..', '.data', 'dev');

/** Where `npm run dev` keeps the dev JWT secret it generated on first start. */
export const devSecretFile = join(devDataDir, 'jwt-secret');

/** A dev HS256 token for `userId`, with extra `claims` (e.g. `{ tenant: 'acme', projects: ['site-7'] }`). */
export async function mintDevToken(secret: string, userId: string, ttl = '24h', claims: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(userId)
    .setIssuedAt()
    .setExpirationTime(ttl)
    .sign(new TextEncoder().encode(secret));
}

/**
 * `npm run token -- --user <id> [--tenant <id>] [--project <id>]... [--ttl 24h]`: signs with
 * JWT_SECRET, else the dev stack's secret. Tenant and projects go in the default claims
 * (`tenant`, `projects`).
 */
const USAGE = 'usage: npm run token -- --user <id> [--tenant <id>] [--project <id>]... [--ttl 24h]  (needs JWT_SECRET, or a dev stack started once with npm run dev)';

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        user: { type: 'string' },
        tenant: { type: 'string' },
        project: { type: 'string', multiple: true },
        ttl: { type: 'string', default: '24h' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    // An unknown or incomplete option: its one line and the usage, not a stack trace.
    console.error(`${(err as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const secret = process.env.JWT_SECRET ?? (existsSync(devSecretFile) ? readFileSync(devSecretFile, 'utf8').trim() : undefined);
  if (!values.user || !secret) {
    console.error(USAGE);
    process.exit(2);
  }
  const claims = { ...(values.tenant ? { tenant: values.tenant } : {}), ...(values.project?.length ? { projects: values.project } : {}) };
  console.log(await mintDevToken(secret, values.user, values.ttl, claims));
}

if (require.main === module) void main();
