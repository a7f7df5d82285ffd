import { fromBinary } from "@bufbuild/protobuf";
import type { ConnectRouter } from "@connectrpc/connect";
import { createRouterTransport } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { Event, PeerMessage } from "@stategate/api";
import {
  CacheService,
  EntityService,
  EventSchema,
  EventService,
  MutexService,
  PeerMessageSchema,
  PeerService,
} from "@stategate/api";
import type { Cache, Channel, Storage } from "@stategate/providers";
import { createCache, createChannel, createStorage, ProviderConfigError } from "@stategate/providers";
import type { Logger } from "pino";
import { createVerifier } from "./auth/verifier.js";
import type { Config } from "./config.js";
import { ConfigError } from "./config.js";
import { withCors } from "./front/cors.js";
import type { AnyRequest, AnyResponse, Door, DoorContext } from "./front/door.js";
import { DOOR_HEADER } from "./front/door.js";
import { createGraphqlDoor } from "./front/graphql/index.js";
import type { Upgrade } from "./front/listener.js";
import { listen } from "./front/listener.js";
import { createRestDoor } from "./front/rest/index.js";
import { createInterceptors } from "./interceptors.js";
import { createCacheService } from "./services/cache.js";
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
}

/** A running gateway. */
export interface Gateway {
  /** The port it listens on (useful with STATEGATE_PORT=0). */
  readonly port: number;
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
  const opened: { close(): Promise<void> }[] = [];
  try {
    // The embedded store lives in the data directory unless its own path is given.
    const storageVariable =
      config.storage.name === "sqlite" && config.storage.path === undefined
        ? "STATEGATE_DATA_DIR"
        : "STATEGATE_STORAGE_PROVIDER";
    const storage: Storage = await named(storageVariable, () =>
      createStorage(config.storage, { dataDir: config.dataDir }),
    );
    opened.push(storage);
    const cache: Cache = await named("STATEGATE_CACHE_PROVIDER", () => createCache(config.cache));
    opened.push(cache);
    const channel: Channel = await named("STATEGATE_CHANNEL_PROVIDER", () => createChannel(config.channel));
    opened.push(channel);

    const shutdown = new AbortController();
    // Events can reach the channel twice (publish, then outbox sweep): keyed by position, the copy is dropped.
    const events = new Hub<Event>(
      channel,
      "events",
      (b) => fromBinary(EventSchema, b),
      log,
      (e) => e.position,
    );
    const messages = new Hub<PeerMessage>(channel, "messages", (b) => fromBinary(PeerMessageSchema, b), log);
    const relay = new EventRelay(storage, events, log, options.relay);
    relay.start();
    const deps: ServiceDeps = { storage, cache, channel, events, messages, relay, shutdown: shutdown.signal, log };

    const routes = (router: ConnectRouter) => {
      router.service(EntityService, createEntityService(deps));
      router.service(EventService, createEventService(deps));
      router.service(PeerService, createPeerService(deps));
      router.service(CacheService, createCacheService(deps));
      router.service(MutexService, createMutexService(deps));
    };
    const interceptors = createInterceptors(log, createVerifier(config.auth, log), config.auth.clockSkewSeconds * 1000);
    if (config.auth.mode === "loopback") {
      log.warn("no STATEGATE_JWKS_URI: callers are not authenticated, so only loopback is served (STATEGATE_HOST)");
    } else if (config.auth.mode === "disabled") {
      log.warn("STATEGATE_AUTH_DISABLED=true: callers are not authenticated");
    }
    const doorContext: DoorContext = {
      services: [EntityService, EventService, PeerService, CacheService, MutexService],
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
      grpc: true,
      grpcWeb: true,
      connect: true,
      // What is not an RPC path may be REST or GraphQL.
      fallback: (req, res) => void serveDoors(doors, req, res, log),
    });
    // CORS wraps every door at once: RPC, REST and GraphQL.
    const listener = await listenOn(withCors(handler, config.cors), config.host, config.port, (req, socket, head) =>
      doors.some((door) => door.upgrade?.(req, socket, head)),
    );
    log.info(
      { port: listener.port, host: config.host, storage: storage.name, cache: cache.name, channel: channel.name },
      `stategate listening on ${config.host}:${listener.port}`,
    );

    let closing: Promise<void> | undefined;
    return {
      port: listener.port,
      openStreams: () => events.size + messages.size,
      close() {
        closing ??= (async () => {
          shutdown.abort();
          await listener.close(config.shutdownGraceMs);
          await relay.stop();
          for (const provider of opened.reverse()) {
            await provider.close().catch((err: unknown) => log.warn({ err }, "provider close failed"));
          }
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

/**
 * Opens a provider; any failure to do so stops start-up with an error naming
 * the variable that chose it (the cause stays attached for the log).
 */
async function named<T>(variable: string, open: () => Promise<T>): Promise<T> {
  try {
    return await open();
  } catch (err) {
    if (err instanceof ProviderConfigError) throw new ConfigError(variable, err.message);
    const reason = err instanceof Error ? err.message : String(err);
    throw new ConfigError(variable, `cannot open the provider: ${reason}`, { cause: err });
  }
}

/** Answers a request that no RPC route took: the first door that claims it, else 404. */
async function serveDoors(doors: Door[], req: AnyRequest, res: AnyResponse, log: Logger): Promise<void> {
  try {
    for (const door of doors) if (await door.handle(req, res)) return;
    res.writeHead(404, { "content-type": "application/json" });
    res.end(JSON.stringify({ code: "not_found", message: `no route for ${req.method} ${req.url?.split("?")[0]}` }));
  } catch (err) {
    log.error({ err }, "a door failed");
    if (!res.headersSent) res.writeHead(500, { "content-type": "application/json" });
    res.end(JSON.stringify({ code: "internal", message: "internal error" }));
  }
}

/** Listens, turning the usual failures into errors that name the variable to change. */
async function listenOn(handler: Parameters<typeof listen>[0], host: string, port: number, upgrade: Upgrade) {
  try {
    return await listen(handler, host, port, upgrade);
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
