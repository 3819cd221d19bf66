/** Processes whose CPU the cost section reads (bench/sections/cost.ts). */
export type Role = 'api' | 'light worker' | 'video worker' | 'temporal' | 's3' | 'postgres' | 'clamd';

/** What one kind of upload (image or video) cost in a bench run; every figure is per upload. */
export interface KindCost {
  uploads: number;
  ready: number;
  unit: 'megapixel' | 'second of 1080p video';
  /** Mean megapixels per image, or seconds per video. */
  unitsPerUpload: number;
  bytesPerUpload: number;
  wallSeconds: number;
  historyEvents: number;
  eventsByType: Record<string, number>;
  /** Temporal Cloud billable actions counted from the histories (bench/temporal-actions.ts). */
  actions: number;
  actionsByKind: Record<string, number>;
  /** The server's own `action` metric and state transitions (state_transition_count), null when not exposed. */
  serverActions: number | null;
  /** The `action` metric by its action_type label (includes queries and other calls a history does not show). */
  serverActionsByType: Record<string, number>;
  stateTransitions: number | null;
  /** S3 requests by SeaweedFS request type (GET, PUT, HEAD, …). */
  s3Requests: Record<string, number>;
  s3Bytes: { received: number; sent: number } | null;
  /** Per PostgreSQL database: transactions (commits + rollbacks) and rows inserted + updated + deleted. */
  pg: Record<string, { transactions: number; rowsWritten: number }>;
  /** CPU-seconds by role (and `bench (load generator)`, `other: <name>`). */
  cpuSeconds: Record<string, number>;
  /** Peak resident set of the API and worker processes over the run so far, MiB. */
  peakRssMiB: Record<string, number>;
}

/** bench/results/cost-<temporalKind>.json */
export interface CostFigures {
  temporalKind: string;
  measuredAt: string;
  machine: string;
  image: KindCost;
  video: KindCost;
}
