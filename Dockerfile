# syntax=docker/dockerfile:1
# The stategate gateway. Build from the repository root:
#   docker build -t stategate .
# Two stages: the first installs, builds and prunes to production dependencies;
# the second is distroless Node 20, running as the non-root user 65532.

FROM node:20-bookworm-slim AS build
WORKDIR /src
# better-sqlite3 compiles from source when no prebuilt binary matches.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY . .
RUN npx --yes pnpm@10.34.9 install --frozen-lockfile \
 && node scripts/prepare.mjs \
 && npx --yes pnpm@10.34.9 --filter @stategate/server deploy --prod --legacy /out \
 && mkdir -p /data

FROM gcr.io/distroless/nodejs20-debian12:nonroot AS runtime
WORKDIR /app
COPY --from=build /out /app
# The embedded SQLite store lives here unless a shared storage is configured.
COPY --from=build --chown=65532:65532 /data /data
ENV STATEGATE_HOST=0.0.0.0 \
    STATEGATE_PORT=8080 \
    STATEGATE_METRICS_PORT=9090 \
    STATEGATE_DATA_DIR=/data
# Listening on 0.0.0.0 needs STATEGATE_JWKS_URI (or STATEGATE_AUTH_DISABLED=true): set one when running.
USER 65532:65532
EXPOSE 8080 9090
VOLUME ["/data"]
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s \
  CMD ["/nodejs/bin/node", "-e", "fetch('http://127.0.0.1:9090/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["/nodejs/bin/node", "dist/bin/stategate.js"]
