import type { Cache, Channel, Storage } from "@stategate/providers";
import { createCache, createChannel, createStorage, ProviderConfigError } from "@stategate/providers";
import { compilePolicies } from "../auth/policy.js";
import { ConfigError, loadConfig } from "../config.js";

/** How long one provider may take to open and answer a ping. */
const PROVIDER_TIMEOUT_MS = 20_000;

type Write = (line: string) => void;

/**
 * `stategate check-config`: parses the environment and compiles the policies
 * as start-up does, then opens each provider, pings it and closes it, without serving anything. One
 * line per provider on `out`; a problem is one line on `err` naming the
 * variable. Resolves to the exit code: 0 all well, 2 a bad value, 1 a
 * provider that cannot be reached.
 *
 * @example
 * process.exitCode = await checkConfig(process.env, console.log, console.error);
 */
export async function checkConfig(env: NodeJS.ProcessEnv, out: Write, err: Write): Promise<number> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig(env);
    // Start-up compiles the policies before it opens any backend: so does the check.
    compilePolicies(config.policies);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    err(`stategate: ${e.message}`);
    return 2;
  }
  out(`configuration: ok (port ${config.port} on ${config.host}${config.tls ? ", TLS" : ""})`);
  const storageVariable =
    config.storage.name === "sqlite" && config.storage.path === undefined
      ? "STATEGATE_DATA_DIR"
      : "STATEGATE_STORAGE_PROVIDER";
  const checks: [string, string, string, () => Promise<Storage | Cache | Channel>][] = [
    ["storage", storageVariable, config.storage.name, () => createStorage(config.storage, { dataDir: config.dataDir })],
    ["cache", "STATEGATE_CACHE_PROVIDER", config.cache.name, () => createCache(config.cache)],
    ["channel", "STATEGATE_CHANNEL_PROVIDER", config.channel.name, () => createChannel(config.channel)],
  ];
  let code = 0;
  for (const [kind, variable, name, open] of checks) {
    const started = performance.now();
    try {
      await withTimeout(
        (async () => {
          const provider = await open();
          try {
            await provider.ping();
          } finally {
            await provider.close().catch(() => {});
          }
        })(),
        PROVIDER_TIMEOUT_MS,
      );
      out(`${kind}: ${name} ok (${Math.round(performance.now() - started)} ms)`);
    } catch (e) {
      const reason = e instanceof Error ? e.message : String(e);
      if (e instanceof ProviderConfigError) {
        err(`stategate: ${variable}: ${reason}`);
        code = Math.max(code, 2);
      } else {
        err(`stategate: ${variable}: cannot reach ${kind} provider ${name}: ${reason}`);
        code = code || 1;
      }
    }
  }
  return code;
}

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    work,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
