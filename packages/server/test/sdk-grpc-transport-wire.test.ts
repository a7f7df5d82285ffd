import assert from "node:assert/strict";
import http2 from "node:http2";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { create, createFileRegistry, toJson } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import type { CallOptions, Interceptor } from "@connectrpc/connect";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import {
  CacheService,
  CacheServiceGetResponseSchema,
  EventService,
  file_stategate_v1_cache_service,
} from "@stategate/api";
import { createStategateClient } from "@stategate/sdk-node";
import { behaviors, httpStatuses, resetCodes, upload } from "./grpc-peer-answers.js";
import { freePort } from "./helpers.js";
import type { CompareOptions, Kind, Outcome, Peer } from "./transport-compare.js";
import { outcomeOf, same, startPeer, transportMaker } from "./transport-compare.js";

/**
 * The lean gRPC transport against a protocol peer: a node:http2 server that
 * answers the bytes each case needs (two messages for a unary call, a
 * compressed frame, HTTP 503, a reset stream …), things a real gateway
 * never sends (the answers are in grpc-peer-answers.ts). For each, the lean
 * transport must fail exactly as connect-node's does. (sdk-grpc-transport.test.ts
 * holds them to each other against a real gateway.)
 */

let peer: Peer;
const maker = transportMaker();
let calls = 0;
before(async () => {
  peer = await startPeer(behaviors);
});
after(async () => {
  maker.close();
  await peer.close();
});

/** Headers that choose the peer's behavior and name the call. */
function peerHeaders(behavior: string, kind: Kind) {
  const id = `${behavior}/${kind}/${calls++}`;
  return { id, headers: { "x-peer": behavior, "x-peer-id": id } };
}

/** CacheService.Get on the peer over `kind`; what it came to. */
async function unary(
  kind: Kind,
  behavior: string,
  options: CallOptions = {},
  transport: Partial<CompareOptions> = {},
): Promise<Outcome & { id: string }> {
  const { id, headers } = peerHeaders(behavior, kind);
  const client = createClient(CacheService, maker.make(kind, { baseUrl: peer.baseUrl, ...transport }));
  const outcome = await outcomeOf((o) =>
    client
      .get({ domain: "d", key: "k" }, { ...o, ...options, headers: { ...headers, ...(options.headers as object) } })
      .then((m) => toJson(CacheServiceGetResponseSchema, m)),
  );
  return { ...outcome, id };
}

/** EventService.Stream on the peer over `kind`: the keys of the events read, or the error. */
async function stream(kind: Kind, behavior: string, options: CallOptions = {}): Promise<Outcome & { id: string }> {
  const { id, headers } = peerHeaders(behavior, kind);
  const client = createClient(EventService, maker.make(kind, { baseUrl: peer.baseUrl }));
  const keys: string[] = [];
  const outcome = await outcomeOf(async (o) => {
    for await (const r of client.stream({ domain: "d" }, { ...o, ...options, headers })) {
      keys.push(r.event?.entity?.key ?? "");
    }
    return keys;
  });
  return { ...outcome, id, ...(outcome.error ? { ok: keys } : {}) };
}

/** Drops the call's id, which differs by transport, keeping what it came to. */
const strip = ({ id: _id, ...rest }: Outcome & { id: string }): Outcome => rest;

