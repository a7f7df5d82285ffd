import type { Cache, Channel } from "@stategate/providers";
import { checkStorage, createCache, createChannel, ProviderConfigError } from "@stategate/providers";
import { compilePolicies } from "../auth/policy.js";
import { ConfigError, loadConfig, storageFileVariable } from "../config.js";

/** How long one provider may take to open and answer a ping. */
const PROVIDER_TIMEOUT_MS = 20_000;

type Write = (line: string) => void;

/**
 * `stategate check-config`: parses the environment and compiles the policies
 * as start-up does, then opens each provider, pings it and closes it, without serving anything (the
 * embedded SQLite file is checked without creating it or its directory). One
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
  // `variable` chose the provider and is named for a bad option; `reachVariable` when it cannot be reached.
  const checks = [
    {
      kind: "storage",
      variable: "STATEGATE_STORAGE_PROVIDER",
      reachVariable: storageFileVariable(config.storage),
      name: config.storage.name,
      // The embedded SQLite file is checked creating nothing, neither it nor its directory.
      check: () => checkStorage(config.storage, { dataDir: config.dataDir }),
    },
    {
      kind: "cache",
      variable: "STATEGATE_CACHE_PROVIDER",
      reachVariable: "STATEGATE_CACHE_PROVIDER",
      name: config.cache.name,
      check: () => pinged(createCache(config.cache)),
    },
    {
      kind: "channel",
      variable: "STATEGATE_CHANNEL_PROVIDER",
      reachVariable: "STATEGATE_CHANNEL_PROVIDER",
      name: config.channel.name,
      check: () => pinged(createChannel(config.channel)),
    },
  ];
  let code = 0;
  for (const { kind, variable, reachVariable, name, check } of checks) {
    const started = performance.now();
    try {
      await withTimeout(check(), PROVIDER_TIMEOUT_MS);
      out(`${kind}: ${name} ok (${Math.round(performance.now() - started)} ms)`);
    } catch (e) {
      const reason = e instanceof Error ? e.message : String(e);
      if (e instanceof ProviderConfigError) {
        err(`stategate: ${variable}: ${reason}`);
        code = Math.max(code, 2);
      } else {
        err(`stategate: ${reachVariable}: cannot reach ${kind} provider ${name}: ${reason}`);
        code = code || 1;
      }
    }
  }
  return code;
}

/** Pings a provider once it opens, then closes it. */
async function pinged(opening: Promise<Cache | Channel>): Promise<void> {
  const provider = await opening;
  try {
    await provider.ping();
  } finally {
    await provider.close().catch(() => {});
  }
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
