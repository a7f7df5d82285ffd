import type { Cache, Channel, Storage, Topic } from "@stategate/providers";
import { VersionConflictError } from "@stategate/providers";
import type { GatewayMetrics, ProviderKind } from "./metrics.js";

const storageOperations = [
  "commit",
  "getEntity",
  "getVersion",
  "searchEntities",
  "getEvent",
  "searchEvents",
  "eventsAfter",
  "lastPosition",
  "unpublishedEvents",
  "markPublished",
  "ping",
] as const satisfies readonly (keyof Storage)[];
const cacheOperations = ["get", "set", "del", "lock", "unlock", "ping"] as const satisfies readonly (keyof Cache)[];
const channelOperations = ["publish", "subscribe", "ping"] as const satisfies readonly (keyof Channel)[];

/**
 * A view of `target` whose listed async methods record their latency and
 * failures (the backend failed, not "not found" nor a version conflict);
 * everything else passes through untouched. The `operation` label
 * comes from the fixed list, so it stays bounded.
 */
function instrument<T extends { readonly name: string }>(
  target: T,
  kind: ProviderKind,
  operations: readonly (keyof T & string)[],
  metrics: GatewayMetrics,
  onSuccess?: (operation: string, args: unknown[]) => void,
): T {
  const wrapped = new Map<PropertyKey, unknown>();
  for (const operation of operations) {
    const original = target[operation] as (...args: unknown[]) => Promise<unknown>;
    const labels = { kind, provider: target.name, operation };
    const duration = metrics.providerDuration.series(labels);
    const errors = metrics.providerErrors.series(labels);
    wrapped.set(operation, async (...args: unknown[]) => {
      const stop = duration.startTimer();
      try {
        const result = await original.apply(target, args);
        onSuccess?.(operation, args);
        return result;
      } catch (err) {
        // A version conflict is the commit's answer (another writer was first), like a
        // miss is a get's: the backend did its work. Counting it would page an operator
        // for contention. Misses are not errors at all: they return undefined or false.
        if (!(err instanceof VersionConflictError)) errors.inc();
        throw err;
      } finally {
        stop();
      }
    });
  }
  return new Proxy(target, {
    get(obj, prop) {
      if (wrapped.has(prop)) return wrapped.get(prop);
      const value = Reflect.get(obj, prop, obj);
      return typeof value === "function" ? value.bind(obj) : value;
    },
  });
}

/** Storage whose operations are timed and counted. */
export function instrumentStorage(storage: Storage, metrics: GatewayMetrics): Storage {
  return instrument(storage, "storage", storageOperations, metrics);
}

/** A cache whose operations are timed and counted. */
export function instrumentCache(cache: Cache, metrics: GatewayMetrics): Cache {
  return instrument(cache, "cache", cacheOperations, metrics);
}

/** A channel whose operations are timed and counted; a successful publish also counts as an event or a peer message published. */
export function instrumentChannel(channel: Channel, metrics: GatewayMetrics): Channel {
  return instrument(channel, "channel", channelOperations, metrics, (operation, args) => {
    if (operation !== "publish") return;
    const topic = args[0] as Topic;
    metrics.streamCounts.published[topic === "events" ? "event" : "peer"]++;
  });
}
