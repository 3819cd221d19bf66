#!/usr/bin/env bash
# Runs one command on the project's Node 24 (see scripts/node-env.sh), e.g.
#   bash scripts/run-node.sh tsx scripts/dev.ts
set -euo pipefail
# shellcheck source=node-env.sh
source "$(dirname "$0")/node-env.sh"
exec "$@"
