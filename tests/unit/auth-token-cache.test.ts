import type { NextFunction, Request, Response } from 'express';
import { SignJWT } from 'jose';
import { setTimeout as delay } from 'node:timers/promises';
import { authenticate } from '../../services/api/auth';
import { ApiError } from '../../services/api/errors';

const secret = 'unit-test-secret-of-at-least-32-bytes!!';
const config = { JWT_SECRET: secret, JWT_JWKS_URL: undefined, JWT_ISSUER: undefined, JWT_AUDIENCE: undefined, JWT_TENANT_CLAIM: 'tenant', JWT_PROJECTS_CLAIM: 'projects' };

async function token(sub: string, expiresInSeconds: number): Promise<string> {
  return new SignJWT({ tenant: 'acme' })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setExpirationTime(Math.floor(Date.now() / 1000) + expiresInSeconds)
    .sign(new TextEncoder().encode(secret));
}

/** Runs the middleware on one request; resolves with what it passed to next() and the request. */
function run(middleware: ReturnType<typeof authenticate>, bearer: string): Promise<{ err: unknown; req: Request }> {
  const req = { headers: { authorization: `Bearer ${bearer}` } } as Request;
  return new Promise((resolve) => {
    const next: NextFunction = (err?: unknown) => resolve({ err, req });
    void middleware(req, {} as Response, next);
  });
}

describe('verified-token cache of authenticate()', () => {
  afterEach(() => jest.restoreAllMocks());

  it('checks a token signature once, then answers its next requests from the cache with the same user', async () => {
    const middleware = authenticate(config);
    const verify = jest.spyOn(globalThis.crypto.subtle, 'verify');
    const t = await token('user-1', 3600);
    const first = await run(middleware, t);
    const second = await run(middleware, t);
    expect(first.err).toBeUndefined();
    expect(second.err).toBeUndefined();
    expect(second.req.user).toEqual({ userId: 'user-1', tenantId: 'acme', projects: [] });
    expect(verify).toHaveBeenCalledTimes(1);
    // Another token is checked on its own.
    expect((await run(middleware, await token('user-2', 3600))).req.user?.userId).toBe('user-2');
    expect(verify).toHaveBeenCalledTimes(2);
  });

  it('never outlives a token: after its exp the cached token answers 401', async () => {
    const middleware = authenticate(config);
    const t = await token('user-3', 2);
    expect((await run(middleware, t)).err).toBeUndefined();
    // exp has a resolution of one second: wait until it has certainly passed.
    const exp = JSON.parse(Buffer.from(t.split('.')[1]!, 'base64url').toString()).exp as number;
    await delay(exp * 1000 - Date.now() + 50);
    const late = await run(middleware, t);
    expect(late.err).toBeInstanceOf(ApiError);
    expect((late.err as ApiError).code).toBe('UNAUTHENTICATED');
  });

  it('does not remember a rejection or a tampered copy of a remembered token', async () => {
    const middleware = authenticate(config);
    const t = await token('user-4', 3600);
    expect((await run(middleware, t)).err).toBeUndefined();
    const [h, p, sig] = t.split('.');
    const tampered = `${h}.${p}.${sig!.slice(0, -2)}${sig!.endsWith('AA') ? 'BB' : 'AA'}`;
    for (let i = 0; i < 2; i++) expect(((await run(middleware, tampered)).err as ApiError).code).toBe('UNAUTHENTICATED');
    expect((await run(middleware, t)).err).toBeUndefined();
  });
});
