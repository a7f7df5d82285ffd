import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { after } from "node:test";
import { promisify } from "node:util";
import { connect } from "amqplib";
import { rabbitmqctlCommand } from "../../../scripts/service-control.mjs";
import { type AmqpChannelOptions, createAmqpChannel } from "../src/channel/amqp.js";
import type { Channel } from "../src/types.js";

/** The broker under test. */
export const addr = process.env.STATEGATE_TEST_AMQP_ADDR ?? "127.0.0.1:5672";
// The outage tests drive the broker under test (STATEGATE_TEST_RABBITMQCTL, e.g. "docker exec rabbitmq rabbitmqctl").
const rabbitmqctl = rabbitmqctlCommand();
/** The broker's test credentials. */
export const credentials = { user: "guest", password: "guest" };

/** Every prefix handed out, so their exchanges are deleted after the file. */
const prefixes: string[] = [];
/** A prefix of its own, so a test can single out its connections and exchanges. */
export function uniquePrefix(): string {
  const prefix = `stategate-test-${randomUUID().slice(0, 8)}`;
  prefixes.push(prefix);
  return prefix;
}

export const open = (options: AmqpChannelOptions = {}) => createAmqpChannel({ addr, ...credentials, ...options });
export const uniqueGroup = () => `group ${randomUUID()}`;
export const sorted = (items: string[]) => [...items].sort();

// Exchanges are not durable, but outlive a test on a broker that keeps running.
after(async () => {
  const [hostname, port] = [addr.slice(0, addr.lastIndexOf(":")), Number(addr.slice(addr.lastIndexOf(":") + 1))];
  const model = await connect({ hostname, port, username: "guest", password: "guest" });
  model.on("error", () => {});
  const channel = await model.createChannel();
  for (const prefix of prefixes) {
    for (const topic of ["events", "messages"]) await channel.deleteExchange(`${prefix}.${topic}`);
  }
  await model.close();
});

export async function ctl(...args: string[]): Promise<string> {
  const [command, ...base] = rabbitmqctl;
  const { stdout } = await promisify(execFile)(command, [...base, ...args], { timeout: 30_000 });
  return stdout;
}

/** Closes, broker side, the connections of the adapters with this prefix; other clients of the broker keep theirs. */
export async function closeConnectionsOf(prefix: string): Promise<number> {
  const listing = await ctl("list_connections", "pid", "client_properties", "-q", "--no-table-headers");
  const pids = listing
    .split("\n")
    .filter((line) => line.includes(`{"connection_name","stategate ${prefix} (pid`))
    .map((line) => line.split("\t")[0] as string);
  await Promise.all(pids.map((pid) => ctl("close_connection", pid, "stategate test: simulated broker failure")));
  return pids.length;
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
): Promise<{ channel: Channel; changes: boolean[]; connected: () => boolean }> {
  const changes: boolean[] = [];
  const channel = await open({ prefix, onConnectionChange: (up) => changes.push(up) });
  return { channel, changes, connected: () => changes.length === 0 || changes.at(-1) === true };
}
