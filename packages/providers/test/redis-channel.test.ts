import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { createServer, type TLSSocket } from "node:tls";
import { createRedisChannel } from "../src/channel/redis.js";
import { groupName, membersKey, streamKey } from "../src/channel/redis-link.js";
import { resolveRedisSettings } from "../src/channel/redis-options.js";
import { collect, createTag, numbered, publishAll } from "../src/conformance/channel-tag.js";
import { sleep, waitFor } from "../src/conformance/helpers.js";
import { runChannelConformance } from "../src/conformance/index.js";
import { ProviderClosedError, ProviderConfigError, ProviderUnavailableError } from "../src/errors.js";
import { createChannel } from "../src/registry.js";
import type { Channel } from "../src/types.js";
import { addr, connectionsOf, open, raw, sorted, uniqueGroup, uniquePrefix, watched } from "./redis-channel-helpers.js";

// Delivery through a server takes longer than in-process, and a duplicate
// would show up later too, hence the longer waits. One prefix for the file:
// the suite's instances must see each other.
const conformancePrefix = uniquePrefix();
runChannelConformance(() => createRedisChannel({ addr, prefix: conformancePrefix }), {
  multiInstance: true,
  deliveryTimeoutMs: 5000,
  quietMs: 200,
});

// Fast claiming, so the hand-over tests take a second, not ten.
const groupIdleMs = 1000;

