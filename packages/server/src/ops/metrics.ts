import { Counter, collectDefaultMetrics, Gauge, Registry } from "prom-client";
import { FastCounter, FastHistogram } from "./fast-metrics.js";

/** The kinds of stream a gateway serves, as the `kind` label says them. */
export type StreamKind = "event" | "peer";

/** The provider kinds, as the `kind` label of provider metrics says them. */
export type ProviderKind = "storage" | "cache" | "channel";

/**
 * The gateway's Prometheus metrics, in a registry of its own (two gateways in
 * one process do not share counters). Every label takes values from a fixed,
 * small set: service and method names from the served descriptors, the door,
 * the gRPC code, provider kind, name and operation. Never a key, a domain or a
 * caller.
 */
export interface GatewayMetrics {
  readonly registry: Registry;
  /** Calls by `service`, `method`, `door` (grpc, grpc-web, connect, rest, graphql) and `code` (OK, NotFound …). */
  readonly requests: FastCounter<"service" | "method" | "door" | "code">;
  /** Latency of unary calls by `service` and `method`, in seconds. */
  readonly requestDuration: FastHistogram<"service" | "method">;
  /** Streams open now by `kind`. */
  readonly openStreams: Gauge<"kind">;
  /** Items waiting in stream buffers for their client by `kind` and `group` ("true" for consumer-group members). */
  readonly bufferedItems: Gauge<"kind" | "group">;
  /** Streams ended with RESOURCE_EXHAUSTED because their client read too slowly, by `kind`. */
  readonly slowStreams: Counter<"kind">;
  /** Events handed to the channel (right after commit, or by the outbox sweep). */
  readonly eventsPublished: Counter;
  /** Events sent to stream clients of this gateway. */
  readonly eventsDelivered: Counter;
  /** Peer messages handed to the channel. */
  readonly messagesPublished: Counter;
  /** Peer messages sent to stream clients of this gateway. */
  readonly messagesDelivered: Counter;
  /** Latency of provider operations by provider `kind`, `provider` name and `operation`, in seconds. */
  readonly providerDuration: FastHistogram<"kind" | "provider" | "operation">;
  /** Provider operations that failed, by `kind`, `provider` and `operation`. */
  readonly providerErrors: FastCounter<"kind" | "provider" | "operation">;
  /**
   * What streams count per item, as plain numbers: `bufferedItems` and the
   * published and delivered counters read them when scraped. A
   * prom-client update hashes its labels every time, several per delivered
   * item, which a stream fanned out to thousands of clients cannot afford.
   */
  readonly streamCounts: StreamCounts;
}

/** Per-item stream counts, by stream kind. */
export interface StreamCounts {
  /** Items sent to clients. */
  delivered: Record<StreamKind, number>;
  /** Items handed to the channel (events, peer messages). */
  published: Record<StreamKind, number>;
  /** Items waiting for their client, in plain streams and in consumer-group members. */
  buffered: Record<StreamKind, { plain: number; group: number }>;
}

/**
 * Creates the metrics, with Node's process metrics (CPU, memory, event loop
 * lag, handles) and `stategate_build_info`.
 *
 * @example
 * const metrics = createMetrics("0.1.0");
 * const text = await metrics.registry.metrics();
 */
export function createMetrics(version: string): GatewayMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  new Gauge({
    name: "stategate_build_info",
    help: "Always 1; the labels say which build runs.",
    labelNames: ["version", "node"],
    registers,
  }).set({ version, node: process.version }, 1);
  const streamCounts: StreamCounts = {
    delivered: { event: 0, peer: 0 },
    published: { event: 0, peer: 0 },
    buffered: { event: { plain: 0, group: 0 }, peer: { plain: 0, group: 0 } },
  };
  const kinds = ["event", "peer"] as const;
  return {
    streamCounts,
    registry,
    requests: new FastCounter({
      name: "stategate_requests_total",
      help: "Calls handled, by service, method, door and gRPC code.",
      labelNames: ["service", "method", "door", "code"],
      registers,
    }),
    requestDuration: new FastHistogram({
      name: "stategate_request_duration_seconds",
      help: "Time to answer a unary call, by service and method.",
      labelNames: ["service", "method"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    openStreams: new Gauge({
      name: "stategate_open_streams",
      help: "Event and peer streams open now, by kind.",
      labelNames: ["kind"],
      registers,
    }),
    bufferedItems: new Gauge({
      name: "stategate_stream_buffered_items",
      help: "Items waiting in stream buffers for their client (the consumer lag seen by this gateway), by kind and whether the stream is a consumer-group member.",
      labelNames: ["kind", "group"],
      registers,
      collect() {
        for (const kind of kinds) {
          this.set({ kind, group: "false" }, streamCounts.buffered[kind].plain);
          this.set({ kind, group: "true" }, streamCounts.buffered[kind].group);
        }
      },
    }),
    slowStreams: new Counter({
      name: "stategate_slow_streams_total",
      help: "Streams ended with RESOURCE_EXHAUSTED because their client read too slowly, by kind.",
      labelNames: ["kind"],
      registers,
    }),
    eventsPublished: new Counter({
      name: "stategate_events_published_total",
      help: "Events handed to the channel, right after commit or by the outbox sweep.",
      registers,
      collect() {
        this.reset();
        this.inc(streamCounts.published.event);
      },
    }),
    eventsDelivered: new Counter({
      name: "stategate_events_delivered_total",
      help: "Events sent to stream clients of this gateway.",
      registers,
      collect() {
        this.reset();
        this.inc(streamCounts.delivered.event);
      },
    }),
    messagesPublished: new Counter({
      name: "stategate_peer_messages_published_total",
      help: "Peer messages handed to the channel.",
      registers,
      collect() {
        this.reset();
        this.inc(streamCounts.published.peer);
      },
    }),
    messagesDelivered: new Counter({
      name: "stategate_peer_messages_delivered_total",
      help: "Peer messages sent to stream clients of this gateway.",
      registers,
      collect() {
        this.reset();
        this.inc(streamCounts.delivered.peer);
      },
    }),
    providerDuration: new FastHistogram({
      name: "stategate_provider_operation_duration_seconds",
      help: "Time of provider operations, by provider kind, provider and operation.",
      labelNames: ["kind", "provider", "operation"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    providerErrors: new FastCounter({
      name: "stategate_provider_errors_total",
      help: "Provider operations that failed, by provider kind, provider and operation.",
      labelNames: ["kind", "provider", "operation"],
      registers,
    }),
  };
}
