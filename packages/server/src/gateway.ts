import { randomUUID } from "node:crypto";
import { setMaxListeners } from "node:events";
import type { DescService } from "@bufbuild/protobuf";
import type { ConnectRouter } from "@connectrpc/connect";
import { createRouterTransport } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { Event, PeerMessage } from "@stategate/api";
import {
  CacheService,
  EntityService,
  EventSchema,
  EventService,
  keepByteOrderMarks,
  MutexService,
  PeerMessageSchema,
  PeerService,
} from "@stategate/api";
import type { Cache, Channel, Storage } from "@stategate/providers";
import { createCache, createChannel, createStorage, ProviderConfigError } from "@stategate/providers";
import type { Logger } from "pino";
import { compilePolicies, policyInterceptors } from "./auth/policy.js";
import { createVerifier } from "./auth/verifier.js";
import type { Config } from "./config.js";
import { ConfigError, storageFileVariable } from "./config.js";
import { kRequestId, methodName } from "./context.js";
import { decodeKeeping } from "./encoding.js";
import { shuttingDown } from "./errors.js";
import { withCors } from "./front/cors.js";
import type { AnyRequest, AnyResponse, Door, DoorContext } from "./front/door.js";
import { DOOR_HEADER } from "./front/door.js";
import { kEndCall, nodeCallContext } from "./front/end-call.js";
import { createGraphqlDoor } from "./front/graphql/index.js";
import type { GrpcDirectOptions } from "./front/grpc-direct.js";
import { createDirectGrpc } from "./front/grpc-direct.js";
import { addressedToLoopback, loopbackHostsOnly, refuseForeignUpgrade } from "./front/host.js";
import type { HiddenError } from "./front/internal-errors.js";
import { hideInternalErrors } from "./front/internal-errors.js";
import type { ListenTls, StreamTaker, Upgrade } from "./front/listener.js";
import { listen } from "./front/listener.js";
import { answerNoRoute } from "./front/no-route.js";
import { createRestDoor } from "./front/rest/index.js";
import { guardTransport } from "./front/transport-guards.js";
import { Health as HealthService } from "./gen/health/v1/health_pb.js";
import { createInterceptors } from "./interceptors.js";
import { metricsInterceptor, streamInterceptor } from "./ops/calls.js";
import type { HealthOptions } from "./ops/health.js";
import { createHealth } from "./ops/health.js";
import { createHealthService } from "./ops/health-service.js";
import { instrumentCache, instrumentChannel, instrumentStorage } from "./ops/instrument.js";
import { createMetrics } from "./ops/metrics.js";
import { createReflectionServices, REFLECTION_SERVICES } from "./ops/reflection.js";
import type { OpsServer } from "./ops/server.js";
import { startOpsServer } from "./ops/server.js";
import { VERSION } from "./ops/version.js";
import { createCacheService } from "./services/cache.js";
import { toEvent } from "./services/convert.js";
import type { ServiceDeps } from "./services/deps.js";
import { createEntityService } from "./services/entity.js";
import { createEventService } from "./services/event.js";
import { createMutexService } from "./services/mutex.js";
import { createPeerService } from "./services/peer.js";
import { Hub } from "./streams/hub.js";
import type { RelayOptions } from "./streams/relay.js";
import { EventRelay } from "./streams/relay.js";

/** Tuning that is not configuration: tests use it to run the outbox sweep fast. */
export interface GatewayOptions {
  relay?: RelayOptions;
  /** Provider ping timeout and Watch interval of the health checks. */
  health?: HealthOptions;
  /** How long a stream whose client fell too far behind may take to read its error before the call is cut, default 1000 ms. */
  slowStreamGraceMs?: number;
}

/** A running gateway. */
export interface Gateway {
  /** The port it listens on (useful with STATEGATE_PORT=0). */
  readonly port: number;
  /** The port of /metrics, /healthz and /readyz, or null with STATEGATE_METRICS_PORT=off. */
  readonly metricsPort: number | null;
  /** How many event and peer streams are open on this gateway. */
  openStreams(): number;
  /**
   * Stops accepting calls, ends open streams, waits for calls in flight (up to
   * the configured grace), then closes the providers.
   */
  close(): Promise<void>;
}

