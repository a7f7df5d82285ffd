import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import type { DescMethod, MessageInitShape } from "@bufbuild/protobuf";
import { create, createRegistry, fromJson, toJson } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import {
  CacheService,
  EntityService,
  EntityServiceGetResponseSchema,
  EventService,
  HttpRuleSchema,
  MutexService,
  PeerService,
} from "@stategate/api";
import pino from "pino";
import type { HttpBinding } from "../src/front/rest/index.js";
import { createRouteTable, httpBindings } from "../src/front/rest/index.js";
import { queryToJson } from "../src/front/rest/query.js";
import { decodeRequest } from "../src/front/rest/request.js";
import { responseJson, toConnectError, writeError, writeJson } from "../src/front/rest/response.js";
import { decodeCapture, matchTemplate, parseTemplate } from "../src/front/rest/template.js";
import { rest } from "./rest-helpers.js";

const services = [EntityService, EventService, PeerService, CacheService, MutexService];

/** A binding of EntityService.Get (request fields domain, type, key) to the given rule. */
function binding(
  rule: MessageInitShape<typeof HttpRuleSchema>,
  method: DescMethod = EntityService.method.get,
): HttpBinding {
  return { method, rule: create(HttpRuleSchema, rule) };
}

describe("REST route table", () => {
  it("is derived from the google.api.http options: one route per rule", () => {
    const table = createRouteTable(httpBindings(services));
    const routes = table.routes.map((r) => `${r.httpMethod} ${r.template.source}`);
    assert.equal(routes.length, 16);
    assert.ok(routes.includes("PUT /api/entity/ref/{domain}/{type}/{key}/revert"));
    assert.ok(routes.includes("GET /api/events/stream"));
    const found = table.match("GET", "/api/events/ref/acme/user/ada/123");
    assert.equal(found?.route.method, EventService.method.get);
    assert.deepEqual(found?.captures, [["acme"], ["user"], ["ada"], ["123"]]);
  });

  it("two rules with the same HTTP method and an equivalent template stop start-up, naming both methods", () => {
    const clash = [
      binding({ pattern: { case: "get", value: "/x/{domain}/{key}" } }),
      binding({ pattern: { case: "get", value: "/x/{domain=*}/{key}" } }, CacheService.method.get),
    ];
    assert.throws(
      () => createRouteTable(clash),
      (err: Error) =>
        err.message.includes("stategate.v1.EntityService.Get") &&
        err.message.includes("stategate.v1.CacheService.Get") &&
        err.message.includes("GET /x/*/*"),
    );
    // The same template under another HTTP method, or with a verb, is another route.
    createRouteTable([
      clash[0]!,
      binding({ pattern: { case: "delete", value: "/x/{domain}/{key}" } }, CacheService.method.del),
      binding({ pattern: { case: "get", value: "/x/{domain}/{key}:peek" } }, CacheService.method.get),
    ]);
  });

  it("additional_bindings and custom methods add routes", () => {
    const table = createRouteTable([
      binding({
        pattern: { case: "get", value: "/v1/{domain}/{type}/{key}" },
        additionalBindings: [
          { pattern: { case: "custom", value: { kind: "HEAD", path: "/v2/{key}" } } },
          { pattern: { case: "post", value: "/v2/{domain}:get" }, body: "*" },
        ],
      }),
    ]);
    assert.equal(table.routes.length, 3);
    assert.ok(table.match("HEAD", "/v2/k"));
    assert.equal(table.match("POST", "/v2/acme:get")?.route.body, "*");
    assert.equal(table.match("POST", "/v2/acme"), undefined, "the verb is required where declared");
  });

  it("rules that cannot be served are refused at start-up, naming the method", () => {
    const cases: [MessageInitShape<typeof HttpRuleSchema>, RegExp][] = [
      [{ pattern: { case: "get", value: "/x/{domain}" }, body: "*" }, /GET cannot have a body/],
      [{ pattern: { case: "get", value: "/x/{colour}" } }, /no field colour/],
      [{ pattern: { case: "post", value: "/x/{domain}" }, body: "domain" }, /also bound by the path/],
      [{ pattern: { case: "get", value: "/x/**/y" } }, /\*\* may only be the last segment/],
      [{ pattern: { case: "get", value: "x/y" } }, /must start with \//],
      [{ pattern: { case: "get", value: "/x/{domain}/{domain}" } }, /bound twice/],
      [{}, /no pattern/],
      [
        {
          pattern: { case: "get", value: "/a/{key}" },
          additionalBindings: [
            {
              pattern: { case: "get", value: "/b/{key}" },
              additionalBindings: [{ pattern: { case: "get", value: "/c" } }],
            },
          ],
        },
        /additional_bindings cannot nest/,
      ],
    ];
    for (const [rule, message] of cases) {
      assert.throws(
        () => createRouteTable([binding(rule)]),
        (err: Error) => message.test(err.message) && err.message.includes("stategate.v1.EntityService.Get"),
        message.source,
      );
    }
  });
});

describe("REST path templates", () => {
  it("match the raw path, then decode each capture once", () => {
    const t = parseTemplate("/v1/{name=shelves/*/books/*}:cancel");
    assert.equal(t.verb, "cancel");
    const captures = matchTemplate(t, "/v1/shelves/s1/books/a%2Fb:cancel");
    assert.deepEqual(captures, [["shelves", "s1", "books", "a%2Fb"]]);
    assert.equal(decodeCapture(captures[0]!, true, "name"), "shelves/s1/books/a%2Fb", "multi-segment keeps %2F");
    assert.equal(matchTemplate(t, "/v1/shelves/s1/books/b"), undefined);
  });

  it("** takes the rest of the path; a single-segment variable decodes %2F", () => {
    const t = parseTemplate("/files/{path=**}");
    assert.deepEqual(matchTemplate(t, "/files/a/b%20c/d"), [["a", "b%20c", "d"]]);
    assert.equal(decodeCapture(["a", "b%20c", "d"], true, "path"), "a/b c/d");
    assert.equal(decodeCapture(["a%2Fb"], false, "key"), "a/b");
    assert.throws(() => decodeCapture(["%E0%A4%A"], false, "key"), /key: /);
  });

  it("without a declared verb, a colon is part of the segment", () => {
    const t = parseTemplate("/k/{key}");
    assert.deepEqual(matchTemplate(t, "/k/user:123"), [["user:123"]]);
    assert.deepEqual(matchTemplate(t, "/k/http:%2F%2Fx"), [["http:%2F%2Fx"]]);
    assert.equal(matchTemplate(t, "/k/"), undefined, "an empty segment binds nothing");
  });
});

describe("REST query parameters", () => {
  const read = (query: string) =>
    fromJson(
      FileDescriptorProtoSchema,
      queryToJson(FileDescriptorProtoSchema, new URLSearchParams(query), () => undefined),
    );

  it("fill repeated fields by repeating the key, nested fields by dots, enums by name or number", () => {
    const file = read("name=a.proto&dependency=x.proto&dependency=y.proto&public_dependency=1&publicDependency=0");
    assert.deepEqual(file.dependency, ["x.proto", "y.proto"]);
    assert.deepEqual(file.publicDependency, [1, 0]);
    const nested = read("options.javaPackage=com.x&options.deprecated=true&options.optimize_for=CODE_SIZE");
    assert.equal(nested.options?.javaPackage, "com.x");
    assert.equal(nested.options?.deprecated, true);
    assert.equal(nested.options?.optimizeFor, 2);
    assert.equal(read("options.optimizeFor=3").options?.optimizeFor, 3);
  });

  it("refuse repeated messages and unknown keys", () => {
    assert.throws(() => read("messageType=x"), /repeated message/);
    assert.throws(() => read("options.nothing=1"), /unknown query parameter "options\.nothing"/);
  });
});

describe('REST rules with body: "field" and response_body', () => {
  const table = createRouteTable([
    binding(
      { pattern: { case: "post", value: "/v1/{domain}/{type}/{key}/values" }, body: "values" },
      EntityService.method.set,
    ),
    binding({ pattern: { case: "get", value: "/v1/{domain}/{type}/{key}" }, responseBody: "entity" }),
  ]);
  const registry = createRegistry(...services.map((s) => s.file));
  let server: http.Server;
  let baseUrl: string;

  // A bare HTTP server that reads requests and writes answers with the REST door's own
  // functions. In place of the services, Set answers the request message it was given
  // (what its handler would get) and Get answers an entity built from the path.
  before(async () => {
    server = http.createServer(async (req, res) => {
      const url = req.url ?? "/";
      const q = url.indexOf("?");
      const match = table.match(req.method ?? "", q < 0 ? url : url.slice(0, q));
      if (!match) return void res.writeHead(404).end();
      try {
        const request = await decodeRequest(match, q < 0 ? "" : url.slice(q + 1), req, 1 << 20, registry);
        if (match.route.method === EntityService.method.set) {
          writeJson(res, 200, toJson(match.route.method.input, request, { registry }), null);
        } else {
          const { domain, type, key } = request as unknown as { domain: string; type: string; key: string };
          const output = create(EntityServiceGetResponseSchema, {
            entity: { domain, type, key, values: { name: "Ada" }, version: 7n },
          });
          writeJson(res, 200, responseJson(match.route, output, registry), null);
        }
      } catch (err) {
        writeError(res, toConnectError(err, pino({ level: "silent" })));
      }
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  it('body: "values" fills that one field from the whole body; the query fills the others', async () => {
    assert.equal(
      table.match("POST", "/v1/acme/user/ada/values")?.route.body,
      EntityService.method.set.input.field.values,
    );
    const res = await rest(baseUrl, "POST", "/v1/acme/user/ada/values?expectedVersion=3", {
      name: "Ada",
      langs: ["en"],
    });
    assert.equal(res.status, 200, JSON.stringify(res.json));
    assert.deepEqual(res.json, {
      domain: "acme",
      type: "user",
      key: "ada",
      values: { name: "Ada", langs: ["en"] },
      expectedVersion: "3",
    });
    // The body is the field, not the message: a "values" key in it is a key of the Struct.
    const nested = await rest(baseUrl, "POST", "/v1/acme/user/ada/values", { values: { name: "Ada" } });
    assert.deepEqual(nested.json.values, { values: { name: "Ada" } });
  });

  it("a query parameter for the body field is 400 naming it", async () => {
    const res = await rest(baseUrl, "POST", "/v1/acme/user/ada/values?values=x", { name: "Ada" });
    assert.equal(res.status, 400, JSON.stringify(res.json));
    assert.equal(res.json.code, "invalid_argument");
    assert.match(res.json.message, /"values": the field goes in the request body/);
    // Nor can the query reach inside it: a Struct has no fields to name.
    const inside = await rest(baseUrl, "POST", "/v1/acme/user/ada/values?values.name=x", { name: "Ada" });
    assert.equal(inside.status, 400, JSON.stringify(inside.json));
    assert.match(inside.json.message, /"values\.name"/);
  });

  it("response_body answers with that field alone, in the proto3 JSON mapping", async () => {
    const res = await rest(baseUrl, "GET", "/v1/acme/user/ada");
    assert.equal(res.status, 200, JSON.stringify(res.json));
    assert.deepEqual(res.json, { domain: "acme", type: "user", key: "ada", values: { name: "Ada" }, version: "7" });
  });
});
