import assert from "node:assert/strict";
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { after, before, describe, it } from "node:test";
import WebSocket from "ws";
import { isLoopbackAuthority } from "../src/front/host.js";
import type { TestGateway } from "./helpers.js";
import { startTestGateway, unique } from "./helpers.js";
import { startTestIssuer } from "./test-issuer.js";

// DNS rebinding: a page from http://evil.example:8080 re-points its name at
// 127.0.0.1 and calls the gateway as a same-origin page. Without authentication
// (loopback mode) the gateway must answer only requests addressed to loopback names.

/** One HTTP/1.1 request with the Host (and other headers) given exactly. */
function request(
  port: number,
  options: { method?: string; path: string; headers: Record<string, string>; body?: string | Buffer },
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: "127.0.0.1", port, method: options.method ?? "GET", path: options.path, headers: options.headers },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          body += chunk;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("error", reject);
    req.end(options.body);
  });
}

/** One HTTP/2 request with the pseudo-headers given exactly (no Host header unless asked). */
function request2(
  port: number,
  headers: http2.OutgoingHttpHeaders,
  body: string | Buffer,
): Promise<{ status: number; headers: http2.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on("error", reject);
    const stream = session.request({ ":method": "POST", ...headers });
    const chunks: Buffer[] = [];
    let responseHeaders: http2.IncomingHttpHeaders = {};
    stream.on("response", (h) => {
      responseHeaders = h;
    });
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("end", () => {
      session.close();
      resolve({ status: Number(responseHeaders[":status"]), headers: responseHeaders, body: Buffer.concat(chunks) });
    });
    stream.on("error", reject);
    stream.end(body);
  });
}

