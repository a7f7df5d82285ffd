import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { TestGateway } from "./helpers.js";
import { startTestGateway, unique } from "./helpers.js";
import { ok, rest } from "./rest-helpers.js";

let tg: TestGateway;
before(async () => {
  tg = await startTestGateway();
});
after(async () => {
  await tg.close();
});
const call = (method: string, path: string, body?: unknown, headers?: Record<string, string>) =>
  rest(tg.baseUrl, method, path, body, headers);

/** Asserts a 400 INVALID_ARGUMENT whose message matches `message`. */
async function invalid(answer: ReturnType<typeof call>, message: RegExp): Promise<void> {
  const { status, json } = await answer;
  assert.equal(status, 400, JSON.stringify(json));
  assert.equal(json.code, "invalid_argument");
  assert.match(json.message, message);
  assert.deepEqual(json.details, []);
}

describe("REST errors", () => {
  it("an unknown path, or a known path with another HTTP method, is 404 not_found", async () => {
    for (const [method, path] of [
      ["GET", "/api/nothing/here"],
      ["GET", "/api/entity/search/"],
      ["PUT", "/api/entity/search"],
      ["GET", "/api/entity/ref/acme/user"],
      ["GET", "/api/entity/ref/acme/user/ada/revert/more"],
    ]) {
      const res = await call(method!, path!);
      assert.equal(res.status, 404, `${method} ${path}`);
      assert.equal(res.json.code, "not_found");
    }
  });

  it("bad input is 400 invalid_argument naming the field, as on every door", async () => {
    await invalid(call("POST", "/api/entity/ref/a%20b/user/ada", { values: {} }), /^domain: /);
    await invalid(call("POST", `/api/entity/ref/${unique("rest")}/user/ada`, {}), /^values: /);
    await invalid(call("GET", "/api/entity/search?domain=acme&type=user&limit=0"), /^limit: /);
  });

  it("an unknown query parameter is 400 naming it", async () => {
    await invalid(
      call("GET", "/api/entity/search?domain=acme&type=user&colour=red"),
      /unknown query parameter "colour"/,
    );
    await invalid(call("GET", "/api/entity/search?domain=acme&type=user&sort.colour=red"), /"sort\.colour"/);
  });

  it("query values are checked against the field type", async () => {
    const search = "/api/entity/search?domain=acme&type=user";
    await invalid(call("GET", `${search}&limit=ten`), /query parameter "limit": expected an integer/);
    await invalid(call("GET", `${search}&limit=99999999999`), /limit/);
    await invalid(call("GET", `${search}&sort.desc=yes`), /query parameter "sort\.desc": expected true or false/);
    await invalid(call("GET", `${search}&sort=name`), /query parameter "sort" is a message/);
    await invalid(call("GET", `${search}&limit=1&limit=2`), /"limit" is given more than once/);
    await invalid(call("GET", "/api/events/search?domain=acme&type=user&minTime=yesterday"), /"minTime"/);
  });

  it("a query parameter cannot fill a field the path or the body fills", async () => {
    await invalid(call("GET", "/api/entity/ref/acme/user/ada?key=bob"), /"key": the field is bound by the path/);
    await invalid(
      call("POST", `/api/entity/ref/${unique("rest")}/user/ada?values=x`, { values: {} }),
      /"values": every field not in the path goes in the request body/,
    );
  });

  it("an unknown body field is 400 naming it; so is a body that is not JSON", async () => {
    const ref = `/api/entity/ref/${unique("rest")}/user/ada`;
    await invalid(call("POST", ref, { values: {}, colour: "red" }), /colour/);
    await invalid(call("POST", ref, "{not json"), /not valid JSON/);
    await invalid(call("POST", ref, { values: {}, expectedVersion: "one" }), /expected_version|expectedVersion/);
  });

  it("a path field repeated in the body must agree with the path", async () => {
    const domain = unique("rest");
    const ref = `/api/entity/ref/${domain}/user/ada`;
    await invalid(call("POST", ref, { domain: "other", values: {} }), /^domain: /);
    const same = await ok(call("POST", ref, { domain, type: "user", key: "ada", values: { ok: true } }));
    assert.equal(same.event.entity.key, "ada");
  });

  it("a route without a body refuses one", async () => {
    await invalid(call("DELETE", `/api/cache/ref/${unique("rest")}/k`, { value: 1 }), /takes no request body/);
  });

  it("a bad timeout header is 400; a good one is passed on", async () => {
    const search = `/api/entity/search?domain=${unique("rest")}&type=user`;
    await invalid(call("GET", search, undefined, { "grpc-timeout": "soon" }), /grpc timeout/);
    await invalid(call("GET", search, undefined, { "connect-timeout-ms": "-1" }), /connect timeout/);
    await ok(call("GET", search, undefined, { "grpc-timeout": "10S" }));
    await ok(call("GET", search, undefined, { "connect-timeout-ms": "10000" }));
  });

  it("a body past STATEGATE_MAX_REQUEST_BYTES is resource_exhausted", async () => {
    const small = await startTestGateway({ STATEGATE_MAX_REQUEST_BYTES: "1024" });
    try {
      const res = await rest(small.baseUrl, "POST", `/api/entity/ref/${unique("rest")}/user/ada`, {
        values: { big: "x".repeat(2048) },
      });
      assert.equal(res.status, 429);
      assert.equal(res.json.code, "resource_exhausted");
    } finally {
      await small.close();
    }
  });
});

describe("REST error responses", () => {
  it("name the call's request id once, also for a stream that fails before its first event", async () => {
    const res = await fetch(
      `${tg.baseUrl}/api/events/stream?domain=${unique("rid")}&type=*&consumerGroup=g&afterPosition=0`,
      { headers: { "x-request-id": "rid-1" } },
    );
    assert.equal(res.status, 400);
    assert.equal(res.headers.get("x-request-id"), "rid-1");
    await res.text();
  });
});
