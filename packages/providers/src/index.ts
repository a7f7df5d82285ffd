/**
 * Storage, Cache and Channel: the interfaces a stategate gateway talks to its
 * backends through, the embedded adapters, and the registry that picks one
 * from configuration. The conformance suite is at "@stategate/providers/conformance".
 *
 * @example
 * import { createStorage, createCache, createChannel } from "@stategate/providers";
 * const storage = await createStorage({ name: "sqlite" }, { dataDir: "./data" });
 * const cache = await createCache({ name: "memory" });
 * const channel = await createChannel({ name: "memory" });
 */

export type { MemcachedCacheOptions } from "./cache/memcached.js";
export { createMemcachedCache } from "./cache/memcached.js";
export type { MemoryCacheOptions } from "./cache/memory.js";
export { createMemoryCache } from "./cache/memory.js";
export type { RedisCacheOptions, RedisTlsOptions } from "./cache/redis.js";
export { createRedisCache } from "./cache/redis.js";
export type { AmqpChannelOptions, AmqpTlsOptions } from "./channel/amqp.js";
export { createAmqpChannel } from "./channel/amqp.js";
export type { MemoryChannelOptions } from "./channel/memory.js";
export { createMemoryChannel } from "./channel/memory.js";
export type { NatsChannelOptions, NatsTlsOptions } from "./channel/nats.js";
export { createNatsChannel } from "./channel/nats.js";
export type { RedisChannelOptions, RedisChannelTlsOptions } from "./channel/redis.js";
export { createRedisChannel } from "./channel/redis.js";
export {
  ProviderClosedError,
  ProviderConfigError,
  ProviderTimeoutError,
  ProviderUnavailableError,
  ValueTooLargeError,
  VersionConflictError,
} from "./errors.js";
export type { ProviderDefaults, ProviderSpec } from "./registry.js";
export {
  cacheProviderNames,
  channelProviderNames,
  checkStorage,
  createCache,
  createChannel,
  createStorage,
  storageProviderNames,
} from "./registry.js";
export type { MysqlStorageOptions, MysqlTlsOptions } from "./storage/mysql.js";
export { createMysqlStorage } from "./storage/mysql.js";
// The MySQL adapter's pool, options, table names, statements and commit, for
// code that must talk to MySQL exactly as the adapter does (the benchmark's
// direct path).
export type { MysqlCommitStatements, MysqlCommitted, MysqlCommitWrite } from "./storage/mysql-commit.js";
export { createMysqlPool, runMysqlCommit } from "./storage/mysql-commit.js";
export type { MysqlConfig } from "./storage/mysql-config.js";
export { mysqlConfig } from "./storage/mysql-config.js";
export type { MysqlTables } from "./storage/mysql-schema.js";
export { mysqlStatements, mysqlTables } from "./storage/mysql-schema.js";
export type { PostgresStorageOptions, PostgresTlsOptions } from "./storage/postgres.js";
export { createPostgresStorage } from "./storage/postgres.js";
export type { SqliteStorageOptions } from "./storage/sqlite.js";
export { createSqliteStorage } from "./storage/sqlite.js";
export type {
  Cache,
  CacheEntry,
  Channel,
  Commit,
  EntityQuery,
  EntityRecord,
  EntityRef,
  EventOperation,
  EventQuery,
  EventRecord,
  FilterTerm,
  JsonObject,
  JsonValue,
  SortSpec,
  Storage,
  SubscribeOptions,
  Topic,
  Unsubscribe,
} from "./types.js";
