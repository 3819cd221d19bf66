/**
 * The demo page's script, bundled by esbuild when the API first serves it (demo-page.ts).
 * It uses the same client library as the CLI and the tests; the media type limits come from
 * the server's own rules table, embedded at bundle time.
 */
import type HlsPlayer from 'hls.js';
import {
  checkFile,
  defaultMediaType,
  explainFailure,
  fileTypeOf,
  formatBytes,
  MediaClientError,
  MediaUploadClient,
  type Media,
} from '../../client';
import { MEDIA_TYPE_RULES, MEDIA_TYPES, type MediaType } from '../../shared/media-types';

/** hls.js is served as its own prebuilt script (/demo/hls.min.js), which defines this global. */
declare const Hls: typeof HlsPlayer | undefined;

/** Files uploading at once; each sends its parts in parallel too. */
const FILES_AT_ONCE = 3;

const byId = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const tokenInput = byId<HTMLInputElement>('token');
const mediaTypeSelect = byId<HTMLSelectElement>('media-type');
const fileInput = byId<HTMLInputElement>('file-input');
const dropZone = byId<HTMLLabelElement>('drop-zone');
const pageError = byId<HTMLParagraphElement>('page-error');
const batchSection = byId<HTMLElement>('batch');
const batchText = byId<HTMLSpanElement>('batch-text');
const batchProgress = byId<HTMLProgressElement>('batch-progress');
const fileList = byId<HTMLUListElement>('files');

// The token travels in the URL fragment, which browsers never send to a server; once read it
// leaves the address bar (and so bookmarks, screenshots and the history entry).
tokenInput.value = new URLSearchParams(location.hash.slice(1)).get('token') ?? '';
if (location.hash) history.replaceState(null, '', location.pathname + location.search);

