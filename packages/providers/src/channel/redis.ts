/**
 * The Redis channel (through ioredis): gateways that scale out share events
 * and peer messages through one Redis server (standalone or a primary; not
 * Cluster).
 *
 * Topology, for each topic ("events", "messages"):
 * - publish() runs one script on the instance's publishing connection: it
 *   PUBLISHes the payload on the pub/sub channel `<prefix>:<topic>` and, only
 *   while a group exists, appends it to the stream `<prefix>:<topic>:stream`
 *   (XADD MAXLEN ~ maxLen);
 * - per channel instance (gateway), one pub/sub connection SUBSCRIBEd to the
 *   channels its plain subscriptions need; each payload is fanned out to the
 *   instance's plain subscriptions, so every gateway gets every payload;
 * - per consumer group, one Redis consumer group (named by the sha256 of the
 *   group) on the topic's stream, plus a set of its live members
 *   `<prefix>:<topic>:group:<hash>`. Every member, on any gateway, is one
 *   consumer reading with XREADGROUP on a connection of its own, so the server
 *   hands each entry to one member; see redis-group.ts for acknowledgements,
 *   heartbeats, claiming and leaving.
 *
 * Connections are watched: while one is down, calls that need it fail fast
 * with ProviderUnavailableError (no offline queue) and ioredis reconnects
 * with backoff (up to 5 s). Plain subscriptions are subscribed again by the
 * adapter itself, and then told through `onReconnect`: pub/sub keeps nothing
 * for a disconnected subscriber.
 *
 * @example
 * const channel = await createRedisChannel({ addr: "127.0.0.1:6379" });
 * const unsubscribe = await channel.subscribe("events", (payload) => console.log(payload), { group: "audit" });
 * await channel.publish("events", new TextEncoder().encode("hello"));
 */
import { ProviderClosedError } from "../errors.js";
import type { Channel, SubscribeOptions, Topic, Unsubscribe } from "../types.js";
import { Inbox } from "./inbox.js";
import { redisDisconnected, redisError } from "./redis-errors.js";
import { type GroupContext, type GroupMember, joinGroup } from "./redis-group.js";
import { channelKey, openConnection, streamKey, topics } from "./redis-link.js";
import { type RedisChannelOptions, resolveRedisSettings } from "./redis-options.js";

export type { RedisChannelOptions, RedisChannelTlsOptions } from "./redis-options.js";

const closeWaitMs = 2_000;

interface PlainTopic {
  inboxes: Set<Inbox>;
  /** The pub/sub connection is subscribed to the topic's channel. */
  subscribed: boolean;
}

/** Resolves when `promise` settles or after `ms`, whichever comes first. */
function within(promise: Promise<unknown>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    promise.then(done, done);
  });
}

const noop = (): void => {};

