import { ApplicationFailure, Context } from '@temporalio/activity';
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { WorkflowIdReusePolicy } from '@temporalio/common';
import { createHash, createHmac } from 'node:crypto';
import type { MediaRepository } from '../services/shared/db/media-repository';
import { presentMedia, type PresentedMedia, type PresentOptions } from '../services/shared/media-presenter';
import type { MediaStatus } from '../services/shared/media-types';

/**
 * The status changes a customer's backend hears about: every terminal outcome, so a receiver
 * that got `media.playable` always hears how the media ended (cancelled or failed: it is no
 * longer playable).
 */
export const WEBHOOK_EVENT_TYPES: Partial<Record<MediaStatus, string>> = {
  READY: 'media.ready',
  REJECTED: 'media.rejected',
  EXPIRED: 'media.expired',
  FAILED: 'media.failed',
  CANCELLED: 'media.cancelled',
  DELETED: 'media.deleted',
};

/**
 * Not a status: the media can be played (its first rendition is published) before it is READY.
 * `media.playable` is sent once per media, while it is PROCESSING or READY.
 */
export const PLAYABLE_EVENT = 'PLAYABLE';
export type MediaEventName = MediaStatus | typeof PLAYABLE_EVENT;

/**
 * Announces that a media became playable: wakes its SSE streams (each sends `playable` once)
 * and sends `media.playable` (once per media and endpoint: delivery workflow ids refuse a
 * second start), so a retried or repeated call announces nothing twice.
 */
export async function announcePlayable(
  deps: { media: Pick<MediaRepository, 'notifyChange'>; publish?: (client: Client, mediaId: string, event: MediaEventName) => Promise<number> },
  client: Client,
  mediaId: string,
): Promise<void> {
  await deps.media.notifyChange(mediaId);
  await deps.publish?.(client, mediaId, PLAYABLE_EVENT);
}

export interface WebhookEndpoint {
  url: string;
  secret: string;
}

export interface MediaEvent {
  /** Stable per media and event type: receivers deduplicate on it (header `Webhook-Id`). */
  id: string;
  type: string;
  createdAt: string;
  /**
   * `media` as `GET /media/{id}` answers it (its `projectId` included); `tenantId` and `userId`
   * name whose media it is, which that answer leaves out (its reader is the owner) and a
   * receiver serving several tenants needs.
   */
  data: { media: PresentedMedia; tenantId: string; userId: string };
}

export const SIGNATURE_HEADER = 'webhook-signature';

/** Endpoints are named by a hash of their URL so that workflow ids and history never carry the secret. */
export function endpointId(url: string): string {
  return createHash('sha256').update(url).digest('hex').slice(0, 16);
}

/** `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>` — the timestamp is signed too, so a replay can be refused. */
export function signWebhook(secret: string, timestamp: number, body: string): string {
  return `t=${timestamp},v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

export const webhookWorkflowId = (endpoint: string, eventId: string) => `webhook/${endpoint}/${eventId}`;

export interface WebhookDeps {
  endpoints: WebhookEndpoint[];
  media: MediaRepository;
  present: PresentOptions;
  /** Task queue of the delivery workflows (the light worker's). */
  taskQueue: string;
}

/**
 * Webhooks: `publish` starts one delivery workflow per endpoint for a media's status change
 * (called from the activity that records it); `deliverWebhook` is the activity those
 * workflows retry with backoff, so a slow or failing receiver never holds up an upload.
 */
export function createWebhookActivities({ endpoints, media, present, taskQueue }: WebhookDeps) {
  async function publish(client: Client, mediaId: string, status: MediaEventName): Promise<number> {
    const type = status === PLAYABLE_EVENT ? 'media.playable' : WEBHOOK_EVENT_TYPES[status];
    if (!type || endpoints.length === 0) return 0;
    const row = await media.findById(mediaId);
    if (!row) return 0;
    const presented = presentMedia(row, await media.renditions(mediaId), present);
    // Only while true: a late retry never announces a status (or playback) that has since changed.
    if (status === PLAYABLE_EVENT ? !presented.playback : row.status !== status) return 0;
    const event: MediaEvent = { id: `${mediaId}:${type}`, type, createdAt: row.updatedAt.toISOString(), data: { media: presented, tenantId: row.tenantId, userId: row.userId } };
    for (const endpoint of endpoints) {
      const id = endpointId(endpoint.url);
      await client.workflow
        .start('MediaWebhookWorkflow', {
          taskQueue,
          workflowId: webhookWorkflowId(id, event.id),
          // A retried status write must not send the event a second time once delivered.
          workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
          args: [{ endpointId: id, event }],
        })
        .catch((err: unknown) => {
          if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
        });
    }
    return endpoints.length;
  }

  return {
    publish,
    activities: {
      /** One POST of the signed event; any answer but 2xx throws so Temporal retries with backoff. */
      async deliverWebhook(input: { endpointId: string; event: MediaEvent }): Promise<{ status: number }> {
        const endpoint = endpoints.find((e) => endpointId(e.url) === input.endpointId);
        if (!endpoint) throw ApplicationFailure.nonRetryable('the endpoint is no longer configured', 'WEBHOOK_ENDPOINT_REMOVED');
        const body = JSON.stringify(input.event);
        const timestamp = Math.floor(Date.now() / 1000);
        const response = await fetch(endpoint.url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'user-agent': 'media-upload-platform-webhooks',
            'webhook-id': input.event.id,
            'webhook-timestamp': String(timestamp),
            'webhook-attempt': String(Context.current().info.attempt),
            [SIGNATURE_HEADER]: signWebhook(endpoint.secret, timestamp, body),
          },
          body,
          redirect: 'manual',
          signal: AbortSignal.timeout(10_000),
        });
        await response.body?.cancel();
        // 410 Gone is the receiver saying it wants no more: retrying all day would not change that.
        if (response.status === 410) throw ApplicationFailure.nonRetryable('receiver answered 410 Gone', 'WEBHOOK_GONE');
        if (!response.ok) throw ApplicationFailure.retryable(`receiver answered ${response.status}`, 'WEBHOOK_REJECTED');
        return { status: response.status };
      },
    },
  };
}
