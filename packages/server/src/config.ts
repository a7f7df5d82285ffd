import { join } from "node:path";

import type { ProviderSpec } from "@stategate/providers";

/** The gateway's configuration, parsed and checked once at start-up. */
export interface Config {
  /** STATEGATE_PORT, default 8080. 0 picks a free port. */
  port: number;
  /** STATEGATE_HOST, default 127.0.0.1. */
  host: string;
  /** pino level, from STATEGATE_LOG_LEVEL, or "debug" when STATEGATE_DEBUG is true; default "info". */
  logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
  /** STATEGATE_DATA_DIR, where embedded providers keep files; default ./data under the working directory. */
  dataDir: string;
  storage: ProviderSpec;
  cache: ProviderSpec;
  channel: ProviderSpec;
  /** STATEGATE_SHUTDOWN_GRACE_MS: how long shutdown waits for calls in flight, default 10000. */
  shutdownGraceMs: number;
  /** STATEGATE_MAX_REQUEST_BYTES: the largest request message accepted, default 4 MiB. */
  maxRequestBytes: number;
}

/** A configuration value is wrong; the message names the variable and what was expected. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  constructor(
    readonly variable: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${variable}: ${message}`, options);
  }
}

const levels = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

/**
 * Reads the configuration from environment variables.
 *
 * @example
 * const config = loadConfig({ STATEGATE_PORT: "9090" });
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const debug = parseBool(env, "STATEGATE_DEBUG", false);
  const level = env.STATEGATE_LOG_LEVEL?.trim().toLowerCase();
  if (level && !(levels as readonly string[]).includes(level)) {
    throw new ConfigError("STATEGATE_LOG_LEVEL", `expected one of ${levels.join(", ")}, got "${level}"`);
  }
  return {
    port: parseIntVar(env, "STATEGATE_PORT", 8080, 0, 65535),
    host: env.STATEGATE_HOST?.trim() || "127.0.0.1",
    logLevel: (level as Config["logLevel"]) || (debug ? "debug" : "info"),
    dataDir: env.STATEGATE_DATA_DIR?.trim() || join(process.cwd(), "data"),
    storage: parseProvider(env, "STATEGATE_STORAGE_PROVIDER", "sqlite"),
    cache: parseProvider(env, "STATEGATE_CACHE_PROVIDER", "memory"),
    channel: parseProvider(env, "STATEGATE_CHANNEL_PROVIDER", "memory"),
    shutdownGraceMs: parseIntVar(env, "STATEGATE_SHUTDOWN_GRACE_MS", 10_000, 0, 600_000),
    maxRequestBytes: parseIntVar(env, "STATEGATE_MAX_REQUEST_BYTES", 4 * 1024 * 1024, 1024, 256 * 1024 * 1024),
  };
}

function parseBool(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (!raw) return fallback;
  if (["true", "1", "yes", "on"].includes(raw)) return true;
  if (["false", "0", "no", "off"].includes(raw)) return false;
  throw new ConfigError(name, `expected true or false, got "${env[name]}"`);
}

function parseIntVar(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    throw new ConfigError(name, `expected a whole number from ${min} to ${max}, got "${env[name]}"`);
  }
  return Number(raw);
}

function parseProvider(env: NodeJS.ProcessEnv, name: string, fallback: string): ProviderSpec {
  const raw = env[name]?.trim();
  if (!raw) return { name: fallback };
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new ConfigError(name, `expected JSON such as {"name": "${fallback}"}, got malformed JSON`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(name, `expected a JSON object such as {"name": "${fallback}"}`);
  }
  const spec = parsed as Record<string, unknown>;
  if (typeof spec.name !== "string" || spec.name === "") {
    throw new ConfigError(name, `expected a "name" string, such as {"name": "${fallback}"}`);
  }
  return spec as ProviderSpec;
}
