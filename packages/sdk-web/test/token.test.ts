import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import type { KeyObject } from "node:crypto";
import { generateKeyPairSync, randomUUID, sign } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import type { Server } from "node:http";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import type { ClientOptions } from "../src/index.js";
import { Code, ConnectError, createClient } from "../src/index.js";

/**
 * The `token` option of the browser SDK against a real gateway with JWT auth
 * on: the built `stategate` command, verifying against a JWKS served on
 * localhost by this test. The SDK runs here on Node's fetch, which is what
 * connect-web calls in a browser too.
 */

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const AUDIENCE = "stategate-web";
const KID = "web-es256";

const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

/** An ES256 JWT for `sub`, valid for 10 minutes, signed with `key`. */
function jwt(sub: string, key: KeyObject = privateKey): string {
  const now = Math.floor(Date.now() / 1000);
  const signingInput = `${b64url({ alg: "ES256", kid: KID, typ: "JWT" })}.${b64url({ sub, aud: AUDIENCE, iat: now, exp: now + 600 })}`;
  const signature = sign("sha256", Buffer.from(signingInput), { key, dsaEncoding: "ieee-p1363" });
  return `${signingInput}.${signature.toString("base64url")}`;
}

let jwks: Server;
let gateway: ChildProcess;
let baseUrl: string;
let dataDir: string;
const output: string[] = [];

before(async () => {
  const jwk = { ...publicKey.export({ format: "jwk" }), kid: KID, alg: "ES256", use: "sig" };
  jwks = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((resolve) => jwks.listen(0, "127.0.0.1", resolve));
  const jwksPort = (jwks.address() as AddressInfo).port;

  dataDir = mkdtempSync(join(tmpdir(), "stategate-sdk-web-"));
  gateway = spawn(process.execPath, [join(repoRoot, "packages/server/dist/bin/stategate.js")], {
    env: {
      ...process.env,
      STATEGATE_PORT: "0",
      STATEGATE_METRICS_PORT: "0",
      STATEGATE_DATA_DIR: dataDir,
      STATEGATE_JWKS_URI: `http://127.0.0.1:${jwksPort}/jwks.json`,
      STATEGATE_JWT_AUDIENCE: AUDIENCE,
      STATEGATE_AUTH_DISABLED: "",
      STATEGATE_HOST: "",
      // Info at least: the "listening" line is how the port is learnt.
      STATEGATE_LOG_LEVEL: "info",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  createInterface({ input: gateway.stderr as NodeJS.ReadableStream }).on("line", (line) => output.push(line));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      gateway.kill("SIGKILL");
      reject(new Error(`gateway did not start:\n${output.join("\n")}`));
    }, 20_000);
    gateway.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited with ${code}:\n${output.join("\n")}`));
    });
    createInterface({ input: gateway.stdout as NodeJS.ReadableStream }).on("line", (line) => {
      output.push(line);
      try {
        const entry = JSON.parse(line) as { port?: number; msg?: string };
        if (entry.msg?.startsWith("stategate listening") && entry.port) {
          clearTimeout(timer);
          resolve(entry.port);
        }
      } catch {
        // not a JSON line
      }
    });
  });
  baseUrl = `http://127.0.0.1:${port}`;
});

after(async () => {
  if (gateway && gateway.exitCode === null && gateway.signalCode === null) {
    const exited = new Promise((resolve) => gateway.once("exit", resolve));
    gateway.kill("SIGTERM");
    await exited;
  }
  jwks?.closeAllConnections();
  await new Promise((resolve) => jwks?.close(resolve));
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

const protocols: { name: string; options: Pick<ClientOptions, "protocol" | "binary"> }[] = [
  { name: "connect binary", options: { protocol: "connect", binary: true } },
  { name: "connect JSON", options: { protocol: "connect", binary: false } },
  { name: "gRPC-Web binary", options: { protocol: "grpc-web", binary: true } },
  { name: "gRPC-Web JSON", options: { protocol: "grpc-web", binary: false } },
];

/** The code a rejected call failed with, by name. */
async function failure(call: Promise<unknown>): Promise<string> {
  try {
    await call;
  } catch (err) {
    return Code[ConnectError.from(err).code] as string;
  }
  return "OK";
}

for (const { name, options } of protocols) {
  describe(`@stategate/sdk-web token over ${name}, with auth on`, () => {
    it("sends a static token: the gateway verifies it and records its claims", async () => {
      const sub = `static-${randomUUID()}`;
      const client = createClient({ baseUrl, ...options, token: jwt(sub) });
      const ref = { domain: `web-${randomUUID()}`, type: "t", key: "k" };
      const { event } = await client.entity.set({ ...ref, values: { n: 1 } });
      assert.equal(event?.claims?.sub, sub, "the claims of the token that was sent");
      assert.equal(event?.claims?.aud, AUDIENCE);
      const { entity } = await client.entity.get(ref);
      assert.deepEqual(entity?.values, { n: 1 });
    });

    it("calls an async token provider per request, and each call carries the token it returned", async () => {
      let calls = 0;
      const client = createClient({
        baseUrl,
        ...options,
        token: async () => {
          calls++;
          await new Promise((resolve) => setTimeout(resolve, 1));
          return jwt(`refreshed-${calls}`);
        },
      });
      const domain = `web-${randomUUID()}`;
      const first = await client.entity.set({ domain, type: "t", key: "a", values: {} });
      const second = await client.entity.set({ domain, type: "t", key: "b", values: {} });
      assert.equal(calls, 2);
      assert.equal(first.event?.claims?.sub, "refreshed-1");
      assert.equal(second.event?.claims?.sub, "refreshed-2", "a refreshed token is used without a new client");
    });

    it("fails UNAUTHENTICATED with no token, and with a token the JWKS does not vouch for", async () => {
      const search = { domain: "web", type: "t" };
      assert.equal(await failure(createClient({ baseUrl, ...options }).entity.search(search)), "Unauthenticated");
      const stranger = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
      assert.equal(
        await failure(createClient({ baseUrl, ...options, token: jwt("mallory", stranger) }).entity.search(search)),
        "Unauthenticated",
      );
      assert.equal(
        await failure(createClient({ baseUrl, ...options, token: async () => "not.a.jwt" }).entity.search(search)),
        "Unauthenticated",
      );
    });
  });
}
