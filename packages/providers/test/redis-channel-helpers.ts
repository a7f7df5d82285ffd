import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { after } from "node:test";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import { redisStartCommand } from "../../../scripts/service-control.mjs";
import { createRedisChannel, type RedisChannelOptions } from "../src/channel/redis.js";
import type { Channel } from "../src/types.js";

/** The server under test. */
export const addr = process.env.STATEGATE_TEST_REDIS_ADDR ?? "127.0.0.1:6379";
const [host, port] = [addr.slice(0, addr.lastIndexOf(":")), Number(addr.slice(addr.lastIndexOf(":") + 1))];
// The outage tests restart the server under test (STATEGATE_TEST_REDIS_START when it is started differently).
const startCommand = redisStartCommand(port);

/** Every prefix handed out, so its keys are deleted after the file. */
const prefixes: string[] = [];
/** A prefix of its own, so a test can single out its connections and keys. */
export function uniquePrefix(): string {
  const prefix = `stategate-test-${randomUUID().slice(0, 8)}`;
  prefixes.push(prefix);
  return prefix;
}

export const open = (options: RedisChannelOptions = {}) => createRedisChannel({ addr, ...options });
export const uniqueGroup = () => `group ${randomUUID()}`;
export const sorted = (items: string[]) => [...items].sort();

/** A plain client for looking at (and messing with) the server behind the adapter's back. */
export async function raw(): Promise<Redis> {
  const client = new Redis({ host, port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on("error", () => {});
  await client.connect();
  return client;
}

// Group streams and member sets live as long as their group does; a test that ends abruptly may leave some.
after(async () => {
  const client = await raw();
  try {
    for (const prefix of prefixes) {
      const keys = await client.keys(`${prefix}:*`);
      if (keys.length > 0) await client.del(...keys);
    }
  } finally {
    client.disconnect();
  }
});

/** The ids of the server's connections of adapters with this prefix (the adapter names them). */
export async function connectionsOf(prefix: string): Promise<string[]> {
  const client = await raw();
  try {
    const listing = (await client.client("LIST")) as string;
    return listing
      .split("\n")
      .filter((line) => line.includes(` name=stategate:${prefix}:`))
      .map((line) => /\bid=(\d+)/.exec(line)?.[1] as string);
  } finally {
    client.disconnect();
  }
}

/** Closes, server side, the connections of the adapters with this prefix; other clients keep theirs. */
export async function closeConnectionsOf(prefix: string): Promise<number> {
  const ids = await connectionsOf(prefix);
  const client = await raw();
  try {
    for (const id of ids) await client.client("KILL", "ID", id);
  } finally {
    client.disconnect();
  }
  return ids.length;
}

/** Stops the server under test without saving: its streams and groups are gone, as after a crash. */
export async function stopRedis(): Promise<void> {
  await promisify(execFile)("redis-cli", ["-h", host, "-p", String(port), "shutdown", "nosave"], {
    timeout: 30_000,
  }).catch(() => {}); // redis-cli may see the connection close before a reply
  const deadline = Date.now() + 10_000;
  while (await reachable()) {
    if (Date.now() > deadline) throw new Error(`redis at ${addr} did not stop`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Starts the server under test (when it is not running) and waits until it answers. */
export async function startRedis(): Promise<void> {
  if (await reachable()) return;
  await promisify(execFile)("sh", ["-c", startCommand], { timeout: 30_000 });
  const deadline = Date.now() + 10_000;
  while (!(await reachable())) {
    if (Date.now() > deadline) throw new Error(`redis at ${addr} did not start`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function reachable(): Promise<boolean> {
  try {
    const client = await raw();
    client.disconnect();
    return true;
  } catch {
    return false;
  }
}

/** Collects errors that escape as uncaught exceptions or unhandled rejections: the adapter must never let one out. */
export function watchEscapes(): { escaped: unknown[]; stop: () => void } {
  const escaped: unknown[] = [];
  const record = (error: unknown) => escaped.push(error);
  process.on("uncaughtException", record);
  process.on("unhandledRejection", record);
  return {
    escaped,
    stop: () => {
      process.off("uncaughtException", record);
      process.off("unhandledRejection", record);
    },
  };
}

/** An adapter that records its connection changes. */
export async function watched(
  prefix: string,
  options: RedisChannelOptions = {},
): Promise<{ channel: Channel; changes: boolean[]; connected: () => boolean }> {
  const changes: boolean[] = [];
  const channel = await open({ prefix, ...options, onConnectionChange: (up) => changes.push(up) });
  return { channel, changes, connected: () => changes.length === 0 || changes.at(-1) === true };
}
