import { Storage } from '../../services/shared/storage';

describe('Storage presigning', () => {
  const storage = new Storage({ S3_ENDPOINT: 'http://127.0.0.1:9000', S3_REGION: 'us-east-1', S3_FORCE_PATH_STYLE: true }, { accessKeyId: 'AK', secretAccessKey: 'SK' });
  afterAll(() => storage.client.destroy());

  it('signs content-type, content-length and the checksum into a PUT URL', async () => {
    const signed = await storage.presignPut('incoming', 'a/b c.jpg', { contentType: 'image/jpeg', contentLength: 42, checksumSha256: 'x'.repeat(43) + '=', expiresIn: 300 });
    const url = new URL(signed.url);
    expect(url.pathname).toBe('/incoming/a/b%20c.jpg');
    expect(url.searchParams.get('X-Amz-SignedHeaders')).toBe('content-length;content-type;host;x-amz-checksum-sha256');
    expect(url.searchParams.get('X-Amz-Expires')).toBe('300');
    expect(signed.headers).toEqual({ 'content-type': 'image/jpeg', 'x-amz-checksum-sha256': 'x'.repeat(43) + '=' });
    expect(url.searchParams.has('x-amz-checksum-crc32')).toBe(false);
  });

  it('addresses the part of a multipart upload', async () => {
    const signed = await storage.presignPart('incoming', 'k', { uploadId: 'up-1', partNumber: 7, contentLength: 5, expiresIn: 60 });
    const url = new URL(signed.url);
    expect(url.searchParams.get('partNumber')).toBe('7');
    expect(url.searchParams.get('uploadId')).toBe('up-1');
    expect(url.searchParams.get('X-Amz-SignedHeaders')).toBe('content-length;host');
  });
});
