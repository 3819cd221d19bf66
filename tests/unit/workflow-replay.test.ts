import { temporal } from '@temporalio/proto';
import { bundleWorkflowCode, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Histories recorded by earlier versions of MediaUploadWorkflow (tests/fixtures/histories,
 * saved by `BENCH_COST_HISTORY_DIR=… BENCH_ONLY=cost npm run bench`) must replay on today's
 * code: a change of the command sequence that is not behind `patched()` fails here with a
 * nondeterminism error, as it would fail the workflows running in production during a deploy.
 */
const dir = join(__dirname, '..', 'fixtures', 'histories');
const files = readdirSync(dir).filter((f) => f.endsWith('.json'));

describe('MediaUploadWorkflow replay', () => {
  let bundle: WorkflowBundleWithSourceMap;
  beforeAll(async () => {
    bundle = await bundleWorkflowCode({ workflowsPath: require.resolve('../../workflows'), logger: { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined, trace: () => undefined, log: () => undefined } });
  }, 120_000);

  it('has recorded histories to replay', () => {
    expect(files.length).toBeGreaterThanOrEqual(3);
  });

  it.each(files)('replays %s without nondeterminism', async (file) => {
    const history = temporal.api.history.v1.History.fromObject(JSON.parse(readFileSync(join(dir, file), 'utf8')));
    expect(history.events.length).toBeGreaterThan(10);
    await expect(Worker.runReplayHistory({ workflowBundle: bundle }, history, `replay-${file}`)).resolves.toBeUndefined();
  });
});