describe("unary answers", () => {
  const cases = [
    "ok",
    "no-message",
    "two-messages",
    "compressed-flag",
    "cut-envelope",
    "envelope-header-only",
    "split-envelope",
    "not-protobuf",
    "missing-status",
    "error-status",
    "message-then-error",
    "details",
    "invalid-status",
    "trailers-only",
    "trailers-only-ok",
    "status-in-headers-and-message",
    "json-type",
    ...httpStatuses.map((s) => `http-${s}`),
    ...resetCodes.map((c) => `reset-before-${c}`),
    ...resetCodes.map((c) => `reset-after-headers-${c}`),
  ];
  for (const behavior of cases) {
    it(behavior, async () => {
      const outcome = await same(async (kind) => strip(await unary(kind, behavior)));
      if (behavior === "ok" || behavior === "split-envelope") assert.equal(outcome.error, undefined);
      else assert.notEqual(outcome.error, undefined);
    });
  }

  it("the codes are those gRPC and Connect give these answers", async () => {
    const code = async (behavior: string) => (await unary("lean", behavior)).error?.code;
    assert.equal(await code("two-messages"), "Unimplemented");
    assert.equal(await code("compressed-flag"), "Internal");
    assert.equal(await code("missing-status"), "Internal");
    assert.equal(await code("http-503"), "Unavailable");
    assert.equal(await code("http-404"), "Unimplemented");
    assert.equal(await code("trailers-only"), "PermissionDenied");
    assert.equal(await code(`reset-before-${http2.constants.NGHTTP2_CANCEL}`), "Canceled");
    const details = (await unary("lean", "details")).error;
    assert.equal(details?.code, "InvalidArgument");
    assert.equal(details?.details[0]?.type, "stategate.v1.CacheServiceGetRequest");
    assert.ok(details?.metadata.some(([k, v]) => k === "x-meta" && v === "m"));
  });

  it("a message over readMaxBytes is RESOURCE_EXHAUSTED before it is read", async () => {
    const outcome = await same(async (kind) => strip(await unary(kind, "big", {}, { readMaxBytes: 1000 })));
    assert.equal(outcome.error?.code, "ResourceExhausted");
    assert.match(outcome.error?.message ?? "", /larger than configured readMaxBytes 1000/);
  });

  it("a request over writeMaxBytes is RESOURCE_EXHAUSTED", async () => {
    const outcome = await same(async (kind) => strip(await unary(kind, "ok", {}, { writeMaxBytes: 3 })));
    assert.equal(outcome.error?.code, "ResourceExhausted");
  });

  it("a stream the server resets with NO_ERROR before any headers fails (connect-node waits forever)", async () => {
    const outcome = await unary("lean", "reset-before-0");
    assert.equal(outcome.error?.code, "Internal");
  });

  it("a compressed answer the client never asked for is refused (connect-node, which asks for gzip, reads it)", async () => {
    assert.equal((await unary("connect-node", "gzip-unasked")).error, undefined);
    const lean = await unary("lean", "gzip-unasked");
    assert.equal(lean.error?.code, "Internal");
    assert.equal(lean.error?.message, 'unsupported response encoding "gzip"');
  });
});

describe("cancellation and deadlines", () => {
  it("the caller's signal cancels the call and resets the stream with CANCEL", async () => {
    const seen = await same(async (kind) => {
      const abort = new AbortController();
      setTimeout(() => abort.abort(), 30);
      const outcome = await unary(kind, "hang", { signal: abort.signal });
      return { ...strip(outcome), rstCode: (await peer.seen(outcome.id)).rstCode };
    });
    assert.equal(seen.error?.code, "Canceled");
    assert.equal(seen.rstCode, http2.constants.NGHTTP2_CANCEL);
  });

  for (const [name, reason] of [
    ["an Error", new Error("bye")],
    ["a ConnectError", new ConnectError("gone", Code.Aborted)],
    ["a string", "why not"],
  ] as const) {
    it(`a signal aborted with ${name} ends the call with that reason`, async () => {
      await same(async (kind) => {
        const abort = new AbortController();
        setTimeout(() => abort.abort(reason), 30);
        const outcome = await unary(kind, "hang-after-headers", { signal: abort.signal });
        return { ...strip(outcome), rstCode: (await peer.seen(outcome.id)).rstCode };
      });
    });
  }

  it("a signal aborted before the call cancels it", async () => {
    const outcome = await same(async (kind) => strip(await unary(kind, "ok", { signal: AbortSignal.abort() })));
    assert.equal(outcome.error?.code, "Canceled");
  });

  it("the client's deadline passes: DEADLINE_EXCEEDED, and the stream is reset", async () => {
    const seen = await same(async (kind) => {
      const outcome = await unary(kind, "hang", { timeoutMs: 50 });
      const { rstCode, headers } = await peer.seen(outcome.id);
      return { ...strip(outcome), rstCode, timeout: headers["grpc-timeout"] };
    });
    assert.equal(seen.error?.code, "DeadlineExceeded");
    assert.equal(seen.error?.message, "the operation timed out");
    assert.equal(seen.timeout, "50m");
  });

  it("defaultTimeoutMs applies to calls that name none, and timeoutMs 0 means none", async () => {
    const seen = await same(async (kind) => {
      const outcome = await unary(kind, "hang", {}, { defaultTimeoutMs: 50 });
      const none = await unary(kind, "ok", { timeoutMs: 0 }, { defaultTimeoutMs: 50 });
      return {
        timedOut: strip(outcome),
        none: strip(none),
        header: (await peer.seen(none.id)).headers["grpc-timeout"] ?? "none",
      };
    });
    assert.equal(seen.timedOut.error?.code, "DeadlineExceeded");
    assert.equal(seen.none.error, undefined);
    assert.equal(seen.header, "none");
  });

  it("the server's DEADLINE_EXCEEDED comes through as sent", async () => {
    const outcome = await same(async (kind) => strip(await unary(kind, "deadline-status", { timeoutMs: 10_000 })));
    assert.equal(outcome.error?.code, "DeadlineExceeded");
    assert.equal(outcome.error?.message, "deadline passed at the server");
  });
});

