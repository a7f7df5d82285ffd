import assert from "node:assert/strict";
import { connect } from "node:net";
import { after, before, describe, it } from "node:test";
import type { NodeClient } from "@stategate/sdk-node";
import { Code, ConnectError, expiresIn } from "@stategate/sdk-node";
import type { TestGateway } from "./helpers.js";
import { protocols, startTestGateway, testBackends, unique } from "./helpers.js";

// A cache value too large for Memcached answers RESOURCE_EXHAUSTED through the
// SDK (the provider's ValueTooLargeError, mapped in src/errors.ts), never OK
// followed by a miss. Both refusals are covered: the adapter's own limit
// (maxValueBytes, checked before sending) and the server's item limit (-I),
// for a gateway whose maxValueBytes is set above what the server takes.

/** The server's item size limit, from `stats settings` on the text protocol. */
async function serverItemSizeMax(): Promise<number> {
  const [host, port] = testBackends.memcached.split(":");
  const text = await new Promise<string>((resolve, reject) => {
    const socket = connect(Number(port), host);
    let reply = "";
    socket.setTimeout(5_000, () => socket.destroy(new Error("memcached did not answer stats settings")));
    socket.on("connect", () => socket.write("stats settings\r\n"));
    socket.on("data", (chunk) => {
      reply += chunk.toString("latin1");
      if (reply.endsWith("END\r\n")) {
        socket.end();
        resolve(reply);
      }
    });
    socket.on("error", reject);
  });
  const limit = Number(/^STAT item_size_max (\d+)\r$/m.exec(text)?.[1]);
  assert.ok(Number.isSafeInteger(limit) && limit > 0, `no item_size_max in:\n${text}`);
  return limit;
}

const memcachedEnv = (tag: string, extra: Record<string, unknown> = {}) => ({
  STATEGATE_CACHE_PROVIDER: JSON.stringify({
    name: "memcached",
    addr: testBackends.memcached,
    prefix: `${tag}:`,
    ...extra,
  }),
});

/** Asserts a call failed with RESOURCE_EXHAUSTED from the provider, naming `limit` and a larger size. */
async function tooLarge(call: Promise<unknown>, limit: number): Promise<void> {
  await assert.rejects(call, (err) => {
    const error = ConnectError.from(err);
    assert.equal(error.code, Code.ResourceExhausted, `${Code[error.code]}: ${error.rawMessage}`);
    // The provider's message, not the gateway's request-size limit.
    const sizes = /^value of (\d+) bytes exceeds the limit of (\d+) bytes$/.exec(error.rawMessage);
    assert.ok(sizes, `not the provider's ValueTooLargeError: ${error.rawMessage}`);
    assert.equal(Number(sizes[2]), limit);
    assert.ok(Number(sizes[1]) > limit);
    return true;
  });
}

describe("memcached cache through the gateway", () => {
  const tag = `mc${Math.random().toString(36).slice(2, 10)}`;
  let defaults: TestGateway;
  let raised: TestGateway;
  let clients: { name: string; client: NodeClient }[] = [];
  let itemSizeMax: number;

  before(async () => {
    itemSizeMax = await serverItemSizeMax();
    defaults = await startTestGateway(memcachedEnv(tag));
    // The adapter lets everything through, so only the server can refuse; the
    // request limit is raised so the gateway takes a request that large.
    raised = await startTestGateway({
      ...memcachedEnv(tag, { maxValueBytes: 256 * 1024 * 1024 }),
      STATEGATE_MAX_REQUEST_BYTES: String(itemSizeMax * 2 + 1024 * 1024),
    });
    clients = protocols
      .filter((p) => p.name === "grpc" || p.name === "connect binary" || p.name === "connect json")
      .map((p) => ({ name: p.name, client: defaults.client(p.options) }));
  });

  after(async () => {
    for (const { client } of clients) client.close();
    await defaults?.close();
    await raised?.close();
  });

  it("a value over maxValueBytes answers RESOURCE_EXHAUSTED over gRPC and Connect, and the old value stays", async () => {
    const limit = 1024 * 1024 - 512; // the adapter's default maxValueBytes
    for (const { name, client } of clients) {
      const domain = unique("big");
      const exp = expiresIn(60_000);
      await client.cache.set({ domain, key: "k", value: "small", exp });
      await tooLarge(client.cache.set({ domain, key: "k", value: "x".repeat(1024 * 1024), exp }), limit);
      assert.equal((await client.cache.get({ domain, key: "k" })).value, "small", name);
    }
  });

  it("a value the memcached server refuses answers RESOURCE_EXHAUSTED with the server's limit, not OK then a miss", async () => {
    const client = raised.client();
    try {
      const domain = unique("server");
      await tooLarge(client.cache.set({ domain, key: "k", value: "x".repeat(itemSizeMax + 4096) }), itemSizeMax);
      await assert.rejects(client.cache.get({ domain, key: "k" }), (e) => ConnectError.from(e).code === Code.NotFound);
      // The connection to memcached is still good after the refusal.
      await client.cache.set({ domain, key: "after", value: { ok: true } });
      assert.deepEqual((await client.cache.get({ domain, key: "after" })).value, { ok: true });
    } finally {
      client.close();
    }
  });
});
