/**
 * The NATS channel (core NATS, through the `nats` client): gateways that
 * scale out share events and peer messages through one server or cluster.
 *
 * Subjects, for each topic ("events", "messages"):
 * - payloads are published to `<prefix>.<topic>`. Payloads are opaque: no
 *   domain, type or group ever becomes a subject token, so no name can change
 *   where a payload is routed;
 * - per channel instance (gateway), one plain subscription to the subject,
 *   fanned out locally to the instance's plain subscriptions, so every
 *   gateway gets every payload;
 * - per consumer group member, one queue subscription to the subject, in the
 *   queue `g-<sha256 of the group, 32 hex digits>`; the server hands each
 *   payload to one member of the queue, on whichever gateway.
 *
 * Core NATS delivers at most once: what is published while a subscriber is
 * disconnected never reaches it. The client reconnects by itself and
 * re-subscribes; once the server has the subscriptions again, every live
 * subscription's `onReconnect` is called so its owner can catch up (event
 * streams do so from storage). While disconnected, calls fail fast with
 * ProviderUnavailableError instead of queueing in the client.
 *
 * @example
 * const channel = await createNatsChannel({ addr: "127.0.0.1:4222" });
 * const unsubscribe = await channel.subscribe("events", (payload) => console.log(payload), { group: "audit" });
 * await channel.publish("events", new TextEncoder().encode("hello"));
 */
import { createHash } from "node:crypto";
import { connect, Events, type Msg, type NatsConnection, type NatsError, type Subscription } from "nats";
import { ProviderClosedError, ValueTooLargeError } from "../errors.js";
import type { Channel, SubscribeOptions, Topic, Unsubscribe } from "../types.js";
import { Inbox } from "./inbox.js";
import { natsDisconnected, natsError, natsGaveUp, natsTimeout } from "./nats-errors.js";
import { type NatsChannelOptions, resolveNatsSettings } from "./nats-options.js";

export type { NatsChannelOptions, NatsTlsOptions } from "./nats-options.js";

// How long a leaving group member may finish the payloads the server had
// already routed to it: core NATS cannot hand them back to the group.
const handOffWaitMs = 2_000;
const closeWaitMs = 2_000;
const topics: readonly Topic[] = ["events", "messages"];
const settled = (): void => {};

interface PlainTopic {
  inboxes: Set<Inbox>;
  subscription: Subscription | undefined;
  /** Resolves once the server has the subscription. */
  ready: Promise<void>;
}

