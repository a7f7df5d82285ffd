import { randomBytes } from "node:crypto";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import type { MutexService } from "@stategate/api";
import type { ServiceDeps } from "./deps.js";

/** MutexService: only the token returned by Lock releases a lock. */
export function createMutexService(deps: ServiceDeps): ServiceImpl<typeof MutexService> {
  const { cache } = deps;
  return {
    async lock(req) {
      // The exp rule guarantees it is set and in the future.
      const expiresAt = timestampDate(req.exp as NonNullable<typeof req.exp>);
      const token = randomBytes(18).toString("base64url");
      if (!(await cache.lock(req.domain, req.key, token, expiresAt))) {
        throw new ConnectError(`lock ${req.domain}/${req.key} is held`, Code.AlreadyExists);
      }
      return { token };
    },

    async unlock(req) {
      if (!(await cache.unlock(req.domain, req.key, req.token))) {
        throw new ConnectError(`lock ${req.domain}/${req.key} is not held with this token`, Code.FailedPrecondition);
      }
      return {};
    },
  };
}
