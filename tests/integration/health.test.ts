import { freePort } from '../../devstack/ports';
import { startPlatform, type Platform } from '../harness/platform';

describe('health, readiness and the OpenAPI document', () => {
  let p: Platform;
  beforeAll(async () => {
    p = await startPlatform({ METRICS_PORT: String(await freePort()) });
  });
  afterAll(() => p?.stop());

  it('reports live and ready with each dependency checked', async () => {
    expect((await fetch(`${p.api.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${p.api.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', checks: { database: 'ok', temporal: 'ok', s3: 'ok' } });
  });

  it('exposes Prometheus metrics on their own port, including sessions created, and not on the public one', async () => {
    await p.call('metrics-user', '/media/upload-session', { body: { fileName: 'm.png', fileType: 'image/png', fileSize: 10, mediaType: 'POST_IMAGE' } });
    expect(p.api.metricsUrl).toBeDefined();
    expect(new URL(p.api.metricsUrl!).port).toBe(p.config.METRICS_PORT.toString());
    // An Ingress routing / to the API must not publish the metrics.
    expect((await fetch(`${p.api.url}/metrics`)).status).toBe(404);
    const text = await (await fetch(p.api.metricsUrl!)).text();
    expect(text).toMatch(/media_upload_sessions_created_total\{[^}]*media_type="POST_IMAGE"[^}]*\} [1-9]/);
    expect(text).toContain('media_http_request_duration_seconds_bucket');
  });

  it('serves an OpenAPI 3.1 document that lists every route the API answers', async () => {
    const doc: any = await (await fetch(`${p.api.url}/api/v1/openapi.json`)).json();
    expect(doc.openapi).toBe('3.1.0');
    const expected = [
      'post /api/v1/media/upload-session',
      'post /api/v1/media/upload-sessions',
      'post /api/v1/media/{id}/complete',
      'post /api/v1/media/{id}/parts',
      'get /api/v1/media/{id}/parts',
      'get /api/v1/media/{id}',
      'get /api/v1/media',
      'get /api/v1/media/{id}/events',
      'get /api/v1/batches/{id}',
      'delete /api/v1/media/{id}',
      'get /api/v1/media/{id}/text',
    ];
    const documented = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m} ${path}`));
    expect(documented).toEqual(expect.arrayContaining(expected));
    const body = doc.paths['/api/v1/media/upload-session'].post.requestBody.content['application/json'].schema;
    expect(body.required).toEqual(expect.arrayContaining(['fileName', 'fileType', 'fileSize', 'mediaType']));
    expect(body.properties.mediaType.enum).toEqual(['PROFILE_IMAGE', 'POST_IMAGE', 'POST_VIDEO', 'DOCUMENT']);
    const text = doc.paths['/api/v1/media/{id}/text'].get.responses['200'].content['application/json'].schema;
    expect(text.required).toEqual(expect.arrayContaining(['mediaId', 'text', 'sizeBytes', 'truncated', 'pagesRead']));
    // Every documented route exists: an unknown one would answer 404 NOT_FOUND.
    for (const entry of expected) {
      const [method, path] = entry.split(' ');
      const res = await p.call('openapi-user', path!.replace('/api/v1', '').replace('{id}', '00000000-0000-4000-8000-000000000000'), {
        method: method!.toUpperCase(),
        ...(method === 'post' ? { body: {} } : {}),
      });
      expect(res.body?.error?.code).not.toBe('NOT_FOUND');
    }
  });
});