/**
 * Starts a gateway: opens the providers named in the configuration, then
 * serves gRPC, gRPC-Web and Connect on one port.
 *
 * @example
 * const gateway = await startGateway(loadConfig(), createLogger(config));
 */
export async function startGateway(config: Config, log: Logger, options: GatewayOptions = {}): Promise<Gateway> {
  // Every door reads strings as sent, a leading U+FEFF included.
  keepByteOrderMarks();
  // A policy that cannot run stops start-up before any backend is opened.
  const policies = compilePolicies(config.policies);
  const opened: { close(): Promise<void> }[] = [];
  const metrics = createMetrics(VERSION);
  let ops: OpsServer | undefined;
  try {
    const storage: Storage = instrumentStorage(
      await named(
        "STATEGATE_STORAGE_PROVIDER",
        () => createStorage(config.storage, { dataDir: config.dataDir }),
        storageFileVariable(config.storage),
      ),
      metrics,
    );
    opened.push(storage);
    const rawCache = await named("STATEGATE_CACHE_PROVIDER", () => createCache(config.cache));
    const cache: Cache = instrumentCache(rawCache, metrics);
    opened.push(cache);
    const channel: Channel = instrumentChannel(
      await named("STATEGATE_CHANNEL_PROVIDER", () => createChannel(config.channel)),
      metrics,
    );
    opened.push(channel);
    const health = createHealth({ storage, cache, channel }, log, options.health);

    const shutdown = new AbortController();
    // Every open stream listens on it, so thousands of listeners are expected.
    setMaxListeners(0, shutdown.signal);
    // Events can reach the channel twice (publish, then outbox sweep): keyed by position, the copy is dropped.
    const events = new Hub<Event>(
      channel,
      "events",
      (b) => decodeKeeping(EventSchema, b),
      log,
      (e) => e.position,
      // Live events reach every stream in position order (see streams/sequencer.ts).
      {
        positionOf: (e) => e.position,
        last: async () => BigInt(await storage.lastPosition()),
        after: async (position, limit) => (await storage.eventsAfter(Number(position), limit)).map(toEvent),
      },
    );
    const messages = new Hub<PeerMessage>(channel, "messages", (b) => decodeKeeping(PeerMessageSchema, b), log);
    const relay = new EventRelay(storage, events, log, { claimSweep: sweepClaim(rawCache), ...options.relay });
    relay.start();
    const slowGraceMs = options.slowStreamGraceMs ?? 1_000;
    const deps: ServiceDeps = {
      storage,
      cache,
      channel,
      events,
      messages,
      relay,
      shutdown: shutdown.signal,
      log,
      limits: { maxEntityBytes: config.maxRequestBytes, maxResponseBytes: config.maxResponseBytes },
      streamBuffer: (ctx, kind, grouped) => {
        const depth = metrics.streamCounts.buffered[kind];
        return {
          maxItems: config.maxStreamBuffer,
          onDepth: grouped
            ? (delta) => {
                depth.group += delta;
              }
            : (delta) => {
                depth.plain += delta;
              },
          onOverflow: (_error, open) => {
            metrics.slowStreams.inc({ kind });
            log.warn(
              { requestId: ctx.values.get(kRequestId), method: methodName(ctx), code: "ResourceExhausted", kind },
              `ending a stream whose client fell ${config.maxStreamBuffer} items behind`,
            );
            // A client that still reads gets the error in the stream; one that does not is cut.
            const end = ctx.values.get(kEndCall);
            if (end) setTimeout(() => open() && end(), slowGraceMs).unref();
          },
        };
      },
    };

    // One implementation of each service, whichever path a call takes.
    const implemented = [
      { service: EntityService, impl: createEntityService(deps) },
      { service: EventService, impl: createEventService(deps) },
      { service: PeerService, impl: createPeerService(deps) },
      { service: CacheService, impl: createCacheService(deps) },
      { service: MutexService, impl: createMutexService(deps) },
    ] as const;
    const onHidden = (hidden: HiddenError) => log.error(hidden, "response failed");
    const routes = (router: ConnectRouter) => {
      for (const { service, impl } of implemented) router.service(service as DescService, impl as never);
      // Probes and schema tools call without credentials: counted, never authenticated.
      const open = { interceptors: [metricsInterceptor(metrics)] };
      router.service(HealthService, createHealthService(health, shutdown.signal), open);
      router.service(REFLECTION_SERVICES[0], reflection.v1, open);
      router.service(REFLECTION_SERVICES[1], reflection.v1alpha, open);
      // Errors raised while Connect writes a response (serializing it) never pass the interceptors.
      hideInternalErrors(router, onHidden);
    };
    const served = [EntityService, EventService, PeerService, CacheService, MutexService];
    const reflection = createReflectionServices([...served, HealthService]);
    const interceptors = [
      metricsInterceptor(metrics),
      ...createInterceptors(log, createVerifier(config.auth, log), config.auth.clockSkewSeconds * 1000),
      ...policyInterceptors(policies, config.auth, log),
      streamInterceptor(config.maxOpenStreams, metrics),
    ];
    if (config.auth.mode === "loopback") {
      log.warn("no STATEGATE_JWKS_URI: callers are not authenticated, so only loopback is served (STATEGATE_HOST)");
    } else if (config.auth.mode === "disabled") {
      log.warn("STATEGATE_AUTH_DISABLED=true: callers are not authenticated");
    }
    const doorContext: DoorContext = {
      services: served,
      transport: createRouterTransport(routes, { router: { interceptors, readMaxBytes: config.maxRequestBytes } }),
      doorHeader: DOOR_HEADER,
      config,
      log,
      shutdown: shutdown.signal,
    };
    const doors: Door[] = [createRestDoor(doorContext), createGraphqlDoor(doorContext)];
    const handler = connectNodeAdapter({
      routes,
      interceptors,
      // Larger requests are refused with RESOURCE_EXHAUSTED before they are buffered whole.
      readMaxBytes: config.maxRequestBytes,
      // A misspelt field (expectVersion) must not be dropped silently: INVALID_ARGUMENT naming it, as on REST and GraphQL.
      jsonOptions: { ignoreUnknownFields: false },
      grpc: true,
      grpcWeb: true,
      connect: true,
      // Lets a stream whose client stopped reading be cut at the transport.
      contextValues: nodeCallContext,
      // What is not an RPC path may be REST or GraphQL.
      fallback: (req, res) => void serveDoors(doors, req, res, log),
    });
    // CORS wraps every door at once: RPC, REST and GraphQL.
    // Without authentication only loopback is served, so only loopback host names are answered (DNS rebinding).
    const loopbackOnly = config.auth.mode === "loopback";
    const corsOn = config.cors.allowOrigins.length > 0;
    // gRPC calls, the bulk of the traffic, skip connect-node's per-call pipeline
    // and Node's request objects; those the transport rules must see go the usual way.
    const direct = createDirectGrpc({
      services: implemented as unknown as GrpcDirectOptions["services"],
      interceptors,
      readMaxBytes: config.maxRequestBytes,
      onHidden,
      accepts: (headers) =>
        (!loopbackOnly || addressedToLoopback(headers)) && !(corsOn && headers.origin !== undefined),
    });
    // Deadlines too long for a timer, and writes stuck on a closed HTTP/2 stream, are dealt with before any door.
    const withOrigins = withCors(guardTransport(handler), config.cors);
    const listener = await listenOn(
      loopbackOnly ? loopbackHostsOnly(withOrigins) : withOrigins,
      config.host,
      config.port,
      (req, socket, head) =>
        (loopbackOnly && refuseForeignUpgrade(req.headers, socket)) ||
        doors.some((door) => door.upgrade?.(req, socket, head)),
      config.tls,
      direct,
    );
    if (config.metricsPort !== null) {
      try {
        ops = await startOpsServer({
          host: config.host,
          port: config.metricsPort,
          metrics,
          health,
          log,
          loopbackHostsOnly: loopbackOnly,
        });
      } catch (err) {
        await listener.close(0);
        const code = (err as NodeJS.ErrnoException).code;
        if (code === "EADDRINUSE" || code === "EACCES") {
          throw new ConfigError("STATEGATE_METRICS_PORT", `cannot listen on port ${config.metricsPort} (${code})`);
        }
        throw err;
      }
    }
    log.info(
      {
        port: listener.port,
        host: config.host,
        tls: config.tls !== undefined,
        metricsPort: ops?.port ?? null,
        storage: storage.name,
        cache: cache.name,
        channel: channel.name,
      },
      `stategate listening on ${config.tls ? "https" : "http"}://${config.host}:${listener.port}`,
    );

    let closing: Promise<void> | undefined;
    return {
      port: listener.port,
      metricsPort: ops?.port ?? null,
      openStreams: () => events.size + messages.size,
      close() {
        closing ??= (async () => {
          // Readiness turns 503 and health watchers hear NOT_SERVING before streams end.
          health.stop();
          // Open streams end with UNAVAILABLE, whatever the door, so clients reconnect elsewhere.
          shutdown.abort(shuttingDown());
          await listener.close(config.shutdownGraceMs);
          await relay.stop();
          for (const provider of opened.reverse()) {
            await provider.close().catch((err: unknown) => log.warn({ err }, "provider close failed"));
          }
          await ops?.close();
          log.info("stategate stopped");
        })();
        return closing;
      },
    };
  } catch (err) {
    for (const provider of opened.reverse()) await provider.close().catch(() => {});
    throw err;
  }
}

