#!/usr/bin/env bash
# `npm run test:temporal-server`: the upload-flow, lifecycle and ops integration suites on the
# production Temporal server (PostgreSQL persistence + SQL visibility) instead of the dev server,
# and `DEV_TEMPORAL=server npm run dev` with the README walkthroughs against it (dev-stack).
# Not part of `npm test`. Builds the server first when this machine has not (scripts/provision.sh
# temporal-server). Extra arguments go to jest.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/provision.sh || exit 1
bash scripts/provision.sh temporal-server || exit 1
# shellcheck source=node-env.sh
source scripts/node-env.sh
export TEMPORAL_MODE=server DEV_TEMPORAL=server
npx jest --runInBand --selectProjects integration --testPathPatterns "tests/integration/(upload-flow|lifecycle|ops|dev-stack)\.test\.ts$" "$@"
