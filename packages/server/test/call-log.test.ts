import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { after, before, it } from "node:test";
import { createClient } from "@stategate/sdk-node";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import pino from "pino";
import { loadConfig } from "../src/config.js";
import type { Gateway } from "../src/gateway.js";
import { startGateway } from "../src/gateway.js";
import { unique } from "./helpers.js";

const lines: Record<string, unknown>[] = [];
const sink = new Writable({
  write(chunk: Buffer, _encoding, callback) {
    for (const text of chunk.toString("utf8").split("\n")) if (text !== "") lines.push(JSON.parse(text));
    callback();
  },
});
const dataDir = mkdtempSync(join(tmpdir(), "stategate-calllog-"));
const keys = await generateKeyPair("ES256", { extractable: true });
const jwks = createServer(async (_req, res) => {
  res.writeHead(200, { "content-type": "application/json" });
  res.end(JSON.stringify({ keys: [{ ...(await exportJWK(keys.publicKey)), kid: "k1", alg: "ES256", use: "sig" }] }));
});
let gateway: Gateway;

before(async () => {
  await new Promise<void>((resolve) => jwks.listen(0, "127.0.0.1", resolve));
  const config = loadConfig({
    STATEGATE_PORT: "0",
    STATEGATE_METRICS_PORT: "off",
    STATEGATE_DATA_DIR: dataDir,
    STATEGATE_JWKS_URI: `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json`,
  });
  gateway = await startGateway(config, pino({ level: "debug" }, sink));
});
after(async () => {
  await gateway.close();
  jwks.close();
  rmSync(dataDir, { recursive: true, force: true });
});

it("a call's log line names the authenticated subject, never the token", async () => {
  const token = await new SignJWT({ sub: "user-7" })
    .setProtectedHeader({ alg: "ES256", kid: "k1" })
    .setExpirationTime("5m")
    .sign(keys.privateKey);
  const client = createClient({ baseUrl: `http://127.0.0.1:${gateway.port}`, protocol: "connect", token });
  const requestId = `sub-${unique("r")}`;
  await client.entity.set(
    { domain: unique("log"), type: "t", key: "k", values: {} },
    { headers: { "x-request-id": requestId } },
  );
  client.close();
  const line = lines.find((l) => l.requestId === requestId);
  assert.equal(line?.subject, "user-7");
  assert.equal(line?.door, "connect");
  assert.equal(line?.code, "ok");
  assert.ok(!JSON.stringify(lines).includes(token), "the token is not logged");
  // Without a token the call is refused, and its line has no subject.
  const anonymous = createClient({ baseUrl: `http://127.0.0.1:${gateway.port}`, protocol: "grpc" });
  await assert.rejects(
    anonymous.entity.get({ domain: "d", type: "t", key: "k" }, { headers: { "x-request-id": "anon-1" } }),
  );
  anonymous.close();
  const refused = lines.find((l) => l.requestId === "anon-1");
  assert.equal(refused?.code, "Unauthenticated");
  assert.equal(refused?.subject, undefined);
});
