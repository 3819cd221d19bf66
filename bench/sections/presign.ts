import { PutObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { microsPerCall, ratio } from '../measure';
import type { BenchContext } from '../platform';
import type { Row } from '../report';
import type { Section } from '../section';

export interface PresignOptions {
  /** URLs per variant, signed in `rounds` alternating rounds so drift hits both alike. */
  urls: number;
  rounds: number;
  warmup: number;
}

const defaults: PresignOptions = { urls: 5000, rounds: 5, warmup: 300 };
const contentType = 'image/jpeg';
const body = Buffer.from('\xff\xd8\xff\xe0 presign bench', 'latin1');

/**
 * Cost per presigned PUT URL: our Storage.presignPut (a prepared S3RequestPresigner, no
 * middleware stack) against getSignedUrl + PutObjectCommand on the same client, with the same
 * signed headers. Both URLs are first checked to upload for real.
 */
export async function measurePresign(ctx: BenchContext, options: Partial<PresignOptions> = {}): Promise<Row[]> {
  const o = { ...defaults, ...options };
  const { storage } = ctx;
  const bucket = ctx.config.S3_INCOMING_BUCKET;
  const expiresIn = 900;
  const ours = (i: number) => storage.presignPut(bucket, `bench/presign/ours-${i}.jpg`, { contentType, contentLength: body.length, expiresIn }).then((s) => s.url);
  const sdk = (i: number) =>
    getSignedUrl(storage.client, new PutObjectCommand({ Bucket: bucket, Key: `bench/presign/sdk-${i}.jpg`, ContentType: contentType, ContentLength: body.length }), {
      expiresIn,
      signableHeaders: new Set(['content-type', 'content-length']),
    });

  const checks: string[] = [];
  for (const [name, sign] of [['ours', ours], ['getSignedUrl', sdk]] as const) {
    const res = await fetch(await sign(-1), { method: 'PUT', body, headers: { 'content-type': contentType } });
    await res.arrayBuffer();
    checks.push(`${name} ${res.status}`);
  }

  await microsPerCall(o.warmup, ours);
  await microsPerCall(o.warmup, sdk);
  const per = Math.ceil(o.urls / o.rounds);
  let oursTotal = 0;
  let sdkTotal = 0;
  for (let r = 0; r < o.rounds; r++) {
    oursTotal += await microsPerCall(per, (i) => ours(r * per + i));
    sdkTotal += await microsPerCall(per, (i) => sdk(r * per + i));
  }
  const oursUs = oursTotal / o.rounds;
  const sdkUs = sdkTotal / o.rounds;
  return [
    { metric: 'load', value: `${per * o.rounds} URLs each, sequential, ${o.rounds} alternating rounds; real PUT: ${checks.join(', ')}` },
    { metric: 'Storage.presignPut (prepared signer)', value: `${oursUs.toFixed(1)} µs/URL`, target: '~40 µs (§11 baseline, bare SignatureV4)' },
    { metric: 'getSignedUrl(PutObjectCommand)', value: `${sdkUs.toFixed(1)} µs/URL`, target: '~500 µs (§11 baseline)' },
    { metric: 'ratio getSignedUrl / presignPut', value: ratio(sdkUs, oursUs) },
  ];
}

export const presignSection: Section = { name: 'Presign cost per URL', run: (ctx) => measurePresign(ctx) };
