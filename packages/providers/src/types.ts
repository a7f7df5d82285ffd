/**
 * The three provider interfaces of stategate. A gateway talks to its backends
 * only through these; every adapter (embedded, MySQL, PostgreSQL, Memcached,
 * Redis, AMQP, NATS …) implements exactly one of them, and all adapters of a
 * kind pass the same conformance suite (`@stategate/providers/conformance`).
 *
 * Adapters hold no business rules: versions, merges, reverts and validation
 * live in the gateway's services. Adapters only promise atomicity, ordering
 * and the error classes in `errors.ts`.
 */

/** Any JSON value. */
export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
/** A JSON object. */
export type JsonObject = { [key: string]: JsonValue };

/** Names one entity. */
export interface EntityRef {
  domain: string;
  type: string;
  key: string;
}

/** The current state of an entity as storage keeps it. */
export interface EntityRecord extends EntityRef {
  values: JsonObject;
  /** 1 after the first write, +1 per mutation. */
  version: number;
}

/** The kind of mutation an event records. */
export type EventOperation = "set" | "edit" | "delete" | "revert";

/** One immutable change to an entity, as storage keeps it. */
export interface EventRecord extends EntityRef {
  /** UUID v4, assigned by the gateway. */
  id: string;
  /** The entity values after the change; for a delete, the values just before it. */
  values: JsonObject;
  /** The entity version this event produced. */
  version: number;
  /**
   * Assigned by storage on commit: strictly increasing across all events, and
   * visible in that order: once an event can be read, so can every event with
   * a lower position. Streams resume by position and rely on this.
   */
  position: number;
  operation: EventOperation;
  /** The protobuf method name, e.g. "/stategate.v1.EntityService/Set". */
  method: string;
  /** The caller's authentication claims ({} when auth is off). */
  claims: JsonObject;
  /** Nanoseconds since the Unix epoch. */
  time: bigint;
}

/**
 * One mutation to commit: the entity's new state and its event, written
 * together or not at all.
 */
export interface Commit {
  /**
   * The event to append. With `expectedVersion`, its `version` must be
   * `expectedVersion + 1`; without, it has none, and the storage gives it the
   * entity's version + 1.
   */
  event: Omit<EventRecord, "position" | "version"> & { version?: number };
  /**
   * The version the entity must be at for the commit to apply: the version of
   * its latest event. A deleted entity keeps the version of its delete event,
   * so versions keep rising when it is written again; 0 means it has never
   * been written. Absent, the commit applies at whatever version the entity
   * is (a write that does not depend on the entity's current state, such as
   * a Set without an expected version): it never conflicts, and the storage
   * reads the version inside the same transaction that writes it.
   */
  expectedVersion?: number;
  /** The new current values, or null to delete the current state. */
  state: JsonObject | null;
}

/** One equality term of a search filter. */
export interface FilterTerm {
  /** Path segments into the values: `["address", "city"]`. */
  path: string[];
  /** The scalar the value at `path` must equal, type included. */
  value: string | number | boolean | null;
}

/**
 * Order of search results. Entries whose value at the path is missing or JSON
 * null come first in ascending order and last in descending order, on every
 * backend; the order between values of different JSON types is unspecified.
 */
export interface SortSpec {
  /** Path segments into the values. */
  path: string[];
  desc: boolean;
}

/** A search over the current entities of one domain and type. */
export interface EntityQuery {
  domain: string;
  type: string;
  filter: FilterTerm[];
  /** Absent: ordered by key. Ties are broken by key. */
  sort?: SortSpec;
  limit: number;
  offset: number;
}

/** A search over stored events. */
export interface EventQuery {
  domain: string;
  type: string;
  /** Only this entity's events when set. */
  key?: string;
  /** Inclusive bounds, in ns since the Unix epoch. */
  minTime?: bigint;
  maxTime?: bigint;
  /** Applied to the event's values. */
  filter: FilterTerm[];
  /** Absent: ordered by position. Ties are broken by position. */
  sort?: SortSpec;
  limit: number;
  offset: number;
}

