import assert from "node:assert/strict";
import type { Server } from "node:http";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError } from "@stategate/sdk-node";
import type { JWK, JWTPayload } from "jose";
import { exportJWK, exportSPKI, generateKeyPair, SignJWT } from "jose";
import type { TestGateway } from "./helpers.js";
import { startTestGateway, take, unique } from "./helpers.js";

/** A real JWKS endpoint on localhost, serving keys this test generates. */
class JwksServer {
  keys: JWK[] = [];
  fetches = 0;
  private server: Server | undefined;
  port = 0;
  async start(port = 0): Promise<void> {
    this.server = createServer((_req, res) => {
      this.fetches++;
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ keys: this.keys }));
    });
    await new Promise<void>((resolve) => this.server?.listen(port, "127.0.0.1", resolve));
    this.port = (this.server?.address() as AddressInfo).port;
  }
  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }
  get uri(): string {
    return `http://127.0.0.1:${this.port}/.well-known/jwks.json`;
  }
}

type KeyPair = Awaited<ReturnType<typeof generateKeyPair>>;
type Signer = {
  kid: string;
  alg: string;
  privateKey: KeyPair["privateKey"];
  publicKey: KeyPair["publicKey"];
  jwk: JWK;
};

async function newKey(alg: "RS256" | "ES256", kid: string): Promise<Signer> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: "sig" };
  return { kid, alg, privateKey, publicKey, jwk };
}

const ISSUER = "https://issuer.test";
const AUDIENCE = "stategate";
const now = () => Math.floor(Date.now() / 1000);

