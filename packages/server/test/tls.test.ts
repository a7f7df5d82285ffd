import assert from "node:assert/strict";
import { execFile, execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import https from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import tls from "node:tls";
import { promisify } from "node:util";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { EntityService, EventService } from "@stategate/api";
import type { TestGateway } from "./helpers.js";
import { repoRoot, startTestGateway, take, unique } from "./helpers.js";

const dir = mkdtempSync(join(tmpdir(), "stategate-tls-"));
const certFile = join(dir, "cert.pem");
const keyFile = join(dir, "key.pem");
const otherKeyFile = join(dir, "other-key.pem");
let ca: Buffer;
let tg: TestGateway;
let baseUrl: string;

before(async () => {
  // A self-signed certificate for this run only, valid for 127.0.0.1 and localhost.
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      keyFile,
      "-out",
      certFile,
      "-days",
      "1",
      "-subj",
      "/CN=localhost",
      "-addext",
      "subjectAltName=DNS:localhost,IP:127.0.0.1",
    ],
    { stdio: "ignore" },
  );
  execFileSync(
    "openssl",
    ["genpkey", "-algorithm", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-out", otherKeyFile],
    { stdio: "ignore" },
  );
  ca = readFileSync(certFile);
  tg = await startTestGateway({ STATEGATE_TLS_CERT_FILE: certFile, STATEGATE_TLS_KEY_FILE: keyFile });
  baseUrl = `https://127.0.0.1:${tg.gateway.port}`;
});
after(async () => {
  await tg?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** One TLS connection offering `protocols`; resolves with what ALPN chose. */
function negotiate(protocols: string[]): Promise<string | false> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect(
      { host: "127.0.0.1", port: tg.gateway.port, ca, ALPNProtocols: protocols, servername: "localhost" },
      () => {
        resolve(socket.alpnProtocol ?? false);
        socket.end();
      },
    );
    socket.on("error", reject);
  });
}

describe("TLS on the one port", () => {
  it("negotiates HTTP/2 or HTTP/1.1 by ALPN", async () => {
    assert.equal(await negotiate(["h2", "http/1.1"]), "h2");
    assert.equal(await negotiate(["http/1.1"]), "http/1.1");
  });

  it("serves gRPC over TLS, unary and streams", async () => {
    const transport = createGrpcTransport({ baseUrl, nodeOptions: { ca } });
    const entities = createClient(EntityService, transport);
    const ref = { domain: unique("tls"), type: "t", key: "k" };
    const { event } = await entities.set({ ...ref, values: { over: "grpc+tls" } });
    assert.equal(event?.version, 1n);
    const events = await take(
      createClient(EventService, transport).stream({ domain: ref.domain, type: "*", afterPosition: 0n }),
      1,
    );
    assert.deepEqual(events[0]?.event?.entity?.values, { over: "grpc+tls" });
  });

  it("serves gRPC-Web and Connect over HTTPS with HTTP/1.1", async () => {
    const ref = { domain: unique("tls"), type: "t", key: "k" };
    const web = createClient(
      EntityService,
      createGrpcWebTransport({ baseUrl, httpVersion: "1.1", nodeOptions: { ca } }),
    );
    await web.set({ ...ref, values: { over: "grpc-web" } });
    const connect = createClient(
      EntityService,
      createConnectTransport({ baseUrl, httpVersion: "1.1", nodeOptions: { ca } }),
    );
    assert.deepEqual((await connect.get(ref)).entity?.values, { over: "grpc-web" });
  });

  it("serves REST over HTTPS", async () => {
    const path = `/api/entity/ref/${unique("tls")}/user/ada`;
    const request = (method: string, body?: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = https.request(
          {
            host: "127.0.0.1",
            port: tg.gateway.port,
            path,
            method,
            ca,
            servername: "localhost",
            headers: { "content-type": "application/json" },
          },
          (res) => {
            let text = "";
            res.on("data", (c) => {
              text += c;
            });
            res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
          },
        );
        req.on("error", reject);
        req.end(body);
      });
    const post = await request("POST", '{"values":{"name":"Ada"}}');
    assert.equal(post.status, 200, post.body);
    const get = await request("GET");
    assert.equal(get.status, 200);
    assert.deepEqual(JSON.parse(get.body).entity.values, { name: "Ada" });
  });

  it("answers buf curl over TLS with reflection", async () => {
    const out = await promisify(execFile)(join(repoRoot, "node_modules/.bin/buf"), [
      "curl",
      "--protocol",
      "grpc",
      "--cacert",
      certFile,
      "--data",
      JSON.stringify({ domain: unique("tls"), key: "k", value: "v" }),
      `https://localhost:${tg.gateway.port}/stategate.v1.CacheService/Set`,
    ]);
    assert.equal(out.stdout.trim(), "{}");
  });

  it("speaks no cleartext on a TLS port", async () => {
    await assert.rejects(fetch(`http://127.0.0.1:${tg.gateway.port}/api/entity/ref/a/b/c`));
  });
});

