# syntax=docker/dockerfile:1
# One image for every role (ROLE=api|gpu|bot|projector), the operator CLI and the ComfyUI simulator.
#   docker build -t comfy-relay .
#   docker run --rm -e ROLE=api -e REDIS_URL=redis://redis:6379 comfy-relay
#   docker run --rm comfy-relay node dist/cli/main stats

ARG NODE_IMAGE=node:20-bookworm-slim

# 1. All dependencies (dev included: the TypeScript compiler), cached until package*.json change.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund

# 2. Compile src/ to dist/ (tsconfig.build.json), then drop dev dependencies.
FROM deps AS build
COPY tsconfig.json tsconfig.build.json nest-cli.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev --ignore-scripts --no-audit --no-fund

# 3. Runtime: compiled code, production node_modules and the workflow templates; runs as the unprivileged
#    `node` user (uid 1000) that the official image ships.
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    PORT=3000 \
    WORKFLOWS_DIR=/app/workflows \
    LOG_FORMAT=json
WORKDIR /app
COPY --from=build --chown=node:node /app/package.json ./package.json
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist ./dist
COPY --chown=node:node workflows ./workflows
USER node
EXPOSE 3000
# Liveness only (the process answers); readiness with dependencies is /health/ready.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/health/live').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "--max-semi-space-size=2", "dist/main"]
