import cors from 'cors';
import express, { type ErrorRequestHandler, type Express, type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { MemoryStore, rateLimit } from 'express-rate-limit';
import helmet from 'helmet';
import { pinoHttp } from 'pino-http';
import { randomUUID } from 'node:crypto';
import type { Connection } from '@temporalio/client';
import type { Logger } from '../shared/logger';
import { authenticate } from './auth';
import { demoPage } from './demo-page';
import { ApiError, dependencyFault, errorBody, RETRY_AFTER_SECONDS } from './errors';
import { openApiDocument } from './openapi';
import { databaseReadiness } from './readiness';
import { buildRoutes, toExpress, type ApiDeps, type RouteSpec } from './routes';
import { MAX_BATCH_FILES } from './schemas';

/**
 * The route template (`/api/v1/media/:id`) a request goes to, matched the way Express
 * matches (first route in table order whose method and path fit); undefined for none.
 */
function routeTemplates(routes: RouteSpec[], prefix: string): (method: string, url: string) => string | undefined {
  const compiled = routes.map((r) => ({
    method: r.method.toUpperCase(),
    template: `${prefix}${r.path}`,
    pattern: new RegExp(`^${`${prefix}${r.path}`.replace(/[.]/g, '\\.').replace(/:\w+/g, '[^/]+')}/?$`),
  }));
  return (method, url) => {
    const path = url.split('?')[0]!;
    return compiled.find((r) => r.method === method && r.pattern.test(path))?.template;
  };
}

/** Puts the route's media id (or batch id) on the request's log lines. */
function logContext(route: RouteSpec): RequestHandler {
  const key = route.path.startsWith('/batches/') ? 'batchId' : 'mediaId';
  return (req, res, next) => {
    const id = req.params.id;
    // Only well-formed ids: anything else is a 404 and not worth a field.
    if (typeof id === 'string' && /^[0-9a-f-]{36}$/i.test(id)) {
      res.locals[key] = id;
      req.log = req.log.child({ [key]: id });
    }
    next();
  };
}

/** What a stopping API shares with its app: draining fails readiness; requests in flight are counted. */
export interface ApiLifecycle {
  draining: boolean;
  /** Requests being answered now, event streams excepted (they end when the process does). */
  inFlight: number;
}

/**
 * Readiness fails only on this process's own conditions: draining, or its database pool
 * failing every check for DB_UNREADY_AFTER_MS in a row (databaseReadiness). A Temporal or S3
 * blip hits every pod at once; failing readiness for it would take the whole fleet out of the
 * load balancer, whose own error page would then replace the API's JSON 503 with Retry-After.
 * Their state is reported in the body for operators, and each request needing them answers
 * 503 on its own.
 */
const DB_UNREADY_AFTER_MS = 30_000;
const CHECK_TIMEOUT_MS = 2000;

export function createApp(deps: ApiDeps & { log: Logger; lifecycle?: ApiLifecycle }): Express {
  const { config, log, metrics } = deps;
  const lifecycle = deps.lifecycle ?? { draining: false, inFlight: 0 };
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 1);
  app.use(helmet());
  app.use(
    pinoHttp({
      logger: log,
      genReqId: (req, res) => {
        const id = (req.headers['x-request-id'] as string | undefined) ?? randomUUID();
        res.setHeader('x-request-id', id);
        return id;
      },
      // Query strings may hold cursors; presigned URLs never appear in requests to us.
      // Response headers are all ours and say nothing a status code does not.
      serializers: {
        req: (req: { id: string; method: string; url: string }) => ({ id: req.id, method: req.method, path: req.url.split('?')[0] }),
        res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
      },
      // Evaluated again when the response is logged, after auth and the route have run.
      customProps: (req, res) => ({ userId: req.user?.userId, mediaId: res.locals.mediaId as unknown, batchId: res.locals.batchId as unknown }),
    }),
  );
  if (config.CORS_ORIGINS.length) app.use(cors({ origin: config.CORS_ORIGINS, allowedHeaders: ['authorization', 'content-type', 'idempotency-key'] }));

  const routes = buildRoutes(deps);
  const routeOf = routeTemplates(routes, '/api/v1');
  app.use((req, res, next) => {
    // Keep-alive clients open a new connection (to another pod) once this one drains.
    if (lifecycle.draining) res.setHeader('connection', 'close');
    if (!req.path.endsWith('/events')) {
      lifecycle.inFlight++;
      res.once('close', () => lifecycle.inFlight--);
    }
    next();
  });
  app.use((req, res, next) => {
    const end = metrics.httpDuration.startTimer({ method: req.method });
    // The template is found from the method and path alone, so a request has the same route
    // label whether auth refused it, its handler failed or it succeeded.
    res.on('finish', () => end({ route: routeOf(req.method, req.originalUrl) ?? (req.route?.path ? `${req.baseUrl}${req.route.path}` : 'unmatched'), status: String(res.statusCode) }));
    next();
  });
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  const databaseReady = databaseReadiness(DB_UNREADY_AFTER_MS);
  app.get('/readyz', (_req, res) => {
    const checks = {
      database: () => deps.media.dataSource.query('SELECT 1'),
      // A gRPC deadline, so the client's own retries stop with the check instead of running on
      // in the background (and hitting a closed channel once the API stops).
      temporal: () => {
        const connection = deps.temporal.connection as Connection;
        return connection.withDeadline(Date.now() + CHECK_TIMEOUT_MS, () => connection.healthService.check({}));
      },
      s3: () => deps.storage.headBucket(config.S3_INCOMING_BUCKET),
    };
    void Promise.all(
      Object.entries(checks).map(async ([name, check]) => {
        const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error('timed out')), CHECK_TIMEOUT_MS).unref());
        const pending = check();
        // A check still running after the timeout must not surface later as an unhandled rejection.
        pending.catch(() => undefined);
        try {
          await Promise.race([pending, timeout]);
          return [name, 'ok'] as const;
        } catch (err) {
          return [name, `down: ${(err as Error).message}`] as const;
        }
      }),
    ).then((results) => {
      const result = Object.fromEntries(results);
      const ready = databaseReady(result.database === 'ok', Date.now()) && !lifecycle.draining;
      res.status(ready ? 200 : 503).json({ status: lifecycle.draining ? 'draining' : ready ? 'ready' : 'not ready', checks: result });
    });
  });

  const document = openApiDocument(routes, '0.1.0');
  app.get('/api/v1/openapi.json', (_req, res) => {
    res.json(document);
  });

  const api = express.Router();
  api.use(authenticate(config));
  // Everything with a body is JSON; other content types are refused rather than ignored.
  api.use((req, _res, next) => {
    const hasBody = Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
    if (hasBody && !req.is('application/json')) return next(new ApiError('UNSUPPORTED_CONTENT_TYPE', 'send application/json'));
    next();
  });
  api.use(express.json({ limit: '256kb', strict: true }));
  const refuse = (res: Response, next: NextFunction, message: string, reset: Date | undefined) => {
    res.setHeader('retry-after', String(reset ? Math.max(1, Math.ceil((reset.getTime() - Date.now()) / 1000)) : 60));
    next(new ApiError('RATE_LIMITED', message));
  };
  /**
   * One session limit: express-rate-limit counts the request as one session; a batch of N files
   * (`files`, bounded by MAX_BATCH_FILES: longer bodies are refused with 400 anyway) counts the
   * other N - 1 on the same store, so a batch that would cross the limit is refused whole (429 +
   * Retry-After) and, like any refused request, still counts. A batch refused for its length
   * (400) counts once.
   */
  const sessionLimiter = (o: { limit: number; key: (req: Request) => string; headers: boolean; message: string }) => {
    const store = new MemoryStore();
    const limiter = rateLimit({
      windowMs: 60_000,
      limit: o.limit,
      store,
      standardHeaders: o.headers ? 'draft-7' : false,
      legacyHeaders: false,
      keyGenerator: o.key,
      handler: (req, res, next) => refuse(res, next, o.message, (req as typeof req & { rateLimit?: { resetTime?: Date } }).rateLimit?.resetTime),
    });
    const batchWeight = async (req: Request, res: Response, next: NextFunction) => {
      const files = (req.body as { files?: unknown } | undefined)?.files;
      // A batch the route refuses whole (400: none or more than MAX_BATCH_FILES) creates nothing
      // and counts once, as any invalid request.
      const extra = Array.isArray(files) && files.length <= MAX_BATCH_FILES ? files.length - 1 : 0;
      if (extra <= 0) return next();
      let hits = { totalHits: 0, resetTime: undefined as Date | undefined };
      for (let i = 0; i < extra; i++) hits = await store.increment(o.key(req));
      // The header was set before the batch's weight was counted.
      const header = o.headers ? res.getHeader('ratelimit') : undefined;
      if (typeof header === 'string') res.setHeader('ratelimit', header.replace(/remaining=\d+/, `remaining=${Math.max(0, o.limit - hits.totalHits)}`));
      if (hits.totalHits > o.limit) return refuse(res, next, o.message, hits.resetTime);
      next();
    };
    return [limiter, (req: Request, res: Response, next: NextFunction) => void batchWeight(req, res, next).catch(next)];
  };
  // Per user of a tenant (the same `sub` in two tenants is two users), then per tenant; the
  // RateLimit headers are those of the user's own limit.
  const sessionLimiters = [
    ...sessionLimiter({
      limit: config.RATE_LIMIT_SESSIONS_PER_MINUTE,
      key: (req) => JSON.stringify([req.user!.tenantId, req.user!.userId]),
      headers: true,
      message: 'too many upload sessions; retry after the Retry-After seconds',
    }),
    ...(config.RATE_LIMIT_SESSIONS_PER_MINUTE_PER_TENANT > 0
      ? sessionLimiter({
          limit: config.RATE_LIMIT_SESSIONS_PER_MINUTE_PER_TENANT,
          key: (req) => req.user!.tenantId,
          headers: false,
          message: 'too many upload sessions in your tenant; retry after the Retry-After seconds',
        })
      : []),
  ];
  for (const route of routes) {
    const handlers = [...(route.path.includes(':id') ? [logContext(route)] : []), ...(route.rateLimited ? sessionLimiters : []), toExpress(route)];
    api[route.method](route.path, ...handlers);
  }
  api.use((_req, _res, next) => next(new ApiError('NOT_FOUND', 'no such endpoint')));
  app.use('/api/v1', api);
  app.use(demoPage(config, log));
  app.use((_req, _res, next) => next(new ApiError('NOT_FOUND', 'no such endpoint')));

  const onError: ErrorRequestHandler = (err, req, res, _next) => {
    let apiError: ApiError;
    const bodyError = err as { type?: string; status?: number };
    if (err instanceof ApiError) apiError = err;
    else if (bodyError.type === 'entity.parse.failed') apiError = new ApiError('INVALID_JSON', 'request body is not valid JSON');
    else if (bodyError.type === 'entity.too.large') apiError = new ApiError('PAYLOAD_TOO_LARGE', 'request body is too large');
    else if (bodyError.type?.startsWith('encoding.') || bodyError.type === 'charset.unsupported') apiError = new ApiError('UNSUPPORTED_CONTENT_TYPE', 'unsupported body encoding');
    else if (bodyError.status === 400 || bodyError.status === 413 || bodyError.status === 415) apiError = new ApiError('VALIDATION_FAILED', 'malformed request');
    else {
      const fault = dependencyFault(err);
      if (fault) req.log?.warn({ err }, 'dependency unavailable or overloaded');
      else req.log?.error({ err }, 'unhandled error');
      apiError = fault ?? new ApiError('INTERNAL', 'internal error');
    }
    if (res.headersSent) {
      res.end();
      return;
    }
    const retryAfter = RETRY_AFTER_SECONDS[apiError.code];
    if (retryAfter !== undefined && !res.hasHeader('retry-after')) res.setHeader('retry-after', String(retryAfter));
    res.status(apiError.status).json(errorBody(apiError.code, apiError.message, apiError.details));
  };
  app.use(onError);
  return app;
}
