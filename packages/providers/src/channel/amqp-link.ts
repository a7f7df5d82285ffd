/**
 * One connection to the broker and the AMQP channels on it, plus the
 * declarations the topology needs. A link that breaks is never repaired: the
 * adapter opens a new one and moves every live subscription onto it.
 */
import type { Channel as AmqpChannel, ChannelModel, ConfirmChannel, ConsumeMessage } from "amqplib";
import { connect } from "amqplib";
import type { Topic } from "../types.js";
import type { AmqpSettings } from "./amqp-options.js";

/** The topics a channel carries; each has its own exchange. */
export const topics: readonly Topic[] = ["events", "messages"];

// Every gateway must declare a group queue with the same arguments (RabbitMQ
// refuses a mismatch), so this is a constant, not an option. It is long
// enough to ride out a reconnect and short enough that abandoned groups go.
const groupQueueExpiresMs = 60_000;

/** A consumer the adapter may cancel. */
export interface Consumer {
  link: Link;
  channel: AmqpChannel;
  tag: string;
}

/** One connection and the channels every adapter instance keeps on it. */
export interface Link {
  model: ChannelModel;
  publisher: ConfirmChannel;
  /** Consumes the instance queue of each topic. */
  plain: AmqpChannel;
  /** The broker refuses publishers for now (resource alarm). */
  blocked: boolean;
  /** Set once the link broke or was closed; it is never used again. */
  dead: boolean;
  /** Channels whose closing breaks the link, unless the adapter closes them itself. */
  owned: Set<AmqpChannel>;
}

/** What a link tells the adapter. Neither may throw: amqplib would rethrow into its socket handling. */
export interface LinkEvents {
  report(error: unknown): void;
  lost(link: Link, error: unknown): void;
}

/** Handles incoming messages of one consumer; null when the broker cancelled it. */
export type OnMessage = (channel: AmqpChannel, message: ConsumeMessage | null) => void;

/** The exchange of a topic. */
export const exchangeName = (settings: AmqpSettings, topic: Topic): string => `${settings.prefix}.${topic}`;

function watch(link: Link, channel: AmqpChannel, events: LinkEvents): void {
  // Without an "error" listener, amqplib's emit would throw and crash the process.
  channel.on("error", events.report);
  channel.on("handler-error", events.report);
  channel.on("close", () => {
    // Deferred: when the connection dies its channels close first, and the
    // connection's own close event carries the real reason.
    queueMicrotask(() => {
      if (link.owned.has(channel)) {
        events.lost(link, new Error("an AMQP channel was closed by the broker"));
      }
    });
  });
}

/** Connects, opens the publisher and instance-queue channels and declares the exchanges. */
export async function openLink(settings: AmqpSettings, events: LinkEvents): Promise<Link> {
  const model = await connect(settings.connect, settings.socket);
  // The listeners need the record before the channels exist; they are filled in below.
  const link = { model, blocked: false, dead: false, owned: new Set() } as Link;
  model.on("error", events.report);
  model.on("handler-error", events.report);
  model.on("close", (error?: Error) => events.lost(link, error ?? new Error("the AMQP connection closed")));
  model.on("blocked", () => {
    link.blocked = true;
  });
  model.on("unblocked", () => {
    link.blocked = false;
  });
  try {
    link.publisher = await model.createConfirmChannel();
    watch(link, link.publisher, events);
    for (const topic of topics) {
      // Not durable: every gateway declares them on connect, and a broker restart need not keep them.
      await link.publisher.assertExchange(exchangeName(settings, topic), "fanout", {
        durable: false,
        autoDelete: false,
      });
    }
    link.plain = await model.createChannel();
    watch(link, link.plain, events);
    await link.plain.prefetch(settings.prefetch);
    if (link.dead) {
      throw new Error("the AMQP connection closed while opening");
    }
    link.owned.add(link.publisher);
    link.owned.add(link.plain);
    return link;
  } catch (error) {
    closeLink(link);
    throw error;
  }
}

/** Closes a link, once; resolves when the broker confirmed or the connection was already gone. */
export function closeLink(link: Link): Promise<void> {
  link.dead = true;
  return link.model.close().catch(() => {});
}

/** Declares this instance's exclusive, server-named queue of a topic, binds it and consumes it. */
export async function consumeInstanceQueue(
  link: Link,
  settings: AmqpSettings,
  topic: Topic,
  onMessage: OnMessage,
): Promise<Consumer> {
  const channel = link.plain;
  const { queue } = await channel.assertQueue("", { exclusive: true, autoDelete: true, durable: false });
  await channel.bindQueue(queue, exchangeName(settings, topic), "");
  const { consumerTag } = await channel.consume(queue, (message) => onMessage(channel, message));
  return { link, channel, tag: consumerTag };
}

/** Declares a group's shared queue, binds it and consumes it on a channel of its own. */
export async function consumeGroupQueue(
  link: Link,
  settings: AmqpSettings,
  topic: Topic,
  queue: string,
  onMessage: OnMessage,
  events: LinkEvents,
): Promise<Consumer> {
  const channel = await link.model.createChannel();
  watch(link, channel, events);
  try {
    await channel.prefetch(settings.prefetch);
    await channel.assertQueue(queue, { durable: false, expires: groupQueueExpiresMs });
    await channel.bindQueue(queue, exchangeName(settings, topic), "");
    const { consumerTag } = await channel.consume(queue, (message) => onMessage(channel, message));
    link.owned.add(channel);
    return { link, channel, tag: consumerTag };
  } catch (error) {
    channel.close().catch(() => {});
    throw error;
  }
}

/**
 * Cancels a consumer; with `closeChannel`, also closes its channel, which is
 * what hands its unacknowledged payloads back to the queue.
 */
export async function cancelConsumer(consumer: Consumer, closeChannel: boolean): Promise<void> {
  if (closeChannel) {
    consumer.link.owned.delete(consumer.channel);
  }
  await consumer.channel.cancel(consumer.tag).catch(() => {});
  if (closeChannel) {
    await consumer.channel.close().catch(() => {});
  }
}
