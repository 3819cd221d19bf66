/**
 * The Uppy page (/uppy): Uppy's Dashboard uploading through this API with the client
 * library's awsS3Options, exactly the lines the README shows. Bundled by esbuild on first
 * request (demo-page.ts). The token comes from the URL fragment or the field, like the demo page.
 */
import AwsS3 from '@uppy/aws-s3';
import Uppy from '@uppy/core';
import Dashboard from '@uppy/dashboard';
import { MediaUploadClient } from '../../client/index.js';
import { awsS3Options } from '../../client/uppy.mjs';

const tokenInput = document.getElementById('token') as HTMLInputElement;
tokenInput.value = new URLSearchParams(location.hash.slice(1)).get('token') ?? '';
if (location.hash) history.replaceState(null, '', location.pathname + location.search);

const client = new MediaUploadClient({ baseUrl: '', token: () => tokenInput.value.trim() });
const uppy = new Uppy({ autoProceed: false }).use(Dashboard, { inline: true, target: '#uppy', width: '100%', height: 460, proudlyDisplayPoweredByUppy: false });
uppy.use(AwsS3, await awsS3Options(client));

// For the browser test and the curious: the Uppy instance and its events.
Object.assign(window, { uppy });