const client = new MediaUploadClient({ baseUrl: '', token: () => tokenInput.value.trim(), concurrency: 4 });

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Partial<HTMLElementTagNameMap[K]> = {},
  children: Array<Node | string> = [],
): HTMLElementTagNameMap[K] {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

function showLimits(): void {
  for (const type of MEDIA_TYPES) {
    const rule = MEDIA_TYPE_RULES[type];
    mediaTypeSelect.append(el('option', { value: type, textContent: type }));
    byId('limits').append(el('li', { textContent: `${type}: ${rule.allowedMimeTypes.join(', ')}, at most ${formatBytes(rule.maxBytes)}` }));
  }
  fileInput.accept = [...new Set(MEDIA_TYPES.flatMap((t) => MEDIA_TYPE_RULES[t].allowedMimeTypes))].join(',');
}

/** One row of the list: a file from pick to its final status. */
class FileRow {
  readonly total: number;
  loaded = 0;
  finished = false;
  private readonly node: HTMLLIElement;
  private readonly progress = el('progress', { max: 1, value: 0 });
  private readonly status = el('span', { className: 'status' });
  private readonly meta = el('p', { className: 'meta' });
  private readonly message = el('p', { className: 'message' });
  private readonly preview = el('div', { className: 'preview' });
  private playing = false;

  constructor(readonly file: File) {
    this.total = file.size;
    this.node = el('li', { className: 'file' }, [
      el('div', { className: 'file-head' }, [el('span', { className: 'file-name', textContent: file.name }), this.status]),
      this.meta,
      this.progress,
      this.message,
      this.preview,
    ]);
    this.node.dataset.fileName = file.name;
    fileList.prepend(this.node);
  }

  setStatus(status: string, text = status): void {
    this.node.dataset.status = status;
    this.status.textContent = text;
  }

  setMeta(text: string): void {
    this.meta.textContent = text;
  }

  setProgress(loaded: number): void {
    this.loaded = loaded;
    this.progress.value = this.total ? loaded / this.total : 1;
  }

  fail(status: string, message: string): void {
    this.finished = true;
    this.setStatus(status);
    this.message.textContent = message;
    this.message.classList.add('error');
    this.progress.hidden = true;
  }

  /** The first rendition is published: play it now, while the ladder is still being encoded. */
  playable(media: Media): void {
    if (!media.playback || this.playing) return;
    this.playing = true;
    // The status when playback began (PROCESSING while the ladder is still being encoded).
    this.node.dataset.playableWhile = media.status;
    this.message.textContent = 'playable · encoding more qualities';
    this.preview.append(videoPlayer(media));
  }

  done(media: Media): void {
    this.finished = true;
    this.setStatus(media.status);
    this.node.dataset.mediaId = media.mediaId;
    if (media.status !== 'READY') {
      this.fail(media.status, `${media.status === 'REJECTED' ? 'Rejected' : 'Not published'}: ${explainFailure(media.failureReason)}`);
      return;
    }
    this.progress.value = 1;
    this.message.textContent = describeMetadata(media);
    // A player started while PROCESSING keeps playing: replacing it would restart the video.
    if (media.playback && !this.playing) this.preview.append(videoPlayer(media));
    else {
      const thumbnail = pickThumbnail(media);
      // Private media types have no public URLs (read through download-url instead).
      if (thumbnail?.url) this.preview.append(el('img', { className: 'thumbnail', src: thumbnail.url, alt: media.fileName }));
    }
    // A PDF is stored as an attachment: its link downloads, it never opens in this origin.
    const label = media.mediaType === 'DOCUMENT' ? 'download PDF' : 'original';
    if (media.cdnUrl) this.preview.append(el('a', { href: media.cdnUrl, textContent: label, target: '_blank', rel: 'noopener' }));
  }
}

function pickThumbnail(media: Media): Media['thumbnails'][number] | undefined {
  // The WebP closest to 300 px wide; the JPEG fallbacks are for clients without WebP.
  const withUrl = media.thumbnails.filter((t) => t.url);
  const webp = withUrl.filter((t) => t.format === 'webp');
  const candidates = webp.length ? webp : withUrl;
  return [...candidates].sort((a, b) => Math.abs((a.width ?? 0) - 300) - Math.abs((b.width ?? 0) - 300))[0];
}

function describeMetadata(media: Media): string {
  const m = media.metadata as { width?: number; height?: number; durationSeconds?: number; pageCount?: number | null; encrypted?: boolean; hasJavaScript?: boolean };
  if (media.mediaType === 'DOCUMENT') {
    // A PDF's original is only ever a download (never shown inline); say why it has no preview.
    const pages = m.pageCount ? `${m.pageCount} page${m.pageCount === 1 ? '' : 's'}` : '';
    const notes = [m.encrypted && !m.pageCount ? 'password-protected' : '', m.hasJavaScript ? 'contains JavaScript' : ''].filter(Boolean);
    return [pages, ...notes].filter(Boolean).join(', ');
  }
  const size = m.width && m.height ? `${m.width}×${m.height}` : '';
  const duration = m.durationSeconds ? `, ${m.durationSeconds.toFixed(1)} s` : '';
  return `${size}${duration}`;
}

function videoPlayer(media: Media): HTMLVideoElement {
  const video = el('video', { className: 'player', controls: true, muted: true, playsInline: true, preload: 'metadata' });
  const poster = media.playback?.posterUrl ?? media.poster?.url;
  if (poster) video.poster = poster;
  const masterUrl = media.playback!.masterUrl;
  if (typeof Hls !== 'undefined' && Hls.isSupported()) {
    // No worker: the page's CSP stays at script-src 'self' (demuxing short clips on the main thread is cheap).
    // While PROCESSING the first rendition is a growing EVENT playlist, which hls.js treats as
    // live and would join near its end: start at 0 (the playlists say so too, EXT-X-START).
    const player = new Hls({ enableWorker: false, startPosition: 0 });
    player.loadSource(masterUrl);
    player.attachMedia(video);
  } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
    video.src = masterUrl;
  }
  return video;
}

const rows: FileRow[] = [];

