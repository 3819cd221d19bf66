import express, { type RequestHandler, type Router } from 'express';
import helmet from 'helmet';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { cdnBaseUrl, type Config } from '../shared/config';
import type { Logger } from '../shared/logger';
import { ApiError } from './errors';

/** Sources of the page: index.html, demo.css and demo.ts (bundled with the client library on first request). */
const demoDir = join(__dirname, 'demo');

/**
 * The demo page at `/`: pick or drop files, watch them upload and process, see the result.
 * Its script is bundled once, on first request, and kept in memory. Images built from
 * `dist/` carry no page sources: there `/` answers 404.
 */
export function demoPage(config: Config, log: Logger): Router {
  const router = express.Router();
  if (!existsSync(join(demoDir, 'index.html'))) return router;

  const cdnOrigin = new URL(cdnBaseUrl(config)).origin;
  // The page PUTs straight to S3 and reads media from the CDN; hls.js plays through MediaSource (blob:).
  const pageCsp = helmet.contentSecurityPolicy({
    directives: {
      connectSrc: ["'self'", ...new Set([uploadOrigin(config), cdnOrigin])],
      imgSrc: ["'self'", 'data:', cdnOrigin],
      mediaSrc: ["'self'", 'blob:', cdnOrigin],
      // The dev stack and the tests serve over plain http on loopback.
      upgradeInsecureRequests: null,
    },
  });

  let bundle: Promise<string> | undefined;
  const script: RequestHandler = (_req, res, next) => {
    bundle ??= buildScript().catch((err: unknown) => {
      bundle = undefined; // try again on the next request
      throw err;
    });
    bundle.then(
      (code) => res.type('text/javascript').set('cache-control', 'no-cache').send(code),
      (err: unknown) => {
        log.error({ err }, 'demo page bundle failed');
        next(new ApiError('INTERNAL', 'the demo page script could not be built'));
      },
    );
  };

  router.get('/', pageCsp, (_req, res) => res.sendFile(join(demoDir, 'index.html')));
  router.get('/demo/demo.css', (_req, res) => res.sendFile(join(demoDir, 'demo.css')));
  router.get('/demo/demo.js', script);
  // The page declares an empty icon; a browser that asks for the conventional one anyway gets no 404.
  router.get('/favicon.ico', (_req, res) => res.status(204).end());
  router.get('/demo/hls.min.js', (_req, res) => res.sendFile(require.resolve('hls.js/dist/hls.min.js')));
  return router;
}

/** demo.ts with the client library and the media type rules it imports, for browsers. */
async function buildScript(): Promise<string> {
  // Loaded only when the page is asked for: an API that never serves it never starts esbuild.
  const { build } = await import('esbuild');
  const result = await build({
    entryPoints: [join(demoDir, 'demo.ts')],
    bundle: true,
    write: false,
    format: 'iife',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    legalComments: 'none',
    logLevel: 'silent',
  });
  return result.outputFiles[0]!.text;
}

/** Where presigned PUTs go: the same host the storage adapter signs for. */
function uploadOrigin(config: Config): string {
  if (config.S3_ENDPOINT) return new URL(config.S3_ENDPOINT).origin;
  const host = `s3.${config.S3_REGION}.amazonaws.com`;
  return config.S3_FORCE_PATH_STYLE ? `https://${host}` : `https://${config.S3_INCOMING_BUCKET}.${host}`;
}
