import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import http2 from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, it } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { PeerServiceStreamRequestSchema } from "@stategate/api";
import type { NodeClient } from "@stategate/sdk-node";
import { createClient } from "@stategate/sdk-node";
import type { GatewayProcess } from "./helpers.js";
import { spawnGateway, unique, until } from "./helpers.js";
import { metric, scrape } from "./prometheus.js";

/** Subscribers that keep up. */
const FAST = 100;
/** Messages broadcast while the slow stream holds still. */
const MESSAGES = 300;
/** What a stream may hold for its client here (STATEGATE_MAX_STREAM_BUFFER). */
const BUFFER = 100;
/**
 * The bound: every message reaches all 100 subscribers within this long of its
 * Broadcast being answered. Unloaded it takes a few milliseconds; the margin is
 * for two shared cores running other tests.
 */
const BOUND_MS = 2_000;

const dataDir = mkdtempSync(join(tmpdir(), "stategate-slow-"));
let gw: GatewayProcess;
let metricsPort: number;
const clients: NodeClient[] = [];

before(async () => {
  gw = await spawnGateway({ STATEGATE_DATA_DIR: dataDir, STATEGATE_MAX_STREAM_BUFFER: String(BUFFER) });
  metricsPort = logLines().find((l) => l.metricsPort)?.metricsPort as number;
});
after(async () => {
  for (const c of clients) c.close();
  gw.child.kill("SIGTERM");
  await gw.exited;
  rmSync(dataDir, { recursive: true, force: true });
});

/** The gateway's JSON log lines (Node's own warnings are not JSON). */
function logLines(): Record<string, unknown>[] {
  return gw.output.flatMap((l) => {
    try {
      return [JSON.parse(l) as Record<string, unknown>];
    } catch {
      return [];
    }
  });
}

/** A gRPC peer stream on its own HTTP/2 connection whose client never reads a byte of the answer. */
function neverReading(baseUrl: string, domain: string) {
  const session = http2.connect(baseUrl);
  const message = toBinary(
    PeerServiceStreamRequestSchema,
    create(PeerServiceStreamRequestSchema, { domain, channel: "*", type: "*" }),
  );
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  const stream = session.request({
    ":method": "POST",
    ":path": "/stategate.v1.PeerService/Stream",
    "content-type": "application/grpc",
    te: "trailers",
  });
  stream.end(frame);
  // No "data" listener and no resume(): the stream stays paused, so Node stops
  // granting the server HTTP/2 flow-control window once its buffer is full.
  const closed = new Promise<{ rstCode: number; at: number }>((resolve) =>
    stream.once("close", () => resolve({ rstCode: stream.rstCode ?? -1, at: Date.now() })),
  );
  stream.on("error", () => {});
  return { closed, close: () => session.destroy() };
}

it(`one stream that never reads does not delay ${FAST} others beyond ${BOUND_MS} ms, and is ended with RESOURCE_EXHAUSTED`, async () => {
  const domain = unique("slow");
  const slow = neverReading(gw.baseUrl, domain);
  // 100 fast subscribers over 4 connections, reading as messages come.
  const received: number[][] = Array.from({ length: FAST }, () => []);
  const streams: Promise<void>[] = [];
  for (let c = 0; c < 4; c++) {
    const client = createClient({ baseUrl: gw.baseUrl, protocol: "grpc" });
    clients.push(client);
    for (let s = 0; s < FAST / 4; s++) {
      const times = received[c * (FAST / 4) + s]!;
      streams.push(
        (async () => {
          for await (const { message } of client.peer.stream({ domain, channel: "*", type: "*" })) {
            times[Number((message?.body as { i: number }).i)] = Date.now();
            if (times.length === MESSAGES && !times.includes(undefined as never)) return;
          }
        })(),
      );
    }
  }
  await until(async () => metric(await scrape(metricsPort), "stategate_open_streams", { kind: "peer" }) === FAST + 1);

  const sender = createClient({ baseUrl: gw.baseUrl, protocol: "grpc" });
  clients.push(sender);
  const sent: number[] = [];
  // ~600 bytes a message: the slow stream's HTTP/2 window (64 KiB) fills within
  // the first ~110, and its buffer of 100 overflows well before the last.
  const pad = "x".repeat(512);
  for (let i = 0; i < MESSAGES; i++) {
    await sender.peer.broadcast({ domain, channel: "c", type: "t", body: { i, pad } });
    sent[i] = Date.now();
  }
  await Promise.race([Promise.all(streams), new Promise((r) => setTimeout(r, 20_000))]);

  let worst = 0;
  for (const [s, times] of received.entries()) {
    for (let i = 0; i < MESSAGES; i++) {
      assert.ok(times[i] !== undefined, `subscriber ${s} got message ${i}`);
      worst = Math.max(worst, times[i]! - sent[i]!);
    }
  }
  assert.ok(worst <= BOUND_MS, `the slowest delivery took ${worst} ms, over the ${BOUND_MS} ms bound`);

  // The stream that never read was cut: HTTP/2 ENHANCE_YOUR_CALM is RESOURCE_EXHAUSTED to gRPC clients.
  const { rstCode } = await Promise.race([
    slow.closed,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error("the slow stream is still open")), 10_000)),
  ]);
  slow.close();
  assert.equal(rstCode, http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
  const logged = logLines().filter(
    (l) => l.method === "/stategate.v1.PeerService/Stream" && l.code === "ResourceExhausted" && l.level === 40,
  );
  assert.equal(logged.length, 1, "the slow client is logged once, as a warning");
  assert.match(String(logged[0]?.msg), new RegExp(`fell ${BUFFER} items behind`));
  assert.ok(logged[0]?.requestId, "with its request id");
  const samples = await scrape(metricsPort);
  assert.equal(metric(samples, "stategate_slow_streams_total", { kind: "peer" }), 1);
  assert.equal(metric(samples, "stategate_peer_messages_published_total"), MESSAGES);
  await until(async () => metric(await scrape(metricsPort), "stategate_open_streams", { kind: "peer" }) === 0);
});
