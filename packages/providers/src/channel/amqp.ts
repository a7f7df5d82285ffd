/**
 * The AMQP channel (RabbitMQ, through amqplib): gateways that scale out share
 * events and peer messages through one broker.
 *
 * Topology, for each topic ("events", "messages"):
 * - a fanout exchange `<prefix>.<topic>`, which publish() sends to through a
 *   confirm channel;
 * - per channel instance (gateway), one exclusive, auto-delete, server-named
 *   queue bound to it and consumed once; each payload is fanned out to the
 *   instance's plain subscriptions, so every gateway gets every payload;
 * - per consumer group, one shared queue `<prefix>.<topic>.group.<sha256 of
 *   the group, 32 hex digits>` bound to it. Every member, on any gateway,
 *   consumes it on its own AMQP channel with a prefetch and manual acks, and
 *   RabbitMQ hands each payload to one member.
 *
 * The connection is watched: when it is lost, calls fail fast with
 * ProviderUnavailableError while the adapter reconnects with backoff (up to
 * 5 s), re-declares, re-binds and resumes every live subscription.
 *
 * @example
 * const channel = await createAmqpChannel({ addr: "127.0.0.1:5672", user: "guest", password: "guest" });
 * const unsubscribe = await channel.subscribe("events", (payload) => console.log(payload), { group: "audit" });
 * await channel.publish("events", new TextEncoder().encode("hello"));
 */
import { createHash } from "node:crypto";
import type { Channel as AmqpChannel, ConsumeMessage } from "amqplib";
import { ProviderClosedError, ProviderUnavailableError } from "../errors.js";
import type { Channel, SubscribeOptions, Topic, Unsubscribe } from "../types.js";
import { amqpDisconnected, amqpError } from "./amqp-errors.js";
import {
  type Consumer,
  cancelConsumer,
  closeLink,
  consumeGroupQueue,
  consumeInstanceQueue,
  exchangeName,
  type Link,
  type LinkEvents,
  openLink,
  topics,
} from "./amqp-link.js";
import { type AmqpChannelOptions, resolveAmqpSettings } from "./amqp-options.js";
import { Inbox } from "./inbox.js";

export type { AmqpChannelOptions, AmqpTlsOptions } from "./amqp-options.js";

// How long a leaving group member may finish the payload in hand, so it is
// acknowledged instead of redelivered to another member.
const handOffWaitMs = 2_000;
const closeWaitMs = 2_000;
const reconnectMaxMs = 5_000;

interface PlainTopic {
  inboxes: Set<Inbox>;
  consumer: Consumer | undefined;
}

