import { createHash } from 'node:crypto';
import { planUpload, partLength } from '../../services/api/upload-sessions';
import { detectMimeType, matchesDeclaredType } from '../../services/shared/magic-bytes';
import { originalKey } from '../../services/shared/media-types';
import { originalKeyPrefix, ownerKeySegment, projectKeySegment, tenantKeySegment } from '../../services/shared/storage-keys';
import { loadConfig, loadTemporalConfig } from '../../services/shared/config';
import { temporalConnectionOptions } from '../../services/shared/temporal';
import { uploadSessionRequest } from '../../services/api/schemas';

const MiB = 1024 * 1024;

describe('planUpload', () => {
  it('uses one PUT up to the threshold and parts above it', () => {
    expect(planUpload(8 * MiB, 8 * MiB, 8 * MiB)).toEqual({ multipart: false, partSize: 8 * MiB, partCount: 1 });
    expect(planUpload(8 * MiB + 1, 8 * MiB, 8 * MiB)).toEqual({ multipart: true, partSize: 8 * MiB, partCount: 2 });
  });
  it('grows the part size so that a 5 GiB video needs at most 10,000 parts', () => {
    const plan = planUpload(5 * 1024 * MiB, 8 * MiB, 5 * MiB);
    expect(plan.partCount).toBeLessThanOrEqual(10_000);
    const huge = planUpload(100 * 1024 * MiB, 8 * MiB, 5 * MiB);
    expect(huge.partCount).toBeLessThanOrEqual(10_000);
    expect(huge.partSize % MiB).toBe(0);
  });
  it('gives the last part the remainder', () => {
    const row = { fileSize: 11 * MiB, partSize: 5 * MiB, partCount: 3 };
    expect([1, 2, 3].map((n) => partLength(row, n))).toEqual([5 * MiB, 5 * MiB, MiB]);
  });
});

