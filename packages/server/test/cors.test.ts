import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe, it } from "node:test";
import type { Interceptor } from "@connectrpc/connect";
import { cors } from "@connectrpc/connect";
import { Code, ConnectError } from "@stategate/sdk-node";
import { ConfigError, loadConfig } from "../src/index.js";
import type { TestGateway } from "./helpers.js";
import { startTestGateway, unique, until } from "./helpers.js";

const app = "http://app.example:3000";
const other = "http://evil.example";
const rpcPath = "/stategate.v1.EntityService/Get";

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One HTTP/1.1 request, as a browser would send it, with nothing added. */
function send(
  baseUrl: string,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(new URL(path, baseUrl), { method, headers }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        text += chunk;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** Opens a request whose answer does not end (a stream): resolves with the response once its headers are in. */
function openStream(baseUrl: string, path: string, headers: Record<string, string>): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = http.request(new URL(path, baseUrl), { headers }, resolve);
    req.on("error", reject);
    req.end();
  });
}

/** A CORS preflight for a Connect JSON call with a bearer token. */
function preflight(baseUrl: string, origin: string, path = rpcPath): Promise<Answer> {
  return send(baseUrl, "OPTIONS", path, {
    origin,
    "access-control-request-method": "POST",
    "access-control-request-headers": "authorization,connect-protocol-version,content-type,x-grpc-web",
  });
}

/** A header's comma-separated items, lower case. */
function list(value: string | string[] | undefined): string[] {
  return String(value ?? "")
    .split(",")
    .map((item) => item.trim().toLowerCase())
    .filter((item) => item !== "");
}

/** A Connect JSON Get of a missing entity: answers 404 with a JSON error body. */
function connectGet(baseUrl: string, headers: Record<string, string>): Promise<Answer> {
  return send(
    baseUrl,
    "POST",
    rpcPath,
    { "content-type": "application/json", "connect-protocol-version": "1", ...headers },
    JSON.stringify({ domain: unique("cors"), type: "user", key: "nobody" }),
  );
}

function sendsOrigin(origin: string): Interceptor {
  return (next) => (req) => {
    req.header.set("origin", origin);
    return next(req);
  };
}

describe("CORS configuration", () => {
  it("is off by default and has defaults that cover gRPC-Web, Connect and REST", () => {
    const config = loadConfig({});
    assert.deepEqual(config.cors.allowOrigins, []);
    assert.deepEqual(config.cors.allowMethods, ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);
    for (const header of [...cors.allowedHeaders, "authorization", "x-request-id"]) {
      assert.ok(config.cors.allowHeaders.includes(header.toLowerCase()), header);
    }
  });

  it("reads comma-separated lists and normalises origins, methods and headers", () => {
    const config = loadConfig({
      STATEGATE_CORS_ALLOW_ORIGINS: " https://App.Example.com , http://localhost:80/ ,*,",
      STATEGATE_CORS_ALLOW_METHODS: "get, post",
      STATEGATE_CORS_ALLOW_HEADERS: "Authorization,X-Custom",
    });
    assert.deepEqual(config.cors.allowOrigins, ["https://app.example.com", "http://localhost", "*"]);
    assert.deepEqual(config.cors.allowMethods, ["GET", "POST"]);
    assert.deepEqual(config.cors.allowHeaders, ["authorization", "x-custom"]);
  });

  for (const [variable, value] of [
    ["STATEGATE_CORS_ALLOW_ORIGINS", "https://app.example.com/path"],
    ["STATEGATE_CORS_ALLOW_ORIGINS", "app.example.com"],
    ["STATEGATE_CORS_ALLOW_ORIGINS", "null"],
    ["STATEGATE_CORS_ALLOW_ORIGINS", "https://*.example.com"],
    ["STATEGATE_CORS_ALLOW_ORIGINS", "ftp://files.example.com"],
    ["STATEGATE_CORS_ALLOW_METHODS", "GET,PO ST"],
    ["STATEGATE_CORS_ALLOW_METHODS", ","],
    ["STATEGATE_CORS_ALLOW_HEADERS", "x-a,x:b"],
  ] as const) {
    it(`refuses ${variable}=${JSON.stringify(value)}, naming the variable`, () => {
      assert.throws(
        () => loadConfig({ [variable]: value }),
        (err: unknown) => err instanceof ConfigError && err.variable === variable && err.message.startsWith(variable),
      );
    });
  }
});

