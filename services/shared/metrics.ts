import { createServer, type Server } from 'node:http';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { UPLOADING_STATUSES, type MediaStatus } from './media-types';

/** Statuses of an upload still in progress; `media_uploads_in_flight` has one series each. */
export const IN_FLIGHT_STATUSES: readonly MediaStatus[] = UPLOADING_STATUSES;

/** Terminal statuses an upload ends in (DELETED comes later, from a deletion, and is not counted). */
export const UPLOAD_OUTCOMES: readonly MediaStatus[] = ['READY', 'FAILED', 'REJECTED', 'EXPIRED', 'CANCELLED'];

/**
 * One registry per process, every series labelled with `service`. Node's default metrics are
 * collected once per process: a test process running several workers leaves them off.
 */
function createRegistry(service: string, nodeMetrics: boolean): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  if (nodeMetrics) collectDefaultMetrics({ register: registry });
  return registry;
}

/** The API's metrics, served on its `/metrics`. */
export function createMetrics(service: string) {
  const registry = createRegistry(service, true);
  return {
    registry,
    httpDuration: new Histogram({
      name: 'media_http_request_duration_seconds',
      help: 'API request latency by route and status',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    sessionsCreated: new Counter({
      name: 'media_upload_sessions_created_total',
      help: 'Upload sessions created, by media type and upload method',
      labelNames: ['media_type', 'method'] as const,
      registers: [registry],
    }),
    confirmations: new Counter({
      name: 'media_upload_confirmations_total',
      help: 'Confirmations (complete calls) that signalled a workflow, by media type',
      labelNames: ['media_type'] as const,
      registers: [registry],
    }),
    presignDuration: new Histogram({
      name: 'media_presign_duration_seconds',
      help: 'Time to presign one upload URL: a single PUT (`put`) or one multipart part (`part`)',
      labelNames: ['kind'] as const,
      // A prepared signer takes tens of microseconds; milliseconds mean credentials are being fetched.
      buckets: [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.005, 0.025, 0.1],
      registers: [registry],
    }),
  };
}
export type Metrics = ReturnType<typeof createMetrics>;

/**
 * `media_uploads_in_flight{status}`: uploads not finished yet, counted in the read model when
 * Prometheus scrapes (one small GROUP BY). Every API replica reports the same numbers, so
 * dashboards take `max`, not `sum`. A failed count drops the series for that scrape instead of
 * failing the whole scrape during a database outage.
 */
export function registerUploadsInFlight(registry: Registry, count: () => Promise<Partial<Record<MediaStatus, number>>>): void {
  new Gauge({
    name: 'media_uploads_in_flight',
    help: 'Uploads not finished yet (read model), by status',
    labelNames: ['status'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      let counts: Partial<Record<MediaStatus, number>>;
      try {
        counts = await count();
      } catch {
        return;
      }
      for (const status of IN_FLIGHT_STATUSES) this.set({ status }, counts[status] ?? 0);
    },
  });
}

/** `media_http_requests_in_flight`: requests this API process is answering now (event streams excepted). */
export function registerRequestsInFlight(registry: Registry, count: () => number): void {
  new Gauge({
    name: 'media_http_requests_in_flight',
    help: 'HTTP requests being answered by this process (event streams excepted)',
    registers: [registry],
    collect() {
      this.set(count());
    },
  });
}

/** A worker's metrics, served on METRICS_PORT next to /healthz. */
export function createWorkerMetrics(service: string, options: { nodeMetrics?: boolean } = {}) {
  const registry = createRegistry(service, options.nodeMetrics ?? true);
  return {
    registry,
    activityDuration: new Histogram({
      name: 'media_activity_duration_seconds',
      help: 'Activity run time by activity and outcome (completed, failed, cancelled); local activities included',
      labelNames: ['activity', 'outcome'] as const,
      // From a read-model UPDATE (ms) to an HLS ladder (tens of minutes).
      buckets: [0.005, 0.025, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600],
      registers: [registry],
    }),
    activitiesInFlight: new Gauge({
      name: 'media_activities_in_flight',
      help: 'Activities running on this worker, by activity',
      labelNames: ['activity'] as const,
      registers: [registry],
    }),
    uploadsFinished: new Counter({
      name: 'media_uploads_finished_total',
      help: 'Uploads that reached a terminal status (READY, FAILED, REJECTED, EXPIRED, CANCELLED), by reason and media type',
      labelNames: ['status', 'reason', 'media_type'] as const,
      registers: [registry],
    }),
  };
}
export type WorkerMetrics = ReturnType<typeof createWorkerMetrics>;

/**
 * The bounded code at the front of a failure reason (`MALWARE: found ...` → `MALWARE`), so a
 * label never carries a message; `NONE` for a success and `OTHER` for free text.
 */
export function failureCode(failureReason: string | null | undefined): string {
  if (!failureReason) return 'NONE';
  const code = failureReason.split(':')[0]!.trim();
  return /^[A-Z][A-Z0-9_]{0,63}$/.test(code) ? code : 'OTHER';
}

/**
 * The small HTTP side door of the API and the workers on METRICS_PORT: `/metrics` for
 * Prometheus and `/healthz` (`healthy()`: for a worker, that it polls its task queue).
 * Kept off the API's public port so an Ingress on `/` never serves the metrics.
 * Rejects with EADDRINUSE and friends when it cannot listen.
 */
export function startMetricsHttp(port: number, registry: Registry, healthy: () => boolean, host?: string): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.url === '/healthz') {
      const ok = healthy();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ status: ok ? 'ok' : 'not running' }));
    } else if (req.url === '/metrics') {
      registry.metrics().then(
        (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body),
        () => res.writeHead(500).end(),
      );
    } else {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