function updateBatch(): void {
  const active = rows.filter((r) => r.total > 0);
  const total = active.reduce((sum, r) => sum + r.total, 0);
  const loaded = active.reduce((sum, r) => sum + r.loaded, 0);
  const finished = rows.filter((r) => r.finished).length;
  batchSection.hidden = rows.length === 0;
  batchProgress.value = total ? loaded / total : 0;
  batchText.textContent = `${finished} of ${rows.length} files finished · ${formatBytes(loaded)} of ${formatBytes(total)} uploaded`;
}

async function uploadOne(row: FileRow, mediaType: MediaType): Promise<void> {
  row.setStatus('UPLOADING', 'uploading 0%');
  try {
    const { mediaId } = await client.upload(row.file, {
      mediaType,
      fileType: fileTypeOf(row.file.type, row.file.name),
      onProgress: (p) => {
        if (p.phase === 'hashing') return;
        row.setProgress(p.loaded);
        row.setStatus('UPLOADING', p.phase === 'uploading' ? `uploading ${Math.floor((100 * p.loaded) / p.total)}%` : p.phase);
        updateBatch();
      },
    });
    const media = await client.waitForReady(mediaId, {
      onStatus: (m) => !['READY'].includes(m.status) && row.setStatus(m.status),
      // A video plays as soon as its first rendition is published, before READY (same event stream).
      onPlayable: (m) => row.playable(m),
    });
    row.done(media);
  } catch (err) {
    row.fail('ERROR', err instanceof MediaClientError ? `${err.code}: ${err.message}` : String(err));
  } finally {
    updateBatch();
  }
}

/** Files picked before a token was entered: they are sent as soon as one is. */
let waitingForToken: File[] = [];

/** Checks each file against the limits, then uploads the accepted ones, a few at a time. */
function accept(files: File[]): void {
  pageError.hidden = true;
  if (!tokenInput.value.trim()) {
    waitingForToken = [...waitingForToken, ...files];
    const count = waitingForToken.length === 1 ? '1 file waits' : `${waitingForToken.length} files wait`;
    pageError.textContent = `${count} for a bearer token: paste one above (npm run token -- --user <id>), or open the URL npm run dev prints.`;
    pageError.hidden = false;
    return;
  }
  const queue: Array<() => Promise<void>> = [];
  for (const file of files) {
    const row = new FileRow(file);
    rows.push(row);
    const fileType = fileTypeOf(file.type, file.name);
    const mediaType = (mediaTypeSelect.value as MediaType) || defaultMediaType(fileType);
    row.setMeta(`${formatBytes(file.size)} · ${fileType || 'unknown type'}${mediaType ? ` · ${mediaType}` : ''}`);
    const problem = mediaType
      ? checkFile({ fileType, fileSize: file.size }, mediaType)
      : { code: 'UNSUPPORTED_MEDIA_TYPE', message: `${fileType || 'this file type'} is not an accepted image, video or PDF type` };
    if (problem) {
      row.fail('CLIENT_REJECTED', `Not uploaded: ${problem.message} (${problem.code})`);
      continue;
    }
    row.setStatus('QUEUED', 'queued');
    queue.push(() => uploadOne(row, mediaType!));
  }
  updateBatch();
  const worker = async () => {
    for (let job = queue.shift(); job; job = queue.shift()) await job();
  };
  for (let i = 0; i < Math.min(FILES_AT_ONCE, queue.length); i++) void worker();
}

showLimits();
tokenInput.addEventListener('input', () => {
  if (!tokenInput.value.trim() || waitingForToken.length === 0) return;
  const files = waitingForToken;
  waitingForToken = [];
  accept(files);
});
fileInput.addEventListener('change', () => {
  accept([...(fileInput.files ?? [])]);
  fileInput.value = '';
});
dropZone.addEventListener('dragover', (event) => {
  event.preventDefault();
  dropZone.classList.add('dragging');
});
dropZone.addEventListener('dragleave', () => dropZone.classList.remove('dragging'));
dropZone.addEventListener('drop', (event) => {
  event.preventDefault();
  dropZone.classList.remove('dragging');
  accept([...(event.dataTransfer?.files ?? [])]);
});
