import assert from "node:assert/strict";
import net from "node:net";
import { after, before, describe, it } from "node:test";
import WebSocket from "ws";
import type { TestGateway } from "./helpers.js";
import { startTestGateway, unique } from "./helpers.js";

// What a hostile web page or client could try: each is refused, and the gateway keeps serving.
let tg: TestGateway;
before(async () => {
  tg = await startTestGateway({ STATEGATE_CORS_ALLOW_ORIGINS: "http://app.test" });
});
after(async () => {
  await tg.close();
});

describe("cross-site writes", () => {
  it("a REST body that is not declared JSON writes nothing (no preflight would have asked)", async () => {
    const domain = unique("csrf");
    for (const type of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]) {
      const res = await fetch(`${tg.baseUrl}/api/entity/ref/${domain}/user/u1`, {
        method: "POST",
        headers: { "content-type": type, origin: "http://evil.test" },
        body: '{"values":{"pwned":true}}',
      });
      assert.equal(res.status, 400, type);
    }
    const get = await fetch(`${tg.baseUrl}/api/entity/ref/${domain}/user/u1`);
    assert.equal(get.status, 404, "nothing was written");
  });

  it("a GraphQL form or text POST runs nothing", async () => {
    const domain = unique("csrf");
    const res = await fetch(`${tg.baseUrl}/api/graphql`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", origin: "http://evil.test" },
      body: `query=${encodeURIComponent(`mutation { cacheSet(domain: "${domain}", key: "k", value: "x") }`)}`,
    });
    assert.equal(res.status, 415);
    const client = tg.client();
    await assert.rejects(client.cache.get({ domain, key: "k" }));
  });

  it("a WebSocket from an origin that is not allowed is refused; an allowed one is not", async () => {
    const open = (origin: string) =>
      new Promise<number>((resolve) => {
        const ws = new WebSocket(`${tg.baseUrl.replace("http", "ws")}/api/graphql`, "graphql-transport-ws", { origin });
        ws.on("open", () => {
          ws.close();
          resolve(101);
        });
        ws.on("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
        ws.on("error", () => resolve(0));
      });
    assert.equal(await open("http://evil.test"), 403);
    assert.equal(await open("http://app.test"), 101);
  });
});

describe("requests that are too big or malformed", () => {
  it("a GraphQL operation selecting thousands of aliases is refused before it runs", async () => {
    const fields = Array.from(
      { length: 1000 },
      (_, i) => `a${i}: entityGet(domain: "d", type: "t", key: "k${i}") { entity { key } }`,
    );
    const res = await fetch(`${tg.baseUrl}/api/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: `{ ${fields.join(" ")} }` }),
    });
    const body = (await res.json()) as {
      errors?: { message: string; extensions?: { code?: string } }[];
      data?: unknown;
    };
    assert.ok(
      body.errors?.some((e) => /at most 200 fields/.test(e.message)),
      JSON.stringify(body).slice(0, 300),
    );
    assert.equal(body.data ?? null, null);
  });

  it("a REST number JSON cannot carry is 400 naming the body", async () => {
    const res = await fetch(`${tg.baseUrl}/api/entity/ref/${unique("inf")}/user/x`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"values":{"a":1e400}}',
    });
    assert.equal(res.status, 400);
    assert.match(((await res.json()) as { message: string }).message, /NaN or Infinity/);
  });

  it("a request asking to upgrade to h2c gets an answer, not a dropped connection", async () => {
    const answer = await new Promise<string>((resolve) => {
      const socket = net.connect(tg.gateway.port, "127.0.0.1", () => {
        socket.write(
          "GET /api/entity/ref/a/b/c HTTP/1.1\r\nhost: localhost\r\nconnection: Upgrade, HTTP2-Settings\r\nupgrade: h2c\r\nhttp2-settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
        );
      });
      let text = "";
      socket.on("data", (d) => {
        text += d.toString();
      });
      socket.on("close", () => resolve(text));
    });
    assert.match(answer, /^HTTP\/1.1 400 /);
  });
});
