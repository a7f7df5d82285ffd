import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import http2 from "node:http2";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { PeerServiceStreamRequestSchema } from "@stategate/api";
import type { NodeClient } from "@stategate/sdk-node";
import { Code, ConnectError, createClient } from "@stategate/sdk-node";
import type { GatewayProcess, TestGateway } from "./helpers.js";
import { spawnGateway, startTestGateway, unique, until } from "./helpers.js";
import { metric, scrape } from "./prometheus.js";
import { readAll, sse } from "./rest-helpers.js";

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

/** The enveloped request of a peer stream, as gRPC, gRPC-Web and Connect send it. */
function peerStreamFrame(domain: string, consumerGroup = ""): Buffer {
  const message = toBinary(
    PeerServiceStreamRequestSchema,
    create(PeerServiceStreamRequestSchema, { domain, channel: "*", type: "*", consumerGroup }),
  );
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

/** A gRPC peer stream on its own HTTP/2 connection whose client never reads a byte of the answer. */
function neverReading(baseUrl: string, domain: string, consumerGroup = "") {
  const session = http2.connect(baseUrl);
  const frame = peerStreamFrame(domain, consumerGroup);
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

describe(`with a small STATEGATE_MAX_STREAM_BUFFER`, () => {
  /** What a stream may hold for its client here. */
  const SMALL = 20;
  let tg: TestGateway;
  let port: number;
  let sender: NodeClient;
  before(async () => {
    // Slow clients are logged at warn: asserted above, noise here.
    tg = await startTestGateway({ STATEGATE_MAX_STREAM_BUFFER: String(SMALL), STATEGATE_LOG_LEVEL: "error" });
    port = tg.gateway.metricsPort!;
    sender = tg.client({ protocol: "grpc" });
  });
  after(async () => {
    sender.close();
    await tg.close();
  });

  const slowStreams = async () => metric(await scrape(port), "stategate_slow_streams_total", { kind: "peer" });
  /** Broadcasts `bytes`-sized messages to `domain` until `done()` says so, at most `max` of them. */
  async function broadcastUntil(domain: string, bytes: number, done: () => Promise<boolean>, max = 2_000) {
    const pad = "x".repeat(bytes);
    for (let i = 0; i < max; i++) {
      await sender.peer.broadcast({ domain, channel: "c", type: "t", body: { i, pad } });
      if (await done()) return i + 1;
    }
    throw new Error(`still not done after ${max} messages`);
  }

  it("gauges the lag of a stream that is filling, and of a consumer-group member that never reads", async () => {
    const domain = unique("lag");
    const plain = neverReading(tg.baseUrl, domain);
    const member = neverReading(tg.baseUrl, domain, "workers");
    try {
      await until(() => tg.gateway.openStreams() === 2);
      let seen = { plain: 0, group: 0, slow: 0 };
      await broadcastUntil(domain, 4_096, async () => {
        const samples = await scrape(port);
        seen = {
          plain: metric(samples, "stategate_stream_buffered_items", { kind: "peer", group: "false" }),
          group: metric(samples, "stategate_stream_buffered_items", { kind: "peer", group: "true" }),
          slow: metric(samples, "stategate_slow_streams_total", { kind: "peer" }),
        };
        return seen.plain > 0 && seen.group > 0;
      });
      assert.equal(seen.slow, 0, "measured while filling, before any stream overflowed");
      assert.ok(seen.plain >= 1 && seen.plain <= SMALL, `group="false": ${seen.plain}`);
      assert.ok(seen.group >= 1 && seen.group <= SMALL, `group="true": ${seen.group}`);
      // Both fall SMALL behind and are ended: what they held is dropped, and the gauge says so.
      await broadcastUntil(domain, 4_096, async () => (await slowStreams()) === 2);
      const after = await scrape(port);
      assert.equal(metric(after, "stategate_stream_buffered_items"), 0);
      await until(() => tg.gateway.openStreams() === 0);
    } finally {
      plain.close();
      member.close();
    }
  });

  it("a client that reads late gets its backlog, then RESOURCE_EXHAUSTED saying how far behind it fell", async () => {
    const domain = unique("late");
    const client = tg.client({ protocol: "grpc" });
    try {
      const messages = client.peer.stream({ domain, channel: "*", type: "*" })[Symbol.asyncIterator]();
      const first = messages.next();
      await until(() => tg.gateway.openStreams() === 1);
      const slowBefore = await slowStreams();
      await sender.peer.broadcast({ domain, channel: "c", type: "t", body: { i: -1 } });
      assert.equal((await first).done, false, "the stream is open and delivering");
      // The client stops reading until its stream has overflowed on the gateway.
      const sent = await broadcastUntil(domain, 16_384, async () => (await slowStreams()) > slowBefore);
      let read = 0;
      const error = await (async () => {
        try {
          while (!(await messages.next()).done) read++;
        } catch (err) {
          return ConnectError.from(err);
        }
        return undefined;
      })();
      assert.equal(error?.code, Code.ResourceExhausted, String(error));
      assert.match(error.rawMessage, new RegExp(`^stream fell ${SMALL} items behind; reconnect and resume$`));
      assert.ok(read > 0 && read < sent, `read ${read} of ${sent} before the error`);
      await until(() => tg.gateway.openStreams() === 0);
    } finally {
      client.close();
    }
  });

  for (const [door, contentType, endMarker] of [
    ["gRPC-Web", "application/grpc-web+proto", "grpc-status"],
    ["Connect", "application/connect+proto", "resource_exhausted"],
  ] as const) {
    it(`an HTTP/1.1 (${door}) client that never reads has its connection closed`, async () => {
      const domain = unique("h1");
      const frame = peerStreamFrame(domain);
      const socket = net.connect({ host: "127.0.0.1", port: tg.gateway.port });
      socket.pause();
      socket.on("error", () => {});
      const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
      await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
      socket.write(
        `POST /stategate.v1.PeerService/Stream HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: ${contentType}\r\n` +
          `content-length: ${frame.length}\r\n\r\n`,
      );
      socket.write(frame);
      try {
        await until(() => tg.gateway.openStreams() === 1);
        const slowBefore = await slowStreams();
        // Larger messages: the kernel's socket buffers take megabytes before the gateway has to wait.
        await broadcastUntil(domain, 65_536, async () => (await slowStreams()) > slowBefore, 1_000);
        // A second later the connection is closed, and the stream with it.
        await until(() => tg.gateway.openStreams() === 0, 5_000);
        const chunks: Buffer[] = [];
        socket.on("data", (c: Buffer) => chunks.push(c));
        socket.resume();
        await Promise.race([
          closed,
          new Promise((_, reject) => setTimeout(() => reject(new Error("the connection is still open")), 5_000)),
        ]);
        const text = Buffer.concat(chunks).toString("latin1");
        assert.match(text, /^HTTP\/1\.1 200/, "the stream had started");
        assert.ok(!text.includes(endMarker), "cut, not ended: no end of stream was sent");
      } finally {
        socket.destroy();
      }
    });
  }

  it("a REST SSE client that reads late gets `event: error` with resource_exhausted", async () => {
    const domain = unique("sse");
    const abort = new AbortController();
    const res = await fetch(`${tg.baseUrl}/api/peers/stream?domain=${domain}&channel=*&type=*`, {
      signal: abort.signal,
    });
    try {
      assert.equal(res.status, 200);
      await until(() => tg.gateway.openStreams() === 1);
      const slowBefore = await slowStreams();
      await broadcastUntil(domain, 65_536, async () => (await slowStreams()) > slowBefore, 1_000);
      const got = (await readAll(sse(res.body!))).filter((m) => m.data);
      const last = got.at(-1)!;
      assert.equal(last.event, "error", `${got.length} events, the last not an error`);
      const error = JSON.parse(last.data!) as { code: string; message: string };
      assert.equal(error.code, "resource_exhausted");
      assert.match(error.message, new RegExp(`fell ${SMALL} items behind`));
      assert.ok(got.length > 1, "the backlog came first");
      await until(() => tg.gateway.openStreams() === 0);
    } finally {
      abort.abort();
    }
  });
});

it("the Node SDK reports a stream cut for not reading (ENHANCE_YOUR_CALM) as RESOURCE_EXHAUSTED", async () => {
  const domain = unique("calm");
  const reader = createClient({ baseUrl: gw.baseUrl, protocol: "grpc" });
  const writer = createClient({ baseUrl: gw.baseUrl, protocol: "grpc" });
  clients.push(reader, writer);
  const messages = reader.peer.stream({ domain, channel: "*", type: "*" })[Symbol.asyncIterator]();
  const first = messages.next();
  const body = { text: "y".repeat(4_000) };
  await writer.peer.broadcast({ domain, channel: "c", type: "t", body });
  assert.equal((await first).done, false, "the stream is open and delivering");
  // The client reads nothing more: its HTTP/2 window fills, the gateway's buffer
  // overflows, and a second later the gateway resets the stream.
  for (let i = 0; i < 4 * BUFFER; i++) await writer.peer.broadcast({ domain, channel: "c", type: "t", body });
  await until(async () => metric(await scrape(metricsPort), "stategate_open_streams", { kind: "peer" }) === 0);
  const error = await (async () => {
    try {
      while (!(await messages.next()).done);
    } catch (err) {
      return ConnectError.from(err);
    }
    return undefined;
  })();
  assert.equal(error?.code, Code.ResourceExhausted, String(error));
});
