import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { createServer, connect as dial } from "node:net";
import { after } from "node:test";
import { natsServerBinary } from "../../../scripts/service-control.mjs";
import { createNatsChannel, type NatsChannelOptions } from "../src/channel/nats.js";
import { sleep } from "../src/conformance/helpers.js";
import type { Channel } from "../src/types.js";

/** The shared server under test (JetStream is on, but the channel uses core NATS only). */
export const addr = process.env.STATEGATE_TEST_NATS_ADDR ?? "127.0.0.1:4222";
/** The binary private servers are started from, for tests that stop, restart or configure a server. */
const natsServer = natsServerBinary();

/** A prefix of its own, so a test's subjects are its alone on the shared server. */
export const uniquePrefix = (): string => `stategate-test-${randomUUID().slice(0, 8)}`;
/** A group name with the characters subject tokens cannot carry. */
export const uniqueGroup = (): string => `group ${randomUUID()} .*>`;
export const sorted = (items: string[]): string[] => [...items].sort();

export const open = (options: NatsChannelOptions = {}): Promise<Channel> =>
  createNatsChannel({ addr, prefix: uniquePrefix(), ...options });

/** An adapter that records its connection changes and the errors it reports. */
export async function watched(
  options: NatsChannelOptions,
): Promise<{ channel: Channel; changes: boolean[]; errors: unknown[]; connected: () => boolean }> {
  const changes: boolean[] = [];
  const errors: unknown[] = [];
  const channel = await createNatsChannel({
    ...options,
    onConnectionChange: (up) => changes.push(up),
    onError: (error) => errors.push(error),
  });
  return { channel, changes, errors, connected: () => changes.length === 0 || changes.at(-1) === true };
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

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function reachable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = dial({ host: "127.0.0.1", port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

/** A nats-server of one test's own, on free ports, so stopping it disturbs no one else. */
export interface PrivateServer {
  addr: string;
  /** Starts it again on the same ports. */
  start(): Promise<void>;
  /** Stops it (SIGTERM: it closes its client connections) and waits for it to exit. */
  stop(): Promise<void>;
  /** The names of the clients connected now, from the monitoring endpoint. */
  clients(): Promise<string[]>;
}

// Tests stop their servers in `finally`; this catches any a failure left behind.
const running = new Set<ChildProcess>();
after(() => {
  for (const child of running) child.kill("SIGKILL");
});

/** Starts a private nats-server; `args` add flags (TLS, auth, a config file). */
export async function startPrivateServer(args: string[] = []): Promise<PrivateServer> {
  const [port, monitor] = [await freePort(), await freePort()];
  let child: ChildProcess | undefined;
  const output: string[] = [];
  const start = async () => {
    const started = spawn(natsServer, ["-a", "127.0.0.1", "-p", String(port), "-m", String(monitor), ...args], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    started.stderr?.on("data", (chunk: Buffer) => output.push(chunk.toString()));
    running.add(started);
    started.once("exit", () => running.delete(started));
    child = started;
    const deadline = Date.now() + 10_000;
    while (!(await reachable(port))) {
      if (started.exitCode !== null || Date.now() > deadline) {
        throw new Error(`nats-server did not start on ${port}:\n${output.join("")}`);
      }
      await sleep(20);
    }
  };
  await start();
  const server: PrivateServer = {
    addr: `127.0.0.1:${port}`,
    start,
    async stop() {
      const stopping = child;
      child = undefined;
      if (stopping === undefined || stopping.exitCode !== null) return;
      const exited = once(stopping, "exit");
      stopping.kill("SIGTERM");
      await exited;
    },
    async clients() {
      const response = await fetch(`http://127.0.0.1:${monitor}/connz`);
      const { connections } = (await response.json()) as { connections: { name?: string }[] | null };
      return (connections ?? []).map((c) => c.name ?? "");
    },
  };
  return server;
}
