import { z } from 'zod';
import type { RouteSpec } from './routes';

const jsonSchema = (schema: z.ZodType) => z.toJSONSchema(schema, { target: 'draft-2020-12', io: 'input', unrepresentable: 'any' });

/** OpenAPI 3.1, generated from the same route table and zod schemas the API runs on. */
export function openApiDocument(routes: RouteSpec[], version: string) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const path = `/api/v1${route.path.replace(/:(\w+)/g, '{$1}')}`;
    const params = [...route.path.matchAll(/:(\w+)/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string', format: 'uuid' } }));
    if (route.query) {
      const q = jsonSchema(route.query) as { properties?: Record<string, unknown> };
      for (const [name, schema] of Object.entries(q.properties ?? {})) params.push({ name, in: 'query', required: false, schema } as never);
    }
    if (route.path === '/media/upload-session') {
      params.push({ name: 'Idempotency-Key', in: 'header', required: false, schema: { type: 'string' } } as never);
    }
    (paths[path] ??= {})[route.method] = {
      summary: route.summary,
      security: [{ bearer: [] }],
      parameters: params.length ? params : undefined,
      requestBody: route.request ? { required: true, content: { 'application/json': { schema: jsonSchema(route.request) } } } : undefined,
      responses: Object.fromEntries(
        Object.entries({ ...route.responses, 401: { description: 'missing or invalid token (UNAUTHENTICATED), or a sub that is no usable user id (INVALID_TOKEN_SUBJECT)' } } as RouteSpec['responses']).map(([code, r]) => [
          code,
          { description: r.description, ...(r.schema ? { content: { 'application/json': { schema: jsonSchema(r.schema) } } } : {}) },
        ]),
      ),
    };
  }
  for (const [path, summary] of [
    ['/healthz', 'Liveness'],
    ['/readyz', 'Readiness: database, Temporal and S3 reachable'],
  ] as const) {
    paths[path] = { get: { summary, responses: { 200: { description: 'ok' }, 503: { description: 'not ready' } } } };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Media Upload Platform API', version },
    servers: [{ url: '/' }],
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
    paths,
  };
}
