import { randomUUID } from "node:crypto";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Entity, EntityService, Event } from "@stategate/api";
import type { EntityRecord, EntityRef, EventOperation, JsonObject } from "@stategate/providers";
import { VersionConflictError } from "@stategate/providers";
import { kClaims, methodName } from "../context.js";
import { nowNs, toEntity, toEvent } from "./convert.js";
import type { ServiceDeps } from "./deps.js";
import { parseFilter, toSortSpec } from "./query.js";
import { checkEntitySize, checkPageSize, DEFAULT_LIMIT } from "./rules.js";
import { entitySize, fieldSize } from "./size.js";

/** How often a mutation without an expected version retries after losing a race. */
const MAX_ATTEMPTS = 32;

/** What a mutation does to the current state. */
interface Change {
  operation: EventOperation;
  /** The new current values, or null to delete. */
  state: JsonObject | null;
  /** The values the event records. */
  eventValues: JsonObject;
}

/** A caller's expected version the entity is not at: ABORTED, and nothing was written. */
function staleVersion(expected: bigint, actual: number): ConnectError {
  return new ConnectError(`expected version ${expected}, but the entity is at version ${actual}`, Code.Aborted);
}

/** EntityService: every mutation writes state and event in one commit, then publishes. */
export function createEntityService(deps: ServiceDeps): ServiceImpl<typeof EntityService> {
  const { storage } = deps;
  const { maxEntityBytes, maxResponseBytes } = deps.limits;

  /**
   * Commits one mutation, at `expectedVersion` + 1 or (without one) at the
   * storage's next version, and hands its event to the relay.
   */
  async function commit(
    ctx: HandlerContext,
    ref: EntityRef,
    expectedVersion: number | undefined,
    operation: EventOperation,
    state: JsonObject | null,
    eventValues: JsonObject,
  ): Promise<Event> {
    const stored = await storage.commit({
      ...(expectedVersion === undefined ? {} : { expectedVersion }),
      state,
      event: {
        ...ref,
        id: randomUUID(),
        values: eventValues,
        ...(expectedVersion === undefined ? {} : { version: expectedVersion + 1 }),
        operation,
        method: methodName(ctx),
        claims: ctx.values.get(kClaims),
        time: nowNs(),
      },
    });
    const event = toEvent(stored);
    await deps.relay.publish(event);
    return event;
  }

  /**
   * Reads the entity, computes the change, and commits it if the entity is
   * still at the version read. A caller's expected version is checked against
   * that same read, so a mismatch writes nothing. Without one, losing a race
   * to another writer means reading again and retrying.
   */
  async function mutate(
    ctx: HandlerContext,
    ref: EntityRef,
    expectedVersion: bigint | undefined,
    change: (current: EntityRecord | undefined) => Promise<Change> | Change,
  ): Promise<Event> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const current = await storage.getEntity(ref);
      // A deleted entity keeps counting from its delete event's version.
      const version = current?.version ?? (await storage.getVersion(ref));
      if (expectedVersion !== undefined && BigInt(version) !== expectedVersion) {
        throw staleVersion(expectedVersion, version);
      }
      const { operation, state, eventValues } = await change(current);
      // Whatever the mutation, the state it writes must be readable by every client.
      if (state !== null) checkEntitySize(toEntity({ ...ref, values: state, version: version + 1 }), maxEntityBytes);
      try {
        return await commit(ctx, ref, version, operation, state, eventValues);
      } catch (err) {
        if (!(err instanceof VersionConflictError)) throw err;
        if (expectedVersion !== undefined) {
          throw staleVersion(expectedVersion, err.actual);
        }
      }
    }
    throw new ConnectError("too many concurrent writers on this entity; try again", Code.Aborted);
  }

  /**
   * A mutation whose new state does not depend on the current one (Set,
   * Revert): one commit, checked against the caller's expected version if
   * there is one, at whatever version the storage finds under its own lock
   * otherwise. No read first, and no retry when another writer was first.
   * An entity within a few bytes of the size limit takes mutate's way, whose
   * size check knows the version it will write.
   */
  async function write(
    ctx: HandlerContext,
    ref: EntityRef,
    expectedVersion: bigint | undefined,
    operation: EventOperation,
    state: JsonObject,
  ): Promise<Event> {
    const expected = expectedVersion === undefined ? undefined : Number(expectedVersion);
    const exact = () => mutate(ctx, ref, expectedVersion, () => ({ operation, state, eventValues: state }));
    if (expected !== undefined && !Number.isSafeInteger(expected)) return exact();
    // At version 1 the entity's size is the least it can be; any later version adds at most 9 bytes.
    const least = fieldSize(entitySize({ ...ref, values: state, version: 1n } as Entity));
    if (least + 9 > maxEntityBytes) return exact();
    try {
      return await commit(ctx, ref, expected, operation, state, state);
    } catch (err) {
      if (!(err instanceof VersionConflictError)) throw err;
      if (expectedVersion === undefined) return exact();
      throw staleVersion(expectedVersion, err.actual);
    }
  }

  const notFound = (ref: EntityRef) =>
    new ConnectError(`entity ${ref.domain}/${ref.type}/${ref.key} not found`, Code.NotFound);

  return {
    async set(req, ctx) {
      const ref = { domain: req.domain, type: req.type, key: req.key };
      const event = await write(ctx, ref, req.expectedVersion, "set", req.values as JsonObject);
      return { event };
    },

    async edit(req, ctx) {
      const ref = { domain: req.domain, type: req.type, key: req.key };
      const event = await mutate(ctx, ref, req.expectedVersion, (current) => {
        if (!current) throw notFound(ref);
        const merged = { ...current.values, ...(req.values as JsonObject) };
        return { operation: "edit", state: merged, eventValues: merged };
      });
      return { event };
    },

    async revert(req, ctx) {
      const ref = { domain: req.domain, type: req.type, key: req.key };
      const target = await storage.getEvent({ ...ref, id: req.id.toLowerCase() });
      if (!target) {
        throw new ConnectError(
          `event ${req.id} of entity ${ref.domain}/${ref.type}/${ref.key} not found`,
          Code.NotFound,
        );
      }
      const event = await write(ctx, ref, req.expectedVersion, "revert", target.values);
      return { event };
    },

    async get(req) {
      const ref = { domain: req.domain, type: req.type, key: req.key };
      const record = await storage.getEntity(ref);
      if (!record) throw notFound(ref);
      return { entity: toEntity(record) };
    },

    async del(req, ctx) {
      const ref = { domain: req.domain, type: req.type, key: req.key };
      const event = await mutate(ctx, ref, req.expectedVersion, (current) => {
        if (!current) throw notFound(ref);
        return { operation: "delete", state: null, eventValues: current.values };
      });
      return { event };
    },

    async search(req) {
      const records = await storage.searchEntities({
        domain: req.domain,
        type: req.type,
        filter: parseFilter(req.filter),
        sort: toSortSpec(req.sort),
        limit: req.limit ?? DEFAULT_LIMIT,
        offset: req.offset,
      });
      const entities = records.map(toEntity);
      checkPageSize(entities, entitySize, maxResponseBytes, "entities");
      return { entities };
    },
  };
}
