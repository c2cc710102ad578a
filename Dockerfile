# Image of the Jarvis API node and task worker: the same image, started with a different command
# (docker-compose.yml: `node workers/api.ts` or `node workers/task-worker.ts`).
# No build step: Node 24 runs the TypeScript sources directly (type stripping).
FROM node:24-bookworm-slim

ENV NODE_ENV=production
WORKDIR /app

# Dependencies before sources, so a code change does not re-install them.
#  --omit=dev         the `node` devDependency (a Node binary for local runs) and the test tooling
#                     stay out; the image's own Node 24 runs the app.
#  --ignore-scripts   no production dependency needs its install script: native code (@swc/core,
#                     @node-rs/argon2, Temporal's core-bridge) ships as prebuilt per-platform packages.
COPY package.json package-lock.json ./
# npm install, not npm ci: the lockfile is made where other platforms' optional native
# packages cannot be resolved, and npm ci rejects it for that; install still follows it.
RUN npm install --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

COPY tsconfig.json ./
COPY src ./src
COPY workflows ./workflows
COPY activities ./activities
COPY workers ./workers
COPY migrations ./migrations

# Unprivileged user of the node image. The files above stay root-owned: the app cannot rewrite
# its own code. (MikroORM's schema snapshot after migrating is skipped on a read-only directory.)
# Uploaded files (DATA_DIR) go on a volume mounted here; the app user must own it.
RUN mkdir -p /data && chown node:node /data
USER node
EXPOSE 3000
CMD ["node", "workers/api.ts"]
