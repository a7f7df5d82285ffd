import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { createServer, type TLSSocket } from "node:tls";
import { createAmqpChannel } from "../src/channel/amqp.js";
import { collect, createTag, numbered, publishAll } from "../src/conformance/channel-tag.js";
import { sleep, waitFor } from "../src/conformance/helpers.js";
import { runChannelConformance } from "../src/conformance/index.js";
import { ProviderClosedError, ProviderConfigError, ProviderUnavailableError } from "../src/errors.js";
import { createChannel } from "../src/registry.js";
import type { Channel } from "../src/types.js";
import {
  addr,
  closeConnectionsOf,
  credentials,
  open,
  sorted,
  uniqueGroup,
  uniquePrefix,
  watched,
} from "./amqp-helpers.js";

// Delivery through a broker takes longer than in-process, and a duplicate
// would show up later too, hence the longer waits.
runChannelConformance(() => createAmqpChannel({ addr, ...credentials }), {
  multiInstance: true,
  deliveryTimeoutMs: 5000,
  quietMs: 200,
});

describe("amqp channel: gateways sharing a broker", () => {
  it("gives every instance every plain payload, in order per publisher", async () => {
    const tag = createTag();
    const [a, b] = (await Promise.all([open(), open()])) as [Channel, Channel];
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
    const group = uniqueGroup();
    const [a, b] = (await Promise.all([open(), open()])) as [Channel, Channel];
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

  it("acknowledges a payload only after its handler, and requeues a leaving member's others", async () => {
    const tag = createTag();
    const group = uniqueGroup();
    const [a, b] = (await Promise.all([open(), open()])) as [Channel, Channel];
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

  it("acknowledges a group payload whose handler threw, so it is not redelivered", async () => {
    const tag = createTag();
    const errors: unknown[] = [];
    const channel = await open({ onError: (error) => errors.push(error) });
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
      await sleep(300);
      assert.equal(calls, 1);
      assert.ok(errors.some((error) => (error as Error).message.includes("expected by the test")));
    } finally {
      await channel.close();
    }
  });
});

describe("amqp channel: connection and errors", () => {
  it("fails creation fast with ProviderUnavailableError when the broker cannot be reached", async () => {
    const started = Date.now();
    await assert.rejects(createAmqpChannel({ addr: "127.0.0.1:1", user: "u", password: "s3cret-pw" }), (error) => {
      assert.ok(error instanceof ProviderUnavailableError);
      assert.doesNotMatch(error.message, /s3cret-pw|127\.0\.0\.1/);
      return true;
    });
    assert.ok(Date.now() - started < 3000);
  });

  it("refuses wrong credentials with ProviderUnavailableError, without the password", async () => {
    await assert.rejects(
      createAmqpChannel({ url: `amqp://guest:wr0ng-pw@${addr}/` }),
      (error: unknown) =>
        error instanceof ProviderUnavailableError &&
        /refused the credentials/.test(error.message) &&
        !error.message.includes("wr0ng-pw"),
    );
  });

  it("pings while open; after close every call fails with ProviderClosedError and nothing reconnects", async () => {
    const prefix = uniquePrefix();
    const { channel, changes } = await watched(prefix);
    await channel.ping();
    await channel.close();
    await channel.close();
    await assert.rejects(channel.ping(), ProviderClosedError);
    await assert.rejects(channel.publish("events", new Uint8Array(1)), ProviderClosedError);
    await assert.rejects(
      channel.subscribe("events", () => {}),
      ProviderClosedError,
    );
    await sleep(300);
    assert.equal(await closeConnectionsOf(prefix), 0, "no connection left open");
    assert.deepEqual(changes, []);
  });

  it("is created by the registry from its JSON spec, and refuses bad options by name", async () => {
    const channel = await createChannel({ name: "amqp", addr, user: "guest", password: "guest", prefetch: 8 });
    try {
      assert.equal(channel.name, "amqp");
      await channel.ping();
    } finally {
      await channel.close();
    }
    const refused = (spec: Record<string, unknown>, option: string) =>
      assert.rejects(
        createChannel({ name: "amqp", ...spec }),
        (error: unknown) => error instanceof ProviderConfigError && error.option === option,
      );
    await refused({ url: `amqp://${addr}`, addr }, "addr");
    await refused({ url: "http://example.com" }, "url");
    await refused({ prefix: "amq.x" }, "prefix");
    await refused({ prefetch: 0 }, "prefetch");
    await refused({ tls: "yes" }, "tls");
    await refused({ tls: { ca: "/nonexistent/ca.pem" } }, "tls.ca");
    await refused({ tls: { verify: false } }, "tls.verify");
    await refused({ url: "amqps://example.com", tls: false }, "tls");
  });
});

describe("amqp channel: TLS", () => {
  const dir = mkdtempSync(join(tmpdir(), "stategate-amqp-tls-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const certPath = join(dir, "cert.pem");
  const keyPath = join(dir, "key.pem");
  // A self-signed certificate for "stategate.test" serves as the broker's, the CA and the client's.
  execFileSync("openssl", [
    ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"],
    ...["-keyout", keyPath, "-out", certPath, "-days", "2", "-subj", "/CN=stategate.test"],
    ...["-addext", "subjectAltName=DNS:stategate.test"],
  ]);

  /** A TLS server that records each completed handshake, then hangs up before any AMQP. */
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
        createAmqpChannel({
          url: `amqps://guest:guest@127.0.0.1:${port}/`,
          tls: { ca: certPath, servername: "stategate.test" },
        }),
        ProviderUnavailableError,
      );
      assert.equal(handshakes.length, 2, "both TLS handshakes completed");
      assert.equal(handshakes[0]?.servername, "stategate.test");
      assert.equal(handshakes[0]?.clientCert, new X509Certificate(readFileSync(certPath)).fingerprint256);
      assert.equal(handshakes[1]?.clientCert, undefined);
    }));

  it("refuses a broker certificate it cannot verify", () =>
    withTlsServer(async (port, handshakes) => {
      await assert.rejects(open({ addr: `127.0.0.1:${port}`, tls: true }), unavailable(/TLS handshake/));
      // Without a servername the IP address does not match the certificate's name.
      await assert.rejects(open({ addr: `127.0.0.1:${port}`, tls: { ca: certPath } }), unavailable(/TLS handshake/));
      assert.equal(handshakes.length, 0);
    }));
});
