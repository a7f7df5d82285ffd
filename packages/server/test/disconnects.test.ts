import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import http2 from "node:http2";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { create, toBinary } from "@bufbuild/protobuf";
import { EventServiceStreamRequestSchema } from "@stategate/api";
import type { NodeClient } from "@stategate/sdk-node";
import { createClient } from "@stategate/sdk-node";
import pino from "pino";
import { loadConfig } from "../src/config.js";
import type { Gateway } from "../src/gateway.js";
import { startGateway } from "../src/gateway.js";
import { jsonLineSink, unique, until } from "./helpers.js";
import { metric, scrape } from "./prometheus.js";

/** Every JSON line the gateway logged, parsed. */
const lines: Record<string, unknown>[] = [];
const sink = jsonLineSink(lines);

const dataDir = mkdtempSync(join(tmpdir(), "stategate-disconnects-"));
let gateway: Gateway;
let baseUrl: string;
let client: NodeClient;

before(async () => {
  const config = loadConfig({
    STATEGATE_PORT: "0",
    STATEGATE_METRICS_PORT: "0",
    STATEGATE_DATA_DIR: dataDir,
    STATEGATE_LOG_LEVEL: "debug",
  });
  gateway = await startGateway(config, pino({ level: "debug" }, sink));
  baseUrl = `http://127.0.0.1:${gateway.port}`;
  client = createClient({ baseUrl, protocol: "grpc" });
});

after(async () => {
  client.close();
  await gateway.close();
  rmSync(dataDir, { recursive: true, force: true });
});

const STREAM = "/stategate.v1.EventService/Stream";
const STREAMS = 200;

/**
 * Opens `count` event streams on one HTTP/2 connection, each replaying
 * `domain`'s history (large events, so the connection's flow-control window
 * fills and writes wait on the client), and reading it.
 */
async function openMany(domain: string, count: number, requestIdPrefix: string) {
  const session = http2.connect(baseUrl);
  session.on("error", () => {});
  const message = toBinary(
    EventServiceStreamRequestSchema,
    create(EventServiceStreamRequestSchema, { domain, type: "*", afterPosition: 0n }),
  );
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  let received = 0;
  for (let i = 0; i < count; i++) {
    const stream = session.request({
      ":method": "POST",
      ":path": STREAM,
      "content-type": "application/grpc",
      te: "trailers",
      "x-request-id": `${requestIdPrefix}-${i}`,
    });
    stream.on("error", () => {});
    stream.on("data", (chunk: Buffer) => {
      received += chunk.length;
    });
    stream.end(frame);
  }
  await until(() => gateway.openStreams() === count && received > 0, 20_000);
  return session;
}

/** The call lines of the requests whose id starts with `prefix`. */
const callLines = (prefix: string) =>
  lines.filter((l) => typeof l.requestId === "string" && l.requestId.startsWith(`${prefix}-`) && l.method === STREAM);

async function internalCount(): Promise<number> {
  const port = gateway.metricsPort;
  assert.ok(port);
  return metric(await scrape(port), "stategate_requests_total", { code: "Internal" });
}

describe("a client that drops its connection", () => {
  let domain: string;
  before(async () => {
    domain = unique("drop");
    // History large enough that 200 streams replaying it outgrow the connection's window.
    for (let i = 0; i < 40; i++) {
      await client.entity.set({ domain, type: "t", key: String(i), values: { pad: "x".repeat(4_000) } });
    }
  });

  for (const [how, drop] of [
    ["destroys its HTTP/2 session", (s: http2.ClientHttp2Session) => s.destroy()],
    [
      "resets its TCP connection",
      (s: http2.ClientHttp2Session) => (s.socket as unknown as net.Socket).resetAndDestroy(),
    ],
  ] as const) {
    it(`${how} with ${STREAMS} streams open: every call logged once as Canceled at debug, no error line`, async () => {
      const prefix = unique("drop-rid");
      const internalBefore = await internalCount();
      const errorsBefore = lines.filter((l) => (l.level as number) >= 50).length;
      const session = await openMany(domain, STREAMS, prefix);
      drop(session);
      // Every stream is released, even those whose write was waiting on the client's window.
      await until(() => gateway.openStreams() === 0, 10_000);
      await until(() => callLines(prefix).length >= STREAMS, 10_000);
      await sleep(100);
      const mine = callLines(prefix);
      assert.equal(mine.length, STREAMS, "one line per call");
      const codes = [...new Set(mine.map((l) => `${l.level}:${l.code}`))];
      assert.deepEqual(codes, ["20:Canceled"], "logged as Canceled at debug level");
      const errors = lines.filter((l) => (l.level as number) >= 50).slice(errorsBefore);
      assert.deepEqual(errors, [], "no error-level line");
      assert.equal(await internalCount(), internalBefore, "none counted as Internal");
    });
  }
});

