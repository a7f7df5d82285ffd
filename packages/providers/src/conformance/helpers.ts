/**
 * Small tools shared by the conformance groups. Every test works in its own
 * random domain so the suite can run against a shared server, repeatedly and
 * from parallel processes, without cleaning up between tests.
 */
import { randomUUID } from "node:crypto";
import type { Cache, Channel, EventOperation, EventRecord, JsonObject, Storage } from "../types.js";

/** Opens a fresh provider for one test; every call must reach the same backend. */
export type StorageFactory = () => Promise<Storage>;
/** Opens a fresh cache client for one test; every call must reach the same backend. */
export type CacheFactory = () => Promise<Cache>;
/** Opens a fresh channel client for one test; every call must reach the same backend. */
export type ChannelFactory = () => Promise<Channel>;

/** A domain no other test (or earlier run) uses. */
export function uniqueDomain(label: string): string {
  return `conformance-${label}-${randomUUID().slice(0, 8)}`;
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls until `done()` is true; fails with `what` if it is not within `timeoutMs`. */
export async function waitFor(done: () => boolean, what: string, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await sleep(5);
  }
}

/** Runs `body` with a provider from `factory` and closes it however the body ends. */
export async function using<T extends { close(): Promise<void> }, R>(
  factory: () => Promise<T>,
  body: (provider: T) => Promise<R>,
): Promise<R> {
  const provider = await factory();
  try {
    return await body(provider);
  } finally {
    await provider.close();
  }
}

/** A base time in ns whose low digits would be lost through a double. */
export const baseTime = 1733250000123456789n;

/** The fields of an event a test chooses; the rest get plain defaults. */
export interface EventDraft {
  domain: string;
  type: string;
  key: string;
  version: number;
  values: JsonObject;
  operation?: EventOperation;
  time?: bigint;
  claims?: JsonObject;
}

/** Builds an event ready to commit. */
export function draftEvent(draft: EventDraft): Omit<EventRecord, "position"> {
  return {
    id: randomUUID(),
    domain: draft.domain,
    type: draft.type,
    key: draft.key,
    values: draft.values,
    version: draft.version,
    operation: draft.operation ?? "set",
    method: "/stategate.v1.EntityService/Set",
    claims: draft.claims ?? {},
    time: draft.time ?? baseTime + BigInt(draft.version),
  };
}

/** Commits a set of `values` on top of `version`, the way the gateway's Set would. */
export async function put(
  storage: Storage,
  ref: { domain: string; type: string; key: string },
  version: number,
  values: JsonObject,
  time?: bigint,
): Promise<EventRecord> {
  const event = draftEvent({ ...ref, version: version + 1, values, ...(time === undefined ? {} : { time }) });
  return storage.commit({ event, expectedVersion: version, state: values });
}

/** Commits a set of `values` whatever the entity's version, the way the gateway's Set without an expected version does. */
export async function putBlind(
  storage: Storage,
  ref: { domain: string; type: string; key: string },
  values: JsonObject,
): Promise<EventRecord> {
  const { version: _, ...event } = draftEvent({ ...ref, version: 1, values });
  return storage.commit({ event, state: values });
}

/** Text payloads are easier to compare than bytes. */
export const encode = (text: string): Uint8Array => new TextEncoder().encode(text);
/** The inverse of {@link encode}. */
export const decode = (payload: Uint8Array): string => new TextDecoder().decode(payload);
