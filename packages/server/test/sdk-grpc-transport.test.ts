import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";
import { toJson } from "@bufbuild/protobuf";
import type { Interceptor, Transport } from "@connectrpc/connect";
import { createClient, createContextKey, createContextValues } from "@connectrpc/connect";
import {
  CacheService,
  CacheServiceGetResponseSchema,
  EntityService,
  EntityServiceGetResponseSchema,
  EntityServiceSearchResponseSchema,
  EventService,
  EventServiceSearchResponseSchema,
  MutexService,
} from "@stategate/api";
import { createClient as createSdkClient, createStategateClient, expiresIn } from "@stategate/sdk-node";
import type { TestGateway } from "./helpers.js";
import { startTestGateway, unique, until } from "./helpers.js";
import type { TestIssuer } from "./test-issuer.js";
import { startTestIssuer } from "./test-issuer.js";
import type { Kind } from "./transport-compare.js";
import { entries, outcomeOf, same, transportMaker } from "./transport-compare.js";

/**
 * The SDK's lean gRPC transport (`createLeanGrpcTransport`, what `createClient`
 * uses for gRPC) held to connect-node's `createGrpcTransport` against a real
 * gateway: each call, made through both, must come to the same message,
 * headers, trailers, or error code, message and metadata. The wire's edge
 * cases, which a gateway never produces, are in sdk-grpc-transport-wire.test.ts.
 */

let tg: TestGateway;
const maker = transportMaker();
const domain = unique("lean");
before(async () => {
  tg = await startTestGateway();
  const setup = tg.client();
  await setup.entity.set({ domain, type: "user", key: "ada", values: { name: "Ada", langs: ["en", "fr"], n: 1.5 } });
  await setup.entity.set({ domain, type: "user", key: "big", values: { blob: "x".repeat(5000) } });
  await setup.cache.set({ domain, key: "greeting", value: { hello: "world" } });
  await setup.mutex.lock({ domain, key: "held", exp: expiresIn(60_000) });
  setup.close();
});
afterEach(() => maker.close());
after(async () => {
  await tg.close();
});

const over = (kind: Kind, options: { interceptors?: Interceptor[]; readMaxBytes?: number } = {}): Transport =>
  maker.make(kind, { baseUrl: tg.baseUrl, ...options });

describe("unary calls", () => {
  it("Entity Get: the same message, headers and trailers", async () => {
    const outcome = await same((kind) =>
      outcomeOf(async (o) => {
        const res = await createClient(EntityService, over(kind)).get({ domain, type: "user", key: "ada" }, o);
        return toJson(EntityServiceGetResponseSchema, res);
      }),
    );
    assert.equal((outcome.ok as { entity: { key: string } }).entity.key, "ada");
    assert.ok(outcome.header?.some(([k]) => k === "content-type"));
    assert.ok(outcome.trailer?.some(([k, v]) => k === "grpc-status" && v === "0"));
  });

  it("Cache Get, Entity Search and Event Search", async () => {
    await same((kind) =>
      outcomeOf(async (o) => {
        const cache = await createClient(CacheService, over(kind)).get({ domain, key: "greeting" }, o);
        const search = await createClient(EntityService, over(kind)).search({ domain, type: "user" });
        const events = await createClient(EventService, over(kind)).search({ domain, type: "user", key: "ada" });
        return [
          toJson(CacheServiceGetResponseSchema, cache),
          toJson(EntityServiceSearchResponseSchema, search),
          toJson(EventServiceSearchResponseSchema, events),
        ];
      }),
    );
  });

  it("Entity Set: each transport's first write is version 1", async () => {
    await same((kind) =>
      outcomeOf(async () => {
        const { event } = await createClient(EntityService, over(kind)).set({
          domain,
          type: "set",
          key: kind,
          values: { by: "both" },
        });
        return { version: event?.version, values: event?.entity?.values };
      }),
    );
  });
});

