import type { Logger } from "pino";
import type { ProviderKind } from "./metrics.js";

/** A provider as health sees it: something to ping. */
export interface Pingable {
  readonly name: string;
  ping(): Promise<void>;
}

/** The outcome of pinging one provider. */
export interface ProviderCheck {
  kind: ProviderKind;
  /** The provider's name, e.g. "mysql". */
  provider: string;
  ok: boolean;
  ms: number;
  /** Why it failed, for the log; never sent in a probe response. */
  error?: string;
}

/** Whether the gateway can serve, and why not. */
export interface Readiness {
  ready: boolean;
  /** True once shutdown began: the gateway is draining, whatever its providers say. */
  stopping: boolean;
  checks: ProviderCheck[];
}

/** Options of `createHealth`; tests shorten them. */
export interface HealthOptions {
  /** How long one ping may take before the provider counts as down, default 2000 ms. */
  pingTimeoutMs?: number;
  /** How often watchers (grpc.health.v1 Watch) re-check, default 5000 ms. */
  watchIntervalMs?: number;
}

/** The gateway's health: readiness from provider pings, and the shutdown flag. */
export interface Health {
  /** Pings every provider (concurrent callers share one round of pings). */
  check(): Promise<Readiness>;
  /** Marks the gateway as stopping: every later check says not ready. */
  stop(): void;
  readonly stopping: boolean;
  /** Calls `listener` with a fresh readiness every watch interval while subscribed; returns the unsubscribe. */
  watch(listener: (readiness: Readiness) => void): () => void;
}

/**
 * Health of a gateway over its three providers.
 *
 * @example
 * const health = createHealth({ storage, cache, channel }, log);
 * const { ready, checks } = await health.check();
 */
export function createHealth(
  providers: Record<ProviderKind, Pingable>,
  log: Logger,
  options: HealthOptions = {},
): Health {
  const pingTimeoutMs = options.pingTimeoutMs ?? 2_000;
  const watchIntervalMs = options.watchIntervalMs ?? 5_000;
  let stopping = false;
  let inFlight: Promise<Readiness> | undefined;
  const watchers = new Set<(readiness: Readiness) => void>();
  let timer: NodeJS.Timeout | undefined;
  const wasDown = new Set<ProviderKind>();

  const ping = async (kind: ProviderKind, provider: Pingable): Promise<ProviderCheck> => {
    const started = performance.now();
    let timeout: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        provider.ping(),
        new Promise<never>((_, reject) => {
          timeout = setTimeout(() => reject(new Error(`no answer within ${pingTimeoutMs} ms`)), pingTimeoutMs);
        }),
      ]);
      return { kind, provider: provider.name, ok: true, ms: Math.round(performance.now() - started) };
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      return { kind, provider: provider.name, ok: false, ms: Math.round(performance.now() - started), error };
    } finally {
      clearTimeout(timeout);
    }
  };

  const run = async (): Promise<Readiness> => {
    const checks = await Promise.all(
      (Object.entries(providers) as [ProviderKind, Pingable][]).map(([kind, provider]) => ping(kind, provider)),
    );
    // One line when a provider goes down and one when it is back, not one per probe.
    for (const check of checks) {
      if (!check.ok && !wasDown.has(check.kind)) {
        wasDown.add(check.kind);
        log.warn(
          { provider: check.provider, kind: check.kind, error: check.error },
          `${check.kind} is down: not ready`,
        );
      } else if (check.ok && wasDown.delete(check.kind)) {
        log.info({ provider: check.provider, kind: check.kind }, `${check.kind} is back`);
      }
    }
    return { ready: !stopping && checks.every((c) => c.ok), stopping, checks };
  };

  const check = () => {
    inFlight ??= run().finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  };

  const tick = async () => {
    const readiness = await check();
    for (const watcher of [...watchers]) watcher(readiness);
  };

  return {
    check,
    get stopping() {
      return stopping;
    },
    stop() {
      stopping = true;
      const draining: Readiness = { ready: false, stopping: true, checks: [] };
      for (const watcher of [...watchers]) watcher(draining);
      clearInterval(timer);
      timer = undefined;
    },
    watch(listener) {
      watchers.add(listener);
      if (!timer && !stopping) {
        timer = setInterval(() => void tick(), watchIntervalMs);
        timer.unref();
      }
      return () => {
        watchers.delete(listener);
        if (watchers.size === 0) {
          clearInterval(timer);
          timer = undefined;
        }
      };
    },
  };
}