describe("CORS with listed origins", () => {
  let tg: TestGateway;
  before(async () => {
    tg = await startTestGateway({ STATEGATE_CORS_ALLOW_ORIGINS: `${app},http://other.example` });
  });
  after(async () => {
    await tg?.close();
  });

  it("answers a preflight on an RPC path from a listed origin", async () => {
    const res = await preflight(tg.baseUrl, app);
    assert.equal(res.status, 204);
    assert.equal(res.headers["access-control-allow-origin"], app);
    assert.equal(res.headers["access-control-allow-credentials"], "true");
    assert.deepEqual(list(res.headers["access-control-allow-methods"]), [
      "get",
      "post",
      "put",
      "patch",
      "delete",
      "options",
    ]);
    const allowed = list(res.headers["access-control-allow-headers"]);
    for (const header of [...cors.allowedHeaders, "authorization", "x-request-id"]) {
      assert.ok(allowed.includes(header.toLowerCase()), `allows ${header}`);
    }
    assert.equal(res.headers["access-control-max-age"], "7200");
    assert.ok(list(res.headers.vary).includes("origin"));
  });

  it("refuses a preflight from an origin that is not listed", async () => {
    const res = await preflight(tg.baseUrl, other);
    assert.equal(res.status, 403);
    assert.equal(res.headers["access-control-allow-origin"], undefined);
    assert.equal(res.headers["access-control-allow-methods"], undefined);
    assert.ok(list(res.headers.vary).includes("origin"));
  });

  it("lets a listed origin read a Connect answer, its error and the headers gRPC-Web needs", async () => {
    const res = await connectGet(tg.baseUrl, { origin: app });
    assert.equal(res.status, 404);
    assert.equal((JSON.parse(res.body) as { code: string }).code, "not_found");
    assert.equal(res.headers["access-control-allow-origin"], app);
    assert.equal(res.headers["access-control-allow-credentials"], "true");
    assert.ok(list(res.headers.vary).includes("origin"));
    const exposed = list(res.headers["access-control-expose-headers"]);
    for (const header of [
      ...cors.exposedHeaders,
      "grpc-status",
      "grpc-message",
      "grpc-status-details-bin",
      "x-request-id",
    ]) {
      assert.ok(exposed.includes(header.toLowerCase()), `exposes ${header}`);
    }
    assert.ok(res.headers["x-request-id"], "the exposed request id is there to read");
  });

  it("serves a gRPC-Web call from a listed origin with the CORS headers", async () => {
    let headers: Headers | undefined;
    const client = tg.client({ protocol: "grpc-web", httpVersion: "1.1", interceptors: [sendsOrigin(app)] });
    const domain = unique("cors");
    await client.entity.set({ domain, type: "user", key: "ada", values: { name: "Ada" } });
    const got = await client.entity.get(
      { domain, type: "user", key: "ada" },
      {
        onHeader: (h) => {
          headers = h;
        },
      },
    );
    assert.deepEqual(got.entity?.values, { name: "Ada" });
    assert.equal(headers?.get("access-control-allow-origin"), app);
    assert.ok(list(headers?.get("access-control-expose-headers") ?? "").includes("grpc-status"));
    client.close();
  });

  it("covers HTTP/2 too", async () => {
    let headers: Headers | undefined;
    const client = tg.client({ protocol: "grpc", interceptors: [sendsOrigin(app)] });
    const domain = unique("cors");
    await client.entity.set({ domain, type: "user", key: "ada", values: { name: "Ada" } });
    await client.entity.get(
      { domain, type: "user", key: "ada" },
      {
        onHeader: (h) => {
          headers = h;
        },
      },
    );
    assert.equal(headers?.get("access-control-allow-origin"), app);
    // An error before any message comes as headers alone: they carry CORS too.
    await assert.rejects(client.entity.get({ domain, type: "user", key: "nobody" }), (err: unknown) => {
      const e = ConnectError.from(err);
      return e.code === Code.NotFound && e.metadata.get("access-control-allow-origin") === app;
    });
    client.close();
  });

  it("serves an origin that is not listed without CORS headers, and a call without an Origin with none", async () => {
    const denied = await connectGet(tg.baseUrl, { origin: other });
    assert.equal(denied.status, 404, "the call itself runs: the browser is what withholds the answer");
    assert.equal(denied.headers["access-control-allow-origin"], undefined);
    assert.equal(denied.headers["access-control-expose-headers"], undefined);
    assert.ok(list(denied.headers.vary).includes("origin"), "a cache must not reuse it for another origin");

    const plain = await connectGet(tg.baseUrl, {});
    assert.equal(plain.status, 404);
    assert.equal(plain.headers["access-control-allow-origin"], undefined);
  });

  it("applies to paths that are not RPCs (REST, GraphQL, not found)", async () => {
    for (const [path, status] of [
      ["/api/graphql?query=%7B__typename%7D", 200],
      [`/api/entity/search?domain=${unique("cors")}&type=user`, 200],
      ["/no/such/path", 404],
    ] as const) {
      const pre = await preflight(tg.baseUrl, "http://other.example", path);
      assert.equal(pre.status, 204, path);
      assert.equal(pre.headers["access-control-allow-origin"], "http://other.example", path);
      assert.ok(list(pre.headers["access-control-allow-methods"]).includes("delete"), path);

      const res = await send(tg.baseUrl, "GET", path, { origin: "http://other.example" });
      assert.equal(res.status, status, `${path}: ${res.body}`);
      assert.equal(res.headers["access-control-allow-origin"], "http://other.example", path);
      assert.ok(list(res.headers["access-control-expose-headers"]).includes("x-request-id"), path);

      const denied = await send(tg.baseUrl, "GET", path, { origin: other });
      assert.equal(denied.headers["access-control-allow-origin"], undefined, `${path} from an origin not listed`);
    }
  });

  it("covers a REST event stream: the text/event-stream answer carries the CORS headers", async () => {
    const domain = unique("cors");
    const res = await openStream(tg.baseUrl, `/api/events/stream?domain=${domain}&type=*`, {
      origin: app,
      accept: "text/event-stream",
    });
    try {
      assert.equal(res.statusCode, 200);
      assert.equal(res.headers["content-type"], "text/event-stream; charset=utf-8");
      assert.equal(res.headers["access-control-allow-origin"], app);
      assert.equal(res.headers["access-control-allow-credentials"], "true");
      assert.ok(list(res.headers["access-control-expose-headers"]).includes("x-request-id"));
      assert.ok(list(res.headers.vary).includes("origin"));
      // It is a live stream, not just headers: an event written now arrives on it.
      await until(() => tg.gateway.openStreams() > 0);
      const client = tg.client();
      await client.entity.set({ domain, type: "user", key: "ada", values: {} });
      client.close();
      let text = "";
      for await (const chunk of res) {
        text += String(chunk);
        if (/^data: .*"key":"ada"/m.test(text)) break;
      }
      assert.match(text, /^data: .*"key":"ada"/m);
    } finally {
      res.destroy();
    }
  });
});

