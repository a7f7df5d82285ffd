import { fromJson, toJson } from "@bufbuild/protobuf";
import type { Value } from "@bufbuild/protobuf/wkt";
import { timestampDate, timestampFromDate, ValueSchema } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import type { CacheService } from "@stategate/api";
import type { JsonValue } from "@stategate/providers";
import type { ServiceDeps } from "./deps.js";

/** CacheService: JSON values with an optional absolute expiry. */
export function createCacheService(deps: ServiceDeps): ServiceImpl<typeof CacheService> {
  const { cache } = deps;
  return {
    async set(req) {
      await cache.set(req.domain, req.key, {
        // The value rule guarantees a set, finite Value.
        value: toJson(ValueSchema, req.value as Value) as JsonValue,
        expiresAt: req.exp ? timestampDate(req.exp) : undefined,
      });
      return {};
    },

    async get(req) {
      const entry = await cache.get(req.domain, req.key);
      if (!entry) throw new ConnectError(`cache value ${req.domain}/${req.key} not found`, Code.NotFound);
      return {
        cache: {
          domain: req.domain,
          key: req.key,
          value: fromJson(ValueSchema, entry.value),
          exp: entry.expiresAt ? timestampFromDate(entry.expiresAt) : undefined,
        },
      };
    },

    async del(req) {
      await cache.del(req.domain, req.key);
      return {};
    },
  };
}
