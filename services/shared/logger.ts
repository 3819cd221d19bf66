import pino, { type Logger } from 'pino';

/**
 * JSON logs. Presigned URLs and tokens never reach a log line: URL fields, Authorization
 * headers and Temporal task tokens are redacted, and messages are scrubbed of presigned query
 * strings (ffmpeg and S3 errors may quote the URL they were given).
 */
export function createLogger(name: string, level = 'info'): Logger {
  return pino({
    name,
    level,
    redact: {
      paths: ['req.headers.authorization', 'headers.authorization', 'authorization', 'url', 'upload.url', '*.url', 'taskToken', '*.taskToken'],
      censor: '[redacted]',
    },
    hooks: {
      logMethod(args, method) {
        method.apply(this, args.map((a) => (typeof a === 'string' ? redactPresignedUrls(a) : a)) as Parameters<typeof method>);
      },
    },
  });
}
export type { Logger };

/** Replaces the query string of every presigned S3 URL (SigV4 or SigV2) in `text`. */
export function redactPresignedUrls(text: string): string {
  if (!/X-Amz-|Signature=/.test(text)) return text;
  return text.replace(/(https?:\/\/[^\s?"'<>]+)\?[^\s"'<>]*(?:X-Amz-Signature|Signature)=[^\s"'<>:]*/g, '$1?[redacted]');
}