/** Opens a graphql-ws socket and says how far it got: "ack", or the HTTP status that refused it. */
function openSocket(port: number, headers: Record<string, string>, origin?: string): Promise<"ack" | number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/api/graphql`, "graphql-transport-ws", {
      headers,
      ...(origin ? { origin } : {}),
    });
    ws.on("open", () => ws.send(JSON.stringify({ type: "connection_init" })));
    ws.on("message", (data) => {
      if ((JSON.parse(String(data)) as { type?: string }).type === "connection_ack") {
        ws.close();
        resolve("ack");
      }
    });
    ws.on("unexpected-response", (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
    });
    ws.on("error", () => resolve(0));
  });
}

/** A 5-byte gRPC frame around a binary EntityServiceSetRequest {domain, type, key}. */
function grpcSetFrame(domain: string, type: string, key: string): Buffer {
  const field = (no: number, text: string) => {
    const bytes = Buffer.from(text);
    return Buffer.concat([Buffer.from([(no << 3) | 2, bytes.length]), bytes]);
  };
  // values (field 4) is an empty Struct, so the request passes validation.
  const message = Buffer.concat([field(1, domain), field(2, type), field(3, key), Buffer.from([(4 << 3) | 2, 0])]);
  const header = Buffer.alloc(5);
  header.writeUInt32BE(message.length, 1);
  return Buffer.concat([header, message]);
}

const evil = "evil.example:8080";

describe("DNS rebinding, with no authentication configured (loopback mode)", () => {
  let tg: TestGateway;
  let port: number;
  before(async () => {
    tg = await startTestGateway();
    port = tg.gateway.port;
  });
  after(async () => {
    await tg.close();
  });

  /** Whether the entity exists, asked the way a loopback client asks. */
  const exists = async (domain: string, key: string) =>
    (await fetch(`${tg.baseUrl}/api/entity/ref/${domain}/user/${key}`)).status === 200;

  it("REST: a write addressed to another host name is 403 and writes nothing", async () => {
    const domain = unique("rebind");
    const res = await request(port, {
      method: "POST",
      path: `/api/entity/ref/${domain}/user/rebind`,
      headers: { host: evil, origin: `http://${evil}`, "content-type": "application/json" },
      body: '{"values":{"pwned":true}}',
    });
    assert.equal(res.status, 403);
    const body = JSON.parse(res.body) as { code: string; message: string };
    assert.equal(body.code, "permission_denied");
    assert.match(body.message, /localhost/);
    assert.equal(await exists(domain, "rebind"), false, "nothing was written");
    // The same call addressed to the loopback name it really reached is served.
    const ok = await request(port, {
      method: "POST",
      path: `/api/entity/ref/${domain}/user/rebind`,
      headers: { host: `127.0.0.1:${port}`, "content-type": "application/json" },
      body: '{"values":{"fine":true}}',
    });
    assert.equal(ok.status, 200, ok.body);
  });

  it("REST reads, Connect, gRPC-Web and GraphQL are refused too", async () => {
    const domain = unique("rebind");
    const headers = { host: evil, origin: `http://${evil}` };
    const read = await request(port, { path: `/api/entity/ref/${domain}/user/k`, headers });
    assert.equal(read.status, 403, "REST read");
    const connect = await request(port, {
      method: "POST",
      path: "/stategate.v1.EntityService/Set",
      headers: { ...headers, "content-type": "application/json" },
      body: JSON.stringify({ domain, type: "user", key: "connect", values: { pwned: true } }),
    });
    assert.equal(connect.status, 403, "Connect JSON");
    const grpcWeb = await request(port, {
      method: "POST",
      path: "/stategate.v1.EntityService/Set",
      headers: { ...headers, "content-type": "application/grpc-web+proto" },
      body: grpcSetFrame(domain, "user", "grpcweb"),
    });
    assert.equal(grpcWeb.status, 403, "gRPC-Web");
    const graphql = await request(port, {
      method: "POST",
      path: "/api/graphql",
      headers: { ...headers, "content-type": "application/json" },
      body: JSON.stringify({
        query: `mutation { entitySet(domain: "${domain}", type: "user", key: "graphql", values: { pwned: true }) { event { version } } }`,
      }),
    });
    assert.equal(graphql.status, 403, "GraphQL");
    for (const key of ["connect", "grpcweb", "graphql"]) assert.equal(await exists(domain, key), false, key);
  });

  it("gRPC over HTTP/2: an :authority naming another host is refused, a loopback one without Host is served", async () => {
    const domain = unique("rebind");
    const call = (authority: string, key: string) =>
      request2(
        port,
        {
          ":path": "/stategate.v1.EntityService/Set",
          ":authority": authority,
          "content-type": "application/grpc",
          te: "trailers",
        },
        grpcSetFrame(domain, "user", key),
      );
    const refused = await call(evil, "h2-evil");
    assert.equal(refused.status, 403, "gRPC clients report HTTP 403 as PERMISSION_DENIED");
    assert.equal(await exists(domain, "h2-evil"), false);
    const served = await call(`127.0.0.1:${port}`, "h2-ok");
    assert.equal(served.status, 200);
    assert.equal(await exists(domain, "h2-ok"), true);
  });

  it("a WebSocket addressed to another host gets 403, never connection_ack", async () => {
    assert.equal(await openSocket(port, { host: evil }, `http://${evil}`), 403);
    assert.equal(await openSocket(port, { host: evil }), 403, "even without an Origin");
  });

  it("a WebSocket is accepted with no Origin, but not from an origin only because it matches the Host", async () => {
    assert.equal(await openSocket(port, { host: `127.0.0.1:${port}` }), "ack", "no Origin: a server or CLI client");
    // Origin equal to the Host is no proof: a rebinding page names its own host in both.
    assert.equal(await openSocket(port, { host: `127.0.0.1:${port}` }, `http://127.0.0.1:${port}`), 403);
  });

  it("the metrics port answers only loopback names too", async () => {
    const metricsPort = tg.gateway.metricsPort as number;
    assert.equal((await request(metricsPort, { path: "/metrics", headers: { host: evil } })).status, 403);
    assert.equal(
      (await request(metricsPort, { path: "/healthz", headers: { host: `localhost:${metricsPort}` } })).status,
      200,
    );
  });

  it("serves every loopback name, with or without a port", async () => {
    for (const host of [
      "localhost",
      `localhost:${port}`,
      "app.localhost:1",
      "LOCALHOST.",
      "127.0.0.1",
      "127.1.2.3:80",
      "[::1]",
      `[::1]:${port}`,
    ]) {
      const res = await request(port, { path: `/api/entity/ref/${unique("d")}/user/k`, headers: { host } });
      assert.equal(res.status, 404, `${host} is served (a missing entity is 404, not 403)`);
    }
  });
});

describe("DNS rebinding protection is for loopback mode only", () => {
  it("with STATEGATE_AUTH_DISABLED=true any host name is served, as configured", async () => {
    const tg = await startTestGateway({ STATEGATE_AUTH_DISABLED: "true" });
    try {
      const res = await request(tg.gateway.port, {
        path: `/api/entity/ref/${unique("d")}/user/k`,
        headers: { host: "gateway.internal:8080" },
      });
      assert.equal(res.status, 404);
    } finally {
      await tg.close();
    }
  });
});