describe("server streams", () => {
  const cases = [
    "stream-ok",
    "stream-error-after",
    "stream-trailers-only-ok",
    "stream-trailers-only-error",
    "stream-missing-status",
    "stream-compressed-flag",
    "stream-reset-after-message",
    "http-503",
    ...resetCodes.map((c) => `reset-before-${c}`),
  ];
  for (const behavior of cases) {
    it(behavior, async () => {
      await same(async (kind) => strip(await stream(kind, behavior)));
    });
  }

  it("messages are handed over as they arrive", async () => {
    await same(async (kind) => {
      const { id, headers } = peerHeaders("stream-step", kind);
      const client = createClient(EventService, maker.make(kind, { baseUrl: peer.baseUrl }));
      const it = client.stream({ domain: "d" }, { headers })[Symbol.asyncIterator]();
      const first = await it.next();
      assert.equal(first.value?.event?.entity?.key, "first", "the first message came before the second was sent");
      peer.release(id);
      const second = await it.next();
      const end = await it.next();
      return [first.value?.event?.entity?.key, second.value?.event?.entity?.key, end.done];
    });
  });

  it("leaving the loop (through the SDK) resets the stream with CANCEL", async () => {
    const seen = await same(async (kind) => {
      const { id, headers } = peerHeaders("stream-forever", kind);
      const client = createStategateClient(maker.make(kind, { baseUrl: peer.baseUrl }));
      let read = 0;
      for await (const _ of client.event.stream({ domain: "d", type: "t" }, { headers })) {
        if (++read === 3) break;
      }
      return { read, rstCode: (await peer.seen(id)).rstCode };
    });
    assert.deepEqual(seen, { read: 3, rstCode: http2.constants.NGHTTP2_CANCEL });
  });

  it("the caller's signal ends a stream while it reads", async () => {
    const seen = await same(async (kind) => {
      const abort = new AbortController();
      const { id, headers } = peerHeaders("stream-forever", kind);
      const client = createClient(EventService, maker.make(kind, { baseUrl: peer.baseUrl }));
      let read = 0;
      const outcome = await outcomeOf(async () => {
        for await (const _ of client.stream({ domain: "d" }, { headers, signal: abort.signal })) {
          if (++read === 2) abort.abort();
        }
      });
      return { error: outcome.error, read, rstCode: (await peer.seen(id)).rstCode };
    });
    assert.equal(seen.error?.code, "Canceled");
  });

  it("a deadline ends a stream while it reads", async () => {
    const seen = await same(async (kind) => {
      const { id, headers } = peerHeaders("stream-forever", kind);
      const client = createClient(EventService, maker.make(kind, { baseUrl: peer.baseUrl }));
      const outcome = await outcomeOf(async () => {
        for await (const _ of client.stream({ domain: "d" }, { headers, timeoutMs: 100 })) {
          // read on
        }
      });
      return { error: outcome.error, rstCode: (await peer.seen(id)).rstCode };
    });
    assert.equal(seen.error?.code, "DeadlineExceeded");
  });

  it("a reader that stops reading holds the server back (flow control)", async () => {
    const outcome = await same(async (kind) => {
      const { id, headers } = peerHeaders("stream-forever", kind);
      const abort = new AbortController();
      const client = createClient(EventService, maker.make(kind, { baseUrl: peer.baseUrl }));
      const it = client.stream({ domain: "d" }, { headers, signal: abort.signal })[Symbol.asyncIterator]();
      await it.next();
      await sleep(1_500); // the server writes every 10 ms, and would be far ahead without flow control
      const later = await it.next();
      abort.abort();
      await peer.seen(id);
      // Some messages were buffered (HTTP/2 windows), but the reader is not 150 behind.
      return Number(later.value?.event?.entity?.key.slice(1)) < 150;
    });
    assert.equal(outcome, true);
  });
});