describe("redis channel: gateways sharing a server", () => {
  it("gives every instance every plain payload, in order per publisher", async () => {
    const tag = createTag();
    const prefix = uniquePrefix();
    const [a, b] = (await Promise.all([open({ prefix }), open({ prefix })])) as [Channel, Channel];
    try {
      const onA = await collect(a, "events", tag);
      const onB = await collect(b, "events", tag);
      const fromA = numbered("a", 25);
      const fromB = numbered("b", 25);
      await Promise.all([publishAll(a, "events", tag, fromA), publishAll(b, "events", tag, fromB)]);
      await waitFor(() => onA.received.length >= 50 && onB.received.length >= 50, "50 payloads on each", 5000);
      await sleep(200);
      for (const { received } of [onA, onB]) {
        assert.equal(received.length, 50);
        assert.deepEqual(
          received.filter((p) => p.startsWith("a-")),
          fromA,
        );
        assert.deepEqual(
          received.filter((p) => p.startsWith("b-")),
          fromB,
        );
      }
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it("splits a group across instances, each payload once, and hands all to the rest when a member leaves", async () => {
    const tag = createTag();
    const prefix = uniquePrefix();
    const group = uniqueGroup();
    const [a, b] = (await Promise.all([open({ prefix, groupIdleMs }), open({ prefix, groupIdleMs })])) as [
      Channel,
      Channel,
    ];
    try {
      const onA = await collect(a, "events", tag, group);
      const onB = await collect(b, "events", tag, group);
      const first = numbered("g", 100);
      await publishAll(a, "events", tag, first);
      await waitFor(() => onA.received.length + onB.received.length >= 100, "100 payloads", 5000);
      await sleep(200);
      assert.deepEqual(sorted([...onA.received, ...onB.received]), sorted(first));
      assert.ok(onA.received.length > 0 && onB.received.length > 0, "both members got a share");

      await onB.unsubscribe();
      const kept = onA.received.length;
      const leftWith = onB.received.length;
      const next = numbered("n", 20);
      const started = Date.now();
      await publishAll(b, "events", tag, next);
      await waitFor(() => onA.received.length >= kept + 20, "the next 20 payloads on the remaining member", 3000);
      await sleep(200);
      assert.deepEqual(onA.received.slice(kept), next);
      assert.equal(onB.received.length, leftWith);
      assert.ok(Date.now() - started < 3000);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it("acknowledges a payload only after its handler, and hands a leaving member's others to the group", async () => {
    const tag = createTag();
    const prefix = uniquePrefix();
    const group = uniqueGroup();
    const [a, b] = (await Promise.all([open({ prefix, groupIdleMs }), open({ prefix, groupIdleMs })])) as [
      Channel,
      Channel,
    ];
    try {
      const handledByA: string[] = [];
      let release = () => {};
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      const leave = await a.subscribe(
        "events",
        async (payload) => {
          const mine = tag.unwrap(payload);
          if (mine === undefined) return;
          handledByA.push(new TextDecoder().decode(mine));
          await gate;
        },
        { group },
      );
      const onB = await collect(b, "events", tag, group);
      const payloads = numbered("q", 10);
      await publishAll(b, "events", tag, payloads);
      // A is stuck in its first handler call, holding the rest of its share unacknowledged.
      await waitFor(() => handledByA.length === 1 && onB.received.length >= 1, "a share for each member", 3000);
      await sleep(200);
      const client = await raw();
      const pendingOnA = await client.xpending(streamKey(resolveRedisSettings({ prefix }), "events"), groupName(group));
      assert.equal((pendingOnA as [number])[0], 10 - onB.received.length, "A's share is pending, unacknowledged");
      client.disconnect();
      const leaving = leave();
      await sleep(100);
      release();
      await leaving;
      await waitFor(() => onB.received.length >= 9, "A's unhandled share on B", 3000);
      await sleep(200);
      assert.equal(handledByA.length, 1);
      assert.deepEqual(sorted([...handledByA, ...onB.received]), sorted(payloads));
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it("hands the payloads a dead member held to a live one once it has been silent for groupIdleMs, each once", async () => {
    const tag = createTag();
    const prefix = uniquePrefix();
    const group = uniqueGroup();
    const settings = resolveRedisSettings({ prefix });
    const stream = streamKey(settings, "events");
    const members = membersKey(settings, "events", group);
    const ghost = await raw();
    const publisher = await open({ prefix });
    let live: Channel | undefined;
    try {
      // A gateway whose member joined the group, was handed payloads and died
      // without acknowledging them: its consumer is in the group and its mark
      // in the member set, as the adapter's own join leaves them.
      await ghost.xgroup("CREATE", stream, groupName(group), "$", "MKSTREAM");
      await ghost.xgroup("CREATECONSUMER", stream, groupName(group), "ghost");
      const [seconds = 0, micros = 0] = (await ghost.time()).map(Number);
      await ghost.zadd(members, seconds * 1000 + Math.floor(micros / 1000), "ghost");
      const held = numbered("held", 5);
      await publishAll(publisher, "events", tag, held);
      const read = (await ghost.xreadgroupBuffer(
        "GROUP",
        groupName(group),
        "ghost",
        "COUNT",
        100,
        "STREAMS",
        stream,
        ">",
      )) as [Buffer, [Buffer, Buffer[]][]][] | null;
      const readAt = Date.now();
      const taken = read?.[0]?.[1] ?? [];
      // Every payload is the ghost's, pending and never acknowledged; no live member could have had one.
      assert.deepEqual(
        taken.map(([, fields]) => new TextDecoder().decode(tag.unwrap(fields[1] as Buffer))),
        held,
      );
      assert.equal(((await ghost.xpending(stream, groupName(group))) as [number])[0], 5);

      // The live member joins while the ghost still counts as a member, so the group (and what the ghost holds) stays.
      live = await open({ prefix, groupIdleMs });
      const onLive = await collect(live, "events", tag, group);
      const fresh = numbered("fresh", 3);
      await publishAll(publisher, "events", tag, fresh);
      await waitFor(() => onLive.received.length >= 3, "the payloads published after the live member joined", 3000);
      assert.deepEqual(onLive.received, fresh, "new payloads go to the live member at once");

      // Not before the ghost has been silent for groupIdleMs …
      await sleep(Math.max(0, readAt + groupIdleMs / 2 - Date.now()));
      assert.deepEqual(
        onLive.received.filter((p) => p.startsWith("held")),
        [],
        "nothing is claimed from a member silent for less than groupIdleMs",
      );
      // … but then, every payload it held, each once.
      await waitFor(() => onLive.received.length >= 8, "the ghost's payloads on the live member", 5000);
      const claimedAfter = Date.now() - readAt;
      assert.ok(claimedAfter >= groupIdleMs - 100, `claimed only once the ghost was silent (${claimedAfter} ms)`);
      await sleep(groupIdleMs + 500); // a second claim round would bring copies by now
      assert.equal(onLive.received.length, 8, "no payload twice");
      assert.deepEqual(sorted(onLive.received), sorted([...fresh, ...held]));
      assert.deepEqual(
        ((await ghost.xpending(stream, groupName(group))) as [number])[0],
        0,
        "the live member acknowledged what it claimed",
      );
      // Once it holds nothing, the dead member's consumer is forgotten.
      const consumers = (await ghost.xinfo("CONSUMERS", stream, groupName(group))) as string[][];
      assert.ok(!consumers.some((fields) => fields[1] === "ghost"), "the ghost's consumer was deleted");
    } finally {
      ghost.disconnect();
      await Promise.all([publisher.close(), live?.close()]);
    }
  });

  it("does not hand over the payloads of a live member whose handler is slower than groupIdleMs", async () => {
    const tag = createTag();
    const prefix = uniquePrefix();
    const group = uniqueGroup();
    const options = { prefix, groupIdleMs: 500 };
    const [a, b] = (await Promise.all([open(options), open(options)])) as [Channel, Channel];
    try {
      const onA: string[] = [];
      await a.subscribe(
        "events",
        async (payload) => {
          const mine = tag.unwrap(payload);
          if (mine === undefined) return;
          onA.push(new TextDecoder().decode(mine));
          if (onA.length === 1) await sleep(1500);
        },
        { group },
      );
      const onB = await collect(b, "events", tag, group);
      const payloads = numbered("s", 10);
      await publishAll(b, "events", tag, payloads);
      await waitFor(() => onA.length + onB.received.length >= 10, "every payload", 5000);
      // Well past the claim threshold while A sat on its share.
      await sleep(1000);
      assert.ok(onA.length > 1, "A held more than the payload in hand");
      assert.deepEqual(sorted([...onA, ...onB.received]), sorted(payloads));
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it("acknowledges a group payload whose handler threw, so it is not redelivered", async () => {
    const tag = createTag();
    const errors: unknown[] = [];
    const channel = await open({ prefix: uniquePrefix(), groupIdleMs, onError: (error) => errors.push(error) });
    try {
      let calls = 0;
      await channel.subscribe(
        "messages",
        (payload) => {
          if (tag.unwrap(payload) === undefined) return;
          calls += 1;
          throw new Error("handler failure (expected by the test)");
        },
        { group: uniqueGroup() },
      );
      await channel.publish("messages", tag.wrap("x"));
      await waitFor(() => calls === 1, "the payload", 3000);
      // Past the claim threshold: an unacknowledged payload would come back by now.
      await sleep(groupIdleMs * 2);
      assert.equal(calls, 1);
      assert.ok(errors.some((error) => (error as Error).message.includes("expected by the test")));
    } finally {
      await channel.close();
    }
  });

  it("keeps no stream while no group exists, and deletes a group with its last member", async () => {
    const prefix = uniquePrefix();
    const channel = await open({ prefix, maxLen: 50 });
    const client = await raw();
    const stream = streamKey(resolveRedisSettings({ prefix }), "events");
    try {
      await channel.publish("events", new Uint8Array([1]));
      assert.equal(await client.exists(stream), 0, "plain traffic is not kept");
      const group = uniqueGroup();
      const leaveA = await channel.subscribe("events", () => {}, { group });
      const leaveB = await channel.subscribe("events", () => {}, { group });
      for (let i = 0; i < 300; i++) await channel.publish("events", new Uint8Array([i % 256]));
      const length = await client.xlen(stream);
      assert.ok(length >= 50 && length < 300, `the stream is trimmed to about maxLen (${length})`);
      await leaveA();
      assert.equal(await client.exists(stream), 1, "the group stays with a live member");
      await leaveB();
      assert.equal(await client.exists(stream), 0, "the group, and the stream with it, went with the last member");
      assert.deepEqual(await client.keys(`${prefix}:*`), []);
    } finally {
      client.disconnect();
      await channel.close();
    }
  });
});

describe("redis channel: connection and errors", () => {
  it("fails creation fast with ProviderUnavailableError when the server cannot be reached", async () => {
    const started = Date.now();
    await assert.rejects(createRedisChannel({ addr: "127.0.0.1:1", password: "s3cret-pw" }), (error) => {
      assert.ok(error instanceof ProviderUnavailableError);
      assert.match(error.message, /cannot reach the server/);
      assert.doesNotMatch(error.message, /s3cret-pw|127\.0\.0\.1/);
      return true;
    });
    assert.ok(Date.now() - started < 3000);
  });

  it("refuses wrong credentials with ProviderUnavailableError, without the password", async () => {
    const prefix = uniquePrefix();
    await assert.rejects(
      createRedisChannel({ url: `redis://nobody:wr0ng-pw@${addr}/`, prefix }),
      (error: unknown) =>
        error instanceof ProviderUnavailableError &&
        /refused the credentials/.test(error.message) &&
        !error.message.includes("wr0ng-pw"),
    );
    await sleep(300);
    assert.deepEqual(await connectionsOf(prefix), [], "no connection keeps retrying");
  });

  it("pings while open; after close every call fails with ProviderClosedError and nothing reconnects", async () => {
    const prefix = uniquePrefix();
    const { channel, changes } = await watched(prefix);
    await channel.subscribe("events", () => {});
    await channel.subscribe("events", () => {}, { group: uniqueGroup() });
    await channel.ping();
    assert.equal((await connectionsOf(prefix)).length, 3, "publishing, pub/sub and one group member");
    await channel.close();
    await channel.close();
    await assert.rejects(channel.ping(), ProviderClosedError);
    await assert.rejects(channel.publish("events", new Uint8Array(1)), ProviderClosedError);
    await assert.rejects(
      channel.subscribe("events", () => {}),
      ProviderClosedError,
    );
    await sleep(300);
    assert.deepEqual(await connectionsOf(prefix), [], "no connection left open");
    assert.deepEqual(changes, []);
  });

  it("is created by the registry from its JSON spec, and refuses bad options by name", async () => {
    const channel = await createChannel({ name: "redis", addr, db: 1, prefix: uniquePrefix(), maxLen: 100 });
    try {
      assert.equal(channel.name, "redis");
      await channel.ping();
    } finally {
      await channel.close();
    }
    const refused = (spec: Record<string, unknown>, option: string) =>
      assert.rejects(
        createChannel({ name: "redis", ...spec }),
        (error: unknown) => error instanceof ProviderConfigError && error.option === option,
      );
    await refused({ url: `redis://${addr}`, addr }, "addr");
    await refused({ url: "http://example.com" }, "url");
    await refused({ url: "redis://example.com/x" }, "url");
    await refused({ addr: "::1" }, "addr");
    await refused({ user: "u" }, "password");
    await refused({ prefix: "" }, "prefix");
    await refused({ db: -1 }, "db");
    await refused({ groupIdleMs: 10 }, "groupIdleMs");
    await refused({ maxLen: 0 }, "maxLen");
    await refused({ tls: "yes" }, "tls");
    await refused({ tls: { ca: "/nonexistent/ca.pem" } }, "tls.ca");
    await refused({ tls: { verify: false } }, "tls.verify");
    await refused({ url: "rediss://example.com", tls: false }, "tls");
    await refused({ onError: "x" }, "onError");
  });

  it("refuses a database the server does not have", async () => {
    await assert.rejects(
      open({ prefix: uniquePrefix(), db: 100_000 }),
      (error: unknown) => error instanceof ProviderUnavailableError && /database/.test(error.message),
    );
  });
});

describe("redis channel: TLS", () => {
  const dir = mkdtempSync(join(tmpdir(), "stategate-redis-tls-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const certPath = join(dir, "cert.pem");
  const keyPath = join(dir, "key.pem");
  // A self-signed certificate for "stategate.test" serves as the server's, the CA and the client's.
  execFileSync("openssl", [
    ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"],
    ...["-keyout", keyPath, "-out", certPath, "-days", "2", "-subj", "/CN=stategate.test"],
    ...["-addext", "subjectAltName=DNS:stategate.test"],
  ]);

  /** A TLS server that records each completed handshake, then hangs up before any Redis command. */
  async function withTlsServer(
    body: (port: number, handshakes: { servername: string | false; clientCert: string | undefined }[]) => Promise<void>,
  ): Promise<void> {
    const handshakes: { servername: string | false; clientCert: string | undefined }[] = [];
    const server = createServer(
      { key: readFileSync(keyPath), cert: readFileSync(certPath), requestCert: true, rejectUnauthorized: false },
      (socket: TLSSocket) => {
        handshakes.push({
          servername: (socket as TLSSocket & { servername: string | false }).servername,
          clientCert: socket.getPeerCertificate().fingerprint256,
        });
        socket.destroy();
      },
    );
    server.on("tlsClientError", () => {});
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      await body((server.address() as AddressInfo).port, handshakes);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  }

  const unavailable = (message: RegExp) => (error: unknown) =>
    error instanceof ProviderUnavailableError && message.test(error.message);

  it("connects with the CA, servername and client certificate it is given", () =>
    withTlsServer(async (port, handshakes) => {
      const tls = { ca: certPath, cert: certPath, key: keyPath, servername: "stategate.test" };
      await assert.rejects(open({ addr: `127.0.0.1:${port}`, tls }), ProviderUnavailableError);
      await assert.rejects(
        createRedisChannel({ url: `rediss://127.0.0.1:${port}/`, tls: { ca: certPath, servername: "stategate.test" } }),
        ProviderUnavailableError,
      );
      // Two connections (publishing and pub/sub) per attempt.
      assert.equal(handshakes.length, 4, "every TLS handshake completed");
      assert.equal(handshakes[0]?.servername, "stategate.test");
      const fingerprint = new X509Certificate(readFileSync(certPath)).fingerprint256;
      assert.deepEqual(
        handshakes.map((h) => h.clientCert),
        [fingerprint, fingerprint, undefined, undefined],
      );
    }));

  it("refuses a server certificate it cannot verify", () =>
    withTlsServer(async (port, handshakes) => {
      await assert.rejects(open({ addr: `127.0.0.1:${port}`, tls: true }), unavailable(/TLS handshake/));
      // Without a servername the IP address does not match the certificate's name.
      await assert.rejects(open({ addr: `127.0.0.1:${port}`, tls: { ca: certPath } }), unavailable(/TLS handshake/));
      assert.equal(handshakes.length, 0);
    }));
});
