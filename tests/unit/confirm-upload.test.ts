import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { UploadService, uploadInput } from '../../services/api/upload-sessions';
import { loadConfig } from '../../services/shared/config';
import type { MediaRow } from '../../services/shared/db/entities';
import type { MediaRepository } from '../../services/shared/db/media-repository';
import type { Storage } from '../../services/shared/storage';

/**
 * `complete`'s confirmation (UploadService.confirm) with a recording fake of the Temporal client:
 * which call it makes before and after the deadline, and how Temporal's refusals answer.
 */
const config = loadConfig({ DATABASE_URL: 'postgres://x', JWT_SECRET: 's', CONFIRM_GRACE_SECONDS: '300', UPLOAD_URL_TTL_SECONDS: '900' });
const expiresAt = new Date('2026-12-01T12:00:00Z');
const deadline = expiresAt.getTime() + 300_000;
const row = {
  id: '6f1c1f2e-3b7a-4f57-9d0e-0d6a4c1b2a10',
  userId: 'auth0|someone',
  tenantId: 'default',
  projectId: null,
  mediaType: 'POST_IMAGE',
  mimeType: 'image/jpeg',
  fileSize: 2048,
  storageKey: 'k/x.jpg',
  uploadId: null,
  partCount: null,
  expiresAt,
  workflowId: 'media-upload/6f1c1f2e-3b7a-4f57-9d0e-0d6a4c1b2a10',
  fileName: 'x.jpg',
} as unknown as MediaRow;

function service(at: number, fail?: Error) {
  const calls: Array<{ kind: 'signalWithStart' | 'signal'; options?: Record<string, unknown>; workflowId?: string }> = [];
  const temporal = {
    workflow: {
      signalWithStart: async (_type: unknown, options: Record<string, unknown>) => {
        calls.push({ kind: 'signalWithStart', options });
        if (fail) throw fail;
      },
      getHandle: (workflowId: string) => ({
        signal: async () => {
          calls.push({ kind: 'signal', workflowId });
          if (fail) throw fail;
        },
      }),
    },
  } as unknown as Client;
  const uploads = new UploadService({ config, storage: {} as Storage, media: {} as MediaRepository, temporal, now: () => new Date(at) });
  return { uploads, calls };
}

describe('UploadService.confirm', () => {
  it('uses Signal-With-Start until the deadline (and an hour after), with the row as input and no start delay', async () => {
    for (const at of [expiresAt.getTime() - 60_000, deadline + 3_600_000]) {
      const { uploads, calls } = service(at);
      await uploads.confirm(row, { source: 'client' });
      expect(calls).toHaveLength(1);
      expect(calls[0]!.kind).toBe('signalWithStart');
      expect(calls[0]!.options).toMatchObject({ workflowId: row.workflowId, signalArgs: [{ source: 'client' }], startDelay: undefined, args: [uploadInput(config, row)] });
      expect((calls[0]!.options!.args as Array<{ confirmDeadline: number }>)[0]!.confirmDeadline).toBe(deadline);
    }
  });

  it('sends a plain signal past that, so that it never starts a run for a workflow Temporal no longer keeps', async () => {
    const { uploads, calls } = service(deadline + 3_600_001);
    await uploads.confirm(row, { source: 'client' });
    expect(calls).toEqual([{ kind: 'signal', workflowId: row.workflowId }]);
  });

  it('answers 409 INVALID_STATE when the workflow has closed or is gone, and passes other errors on', async () => {
    const closed = new WorkflowExecutionAlreadyStartedError('Workflow execution already started', row.workflowId, 'MediaUploadWorkflow');
    await expect(service(deadline - 1, closed).uploads.confirm(row, { source: 'client' })).rejects.toMatchObject({ code: 'INVALID_STATE', status: 409 });
    const gone = new WorkflowNotFoundError('not found', row.workflowId, undefined);
    await expect(service(deadline + 3_600_001, gone).uploads.confirm(row, { source: 'client' })).rejects.toMatchObject({ code: 'INVALID_STATE', status: 409 });
    const down = new Error('14 UNAVAILABLE: connection refused');
    await expect(service(deadline - 1, down).uploads.confirm(row, { source: 'client' })).rejects.toBe(down);
  });
});
