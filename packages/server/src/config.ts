import { readFileSync } from "node:fs";
import { join } from "node:path";
import { cors } from "@connectrpc/connect";
import type { ProviderSpec } from "@stategate/providers";
import type { AuthConfig } from "./auth/config.js";
import { isLoopback, loadAuthConfig } from "./auth/config.js";
import type { TlsConfig } from "./front/tls.js";
import { loadTlsConfig } from "./front/tls.js";

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
  /** STATEGATE_MAX_RESPONSE_BYTES: the largest search page (binary protobuf), default 4 × maxRequestBytes. */
  maxResponseBytes: number;
  /** STATEGATE_METRICS_PORT: where Prometheus metrics, /healthz and /readyz are served, default 9090; "off" serves none; 0 picks a free port. */
  metricsPort: number | null;
  /** STATEGATE_MAX_OPEN_STREAMS: most event and peer streams open at once on this gateway, default 10000. */
  maxOpenStreams: number;
  /** STATEGATE_MAX_STREAM_BUFFER: most items one stream holds for a slow client before it is ended, default 10000. */
  maxStreamBuffer: number;
  /** STATEGATE_TLS_CERT_FILE and STATEGATE_TLS_KEY_FILE: TLS on the port (HTTP/2 and HTTP/1.1 by ALPN); absent, cleartext. */
  tls?: TlsConfig;
  /** Rego authorization policies (STATEGATE_REQUEST_POLICY / STATEGATE_RESPONSE_POLICY, or their _FILE variants). */
  policies: { request?: PolicySource; response?: PolicySource };
  /** Authentication: STATEGATE_AUTH_DISABLED, STATEGATE_JWKS_URI and the STATEGATE_JWT_* variables. */
  auth: AuthConfig;
  /** Which browser origins may call the gateway, and with what (STATEGATE_CORS_*). */
  cors: CorsConfig;
}

/** A Rego policy's text and where it came from (the variable, and the file for _FILE variants). */
export interface PolicySource {
  variable: string;
  /** Shown in error messages: the file path, or the variable name for base64 text. */
  origin: string;
  source: string;
}

/** Cross-origin access for browsers; with no origins the gateway sends no CORS headers. */
export interface CorsConfig {
  /** STATEGATE_CORS_ALLOW_ORIGINS: origins such as "https://app.example.com", or "*"; default none. */
  allowOrigins: string[];
  /** STATEGATE_CORS_ALLOW_METHODS, upper case; "*" allows whatever a preflight asks for. */
  allowMethods: string[];
  /** STATEGATE_CORS_ALLOW_HEADERS, lower case; "*" allows whatever a preflight asks for. */
  allowHeaders: string[];
}

/** REST uses every verb; gRPC-Web and Connect need only POST and GET (`cors.allowedMethods`). */
const defaultCorsMethods = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
/**
 * What gRPC-Web and Connect clients send (`cors.allowedHeaders`), plus the
 * bearer token, a caller's own request id, and the header EventSource sends
 * when it reconnects to a server-sent event stream.
 */
const defaultCorsHeaders = [...cors.allowedHeaders, "authorization", "x-request-id", "last-event-id"];

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

/**
 * The variable to name when the storage cannot be opened: the embedded SQLite
 * file lives in STATEGATE_DATA_DIR unless the spec gives its own `path`. A bad
 * option is always STATEGATE_STORAGE_PROVIDER's, whatever this says.
 */