describe("errors from the gateway", () => {
  const cases: Record<string, (kind: Kind) => Promise<unknown>> = {
    NOT_FOUND: (kind) => createClient(EntityService, over(kind)).get({ domain, type: "user", key: "nobody" }),
    INVALID_ARGUMENT: (kind) => createClient(CacheService, over(kind)).get({ domain: "", key: "k" }),
    ABORTED: (kind) =>
      createClient(EntityService, over(kind)).edit({
        domain,
        type: "user",
        key: "ada",
        values: { x: 1 },
        expectedVersion: 99n,
      }),
    ALREADY_EXISTS: (kind) =>
      createClient(MutexService, over(kind)).lock({ domain, key: "held", exp: expiresIn(5_000) }),
    FAILED_PRECONDITION: (kind) =>
      createClient(MutexService, over(kind)).unlock({ domain, key: "held", token: "wrong" }),
    "DEADLINE_EXCEEDED (the gateway's)": (kind) =>
      createClient(EntityService, over(kind)).get(
        { domain, type: "user", key: "ada" },
        { headers: { "grpc-timeout": "1n" } },
      ),
    UNIMPLEMENTED: (kind) =>
      createClient(
        CacheService,
        over(kind, {
          interceptors: [(next) => (req) => next({ ...req, url: `${tg.baseUrl}/stategate.v1.CacheService/Nope` })],
        }),
      ).get({ domain, key: "k" }),
    "RESOURCE_EXHAUSTED (readMaxBytes)": (kind) =>
      createClient(EntityService, over(kind, { readMaxBytes: 1000 })).get({ domain, type: "user", key: "big" }),
  };
  for (const [name, call] of Object.entries(cases)) {
    it(name, async () => {
      const outcome = await same((kind) => outcomeOf(() => call(kind)));
      // "NOT_FOUND" is Code.NotFound.
      const expected = name.split(" ")[0]!.replaceAll("_", "").toLowerCase();
      assert.equal(outcome.error?.code.toLowerCase(), expected, JSON.stringify(outcome));
    });
  }

  it("a gateway that is not there is UNAVAILABLE", async () => {
    const gone = await startTestGateway();
    const baseUrl = gone.baseUrl;
    await gone.close();
    const outcome = await same((kind) =>
      outcomeOf(() => createClient(CacheService, maker.make(kind, { baseUrl })).get({ domain, key: "k" })),
    );
    assert.equal(outcome.error?.code, "Unavailable");
  });
});

describe("server streams", () => {
  afterEach(async () => {
    await until(() => tg.gateway.openStreams() === 0);
  });

  it("events are handed over as they happen, and the caller's signal ends the stream", async () => {
    const outcome = await same(async (kind) => {
      const d = unique(`stream-${kind}`);
      const abort = new AbortController();
      const events = createClient(EventService, over(kind));
      const writer = createClient(EntityService, over(kind));
      const it = events.stream({ domain: d, type: "*" }, { signal: abort.signal })[Symbol.asyncIterator]();
      const first = it.next();
      await until(() => tg.gateway.openStreams() === 1);
      await writer.set({ domain: d, type: "t", key: "a", values: { n: 1 } });
      const a = await first;
      await writer.set({ domain: d, type: "t", key: "b", values: { n: 2 } });
      const b = await it.next();
      abort.abort();
      const end = await outcomeOf(() => it.next());
      return {
        keys: [a.value?.event?.entity?.key, b.value?.event?.entity?.key],
        versions: [a.value?.event?.version, b.value?.event?.version],
        end: end.error,
      };
    });
    assert.deepEqual(outcome.keys, ["a", "b"]);
    assert.equal(outcome.end?.code, "Canceled");
  });

  it("leaving the loop through the SDK releases the gateway's subscription", async () => {
    await same(async (kind) => {
      const d = unique(`break-${kind}`);
      const client = createStategateClient(over(kind));
      await client.entity.set({ domain: d, type: "t", key: "a", values: {} });
      for await (const { event } of client.event.stream({ domain: d, type: "*", afterPosition: 0n })) {
        assert.equal(event?.entity?.key, "a");
        break;
      }
      await until(() => tg.gateway.openStreams() === 0);
      return "released";
    });
  });

  it("a stream the gateway refuses ends with its error", async () => {
    const outcome = await same((kind) =>
      outcomeOf(async (o) => {
        for await (const _ of createClient(EventService, over(kind)).stream({ domain: "", type: "*" }, o)) {
          // none
        }
      }),
    );
    assert.equal(outcome.error?.code, "InvalidArgument");
  });

  it("a stream whose deadline passes ends with DEADLINE_EXCEEDED", async () => {
    const outcome = await same((kind) =>
      outcomeOf(async (o) => {
        const stream = createClient(EventService, over(kind)).stream(
          { domain: unique("deadline"), type: "*" },
          { ...o, timeoutMs: 300 },
        );
        for await (const _ of stream) {
          // none come
        }
      }),
    );
    assert.equal(outcome.error?.code, "DeadlineExceeded");
  });

  it("closing the connection ends open streams", async () => {
    const outcome = await same(async (kind) => {
      const transport = over(kind);
      const it = createClient(EventService, transport)
        .stream({ domain: unique("close"), type: "*" })
        [Symbol.asyncIterator]();
      const next = it.next();
      await until(() => tg.gateway.openStreams() === 1);
      maker.close();
      return outcomeOf(() => next);
    });
    assert.equal(outcome.error?.code, "Canceled");
  });
});

