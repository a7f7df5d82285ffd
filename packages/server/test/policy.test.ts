import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parseCount } from "@stategate/rego";
import { Code, ConnectError } from "@stategate/sdk-node";
import type { FormattedExecutionResult } from "graphql";
import { createClient as createWsClient } from "graphql-ws";
import type { JWTPayload } from "jose";
import { WebSocket } from "ws";
import type { GraphqlResult } from "./graphql-helpers.js";
import { graphqlSse, postGraphql } from "./graphql-helpers.js";
import type { TestGateway } from "./helpers.js";
import { repoRoot, startTestGateway, take, until } from "./helpers.js";
import type { TestIssuer } from "./test-issuer.js";
import { startTestIssuer } from "./test-issuer.js";

// Request and response policies (issue 6), over every door, with real tokens
// from a local JWKS. The policies are the README's own examples.

const b64 = (text: string) => Buffer.from(text).toString("base64");

/** The rego blocks of the README's Authorization section: [tenant request policy, stream response policy]. */
function readmePolicies(): string[] {
  const readme = readFileSync(join(repoRoot, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("## Authorization"), readme.indexOf("## Configuration"));
  return [...section.matchAll(/```rego\n([\s\S]*?)```/g)].map((m) => m[1] ?? "");
}

let issuer: TestIssuer;
/** A token of user "user" with `claims`, from the issuer the gateways trust. */
let sign: (claims: JWTPayload) => Promise<string>;
/** The environment of a gateway that trusts the issuer. */
let auth: Record<string, string>;

before(async () => {
  issuer = await startTestIssuer();
  sign = (claims) => issuer.sign({ sub: "user", ...claims });
  auth = issuer.env;
});

after(async () => {
  await issuer?.close();
});

/** The code name a call fails with, "OK" when it succeeds. */
async function codeOf(call: Promise<unknown>): Promise<string> {
  try {
    await call;
    return "OK";
  } catch (err) {
    return Code[ConnectError.from(err).code] as string;
  }
}

async function graphql(tg: TestGateway, token: string, query: string): Promise<GraphqlResult> {
  return (await postGraphql(tg.baseUrl, query, { headers: { authorization: `Bearer ${token}` } })).body;
}

async function rest(
  tg: TestGateway,
  token: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: Record<string, any> }> {
  const res = await fetch(`${tg.baseUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

describe("a tenant request policy", () => {
  let tg: TestGateway;
  let acme: string;

  before(async () => {
    const [tenant] = readmePolicies();
    assert.ok(tenant?.includes("input.claims.tenant == input.body.domain"), "the README's tenant policy");
    tg = await startTestGateway({ ...auth, STATEGATE_REQUEST_POLICY: b64(tenant!) });
    acme = await sign({ tenant: "acme" });
    // Data in the other tenant's domain, written by that tenant.
    const globex = tg.client({ protocol: "grpc", token: await sign({ tenant: "globex" }) });
    await globex.entity.set({ domain: "globex", type: "user", key: "ada", values: { secret: true } });
    globex.close();
  });
  after(() => tg?.close());

  it("over gRPC: reads and writes its own domain only", async () => {
    const client = tg.client({ protocol: "grpc", token: acme });
    try {
      assert.equal(
        await codeOf(client.entity.set({ domain: "acme", type: "user", key: "ada", values: { n: 1 } })),
        "OK",
      );
      assert.equal(await codeOf(client.entity.get({ domain: "acme", type: "user", key: "ada" })), "OK");
      assert.equal(await codeOf(client.entity.search({ domain: "acme", type: "user" })), "OK");
      // Each call starts when it is checked: a refusal waiting its turn would be an unhandled rejection.
      for (const call of [
        () => client.entity.set({ domain: "globex", type: "user", key: "ada", values: { n: 1 } }),
        () => client.entity.get({ domain: "globex", type: "user", key: "ada" }),
        () => client.entity.del({ domain: "globex", type: "user", key: "ada" }),
        () => client.event.search({ domain: "globex", type: "user" }),
      ]) {
        assert.equal(await codeOf(call()), "PermissionDenied");
      }
    } finally {
      client.close();
    }
  });

  it("over gRPC-Web and Connect too", async () => {
    for (const protocol of ["grpc-web", "connect"] as const) {
      const client = tg.client({ protocol, token: acme, httpVersion: "1.1" });
      try {
        assert.equal(await codeOf(client.entity.get({ domain: "acme", type: "user", key: "ada" })), "OK", protocol);
        assert.equal(
          await codeOf(client.entity.get({ domain: "globex", type: "user", key: "ada" })),
          "PermissionDenied",
          protocol,
        );
      } finally {
        client.close();
      }
    }
  });

  it("over REST: 403 for the other domain, and a query parameter cannot lead the policy astray", async () => {
    const ok = await rest(tg, acme, "POST", "/api/entity/ref/acme/user/bob", { values: { n: 2 } });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal((await rest(tg, acme, "GET", "/api/entity/ref/acme/user/bob")).status, 200);
    const write = await rest(tg, acme, "POST", "/api/entity/ref/globex/user/bob", { values: { n: 2 } });
    assert.equal(write.status, 403);
    assert.equal(write.body.code, "permission_denied");
    const read = await rest(tg, acme, "GET", "/api/entity/ref/globex/user/ada");
    assert.equal(read.status, 403);
    // The other domain in the path, the caller's own in the query: refused before any policy or
    // handler runs, so neither can see one domain while the other is read.
    const mixed = await rest(tg, acme, "GET", "/api/entity/ref/globex/user/ada?domain=acme");
    assert.equal(mixed.status, 400, JSON.stringify(mixed.body));
    assert.equal(mixed.body.code, "invalid_argument");
    assert.match(mixed.body.message, /query parameter "domain": the field is bound by the path/);
    assert.doesNotMatch(JSON.stringify(mixed.body), /secret/);
    const mixed2 = await rest(tg, acme, "GET", "/api/entity/search?domain=globex&domain=acme&type=user");
    assert.equal(mixed2.status, 400, JSON.stringify(mixed2.body));
    assert.equal(mixed2.body.code, "invalid_argument");
    assert.match(mixed2.body.message, /"domain" is given more than once/);
    const reversed = await rest(tg, acme, "GET", "/api/entity/search?domain=acme&domain=globex&type=user");
    assert.equal(reversed.status, 400, JSON.stringify(reversed.body));
  });

  it("over GraphQL: PERMISSION_DENIED for the other domain", async () => {
    const mine = await graphql(tg, acme, '{ entityGet(domain: "acme", type: "user", key: "ada") { entity { key } } }');
    assert.equal(mine.errors, undefined);
    assert.equal(mine.data?.entityGet.entity.key, "ada");
    const other = await graphql(
      tg,
      acme,
      '{ entityGet(domain: "globex", type: "user", key: "ada") { entity { values } } }',
    );
    assert.equal(other.errors?.[0]?.extensions?.code, "PERMISSION_DENIED");
    const write = await graphql(
      tg,
      acme,
      'mutation { entitySet(domain: "globex", type: "user", key: "eve", values: {}) { event { id } } }',
    );
    assert.equal(write.errors?.[0]?.extensions?.code, "PERMISSION_DENIED");
  });

  it("a REST event stream of another domain: 403 before it opens; of its own: 200", async () => {
    for (const accept of ["text/event-stream", "application/x-ndjson"]) {
      const denied = await fetch(`${tg.baseUrl}/api/events/stream?domain=globex&type=*`, {
        headers: { authorization: `Bearer ${acme}`, accept },
      });
      assert.equal(denied.status, 403, accept);
      assert.deepEqual(await denied.json(), {
        code: "permission_denied",
        message: "permission denied by the request policy",
        details: [],
      });
      const abort = new AbortController();
      const mine = await fetch(`${tg.baseUrl}/api/events/stream?domain=acme&type=*`, {
        headers: { authorization: `Bearer ${acme}`, accept },
        signal: abort.signal,
      });
      assert.equal(mine.status, 200, accept);
      abort.abort();
    }
    await until(() => tg.gateway.openStreams() === 0);
  });

  it("a GraphQL subscription of another domain: PERMISSION_DENIED, over SSE and WebSocket", async () => {
    const query = 'subscription { eventStream(domain: "globex", type: "*") { event { id } } }';
    const { text, results } = await graphqlSse(tg.baseUrl, query, { headers: { authorization: `Bearer ${acme}` } });
    assert.equal(results[0]?.errors?.[0]?.extensions?.code, "PERMISSION_DENIED", text);
    const ws = createWsClient({
      url: `${tg.baseUrl.replace(/^http/, "ws")}/api/graphql`,
      webSocketImpl: WebSocket,
      retryAttempts: 0,
      connectionParams: { authorization: `Bearer ${acme}` },
    });
    try {
      const first = await new Promise<FormattedExecutionResult>((resolve, reject) =>
        ws.subscribe({ query }, { next: resolve, error: reject, complete: () => {} }),
      );
      assert.equal(first.errors?.[0]?.extensions?.code, "PERMISSION_DENIED");
    } finally {
      await ws.dispose();
    }
    assert.equal(tg.gateway.openStreams(), 0);
  });

  it("sees the real subscription request: a stream of another domain is refused before it opens", async () => {
    const client = tg.client({ protocol: "grpc", token: acme });
    try {
      for (const domain of ["globex", "*"]) {
        await assert.rejects(take(client.event.stream({ domain, type: "*" }), 1, 5_000), (err) => {
          assert.equal(ConnectError.from(err).code, Code.PermissionDenied, String(err));
          return true;
        });
      }
      assert.equal(tg.gateway.openStreams(), 0);
      const events = client.event.stream({ domain: "acme", type: "*" });
      const got = take(events, 1);
      await until(() => tg.gateway.openStreams() === 1);
      await client.entity.set({ domain: "acme", type: "user", key: "cy", values: {} });
      assert.equal((await got)[0]?.event?.entity?.key, "cy");
    } finally {
      client.close();
    }
  });
});

describe("a response policy on streams", () => {
  let tg: TestGateway;

  before(async () => {
    const [, streams] = readmePolicies();
    assert.ok(streams?.includes("input.body.event.entity.domain"), "the README's stream policy");
    tg = await startTestGateway({ ...auth, STATEGATE_RESPONSE_POLICY: b64(streams!) });
  });
  after(() => tg?.close());

  it("a stream of every domain receives only the events of the caller's tenant, and goes on", async () => {
    const reader = tg.client({ protocol: "grpc", token: await sign({ tenant: "acme" }) });
    const acme = tg.client({ protocol: "connect", token: await sign({ tenant: "acme" }) });
    const globex = tg.client({ protocol: "connect", token: await sign({ tenant: "globex" }) });
    try {
      const got = take(reader.event.stream({ domain: "*", type: "*" }), 3);
      await until(() => tg.gateway.openStreams() === 1);
      await globex.entity.set({ domain: "globex", type: "t", key: "g1", values: {} });
      await acme.entity.set({ domain: "acme", type: "t", key: "a1", values: {} });
      await globex.entity.set({ domain: "globex", type: "t", key: "g2", values: {} });
      await globex.entity.set({ domain: "globex", type: "t", key: "g3", values: {} });
      await acme.entity.set({ domain: "acme", type: "t", key: "a2", values: {} });
      await acme.entity.set({ domain: "acme", type: "t", key: "a3", values: {} });
      const events = await got;
      assert.deepEqual(
        events.map((e) => `${e.event?.entity?.domain}/${e.event?.entity?.key}`),
        ["acme/a1", "acme/a2", "acme/a3"],
      );
    } finally {
      for (const c of [reader, acme, globex]) c.close();
    }
  });

  it("the same over a REST event stream", async () => {
    const acme = tg.client({ protocol: "connect", token: await sign({ tenant: "acme" }) });
    const globex = tg.client({ protocol: "connect", token: await sign({ tenant: "globex" }) });
    try {
      const { opened, events } = await sseEvents(tg, await sign({ tenant: "acme" }), 2);
      await opened;
      await until(() => tg.gateway.openStreams() === 1);
      await globex.entity.set({ domain: "globex", type: "t", key: "r1", values: {} });
      await acme.entity.set({ domain: "acme", type: "t", key: "r2", values: {} });
      await globex.entity.set({ domain: "globex", type: "t", key: "r3", values: {} });
      await acme.entity.set({ domain: "acme", type: "t", key: "r4", values: {} });
      assert.deepEqual(await events, ["acme/r2", "acme/r4"]);
    } finally {
      acme.close();
      globex.close();
    }
  });
});

/** The first `count` events of a REST event stream (Server-Sent Events), as domain/key. */
async function sseEvents(
  tg: TestGateway,
  token: string,
  count: number,
): Promise<{ opened: Promise<void>; events: Promise<string[]> }> {
  const abort = new AbortController();
  const res = fetch(`${tg.baseUrl}/api/events/stream?domain=*&type=*`, {
    headers: { authorization: `Bearer ${token}`, accept: "text/event-stream" },
    signal: abort.signal,
  });
  const opened = res.then((r) => assert.equal(r.status, 200));
  const events = (async () => {
    const out: string[] = [];
    const reader = (await res).body!.getReader();
    const decoder = new TextDecoder();
    let text = "";
    try {
      while (out.length < count) {
        const { value, done } = await reader.read();
        if (done) break;
        text += decoder.decode(value, { stream: true });
        let end = text.indexOf("\n\n");
        while (end >= 0) {
          const data = text
            .slice(0, end)
            .split("\n")
            .find((l) => l.startsWith("data: "));
          if (data) {
            const { event } = JSON.parse(data.slice(6)) as { event: { entity: { domain: string; key: string } } };
            out.push(`${event.entity.domain}/${event.entity.key}`);
          }
          text = text.slice(end + 2);
          end = text.indexOf("\n\n");
        }
      }
      return out;
    } finally {
      abort.abort();
    }
  })();
  return { opened, events };
}

describe("the input document", () => {
  let tg: TestGateway;
  const request = `package stategate.authz

import rego.v1

default allow := false

allow if {
	input.method == "/stategate.v1.EntityService/Get"
	input.metadata["x-policy-test"] == "yes"
	input.claims.sub == "ada"
	input.body == {"domain": "d", "type": "t", "key": "k"}
	input.client_stream == false
	input.server_stream == false
}

allow if {
	input.method == "/stategate.v1.EventService/Stream"
	input.body.domain == "d"
	input.body.type == "t"
	input.server_stream == true
	input.client_stream == false
}

allow if input.method == "/stategate.v1.EntityService/Set"
`;
  // The response policy sees the response: Get answers with the entity, so its values decide.
  const response = `package stategate.authz

import rego.v1

default allow := false

allow if input.method != "/stategate.v1.EntityService/Get"

allow if {
	input.body.entity.key == "k"
	not input.body.entity.values.hidden
	input.body.entity.version == "1"
}
`;

  before(async () => {
    tg = await startTestGateway({
      ...auth,
      STATEGATE_REQUEST_POLICY: b64(request),
      STATEGATE_RESPONSE_POLICY: b64(response),
    });
  });
  after(() => tg?.close());

  it("holds claims, method, lower-case metadata, the request body and the stream flags", async () => {
    const token = await sign({ sub: "ada" });
    const withHeader = tg.client({
      protocol: "grpc",
      token,
      interceptors: [
        (next) => (req) => {
          req.header.set("X-Policy-Test", "yes");
          return next(req);
        },
      ],
    });
    const plain = tg.client({ protocol: "grpc", token });
    try {
      await plain.entity.set({ domain: "d", type: "t", key: "k", values: { a: 1 } });
      assert.equal(await codeOf(withHeader.entity.get({ domain: "d", type: "t", key: "k" })), "OK");
      assert.equal(
        await codeOf(plain.entity.get({ domain: "d", type: "t", key: "k" })),
        "PermissionDenied",
        "no header",
      );
      assert.equal(await codeOf(withHeader.entity.get({ domain: "d", type: "t", key: "other" })), "PermissionDenied");
      const events = withHeader.event.stream({ domain: "d", type: "t" });
      const got = take(events, 1);
      await until(() => tg.gateway.openStreams() === 1);
      await plain.entity.set({ domain: "d", type: "t", key: "k2", values: {} });
      assert.equal((await got)[0]?.event?.entity?.key, "k2");
      await assert.rejects(take(withHeader.event.stream({ domain: "d", type: "other" }), 1, 5_000), (err) =>
        Boolean(ConnectError.from(err).code === Code.PermissionDenied),
      );
    } finally {
      withHeader.close();
      plain.close();
    }
  });

  it("the response policy sees the response message, not the request", async () => {
    const token = await sign({ sub: "ada" });
    const client = tg.client({
      protocol: "connect",
      token,
      interceptors: [
        (next) => (req) => {
          req.header.set("x-policy-test", "yes");
          return next(req);
        },
      ],
    });
    try {
      assert.equal(await codeOf(client.entity.get({ domain: "d", type: "t", key: "k" })), "OK");
      // The write passes both policies; what it stored makes the response policy deny the read.
      await client.entity.set({ domain: "d", type: "t", key: "k", values: { hidden: true } });
      const err = await client.entity
        .get({ domain: "d", type: "t", key: "k" })
        .catch((e: unknown) => ConnectError.from(e));
      assert.ok(err instanceof ConnectError);
      assert.equal(err.code, Code.PermissionDenied);
      assert.match(err.rawMessage, /response policy/);
    } finally {
      client.close();
    }
  });
});

describe("policies at start-up", () => {
  it("the reference's base64 example (default allow = true) works", async () => {
    const reference = "cGFja2FnZSBzdGF0ZWdhdGUuYXV0aHoKCmRlZmF1bHQgYWxsb3cgPSB0cnVl";
    assert.equal(Buffer.from(reference, "base64").toString(), "package stategate.authz\n\ndefault allow = true");
    const tg = await startTestGateway({
      ...auth,
      STATEGATE_REQUEST_POLICY: reference,
      STATEGATE_RESPONSE_POLICY: reference,
    });
    try {
      const client = tg.client({ protocol: "grpc", token: await sign({}) });
      await client.entity.set({ domain: "any", type: "t", key: "k", values: { a: 1 } });
      assert.deepEqual((await client.entity.get({ domain: "any", type: "t", key: "k" })).entity?.values, { a: 1 });
      client.close();
    } finally {
      await tg.close();
    }
  });

  it("a policy calling an unknown built-in stops start-up, naming the variable, the position and the built-in", async () => {
    const policy =
      'package stategate.authz\n\nimport rego.v1\n\nallow if {\n\thttp.send({"url": input.body.key}).status == 200\n}\n';
    await assert.rejects(startTestGateway({ ...auth, STATEGATE_REQUEST_POLICY: b64(policy) }), (err: Error) => {
      assert.equal(err.name, "ConfigError");
      assert.match(err.message, /^STATEGATE_REQUEST_POLICY: /);
      assert.match(err.message, /line 6, column 2/);
      assert.match(err.message, /unknown built-in function http\.send/);
      return true;
    });
  });

  it("Rego written before 1.0 is refused with how to write it in v1; from a file the file is named", async () => {
    const dir = mkdtempSync(join(tmpdir(), "stategate-policy-"));
    try {
      const file = join(dir, "authz.rego");
      writeFileSync(file, 'package stategate.authz\n\ndeny[msg] {\n  msg := "no"\n}\n\nallow { count(deny) == 0 }\n');
      await assert.rejects(startTestGateway({ ...auth, STATEGATE_RESPONSE_POLICY_FILE: file }), (err: Error) => {
        assert.match(err.message, /^STATEGATE_RESPONSE_POLICY_FILE: /);
        assert.match(err.message, new RegExp(`line 3, column 11 of ${file.replace(/[/.]/g, "\\$&")}`));
        assert.match(err.message, /deny contains x if \{ … \}/);
        return true;
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a policy without data.stategate.authz.allow is refused", async () => {
    await assert.rejects(
      startTestGateway({ ...auth, STATEGATE_REQUEST_POLICY: b64("package authz\n\nallow := true\n") }),
      /STATEGATE_REQUEST_POLICY: the policy must define data\.stategate\.authz\.allow .*data\.authz\.allow/,
    );
  });

  it("with STATEGATE_AUTH_DISABLED=true the policies are not evaluated", async () => {
    const denyAll = b64("package stategate.authz\n\ndefault allow := false\n");
    const tg = await startTestGateway({ STATEGATE_AUTH_DISABLED: "true", STATEGATE_REQUEST_POLICY: denyAll });
    try {
      const client = tg.client({ protocol: "grpc" });
      assert.equal(await codeOf(client.entity.search({ domain: "d", type: "t" })), "OK");
      client.close();
    } finally {
      await tg.close();
    }
  });

  it("a policy that fails while evaluated (a conflict) answers INTERNAL, never allows", async () => {
    const conflict = b64(
      'package stategate.authz\n\nallow := true if input.body.domain == "x"\n\nallow := false if input.body.domain == "x"\n\nallow if input.body.domain == "y"\n',
    );
    const tg = await startTestGateway({ ...auth, STATEGATE_REQUEST_POLICY: conflict });
    try {
      const client = tg.client({ protocol: "grpc", token: await sign({}) });
      assert.equal(await codeOf(client.entity.search({ domain: "x", type: "t" })), "Internal");
      assert.equal(await codeOf(client.entity.search({ domain: "y", type: "t" })), "OK");
      client.close();
    } finally {
      await tg.close();
    }
  });

  it("a deny-all policy denies when authentication is on", async () => {
    const denyAll = b64("package stategate.authz\n\ndefault allow := false\n");
    const tg = await startTestGateway({ ...auth, STATEGATE_REQUEST_POLICY: denyAll });
    try {
      const client = tg.client({ protocol: "grpc", token: await sign({}) });
      assert.equal(await codeOf(client.entity.search({ domain: "d", type: "t" })), "PermissionDenied");
      client.close();
    } finally {
      await tg.close();
    }
  });
});

describe("the decision: only true allows", () => {
  for (const [name, source] of [
    [
      "a policy without a default, where allow is undefined for the call",
      'package stategate.authz\n\nimport rego.v1\n\nallow if input.body.domain == "open"\n',
    ],
    ['allow := "yes"', 'package stategate.authz\n\nallow := "yes"\n\nallow := "yes" if input.body.domain == "open"\n'],
  ] as const) {
    it(`${name}: PERMISSION_DENIED over gRPC, REST and GraphQL`, async () => {
      const tg = await startTestGateway({ ...auth, STATEGATE_REQUEST_POLICY: b64(source) });
      const token = await sign({});
      const client = tg.client({ protocol: "grpc", token });
      try {
        const undefinedPolicy = source.includes("allow if");
        assert.equal(
          await codeOf(client.entity.search({ domain: "open", type: "t" })),
          undefinedPolicy ? "OK" : "PermissionDenied",
          "the policy runs",
        );
        assert.equal(await codeOf(client.entity.search({ domain: "shut", type: "t" })), "PermissionDenied");
        const viaRest = await rest(tg, token, "GET", "/api/entity/search?domain=shut&type=t");
        assert.equal(viaRest.status, 403);
        assert.equal(viaRest.body.code, "permission_denied");
        const viaGraphql = await graphql(tg, token, '{ entitySearch(domain: "shut", type: "t") { entities { key } } }');
        assert.equal(viaGraphql.errors?.[0]?.extensions?.code, "PERMISSION_DENIED");
      } finally {
        client.close();
        await tg.close();
      }
    });
  }
});

describe("policies from files", () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "stategate-policy-file-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("STATEGATE_REQUEST_POLICY_FILE enforces the policy in the file", async () => {
    const [tenant] = readmePolicies();
    const file = join(dir, "tenant.rego");
    writeFileSync(file, tenant!);
    const tg = await startTestGateway({ ...auth, STATEGATE_REQUEST_POLICY_FILE: file });
    const client = tg.client({ protocol: "grpc", token: await sign({ tenant: "acme" }) });
    try {
      assert.equal(await codeOf(client.entity.set({ domain: "acme", type: "t", key: "k", values: {} })), "OK");
      assert.equal(
        await codeOf(client.entity.set({ domain: "globex", type: "t", key: "k", values: {} })),
        "PermissionDenied",
      );
      assert.equal((await rest(tg, await sign({ tenant: "acme" }), "GET", "/api/entity/ref/globex/t/k")).status, 403);
    } finally {
      client.close();
      await tg.close();
    }
  });

  for (const name of ["STATEGATE_REQUEST_POLICY", "STATEGATE_RESPONSE_POLICY"]) {
    it(`setting both ${name} and ${name}_FILE stops start-up, naming both`, async () => {
      const file = join(dir, "allow.rego");
      writeFileSync(file, "package stategate.authz\n\ndefault allow := true\n");
      await assert.rejects(
        startTestGateway({
          ...auth,
          [name]: b64("package stategate.authz\n\ndefault allow := true\n"),
          [`${name}_FILE`]: file,
        }),
        (err: Error) => {
          assert.equal(err.name, "ConfigError");
          assert.equal(err.message, `${name}: set either ${name} or ${name}_FILE, not both`);
          return true;
        },
      );
    });
  }
});

describe("input.metadata: the caller's request headers, the same on every door", () => {
  // One custom header decides; what is not the caller's (the protocols' framing, hop-by-hop
  // headers, the gateway's internal door header) is never shown, whatever the door.
  const policy = `package stategate.authz

import rego.v1

default allow := false

allow if {
	input.metadata["x-tenant"] == input.body.domain
	not input.metadata["x-stategate-door"]
	not input.metadata["content-type"]
	not input.metadata["content-length"]
	not input.metadata["grpc-accept-encoding"]
	not input.metadata["connect-protocol-version"]
	not input.metadata.host
	not input.metadata.connection
	not input.metadata.upgrade
	not input.metadata["sec-websocket-key"]
	input.metadata.authorization
}
`;
  let tg: TestGateway;
  let token: string;
  before(async () => {
    tg = await startTestGateway({ ...auth, STATEGATE_REQUEST_POLICY: b64(policy) });
    token = await sign({});
  });
  after(() => tg?.close());

  /** Searches `domain` through `door`, sending `headers`: "OK" or the gRPC code name. */
  const doors: Record<string, (domain: string, headers: Record<string, string>) => Promise<string>> = {
    async grpc(domain, headers) {
      const client = tg.client({
        protocol: "grpc",
        token,
        interceptors: [
          (next) => (req) => {
            for (const [k, v] of Object.entries(headers)) req.header.set(k, v);
            return next(req);
          },
        ],
      });
      try {
        return await codeOf(client.entity.search({ domain, type: "t" }));
      } finally {
        client.close();
      }
    },
    async connect(domain, headers) {
      const res = await fetch(`${tg.baseUrl}/stategate.v1.EntityService/Search`, {
        method: "POST",
        headers: { ...headers, authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({ domain, type: "t" }),
      });
      const body = (await res.json()) as { code?: string };
      return res.status === 200 ? "OK" : body.code === "permission_denied" ? "PermissionDenied" : String(body.code);
    },
    async rest(domain, headers) {
      const res = await fetch(`${tg.baseUrl}/api/entity/search?domain=${domain}&type=t`, {
        headers: { ...headers, authorization: `Bearer ${token}` },
      });
      const body = (await res.json()) as { code?: string };
      return res.status === 200 ? "OK" : body.code === "permission_denied" ? "PermissionDenied" : String(res.status);
    },
    async graphql(domain, headers) {
      const { body: result } = await postGraphql(
        tg.baseUrl,
        `{ entitySearch(domain: "${domain}", type: "t") { entities { key } } }`,
        { headers: { ...headers, authorization: `Bearer ${token}` } },
      );
      return result.errors ? String(result.errors[0]?.extensions?.code) : "OK";
    },
    async "graphql over WebSocket"(domain, headers) {
      // The headers of the upgrade request; the token comes in connection_init.
      class WithHeaders extends WebSocket {
        constructor(url: string, protocols?: string | string[]) {
          super(url, protocols, { headers });
        }
      }
      const ws = createWsClient({
        url: `${tg.baseUrl.replace(/^http/, "ws")}/api/graphql`,
        webSocketImpl: WithHeaders,
        retryAttempts: 0,
        connectionParams: { authorization: `Bearer ${token}` },
      });
      try {
        const result = await new Promise<FormattedExecutionResult>((resolve, reject) =>
          ws.subscribe(
            { query: `{ entitySearch(domain: "${domain}", type: "t") { entities { key } } }` },
            { next: resolve, error: reject, complete: () => {} },
          ),
        );
        return result.errors ? String(result.errors[0]?.extensions?.code) : "OK";
      } finally {
        await ws.dispose();
      }
    },
  };

  for (const [door, call] of Object.entries(doors)) {
    it(`${door}: the header decides, and only the caller's headers are shown`, async () => {
      const denied = door.startsWith("graphql") ? "PERMISSION_DENIED" : "PermissionDenied";
      assert.equal(await call("acme", { "X-Tenant": "acme" }), "OK", "x-tenant: acme, domain acme");
      assert.equal(await call("globex", { "X-Tenant": "acme" }), denied, "x-tenant: acme, domain globex");
      assert.equal(await call("acme", {}), denied, "no x-tenant");
      // A client that sends the gateway's internal door header shows the policy nothing of it.
      assert.equal(await call("acme", { "x-tenant": "acme", "x-stategate-door": "rest" }), "OK", "door header");
    });
  }
});