/** Sends `text` as is on a fresh connection and reads the answer until the gateway closes it. */
function rawExchange(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port }, () => socket.write(text));
    let answer = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      answer += chunk;
    });
    socket.setTimeout(5_000, () => {
      socket.destroy();
      reject(new Error(`no close after: ${answer}`));
    });
    socket.on("close", () => resolve(answer));
    socket.on("error", reject);
  });
}

describe("a request with more than one Host header is 400 (RFC 9112), on both ports, in every auth mode", () => {
  for (const mode of ["loopback", "disabled", "jwt"] as const) {
    it(`${mode}: REST, GraphQL, the WebSocket upgrade and the metrics port; nothing is written`, async () => {
      const issuer = mode === "jwt" ? await startTestIssuer() : undefined;
      const tg = await startTestGateway(
        mode === "disabled" ? { STATEGATE_AUTH_DISABLED: "true" } : mode === "jwt" ? (issuer?.env ?? {}) : {},
      );
      try {
        const port = tg.gateway.port;
        const auth = issuer ? `authorization: Bearer ${await issuer.sign({ sub: "ada" })}\r\n` : "";
        const domain = unique("twohosts");
        const body = '{"values":{"pwned":true}}';
        const write = (hosts: string[], key: string) =>
          rawExchange(
            port,
            `POST /api/entity/ref/${domain}/user/${key} HTTP/1.1\r\n${hosts.map((h) => `Host: ${h}\r\n`).join("")}` +
              `${auth}content-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
          );
        for (const [hosts, key] of [
          [["localhost", "evil.example"], "first-loopback"],
          [["evil.example", "localhost"], "second-loopback"],
          [[`127.0.0.1:${port}`, `127.0.0.1:${port}`], "same-twice"],
        ] as const) {
          const answer = await write([...hosts], key);
          assert.match(answer, /^HTTP\/1\.1 400 /, `${hosts.join(", ")}: ${answer}`);
          assert.match(answer, /"code":"invalid_argument"/);
          assert.match(answer, /Host/);
        }
        const graphql = JSON.stringify({ query: "{ __typename }" });
        const gql = await rawExchange(
          port,
          `POST /api/graphql HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\n${auth}content-type: application/json\r\n` +
            `content-length: ${graphql.length}\r\nconnection: close\r\n\r\n${graphql}`,
        );
        assert.match(gql, /^HTTP\/1\.1 400 /, gql);
        const upgrade = await rawExchange(
          port,
          "GET /api/graphql HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
            "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n",
        );
        assert.match(upgrade, /^HTTP\/1\.1 400 /, upgrade);
        const metrics = await rawExchange(
          tg.gateway.metricsPort as number,
          "GET /healthz HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\nconnection: close\r\n\r\n",
        );
        assert.match(metrics, /^HTTP\/1\.1 400 /, metrics);
        // One Host is served as before.
        assert.match(await write(["localhost"], "one"), /^HTTP\/1\.1 200 /);
        const client = tg.client(issuer ? { token: await issuer.sign({ sub: "ada" }) } : undefined);
        const { entities } = await client.entity.search({ domain, type: "user" });
        client.close();
        assert.deepEqual(
          entities.map((e) => e.key),
          ["one"],
          "no request with two Host headers wrote anything",
        );
      } finally {
        await tg.close();
        await issuer?.close();
      }
    });
  }
});

describe("isLoopbackAuthority", () => {
  it("takes loopback names and addresses with any port, and nothing else", () => {
    for (const yes of [
      "localhost",
      "localhost:8080",
      "a.b.localhost:1",
      "127.0.0.1",
      "127.255.255.254:65535",
      "[::1]",
      "[::1]:80",
    ]) {
      assert.equal(isLoopbackAuthority(yes), true, yes);
    }
    for (const no of [
      "",
      "evil.example:8080",
      "localhost.evil.example",
      "evillocalhost",
      "127.0.0.1.evil.example",
      "128.0.0.1",
      "127.0.0.256",
      "0.0.0.0:8080",
      "[::]",
      "[::ffff:7f00:1]",
      "::1",
      "localhost:80:80",
      "localhost:http",
      "[::1]x",
    ]) {
      assert.equal(isLoopbackAuthority(no), false, no);
    }
  });
});
