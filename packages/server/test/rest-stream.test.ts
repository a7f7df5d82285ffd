import assert from "node:assert/strict";
import http from "node:http";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { after, afterEach, before, describe, it } from "node:test";
import type { Message } from "@bufbuild/protobuf";
import { create, createRegistry } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { EventService, EventServiceStreamResponseSchema } from "@stategate/api";
import pino from "pino";
import { createRouteTable, httpBindings } from "../src/front/rest/index.js";
import { writeStream } from "../src/front/rest/stream.js";
import type { TestGateway } from "./helpers.js";
import { startTestGateway, take, unique, until } from "./helpers.js";
import { ndjson, ok, readAll, rest, sse } from "./rest-helpers.js";

let tg: TestGateway;
before(async () => {
  tg = await startTestGateway();
});
after(async () => {
  await tg.close();
});
// Every stream a test opened is released on the gateway once the test ends it.
afterEach(async () => {
  await until(() => tg.gateway.openStreams() === 0);
});

/** Opens a REST stream with fetch and waits until it subscribed; the caller aborts `signal` to leave. */
async function open(path: string, signal: AbortSignal, headers: Record<string, string> = {}) {
  const before = tg.gateway.openStreams();
  const res = await fetch(`${tg.baseUrl}${path}`, { signal, headers });
  assert.equal(res.status, 200, await (res.status === 200 ? "" : res.text()));
  await until(() => tg.gateway.openStreams() > before);
  return res;
}

const setEntity = (domain: string, key: string) =>
  ok(rest(tg.baseUrl, "POST", `/api/entity/ref/${domain}/user/${key}`, { values: { key } }));

describe("REST streams", () => {
  it("EventService/Stream as Server-Sent Events, with ids that resume through Last-Event-ID", async () => {
    const domain = unique("rest-sse");
    const abort = new AbortController();
    const res = await open(`/api/events/stream?domain=${domain}&type=*`, abort.signal);
    assert.equal(res.headers.get("content-type"), "text/event-stream; charset=utf-8");
    const first = [await setEntity(domain, "a"), await setEntity(domain, "b")];
    const got = await take(sse(res.body!), 2);
    abort.abort();
    assert.deepEqual(
      got.map((m) => m.id),
      first.map((s) => s.event.position),
      "id: is the event position",
    );
    assert.deepEqual(JSON.parse(got[0].data!).event, first[0]!.event);

    // Missed while disconnected, then picked up by a reconnect that sends the last id it saw.
    const missed = await setEntity(domain, "c");
    const again = new AbortController();
    const resumed = await open(`/api/events/stream?domain=${domain}&type=*`, again.signal, {
      "last-event-id": got[0].id!,
    });
    const replay = await take(sse(resumed.body!), 2);
    again.abort();
    assert.deepEqual(
      replay.map((m) => JSON.parse(m.data!).event.entity.key),
      ["b", "c"],
    );
    assert.equal(replay[1]!.id, missed.event.position);
  });

  it("newline-delimited JSON when Accept asks for application/x-ndjson", async () => {
    const domain = unique("rest-ndjson");
    const abort = new AbortController();
    const res = await open(`/api/events/stream?domain=${domain}&type=user&afterPosition=0`, abort.signal, {
      accept: "application/x-ndjson",
    });
    assert.equal(res.headers.get("content-type"), "application/x-ndjson");
    await setEntity(domain, "a");
    await setEntity(domain, "b");
    const lines = await take(ndjson(res.body!), 2);
    abort.abort();
    assert.deepEqual(
      lines.map((l) => l.event.entity.key),
      ["a", "b"],
    );
  });

  it("PeerService/Stream receives a REST Broadcast", async () => {
    const domain = unique("rest-peers");
    const abort = new AbortController();
    const res = await open(`/api/peers/stream?domain=${domain}&channel=chat&type=*`, abort.signal);
    const body = { domain, channel: "chat", type: "msg", body: { hi: "there" } };
    await ok(rest(tg.baseUrl, "POST", "/api/peers/broadcast", body));
    const [msg] = await take(sse(res.body!), 1);
    abort.abort();
    assert.equal(msg!.id, undefined, "peer messages are not resumable");
    assert.deepEqual(JSON.parse(msg.data!).message.body, { hi: "there" });
  });

  it("a client that leaves releases the call", async () => {
    const abort = new AbortController();
    await open(`/api/events/stream?domain=${unique("rest-leave")}&type=*`, abort.signal);
    assert.equal(tg.gateway.openStreams(), 1);
    abort.abort();
    await until(() => tg.gateway.openStreams() === 0);
  });

  it("bad stream input answers 400 before any event", async () => {
    const group = await rest(tg.baseUrl, "GET", "/api/events/stream?domain=acme&type=*&consumerGroup=g", undefined, {
      "last-event-id": "5",
    });
    assert.equal(group.status, 400);
    assert.equal(group.json.code, "invalid_argument");
    assert.match(group.json.message, /^after_position: /);
    const id = await rest(tg.baseUrl, "GET", "/api/events/stream?domain=acme&type=*", undefined, {
      "last-event-id": "yesterday",
    });
    assert.equal(id.status, 400);
    assert.match(id.json.message, /last-event-id/);
    const domain = await rest(tg.baseUrl, "GET", "/api/peers/stream?domain=a%20b&channel=*&type=*");
    assert.equal(domain.status, 400);
    assert.match(domain.json.message, /^domain: /);
  });

  it("the gateway's shutdown ends open streams with an UNAVAILABLE error event", async () => {
    const own = await startTestGateway();
    try {
      const res = await fetch(`${own.baseUrl}/api/events/stream?domain=*&type=*`);
      // No event is written; the reading ends when the response does.
      const ended = readAll(sse(res.body!));
      await until(() => own.gateway.openStreams() === 1);
      const started = Date.now();
      const closing = own.close();
      // Cleanly: a socket destroyed at the end of the grace period would make the read throw.
      const got = await ended;
      assert.ok(Date.now() - started < 1_000, "the response ended at shutdown, not at the end of the grace period");
      assert.deepEqual(
        got.map((m) => [m.event, JSON.parse(m.data ?? "{}").code]),
        [["error", "unavailable"]],
        "the client hears why, so it reconnects (to another gateway)",
      );
      await closing;
    } finally {
      await own.close();
    }
  });

  it("a Last-Event-ID past the largest int64 answers 400 naming the header", async () => {
    for (const id of ["9223372036854775808", "9999999999999999999", "99999999999999999999999"]) {
      const answer = await rest(tg.baseUrl, "GET", "/api/events/stream?domain=acme&type=user", undefined, {
        "last-event-id": id,
      });
      assert.equal(answer.status, 400, `${id}: ${JSON.stringify(answer.json)}`);
      assert.equal(answer.json.code, "invalid_argument");
      assert.match(answer.json.message, /^last-event-id: /);
    }
    // The largest position itself is a position: the stream opens (and has nothing after it).
    const abort = new AbortController();
    await open("/api/events/stream?domain=acme&type=user", abort.signal, { "last-event-id": "9223372036854775807" });
    abort.abort();
  });
});