/** How long a gateway may keep the outbox sweep to itself; one that dies holding it holds it no longer. */
const SWEEP_LEASE_MS = 60_000;

/**
 * The outbox sweep's claim: a lock in the cache every gateway shares, under a
 * domain no client can name (names cannot contain spaces). It is taken on the
 * cache itself, not the instrumented one: the sweep's lock every second is not
 * a client's cache operation.
 */
function sweepClaim(cache: Cache): () => Promise<(() => Promise<void>) | undefined> {
  return async () => {
    const token = randomUUID();
    const held = await cache.lock("stategate internal", "outbox sweep", token, new Date(Date.now() + SWEEP_LEASE_MS));
    if (!held) return undefined;
    return async () => {
      await cache.unlock("stategate internal", "outbox sweep", token);
    };
  };
}

/**
 * Opens a provider; any failure to do so stops start-up with an error naming
 * the variable that chose it (the cause stays attached for the log): a bad
 * option names `variable`, a failure to open `openVariable` (STATEGATE_DATA_DIR
 * for the embedded store in the data directory).
 */
async function named<T>(variable: string, open: () => Promise<T>, openVariable = variable): Promise<T> {
  try {
    return await open();
  } catch (err) {
    if (err instanceof ProviderConfigError) throw new ConfigError(variable, err.message);
    const reason = err instanceof Error ? err.message : String(err);
    throw new ConfigError(openVariable, `cannot open the provider: ${reason}`, { cause: err });
  }
}