describe("TLS configuration", () => {
  const start = (env: Record<string, string>) =>
    spawnSync(process.execPath, [join(repoRoot, "packages/server/dist/bin/stategate.js")], {
      env: { ...process.env, STATEGATE_PORT: "0", STATEGATE_METRICS_PORT: "off", STATEGATE_DATA_DIR: dir, ...env },
      encoding: "utf8",
      timeout: 20_000,
    });
  for (const [env, expected] of [
    [
      { STATEGATE_TLS_CERT_FILE: certFile },
      /^stategate: STATEGATE_TLS_KEY_FILE: must be set with STATEGATE_TLS_CERT_FILE/,
    ],
    [
      { STATEGATE_TLS_KEY_FILE: keyFile },
      /^stategate: STATEGATE_TLS_CERT_FILE: must be set with STATEGATE_TLS_KEY_FILE/,
    ],
    [
      { STATEGATE_TLS_CERT_FILE: join(dir, "nope.pem"), STATEGATE_TLS_KEY_FILE: keyFile },
      /^stategate: STATEGATE_TLS_CERT_FILE: cannot read ".*nope.pem": ENOENT/,
    ],
    [
      { STATEGATE_TLS_CERT_FILE: keyFile, STATEGATE_TLS_KEY_FILE: keyFile },
      /^stategate: STATEGATE_TLS_CERT_FILE: .* holds no PEM certificate/,
    ],
    [
      { STATEGATE_TLS_CERT_FILE: certFile, STATEGATE_TLS_KEY_FILE: otherKeyFile },
      /^stategate: STATEGATE_TLS_KEY_FILE: does not go with STATEGATE_TLS_CERT_FILE/,
    ],
  ] as const) {
    it(`stops start-up with one line: ${Object.keys(env).join(" + ")} ${expected.source.slice(12, 60)}`, () => {
      const result = start(env);
      assert.equal(result.status, 2, result.stderr);
      const lines = result.stderr.trim().split("\n");
      assert.equal(lines.length, 1, result.stderr);
      assert.match(lines[0] ?? "", expected);
    });
  }

  it("the key never reaches the start-up log", () => {
    // The port is taken, so the gateway logs its configuration and stops.
    const result = start({
      STATEGATE_TLS_CERT_FILE: certFile,
      STATEGATE_TLS_KEY_FILE: keyFile,
      STATEGATE_PORT: String(tg.gateway.port),
      STATEGATE_LOG_LEVEL: "info",
    });
    assert.equal(result.status, 2, result.stderr);
    const key = readFileSync(keyFile, "utf8").split("\n")[1]!;
    assert.ok(result.stdout.includes(`"keyFile":"${keyFile}"`), "the path is logged");
    assert.ok(!result.stdout.includes(key) && !result.stdout.includes("PRIVATE KEY"), "the key is not");
  });
});
