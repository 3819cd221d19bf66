#!/usr/bin/env bash
# `npm test`: provisions what is missing, type-checks, lints, then runs every jest test
# (unit + integration on real servers, chart tests with helm) and prints one summary line.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/provision.sh || exit 1
# Node 24 from .tools/node (when provisioning installed it) runs tsc, eslint, jest and the servers.
# shellcheck source=node-env.sh
source scripts/node-env.sh
# The demo and Uppy pages (browser code, DOM types) are TypeScript projects of their own.
(npx tsc --noEmit -p tsconfig.json && npx tsc --noEmit -p services/api/demo && npx tsc --noEmit -p services/api/uppy) || { echo "typecheck failed"; exit 1; }
npx eslint . || { echo "lint failed"; exit 1; }
mkdir -p test-artifacts
npx jest --runInBand --json --outputFile=test-artifacts/jest-results.json "$@"
status=$?
# Jest writes no results file when its global teardown fails (e.g. a storage invariant).
[ -f test-artifacts/jest-results.json ] || { echo "no test results written (see the error above)"; exit $status; }
node -e '
  const r = require("./test-artifacts/jest-results.json");
  const skipped = r.numPendingTests + r.numTodoTests;
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed` + (skipped ? `, ${skipped} skipped` : ""));
' || true
exit $status
