# syntax=docker/dockerfile:1
# Worker image for both pools (the chart picks the entry point):
#   node dist/services/worker/light-worker.js   task queue media-light
#   node dist/services/worker/video-worker.js   task queue media-video (ffmpeg, ffprobe)
# Build from the repository root:
#   docker build -f docker/worker.Dockerfile -t media-upload-worker .
# Runs under tini as uid 1000, writes only to /tmp; WORKFLOW_BUNDLE_PATH points at the
# workflow bundle prebuilt by `npm run build`.
# Node 24 LTS, the NODE_VERSION of scripts/tool-versions.env (tests run on the same release).
ARG NODE_IMAGE=node:24.22.3-bookworm-slim

FROM ${NODE_IMAGE} AS base
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# ffmpeg and perl come from the same pinned list the test provisioning installs
# (scripts/tool-versions.env, DEBIAN_PACKAGES), so tests and image run the same version. perl
# runs ExifTool (npm exiftool-vendored ships the script), which removes location and
# descriptions from image originals before they are published; the slim image has perl-base only.
# clamd is not needed here: it runs in its own Deployment. set -f hands the version globs
# (7:5.1.*) to apt unexpanded. setpriv (util-linux, essential in Debian) ties ffmpeg and the
# PDF analyzer to the worker process (services/shared/child-process.ts): the build checks it.
COPY scripts/tool-versions.env /tmp/tool-versions.env
# DL3008: ffmpeg and perl are pinned, from tool-versions.env (the pkgs array), which hadolint cannot read.
# hadolint ignore=DL3008
RUN source /tmp/tool-versions.env \
 && set -f && pkgs=() \
 && for p in $DEBIAN_PACKAGES; do case "$p" in ffmpeg=*|perl=*) pkgs+=("$p") ;; esac; done \
 && [ "${#pkgs[@]}" -eq 2 ] || { echo "no ffmpeg or perl pin in DEBIAN_PACKAGES" >&2; exit 1; } \
 && apt-get update \
 && apt-get install -y --no-install-recommends tini=0.19.* "${pkgs[@]}" \
 && rm -rf /var/lib/apt/lists/* /tmp/tool-versions.env \
 && ffmpeg -version >/dev/null && ffprobe -version >/dev/null && perl -MCompress::Zlib -e 1 \
 && setpriv --pdeathsig SIGKILL -- true
WORKDIR /app

# Full install (dev dependencies included) to compile TypeScript and bundle the workflows.
FROM base AS build
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build && test -s dist/workflow-bundle.js

# Tilt target: sources plus dev dependencies; live_update syncs the TypeScript sources and
# the chart's dev values run them with `tsx watch`.
FROM build AS dev
RUN chown -R 1000:1000 /app/services /app/workflows /app/activities
USER 1000:1000
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node_modules/.bin/tsx", "watch", "services/worker/light-worker.ts"]

# Production dependencies only, installed on the same base so native modules match.
FROM base AS prod-deps
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM base AS runtime
ENV NODE_ENV=production \
    WORKFLOW_BUNDLE_PATH=/app/dist/workflow-bundle.js \
    METRICS_PORT=9464 \
    TEMPORAL_METRICS_PORT=9465
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
# The vendored ExifTool runs on this image's perl.
RUN perl node_modules/exiftool-vendored.pl/bin/exiftool -ver >/dev/null
USER 1000:1000
EXPOSE 9464 9465
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/services/worker/light-worker.js"]
