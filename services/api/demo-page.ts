import express, { type RequestHandler, type Router } from 'express';
import helmet from 'helmet';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cdnBaseUrl, type Config } from '../shared/config';
import type { Logger } from '../shared/logger';
import { ApiError } from './errors';

/** Sources of the page: index.html, demo.css and demo.ts (bundled with the client library on first request). */
const demoDir = join(__dirname, 'demo');
/** The Uppy page: index.html and uppy-page.mts (Uppy's Dashboard and aws-s3 plugin on this API). */
const uppyDir = join(__dirname, 'uppy');

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

  /** Serves `entry` bundled by esbuild, built on first request and kept in memory. */
  const script = (entry: string, format: 'iife' | 'esm'): RequestHandler => {
    let bundle: Promise<string> | undefined;
    return (_req, res, next) => {
      bundle ??= buildScript(entry, format).catch((err: unknown) => {
        bundle = undefined; // try again on the next request
        throw err;
      });
      bundle.then(
        (code) => res.type('text/javascript').set('cache-control', 'no-cache').send(code),
        (err: unknown) => {
          log.error({ err, entry }, 'page bundle failed');
          next(new ApiError('INTERNAL', 'the page script could not be built'));
        },
      );
    };
  };
  // Uppy's Dashboard shows previews of picked images as blob: URLs.
  const uppyCsp = helmet.contentSecurityPolicy({
    directives: {
      connectSrc: ["'self'", ...new Set([uploadOrigin(config), cdnOrigin])],
      imgSrc: ["'self'", 'data:', 'blob:', cdnOrigin],
      upgradeInsecureRequests: null,
    },
  });

  router.get('/', pageCsp, (_req, res) => res.sendFile(join(demoDir, 'index.html')));
  router.get('/demo/demo.css', (_req, res) => res.sendFile(join(demoDir, 'demo.css')));
  router.get('/demo/demo.js', script(join(demoDir, 'demo.ts'), 'iife'));
  router.get('/uppy', uppyCsp, (_req, res) => res.sendFile(join(uppyDir, 'index.html')));
  // Top-level await (the plugin's options come from the API): an ES module.
  router.get('/uppy/uppy.js', script(join(uppyDir, 'uppy-page.mts'), 'esm'));
  router.get('/uppy/uppy.css', (_req, res) => {
    const css = ['@uppy/core/css/style.min.css', '@uppy/dashboard/css/style.min.css'].map((f) => readFileSync(require.resolve(f), 'utf8'));
    res.type('text/css').send(css.join('\n'));
  });
  // The page declares an empty icon; a browser that asks for the conventional one anyway gets no 404.
  router.get('/favicon.ico', (_req, res) => res.status(204).end());
  router.get('/demo/hls.min.js', (_req, res) => res.sendFile(require.resolve('hls.js/dist/hls.min.js')));
  return router;
}

/** A page script with the client library and the media type rules it imports, for browsers. */
async function buildScript(entry: string, format: 'iife' | 'esm'): Promise<string> {
  // Loaded only when the page is asked for: an API that never serves it never starts esbuild.
  const { build } = await import('esbuild');
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    format,
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