describe('content sniffing', () => {
  it.each([
    [[0xff, 0xd8, 0xff, 0xe0], 'image/jpeg'],
    [[0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'image/png'],
    [[...Buffer.from('GIF89a')], 'image/gif'],
    [[...Buffer.from('RIFF'), 0, 0, 0, 0, ...Buffer.from('WEBP')], 'image/webp'],
    [[0x1a, 0x45, 0xdf, 0xa3], 'video/webm'],
    [[0, 0, 0, 0x20, ...Buffer.from('ftypisom')], 'video/mp4'],
    [[0, 0, 0, 0x14, ...Buffer.from('ftypqt  ')], 'video/quicktime'],
    [[...Buffer.from('<html>')], undefined],
  ])('detects %j as %s', (bytes, mime) => {
    expect(detectMimeType(Uint8Array.from(bytes as number[]))).toBe(mime);
  });
  it('treats MP4 and QuickTime as one container family and nothing else', () => {
    expect(matchesDeclaredType('video/mp4', 'video/quicktime')).toBe(true);
    expect(matchesDeclaredType('image/jpeg', 'image/png')).toBe(false);
    expect(matchesDeclaredType('image/jpeg', undefined)).toBe(false);
  });
});

describe('storage keys', () => {
  it('follows {tenant}/{owner}/{mediaType}/{timestamp}-{uuid}.{ext} with hashed segments', () => {
    const prefix = originalKeyPrefix({ tenantId: 'default', userId: 'user 1' });
    expect(prefix.owner).toBe(ownerKeySegment('user 1'));
    expect(prefix.tenant).toMatch(/^[0-9a-f]{32}$/);
    const key = originalKey('POST_VIDEO', prefix, '0f8e', 'video/quicktime', new Date(1700000000000));
    expect(key).toBe(`${prefix.tenant}/${prefix.owner}/post_video/1700000000000-0f8e.mov`);
  });
  it('puts a project upload under the project segment, distinct from a user or tenant of the same name', () => {
    const inProject = originalKeyPrefix({ tenantId: 'acme', userId: 'u1', projectId: 'site-7' });
    expect(inProject.owner).toBe(projectKeySegment('site-7'));
    expect(inProject.owner).not.toBe(ownerKeySegment('site-7'));
    expect(tenantKeySegment('site-7')).not.toBe(projectKeySegment('site-7'));
    // A sub spelled like a project's or tenant's hashed input must not land on that segment.
    expect(ownerKeySegment('project:site-7')).not.toBe(projectKeySegment('site-7'));
    expect(ownerKeySegment('tenant:site-7')).not.toBe(tenantKeySegment('site-7'));
    expect(ownerKeySegment('user 1')).toBe(createHash('sha256').update('user:user 1', 'utf8').digest('hex').slice(0, 32));
    expect(originalKeyPrefix({ tenantId: 'acme', userId: 'u1' }).tenant).toBe(inProject.tenant);
    expect(originalKeyPrefix({ tenantId: 'other', userId: 'u1' }).tenant).not.toBe(inProject.tenant);
  });
  it('refuses a segment that is not key-safe (a raw user or tenant id)', () => {
    expect(() => originalKey('POST_IMAGE', { tenant: 'abc', owner: "o'brien@example.com" }, '0f8e', 'image/jpeg', new Date())).toThrow(/key-safe/);
    expect(() => originalKey('POST_IMAGE', { tenant: 'Acme Corp', owner: 'abc' }, '0f8e', 'image/jpeg', new Date())).toThrow(/key-safe/);
  });
});

describe('request validation', () => {
  const valid = { fileName: 'a.jpg', fileType: 'image/jpeg', fileSize: 10, mediaType: 'POST_IMAGE' };
  it.each([
    ['../etc/passwd'],
    ['a\u0000b.jpg'],
    ['evil\u202egpj.exe'],
    ['x'.repeat(256)],
    ['..'],
  ])('refuses the file name %j', (fileName) => {
    expect(uploadSessionRequest.safeParse({ ...valid, fileName }).success).toBe(false);
  });
  it('accepts hex or base64 SHA-256 and stores base64', () => {
    const hex = 'a'.repeat(64);
    expect(uploadSessionRequest.parse({ ...valid, checksumSha256: hex }).checksumSha256).toBe(Buffer.from(hex, 'hex').toString('base64'));
  });
  it('refuses unknown fields', () => {
    expect(uploadSessionRequest.safeParse({ ...valid, admin: true }).success).toBe(false);
  });
});

describe('config', () => {
  it('applies the documented defaults', () => {
    const c = loadConfig({ DATABASE_URL: 'postgres://x', JWT_SECRET: 's' });
    expect(c).toMatchObject({ PORT: 8080, UPLOAD_URL_TTL_SECONDS: 900, CONFIRM_GRACE_SECONDS: 300, MULTIPART_THRESHOLD_BYTES: 8 * MiB, PART_SIZE_BYTES: 8 * MiB, S3_INCOMING_BUCKET: 'incoming' });
  });
  it('names every missing or bad setting in one error', () => {
    expect(() => loadConfig({ PART_SIZE_BYTES: '1024' })).toThrow(/DATABASE_URL[\s\S]*PART_SIZE_BYTES/);
    expect(() => loadConfig({ DATABASE_URL: 'postgres://x' })).toThrow(/JWT_SECRET/);
  });
  it('drains 1 s of the 20 s shutdown grace time unless set, and refuses a drain longer than the grace', () => {
    expect(loadConfig({ DATABASE_URL: 'postgres://x', JWT_SECRET: 's' })).toMatchObject({ SHUTDOWN_GRACE_SECONDS: 20, SHUTDOWN_DRAIN_SECONDS: 1 });
    expect(() => loadConfig({ DATABASE_URL: 'postgres://x', JWT_SECRET: 's', SHUTDOWN_GRACE_SECONDS: '2', SHUTDOWN_DRAIN_SECONDS: '3' })).toThrow(/SHUTDOWN_DRAIN_SECONDS: .*must not exceed/);
  });
  it('serves the API metrics on their own port, 9464 unless set', () => {
    const c = loadConfig({ DATABASE_URL: 'postgres://x', JWT_SECRET: 's' });
    expect(c.METRICS_PORT).toBe(9464);
    expect(c.METRICS_PORT).not.toBe(c.PORT);
  });
});

describe('Temporal connection options', () => {
  const cloud = { TEMPORAL_ADDRESS: 'vpce-0abc.us-east-1.vpce.amazonaws.com:7233', TEMPORAL_NAMESPACE: 'media-prod.a1b2c', TEMPORAL_API_KEY: 'key' };
  it('checks the server certificate against TEMPORAL_TLS_SERVER_NAME when set (PrivateLink)', () => {
    const options = temporalConnectionOptions(loadTemporalConfig({ ...cloud, TEMPORAL_TLS_SERVER_NAME: 'us-east-1.aws.api.temporal.io' }));
    expect(options.tls?.serverNameOverride).toBe('us-east-1.aws.api.temporal.io');
    expect(options.apiKey).toBe('key');
    expect(options.metadata).toEqual({ 'temporal-namespace': 'media-prod.a1b2c' });
  });
  it('uses TLS with the address host when only an API key is set, and plaintext with nothing', () => {
    expect(temporalConnectionOptions(loadTemporalConfig(cloud)).tls).toEqual({ clientCertPair: undefined, serverRootCACertificate: undefined, serverNameOverride: undefined });
    expect(temporalConnectionOptions(loadTemporalConfig({ TEMPORAL_ADDRESS: 'temporal:7233' })).tls).toBeUndefined();
  });
});