describe("interceptors and call options", () => {
  it("an interceptor sees the same request and response, and the signal ends aborted", async () => {
    const key = createContextKey<string>("none", { description: "test key" });
    const seen = await same(async (kind) => {
      const record: Record<string, unknown> = {};
      let signal: AbortSignal | undefined;
      const interceptor: Interceptor = (next) => async (req) => {
        req.header.set("x-added", "by interceptor");
        signal = req.signal;
        record.request = {
          stream: req.stream,
          url: req.url.replace(tg.baseUrl, ""),
          requestMethod: req.requestMethod,
          method: req.method.name,
          service: req.service.typeName,
          // The one header that differs: connect-node offers to accept gzip and br; the lean transport never does.
          header: entries(req.header).filter(([k]) => k !== "grpc-accept-encoding"),
          context: req.contextValues.get(key),
          aborted: req.signal.aborted,
        };
        const res = await next(req);
        record.response = { header: entries(res.header), trailer: entries(res.trailer), stream: res.stream };
        record.whileAnswering = signal.aborted;
        return res;
      };
      const client = createClient(EntityService, over(kind, { interceptors: [interceptor] }));
      await client.get(
        { domain, type: "user", key: "ada" },
        { timeoutMs: 5000, headers: { "x-user": "u" }, contextValues: createContextValues().set(key, "given") },
      );
      // Once the call is over, its signal is aborted, with an AbortError.
      record.after = { aborted: signal?.aborted, reason: (signal?.reason as Error | undefined)?.name };
      return record;
    });
    assert.deepEqual(seen.after, { aborted: true, reason: "AbortError" });
    assert.equal((seen.request as { context: string }).context, "given");
  });

  it("an interceptor sees a failed call's error, as its signal's reason", async () => {
    await same(async (kind) => {
      let isReason = false;
      let code: unknown;
      const interceptor: Interceptor = (next) => async (req) => {
        try {
          return await next(req);
        } catch (err) {
          code = (err as { code?: unknown }).code;
          queueMicrotask(() => {
            isReason = req.signal.reason === err;
          });
          throw err;
        }
      };
      const outcome = await outcomeOf(() =>
        createClient(EntityService, over(kind, { interceptors: [interceptor] })).get({
          domain,
          type: "user",
          key: "nobody",
        }),
      );
      return { outcome, code, isReason };
    });
  });

  it("a stream's interceptor sees its messages", async () => {
    await same(async (kind) => {
      const d = unique(`intercept-${kind}`);
      const keys: string[] = [];
      const interceptor: Interceptor = (next) => async (req) => {
        const res = await next(req);
        if (!res.stream) return res;
        return {
          ...res,
          message: (async function* () {
            for await (const m of res.message) {
              keys.push((m as { event?: { entity?: { key: string } } }).event?.entity?.key ?? "");
              yield m;
            }
          })(),
        };
      };
      const client = createStategateClient(over(kind, { interceptors: [interceptor] }));
      await client.entity.set({ domain: d, type: "t", key: "a", values: {} });
      for await (const _ of client.event.stream({ domain: d, type: "*", afterPosition: 0n })) break;
      return keys;
    });
    await until(() => tg.gateway.openStreams() === 0);
  });
});

describe("the SDK's client over the lean transport", () => {
  let issuer: TestIssuer;
  let secured: TestGateway;
  before(async () => {
    issuer = await startTestIssuer();
    secured = await startTestGateway(issuer.env);
  });
  after(async () => {
    await secured.close();
    await issuer.close();
  });

  it("sends the token, and without one the call is UNAUTHENTICATED, as over connect-node", async () => {
    const token = await issuer.sign({ sub: "ada" });
    const withToken = createSdkClient({ baseUrl: secured.baseUrl, token });
    const without = createSdkClient({ baseUrl: secured.baseUrl });
    try {
      await withToken.cache.set({ domain, key: "k", value: 1 });
      assert.equal((await withToken.cache.get({ domain, key: "k" })).value, 1);
      const lean = await outcomeOf(() => without.cache.get({ domain, key: "k" }));
      const reference = await outcomeOf(() =>
        createClient(CacheService, maker.make("connect-node", { baseUrl: secured.baseUrl })).get({ domain, key: "k" }),
      );
      assert.deepEqual(lean, reference);
      assert.equal(lean.error?.code, "Unauthenticated");
    } finally {
      withToken.close();
      without.close();
    }
  });

  it("close() ends the connection and its streams; the client reconnects", async () => {
    const client = createSdkClient({ baseUrl: tg.baseUrl });
    const it = client.event.stream({ domain: unique("sdk-close"), type: "*" })[Symbol.asyncIterator]();
    const next = it.next();
    await until(() => tg.gateway.openStreams() === 1);
    client.close();
    assert.equal((await outcomeOf(() => next)).error?.code, "Canceled");
    assert.equal((await client.cache.get({ domain, key: "greeting" })).domain, domain);
    client.close();
  });
});
