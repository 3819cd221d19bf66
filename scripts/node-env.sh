# Sourced by the scripts that run project code (test.sh, run-node.sh, .ci/run): puts the
# Node 24 LTS that scripts/provision.sh installs into .tools/node first on PATH, so `node`,
# `npx`, npm and every `#!/usr/bin/env node` tool (tsx, jest, eslint) run on it. A machine
# whose own node is already 24 gets no .tools/node and keeps its PATH.
node_env_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -x "$node_env_root/.tools/node/bin/node" ]; then
  export PATH="$node_env_root/.tools/node/bin:$PATH"
fi
unset node_env_root
