/**
 * Turns a provider spec from configuration (`{"name": "sqlite", "path": …}`)
 * into a provider. Each kind has one table of known providers; adding a
 * backend is one entry in its table.
 *
 * @example
 * const storage = await createStorage({ name: "sqlite" }, { dataDir: "./data" });
 */
import { join } from "node:path";
import { createMemcachedCache } from "./cache/memcached.js";
import { createMemoryCache } from "./cache/memory.js";
import { createRedisCache, type RedisTlsOptions } from "./cache/redis.js";
import { type AmqpTlsOptions, createAmqpChannel } from "./channel/amqp.js";
import { createMemoryChannel } from "./channel/memory.js";
import { createNatsChannel, type NatsTlsOptions } from "./channel/nats.js";
import { createRedisChannel, type RedisChannelTlsOptions } from "./channel/redis.js";
import { ProviderConfigError } from "./errors.js";
import { createMysqlStorage, type MysqlTlsOptions } from "./storage/mysql.js";
import { createPostgresStorage, type PostgresTlsOptions } from "./storage/postgres.js";
import { checkSqliteStorage, createSqliteStorage } from "./storage/sqlite.js";
import type { Cache, Channel, Storage } from "./types.js";

/** A provider as configuration names it: its name plus provider-specific options. */
export interface ProviderSpec {
  name: string;
  [option: string]: unknown;
}

/** Gateway-wide settings that providers fall back on when a spec leaves an option out. */
export interface ProviderDefaults {
  /** Where embedded providers keep their files. */
  dataDir: string;
}

// "string-or-empty" is for values where "" means something (an empty
// password); "boolean|object" for an on/off switch that can carry settings
// (tls), whose keys the provider itself checks.
type OptionKind = "string" | "string-or-empty" | "number" | "boolean" | "boolean|object";
type OptionValue<K extends OptionKind> = {
  string: string;
  "string-or-empty": string;
  number: number;
  boolean: boolean;
  "boolean|object": boolean | Record<string, unknown>;
}[K];
type OptionSchema = Record<string, OptionKind>;
type Options<S extends OptionSchema> = { [K in keyof S]?: OptionValue<S[K]> };

interface Provider<T, D> {
  options: OptionSchema;
  create(options: Record<string, unknown>, defaults: D): Promise<T>;
  /** Checks, creating nothing, that `create` would succeed; without it a check creates, pings and closes. */
  check?(options: Record<string, unknown>, defaults: D): Promise<void>;
}

// Ties each factory's options type to its schema, so a table entry cannot
// read an option it does not declare.
function provider<T, S extends OptionSchema, D = undefined>(
  options: S,
  create: (options: Options<S>, defaults: D) => Promise<T>,
  check?: (options: Options<S>, defaults: D) => Promise<void>,
): Provider<T, D> {
  return {
    options,
    create: (parsed, defaults) => create(parsed as Options<S>, defaults),
    ...(check
      ? { check: (parsed: Record<string, unknown>, defaults: D) => check(parsed as Options<S>, defaults) }
      : {}),
  };
}

const storageProviders: Record<string, Provider<Storage, ProviderDefaults>> = {
  sqlite: provider(
    { path: "string" },
    (o, d) => createSqliteStorage({ path: o.path ?? join(d.dataDir, "stategate.db") }),
    (o, d) => checkSqliteStorage({ path: o.path ?? join(d.dataDir, "stategate.db") }),
  ),
  mysql: provider(
    {
      url: "string",
      addr: "string",
      user: "string",
      password: "string-or-empty",
      database: "string",
      tablePrefix: "string",
      poolSize: "number",
      connectTimeoutMs: "number",
      tls: "boolean|object",
    },
    (o) => createMysqlStorage({ ...o, tls: o.tls as boolean | MysqlTlsOptions | undefined }),
  ),
  postgres: provider(
    {
      url: "string",
      addr: "string",
      user: "string",
      password: "string-or-empty",
      database: "string",
      schema: "string",
      tablePrefix: "string",
      poolSize: "number",
      connectTimeoutMs: "number",
      statementTimeoutMs: "number",
      tls: "boolean|object",
    },
    (o) => createPostgresStorage({ ...o, tls: o.tls as boolean | PostgresTlsOptions | undefined }),
  ),
};

const cacheProviders: Record<string, Provider<Cache, undefined>> = {
  memory: provider({}, () => createMemoryCache()),
  memcached: provider(
    {
      addr: "string",
      servers: "string",
      user: "string",
      password: "string",
      prefix: "string",
      timeoutMs: "number",
      maxValueBytes: "number",
      tls: "boolean",
    },
    (o) => createMemcachedCache(o),
  ),
  redis: provider(
    {
      url: "string",
      addr: "string",
      user: "string",
      password: "string-or-empty",
      db: "number",
      prefix: "string",
      timeoutMs: "number",
      connectTimeoutMs: "number",
      tls: "boolean|object",
    },
    (o) => createRedisCache({ ...o, tls: o.tls as boolean | RedisTlsOptions | undefined }),
  ),
};