async function sign(key: Signer, claims: JWTPayload = {}, kid = key.kid): Promise<string> {
  return new SignJWT({ sub: "user-1", ...claims })
    .setProtectedHeader({ alg: key.alg, kid })
    .setIssuer(claims.iss ?? ISSUER)
    .setAudience(claims.aud ?? AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(claims.exp ?? now() + 600)
    .sign(key.privateKey);
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

const jwks = new JwksServer();
let rsa: Signer;
let ec: Signer;
let tg: TestGateway;

before(async () => {
  rsa = await newKey("RS256", "rsa-1");
  ec = await newKey("ES256", "ec-1");
  jwks.keys = [rsa.jwk, ec.jwk];
  await jwks.start();
  tg = await startTestGateway({
    STATEGATE_JWKS_URI: jwks.uri,
    STATEGATE_JWT_ISSUER: ISSUER,
    STATEGATE_JWT_AUDIENCE: AUDIENCE,
    STATEGATE_JWT_CLOCK_SKEW_SECONDS: "10",
    STATEGATE_JWKS_COOLDOWN_MS: "1000",
  });
});

after(async () => {
  await tg.close();
  await jwks.stop();
});

/** Calls Get with `authorization` over gRPC; resolves to the code name, "OK" on success. */
async function grpcCode(authorization: string | undefined): Promise<string> {
  const client = tg.client({
    protocol: "grpc",
    interceptors: authorization
      ? [
          (next) => (req) => {
            req.header.set("authorization", authorization);
            return next(req);
          },
        ]
      : [],
  });
  try {
    await client.entity.search({ domain: "auth", type: "t" });
    return "OK";
  } catch (err) {
    return Code[ConnectError.from(err).code] as string;
  } finally {
    client.close();
  }
}

/** The same call through the REST route: HTTP status and body. */
async function restCall(
  authorization: string | undefined,
): Promise<{ status: number; body: { code?: string; message?: string } }> {
  const headers: Record<string, string> = {};
  if (authorization) headers.authorization = authorization;
  const res = await fetch(`${tg.baseUrl}/api/entity/search?domain=auth&type=t`, { headers });
  return { status: res.status, body: (await res.json()) as { code?: string; message?: string } };
}

/** The same call over Connect JSON with plain fetch: HTTP status and body. */
async function httpCall(
  authorization: string | undefined,
): Promise<{ status: number; body: { code?: string; message?: string } }> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (authorization) headers.authorization = authorization;
  const res = await fetch(`${tg.baseUrl}/stategate.v1.EntityService/Search`, {
    method: "POST",
    headers,
    body: JSON.stringify({ domain: "auth", type: "t" }),
  });
  return { status: res.status, body: (await res.json()) as { code?: string; message?: string } };
}

describe("JWT authentication", () => {
  it("accepts RS256 and ES256 tokens from the JWKS", async () => {
    assert.equal(await grpcCode(`Bearer ${await sign(rsa)}`), "OK");
    assert.equal(await grpcCode(`Bearer ${await sign(ec)}`), "OK");
    assert.equal(await grpcCode(`bearer ${await sign(ec)}`), "OK", "the scheme is case-insensitive");
    assert.equal((await httpCall(`Bearer ${await sign(ec)}`)).status, 200);
    assert.equal((await restCall(`Bearer ${await sign(rsa)}`)).status, 200);
  });

  it("refuses every attack token with UNAUTHENTICATED, over gRPC and HTTP", async () => {
    const good = await sign(rsa);
    const [h, p] = good.split(".");
    const rsaPem = await exportSPKI(rsa.publicKey);
    const attacks: Record<string, string> = {
      "no token": "",
      "alg none": `Bearer ${b64({ alg: "none", kid: rsa.kid })}.${p}.`,
      "HS256 signed with the RSA public key": `Bearer ${await new SignJWT({ sub: "evil" })
        .setProtectedHeader({ alg: "HS256", kid: rsa.kid })
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .setExpirationTime(now() + 600)
        .sign(new TextEncoder().encode(rsaPem))}`,
      "expired 5 minutes ago": `Bearer ${await sign(rsa, { exp: now() - 300 })}`,
      "nbf 10 minutes ahead": `Bearer ${await sign(rsa, { nbf: now() + 600 })}`,
      "wrong issuer": `Bearer ${await sign(rsa, { iss: "https://evil.test" })}`,
      "wrong audience": `Bearer ${await sign(rsa, { aud: "someone-else" })}`,
      "unknown kid": `Bearer ${await sign(rsa, {}, "nobody")}`,
      "payload tampered after signing": `Bearer ${h}.${b64({ sub: "admin", iss: ISSUER, aud: AUDIENCE, exp: now() + 600 })}.${good.split(".")[2]}`,
      "no Bearer prefix": good,
      "no exp claim": `Bearer ${await new SignJWT({ sub: "forever" })
        .setProtectedHeader({ alg: rsa.alg, kid: rsa.kid })
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .sign(rsa.privateKey)}`,
      garbage: "Bearer not.a.jwt",
    };
    for (const [name, authorization] of Object.entries(attacks)) {
      assert.equal(await grpcCode(authorization || undefined), "Unauthenticated", `gRPC: ${name}`);
      for (const [door, call] of [
        ["Connect", httpCall],
        ["REST", restCall],
      ] as const) {
        const { status, body } = await call(authorization || undefined);
        assert.equal(status, 401, `${door}: ${name}`);
        assert.equal(body.code, "unauthenticated", `${door}: ${name}`);
        assert.ok((body.message ?? "").length < 80, `a short reason: ${body.message}`);
        assert.doesNotMatch(body.message ?? "", /jose|JWS|JWK|at .*\.js/, `no verifier internals: ${body.message}`);
      }
    }
  });

  it("accepts a token whose nbf is 5 s ahead, within the clock skew", async () => {
    assert.equal(await grpcCode(`Bearer ${await sign(rsa, { nbf: now() + 5 })}`), "OK");
  });

  it("records the caller's claims on every event and peer message", async () => {
    const token = await sign(ec, { sub: "ada", role: "admin" });
    const client = tg.client({ protocol: "connect", token });
    const ref = { domain: unique("claims"), type: "t", key: "k" };
    const { event } = await client.entity.set({ ...ref, values: { a: 1 } });
    assert.equal(event?.claims?.sub, "ada");
    assert.equal(event?.claims?.role, "admin");
    assert.equal(event?.claims?.iss, ISSUER);
    const stored = await client.event.get({ ...ref, id: event?.id ?? "" });
    assert.deepEqual(stored.event?.claims, event?.claims);
    const { message } = await client.peer.broadcast({ domain: ref.domain, channel: "c", type: "t", body: {} });
    assert.equal(message?.claims?.sub, "ada");
  });

  it("calls an async token provider per request, so callers can refresh", async () => {
    let calls = 0;
    const client = tg.client({
      protocol: "grpc",
      token: async () => {
        calls++;
        return sign(rsa);
      },
    });
    await client.entity.search({ domain: "auth", type: "t" });
    await client.entity.search({ domain: "auth", type: "t" });
    assert.equal(calls, 2);
  });

  it("ends an open stream with UNAUTHENTICATED when its token expires", async () => {
    // exp 1 s from now plus the 10 s skew: the stream is cut about 11 s in.
    const token = await sign(rsa, { exp: now() + 1 });
    const client = tg.client({ protocol: "grpc", token });
    const started = Date.now();
    await assert.rejects(take(client.event.stream({ domain: unique("exp"), type: "*" }), 1, 20_000), (err) => {
      const e = ConnectError.from(err);
      assert.equal(Code[e.code], "Unauthenticated", e.message);
      assert.match(e.rawMessage, /token expired/);
      return true;
    });
    const took = Date.now() - started;
    assert.ok(took > 9_000 && took < 15_000, `cut at expiry plus skew (${took} ms)`);
  });

  it("accepts a rotated-in key with no restart, and fetches the JWKS only a few times for 100 unknown kids", async () => {
    const fresh = await newKey("ES256", "ec-2");
    jwks.keys = [...jwks.keys, fresh.jwk];
    await sleep(1_100); // past the unknown-kid cooldown
    assert.equal(await grpcCode(`Bearer ${await sign(fresh)}`), "OK");

    await sleep(1_100);
    const before = jwks.fetches;
    const codes = await Promise.all(
      Array.from({ length: 100 }, async (_, i) =>
        grpcCode(`Bearer ${await sign(rsa, {}, `random-${i}-${Math.random()}`)}`),
      ),
    );
    assert.ok(codes.every((c) => c === "Unauthenticated"));
    assert.ok(jwks.fetches - before <= 3, `${jwks.fetches - before} JWKS fetches for 100 unknown kids`);
  });

  it("keeps accepting cached keys while the JWKS is down, and never answers INTERNAL", async () => {
    await jwks.stop();
    try {
      await sleep(1_100);
      assert.equal(await grpcCode(`Bearer ${await sign(rsa)}`), "OK", "a cached kid still verifies");
      const unknown = await grpcCode(`Bearer ${await sign(rsa, {}, "never-seen")}`);
      assert.ok(["Unauthenticated", "Unavailable"].includes(unknown), unknown);
    } finally {
      await jwks.start(jwks.port);
    }
  });
});

describe("with no JWKS configured", () => {
  it("answers UNAVAILABLE, not INTERNAL, when the JWKS cannot be reached and no key is cached", async () => {
    const dead = await startTestGateway({
      STATEGATE_JWKS_URI: "http://127.0.0.1:1/jwks.json",
      STATEGATE_JWKS_TIMEOUT_MS: "1000",
    });
    try {
      const client = dead.client({ protocol: "grpc", token: await sign(rsa) });
      await assert.rejects(
        client.entity.search({ domain: "auth", type: "t" }),
        (err) => ConnectError.from(err).code === Code.Unavailable,
      );
    } finally {
      await dead.close();
    }
  });
});
