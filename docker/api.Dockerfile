# syntax=docker/dockerfile:1
# Upload API image. Build from the repository root:
#   docker build -f docker/api.Dockerfile -t media-upload-api .
# Runs `node dist/services/api/main.js` under tini as uid 1000; writes nothing outside /tmp,
# so the chart can mount the root filesystem read-only.
# Debian (glibc) rather than Alpine: the Temporal SDK's native bridge and sharp's prebuilt
# libvips target glibc.
# Node 24 LTS, the NODE_VERSION of scripts/tool-versions.env (tests run on the same release).
ARG NODE_IMAGE=node:24.22.3-bookworm-slim

FROM ${NODE_IMAGE} AS base
RUN apt-get update \
 && apt-get install -y --no-install-recommends 'tini=0.19.*' \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app

# Full install (dev dependencies included) to compile TypeScript and bundle the workflows.
FROM base AS build
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build

# Tilt target: sources plus dev dependencies; live_update syncs the TypeScript sources and
# the chart's dev values run them with `tsx watch`.
FROM build AS dev
RUN chown -R 1000:1000 /app/services /app/workflows /app/activities
USER 1000:1000
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node_modules/.bin/tsx", "watch", "services/api/main.ts"]

# Production dependencies only, installed on the same base so native modules match.
FROM base AS prod-deps
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM base AS runtime
ENV NODE_ENV=production
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
USER 1000:1000
EXPOSE 8080 9464
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/services/api/main.js"]