interface Member {
  inbox: Inbox;
  subscription: Subscription;
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
    const timer = setTimeout(() => reject(natsTimeout()), ms);
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

/** A valid NATS queue name for any group name: spaces, dots, wildcards and unicode cannot reach the protocol. */
export function natsQueueName(group: string): string {
  return `g-${createHash("sha256").update(group).digest("hex").slice(0, 32)}`;
}

/** Creates a NATS channel and connects it; throws ProviderUnavailableError when no server can be reached. */
export async function createNatsChannel(options: NatsChannelOptions = {}): Promise<Channel> {
  const settings = resolveNatsSettings(options);
  let nc: NatsConnection;
  try {
    nc = await connect(settings.connect);
  } catch (error) {
    throw natsError(error);
  }

  const plain = new Map<Topic, PlainTopic>(
    topics.map((topic) => [topic, { inboxes: new Set(), subscription: undefined, ready: Promise.resolve() }]),
  );
  const members = new Set<Member>();
  // Subscriptions that want to hear of an outage: what was published while
  // they were disconnected never arrives, so they catch up.
  const onReconnect = new Map<Inbox, () => void>();
  let closed = false;
  let connected = true;
  let gaveUp: unknown;
  // Counts disconnects, so a resumption that was overtaken by the next outage does nothing.
  let outages = 0;

  // Called from the client's dispatch: a throwing callback must not break it.
  const report = (error: unknown): void => {
    try {
      options.onError?.(error);
    } catch {}
  };
  const notify = (up: boolean): void => {
    try {
      options.onConnectionChange?.(up);
    } catch {}
  };

  const ensureOpen = (): void => {
    if (closed) {
      throw new ProviderClosedError("nats");
    }
  };
  const ensureConnected = (): void => {
    if (gaveUp !== undefined) {
      throw natsGaveUp(gaveUp);
    }
    if (!connected) {
      throw natsDisconnected();
    }
  };
  // A call cut short by close() reports that, not the connection it lost.
  const failure = (error: unknown): Error => (closed ? new ProviderClosedError("nats") : natsError(error));

  const subjectOf = (topic: Topic): string => {
    if (!topics.includes(topic)) {
      throw new TypeError(`nats: unknown topic ${JSON.stringify(topic)}`);
    }
    return `${settings.prefix}.${topic}`;
  };

  // One PING for every publish and subscribe of the same tick: its PONG
  // proves the server has processed all of them, in order, on this connection.
  let nextRoundTrip: Promise<void> | undefined;
  const roundTrip = (): Promise<void> => {
    nextRoundTrip ??= Promise.resolve().then(() => {
      nextRoundTrip = undefined;
      return nc.flush();
    });
    return deadline(nextRoundTrip, settings.publishTimeoutMs);
  };

  const resumed = async (): Promise<void> => {
    const outage = outages;
    try {
      // The client sent the subscriptions again before announcing the
      // reconnect; the round trip makes sure the server has them, so a
      // catch-up that starts now misses nothing.
      await roundTrip();
    } catch (error) {
      // Lost again: the next reconnect resumes. Otherwise carry on regardless.
      if (outage !== outages || closed) return;
      report(error);
    }
    if (outage !== outages || closed) {
      return;
    }
    connected = true;
    notify(true);
    for (const [inbox, listener] of onReconnect) {
      if (!inbox.active) continue;
      try {
        listener();
      } catch (error) {
        report(error);
      }
    }
  };

  const watch = async (): Promise<void> => {
    try {
      for await (const status of nc.status()) {
        if (closed) continue;
        switch (status.type) {
          case Events.Disconnect:
            outages += 1;
            if (connected) {
              connected = false;
              report(natsDisconnected());
              notify(false);
            }
            break;
          case Events.Reconnect:
            void resumed();
            break;
          case Events.Error:
            // Asynchronous server errors, e.g. a publish the account may not make.
            report(new Error(`nats: the server reported ${String(status.data)}`, { cause: status }));
            break;
        }
      }
    } catch (error) {
      report(error);
    }
  };
  void watch();
  // Resolves (never rejects) once the client is closed: by close(), or because it gave up reconnecting.
  void nc.closed().then((error) => {
    if (closed) return;
    gaveUp = error ?? new Error("the connection closed");
    report(natsGaveUp(gaveUp));
    if (connected) {
      connected = false;
      notify(false);
    }
  }, report);

  const deliverPlain = (state: PlainTopic, error: NatsError | null, message: Msg): void => {
    if (error !== null) {
      report(error);
      return;
    }
    for (const inbox of state.inboxes) {
      // A copy each, so no handler sees another's mutations.
      inbox.push({ payload: new Uint8Array(message.data), settle: settled });
    }
  };

  const leavePlain = (state: PlainTopic, inbox: Inbox): void => {
    inbox.stop();
    onReconnect.delete(inbox);
    state.inboxes.delete(inbox);
    const subscription = state.subscription;
    if (state.inboxes.size > 0 || subscription === undefined) {
      return;
    }
    state.subscription = undefined;
    if (!nc.isClosed() && !subscription.isClosed()) subscription.unsubscribe();
  };

  const leaveGroup = async (member: Member): Promise<void> => {
    onReconnect.delete(member.inbox);
    if (!nc.isClosed() && !member.subscription.isClosed()) {
      // UNSUB, then a round trip: payloads the server routed here before it
      // saw the UNSUB still arrive, and this member handles them, since no
      // other member can get them any more. Bounded: a handler that awaits
      // its own unsubscribe would otherwise wait for itself.
      await within(
        member.subscription.drain().catch(() => {}),
        handOffWaitMs,
      );
      if (!member.subscription.isClosed()) member.subscription.unsubscribe();
      await within(member.inbox.idle(), handOffWaitMs);
    }
    member.inbox.stop();
    members.delete(member);
  };

  const once = (leave: () => Promise<void>): Unsubscribe => {
    let left: Promise<void> | undefined;
    return () => {
      left ??= leave();
      return left;
    };
  };

  return {
    name: "nats",
    async publish(topic, payload) {
      ensureOpen();
      const subject = subjectOf(topic);
      ensureConnected();
      const limit = nc.info?.max_payload;
      if (limit !== undefined && payload.length > limit) {
        throw new ValueTooLargeError(limit, payload.length);
      }
      try {
        // A copy: the caller may reuse its bytes once publish() returns.
        nc.publish(subject, payload.slice());
        await roundTrip();
      } catch (error) {
        throw failure(error);
      }
    },
    async subscribe(topic, handler, subscribeOptions: SubscribeOptions = {}): Promise<Unsubscribe> {
      ensureOpen();
      const subject = subjectOf(topic);
      ensureConnected();
      const inbox = new Inbox(handler, report);
      const listener = subscribeOptions.onReconnect;
      const group = subscribeOptions.group;
      if (group === undefined) {
        const state = plain.get(topic) as PlainTopic;
        state.inboxes.add(inbox);
        if (state.subscription === undefined) {
          let denied: unknown;
          state.subscription = nc.subscribe(subject, {
            callback: (error, message) => {
              // A denied subscription is refused before the round trip returns.
              if (error !== null) denied ??= error;
              deliverPlain(state, error, message);
            },
          });
          state.ready = roundTrip().then(() => {
            if (denied !== undefined) throw denied;
          });
        }
        try {
          await state.ready;
        } catch (error) {
          leavePlain(state, inbox);
          throw failure(error);
        }
        if (listener) onReconnect.set(inbox, listener);
        return once(async () => leavePlain(state, inbox));
      }
      let denied: unknown;
      const member: Member = {
        inbox,
        subscription: nc.subscribe(subject, {
          queue: natsQueueName(group),
          callback: (error, message) => {
            if (error !== null) {
              denied ??= error;
              report(error);
              return;
            }
            member.inbox.push({ payload: new Uint8Array(message.data), settle: settled });
          },
        }),
      };
      try {
        await roundTrip();
        if (denied !== undefined) throw denied;
      } catch (error) {
        if (!member.subscription.isClosed()) member.subscription.unsubscribe();
        inbox.stop();
        throw failure(error);
      }
      members.add(member);
      if (listener) onReconnect.set(inbox, listener);
      return once(() => leaveGroup(member));
    },
    async ping() {
      ensureOpen();
      ensureConnected();
      try {
        await deadline(nc.flush(), settings.publishTimeoutMs);
      } catch (error) {
        throw failure(error);
      }
    },
    async close() {
      if (closed) {
        return;
      }
      closed = true;
      onReconnect.clear();
      for (const state of plain.values()) {
        for (const inbox of state.inboxes) inbox.stop();
        state.inboxes.clear();
        state.subscription = undefined;
      }
      for (const member of members) member.inbox.stop();
      members.clear();
      if (nc.isClosed()) {
        return;
      }
      // Lets publishes in flight get their round trip, then stops the client,
      // which also ends its reconnecting.
      if (connected) await within(nc.flush(), closeWaitMs);
      await within(nc.close(), closeWaitMs);
    },
  };
}