describe("a Connect client that resets its stream before sending the request", () => {
  it("is counted and logged as Canceled, not as the protocol error of a missing request message", async () => {
    const port = gateway.metricsPort;
    assert.ok(port);
    const prefix = unique("reset-rid");
    const count = async (code: string) =>
      metric(await scrape(port), "stategate_requests_total", { method: "Stream", door: "connect", code });
    const unimplementedBefore = await count("Unimplemented");
    const canceledBefore = await count("Canceled");
    const session = http2.connect(baseUrl);
    session.on("error", () => {});
    const calls = 50;
    for (let i = 0; i < calls; i++) {
      const stream = session.request(
        {
          ":method": "POST",
          ":path": STREAM,
          "content-type": "application/connect+json",
          "x-request-id": `${prefix}-${i}`,
        },
        { endStream: false },
      );
      stream.on("error", () => {});
      // Half reset at once, half a moment later: both leave before their request message.
      if (i % 2 === 0) stream.close(http2.constants.NGHTTP2_CANCEL);
      else setImmediate(() => stream.close(http2.constants.NGHTTP2_CANCEL));
    }
    await until(() => callLines(prefix).length >= calls, 10_000);
    session.close();
    assert.deepEqual([...new Set(callLines(prefix).map((l) => l.code))], ["Canceled"]);
    assert.equal(await count("Canceled"), canceledBefore + calls);
    assert.equal(await count("Unimplemented"), unimplementedBefore);
  });

  it("still answers a request that ends without its message as the protocol error it is", async () => {
    const session = http2.connect(baseUrl);
    session.on("error", () => {});
    try {
      const stream = session.request({
        ":method": "POST",
        ":path": STREAM,
        "content-type": "application/connect+json",
      });
      stream.end();
      let body = "";
      stream.setEncoding("utf8");
      stream.on("data", (chunk: string) => {
        body += chunk;
      });
      await new Promise((resolve) => stream.on("end", resolve));
      // The end-of-stream frame: flag 0x02, then JSON carrying the error.
      assert.match(body, /"code":"unimplemented"/);
    } finally {
      session.close();
    }
  });
});

describe("a REST client that aborts its upload", () => {
  it("is logged as Canceled at debug level, not as a REST door failure", async () => {
    const errorsBefore = lines.filter((l) => (l.level as number) >= 50).length;
    const domain = unique("upload");
    const socket = net.connect(gateway.port, "127.0.0.1");
    await new Promise<void>((resolve) => socket.once("connect", resolve));
    socket.on("error", () => {});
    const path = `/api/entity/ref/${domain}/user/ada`;
    socket.write(
      `POST ${path} HTTP/1.1\r\nhost: 127.0.0.1:${gateway.port}\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n{"values":{"pad":"`,
    );
    await sleep(200);
    socket.resetAndDestroy();
    await until(() => lines.some((l) => l.msg === "client left" && l.door === "rest"), 5_000);
    const left = lines.filter((l) => l.msg === "client left" && l.door === "rest");
    assert.equal(left.at(-1)?.level, 20);
    assert.equal(left.at(-1)?.code, "Canceled");
    assert.equal(left.at(-1)?.method, "/stategate.v1.EntityService/Set");
    await sleep(100);
    assert.deepEqual(lines.filter((l) => (l.level as number) >= 50).slice(errorsBefore), [], "no error-level line");
  });
});

/**
 * A client that stops reading, falls behind, and then drops its connection:
 * REST and GraphQL streams run in-process, where the handler, parked while its
 * reader was slow, must still be released once the client is gone.
 */
describe("in-process streams whose client stopped reading, then left", () => {
  const requests: Record<string, (domain: string) => string> = {
    "REST SSE": (domain) => `GET /api/events/stream?domain=${domain}&type=* HTTP/1.1\r\nHost: localhost\r\n\r\n`,
    "REST NDJSON": (domain) =>
      `GET /api/events/stream?domain=${domain}&type=* HTTP/1.1\r\nHost: localhost\r\nAccept: application/x-ndjson\r\n\r\n`,
    "GraphQL SSE": (domain) => {
      const body = JSON.stringify({
        query: `subscription { eventStream(domain: "${domain}", type: "*") { event { version entity { values } } } }`,
      });
      return (
        "POST /api/graphql HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n" +
        `Accept: text/event-stream\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
      );
    },
  };
  for (const [name, request] of Object.entries(requests)) {
    it(`${name}: the stream is released, its buffer emptied`, async () => {
      const domain = unique("behind");
      const open = gateway.openStreams();
      const socket = net.connect(gateway.port, "127.0.0.1");
      socket.on("error", () => {});
      await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
      socket.write(request(domain));
      // The response has begun: from now on nothing is read, so the kernel's buffers fill up.
      await new Promise<void>((resolve) => socket.once("data", () => resolve()));
      socket.pause();
      await until(() => gateway.openStreams() === open + 1);
      const big = "x".repeat(20_000);
      for (let i = 0; i < 400; i += 10) {
        await Promise.all(
          Array.from({ length: 10 }, (_, j) =>
            client.entity.set({ domain, type: "t", key: `k${j}`, values: { big, i } }),
          ),
        );
      }
      const buffered = async () =>
        metric(await scrape(gateway.metricsPort!), "stategate_stream_buffered_items", { kind: "event" });
      await until(async () => (await buffered()) > 0, 5_000);
      socket.destroy();
      await until(() => gateway.openStreams() === open, 5_000);
      assert.equal(await buffered(), 0);
    });
  }
});
