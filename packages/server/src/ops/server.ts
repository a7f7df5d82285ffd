import http from "node:http";
import type net from "node:net";
import type { Logger } from "pino";
import { addressedToLoopback, HOST_REFUSED, oneHostOnly } from "../front/host.js";
import type { Health } from "./health.js";
import type { GatewayMetrics } from "./metrics.js";

/** Paths of the operations port. */
export const OPS_PATHS = { metrics: "/metrics", liveness: "/healthz", readiness: "/readyz" } as const;

/** The operations port: Prometheus metrics and the HTTP probes. */
export interface OpsServer {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Serves, on a port of its own (STATEGATE_METRICS_PORT), what operators and
 * orchestrators poll:
 *
 * - `GET /metrics`: Prometheus text format;
 * - `GET /healthz`: liveness, 200 while the process runs its event loop (it
 *   does not ping providers: a database outage must not restart every gateway);
 * - `GET /readyz`: readiness, 200 when every provider answers a ping, else 503
 *   with a JSON body naming the providers that are down; 503 once shutdown began.
 *
 * Kept off the API port so that the API's authentication and CORS need not
 * know about probes, and so the port can stay inside the cluster.
 *
 * @example
 * const ops = await startOpsServer({ host: "127.0.0.1", port: 9090, metrics, health, log });
 */
export async function startOpsServer(options: {
  host: string;
  port: number;
  metrics: GatewayMetrics;
  health: Health;
  log: Logger;
  /** Answer only requests addressed to a loopback host name (no authentication: see front/host.ts). */
  loopbackHostsOnly?: boolean;
}): Promise<OpsServer> {
  const { metrics, health, log } = options;
  const json = (res: http.ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
    res.end(`${JSON.stringify(body)}\n`);
  };
  const serve = (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (options.loopbackHostsOnly && !addressedToLoopback(req.headers)) return json(res, 403, { error: HOST_REFUSED });
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    const answer = async () => {
      switch (path) {
        case OPS_PATHS.metrics:
          res.writeHead(200, { "content-type": metrics.registry.contentType });
          res.end(await metrics.registry.metrics());
          return;
        case OPS_PATHS.liveness:
          return json(res, 200, { status: "ok" });
        case OPS_PATHS.readiness: {
          const { ready, stopping, checks } = await health.check();
          const down = checks.filter((c) => !c.ok).map((c) => c.kind);
          return json(res, ready ? 200 : 503, {
            status: ready ? "ready" : stopping ? "stopping" : "unavailable",
            ...(down.length > 0 ? { down } : {}),
            // Names and timings only: the reasons (hosts, driver messages) go to the log.
            providers: Object.fromEntries(checks.map((c) => [c.kind, { name: c.provider, ok: c.ok, ms: c.ms }])),
          });
        }
        default:
          return json(res, 404, { error: `no ${path} here; try ${Object.values(OPS_PATHS).join(", ")}` });
      }
    };
    answer().catch((err: unknown) => {
      log.error({ err, path }, "operations endpoint failed");
      if (!res.headersSent) json(res, 500, { error: "internal error" });
      else res.end();
    });
  };
  // A request naming several hosts is refused in every mode (see front/host.ts).
  const server = http.createServer(oneHostOnly(serve));
  server.keepAliveTimeout = 65_000;
  const sockets = new Set<net.Socket>();
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Probes and scrapes are short: whatever is still open is idle keep-alive.
        for (const socket of sockets) socket.destroy();
      }),
  };
}