describe("CORS with STATEGATE_CORS_ALLOW_HEADERS", () => {
  let tg: TestGateway;
  before(async () => {
    tg = await startTestGateway({
      STATEGATE_CORS_ALLOW_ORIGINS: app,
      STATEGATE_CORS_ALLOW_HEADERS: "authorization,x-custom",
    });
  });
  after(async () => {
    await tg?.close();
  });

  it("answers a preflight with the configured headers, and serves the call it allowed", async () => {
    const path = `/api/entity/ref/${unique("cors")}/user/ada`;
    const pre = await send(tg.baseUrl, "OPTIONS", path, {
      origin: app,
      "access-control-request-method": "GET",
      "access-control-request-headers": "authorization,x-custom",
    });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers["access-control-allow-origin"], app);
    assert.equal(pre.headers["access-control-allow-credentials"], "true");
    assert.deepEqual(list(pre.headers["access-control-allow-headers"]), ["authorization", "x-custom"]);
    assert.ok(list(pre.headers["access-control-allow-methods"]).includes("get"));

    // A header that is not listed is not echoed back: the browser will refuse to send it.
    const other = await send(tg.baseUrl, "OPTIONS", path, {
      origin: app,
      "access-control-request-method": "GET",
      "access-control-request-headers": "x-other",
    });
    assert.equal(other.status, 204);
    assert.deepEqual(list(other.headers["access-control-allow-headers"]), ["authorization", "x-custom"]);

    const res = await send(tg.baseUrl, "GET", path, { origin: app, "x-custom": "1" });
    assert.equal(res.status, 404, res.body);
    assert.equal((JSON.parse(res.body) as { code: string }).code, "not_found");
    assert.equal(res.headers["access-control-allow-origin"], app);
  });
});