describe("policies are compiled once", () => {
  it("no call parses a policy again, whatever the door", async () => {
    const before = parseCount();
    const [tenant] = readmePolicies();
    const tg = await startTestGateway({
      ...auth,
      STATEGATE_REQUEST_POLICY: b64(tenant!),
      STATEGATE_RESPONSE_POLICY: b64("package stategate.authz\n\nallow if input.body\n"),
    });
    const token = await sign({ tenant: "acme" });
    const client = tg.client({ protocol: "grpc", token });
    try {
      assert.ok(parseCount() >= before + 2, "start-up parsed the two policies, in this very engine");
      const calls = async () => {
        assert.equal(await codeOf(client.entity.set({ domain: "acme", type: "t", key: "k", values: {} })), "OK");
        assert.equal(await codeOf(client.entity.get({ domain: "globex", type: "t", key: "k" })), "PermissionDenied");
        assert.equal((await rest(tg, token, "GET", "/api/entity/ref/acme/t/k")).status, 200);
        assert.equal(
          (await graphql(tg, token, '{ entityGet(domain: "acme", type: "t", key: "k") { entity { key } } }')).errors,
          undefined,
        );
      };
      await calls(); // the first evaluation compiles the decision's reference, once
      const warm = parseCount();
      for (let i = 0; i < 10; i++) await calls();
      assert.equal(parseCount(), warm, "40 calls, 80 policy evaluations, nothing parsed");
    } finally {
      client.close();
      await tg.close();
    }
  });
});
