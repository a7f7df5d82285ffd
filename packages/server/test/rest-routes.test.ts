import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { DescMethod, MessageInitShape } from "@bufbuild/protobuf";
import { create, fromJson } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { CacheService, EntityService, EventService, HttpRuleSchema, MutexService, PeerService } from "@stategate/api";
import type { HttpBinding } from "../src/front/rest/index.js";
import { createRouteTable, httpBindings } from "../src/front/rest/index.js";
import { queryToJson } from "../src/front/rest/query.js";
import { decodeCapture, matchTemplate, parseTemplate } from "../src/front/rest/template.js";

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
