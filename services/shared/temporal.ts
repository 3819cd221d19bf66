import { readFileSync } from 'node:fs';
import { WorkflowNotFoundError, type WorkflowHandle } from '@temporalio/client';
import type { TemporalConfig } from './config';

/** Connection options for a dev server, a TLS cluster (mTLS) or Temporal Cloud (API key). */
export interface TemporalConnectionOptions {
  address: string;
  tls?: { clientCertPair?: { crt: Buffer; key: Buffer }; serverRootCACertificate?: Buffer; serverNameOverride?: string };
  apiKey?: string;
  metadata?: Record<string, string>;
}

export function temporalConnectionOptions(config: Omit<TemporalConfig, 'TEMPORAL_UI_URL'>): TemporalConnectionOptions {
  const mtls = config.TEMPORAL_TLS_CERT_PATH && config.TEMPORAL_TLS_KEY_PATH;
  const tls =
    mtls || config.TEMPORAL_API_KEY || config.TEMPORAL_TLS_CA_PATH || config.TEMPORAL_TLS_SERVER_NAME
      ? {
          clientCertPair: mtls ? { crt: readFileSync(config.TEMPORAL_TLS_CERT_PATH!), key: readFileSync(config.TEMPORAL_TLS_KEY_PATH!) } : undefined,
          serverRootCACertificate: config.TEMPORAL_TLS_CA_PATH ? readFileSync(config.TEMPORAL_TLS_CA_PATH) : undefined,
          // A PrivateLink or regional endpoint presents the namespace's certificate, not its own host's.
          serverNameOverride: config.TEMPORAL_TLS_SERVER_NAME,
        }
      : undefined;
  return {
    address: config.TEMPORAL_ADDRESS,
    tls,
    apiKey: config.TEMPORAL_API_KEY,
    metadata: config.TEMPORAL_API_KEY ? { 'temporal-namespace': config.TEMPORAL_NAMESPACE } : undefined,
  };
}

/**
 * Cancels the workflow if it still runs; false when it has closed (completed, failed,
 * terminated) or never existed. Temporal accepts the cancellation of a closed workflow without
 * an error, so whether it runs is asked first. `call` wraps each request (the API's deadline).
 */
export async function cancelIfRunning(handle: WorkflowHandle, call: <T>(request: () => Promise<T>) => Promise<T> = (request) => request()): Promise<boolean> {
  const notFound = (fallback: boolean) => (err: unknown) => {
    if (err instanceof WorkflowNotFoundError) return fallback;
    throw err;
  };
  const running = await call(() => handle.describe()).then((d) => d.status.name === 'RUNNING', notFound(false));
  if (!running) return false;
  // A workflow that closes between the two calls accepts the cancellation too (true, and its
  // own outcome stands); only one removed from Temporal meanwhile answers not found.
  return call(() => handle.cancel()).then(() => true, notFound(false));
}
