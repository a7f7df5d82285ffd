import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { connect } from "nats";
import { createNatsChannel } from "../src/channel/nats.js";
import { collect, createTag, numbered, publishAll } from "../src/conformance/channel-tag.js";
import { sleep, waitFor } from "../src/conformance/helpers.js";
import { runChannelConformance } from "../src/conformance/index.js";
import {
  ProviderClosedError,
  ProviderConfigError,
  ProviderUnavailableError,
  ValueTooLargeError,
} from "../src/errors.js";
import { createChannel } from "../src/registry.js";
import type { Channel } from "../src/types.js";
import {
  addr,
  open,
  sorted,
  startPrivateServer,
  uniqueGroup,
  uniquePrefix,
  watchEscapes,
  watched,
} from "./nats-helpers.js";

// One prefix for the whole run: the multi-instance groups need the factory's
// clients to share subjects. Delivery through a server takes longer than
// in-process, and a duplicate would show up later too, hence the longer waits.
const conformancePrefix = uniquePrefix();
runChannelConformance(() => createNatsChannel({ addr, prefix: conformancePrefix }), {
  multiInstance: true,
  deliveryTimeoutMs: 5000,
  quietMs: 200,
});

const unavailable = (message: RegExp) => (error: unknown) => {
  assert.ok(error instanceof ProviderUnavailableError, `a ProviderUnavailableError, got ${error}`);
  assert.match(error.message, message);
  return true;
};

