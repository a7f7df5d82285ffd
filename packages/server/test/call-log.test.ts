import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, it } from "node:test";
import { createClient } from "@stategate/sdk-node";
import pino from "pino";
import { loadConfig } from "../src/config.js";
import type { Gateway } from "../src/gateway.js";
import { startGateway } from "../src/gateway.js";
import { jsonLineSink, unique } from "./helpers.js";
import type { TestIssuer } from "./test-issuer.js";
import { startTestIssuer } from "./test-issuer.js";

const lines: Record<string, unknown>[] = [];
const sink = jsonLineSink(lines);
const dataDir = mkdtempSync(join(tmpdir(), "stategate-calllog-"));
let issuer: TestIssuer;
let gateway: Gateway;

before(async () => {
  issuer = await startTestIssuer();
  const config = loadConfig({
    STATEGATE_PORT: "0",
    STATEGATE_METRICS_PORT: "off",
    STATEGATE_DATA_DIR: dataDir,
    STATEGATE_JWKS_URI: issuer.jwksUri,
  });
  gateway = await startGateway(config, pino({ level: "debug" }, sink));
});
after(async () => {
  await gateway.close();
  await issuer.close();
  rmSync(dataDir, { recursive: true, force: true });
});

it("a call's log line names the authenticated subject, never the token", async () => {
  const token = await issuer.sign({ sub: "user-7" }, "5m");
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
