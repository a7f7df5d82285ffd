import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { CacheService, EntityService, EventService, MutexService, PeerService } from "@stategate/api";
import { createRouteTable, httpBindings } from "../src/front/rest/index.js";
import type { TestGateway } from "./helpers.js";
import { repoRoot, startTestGateway, unique, until } from "./helpers.js";
import { metric, scrape } from "./prometheus.js";
import { ok, rest } from "./rest-helpers.js";

let tg: TestGateway;
before(async () => {
  tg = await startTestGateway();
});
const call = (method: string, path: string, body?: unknown, headers?: Record<string, string>) =>
  rest(tg.baseUrl, method, path, body, headers);
after(async () => {
  await tg.close();
});

describe("REST: every route of every service", () => {
  it("EntityService: Set with a JSON body, Get, Edit, Revert, Del", async () => {
    const domain = unique("rest");
    const ref = `/api/entity/ref/${domain}/user/ada`;
    const set = await ok(call("POST", ref, { values: { name: "Ada", langs: ["en"], address: { city: "Lyon" } } }));
    assert.equal(set.event.version, "1", "int64 as a string");
    assert.equal(set.event.operation, "EVENT_OPERATION_SET", "enums by name");
    assert.equal(set.event.method, "/stategate.v1.EntityService/Set", "the protobuf method name, whatever the door");
    assert.deepEqual(set.event.entity, {
      domain,
      type: "user",
      key: "ada",
      values: { name: "Ada", langs: ["en"], address: { city: "Lyon" } },
      version: "1",
    });

    const got = await ok(call("GET", ref));
    assert.deepEqual(got.entity, set.event.entity, "Get reads back what Set wrote");

    const edit = await ok(call("PATCH", ref, { values: { role: "admin" }, expectedVersion: "1" }));
    assert.equal(edit.event.version, "2");
    assert.deepEqual(edit.event.entity.values, {
      name: "Ada",
      langs: ["en"],
      address: { city: "Lyon" },
      role: "admin",
    });
    const stale = await call("PATCH", ref, { values: { role: "x" }, expectedVersion: "1" });
    assert.equal(stale.status, 409);
    assert.equal(stale.json.code, "aborted");

    const reverted = await ok(call("PUT", `${ref}/revert`, { id: set.event.id }));
    assert.equal(reverted.event.version, "3");
    assert.equal(reverted.event.operation, "EVENT_OPERATION_REVERT");
    assert.deepEqual(reverted.event.entity.values, set.event.entity.values);

    const del = await ok(call("DELETE", ref));
    assert.equal(del.event.operation, "EVENT_OPERATION_DELETE");
    const gone = await call("GET", ref);
    assert.equal(gone.status, 404);
    assert.equal(gone.json.code, "not_found");
    assert.equal(typeof gone.json.message, "string");
    assert.deepEqual(gone.json.details, []);
  });

  it("EntityService: Search with filter, sort and limit in the query", async () => {
    const domain = unique("rest-search");
    for (const [key, n, role] of [
      ["a", 1, "admin"],
      ["b", 2, "user"],
      ["c", 3, "admin"],
      ["d", 4, "admin"],
    ] as const) {
      await ok(call("POST", `/api/entity/ref/${domain}/user/${key}`, { values: { n, role } }));
    }
    const filter = encodeURIComponent(JSON.stringify({ role: "admin" }));
    const found = await ok(
      call("GET", `/api/entity/search?domain=${domain}&type=user&filter=${filter}&sort.field=n&sort.desc=true&limit=2`),
    );
    assert.deepEqual(
      found.entities.map((e: { key: string }) => e.key),
      ["d", "c"],
    );
    // Field names as in the proto work too, and so do offsets.
    const next = await ok(
      call("GET", `/api/entity/search?domain=${domain}&type=user&filter=${filter}&sort.field=n&offset=1&limit=1`),
    );
    assert.deepEqual(
      next.entities.map((e: { key: string }) => e.key),
      ["c"],
    );
  });

  it("EventService: Search by key, minTime and maxTime; Get", async () => {
    const domain = unique("rest-events");
    const first = await ok(call("POST", `/api/entity/ref/${domain}/user/ada`, { values: { v: 1 } }));
    const second = await ok(call("POST", `/api/entity/ref/${domain}/user/ada`, { values: { v: 2 } }));
    await ok(call("POST", `/api/entity/ref/${domain}/user/bob`, { values: { v: 3 } }));
    const byKey = await ok(call("GET", `/api/events/search?domain=${domain}&type=user&key=ada`));
    assert.deepEqual(byKey.events.map((e: { id: string }) => e.id).sort(), [first.event.id, second.event.id].sort());
    const t = second.event.time as string;
    const window = await ok(
      call("GET", `/api/events/search?domain=${domain}&type=user&key=ada&minTime=${t}&maxTime=${t}`),
    );
    assert.deepEqual(
      window.events.map((e: { id: string }) => e.id),
      [second.event.id],
    );
    const snake = await ok(call("GET", `/api/events/search?domain=${domain}&type=user&key=ada&max_time=${t}&limit=1`));
    assert.equal(snake.events.length, 1);

    const got = await ok(call("GET", `/api/events/ref/${domain}/user/ada/${first.event.id}`));
    assert.deepEqual(got.event, first.event);
    const other = await call("GET", `/api/events/ref/${domain}/user/bob/${first.event.id}`);
    assert.equal(other.status, 404);
    assert.equal(other.json.code, "not_found");
  });

  it("MutexService: Lock, Lock again (409), Unlock, Lock again", async () => {
    const domain = unique("rest-mutex");
    const lock = `/api/mutex/ref/${domain}/invoice-42/lock`;
    const exp = new Date(Date.now() + 60_000).toISOString();
    const { token } = await ok(call("POST", lock, { exp }));
    assert.equal(typeof token, "string");
    const held = await call("POST", lock, { exp });
    assert.equal(held.status, 409);
    assert.equal(held.json.code, "already_exists");
    const wrong = await call("POST", `/api/mutex/ref/${domain}/invoice-42/unlock`, { token: "not-the-token" });
    assert.equal(wrong.status, 412);
    assert.equal(wrong.json.code, "failed_precondition");
    assert.deepEqual(await ok(call("POST", `/api/mutex/ref/${domain}/invoice-42/unlock`, { token })), {});
    const again = await ok(call("POST", lock, { exp }));
    assert.notEqual(again.token, token);
  });

  it("CacheService: Set (PUT with a body), Get, Del", async () => {
    const domain = unique("rest-cache");
    const ref = `/api/cache/ref/${domain}/greeting`;
    const exp = new Date(Date.now() + 60_000).toISOString();
    await ok(call("PUT", ref, { value: { text: "hello", n: 1 }, exp }));
    const { cache } = await ok(call("GET", ref));
    assert.deepEqual(cache.value, { text: "hello", n: 1 }, "a Value as plain JSON");
    assert.match(cache.exp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/, "a Timestamp in RFC 3339");
    assert.equal(Date.parse(cache.exp), Date.parse(exp));
    await ok(call("DELETE", ref));
    const missing = await call("GET", ref);
    assert.equal(missing.status, 404);
    assert.equal(missing.json.code, "not_found");
  });

  it("PeerService: Broadcast", async () => {
    const domain = unique("rest-peer");
    const sent = await ok(
      call("POST", "/api/peers/broadcast", { domain, channel: "chat", type: "msg", body: { hi: 1 } }),
    );
    assert.equal(sent.message.domain, domain);
    assert.deepEqual(sent.message.body, { hi: 1 });
    assert.match(sent.message.time, /^\d+$/);
  });
});

