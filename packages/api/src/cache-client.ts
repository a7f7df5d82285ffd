import type { JsonValue } from "@bufbuild/protobuf";
import { fromJson, toJson } from "@bufbuild/protobuf";
import type { Timestamp, Value } from "@bufbuild/protobuf/wkt";
import { timestampDate, timestampFromDate, ValueSchema } from "@bufbuild/protobuf/wkt";
import type { CallOptions, Transport } from "@connectrpc/connect";
import { createClient } from "@connectrpc/connect";
import { CacheService } from "./gen/stategate/v1/cache_service_pb.js";
import { plainJson } from "./plain-json.js";

/** A cached value as the client sees it: plain JSON and a Date. */
export interface CachedValue {
  domain: string;
  key: string;
  value: JsonValue;
  /** Absent: the value never expires. */
  exp?: Date;
}

/**
 * CacheService with plain JSON values instead of google.protobuf.Value
 * messages. `exp` accepts a Date or a Timestamp (see `expiresIn`).
 */
export interface CacheClient {
  /** Stores any JSON value, including null; `exp` absent means it never expires. */
  set(
    req: { domain: string; key: string; value: JsonValue; exp?: Date | Timestamp },
    options?: CallOptions,
  ): Promise<void>;
  /** The value, or a NOT_FOUND ConnectError. */
  get(req: { domain: string; key: string }, options?: CallOptions): Promise<CachedValue>;
  /** Removes the value; removing a missing value succeeds. */
  del(req: { domain: string; key: string }, options?: CallOptions): Promise<void>;
}

/** Builds a CacheClient on a transport. */
export function createCacheClient(transport: Transport): CacheClient {
  const raw = createClient(CacheService, transport);
  return {
    async set({ domain, key, value, exp }, options) {
      await raw.set(
        {
          domain,
          key,
          value: valueMessage(value),
          exp: exp instanceof Date ? timestampFromDate(exp) : exp,
        },
        options,
      );
    },
    async get({ domain, key }, options) {
      const { cache } = await raw.get({ domain, key }, options);
      return {
        domain,
        key,
        value: cache?.value ? toJson(ValueSchema, cache.value) : null,
        ...(cache?.exp ? { exp: timestampDate(cache.exp) } : {}),
      };
    },
    async del({ domain, key }, options) {
      await raw.del({ domain, key }, options);
    },
  };
}

/** A plain JS value as a google.protobuf.Value, made JSON by `plainJson` first (as Struct fields are). */
function valueMessage(value: unknown): Value | undefined {
  const json = plainJson(value, "value");
  // undefined stays undefined, so the gateway answers "value: is required".
  return json === undefined ? undefined : fromJson(ValueSchema, json);
}
