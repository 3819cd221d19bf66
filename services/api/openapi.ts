import { z } from 'zod';
import { ERRORS, type ErrorCode } from './errors';
import type { RouteResponse, RouteSpec } from './routes';
import { errorResponseWith } from './schemas';

/** Requests as a client sends them (defaults optional); responses as the API writes them (no other fields). */
const jsonSchema = (schema: z.ZodType, io: 'input' | 'output') => z.toJSONSchema(schema, { target: 'draft-2020-12', io, unrepresentable: 'any' });

const retryAfter = {
  'Retry-After': { description: 'Seconds to wait before trying again', schema: { type: 'integer', minimum: 1 } },
};

/** Every code the API answers with this status (the load-shedding codes too, as ERRORS grows). */
const codesWithStatus = (status: number) => (Object.keys(ERRORS) as ErrorCode[]).filter((code) => ERRORS[code] === status);

/**
 * Responses every API route may give besides its own: no or a bad token, a backing service
 * down or overloaded (with Retry-After), a body that is not JSON or too large, rate limiting.
 */
function commonResponses(route: RouteSpec): Record<number, RouteResponse> {
  const common: Record<number, RouteResponse> = {
    401: {
      description: 'Missing, invalid or expired bearer token, or a sub, tenant or projects claim that is not usable',
      codes: ['UNAUTHENTICATED', 'INVALID_TOKEN_SUBJECT', 'INVALID_TOKEN_TENANT', 'INVALID_TOKEN_PROJECTS'],
    },
    500: { description: 'Unexpected error (logged; no internals in the body)', codes: ['INTERNAL'] },
    503: { description: 'A backing service is unavailable or overloaded; retry after Retry-After seconds', codes: codesWithStatus(503) as [ErrorCode, ...ErrorCode[]] },
  };
  if (route.request) {
    common[400] = { description: 'The body is not valid JSON, or not a valid request', codes: ['INVALID_JSON', 'VALIDATION_FAILED'] };
    common[413] = { description: 'The request body is too large', codes: ['PAYLOAD_TOO_LARGE'] };
    common[415] = { description: 'The body is not application/json', codes: ['UNSUPPORTED_CONTENT_TYPE'] };
  }
  if (route.rateLimited) common[429] = { description: 'Too many upload sessions; retry after Retry-After seconds', codes: ['RATE_LIMITED'] };
  return common;
}

/** A route's own response and the common one of the same status, as one (codes joined). */
function merge(own: RouteResponse | undefined, common: RouteResponse | undefined): RouteResponse {
  if (!own || !common) return (own ?? common)!;
  if (!('codes' in own) || !('codes' in common)) return own;
  return { description: own.description, codes: [...new Set([...own.codes, ...common.codes])] as [ErrorCode, ...ErrorCode[]] };
}

function responseObject(status: number, response: RouteResponse) {
  if ('codes' in response) {
    return {
      description: `${response.description} (${response.codes.join(', ')})`,
      ...(status === 429 || status === 503 ? { headers: retryAfter } : {}),
      content: { 'application/json': { schema: jsonSchema(errorResponseWith(response.codes), 'output') } },
    };
  }
  return {
    description: response.description,
    ...(response.schema ? { content: { [response.contentType ?? 'application/json']: { schema: jsonSchema(response.schema, 'output') } } } : {}),
  };
}

const capitalized = (text: string) => text.charAt(0).toUpperCase() + text.slice(1);

/** The routes outside /api/v1 that need no token: probes and this document (metrics are on METRICS_PORT, not here). */
const publicRoutes = [
  {
    path: '/healthz',
    operationId: 'getHealth',
    summary: 'Liveness',
    responses: { 200: { description: 'The process runs', schema: z.object({ status: z.literal('ok') }) } },
  },
  {
    path: '/readyz',
    operationId: 'getReadiness',
    summary: 'Readiness: database, Temporal and S3 reachable',
    responses: Object.fromEntries(
      (
        [
          [200, 'Every dependency answers', 'ready'],
          [503, 'A dependency does not answer (see checks)', 'not ready'],
        ] as const
      ).map(([status, description, value]) => [
        status,
        {
          description,
          // Each check is `ok` or `down: <reason>`.
          schema: z.object({ status: z.literal(value), checks: z.object({ database: z.string(), temporal: z.string(), s3: z.string() }) }),
        },
      ]),
    ),
  },
  {
    path: '/api/v1/openapi.json',
    operationId: 'getOpenApiDocument',
    summary: 'This OpenAPI document',
    responses: { 200: { description: 'OpenAPI 3.1 document', schema: z.record(z.string(), z.unknown()) } },
  },
] satisfies Array<{ path: string; operationId: string; summary: string; responses: Record<number, RouteResponse> }>;

/**
 * OpenAPI 3.1, generated from the same route table and zod schemas the API runs on. Every
 * response has a schema (errors with the codes they may carry); `npm test` lints it with
 * redocly, type-checks a client generated from it and validates real responses against it.
 */
export function openApiDocument(routes: RouteSpec[], version: string) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const path = `/api/v1${route.path.replace(/:(\w+)/g, '{$1}')}`;
    const params: unknown[] = [...route.path.matchAll(/:(\w+)/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string', format: 'uuid' } }));
    if (route.query) {
      const q = jsonSchema(route.query, 'input') as { properties?: Record<string, unknown> };
      for (const [name, schema] of Object.entries(q.properties ?? {})) params.push({ name, in: 'query', required: false, schema });
    }
    if (route.path === '/media/upload-session') {
      params.push({
        name: 'Idempotency-Key',
        in: 'header',
        required: false,
        description: 'The same key again returns the same session instead of a second one',
        schema: { type: 'string', minLength: 1, maxLength: 200 },
      });
    }
    const common = commonResponses(route);
    const statuses = [...new Set([...Object.keys(route.responses), ...Object.keys(common)].map(Number))].sort((a, b) => a - b);
    (paths[path] ??= {})[route.method] = {
      operationId: route.operationId,
      summary: capitalized(route.summary),
      security: [{ bearer: [] }],
      parameters: params.length ? params : undefined,
      requestBody: route.request
        ? { required: !route.requestOptional, content: { 'application/json': { schema: jsonSchema(route.request, 'input') } } }
        : undefined,
      responses: Object.fromEntries(statuses.map((status) => [String(status), responseObject(status, merge(route.responses[status], common[status]))])),
    };
  }
  for (const route of publicRoutes) {
    paths[route.path] = {
      get: {
        operationId: route.operationId,
        summary: route.summary,
        security: [],
        responses: Object.fromEntries(Object.entries(route.responses).map(([status, r]) => [status, responseObject(Number(status), r)])),
      },
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Media Upload Platform API',
      version,
      description: 'Direct-to-S3 media uploads: an upload session per file, presigned PUTs or multipart parts, then one durable workflow that verifies, scans and processes it.',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    // Relative: the document is served by the API it describes.
    servers: [{ url: '/' }],
    security: [{ bearer: [] }],
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
    paths,
  };
}