/** How the route-table test calls one route: its query and body, and what it keeps from the answer. */
interface RouteCall {
  route: string;
  query?: string;
  body?: () => unknown;
  keep?: (json: any) => void;
}

describe("REST: the route table, route by route", () => {
  it("every route built from the descriptors is served over plain HTTP by its own method", async () => {
    const services = [EntityService, EventService, PeerService, CacheService, MutexService];
    const table = createRouteTable(httpBindings(services));
    const domain = unique("rest-table");
    const exp = new Date(Date.now() + 60_000).toISOString();
    // Path variables by field name; the id and the token come from earlier answers.
    const vars: Record<string, string> = { domain, type: "user", key: "ada", id: "" };
    let token = "";
    // One call per route, in an order where each succeeds: Revert and event Get need the
    // Set's event id, Del comes last for the entity, Unlock needs the Lock's token.
    const calls: RouteCall[] = [
      {
        route: "POST /api/entity/ref/{domain}/{type}/{key}",
        body: () => ({ values: { n: 1 } }),
        keep: (json) => {
          vars.id = json.event.id;
        },
      },
      { route: "PATCH /api/entity/ref/{domain}/{type}/{key}", body: () => ({ values: { n: 2 } }) },
      { route: "GET /api/entity/ref/{domain}/{type}/{key}" },
      { route: "GET /api/entity/search", query: `domain=${domain}&type=user` },
      { route: "PUT /api/entity/ref/{domain}/{type}/{key}/revert", body: () => ({ id: vars.id }) },
      { route: "GET /api/events/search", query: `domain=${domain}&type=user&key=ada` },
      { route: "GET /api/events/ref/{domain}/{type}/{key}/{id}" },
      { route: "GET /api/events/stream", query: `domain=${domain}&type=*&afterPosition=0` },
      { route: "DELETE /api/entity/ref/{domain}/{type}/{key}" },
      {
        route: "POST /api/peers/broadcast",
        body: () => ({ domain, channel: "chat", type: "msg", body: { hi: 1 } }),
      },
      { route: "GET /api/peers/stream", query: `domain=${domain}&channel=*&type=*` },
      { route: "PUT /api/cache/ref/{domain}/{key}", body: () => ({ value: "v", exp }) },
      { route: "GET /api/cache/ref/{domain}/{key}" },
      { route: "DELETE /api/cache/ref/{domain}/{key}" },
      {
        route: "POST /api/mutex/ref/{domain}/{key}/lock",
        body: () => ({ exp }),
        keep: (json) => {
          token = json.token;
        },
      },
      { route: "POST /api/mutex/ref/{domain}/{key}/unlock", body: () => ({ token }) },
    ];
    const name = (r: (typeof table.routes)[number]) => `${r.httpMethod} ${r.template.source}`;
    assert.deepEqual(
      calls.map((c) => c.route).sort(),
      table.routes.map(name).sort(),
      "one call per route of the table: a new google.api.http rule needs one here",
    );

    const port = tg.gateway.metricsPort!;
    for (const call of calls) {
      const route = table.routes.find((r) => name(r) === call.route)!;
      const streaming = route.method.methodKind === "server_streaming";
      // Counted by the RPC stack's own metrics, under the method the table names, as a REST call.
      const labels = {
        service: route.method.parent.typeName,
        method: route.method.name,
        door: "rest",
        code: streaming ? "Canceled" : "OK",
      };
      const counted = async () => metric(await scrape(port), "stategate_requests_total", labels);
      const before = await counted();
      const path = route.template.source.replace(/\{([\w.]+)(=[^}]*)?\}/g, (_, field: string) => {
        assert.ok(vars[field], `${call.route}: a value for {${field}}`);
        return encodeURIComponent(vars[field]!);
      });
      const url = call.query ? `${path}?${call.query}` : path;
      if (streaming) {
        const abort = new AbortController();
        const res = await fetch(`${tg.baseUrl}${url}`, { signal: abort.signal });
        assert.equal(res.status, 200, `${call.route}: ${res.status}`);
        assert.equal(res.headers.get("content-type"), "text/event-stream; charset=utf-8", call.route);
        abort.abort();
      } else {
        const answer = await rest(tg.baseUrl, route.httpMethod, url, call.body?.());
        assert.equal(answer.status, 200, `${call.route}: ${JSON.stringify(answer.json)}`);
        call.keep?.(answer.json);
      }
      await until(async () => (await counted()) === before + 1).catch(() =>
        assert.fail(`${call.route} was not counted as one ${labels.service}/${labels.method} REST call`),
      );
    }
  });
});

