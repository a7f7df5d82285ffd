/**
 * The shared conformance suite: small groups of node:test tests that every
 * adapter runs against a real backend.
 *
 * @example
 * import { runCacheConformance } from "@stategate/providers/conformance";
 * runCacheConformance(() => createRedisCache({ url: "redis://localhost:6379" }));
 */

export type { CacheTimingOptions } from "./cache-expiry.js";
export { cacheExpiryGroup } from "./cache-expiry.js";
export { cacheLockGroup } from "./cache-lock.js";
export { cacheValuesGroup } from "./cache-values.js";
export { channelBroadcastGroup } from "./channel-broadcast.js";
export { channelGroupsGroup } from "./channel-groups.js";
export type { ChannelOptions } from "./channel-tag.js";
export type { CacheFactory, ChannelFactory, StorageFactory } from "./helpers.js";
export type { StorageConformanceOptions } from "./runners.js";
export { runCacheConformance, runChannelConformance, runStorageConformance } from "./runners.js";
export { storageCommitGroup } from "./storage-commit.js";
export type { StorageConcurrencyOptions } from "./storage-concurrency.js";
export { storageConcurrencyGroup } from "./storage-concurrency.js";
export { storageEventsGroup } from "./storage-events.js";
export { storageOutboxGroup } from "./storage-outbox.js";
export { storageSearchGroup } from "./storage-search.js";
export type { StorageValuesOptions } from "./storage-values.js";
export { storageValuesGroup } from "./storage-values.js";