interface Member {
  topic: Topic;
  queue: string;
  inbox: Inbox;
  consumer: Consumer | undefined;
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

/** Rejects with ProviderUnavailableError if `promise` has not settled after `ms`. */
function deadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new ProviderUnavailableError("amqp", "the broker did not answer in time")),
      ms,
    );
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/** Creates an AMQP channel and connects it; throws ProviderUnavailableError when the broker cannot be reached. */
export async function createAmqpChannel(options: AmqpChannelOptions = {}): Promise<Channel> {
  const settings = resolveAmqpSettings(options);
  const plain = new Map<Topic, PlainTopic>(topics.map((topic) => [topic, { inboxes: new Set(), consumer: undefined }]));
  const members = new Set<Member>();
  let link: Link | undefined;
  let closed = false;
  let retry: NodeJS.Timeout | undefined;
  let attempt = 0;
  let tail: Promise<unknown> = Promise.resolve();

  // Topology changes (subscribe, unsubscribe, recovery) run one at a time, so
  // a recovery never races a half-made subscription.
  const serially = <T>(task: () => Promise<T>): Promise<T> => {
    const run = tail.then(task);
    tail = run.catch(() => {});
    return run;
  };

  // Called from amqplib's event handlers, which rethrow: a throwing callback would crash the gateway.
  const report = (error: unknown): void => {
    try {
      options.onError?.(error);
    } catch {}
  };
  const notify = (connected: boolean): void => {
    try {
      options.onConnectionChange?.(connected);
    } catch {}
  };

  const ensureOpen = (): void => {
    if (closed) {
      throw new ProviderClosedError("amqp");
    }
  };

  // A call cut short by close() reports that, not the connection it lost.
  const failure = (error: unknown): Error => (closed ? new ProviderClosedError("amqp") : amqpError(error));

  // Subscriptions that want to hear of an outage: payloads published while a
  // plain queue was gone with its connection never arrive, so they catch up.
  const onReconnect = new Map<Inbox, () => void>();

  const forgetConsumers = (): void => {
    for (const state of plain.values()) {
      state.consumer = undefined;
    }
    for (const member of members) {
      member.consumer = undefined;
      // Unacknowledged, so the broker redelivers them to the group.
      member.inbox.discard();
    }
  };

  const events: LinkEvents = {
    report,
    lost(lost, error) {
      if (lost.dead) {
        return;
      }
      void closeLink(lost);
      // A link still being opened is not current: its opener sees the failure.
      if (link !== lost) {
        return;
      }
      link = undefined;
      forgetConsumers();
      if (!closed) {
        report(error);
        notify(false);
        reconnectLater();
      }
    },
  };

  const deliverPlain = (owner: Link, state: PlainTopic, channel: AmqpChannel, message: ConsumeMessage | null) => {
    if (message === null) {
      events.lost(owner, new Error("the broker cancelled an instance queue consumer"));
      return;
    }
    const ack = (): void => {
      try {
        channel.ack(message);
      } catch {
        // The channel is gone, and the exclusive queue with it: nothing to acknowledge.
      }
    };
    // Acknowledged once every subscription of this instance has handled it.
    let waiting = state.inboxes.size;
    const settle = () => {
      waiting -= 1;
      if (waiting === 0) ack();
    };
    if (waiting === 0) {
      ack();
    }
    for (const inbox of state.inboxes) {
      // A copy each, so no handler sees another's mutations.
      if (!inbox.push({ payload: new Uint8Array(message.content), settle })) settle();
    }
  };

  const deliverMember = (owner: Link, member: Member, channel: AmqpChannel, message: ConsumeMessage | null) => {
    if (message === null) {
      events.lost(owner, new Error("the broker cancelled a group consumer"));
      return;
    }
    // A handler error is reported and still acknowledged: the payload was handed to the member, and
    // requeueing it would hand it to the same failing code again, while rejecting it would drop it
    // for the group all the same. A leaving member's inbox refuses it, leaving it unacknowledged:
    // closing the member's channel hands it back to the group.
    member.inbox.push({
      payload: new Uint8Array(message.content),
      settle: () => {
        try {
          channel.ack(message);
        } catch {
          // The channel is gone; the broker has already handed the payload back to the group.
        }
      },
    });
  };

  const startPlain = async (on: Link, topic: Topic, state: PlainTopic): Promise<void> => {
    state.consumer = await consumeInstanceQueue(on, settings, topic, (channel, message) =>
      deliverPlain(on, state, channel, message),
    );
  };

  const startMember = async (on: Link, member: Member): Promise<void> => {
    member.consumer = await consumeGroupQueue(
      on,
      settings,
      member.topic,
      member.queue,
      (channel, message) => deliverMember(on, member, channel, message),
      events,
    );
  };

  const recover = async (): Promise<void> => {
    if (closed || link !== undefined) {
      return;
    }
    let next: Link | undefined;
    try {
      next = await openLink(settings, events);
      for (const [topic, state] of plain) {
        if (state.inboxes.size > 0) await startPlain(next, topic, state);
      }
      for (const member of members) {
        if (member.inbox.active) await startMember(next, member);
      }
      if (next.dead) {
        throw new Error("the AMQP connection closed while recovering");
      }
    } catch (error) {
      if (next !== undefined) void closeLink(next);
      forgetConsumers();
      if (!closed) {
        report(error);
        reconnectLater();
      }
      return;
    }
    if (closed) {
      await within(closeLink(next), closeWaitMs);
      return;
    }
    link = next;
    attempt = 0;
    notify(true);
    // Only now are the queues bound again: a catch-up that starts here misses nothing.
    for (const [inbox, listener] of onReconnect) {
      if (!inbox.active) continue;
      try {
        listener();
      } catch (error) {
        report(error);
      }
    }
  };

  const reconnectLater = (): void => {
    if (closed || retry !== undefined) {
      return;
    }
    // Exponential with jitter, so gateways that lost the broker together do not return in lockstep.
    const delay = Math.min(reconnectMaxMs, 100 * 2 ** attempt) * (0.8 + Math.random() * 0.2);
    attempt += 1;
    retry = setTimeout(() => {
      retry = undefined;
      void serially(recover);
    }, delay);
  };

  const leavePlain = async (state: PlainTopic, inbox: Inbox): Promise<void> => {
    for (const delivery of inbox.stop()) {
      delivery.settle();
    }
    state.inboxes.delete(inbox);
    await serially(async () => {
      const consumer = state.consumer;
      if (state.inboxes.size > 0 || consumer === undefined) {
        return;
      }
      state.consumer = undefined;
      // Auto-delete: the instance queue goes with its last consumer.
      await cancelConsumer(consumer, false);
    });
  };

  const leaveGroup = async (member: Member): Promise<void> => {
    member.inbox.stop();
    // Bounded: a handler that awaits its own unsubscribe would otherwise wait
    // for itself. Past the bound, its payload goes back to the group.
    await within(member.inbox.idle(), handOffWaitMs);
    members.delete(member);
    await serially(async () => {
      const consumer = member.consumer;
      member.consumer = undefined;
      if (consumer !== undefined) {
        await cancelConsumer(consumer, true);
      }
    });
  };

  const once = (leave: () => Promise<void>): Unsubscribe => {
    let left: Promise<void> | undefined;
    return () => {
      left ??= leave();
      return left;
    };
  };

  try {
    link = await openLink(settings, events);
  } catch (error) {
    throw amqpError(error);
  }

  return {
    name: "amqp",
    async publish(topic, payload) {
      ensureOpen();
      const on = link;
      if (on === undefined) {
        throw amqpDisconnected();
      }
      if (on.blocked) {
        throw new ProviderUnavailableError("amqp", "the broker is blocking publishers (resource alarm)");
      }
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new ProviderUnavailableError("amqp", "the broker did not confirm the payload in time")),
          settings.publishTimeoutMs,
        );
        const done = (error: unknown) => {
          clearTimeout(timer);
          if (error === null || error === undefined) resolve();
          else reject(failure(error));
        };
        try {
          // Buffer.from copies: the caller may reuse its bytes once publish() returns.
          on.publisher.publish(exchangeName(settings, topic), "", Buffer.from(payload), {}, done);
        } catch (error) {
          done(error);
        }
      });
    },
    async subscribe(topic, handler, subscribeOptions: SubscribeOptions = {}): Promise<Unsubscribe> {
      ensureOpen();
      const state = plain.get(topic);
      if (state === undefined) {
        throw new TypeError(`amqp: unknown topic ${JSON.stringify(topic)}`);
      }
      const group = subscribeOptions.group;
      const inbox = new Inbox(handler, report);
      const listener = subscribeOptions.onReconnect;
      if (listener) onReconnect.set(inbox, listener);
      return serially(async () => {
        ensureOpen();
        const on = link;
        if (on === undefined) {
          throw amqpDisconnected();
        }
        if (group === undefined) {
          state.inboxes.add(inbox);
          if (state.consumer === undefined) {
            try {
              await startPlain(on, topic, state);
            } catch (error) {
              state.inboxes.delete(inbox);
              onReconnect.delete(inbox);
              inbox.stop();
              throw failure(error);
            }
          }
          return once(() => {
            onReconnect.delete(inbox);
            return leavePlain(state, inbox);
          });
        }
        const queue = `${settings.prefix}.${topic}.group.${createHash("sha256").update(group).digest("hex").slice(0, 32)}`;
        const member: Member = { topic, queue, inbox, consumer: undefined };
        try {
          await startMember(on, member);
        } catch (error) {
          onReconnect.delete(inbox);
          inbox.stop();
          throw failure(error);
        }
        members.add(member);
        return once(() => {
          onReconnect.delete(inbox);
          return leaveGroup(member);
        });
      });
    },
    async ping() {
      ensureOpen();
      const on = link;
      if (on === undefined) {
        throw amqpDisconnected();
      }
      let channel: AmqpChannel | undefined;
      const check = async () => {
        channel = await on.model.createChannel();
        // A failed check closes this throwaway channel; the rejection below reports it.
        channel.on("error", () => {});
        for (const topic of topics) {
          await channel.checkExchange(exchangeName(settings, topic));
        }
      };
      try {
        await deadline(check(), settings.publishTimeoutMs);
      } catch (error) {
        throw failure(error);
      } finally {
        channel?.close().catch(() => {});
      }
    },
    async close() {
      if (closed) {
        return;
      }
      closed = true;
      clearTimeout(retry);
      retry = undefined;
      for (const state of plain.values()) {
        for (const inbox of state.inboxes) inbox.stop();
        state.inboxes.clear();
      }
      for (const member of members) {
        member.inbox.stop();
      }
      members.clear();
      forgetConsumers();
      const on = link;
      link = undefined;
      if (on !== undefined) {
        // Closing the connection cancels every consumer and hands unacknowledged group payloads back to the broker.
        await within(closeLink(on), closeWaitMs);
      }
      // A recovery in flight sees `closed` and closes what it opened.
      await within(tail, closeWaitMs);
    },
  };
}
