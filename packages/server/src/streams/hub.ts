import type { Channel, Topic, Unsubscribe } from "@stategate/providers";
import type { Logger } from "pino";
import { Sequencer, type SequenceSource } from "./sequencer.js";

/** Receives decoded payloads of one topic. */
export type Listener<T> = (item: T) => void;

interface Member<T> {
  deliver: Listener<T>;
  onGap?: () => void;
}

interface Route<T> {
  unsubscribe: Promise<Unsubscribe>;
  listeners: Member<T>[];
  next: number;
  /** Keys of recently delivered items, oldest first, to drop copies. */
  seen: Set<unknown>;
  /** Puts a plain route's items in order before they are delivered (see sequencer.ts). */
  sequencer?: Sequencer<T>;
}

/** How many recent keys a route remembers to drop duplicates. */
const DEDUPE_WINDOW = 10_000;

/**
 * Joins a gateway's streams to the channel. All plain subscribers of a topic
 * share one channel subscription and every one gets every payload; members of
 * a consumer group share one group subscription per gateway, and the channel
 * hands each payload to one gateway, which hands it to one local member in
 * turn. A payload is decoded once per gateway, not once per stream.
 */
export class Hub<T> {
  private readonly routes = new Map<string, Route<T>>();

  constructor(
    private readonly channel: Channel,
    private readonly topic: Topic,
    private readonly decode: (payload: Uint8Array) => T,
    private readonly log: Logger,
    /** When set, an item whose key was delivered recently is dropped as a copy. */
    private readonly keyOf?: (item: T) => unknown,
    /** When set, every plain subscriber gets the items in this order (consumer groups share them out as they come). */
    private readonly sequence?: SequenceSource<T>,
  ) {}

  /** Publishes one item to every gateway. */
  publish(payload: Uint8Array): Promise<void> {
    return this.channel.publish(this.topic, payload);
  }

  /**
   * Adds a listener; `group` (already made unique per pattern set by the caller)
   * makes it one member of a consumer group. Resolves once the channel
   * subscription is live, so nothing published afterwards is missed.
   */
  async subscribe(listener: Listener<T>, group?: string, onGap?: () => void): Promise<() => void> {
    const member: Member<T> = { deliver: listener, onGap };
    const routeKey = group === undefined ? "" : `g:${group}`;
    let route = this.routes.get(routeKey);
    if (!route) {
      const created: Route<T> = {
        listeners: [],
        next: 0,
        seen: new Set(),
        unsubscribe: Promise.resolve(async () => {}),
      };
      created.unsubscribe = this.channel.subscribe(
        this.topic,
        (payload) => this.deliver(created, payload, group !== undefined),
        { ...(group === undefined ? {} : { group }), onReconnect: () => this.reconnected(created) },
      );
      if (group === undefined && this.sequence) {
        const sequencer = new Sequencer(this.sequence, (item) => this.send(created, item), this.log);
        created.sequencer = sequencer;
        // Its start is read once the subscription is live, so it is no older than what the channel brings.
        created.unsubscribe = created.unsubscribe.then(async (stop) => {
          await sequencer.start();
          return stop;
        });
      }
      this.routes.set(routeKey, created);
      route = created;
      created.unsubscribe.catch(() => this.routes.delete(routeKey));
    }
    route.listeners.push(member);
    try {
      await route.unsubscribe;
    } catch (err) {
      route.listeners = route.listeners.filter((l) => l !== member);
      throw err;
    }
    const current = route;
    return () => {
      current.listeners = current.listeners.filter((l) => l !== member);
      if (current.listeners.length === 0 && this.routes.get(routeKey) === current) {
        this.routes.delete(routeKey);
        current.sequencer?.close();
        current.unsubscribe.then((stop) => stop()).catch((err) => this.log.warn({ err }, "channel unsubscribe failed"));
      }
    };
  }

  /** How many local listeners are attached, for tests and metrics. */
  get size(): number {
    let n = 0;
    for (const route of this.routes.values()) n += route.listeners.length;
    return n;
  }

  private deliver(route: Route<T>, payload: Uint8Array, grouped: boolean): void {
    if (route.listeners.length === 0) return;
    let item: T;
    try {
      item = this.decode(payload);
    } catch (err) {
      this.log.error({ err, topic: this.topic }, "dropped an undecodable channel payload");
      return;
    }
    if (route.sequencer) route.sequencer.push(item);
    else this.send(route, item, grouped);
  }

  /** Hands one item to the route's listeners, unless it is a copy of one they had. */
  private send(route: Route<T>, item: T, grouped = false): void {
    if (this.keyOf) {
      const key = this.keyOf(item);
      if (route.seen.has(key)) return;
      route.seen.add(key);
      if (route.seen.size > DEDUPE_WINDOW) route.seen.delete(route.seen.values().next().value);
    }
    if (grouped) {
      route.next = (route.next + 1) % route.listeners.length;
      route.listeners[route.next]?.deliver(item);
      return;
    }
    for (const member of [...route.listeners]) member.deliver(item);
  }

  private reconnected(route: Route<T>): void {
    this.log.warn(
      { topic: this.topic, listeners: route.listeners.length },
      "channel reconnected; streams may have missed items",
    );
    for (const member of [...route.listeners]) member.onGap?.();
  }
}