export function storageFileVariable(storage: ProviderSpec): "STATEGATE_DATA_DIR" | "STATEGATE_STORAGE_PROVIDER" {
  return storage.name === "sqlite" && storage.path === undefined ? "STATEGATE_DATA_DIR" : "STATEGATE_STORAGE_PROVIDER";
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
  const host = env.STATEGATE_HOST?.trim() || "127.0.0.1";
  const auth = loadAuthConfig(env, (variable, message) => new ConfigError(variable, message));
  // Like Redis's protected mode: with nothing configured, only this machine can call.
  if (auth.mode === "loopback" && !isLoopback(host)) {
    throw new ConfigError(
      "STATEGATE_HOST",
      `listening on ${host} needs authentication: set STATEGATE_JWKS_URI, or STATEGATE_AUTH_DISABLED=true to serve anyone`,
    );
  }
  const maxRequestBytes = parseIntVar(env, "STATEGATE_MAX_REQUEST_BYTES", 4 * 1024 * 1024, 1024, 256 * 1024 * 1024);
  return {
    auth,
    port: parseIntVar(env, "STATEGATE_PORT", 8080, 0, 65535),
    host,
    logLevel: (level as Config["logLevel"]) || (debug ? "debug" : "info"),
    dataDir: env.STATEGATE_DATA_DIR?.trim() || join(process.cwd(), "data"),
    storage: parseProvider(env, "STATEGATE_STORAGE_PROVIDER", "sqlite"),
    cache: parseProvider(env, "STATEGATE_CACHE_PROVIDER", "memory"),
    channel: parseProvider(env, "STATEGATE_CHANNEL_PROVIDER", "memory"),
    shutdownGraceMs: parseIntVar(env, "STATEGATE_SHUTDOWN_GRACE_MS", 10_000, 0, 600_000),
    maxRequestBytes,
    // At least the request limit, so that a page of one entity always fits.
    maxResponseBytes: parseIntVar(
      env,
      "STATEGATE_MAX_RESPONSE_BYTES",
      4 * maxRequestBytes,
      maxRequestBytes,
      1024 * 1024 * 1024,
    ),
    metricsPort:
      env.STATEGATE_METRICS_PORT?.trim().toLowerCase() === "off"
        ? null
        : parseIntVar(env, "STATEGATE_METRICS_PORT", 9090, 0, 65535),
    maxOpenStreams: parseIntVar(env, "STATEGATE_MAX_OPEN_STREAMS", 10_000, 1, 10_000_000),
    maxStreamBuffer: parseIntVar(env, "STATEGATE_MAX_STREAM_BUFFER", 10_000, 1, 1_000_000),
    tls: loadTlsConfig(env, (variable, message) => new ConfigError(variable, message)),
    policies: {
      request: parsePolicy(env, "STATEGATE_REQUEST_POLICY"),
      response: parsePolicy(env, "STATEGATE_RESPONSE_POLICY"),
    },
    cors: {
      allowOrigins: parseOrigins(env, "STATEGATE_CORS_ALLOW_ORIGINS"),
      allowMethods: parseTokens(
        env,
        "STATEGATE_CORS_ALLOW_METHODS",
        defaultCorsMethods,
        "HTTP methods such as GET,POST",
      ).map((m) => m.toUpperCase()),
      allowHeaders: parseTokens(
        env,
        "STATEGATE_CORS_ALLOW_HEADERS",
        defaultCorsHeaders,
        "header names such as authorization",
      ).map((h) => h.toLowerCase()),
    },
  };
}

/**
 * A policy from base64 text (as the reference took it) or, with the _FILE
 * variant, from a file. Setting both is refused: one of them would be ignored.
 */
function parsePolicy(env: NodeJS.ProcessEnv, name: string): PolicySource | undefined {
  const b64 = env[name]?.trim();
  const file = env[`${name}_FILE`]?.trim();
  if (b64 && file) throw new ConfigError(name, `set either ${name} or ${name}_FILE, not both`);
  if (file) {
    try {
      return { variable: `${name}_FILE`, origin: file, source: readFileSync(file, "utf8") };
    } catch (err) {
      throw new ConfigError(`${name}_FILE`, `cannot read "${file}": ${(err as NodeJS.ErrnoException).code ?? err}`);
    }
  }
  if (!b64) return undefined;
  if (!/^[A-Za-z0-9+/=_\s-]+$/.test(b64)) {
    throw new ConfigError(name, "expected base64-encoded Rego (use the _FILE variant for a path)");
  }
  const source = Buffer.from(b64, "base64").toString("utf8");
  if (source.trim() === "") throw new ConfigError(name, "decodes to an empty policy");
  return { variable: name, origin: name, source };
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

/** A comma-separated list; blanks around items and empty items are ignored. */
function parseList(env: NodeJS.ProcessEnv, name: string): string[] | undefined {
  const raw = env[name]?.trim();
  if (!raw) return undefined;
  return raw
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "");
}

/** HTTP token characters (RFC 9110), the syntax of both method and header names. */
const tokenPattern = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function parseTokens(env: NodeJS.ProcessEnv, name: string, fallback: string[], expected: string): string[] {
  const items = parseList(env, name);
  if (items === undefined) return fallback;
  if (items.length === 0)
    throw new ConfigError(name, `expected a comma-separated list of ${expected}, got "${env[name]}"`);
  for (const item of items) {
    if (!tokenPattern.test(item)) {
      throw new ConfigError(name, `expected a comma-separated list of ${expected} or "*", got "${item}"`);
    }
  }
  return items;
}

/**
 * Origins as browsers send them in the Origin header: http or https, host, and
 * a port unless it is the scheme's default (given anyway, it is dropped).
 * "*" stands for any origin.
 */
function parseOrigins(env: NodeJS.ProcessEnv, name: string): string[] {
  return (parseList(env, name) ?? []).map((item) => {
    if (item === "*") return item;
    let url: URL | undefined;
    try {
      url = new URL(item);
    } catch {
      url = undefined;
    }
    // "https://*.example.com" parses, but no browser sends it: refuse rather than never match.
    const bare =
      url &&
      url.pathname === "/" &&
      !url.search &&
      !url.hash &&
      !url.username &&
      !url.password &&
      !url.hostname.includes("*");
    if (!url || !bare || (url.protocol !== "http:" && url.protocol !== "https:")) {
      throw new ConfigError(
        name,
        `expected "*" or origins such as https://app.example.com:8443 (scheme, host, optional port; no path), got "${item}"`,
      );
    }
    return url.origin;
  });
}