describe("nats channel: gateways sharing a server", () => {
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
    const [a, b] = (await Promise.all([open({ prefix }), open({ prefix })])) as [Channel, Channel];
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
      await publishAll(b, "events", tag, next);
      await waitFor(() => onA.received.length >= kept + 20, "the next 20 payloads on the remaining member", 3000);
      await sleep(200);
      assert.deepEqual(onA.received.slice(kept), next);
      assert.equal(onB.received.length, leftWith);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it("lets a leaving member handle what the server routed to it before it left, so nothing is lost", async () => {
    const tag = createTag();
    const prefix = uniquePrefix();
    const group = uniqueGroup();
    const [a, b] = (await Promise.all([open({ prefix }), open({ prefix })])) as [Channel, Channel];
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
      const payloads = numbered("q", 20);
      await publishAll(b, "events", tag, payloads);
      // A is stuck in its first handler call, with the rest of its share queued.
      await waitFor(() => handledByA.length === 1 && onB.received.length >= 1, "a share for each member", 3000);
      await sleep(200);
      const leaving = leave();
      await sleep(100);
      release();
      await leaving;
      const handled = handledByA.length;
      await b.publish("events", tag.wrap("after"));
      await waitFor(() => onB.received.includes("after"), "the payload after A left", 3000);
      await sleep(200);
      assert.ok(handled > 1, `A handled its queued share (${handled}) before its unsubscribe resolved`);
      assert.equal(handledByA.length, handled, "nothing reached A after its unsubscribe resolved");
      assert.deepEqual(sorted([...handledByA, ...onB.received]), sorted([...payloads, "after"]));
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it("keeps topics, prefixes and groups apart, whatever characters the group names carry", async () => {
    const tag = createTag();
    const prefix = uniquePrefix();
    const [a, b] = (await Promise.all([open({ prefix }), open({ prefix })])) as [Channel, Channel];
    const other = await open();
    // A raw client sees every subject under the prefix: only the two topic subjects may appear.
    const raw = await connect({ servers: addr });
    const subjects = new Set<string>();
    raw.subscribe(`${prefix}.>`, { callback: (_error, message) => subjects.add(message.subject) });
    await raw.flush();
    try {
      const names = ["a b", "a.b", "a.*", "a.>", "a", "*", ">", "", " ", "日本語 ✓", "a\tb\r\n", "$SYS.x"];
      const groups = await Promise.all(
        names.map(async (name) => ({
          name,
          members: [await collect(a, "events", tag, name), await collect(b, "events", tag, name)],
        })),
      );
      const messages = await collect(b, "messages", tag);
      const otherPrefix = await collect(other, "events", tag);
      const payloads = numbered("p", 10);
      await publishAll(a, "events", tag, payloads);
      await b.publish("messages", tag.wrap("m"));
      await waitFor(
        () =>
          groups.every(({ members }) => members.flatMap((m) => m.received).length >= 10) &&
          messages.received.length >= 1,
        "every group's payloads",
        5000,
      );
      await sleep(200);
      for (const { name, members } of groups) {
        // Each group is a queue of its own: it gets every payload, exactly once, and no "messages" payload.
        assert.deepEqual(sorted(members.flatMap((m) => m.received)), sorted(payloads), JSON.stringify(name));
      }
      assert.deepEqual(messages.received, ["m"]);
      assert.deepEqual(otherPrefix.received, [], "another prefix hears nothing");
      assert.deepEqual(sorted([...subjects]), [`${prefix}.events`, `${prefix}.messages`]);
    } finally {
      await raw.close();
      await Promise.all([a.close(), b.close(), other.close()]);
    }
  });

  it("refuses a payload larger than the server accepts with ValueTooLargeError", async () => {
    const channel = await open();
    try {
      await assert.rejects(channel.publish("messages", new Uint8Array(2 * 1024 * 1024)), ValueTooLargeError);
      await channel.ping();
    } finally {
      await channel.close();
    }
  });
});

describe("nats channel: outages (a private nats-server)", () => {
  it("fails fast while the server is down, and delivers again after it restarts, telling each subscription once", async (t) => {
    const escapes = watchEscapes();
    const server = await startPrivateServer();
    const prefix = uniquePrefix();
    const tag = createTag();
    const group = uniqueGroup();
    const options = { addr: server.addr, prefix, reconnectWaitMs: 100 };
    const [a, b] = await Promise.all([watched(options), watched(options)]);
    try {
      const reconnects = { plain: 0, memberA: 0, memberB: 0 };
      const received = { plain: [] as string[], members: [] as string[] };
      const record = (into: string[]) => (payload: Uint8Array) => {
        const mine = tag.unwrap(payload);
        if (mine !== undefined) into.push(new TextDecoder().decode(mine));
      };
      await a.channel.subscribe("events", record(received.plain), { onReconnect: () => reconnects.plain++ });
      await a.channel.subscribe("events", record(received.members), { group, onReconnect: () => reconnects.memberA++ });
      await b.channel.subscribe("events", record(received.members), { group, onReconnect: () => reconnects.memberB++ });
      await b.channel.publish("events", tag.wrap("before"));
      await waitFor(() => received.plain.length === 1 && received.members.length === 1, "the first payload", 3000);

      await server.stop();
      await waitFor(() => !a.connected() && !b.connected(), "both to notice", 3000);
      let started = Date.now();
      await assert.rejects(b.channel.publish("events", tag.wrap("lost")), unavailable(/not connected/));
      await assert.rejects(a.channel.ping(), ProviderUnavailableError);
      await assert.rejects(
        a.channel.subscribe("events", () => {}),
        ProviderUnavailableError,
      );
      const failedIn = Date.now() - started;
      assert.ok(failedIn < 100, `calls failed fast (${failedIn} ms)`);

      started = Date.now();
      await server.start();
      await waitFor(() => a.connected() && b.connected(), "both to reconnect", 10_000);
      t.diagnostic(`both back ${Date.now() - started} ms after the server started; calls failed in ${failedIn} ms`);

      const later = numbered("after", 10);
      await publishAll(b.channel, "events", tag, later);
      await waitFor(
        () => received.plain.length === 11 && received.members.length === 11,
        "the payloads after the restart",
        5000,
      );
      await sleep(200);
      assert.deepEqual(received.plain, ["before", ...later]);
      assert.deepEqual(sorted(received.members), sorted(["before", ...later]));
      assert.deepEqual(reconnects, { plain: 1, memberA: 1, memberB: 1 });
      assert.deepEqual(a.changes, [false, true]);
      assert.deepEqual(escapes.escaped, []);
    } finally {
      escapes.stop();
      await Promise.all([a.channel.close(), b.channel.close()]);
      await server.stop();
    }
  });

  it("gives up after maxReconnectAttempts and then answers ProviderUnavailableError", async () => {
    const escapes = watchEscapes();
    const server = await startPrivateServer();
    const { channel, errors } = await watched({ addr: server.addr, reconnectWaitMs: 20, maxReconnectAttempts: 2 });
    try {
      await server.stop();
      await waitFor(() => errors.some((e) => /gave up/.test(String(e))), "the client to give up", 5000);
      await assert.rejects(channel.publish("events", new Uint8Array(1)), unavailable(/gave up/));
      await assert.rejects(channel.ping(), unavailable(/gave up/));
      await channel.close();
      await assert.rejects(channel.ping(), ProviderClosedError);
      assert.deepEqual(escapes.escaped, []);
    } finally {
      escapes.stop();
      await channel.close();
    }
  });

  it("pings while open; after close every call fails with ProviderClosedError and nothing reconnects", async () => {
    const server = await startPrivateServer();
    const prefix = uniquePrefix();
    const { channel, changes } = await watched({ addr: server.addr, prefix, reconnectWaitMs: 20 });
    try {
      await channel.ping();
      assert.deepEqual(await server.clients(), [`stategate ${prefix} (pid ${process.pid})`]);
      await channel.close();
      await channel.close();
      await assert.rejects(channel.ping(), ProviderClosedError);
      await assert.rejects(channel.publish("events", new Uint8Array(1)), ProviderClosedError);
      await assert.rejects(
        channel.subscribe("events", () => {}),
        ProviderClosedError,
      );
      // Closed while the server is down, in the middle of reconnecting.
      const down = await watched({ addr: server.addr, reconnectWaitMs: 20 });
      await server.stop();
      await waitFor(() => !down.connected(), "the other channel to notice", 3000);
      const closing = Date.now();
      await down.channel.close();
      assert.ok(Date.now() - closing < 500, "close does not wait for the server");
      await server.start();
      await sleep(300);
      assert.deepEqual(await server.clients(), [], "no connection, and no reconnect");
      assert.deepEqual(changes, []);
      assert.deepEqual(down.changes, [false]);
    } finally {
      await channel.close();
      await server.stop();
    }
  });
});

describe("nats channel: connection and errors", () => {
  it("fails creation fast with ProviderUnavailableError when the server cannot be reached", async () => {
    const started = Date.now();
    await assert.rejects(createNatsChannel({ addr: "127.0.0.1:1", user: "u", password: "s3cret-pw" }), (error) => {
      assert.ok(error instanceof ProviderUnavailableError);
      assert.match(error.message, /cannot reach the server/);
      assert.doesNotMatch(error.message, /s3cret-pw|127\.0\.0\.1/);
      return true;
    });
    assert.ok(Date.now() - started < 3000);
  });

  it("authenticates with user and password, refuses wrong ones without echoing them, and reports denied subjects", async () => {
    const dir = mkdtempSync(join(tmpdir(), "stategate-nats-auth-"));
    const config = join(dir, "auth.conf");
    writeFileSync(
      config,
      'authorization { users = [ { user: alice, password: "s3cret-pw", permissions: { publish: "ok.>", subscribe: "ok.>" } } ] }\n',
    );
    const server = await startPrivateServer(["-c", config]);
    try {
      const channel = await createNatsChannel({
        addr: server.addr,
        user: "alice",
        password: "s3cret-pw",
        prefix: "ok",
      });
      try {
        const received: number[] = [];
        await channel.subscribe("events", (payload) => void received.push(payload.length));
        await channel.publish("events", new Uint8Array(3));
        await waitFor(() => received.length === 1, "the payload", 3000);
      } finally {
        await channel.close();
      }
      await assert.rejects(
        createNatsChannel({ addr: server.addr, user: "alice", password: "wr0ng-pw" }),
        (error: unknown) =>
          unavailable(/refused the credentials/)(error) && !(error as Error).message.includes("wr0ng-pw"),
      );
      const denied = await createNatsChannel({ addr: server.addr, user: "alice", password: "s3cret-pw", prefix: "no" });
      try {
        await assert.rejects(
          denied.subscribe("events", () => {}),
          unavailable(/denied/),
        );
        await assert.rejects(
          denied.subscribe("events", () => {}, { group: "g" }),
          unavailable(/denied/),
        );
        await denied.ping();
      } finally {
        await denied.close();
      }
    } finally {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("authenticates with a token", async () => {
    const server = await startPrivateServer(["--auth", "t0ken-value"]);
    try {
      const channel = await createNatsChannel({ addr: server.addr, token: "t0ken-value" });
      await channel.ping();
      await channel.close();
      await assert.rejects(
        createNatsChannel({ addr: server.addr, token: "wr0ng-t0ken" }),
        (error: unknown) =>
          unavailable(/refused the credentials/)(error) && !(error as Error).message.includes("wr0ng-t0ken"),
      );
    } finally {
      await server.stop();
    }
  });

  it("is created by the registry from its JSON spec, and refuses bad options by name", async () => {
    const channel = await createChannel(
      JSON.parse(`{"name":"nats","addr":"${addr}","prefix":"${uniquePrefix()}","publishTimeoutMs":2000}`),
    );
    try {
      assert.equal(channel.name, "nats");
      await channel.ping();
    } finally {
      await channel.close();
    }
    const servers = await createChannel({ name: "nats", servers: `127.0.0.1:1, ${addr}`, prefix: uniquePrefix() });
    await servers.ping();
    await servers.close();

    const refused = (spec: Record<string, unknown>, option: string) =>
      assert.rejects(
        createChannel({ name: "nats", ...spec }),
        (error: unknown) => error instanceof ProviderConfigError && error.option === option,
        `${JSON.stringify(spec)} refused naming ${option}`,
      );
    for (const prefix of ["a.b", "a b", "*", ">", "a>", "$SYS", "x".repeat(201)]) {
      await refused({ prefix }, "prefix");
    }
    await refused({ addr, servers: addr }, "servers");
    await refused({ servers: "a:4222,,b:4222" }, "servers");
    await refused({ addr: "nats://example.com:4222" }, "addr");
    await refused({ addr: "example.com:99999" }, "addr");
    await refused({ user: "alice" }, "password");
    await refused({ password: "pw" }, "user");
    await refused({ token: "t", user: "alice", password: "pw" }, "user");
    await refused({ maxReconnectAttempts: 0 }, "maxReconnectAttempts");
    await refused({ maxReconnectAttempts: 1.5 }, "maxReconnectAttempts");
    await refused({ publishTimeoutMs: 0 }, "publishTimeoutMs");
    await refused({ reconnectWaitMs: -1 }, "reconnectWaitMs");
    await refused({ tls: "yes" }, "tls");
    await refused({ tls: { ca: "/nonexistent/ca.pem" } }, "tls.ca");
    await refused({ tls: { verify: false } }, "tls.verify");
    await refused({ tls: { cert: "/nonexistent/cert.pem", key: "/nonexistent/key.pem" } }, "tls.cert");
    await refused({ tls: { cert: "/nonexistent/cert.pem" } }, "tls.key");
    await refused({ subject: "x" }, "subject");
  });
});

describe("nats channel: TLS (a private nats-server that verifies clients)", () => {
  const dir = mkdtempSync(join(tmpdir(), "stategate-nats-tls-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const certPath = join(dir, "cert.pem");
  const keyPath = join(dir, "key.pem");
  // A self-signed certificate for "stategate.test" serves as the server's, the CA and the client's.
  execFileSync(
    "openssl",
    [
      ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"],
      ...["-keyout", keyPath, "-out", certPath, "-days", "2", "-subj", "/CN=stategate.test"],
      ...["-addext", "subjectAltName=DNS:stategate.test"],
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  const tlsArgs = ["--tls", "--tlscert", certPath, "--tlskey", keyPath, "--tlsverify", "--tlscacert", certPath];

  it("connects with the CA, servername and client certificate it is given, and carries payloads", async () => {
    const server = await startPrivateServer(tlsArgs);
    try {
      const tls = { ca: certPath, cert: certPath, key: keyPath, servername: "stategate.test" };
      const channel = await open({ addr: server.addr, tls });
      try {
        const received: string[] = [];
        await channel.subscribe("messages", (payload) => void received.push(new TextDecoder().decode(payload)));
        await channel.publish("messages", new TextEncoder().encode("over tls"));
        await waitFor(() => received.length === 1, "the payload", 3000);
        assert.deepEqual(received, ["over tls"]);
      } finally {
        await channel.close();
      }
      // rejectUnauthorized: false skips verifying the server, but the client certificate still goes.
      const unverified = await open({
        addr: server.addr,
        tls: { cert: certPath, key: keyPath, rejectUnauthorized: false },
      });
      await unverified.ping();
      await unverified.close();
    } finally {
      await server.stop();
    }
  });

  it("refuses a server certificate it cannot verify, and is refused without a client certificate", async () => {
    const server = await startPrivateServer(tlsArgs);
    try {
      const client = { cert: certPath, key: keyPath };
      await assert.rejects(open({ addr: server.addr, tls: true }), unavailable(/TLS handshake/));
      // Without a servername the IP address does not match the certificate's name.
      await assert.rejects(open({ addr: server.addr, tls: { ca: certPath, ...client } }), unavailable(/TLS handshake/));
      // The server hangs up after the handshake; the client notices only when its connect timeout runs out.
      await assert.rejects(
        open({ addr: server.addr, tls: { ca: certPath, servername: "stategate.test" }, connectTimeoutMs: 1000 }),
        ProviderUnavailableError,
      );
    } finally {
      await server.stop();
    }
  });

  it("refuses a server that does not offer TLS when TLS is required", async () => {
    await assert.rejects(open({ tls: true }), unavailable(/does not offer/));
  });
});
