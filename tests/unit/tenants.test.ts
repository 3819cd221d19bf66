import { DEFAULT_TENANT, MAX_PROJECTS, scopeOf } from '../../services/api/auth';
import { ApiError } from '../../services/api/errors';
import { uploadSessionRequest } from '../../services/api/schemas';

const claims = { JWT_TENANT_CLAIM: 'tenant', JWT_PROJECTS_CLAIM: 'projects' };
const codeOf = (payload: Record<string, unknown>, names = claims) => {
  try {
    scopeOf(payload, names);
    return 'accepted';
  } catch (err) {
    return err instanceof ApiError ? `${err.status} ${err.code}` : 'thrown';
  }
};

describe('tenant and projects claims', () => {
  it('defaults to the single tenant and no project when the token has neither claim', () => {
    expect(scopeOf({ sub: 'u1' }, claims)).toEqual({ tenantId: DEFAULT_TENANT, projects: [] });
  });
  it('reads the configured claim names, projects deduplicated', () => {
    const names = { JWT_TENANT_CLAIM: 'https://example.com/org', JWT_PROJECTS_CLAIM: 'sites' };
    expect(scopeOf({ 'https://example.com/org': 'acme', sites: ['s1', 's1', 'sité 2'], tenant: 'ignored' }, names)).toEqual({ tenantId: 'acme', projects: ['s1', 'sité 2'] });
  });
  it.each([
    ['a number', 42],
    ['empty', ''],
    ['over 128 bytes', 'é'.repeat(65)],
    ['a control character', 'ac\nme'],
    ['a lone surrogate', 'ac\ud800me'],
    ['an array', ['acme']],
    ['whitespace only', '   '],
    ['a zero-width space', '\u200b'],
    ['a bidi override inside', 'ac\u202eme'],
    ['a line separator', 'acme\u2028'],
    ['a leading space', ' acme'],
    ['a trailing no-break space', 'acme\u00a0'],
    ['a byte-order mark', '\ufeffacme'],
  ])('refuses a tenant claim that is %s (401 INVALID_TOKEN_TENANT)', (_, tenant) => {
    expect(codeOf({ tenant })).toBe('401 INVALID_TOKEN_TENANT');
  });
  it.each([
    ['a string', 's1'],
    ['null', null],
    ['an object', { s1: true }],
    ['an array with a number', ['s1', 2]],
    ['an array with an empty id', ['']],
    ['an array with a 129-byte id', ['x'.repeat(129)]],
    ['an array with a whitespace-only id', ['s1', ' ']],
    ['an array with a trailing space', ['P ']],
    ['an array with a bidi override', ['\u202e']],
    ['an array with a zero-width space', ['s\u200b1']],
    ['an array with a line separator', ['\u2028']],
    ['too long a list', Array.from({ length: MAX_PROJECTS + 1 }, (_, i) => `p${i}`)],
  ])('refuses a projects claim that is %s (401 INVALID_TOKEN_PROJECTS)', (_, projects) => {
    expect(codeOf({ projects })).toBe('401 INVALID_TOKEN_PROJECTS');
  });
  it('accepts a project id of exactly 128 bytes in a session request, not 129 or a control character', () => {
    const base = { fileName: 'a.pdf', fileType: 'application/pdf', fileSize: 10, mediaType: 'DOCUMENT' };
    expect(uploadSessionRequest.safeParse({ ...base, projectId: 'x'.repeat(128) }).success).toBe(true);
    expect(uploadSessionRequest.safeParse({ ...base, projectId: 'x'.repeat(129) }).success).toBe(false);
    expect(uploadSessionRequest.safeParse({ ...base, projectId: 'p\u0007' }).success).toBe(false);
    expect(uploadSessionRequest.safeParse({ ...base, projectId: 7 }).success).toBe(false);
  });
  it.each([' ', 'P ', ' P', '\u202e', '\u2028', 'P\u200b', '\t'])('refuses the hostile project id %j in a session request', (id) => {
    const base = { fileName: 'a.pdf', fileType: 'application/pdf', fileSize: 10, mediaType: 'DOCUMENT' };
    expect(uploadSessionRequest.safeParse({ ...base, projectId: id }).success).toBe(false);
  });
  it('still accepts inner spaces, accents, path-like text and emoji', () => {
    expect(codeOf({ tenant: 'Acme Corp', projects: ['site 7', 'ü', 'u\u0308', 'a/b', '../x', '%2F', '🏗️'] })).toBe('accepted');
  });
});
