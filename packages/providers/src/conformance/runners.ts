/**
 * One call per provider kind that registers every conformance group, so an
 * adapter's test file is a few lines and cannot forget a group.
 *
 * @example
 * import { runStorageConformance } from "@stategate/providers/conformance";
 * runStorageConformance(() => createMysqlStorage({ url: process.env.MYSQL_URL }));
 */
import { type CacheTimingOptions, cacheExpiryGroup } from "./cache-expiry.js";
import { cacheLockGroup } from "./cache-lock.js";
import { cacheValuesGroup } from "./cache-values.js";
import { channelBroadcastGroup } from "./channel-broadcast.js";
import { channelGroupsGroup } from "./channel-groups.js";
import type { ChannelOptions } from "./channel-tag.js";
import type { CacheFactory, ChannelFactory, StorageFactory } from "./helpers.js";
import { storageCommitGroup } from "./storage-commit.js";
import { type StorageConcurrencyOptions, storageConcurrencyGroup } from "./storage-concurrency.js";
import { storageEventsGroup } from "./storage-events.js";
import { storageOutboxGroup } from "./storage-outbox.js";
import { storageSearchGroup } from "./storage-search.js";
import { type StorageValuesOptions, storageValuesGroup } from "./storage-values.js";

/** Options of {@link runStorageConformance}: those of every storage group. */
export type StorageConformanceOptions = StorageValuesOptions & StorageConcurrencyOptions;

/** Registers every storage group against `factory`; each call of it must reach the same backend. */
export function runStorageConformance(factory: StorageFactory, options: StorageConformanceOptions = {}): void {
  storageCommitGroup(factory);
  storageValuesGroup(factory, options);
  storageSearchGroup(factory);
  storageEventsGroup(factory);
  storageOutboxGroup(factory);
  storageConcurrencyGroup(factory, options);
}

/** Registers every cache group against `factory`; each call of it must reach the same backend. */
export function runCacheConformance(factory: CacheFactory, options: CacheTimingOptions = {}): void {
  cacheValuesGroup(factory);
  cacheExpiryGroup(factory, options);
  cacheLockGroup(factory, options);
}

/** Registers every channel group against `factory`; each call of it must reach the same backend. */
export function runChannelConformance(factory: ChannelFactory, options: ChannelOptions = {}): void {
  channelBroadcastGroup(factory, options);
  channelGroupsGroup(factory, options);
}
