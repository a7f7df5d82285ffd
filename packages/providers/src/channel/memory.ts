/**
 * The embedded channel: publish/subscribe inside one process, so a single
 * gateway runs with nothing installed. Gateways that scale out need a shared
 * channel (AMQP, NATS, Redis) so events reach subscribers on every gateway.
 *
 * @example
 * const channel = await createMemoryChannel();
 * const unsubscribe = await channel.subscribe("events", (payload) => console.log(payload));
 * await channel.publish("events", new TextEncoder().encode("hello"));
 */
import { ProviderClosedError } from "../errors.js";
import type { Channel, SubscribeOptions, Topic, Unsubscribe } from "../types.js";

/** Options of {@link createMemoryChannel}. */
export interface MemoryChannelOptions {
  /**
   * Told about errors thrown by subscription handlers. They never stop delivery
   * to anyone; without this they are dropped, since the channel has no log.
   */
  onHandlerError?: (error: unknown) => void;
}

interface Subscription {
  topic: Topic;
  group: string | undefined;
  handler: (payload: Uint8Array) => void | Promise<void>;
  queue: Uint8Array[];
  scheduled: boolean;
  active: boolean;
}

interface Group {
  members: Subscription[];
  /** Index of the member the next payload goes to. */
  next: number;
}

/** Creates an in-process channel; separate instances do not see each other's traffic. */
export async function createMemoryChannel(options: MemoryChannelOptions = {}): Promise<Channel> {
  const onHandlerError = options.onHandlerError ?? (() => {});
  const broadcast = new Map<Topic, Set<Subscription>>();
  // topic → group name → members; a Map per topic so a group name means
  // nothing across topics.
  const groups = new Map<Topic, Map<string, Group>>();
  let closed = false;

  const open = (): void => {
    if (closed) {
      throw new ProviderClosedError("memory");
    }
  };

  // Handlers run in a microtask, never inside publish(), so a slow or
  // re-entrant handler cannot reorder or block the publisher; one queue per
  // subscription keeps its payloads in publish order.
  const drain = (subscription: Subscription): void => {
    subscription.scheduled = false;
    while (subscription.active && subscription.queue.length > 0) {
      const payload = subscription.queue.shift() as Uint8Array;
      try {
        subscription.handler(payload)?.catch(onHandlerError);
      } catch (error) {
        onHandlerError(error);
      }
    }
  };

  const enqueue = (subscription: Subscription, payload: Uint8Array): void => {
    // A copy each, as a network channel would give, so no handler sees another's mutations.
    subscription.queue.push(payload.slice());
    if (!subscription.scheduled) {
      subscription.scheduled = true;
      queueMicrotask(() => drain(subscription));
    }
  };

  const toGroup = (group: Group, payload: Uint8Array): void => {
    if (group.members.length === 0) {
      return;
    }
    group.next %= group.members.length;
    const member = group.members[group.next] as Subscription;
    group.next += 1;
    enqueue(member, payload);
  };

  const end = (subscription: Subscription): void => {
    if (!subscription.active) {
      return;
    }
    subscription.active = false;
    const pending = subscription.queue.splice(0);
    if (subscription.group === undefined) {
      broadcast.get(subscription.topic)?.delete(subscription);
      return;
    }
    const byName = groups.get(subscription.topic);
    const group = byName?.get(subscription.group);
    if (byName === undefined || group === undefined) {
      return;
    }
    group.members = group.members.filter((member) => member !== subscription);
    if (group.members.length === 0) {
      byName.delete(subscription.group);
      return;
    }
    // Payloads handed to this member but not yet delivered belong to the
    // group, not to the member: the others take them over.
    for (const payload of pending) {
      toGroup(group, payload);
    }
  };

  return {
    name: "memory",
    async publish(topic, payload) {
      open();
      for (const subscription of broadcast.get(topic) ?? []) {
        enqueue(subscription, payload);
      }
      for (const group of groups.get(topic)?.values() ?? []) {
        toGroup(group, payload);
      }
    },
    async subscribe(topic, handler, subscribeOptions: SubscribeOptions = {}): Promise<Unsubscribe> {
      open();
      const subscription: Subscription = {
        topic,
        group: subscribeOptions.group,
        handler,
        queue: [],
        scheduled: false,
        active: true,
      };
      if (subscription.group === undefined) {
        let set = broadcast.get(topic);
        if (set === undefined) {
          set = new Set();
          broadcast.set(topic, set);
        }
        set.add(subscription);
      } else {
        let byName = groups.get(topic);
        if (byName === undefined) {
          byName = new Map();
          groups.set(topic, byName);
        }
        const group = byName.get(subscription.group) ?? { members: [], next: 0 };
        group.members.push(subscription);
        byName.set(subscription.group, group);
      }
      return async () => end(subscription);
    },
    async ping() {
      open();
    },
    async close() {
      closed = true;
      for (const set of broadcast.values()) {
        for (const subscription of set) {
          subscription.active = false;
          subscription.queue.length = 0;
        }
      }
      for (const byName of groups.values()) {
        for (const group of byName.values()) {
          for (const subscription of group.members) {
            subscription.active = false;
            subscription.queue.length = 0;
          }
        }
      }
      broadcast.clear();
      groups.clear();
    },
  };
}
