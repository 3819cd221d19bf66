/**
 * Which Temporal the stack runs: `dev` is `temporal server start-dev` (SQLite, built-in Web UI);
 * `server` is the production server on the stack's PostgreSQL (persistence and SQL visibility),
 * as self-hosted clusters run it.
 */
export type TemporalMode = 'dev' | 'server';

/** TEMPORAL_MODE (dev | server, default dev); anything else is refused with the accepted values. */
export function temporalModeFromEnv(value = process.env.TEMPORAL_MODE, variable = 'TEMPORAL_MODE'): TemporalMode {
  if (value === undefined || value === '' || value === 'dev') return 'dev';
  if (value === 'server') return 'server';
  throw new Error(`${variable}=${value} is not one of dev, server`);
}
