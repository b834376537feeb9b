# House Party peer image: `houseparty` on the official Node.js 24 image.
#   docker build -t houseparty:dev .
#   docker run --rm houseparty:dev --help
# Runs as a non-root user with a read-only root filesystem; data lives in /data (a volume).

FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# Scripts are skipped: the image's own Node.js runs the build, not the `node` devDependency.
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN node node_modules/typescript/bin/tsc -p tsconfig.build.json \
  && npm prune --omit=dev --ignore-scripts \
  && npm cache clean --force

FROM node:24-bookworm-slim
# tini is PID 1: it forwards SIGTERM to the peer (which then leaves the party gracefully) and reaps zombies.
RUN apt-get update \
  && apt-get install -y --no-install-recommends tini \
  && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production \
  HOUSEPARTY_HOST=0.0.0.0 \
  HOUSEPARTY_DATA=/data
WORKDIR /app
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
# `houseparty` on the PATH too, for `kubectl exec` and the chart's `helm test` pod.
RUN chmod 755 /app/dist/cli/main.js \
  && ln -s /app/dist/cli/main.js /usr/local/bin/houseparty \
  && mkdir -p /data \
  && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 7400/udp 7400/tcp 7480/tcp 7490/tcp
# --initial-heap-size cannot come from NODE_OPTIONS; see the README ("Two commands").
ENTRYPOINT ["/usr/bin/tini", "--", "node", "--initial-heap-size=128", "--max-semi-space-size=2", "/app/dist/cli/main.js"]
CMD ["peer"]
