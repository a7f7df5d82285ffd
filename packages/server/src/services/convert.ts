import { create } from "@bufbuild/protobuf";
import type { Entity, Event } from "@stategate/api";
import { EntitySchema, EventOperation, EventSchema } from "@stategate/api";
import type { EntityRecord, EventRecord } from "@stategate/providers";

const operations = {
  set: EventOperation.SET,
  edit: EventOperation.EDIT,
  delete: EventOperation.DELETE,
  revert: EventOperation.REVERT,
} as const;

/** A stored entity as the API's Entity message. */
export function toEntity(record: EntityRecord): Entity {
  return create(EntitySchema, {
    domain: record.domain,
    type: record.type,
    key: record.key,
    values: record.values,
    version: BigInt(record.version),
  });
}

/**
 * A stored event as the API's Event message. For a delete, the entity carries
 * the version it had before deletion; otherwise the version the event produced.
 */
export function toEvent(record: EventRecord): Event {
  const entityVersion = record.operation === "delete" ? record.version - 1 : record.version;
  return create(EventSchema, {
    id: record.id,
    entity: {
      domain: record.domain,
      type: record.type,
      key: record.key,
      values: record.values,
      version: BigInt(entityVersion),
    },
    method: record.method,
    claims: record.claims,
    time: record.time,
    version: BigInt(record.version),
    position: BigInt(record.position),
    operation: operations[record.operation],
  });
}

const anchorNs = BigInt(Date.now()) * 1_000_000n;
const anchorHr = process.hrtime.bigint();

/** Wall-clock time in nanoseconds since the Unix epoch, with sub-millisecond resolution. */
export function nowNs(): bigint {
  return anchorNs + (process.hrtime.bigint() - anchorHr);
}
