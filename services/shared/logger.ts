import pino, { type Logger } from 'pino';

/**
 * JSON logs. Presigned URLs and tokens never reach a log line: their query strings and
 * Authorization headers are redacted.
 */
export function createLogger(name: string, level = 'info'): Logger {
  return pino({
    name,
    level,
    redact: { paths: ['req.headers.authorization', 'url', 'upload.url', '*.url', 'headers.authorization'], censor: '[redacted]' },
  });
}
export type { Logger };