const channelProviders: Record<string, Provider<Channel, undefined>> = {
  memory: provider({}, () => createMemoryChannel()),
  amqp: provider(
    {
      url: "string",
      addr: "string",
      user: "string",
      password: "string",
      vhost: "string",
      prefix: "string",
      heartbeatSeconds: "number",
      connectTimeoutMs: "number",
      publishTimeoutMs: "number",
      prefetch: "number",
      tls: "boolean|object",
    },
    (o) => createAmqpChannel({ ...o, tls: o.tls as boolean | AmqpTlsOptions | undefined }),
  ),
  nats: provider(
    {
      addr: "string",
      servers: "string",
      user: "string",
      password: "string",
      token: "string",
      prefix: "string",
      tls: "boolean|object",
      connectTimeoutMs: "number",
      reconnectWaitMs: "number",
      maxReconnectAttempts: "number",
      pingIntervalMs: "number",
      publishTimeoutMs: "number",
    },
    (o) => createNatsChannel({ ...o, tls: o.tls as boolean | NatsTlsOptions | undefined }),
  ),
  redis: provider(
    {
      url: "string",
      addr: "string",
      user: "string",
      password: "string-or-empty",
      db: "number",
      prefix: "string",
      tls: "boolean|object",
      groupIdleMs: "number",
      maxLen: "number",
      connectTimeoutMs: "number",
      commandTimeoutMs: "number",
    },
    (o) => createRedisChannel({ ...o, tls: o.tls as boolean | RedisChannelTlsOptions | undefined }),
  ),
};

/** Storage provider names a spec may use; config help and error messages list them. */
export const storageProviderNames: readonly string[] = Object.freeze(Object.keys(storageProviders));
/** Cache provider names a spec may use; config help and error messages list them. */
export const cacheProviderNames: readonly string[] = Object.freeze(Object.keys(cacheProviders));
/** Channel provider names a spec may use; config help and error messages list them. */
export const channelProviderNames: readonly string[] = Object.freeze(Object.keys(channelProviders));

function optionNames<T, D>(table: Record<string, Provider<T, D>>): Readonly<Record<string, readonly string[]>> {
  return Object.freeze(Object.fromEntries(Object.entries(table).map(([name, p]) => [name, Object.keys(p.options)])));
}

/** The options each provider accepts besides `name`, by kind and provider; the README's provider table lists the same. */
export const providerOptionNames: Readonly<
  Record<"storage" | "cache" | "channel", Readonly<Record<string, readonly string[]>>>
> = Object.freeze({
  storage: optionNames(storageProviders),
  cache: optionNames(cacheProviders),
  channel: optionNames(channelProviders),
});

function validOption(kind: OptionKind, value: unknown): boolean {
  switch (kind) {
    case "string":
      return typeof value === "string" && value !== "";
    case "string-or-empty":
      return typeof value === "string";
    case "number":
      return typeof value === "number" && Number.isFinite(value);
    case "boolean":
      return typeof value === "boolean";
    case "boolean|object":
      return typeof value === "boolean" || (typeof value === "object" && value !== null && !Array.isArray(value));
  }
}

const optionWording: Record<OptionKind, string> = {
  string: "a non-empty string",
  "string-or-empty": "a string",
  number: "a finite number",
  boolean: "true or false",
  "boolean|object": "true, false or an object",
};

function parse<T, D>(
  kind: string,
  table: Record<string, Provider<T, D>>,
  spec: ProviderSpec,
): [Provider<T, D>, Record<string, unknown>] {
  if (typeof spec !== "object" || spec === null || Array.isArray(spec)) {
    throw new ProviderConfigError(`${kind} provider: expected an object like {"name": "…"}`);
  }
  const known = Object.keys(table).join(", ");
  if (typeof spec.name !== "string") {
    throw new ProviderConfigError(`${kind} provider: "name" must be a string, one of: ${known}`, "name");
  }
  // hasOwn, so "constructor" or "__proto__" are unknown names, not prototype members.
  const entry = Object.hasOwn(table, spec.name) ? table[spec.name] : undefined;
  if (entry === undefined) {
    throw new ProviderConfigError(`${kind} provider: unknown name "${spec.name}", expected one of: ${known}`, "name");
  }
  const options: Record<string, unknown> = {};
  for (const [option, value] of Object.entries(spec)) {
    if (option === "name") {
      continue;
    }
    const expected = Object.hasOwn(entry.options, option) ? entry.options[option] : undefined;
    if (expected === undefined) {
      const allowed = Object.keys(entry.options);
      const hint = allowed.length === 0 ? "it takes no options" : `its options are: ${allowed.join(", ")}`;
      throw new ProviderConfigError(`${kind} provider "${spec.name}": unknown option "${option}"; ${hint}`, option);
    }
    if (!validOption(expected, value)) {
      throw new ProviderConfigError(
        `${kind} provider "${spec.name}": option "${option}" must be ${optionWording[expected]}, got ${JSON.stringify(value)}`,
        option,
      );
    }
    options[option] = value;
  }
  return [entry, options];
}

/** Creates the storage a spec names; throws ProviderConfigError for an unknown name or bad option. */
export async function createStorage(spec: ProviderSpec, defaults: ProviderDefaults): Promise<Storage> {
  const [entry, options] = parse("storage", storageProviders, spec);
  return entry.create(options, defaults);
}

/**
 * Checks that the storage a spec names would open, without serving: the
 * embedded SQLite file is checked creating nothing (see checkSqliteStorage);
 * a server is connected to, pinged and left. Throws ProviderConfigError for
 * an unknown name or bad option.
 */
export async function checkStorage(spec: ProviderSpec, defaults: ProviderDefaults): Promise<void> {
  const [entry, options] = parse("storage", storageProviders, spec);
  if (entry.check) return entry.check(options, defaults);
  const storage = await entry.create(options, defaults);
  try {
    await storage.ping();
  } finally {
    await storage.close().catch(() => {});
  }
}

/** Creates the cache a spec names; throws ProviderConfigError for an unknown name or bad option. */
export async function createCache(spec: ProviderSpec): Promise<Cache> {
  const [entry, options] = parse("cache", cacheProviders, spec);
  return entry.create(options, undefined);
}

/** Creates the channel a spec names; throws ProviderConfigError for an unknown name or bad option. */
export async function createChannel(spec: ProviderSpec): Promise<Channel> {
  const [entry, options] = parse("channel", channelProviders, spec);
  return entry.create(options, undefined);
}