describe("REST over HTTP/2", () => {
  it("serves unary routes and streams", async () => {
    const domain = unique("rest-h2");
    const session = http2.connect(tg.baseUrl);
    try {
      const request = (path: string, method = "GET", body?: string) =>
        new Promise<{ status: number; text: string }>((resolve, reject) => {
          const stream = session.request({ ":method": method, ":path": path, "content-type": "application/json" });
          let status = 0;
          let text = "";
          stream.on("response", (h) => {
            status = Number(h[":status"]);
          });
          stream.setEncoding("utf8");
          stream.on("data", (chunk: string) => {
            text += chunk;
            if (path.includes("/stream") && text.includes("\n\n")) stream.close(http2.constants.NGHTTP2_CANCEL);
          });
          stream.on("close", () => resolve({ status, text }));
          stream.on("error", reject);
          stream.end(body);
        });
      const set = await request(`/api/entity/ref/${domain}/user/ada`, "POST", JSON.stringify({ values: { h: 2 } }));
      assert.equal(set.status, 200, set.text);
      const got = await request(`/api/entity/ref/${domain}/user/ada`);
      assert.deepEqual(JSON.parse(got.text).entity.values, { h: 2 });
      const streamed = await request(`/api/events/stream?domain=${domain}&type=*&afterPosition=0`);
      assert.equal(streamed.status, 200);
      assert.match(streamed.text, /^id: \d+\ndata: \{"event":/);
    } finally {
      session.close();
    }
  });
});

describe("REST stream writer", () => {
  const route = createRouteTable(httpBindings([EventService])).match("GET", "/api/events/stream")!.route;

  /** Serves `messages` through writeStream on a bare HTTP server and returns the raw body. */
  async function served(messages: () => AsyncGenerator<Message>, accept = "text/event-stream") {
    const server = http.createServer((_req, res) => {
      const gone = new AbortController();
      res.once("close", () => gone.abort());
      void writeStream(res, route, messages(), {
        format: accept === "application/x-ndjson" ? "ndjson" : "sse",
        gone: gone.signal,
        shutdown: new AbortController().signal,
        requestId: () => "rid-1",
        registry: createRegistry(),
        log: pino({ level: "silent" }),
        pingMs: 30,
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, { headers: { accept } });
      return { status: res.status, requestId: res.headers.get("x-request-id"), text: await res.text() };
    } finally {
      server.close();
    }
  }

  const event = (position: bigint) => create(EventServiceStreamResponseSchema, { event: { position } });
  const fails = new ConnectError("backend gone", Code.Unavailable);

  it("sends pings while idle and an error event after the headers", async () => {
    const out = await served(async function* () {
      yield event(7n);
      await new Promise((r) => setTimeout(r, 200));
      throw fails;
    });
    assert.equal(out.status, 200);
    assert.equal(out.requestId, "rid-1");
    assert.match(out.text, /^id: 7\ndata: \{"event":\{"position":"7"\}\}\n\n/);
    assert.match(out.text, /\n: ping\n\n/);
    assert.match(out.text, /event: error\ndata: \{"code":"unavailable","message":"backend gone","details":\[\]\}\n\n$/);
  });

  it("ends NDJSON with an error line; an error before any message is an HTTP error", async () => {
    const lines = await served(async function* () {
      yield event(1n);
      throw fails;
    }, "application/x-ndjson");
    assert.equal(
      lines.text,
      '{"event":{"position":"1"}}\n{"error":{"code":"unavailable","message":"backend gone","details":[]}}\n',
    );
    // biome-ignore lint/correctness/useYield: fails before its first message on purpose
    const early = await served(async function* () {
      throw fails;
    });
    assert.equal(early.status, 503);
    assert.deepEqual(JSON.parse(early.text), { code: "unavailable", message: "backend gone", details: [] });
  });
});
