import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { Client, Transport } from "@connectrpc/connect";
import { createClient } from "@connectrpc/connect";
import type { CacheClient } from "./cache-client.js";
import { createCacheClient } from "./cache-client.js";
import { cancelOnBreak } from "./cancel-on-break.js";
import { EntityService } from "./gen/stategate/v1/entity_service_pb.js";
import { EventService } from "./gen/stategate/v1/event_service_pb.js";
import { MutexService } from "./gen/stategate/v1/mutex_service_pb.js";
import { PeerService } from "./gen/stategate/v1/peer_service_pb.js";
import { plainJsonTransport } from "./plain-json.js";

/**
 * Typed clients for the five stategate services over one transport, plus
 * helpers. Entity values, message bodies and cache values are plain JSON
 * (`JsonObject` / `JsonValue`); int64 fields are `bigint`; server streams are
 * async iterables, and breaking out of a `for await` loop cancels the call.
 */
export interface StategateClient {
  /** Current state of entities; every mutation records an event. */
  readonly entity: Client<typeof EntityService>;
  /** History of entity changes, and live streams of new ones. */
  readonly event: Client<typeof EventService>;
  /** Non-persisted messages between clients. */
  readonly peer: Client<typeof PeerService>;
  /** Short-lived JSON values, as plain JSON. */
  readonly cache: CacheClient;
  /** Distributed locks. */
  readonly mutex: Client<typeof MutexService>;
  /**
   * Takes the lock `domain`/`key` for `ttlMs` milliseconds, runs `fn`, and
   * releases the lock with its token even when `fn` throws. Fails with
   * ALREADY_EXISTS when the lock is held.
   *
   * @example
   * await client.withLock("billing", "invoice-42", 5_000, async () => charge());
   */
  withLock<T>(domain: string, key: string, ttlMs: number, fn: () => Promise<T> | T): Promise<T>;
}

/** Builds a `StategateClient` on any Connect transport (gRPC, gRPC-Web or Connect; Node or browser). */
export function createStategateClient(wire: Transport): StategateClient {
  // Plain JS values become JSON the same way whatever the protocol and encoding.
  const transport = plainJsonTransport(wire);
  const mutex = createClient(MutexService, transport);
  return {
    entity: createClient(EntityService, transport),
    event: cancelOnBreak(EventService, createClient(EventService, transport)),
    peer: cancelOnBreak(PeerService, createClient(PeerService, transport)),
    cache: createCacheClient(transport),
    mutex,
    async withLock(domain, key, ttlMs, fn) {
      const { token } = await mutex.lock({ domain, key, exp: expiresIn(ttlMs) });
      try {
        return await fn();
      } finally {
        await mutex.unlock({ domain, key, token });
      }
    },
  };
}

/** A Timestamp `ms` milliseconds from now, for cache and lock expiries. */
export function expiresIn(ms: number): Timestamp {
  return timestampFromMs(Date.now() + ms);
}