describe("the request", () => {
  it("carries the same headers, apart from grpc-accept-encoding (connect-node offers gzip and br)", async () => {
    const seen = await same(async (kind) => {
      const outcome = await unary(kind, "ok", { headers: { "x-user": "u", "user-agent": "mine" }, timeoutMs: 5000 });
      const { headers, body } = await peer.seen(outcome.id);
      const { "grpc-accept-encoding": _offered, "x-peer-id": _id, ...rest } = headers;
      return { rest: { ...rest }, body: body.toString("hex") };
    });
    assert.equal(seen.rest["content-type"], "application/grpc+proto");
    assert.equal(seen.rest.te, "trailers");
    assert.equal(seen.rest["user-agent"], "mine");
  });

  it("without a user-agent, Connect's is sent", async () => {
    const agent = await same(async (kind) => (await peer.seen((await unary(kind, "ok")).id)).headers["user-agent"]);
    assert.match(String(agent), /^connect-es\//);
  });

  it("a client-streaming call goes through connect-node's transport", async () => {
    const file = create(FileDescriptorProtoSchema, {
      name: "test/upload.proto",
      package: "test",
      syntax: "proto3",
      dependency: ["stategate/v1/cache_service.proto"],
      service: [
        {
          name: "Upload",
          method: [
            {
              name: "Send",
              inputType: ".stategate.v1.CacheServiceGetRequest",
              outputType: ".stategate.v1.CacheServiceGetResponse",
              clientStreaming: true,
            },
          ],
        },
      ],
    });
    const registry = createFileRegistry(file, (name) =>
      name === "stategate/v1/cache_service.proto" ? file_stategate_v1_cache_service : undefined,
    );
    const Upload = registry.getService("test.Upload");
    assert.ok(Upload);
    const outcome = await same(async (kind) => {
      const { headers } = peerHeaders("upload", kind);
      const client = createClient(Upload, maker.make(kind, { baseUrl: peer.baseUrl })) as unknown as {
        send(input: AsyncIterable<unknown>, options: CallOptions): Promise<{ cache?: { key: string } }>;
      };
      async function* three() {
        for (let i = 0; i < 3; i++) yield upload;
      }
      return outcomeOf(async (o) => (await client.send(three(), { ...o, headers })).cache?.key);
    });
    assert.equal(outcome.ok, "3");
  });

  it("connection refused is UNAVAILABLE", async () => {
    const port = await freePort();
    const outcome = await same(async (kind) => {
      const client = createClient(CacheService, maker.make(kind, { baseUrl: `http://127.0.0.1:${port}` }));
      return outcomeOf(() => client.get({ domain: "d", key: "k" }));
    });
    assert.equal(outcome.error?.code, "Unavailable");
  });

  it("an interceptor pointing the call at another server is refused", async () => {
    const outcome = await same(async (kind) => {
      const client = createClient(
        CacheService,
        maker.make(kind, {
          baseUrl: peer.baseUrl,
          interceptors: [(next) => (req) => next({ ...req, url: "http://example.invalid/x" })],
        }),
      );
      return outcomeOf(() => client.get({ domain: "d", key: "k" }));
    });
    assert.equal(outcome.error?.code, "Internal");
  });

  it("an interceptor throwing at once fails the call with its very error, one rejecting with UNKNOWN", async () => {
    const boom = new Error("boom");
    for (const interceptor of [
      () => () => {
        throw boom;
      },
      () => async () => {
        throw boom;
      },
    ] as Interceptor[]) {
      const outcome = await same(async (kind) => {
        const client = createClient(
          CacheService,
          maker.make(kind, { baseUrl: peer.baseUrl, interceptors: [interceptor] }),
        );
        return outcomeOf(() => client.get({ domain: "d", key: "k" }));
      });
      assert.ok(outcome.error?.code === "not a ConnectError" || outcome.error?.code === "Unknown");
    }
  });
});