describe("REST: paths are percent-decoded exactly once", () => {
  for (const key of ["a/b", "user:123", "http://x", "100%", "é"]) {
    it(`the key ${JSON.stringify(key)} reaches the handler intact`, async () => {
      const domain = unique("rest-keys");
      const ref = `/api/entity/ref/${domain}/user/${encodeURIComponent(key)}`;
      const written = await ok(call("POST", ref, { values: { key } }));
      assert.equal(written.event.entity.key, key);
      const got = await ok(call("GET", ref));
      assert.equal(got.entity.key, key);
      const grpc = await tg.client({ protocol: "grpc" }).entity.get({ domain, type: "user", key });
      assert.deepEqual(grpc.entity?.values, { key });
    });
  }

  it("the unencoded a/b is another path: 404", async () => {
    const domain = unique("rest-keys");
    await ok(call("POST", `/api/entity/ref/${domain}/user/a%2Fb`, { values: {} }));
    const res = await call("GET", `/api/entity/ref/${domain}/user/a/b`);
    assert.equal(res.status, 404);
    assert.equal(res.json.code, "not_found");
  });

  it("http:%2F%2Fx is a key with a colon, not a verb", async () => {
    const domain = unique("rest-keys");
    const ref = `/api/entity/ref/${domain}/user/http:%2F%2Fx`;
    const written = await ok(call("POST", ref, { values: { url: true } }));
    assert.equal(written.event.entity.key, "http://x");
    const got = await ok(call("GET", ref));
    assert.equal(got.entity.key, "http://x");
    assert.deepEqual(got.entity.values, { url: true });
  });

  it("a raw colon (user:123, not user%3A123) is part of the key, and reads back over REST and gRPC", async () => {
    const domain = unique("rest-keys");
    const ref = `/api/entity/ref/${domain}/user/user:123`;
    assert.ok(new URL(ref, tg.baseUrl).pathname.endsWith("/user:123"), "fetch sends the colon as it is");
    const written = await ok(call("POST", ref, { values: { n: 123 } }));
    assert.equal(written.event.entity.key, "user:123");
    const got = await ok(call("GET", ref));
    assert.equal(got.entity.key, "user:123");
    assert.deepEqual(got.entity.values, { n: 123 });
    const grpc = await tg.client({ protocol: "grpc" }).entity.get({ domain, type: "user", key: "user:123" });
    assert.deepEqual(grpc.entity?.values, { n: 123 });
  });

  it("malformed percent-encoding is INVALID_ARGUMENT", async () => {
    const res = await call("GET", "/api/entity/ref/acme/user/%E0%A4%A");
    assert.equal(res.status, 400);
    assert.equal(res.json.code, "invalid_argument");
  });
});

