# syntax=docker/dockerfile:1
# One image for every gpufleet component; the first argument picks which one runs:
#   docker run gpufleet:dev operator     (the default)
#   docker run gpufleet:dev agent
#   docker run gpufleet:dev gateway
# Build: docker build -t gpufleet:dev .
ARG NODE_IMAGE=node:20-slim

# --- build: compile TypeScript (crds/src, common/src, operator/src, agent/src, gateway/src) to dist/ with the dev dependencies.
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY crds/src crds/src
COPY common/src common/src
COPY operator/src operator/src
COPY agent/src agent/src
COPY gateway/src gateway/src
RUN npm run build

# --- runtime: production dependencies, compiled JS and the agent's .proto files (loaded at run time from
# dist/agent/proto, next to dist/agent/src where the loader resolves them).
FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: no production dependency needs an install script, and none should run in the image build.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /src/dist ./dist
COPY agent/proto ./dist/agent/proto
# A numeric non-root user, so Kubernetes' runAsNonRoot can verify it; the chart runs as the same uid.
RUN groupadd --gid 10001 gpufleet && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin gpufleet
USER 10001:10001
# exec: node becomes PID 1 and receives SIGTERM directly (both components shut down cleanly on it).
ENTRYPOINT ["/bin/sh", "-c", "case \"$0\" in operator|agent|gateway) exec node \"/app/dist/$0/src/main.js\" \"$@\" ;; *) echo \"usage: operator | agent | gateway\" >&2; exit 64 ;; esac"]
CMD ["operator"]