/** Creates a Redis channel and connects it; throws ProviderUnavailableError when the server cannot be reached. */
export async function createRedisChannel(options: RedisChannelOptions = {}): Promise<Channel> {
  const settings = resolveRedisSettings(options);
  const plain = new Map<Topic, PlainTopic>(topics.map((topic) => [topic, { inboxes: new Set(), subscribed: false }]));
  const byChannel = new Map<string, PlainTopic>(
    topics.map((topic) => [channelKey(settings, topic), plain.get(topic) as PlainTopic]),
  );
  const members = new Set<GroupMember>();
  // Plain subscriptions that want to hear of an outage: pub/sub keeps nothing for a disconnected subscriber.
  const onReconnect = new Map<Inbox, () => void>();
  let closed = false;
  let tail: Promise<unknown> = Promise.resolve();

  // Pub/sub changes (subscribe, unsubscribe, recovery) run one at a time, so
  // a recovery never races a half-made subscription.
  const serially = <T>(task: () => Promise<T>): Promise<T> => {
    const run = tail.then(task);
    tail = run.catch(() => {});
    return run;
  };

  // Called from ioredis's event handlers, which rethrow: a throwing callback would crash the gateway.
  const report = (error: unknown): void => {
    try {
      options.onError?.(error);
    } catch {}
  };

  const ensureOpen = (): void => {
    if (closed) {
      throw new ProviderClosedError("redis");
    }
  };

  // A call cut short by close() reports that, not the connection it lost.
  const failure = (error: unknown): Error => (closed ? new ProviderClosedError("redis") : redisError(error));

  const opened = await Promise.allSettled([
    openConnection(settings, "publish", report),
    openConnection(settings, "pubsub", report),
  ]);
  const [first, second] = opened;
  if (first.status === "rejected" || second.status === "rejected") {
    // One may have opened: ioredis would keep it, and reconnect it, forever.
    for (const result of opened) if (result.status === "fulfilled") result.value.disconnect();
    throw (first.status === "rejected" ? first : (second as PromiseRejectedResult)).reason;
  }
  const command = first.value;
  const pubsub = second.value;
  const context: GroupContext = { settings, command, report };

  // True once the pub/sub connection is back and subscribed again.
  let pubsubUp = true;
  let connected = true;
  const notify = (): void => {
    const now = command.status === "ready" && pubsubUp;
    if (closed || now === connected) return;
    connected = now;
    try {
      options.onConnectionChange?.(now);
    } catch {}
  };

  pubsub.on("messageBuffer", (channel: Buffer, message: Buffer) => {
    const state = byChannel.get(channel.toString());
    for (const inbox of state?.inboxes ?? []) {
      // A copy each, so no handler sees another's mutations.
      inbox.push({ payload: new Uint8Array(message), settle: noop });
    }
  });
  pubsub.on("close", () => {
    // The server dropped every subscription with the connection.
    for (const state of plain.values()) state.subscribed = false;
    pubsubUp = false;
    notify();
  });
  pubsub.on("ready", () => {
    void serially(async () => {
      if (closed || pubsub.status !== "ready") return;
      try {
        for (const [topic, state] of plain) {
          if (state.inboxes.size > 0 && !state.subscribed) {
            await pubsub.subscribe(channelKey(settings, topic));
            state.subscribed = true;
          }
        }
      } catch (error) {
        // Broken again: the next "ready" tries again.
        report(error);
        return;
      }
      pubsubUp = true;
      notify();
      // Only now are the channels subscribed again: a catch-up that starts here misses nothing.
      for (const [inbox, listener] of onReconnect) {
        if (!inbox.active) continue;
        try {
          listener();
        } catch (error) {
          report(error);
        }
      }
    }).catch(report);
  });
  command.on("close", notify);
  command.on("ready", notify);

  const subscribePlain = (topic: Topic, state: PlainTopic, inbox: Inbox): Promise<Unsubscribe> =>
    serially(async () => {
      ensureOpen();
      if (!pubsubUp || pubsub.status !== "ready") {
        throw redisDisconnected();
      }
      state.inboxes.add(inbox);
      if (!state.subscribed) {
        try {
          await pubsub.subscribe(channelKey(settings, topic));
          state.subscribed = true;
        } catch (error) {
          state.inboxes.delete(inbox);
          throw failure(error);
        }
      }
      let left: Promise<void> | undefined;
      return () => {
        left ??= leavePlain(topic, state, inbox);
        return left;
      };
    });

  const leavePlain = async (topic: Topic, state: PlainTopic, inbox: Inbox): Promise<void> => {
    onReconnect.delete(inbox);
    inbox.stop();
    state.inboxes.delete(inbox);
    await serially(async () => {
      if (state.inboxes.size > 0 || !state.subscribed || closed) {
        return;
      }
      state.subscribed = false;
      // Lost with the connection if it is down; the recovery subscribes only what is still wanted.
      await pubsub.unsubscribe(channelKey(settings, topic)).catch(noop);
    });
  };

  const subscribeGroup = async (
    topic: Topic,
    group: string,
    handler: (payload: Uint8Array) => void | Promise<void>,
    listener: (() => void) | undefined,
  ): Promise<Unsubscribe> => {
    let member: GroupMember;
    try {
      member = await joinGroup(context, topic, group, handler, listener);
    } catch (error) {
      throw failure(error);
    }
    if (closed) {
      await member.leave();
      throw new ProviderClosedError("redis");
    }
    members.add(member);
    return async () => {
      await member.leave();
      members.delete(member);
    };
  };

  return {
    name: "redis",
    async publish(topic, payload) {
      ensureOpen();
      if (command.status !== "ready") {
        throw redisDisconnected();
      }
      try {
        // Buffer.from copies: the caller may reuse its bytes once publish() returns.
        await command.stategatePublish(
          streamKey(settings, topic),
          channelKey(settings, topic),
          settings.maxLen,
          Buffer.from(payload),
        );
      } catch (error) {
        throw failure(error);
      }
    },
    async subscribe(topic, handler, subscribeOptions: SubscribeOptions = {}): Promise<Unsubscribe> {
      ensureOpen();
      const state = plain.get(topic);
      if (state === undefined) {
        throw new TypeError(`redis: unknown topic ${JSON.stringify(topic)}`);
      }
      if (subscribeOptions.group !== undefined) {
        return subscribeGroup(topic, subscribeOptions.group, handler, subscribeOptions.onReconnect);
      }
      const inbox = new Inbox(handler, report);
      const listener = subscribeOptions.onReconnect;
      if (listener) onReconnect.set(inbox, listener);
      try {
        return await subscribePlain(topic, state, inbox);
      } catch (error) {
        onReconnect.delete(inbox);
        inbox.stop();
        throw error;
      }
    },
    async ping() {
      ensureOpen();
      if (command.status !== "ready" || !pubsubUp) {
        throw redisDisconnected();
      }
      try {
        await command.ping();
      } catch (error) {
        throw failure(error);
      }
    },
    async close() {
      if (closed) {
        return;
      }
      closed = true;
      for (const state of plain.values()) {
        for (const inbox of state.inboxes) inbox.stop();
        state.inboxes.clear();
      }
      onReconnect.clear();
      // Members leave properly, so what they held goes to members elsewhere at once.
      await within(Promise.all([...members].map((member) => member.leave())), closeWaitMs);
      members.clear();
      command.disconnect();
      pubsub.disconnect();
      await within(tail, closeWaitMs);
    },
  };
}