describe("REST: int64 and headers", () => {
  it("an int64 time reads the same over REST as over gRPC", async () => {
    const domain = unique("rest-int64");
    const set = await ok(call("POST", `/api/entity/ref/${domain}/user/ada`, { values: {} }));
    const grpc = await tg.client({ protocol: "grpc" }).event.search({ domain, type: "user", key: "ada" });
    assert.equal(grpc.events.length, 1);
    assert.equal(set.event.time, grpc.events[0]!.time.toString());
    assert.equal(set.event.position, grpc.events[0]!.position.toString());
    assert.ok(BigInt(set.event.time) > 1_700_000_000_000_000_000n, "nanoseconds, past 2^53, not rounded");
  });

  it("x-request-id is passed on and echoed, on success and on error", async () => {
    const domain = unique("rest-rid");
    const okRes = await call("GET", `/api/entity/search?domain=${domain}&type=user`, undefined, {
      "x-request-id": "rest-test-1",
    });
    assert.equal(okRes.status, 200);
    assert.equal(okRes.headers.get("x-request-id"), "rest-test-1");
    const missing = await call("GET", `/api/entity/ref/${domain}/user/nobody`, undefined, {
      "x-request-id": "rest-test-2",
    });
    assert.equal(missing.status, 404);
    assert.equal(missing.headers.get("x-request-id"), "rest-test-2");
    const fresh = await call("GET", `/api/entity/search?domain=${domain}&type=user`);
    assert.match(fresh.headers.get("x-request-id") ?? "", /^[0-9a-f-]{36}$/);
  });
});

describe("the README's REST examples", () => {
  it("run with curl as shown", async () => {
    const readme = readFileSync(join(repoRoot, "README.md"), "utf8");
    const block = /```sh\n([\s\S]*?)```/.exec(readme.slice(readme.indexOf("\n## REST\n")))?.[1] ?? "";
    const commands = block
      .replace(/\\\n\s*/g, "")
      .split("\n")
      .filter((line) => line.trim() !== "");
    assert.equal(commands.length, 4, "Set, Get, Search and a stream");
    const outputs: string[] = [];
    for (const command of commands) {
      assert.match(command, /^curl /);
      // The stream never ends by itself: it gets a second, then curl stops (exit 28) with what it printed.
      const line = command
        .replaceAll("localhost:8080", `127.0.0.1:${tg.gateway.port}`)
        .replace("curl -N", "curl -N --max-time 1");
      const { stdout } = await promisify(execFile)("bash", ["-c", line]).catch(
        (err: { code?: number; stdout?: string }) => {
          assert.equal(err.code, 28, `${command} failed`);
          return { stdout: err.stdout ?? "" };
        },
      );
      outputs.push(stdout);
    }
    const [set, get, search, stream] = outputs as [string, string, string, string];
    assert.equal(JSON.parse(set).event.version, "1");
    assert.deepEqual(JSON.parse(get).entity.values, { name: "Ada", role: "admin" });
    assert.deepEqual(
      JSON.parse(search).entities.map((e: { key: string }) => e.key),
      ["ada"],
    );
    assert.match(stream, /^id: \d+\ndata: \{"event":\{.*"key":"ada"/);
  });
});