/** Where entities and their events are kept. */
export interface Storage {
  /** A short name for logs and metrics, e.g. "sqlite". */
  readonly name: string;
  /**
   * Writes `commit.state` as the entity's current state (or deletes it when
   * null) and appends `commit.event`, in one transaction, if and only if the
   * entity is currently at `commit.expectedVersion`. Returns the stored event
   * with its assigned position. Throws `VersionConflictError` (and writes
   * nothing) when the version does not match, including when another writer
   * won a race. A ProviderUnavailableError may come after the commit was
   * applied (the connection died during COMMIT): read the version again before
   * retrying.
   *
   * Names reach storage within the gateway's limits: domain and type at most
   * 128 characters, key at most 255.
   */
  commit(commit: Commit): Promise<EventRecord>;
  /** The current state of one entity, or undefined (never written, or deleted). */
  getEntity(ref: EntityRef): Promise<EntityRecord | undefined>;
  /**
   * The version of the entity's latest event: its current version, the
   * version of its delete event when deleted, or 0 when never written.
   */
  getVersion(ref: EntityRef): Promise<number>;
  /** Current entities matching the query. */
  searchEntities(query: EntityQuery): Promise<EntityRecord[]>;
  /** One event of one entity by id, or undefined (also when the id belongs to another entity). */
  getEvent(ref: EntityRef & { id: string }): Promise<EventRecord | undefined>;
  /** Stored events matching the query. */
  searchEvents(query: EventQuery): Promise<EventRecord[]>;
  /** Up to `limit` events with a position greater than `position`, in position order. */
  eventsAfter(position: number, limit: number): Promise<EventRecord[]>;
  /** The position of the newest stored event, or 0 when there is none. */
  lastPosition(): Promise<number>;
  /**
   * The outbox: up to `limit` events not yet marked published whose time is at
   * or before `before` (ns), in position order. A gateway relays them to the
   * channel when the publish right after commit failed or its gateway died.
   */
  unpublishedEvents(before: bigint, limit: number): Promise<EventRecord[]>;
  /** Marks events as handed to the channel, so the relay skips them. Unknown positions are ignored. */
  markPublished(positions: number[]): Promise<void>;
  /** Answers when the backend can be reached; throws otherwise. */
  ping(): Promise<void>;
  /** Releases connections and files. Further calls fail. */
  close(): Promise<void>;
}

/** A cached value. */
export interface CacheEntry {
  value: JsonValue;
  /** Absent: never expires. */
  expiresAt?: Date;
}

/** Short-lived values and locks. */
export interface Cache {
  /** A short name for logs and metrics, e.g. "memory". */
  readonly name: string;
  /** The value under domain/key, or undefined when absent or expired. */
  get(domain: string, key: string): Promise<CacheEntry | undefined>;
  /** Stores a value, replacing any other; `expiresAt` absent means never. */
  set(domain: string, key: string, entry: CacheEntry): Promise<void>;
  /** Removes a value; true when one was there. */
  del(domain: string, key: string): Promise<boolean>;
  /**
   * Takes the lock domain/key for `token` until `expiresAt`, if no unexpired
   * lock is held. Returns false, changing nothing, when it is held.
   */
  lock(domain: string, key: string, token: string, expiresAt: Date): Promise<boolean>;
  /**
   * Releases the lock if and only if it is currently held with `token`, in one
   * atomic step. Returns false, changing nothing, otherwise.
   */
  unlock(domain: string, key: string, token: string): Promise<boolean>;
  /** Answers when the backend can be reached; throws otherwise. */
  ping(): Promise<void>;
  /** Releases connections. Further calls fail. */
  close(): Promise<void>;
}

/** The two kinds of traffic a channel carries between gateways. */
export type Topic = "events" | "messages";

/** Options of a channel subscription. */
export interface SubscribeOptions {
  /**
   * When set, each payload goes to exactly one live subscription among all
   * subscriptions (on every gateway) with the same topic and group. When
   * absent, every subscription of the topic gets every payload.
   */
  group?: string;
  /**
   * Called after the subscription lost its connection to the backend and got
   * it back: payloads published in between may never arrive. Event streams
   * then catch up from storage. Backends that cannot lose payloads never call it.
   */
  onReconnect?: () => void;
}

/** Ends a subscription; resolves when no further payload will be delivered. */
export type Unsubscribe = () => Promise<void>;

/** Carries events and peer messages between gateways. Payloads are opaque bytes. */
export interface Channel {
  /** A short name for logs and metrics, e.g. "memory". */
  readonly name: string;
  /** Sends a payload to the subscribers of a topic. Resolves once the backend accepted it. */
  publish(topic: Topic, payload: Uint8Array): Promise<void>;
  /**
   * Delivers the topic's payloads to `handler`, in publish order per publisher,
   * until the returned function is called. A backend with acknowledgements
   * acknowledges a payload only once `handler` has returned (or its promise
   * resolved): the gateway has then handed it to a stream. If the handler
   * throws, the payload is not redelivered to the same subscription.
   */
  subscribe(
    topic: Topic,
    handler: (payload: Uint8Array) => void | Promise<void>,
    options?: SubscribeOptions,
  ): Promise<Unsubscribe>;
  /** Answers when the backend can be reached; throws otherwise. */
  ping(): Promise<void>;
  /** Ends every subscription and releases connections. Further calls fail. */
  close(): Promise<void>;
}
