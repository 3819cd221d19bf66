import { CreateBucketCommand, HeadBucketCommand, PutBucketCorsCommand, PutBucketPolicyCommand } from '@aws-sdk/client-s3';
import { Storage } from '../services/shared/storage';
import { buckets, devS3Credentials } from './credentials';

/** Creates the incoming and media buckets with their CORS rules and the media bucket's read policy. */
export async function createBuckets(endpoint: string, corsOrigins: string[]): Promise<void> {
  const storage = new Storage({ S3_ENDPOINT: endpoint, S3_REGION: 'us-east-1', S3_FORCE_PATH_STYLE: true }, devS3Credentials);
  try {
    for (const bucket of Object.values(buckets)) {
      const exists = await storage.client.send(new HeadBucketCommand({ Bucket: bucket })).then(() => true, () => false);
      if (!exists) await storage.client.send(new CreateBucketCommand({ Bucket: bucket }));
    }
    // Browsers PUT straight to the incoming bucket and read the ETag of each part.
    await storage.client.send(
      new PutBucketCorsCommand({
        Bucket: buckets.incoming,
        CORSConfiguration: {
          CORSRules: [{ AllowedOrigins: corsOrigins, AllowedMethods: ['PUT', 'GET', 'HEAD'], AllowedHeaders: ['*'], ExposeHeaders: ['ETag'], MaxAgeSeconds: 3600 }],
        },
      }),
    );
    await storage.client.send(
      new PutBucketCorsCommand({
        Bucket: buckets.media,
        CORSConfiguration: { CORSRules: [{ AllowedOrigins: ['*'], AllowedMethods: ['GET', 'HEAD'], AllowedHeaders: ['*'], MaxAgeSeconds: 3600 }] },
      }),
    );
    // The media bucket stands in for the CDN: anonymous reads, as CloudFront would serve it.
    // The incoming bucket stays private.
    await storage.client.send(
      new PutBucketPolicyCommand({
        Bucket: buckets.media,
        Policy: JSON.stringify({
          Version: '2012-10-17',
          Statement: [{ Effect: 'Allow', Principal: '*', Action: ['s3:GetObject'], Resource: [`arn:aws:s3:::${buckets.media}/*`] }],
        }),
      }),
    );
  } finally {
    storage.client.destroy();
  }
}