/** Answers a request that no RPC route took: the first door that claims it, else "no such route" in its protocol. */
async function serveDoors(doors: Door[], req: AnyRequest, res: AnyResponse, log: Logger): Promise<void> {
  try {
    for (const door of doors) if (await door.handle(req, res)) return;
    answerNoRoute(req, res);
  } catch (err) {
    log.error({ err }, "a door failed");
    if (!res.headersSent) res.writeHead(500, { "content-type": "application/json" });
    res.end(JSON.stringify({ code: "internal", message: "internal error", details: [] }));
  }
}

/** Listens, turning the usual failures into errors that name the variable to change. */
async function listenOn(
  handler: Parameters<typeof listen>[0],
  host: string,
  port: number,
  upgrade: Upgrade,
  secure: ListenTls | undefined,
  direct: StreamTaker,
) {
  try {
    return await listen(handler, host, port, upgrade, secure, direct);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EADDRINUSE") throw new ConfigError("STATEGATE_PORT", `port ${port} on ${host} is already in use`);
    if (code === "EACCES") throw new ConfigError("STATEGATE_PORT", `no permission to listen on port ${port}`);
    if (code === "EADDRNOTAVAIL" || code === "ENOTFOUND" || code?.startsWith("EAI_")) {
      throw new ConfigError("STATEGATE_HOST", `cannot listen on "${host}" (${code})`);
    }
    throw err;
  }
}