describe("CORS with any origin", () => {
  let tg: TestGateway;
  before(async () => {
    tg = await startTestGateway({
      STATEGATE_CORS_ALLOW_ORIGINS: "*",
      STATEGATE_CORS_ALLOW_METHODS: "POST",
      STATEGATE_CORS_ALLOW_HEADERS: "*",
    });
  });
  after(async () => {
    await tg?.close();
  });

  it("answers with * and never allows credentials", async () => {
    const pre = await preflight(tg.baseUrl, other);
    assert.equal(pre.status, 204);
    assert.equal(pre.headers["access-control-allow-origin"], "*");
    assert.equal(pre.headers["access-control-allow-credentials"], undefined);
    assert.deepEqual(list(pre.headers["access-control-allow-methods"]), ["post"]);

    const res = await connectGet(tg.baseUrl, { origin: other });
    assert.equal(res.headers["access-control-allow-origin"], "*");
    assert.equal(res.headers["access-control-allow-credentials"], undefined);
  });

  it("allows whatever headers a preflight asks for when the list is *", async () => {
    const pre = await send(tg.baseUrl, "OPTIONS", rpcPath, {
      origin: app,
      "access-control-request-method": "POST",
      "access-control-request-headers": "authorization,x-anything",
    });
    // A literal "*" would not cover Authorization: the request's own list is echoed.
    assert.deepEqual(list(pre.headers["access-control-allow-headers"]), ["authorization", "x-anything"]);
    assert.ok(list(pre.headers.vary).includes("access-control-request-headers"));
  });
});

describe("CORS when no origin is configured", () => {
  let tg: TestGateway;
  before(async () => {
    tg = await startTestGateway();
  });
  after(async () => {
    await tg?.close();
  });

  it("sends no CORS header at all", async () => {
    const pre = await preflight(tg.baseUrl, app);
    assert.notEqual(pre.status, 204);
    assert.equal(pre.headers["access-control-allow-origin"], undefined);
    assert.equal(pre.headers["access-control-allow-methods"], undefined);

    const res = await connectGet(tg.baseUrl, { origin: app });
    assert.equal(res.status, 404);
    assert.equal(res.headers["access-control-allow-origin"], undefined);
    assert.equal(res.headers["access-control-expose-headers"], undefined);
    assert.equal(res.headers.vary, undefined);
  });
});
