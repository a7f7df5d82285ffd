import assert from "node:assert/strict";
import http2 from "node:http2";
import { after, before, describe, it } from "node:test";
import type { TestGateway } from "./helpers.js";
import { startTestGateway, unique } from "./helpers.js";
import { rest } from "./rest-helpers.js";

// A misspelt field must never be dropped silently: `expectVersion` (for
// expectedVersion) would turn a guarded write into an unguarded one.

let tg: TestGateway;
before(async () => {
  tg = await startTestGateway();
});
after(async () => {
  await tg.close();
});

/** A gRPC / gRPC-Web message frame. */
function frame(payload: string, flags = 0): Uint8Array<ArrayBuffer> {
  const bytes = Buffer.from(payload);
  const out = new Uint8Array(5 + bytes.length);
  out[0] = flags;
  new DataView(out.buffer).setUint32(1, bytes.length);
  out.set(bytes, 5);
  return out;
}

/** The grpc-status and grpc-message a gRPC-Web answer carries, in its headers or its trailer frame. */
async function grpcWebStatus(res: Response): Promise<{ status: string | null; message: string | null }> {
  const status = res.headers.get("grpc-status");
  if (status !== null) return { status, message: decodeURIComponent(res.headers.get("grpc-message") ?? "") };
  const body = Buffer.from(await res.arrayBuffer());
  for (let at = 0; at + 5 <= body.length; ) {
    const length = body.readUInt32BE(at + 1);
    const data = body.subarray(at + 5, at + 5 + length);
    if (body[at]! & 0x80) {
      const trailers = Object.fromEntries(
        data
          .toString()
          .split("\r\n")
          .filter(Boolean)
          .map((line) => [
            line.slice(0, line.indexOf(":")).trim().toLowerCase(),
            line.slice(line.indexOf(":") + 1).trim(),
          ]),
      );
      return { status: trailers["grpc-status"] ?? null, message: decodeURIComponent(trailers["grpc-message"] ?? "") };
    }
    at += 5 + length;
  }
  return { status: null, message: null };
}

/** One gRPC call over HTTP/2 with a JSON body (application/grpc+json). */
function grpcJson(port: number, path: string, json: string): Promise<{ status: string; message: string }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on("error", reject);
    const stream = session.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc+json",
      te: "trailers",
    });
    let headers: http2.IncomingHttpHeaders = {};
    stream.on("response", (h) => {
      headers = h;
    });
    stream.on("trailers", (t) => {
      headers = { ...headers, ...t };
    });
    stream.resume();
    stream.on("end", () => {
      session.close();
      resolve({
        status: String(headers["grpc-status"]),
        message: decodeURIComponent(String(headers["grpc-message"] ?? "")),
      });
    });
    stream.on("error", reject);
    stream.end(frame(json));
  });
}

describe("unknown JSON fields", () => {
  let domain: string;
  before(async () => {
    domain = unique("typo");
    await tg.client().entity.set({ domain, type: "user", key: "k", values: { a: 1 } });
  });

  /** The entity must still be at version 1 with its first values: nothing was written. */
  async function unchanged() {
    const { entity } = await tg.client().entity.get({ domain, type: "user", key: "k" });
    assert.equal(entity?.version, 1n);
    assert.deepEqual(entity?.values, { a: 1 });
  }

  const typo = () => JSON.stringify({ domain, type: "user", key: "k", values: { a: 2 }, expectVersion: "99" });

  it("Connect JSON refuses a misspelt field with INVALID_ARGUMENT naming it, and writes nothing", async () => {
    const res = await fetch(`${tg.baseUrl}/stategate.v1.EntityService/Set`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: typo(),
    });
    const body = (await res.json()) as { code: string; message: string };
    assert.equal(res.status, 400, JSON.stringify(body));
    assert.equal(body.code, "invalid_argument");
    assert.match(body.message, /expectVersion/);
    await unchanged();
  });

  it("a misspelt nested field is refused as well", async () => {
    const res = await fetch(`${tg.baseUrl}/stategate.v1.EntityService/Search`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ domain, type: "user", sort: { feild: "a" } }),
    });
    const body = (await res.json()) as { code: string; message: string };
    assert.equal(body.code, "invalid_argument", JSON.stringify(body));
    assert.match(body.message, /feild/);
  });

  it("gRPC-Web JSON refuses it with INVALID_ARGUMENT (3)", async () => {
    const res = await fetch(`${tg.baseUrl}/stategate.v1.EntityService/Set`, {
      method: "POST",
      headers: { "content-type": "application/grpc-web+json", "x-grpc-web": "1" },
      body: frame(typo()),
    });
    const { status, message } = await grpcWebStatus(res);
    assert.equal(status, "3", message ?? "");
    assert.match(message ?? "", /expectVersion/);
    await unchanged();
  });

  it("gRPC with a JSON codec refuses it with INVALID_ARGUMENT (3)", async () => {
    const { status, message } = await grpcJson(tg.gateway.port, "/stategate.v1.EntityService/Set", typo());
    assert.equal(status, "3", message);
    assert.match(message, /expectVersion/);
    await unchanged();
  });

  it("a Connect JSON stream request with an unknown field is refused before it subscribes", async () => {
    const res = await fetch(`${tg.baseUrl}/stategate.v1.EventService/Stream`, {
      method: "POST",
      headers: { "content-type": "application/connect+json", "connect-protocol-version": "1" },
      body: frame(JSON.stringify({ domain, type: "*", afterPosision: "0" })),
      signal: AbortSignal.timeout(5_000),
    });
    const body = Buffer.from(await res.arrayBuffer());
    // The end-of-stream frame (flag 2) holds the error.
    assert.equal(body[0]! & 0x02, 0x02, "the only frame ends the stream");
    const end = JSON.parse(body.subarray(5, 5 + body.readUInt32BE(1)).toString()) as {
      error?: { code: string; message: string };
    };
    assert.equal(end.error?.code, "invalid_argument", JSON.stringify(end));
    assert.match(end.error?.message ?? "", /afterPosision/);
  });

  it("REST and GraphQL refuse the same typo, as before", async () => {
    const r = await rest(tg.baseUrl, "POST", `/api/entity/ref/${domain}/user/k`, {
      values: { a: 2 },
      expectVersion: "99",
    });
    assert.equal(r.status, 400, JSON.stringify(r.json));
    const g = await fetch(`${tg.baseUrl}/api/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        query: `mutation { entitySet(domain: "${domain}", type: "user", key: "k", values: { a: 2 }, expectVersion: "99") { event { version } } }`,
      }),
    });
    const gql = (await g.json()) as { errors?: { message: string }[] };
    assert.ok(
      gql.errors?.some((e) => /expectVersion/.test(e.message)),
      JSON.stringify(gql),
    );
    await unchanged();
  });

  it("known fields by either JSON name (lowerCamelCase or proto name) still work", async () => {
    const res = await fetch(`${tg.baseUrl}/stategate.v1.EntityService/Edit`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ domain, type: "user", key: "k2", values: { b: 1 }, expected_version: "0" }),
    });
    // k2 does not exist: the request parsed (no INVALID_ARGUMENT) and reached the handler.
    assert.equal(((await res.json()) as { code: string }).code, "not_found");
  });
});
