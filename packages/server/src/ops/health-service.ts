import type { ServiceImpl } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  type Health as HealthService,
  HealthCheckResponse_ServingStatus as Status,
} from "../gen/health/v1/health_pb.js";
import { linkSignals } from "../streams/signals.js";
import type { Health, Readiness } from "./health.js";
import type { ProviderKind } from "./metrics.js";

/**
 * What each served service needs up to serve. "" is the whole gateway.
 * Entity writes need storage only: a publish that fails waits in the outbox.
 */
const needs: Record<string, readonly ProviderKind[]> = {
  "": ["storage", "cache", "channel"],
  "stategate.v1.EntityService": ["storage"],
  "stategate.v1.EventService": ["storage", "channel"],
  "stategate.v1.PeerService": ["channel"],
  "stategate.v1.CacheService": ["cache"],
  "stategate.v1.MutexService": ["cache"],
  "grpc.health.v1.Health": [],
  "grpc.reflection.v1.ServerReflection": [],
  "grpc.reflection.v1alpha.ServerReflection": [],
};

function statusOf(service: string, readiness: Readiness): Status {
  const kinds = needs[service];
  if (kinds === undefined) return Status.SERVICE_UNKNOWN;
  if (readiness.stopping) return Status.NOT_SERVING;
  const down = new Set(readiness.checks.filter((c) => !c.ok).map((c) => c.kind));
  return kinds.some((kind) => down.has(kind)) ? Status.NOT_SERVING : Status.SERVING;
}

/**
 * grpc.health.v1.Health over the gateway's health: Check and List answer from
 * fresh provider pings, Watch sends the status at once and then each change.
 * A service the gateway does not serve is NOT_FOUND for Check, and
 * SERVICE_UNKNOWN for Watch, as the protocol says.
 */
export function createHealthService(health: Health, shutdown: AbortSignal): ServiceImpl<typeof HealthService> {
  return {
    async check(req) {
      if (needs[req.service] === undefined) {
        throw new ConnectError(`unknown service "${req.service}"`, Code.NotFound);
      }
      return { status: statusOf(req.service, await health.check()) };
    },

    async list() {
      const readiness = await health.check();
      const statuses: Record<string, { status: Status }> = {};
      for (const service of Object.keys(needs)) {
        if (service !== "") statuses[service] = { status: statusOf(service, readiness) };
      }
      return { statuses };
    },

    async *watch(req, ctx) {
      const { signal, unlink } = linkSignals(ctx.signal, shutdown);
      const pending: Status[] = [];
      let wake: (() => void) | undefined;
      const push = (status: Status) => {
        pending.push(status);
        wake?.();
      };
      const onAbort = () => wake?.();
      signal.addEventListener("abort", onAbort);
      let last: Status | undefined;
      const unwatch = needs[req.service] === undefined ? () => {} : health.watch((r) => push(statusOf(req.service, r)));
      try {
        push(needs[req.service] === undefined ? Status.SERVICE_UNKNOWN : statusOf(req.service, await health.check()));
        while (true) {
          const status = pending.shift();
          if (status === undefined) {
            // What was pending is sent first: a shutdown's NOT_SERVING reaches watchers before the stream ends.
            if (signal.aborted) return;
            await new Promise<void>((resolve) => {
              wake = resolve;
            });
            wake = undefined;
            continue;
          }
          if (status === last) continue;
          last = status;
          yield { status };
        }
      } finally {
        unwatch();
        signal.removeEventListener("abort", onAbort);
        unlink();
      }
    },
  };
}
