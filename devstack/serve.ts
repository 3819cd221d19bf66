import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { bundleWorkflowCode } from '@temporalio/worker';
import { startStack } from './stack';

/**
 * `tsx devstack/serve.ts <stateFile> <dataDir> [ownerPid]`: starts a throw-away stack on free loopback
 * ports, builds the workflow bundle, writes both as JSON to <stateFile> and runs until
 * SIGTERM/SIGINT or until ownerPid is gone, then it stops every server it started (and, when ownerPid
 * is gone, removes dataDir unless KEEP_TEST_DATA is set). The test harness runs it.
 */
async function main(): Promise<void> {
  const [stateFile, dataDir, ownerPid] = process.argv.slice(2);
  if (!stateFile || !dataDir) throw new Error('usage: serve.ts <stateFile> <dataDir>');
  const [stack, bundle] = await Promise.all([
    startStack({ dataDir, persistent: false }),
    bundleWorkflowCode({ workflowsPath: require.resolve('../workflows'), logger: { info: () => undefined, warn: () => undefined, error: console.error, debug: () => undefined, trace: () => undefined, log: () => undefined } }),
  ]);
  const bundlePath = `${dataDir}/workflow-bundle.js`;
  writeFileSync(bundlePath, bundle.code);
  let stopping = false;
  /** `orphaned`: the run that owns the stack ended without its teardown (killed), which would have removed dataDir. */
  const stop = (orphaned = false) => {
    if (stopping) return;
    stopping = true;
    void stack.stop().then(() => {
      // Hundreds of MB (PostgreSQL, S3 volumes) that nobody reads once the run is gone.
      if (orphaned && !process.env.KEEP_TEST_DATA) rmSync(dataDir, { recursive: true, force: true });
      process.exit(0);
    });
  };
  // Fault tests restart PostgreSQL under the running platform with SIGUSR2.
  process.on('SIGUSR2', () => {
    void stack.restartPostgres().catch((err: unknown) => console.error('postgres restart failed', err));
  });
  process.on('SIGTERM', () => stop());
  process.on('SIGINT', () => stop());
  // The stack never outlives the test run that started it, however that run ends.
  if (ownerPid) {
    setInterval(() => {
      try {
        process.kill(Number(ownerPid), 0);
      } catch {
        stop(true);
      }
    }, 1000).unref();
  }
  writeFileSync(`${stateFile}.tmp`, JSON.stringify({ env: stack.env, urls: stack.urls, temporal: stack.temporal, workflowBundlePath: bundlePath, dataDir, servePid: process.pid }));
  renameSync(`${stateFile}.tmp`, stateFile);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
