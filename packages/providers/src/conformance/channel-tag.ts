/**
 * Tools for the channel groups: tagging each test's payloads, collecting what
 * a subscription receives, and the options every channel group takes.
 */
import { randomUUID } from "node:crypto";
import type { Channel, Topic } from "../types.js";
import { decode, encode } from "./helpers.js";

/** Options of the channel groups. */
export interface ChannelOptions {
  /** How long a payload may take to arrive, in ms. Default 2000. */
  deliveryTimeoutMs?: number;
  /** How long to watch for deliveries that must not happen, in ms. Default 100. */
  quietMs?: number;
  /**
   * Whether separate clients from the factory share traffic, as clients of one
   * server do. Turn off only for a channel that is in-process by design.
   */
  multiInstance?: boolean;
}

/**
 * Marks one test's payloads. Topics are shared by everything on a backend,
 * so a test run against a shared server sees other tests' traffic too; each
 * test counts only payloads carrying its own tag.
 */
export interface Tag {
  wrap(text: string): Uint8Array;
  wrapBytes(bytes: Uint8Array): Uint8Array;
  /** The payload without the tag, or undefined when it belongs to another test. */
  unwrap(payload: Uint8Array): Uint8Array | undefined;
}

/** A tag no other test uses. */
export function createTag(): Tag {
  const prefix = encode(`${randomUUID()}|`);
  const wrapBytes = (bytes: Uint8Array): Uint8Array => {
    const payload = new Uint8Array(prefix.length + bytes.length);
    payload.set(prefix);
    payload.set(bytes, prefix.length);
    return payload;
  };
  return {
    wrapBytes,
    wrap: (text) => wrapBytes(encode(text)),
    unwrap: (payload) =>
      payload.length >= prefix.length && prefix.every((byte, i) => payload[i] === byte)
        ? payload.slice(prefix.length)
        : undefined,
  };
}

/** Collects the tagged payloads a subscription receives, as text. */
export async function collect(
  channel: Channel,
  topic: Topic,
  tag: Tag,
  group?: string,
): Promise<{ received: string[]; unsubscribe: () => Promise<void> }> {
  const received: string[] = [];
  const unsubscribe = await channel.subscribe(
    topic,
    (payload) => {
      const mine = tag.unwrap(payload);
      if (mine !== undefined) {
        received.push(decode(mine));
      }
    },
    group === undefined ? {} : { group },
  );
  return { received, unsubscribe };
}

/** Publishes each text, tagged, one after the other. */
export async function publishAll(channel: Channel, topic: Topic, tag: Tag, texts: string[]): Promise<void> {
  for (const text of texts) {
    await channel.publish(topic, tag.wrap(text));
  }
}

/** `count` numbered payloads with a prefix, e.g. "m-0" … "m-19". */
export const numbered = (prefix: string, count: number): string[] =>
  Array.from({ length: count }, (_, i) => `${prefix}-${i}`);
