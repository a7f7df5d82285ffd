import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import type { Server } from "node:http";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { connect } from "node:net";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError } from "@stategate/sdk-node";
import type { JWK, JWTPayload } from "jose";
import { exportJWK, exportSPKI, generateKeyPair, SignJWT } from "jose";
import type { TestGateway } from "./helpers.js";
import { protocols, spawnGateway, startTestGateway, take, unique, until } from "./helpers.js";
import { ndjson, sse } from "./rest-helpers.js";

/** A real JWKS endpoint on localhost, serving keys this test generates. */
class JwksServer {
  keys: JWK[] = [];
  fetches = 0;
  /** When set, requests are accepted and read but never answered (a JWKS that hangs). */
  hang = false;
  /** When set, requests are answered with this body instead of the key set (a broken JWKS). */
  junk: string | undefined;
  /** The HTTP status of the answers (200 unless set). */
  status = 200;
  private server: Server | undefined;
  port = 0;
  async start(port = 0): Promise<void> {
    this.server = createServer((_req, res) => {
      this.fetches++;
      if (this.hang) return; // stop() destroys the connection
      res.writeHead(this.status, { "content-type": "application/json" });
      res.end(this.junk ?? JSON.stringify({ keys: this.keys }));
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

/** Calls Search with `authorization` over gRPC (on `on`, the shared gateway by default); resolves to the code name, "OK" on success. */
async function grpcCode(authorization: string | undefined, on: TestGateway = tg): Promise<string> {
  const client = on.client({
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
  on: TestGateway = tg,
): Promise<{ status: number; body: { code?: string; message?: string } }> {
  const headers: Record<string, string> = {};
  if (authorization) headers.authorization = authorization;
  const res = await fetch(`${on.baseUrl}/api/entity/search?domain=auth&type=t`, { headers });
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

  it("keeps accepting cached keys while the JWKS is down; an unknown kid is UNAVAILABLE, never INTERNAL", async () => {
    await jwks.stop();
    try {
      await sleep(1_100);
      assert.equal(await grpcCode(`Bearer ${await sign(rsa)}`), "OK", "a cached kid still verifies");
      // Past the cooldown, the unknown kid makes the gateway fetch the key set: that fails.
      assert.equal(await grpcCode(`Bearer ${await sign(rsa, {}, "never-seen")}`), "Unavailable");
      assert.equal(await grpcCode(`Bearer ${await sign(rsa)}`), "OK", "cached kids still verify after the failure");
    } finally {
      await jwks.start(jwks.port);
    }
    await sleep(1_100); // past the cooldown that the failure started: the other tests fetch again
  });
});

describe("with a JWKS that cannot be reached", () => {
  it("answers UNAVAILABLE, not INTERNAL, when the JWKS cannot be reached and no key is cached", async () => {
    // A port that was just free, so the fetch is refused (fetch rejects port 1 itself, without connecting).
    const gone = new JwksServer();
    await gone.start();
    await gone.stop();
    const dead = await startTestGateway({
      STATEGATE_JWKS_URI: gone.uri,
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

/** A gateway of its own, verifying against `server`, for the tests that break the JWKS. */
function ownGateway(server: JwksServer, env: Record<string, string>): Promise<TestGateway> {
  return startTestGateway({
    STATEGATE_JWKS_URI: server.uri,
    STATEGATE_JWT_ISSUER: ISSUER,
    STATEGATE_JWT_AUDIENCE: AUDIENCE,
    ...env,
  });
}

describe("STATEGATE_JWT_ALGORITHMS narrowed to RS256", () => {
  it("refuses a valid ES256 token from the JWKS with UNAUTHENTICATED, and accepts RS256", async () => {
    const gw = await ownGateway(jwks, { STATEGATE_JWT_ALGORITHMS: "RS256" });
    try {
      assert.equal(await grpcCode(`Bearer ${await sign(rsa)}`, gw), "OK");
      const es256 = `Bearer ${await sign(ec)}`;
      assert.equal(await grpcCode(es256, gw), "Unauthenticated");
      const { status, body } = await restCall(es256, gw);
      assert.equal(status, 401);
      assert.equal(body.code, "unauthenticated");
      assert.equal(body.message, "token algorithm not accepted");
    } finally {
      await gw.close();
    }
  });
});

describe("the default clock skew (30 s, STATEGATE_JWT_CLOCK_SKEW_SECONDS unset)", () => {
  it("accepts a token expired 20 s ago and refuses one expired 40 s ago; the same for nbf ahead", async () => {
    const gw = await ownGateway(jwks, {});
    try {
      assert.equal(await grpcCode(`Bearer ${await sign(rsa, { exp: now() - 20 })}`, gw), "OK");
      assert.equal(await grpcCode(`Bearer ${await sign(rsa, { exp: now() - 40 })}`, gw), "Unauthenticated");
      assert.equal(
        (await restCall(`Bearer ${await sign(rsa, { exp: now() - 40 })}`, gw)).body.message,
        "token expired",
      );
      assert.equal(await grpcCode(`Bearer ${await sign(rsa, { nbf: now() + 20 })}`, gw), "OK");
      assert.equal(await grpcCode(`Bearer ${await sign(rsa, { nbf: now() + 40 })}`, gw), "Unauthenticated");
    } finally {
      await gw.close();
    }
  });
});

describe("an unknown kid", () => {
  it("is UNAUTHENTICATED while the JWKS answers, UNAVAILABLE while its last fetch failed, and fetched once it is back", async () => {
    const own = new JwksServer();
    own.keys = [rsa.jwk];
    await own.start();
    const COOLDOWN_MS = 1_000;
    const gw = await ownGateway(own, {
      STATEGATE_JWKS_COOLDOWN_MS: String(COOLDOWN_MS),
      STATEGATE_JWKS_TIMEOUT_MS: "500",
    });
    try {
      assert.equal(await grpcCode(`Bearer ${await sign(rsa)}`, gw), "OK");
      // The key set answers and does not hold the kid: the token's fault.
      await sleep(COOLDOWN_MS + 100);
      assert.equal(await grpcCode(`Bearer ${await sign(rsa, {}, "stranger")}`, gw), "Unauthenticated");
      assert.equal(own.fetches, 2, "the unknown kid made the gateway fetch the key set again");
      // The key set cannot be fetched: the gateway cannot tell whether the kid exists.
      own.status = 503;
      await sleep(COOLDOWN_MS + 100);
      assert.equal(await grpcCode(`Bearer ${await sign(rsa, {}, "stranger")}`, gw), "Unavailable");
      assert.equal(own.fetches, 3);
      assert.equal(await grpcCode(`Bearer ${await sign(rsa, {}, "other-stranger")}`, gw), "Unavailable");
      assert.equal((await restCall(`Bearer ${await sign(rsa, {}, "stranger")}`, gw)).status, 503);
      assert.equal(await grpcCode(`Bearer ${await sign(rsa)}`, gw), "OK", "a cached kid");
      assert.equal(own.fetches, 3, "no fetch within the cooldown after the failure");
      // Back, with the new key: fetched once the cooldown has passed.
      const fresh = await newKey("ES256", "stranger");
      own.keys = [rsa.jwk, fresh.jwk];
      own.status = 200;
      await sleep(COOLDOWN_MS + 100);
      assert.equal(await grpcCode(`Bearer ${await sign(fresh)}`, gw), "OK");
    } finally {
      await gw.close();
      await own.stop();
    }
  });
});

describe("with the JWKS down past STATEGATE_JWKS_MAX_AGE_MS", () => {
  const MAX_AGE_MS = 300;

  it("verifies cached kids with the keys fetched before, refuses an unknown kid, and takes new keys once it is back", async () => {
    const own = new JwksServer();
    own.keys = [rsa.jwk, ec.jwk];
    await own.start();
    const gw = await ownGateway(own, {
      STATEGATE_JWKS_MAX_AGE_MS: String(MAX_AGE_MS),
      STATEGATE_JWKS_COOLDOWN_MS: "1000",
    });
    try {
      assert.equal(await grpcCode(`Bearer ${await sign(rsa)}`, gw), "OK");
      assert.equal(own.fetches, 1);
      // The max age is in force: once the keys are older, the next call fetches them again.
      await sleep(MAX_AGE_MS + 150);
      assert.equal(await grpcCode(`Bearer ${await sign(rsa)}`, gw), "OK");
      assert.equal(own.fetches, 2, "keys older than the max age are fetched again");

      await own.stop();
      await sleep(MAX_AGE_MS + 150);
      // jose's cache is stale and its refetch fails: only the keys fetched before can accept these.
      assert.equal(await grpcCode(`Bearer ${await sign(rsa)}`, gw), "OK", "a cached RS256 kid still verifies");
      assert.equal(await grpcCode(`Bearer ${await sign(ec)}`, gw), "OK", "a cached ES256 kid still verifies");
      assert.equal((await restCall(`Bearer ${await sign(ec)}`, gw)).status, 200, "over REST too");
      assert.equal(await grpcCode(`Bearer ${await sign(rsa, {}, "never-seen")}`, gw), "Unavailable", "unknown kid");
      // The fallback checks as much as the live key set does: it is no way around verification.
      assert.equal(await grpcCode(`Bearer ${await sign(rsa, { exp: now() - 300 })}`, gw), "Unauthenticated");
      assert.equal(await grpcCode(`Bearer ${await sign(rsa, { iss: "https://evil.test" })}`, gw), "Unauthenticated");
      const impostor = await newKey("RS256", rsa.kid);
      assert.equal(
        await grpcCode(`Bearer ${await sign(impostor)}`, gw),
        "Unauthenticated",
        "a cached kid signed by another key",
      );

      const back = await newKey("ES256", "ec-back");
      own.keys = [...own.keys, back.jwk];
      await own.start(own.port);
      // The failed fetch is remembered for one cooldown; after it, the gateway fetches again.
      await sleep(1_100);
      assert.equal(
        await grpcCode(`Bearer ${await sign(back)}`, gw),
        "OK",
        "keys added meanwhile are fetched once it is back",
      );
    } finally {
      await gw.close();
      await own.stop();
    }
  });
});

describe("a JWKS that answers with something that is not a key set", () => {
  for (const [what, body, status] of [
    ["an HTML error page", "<html>502 Bad Gateway</html>", 200],
    ["JSON without keys", '{"error":"maintenance"}', 200],
    ["HTTP 503", '{"error":"unavailable"}', 503],
  ] as const) {
    it(`${what}: cached kids still verify, and no key cached is UNAVAILABLE, never UNAUTHENTICATED`, async () => {
      const own = new JwksServer();
      own.keys = [rsa.jwk];
      await own.start();
      const gw = await ownGateway(own, { STATEGATE_JWKS_MAX_AGE_MS: "300" });
      const fresh = new JwksServer();
      fresh.junk = body;
      fresh.status = status;
      await fresh.start();
      const none = await ownGateway(fresh, {});
      try {
        assert.equal(await grpcCode(`Bearer ${await sign(rsa)}`, gw), "OK");
        own.junk = body;
        own.status = status;
        await sleep(450);
        assert.equal(await grpcCode(`Bearer ${await sign(rsa)}`, gw), "OK", "the keys fetched before still count");
        assert.ok(own.fetches >= 2, "the broken key set was fetched");
        assert.equal(
          await grpcCode(`Bearer ${await sign(rsa, {}, "never-seen")}`, gw),
          "Unavailable",
          "an unknown kid, while the last fetch failed",
        );
        assert.equal(
          await grpcCode(`Bearer ${await sign(rsa)}`, none),
          "Unavailable",
          "the token is not at fault: the key set is",
        );
      } finally {
        await gw.close();
        await none.close();
        await own.stop();
        await fresh.stop();
      }
    });
  }
});

describe("a JWKS that accepts connections but never answers", () => {
  const TIMEOUT_MS = 500;
  // Never before the timeout (less 50 ms of timer slack), and within 3 s more: room for a loaded 2-core
  // CI machine, yet well short of jose's 5 s default, so STATEGATE_JWKS_TIMEOUT_MS is what cut the fetch.
  const LOWER_MS = TIMEOUT_MS - 50;
  const UPPER_MS = TIMEOUT_MS + 3_000;
  /** Runs `call` and returns what it resolved to and how long it took. */
  const timed = async <T>(call: () => Promise<T>): Promise<{ value: T; ms: number }> => {
    const started = performance.now();
    const value = await call();
    return { value, ms: Math.round(performance.now() - started) };
  };
  const within = (ms: number, what: string) =>
    assert.ok(ms >= LOWER_MS && ms < UPPER_MS, `${what} took ${ms} ms, expected ${LOWER_MS} to ${UPPER_MS} ms`);

  it("answers UNAVAILABLE within about STATEGATE_JWKS_TIMEOUT_MS when no key is cached, then at once", async () => {
    const hung = new JwksServer();
    hung.keys = [rsa.jwk];
    hung.hang = true;
    await hung.start();
    const gw = await ownGateway(hung, { STATEGATE_JWKS_TIMEOUT_MS: String(TIMEOUT_MS) });
    try {
      const grpc = `Bearer ${await sign(rsa)}`;
      const first = await timed(() => grpcCode(grpc, gw));
      assert.equal(first.value, "Unavailable");
      assert.ok(hung.fetches >= 1, "the gateway reached the JWKS, which never answered");
      within(first.ms, "gRPC");

      // The failed fetch is remembered for the cooldown (30 s by default): no call waits for it again.
      const rest = `Bearer ${await sign(ec)}`;
      const fetches = hung.fetches;
      const second = await timed(() => restCall(rest, gw));
      assert.equal(second.value.status, 503);
      assert.equal(second.value.body.code, "unavailable");
      assert.ok(second.ms < LOWER_MS, `REST answered at once, not after another timeout: ${second.ms} ms`);
      assert.equal(hung.fetches, fetches, "no second fetch within the cooldown");
    } finally {
      await gw.close();
      await hung.stop();
    }
  });

  it("verifies a cached kid past the max age after about the timeout, then without waiting until the cooldown passed", async () => {
    const server = new JwksServer();
    server.keys = [rsa.jwk];
    await server.start();
    const MAX_AGE_MS = 300;
    const COOLDOWN_MS = 4_000;
    const gw = await ownGateway(server, {
      STATEGATE_JWKS_TIMEOUT_MS: String(TIMEOUT_MS),
      STATEGATE_JWKS_MAX_AGE_MS: String(MAX_AGE_MS),
      STATEGATE_JWKS_COOLDOWN_MS: String(COOLDOWN_MS),
    });
    try {
      assert.equal(await grpcCode(`Bearer ${await sign(rsa)}`, gw), "OK");
      server.hang = true;
      await sleep(MAX_AGE_MS + 150);
      const cached = `Bearer ${await sign(rsa)}`;
      const ok = await timed(() => grpcCode(cached, gw));
      assert.equal(ok.value, "OK", "the refetch timed out, and the key fetched before verified the token");
      assert.equal(server.fetches, 2, "the refetch was tried, and hung");
      within(ok.ms, "a cached kid");

      // Within the cooldown the failure is remembered: calls use the cached keys at once.
      for (let i = 0; i < 3; i++) {
        const again = await timed(async () => grpcCode(`Bearer ${await sign(rsa)}`, gw));
        assert.equal(again.value, "OK");
        assert.ok(again.ms < LOWER_MS, `a cached kid within the cooldown took ${again.ms} ms`);
      }
      const unknown = `Bearer ${await sign(rsa, {}, "never-seen")}`;
      const refused = await timed(() => grpcCode(unknown, gw));
      assert.equal(refused.value, "Unavailable", "an unknown kid while the last fetch failed");
      assert.ok(refused.ms < LOWER_MS, `an unknown kid took ${refused.ms} ms`);
      assert.equal(server.fetches, 2, "no fetch within the cooldown");

      // Once the cooldown has passed, one call tries again (and waits), then it is remembered again.
      await sleep(COOLDOWN_MS + 100);
      const retry = await timed(async () => grpcCode(`Bearer ${await sign(rsa)}`, gw));
      assert.equal(retry.value, "OK");
      within(retry.ms, "the first call after the cooldown");
      assert.equal(server.fetches, 3, "fetched again after the cooldown");
    } finally {
      await gw.close();
      await server.stop();
    }
  });
});

describe("with neither STATEGATE_JWKS_URI nor STATEGATE_AUTH_DISABLED", () => {
  it("serves loopback only, anonymous callers included, and warns that callers are not authenticated", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "stategate-auth-"));
    // Empty is unset to the gateway; this keeps any value in the test's own environment out.
    const gw = await spawnGateway({
      STATEGATE_DATA_DIR: dataDir,
      STATEGATE_JWKS_URI: "",
      STATEGATE_AUTH_DISABLED: "",
      STATEGATE_HOST: "",
    });
    try {
      const lines = gw.output.flatMap((line) => {
        try {
          return [JSON.parse(line) as { level?: number; msg?: string; host?: string }];
        } catch {
          return [];
        }
      });
      const warning = lines.find((l) => /callers are not authenticated/.test(l.msg ?? ""));
      assert.ok(warning, `no warning in:\n${gw.output.join("\n")}`);
      assert.equal(warning.level, 40, "logged at warn");
      assert.match(warning.msg ?? "", /STATEGATE_JWKS_URI/, "it says what to set");
      assert.match(warning.msg ?? "", /only loopback/);
      const listening = lines.find((l) => l.msg?.startsWith("stategate listening"));
      assert.equal(listening?.host, "127.0.0.1");

      // The quick start works: a loopback caller with no token is served.
      const res = await fetch(`${gw.baseUrl}/stategate.v1.EntityService/Search`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ domain: "auth", type: "t" }),
      });
      assert.equal(res.status, 200, await res.text());

      // Every other address of this machine is refused.
      const others = Object.values(networkInterfaces())
        .flat()
        .filter((a) => a && !a.internal && a.family === "IPv4")
        .map((a) => a?.address as string);
      for (const address of others) {
        const error = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
          const socket = connect({ host: address, port: gw.port, timeout: 2_000 });
          socket.once("connect", () => {
            socket.destroy();
            resolve(undefined);
          });
          socket.once("timeout", () => {
            socket.destroy();
            resolve(Object.assign(new Error("timeout"), { code: "ETIMEDOUT" }));
          });
          socket.once("error", resolve);
        });
        assert.equal(error?.code, "ECONNREFUSED", `${address}:${gw.port} must not be served`);
      }
    } finally {
      gw.child.kill("SIGTERM");
      await gw.exited;
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe("tokens at every door", () => {
  for (const binary of [true, false]) {
    it(`gRPC-Web ${binary ? "binary" : "JSON"}: a valid token is served and its claims recorded, none is UNAUTHENTICATED`, async () => {
      const options = { protocol: "grpc-web", binary, httpVersion: "1.1" } as const;
      const sub = unique("web-user");
      const client = tg.client({ ...options, token: await sign(ec, { sub }) });
      const { event } = await client.entity.set({ domain: unique("grpc-web"), type: "t", key: "k", values: { a: 1 } });
      assert.equal(event?.claims?.sub, sub);
      const anonymous = tg.client(options);
      for (const call of [
        () => anonymous.entity.search({ domain: "auth", type: "t" }),
        () => tg.client({ ...options, token: "not.a.jwt" }).entity.search({ domain: "auth", type: "t" }),
      ]) {
        await assert.rejects(call(), (err) => {
          assert.equal(Code[ConnectError.from(err).code], "Unauthenticated");
          return true;
        });
      }
    });
  }

  it("REST SSE and NDJSON streams: 401 with no token or a bad one, events with a valid one", async () => {
    const writer = tg.client({ protocol: "connect", token: await sign(ec, { sub: "writer" }) });
    for (const [format, accept] of [
      ["SSE", "text/event-stream"],
      ["NDJSON", "application/x-ndjson"],
    ] as const) {
      const domain = unique("auth-rest-stream");
      await writer.entity.set({ domain, type: "t", key: "before", values: { n: 1 } });
      const url = `${tg.baseUrl}/api/events/stream?domain=${domain}&type=*&afterPosition=0`;
      for (const [name, authorization] of [
        ["no token", undefined],
        ["an expired token", `Bearer ${await sign(rsa, { exp: now() - 300 })}`],
        ["no Bearer prefix", await sign(rsa)],
      ] as const) {
        const headers: Record<string, string> = { accept };
        if (authorization) headers.authorization = authorization;
        const res = await fetch(url, { headers });
        assert.equal(res.status, 401, `${format}, ${name}`);
        assert.match(res.headers.get("content-type") ?? "", /^application\/json/, `${format}, ${name}`);
        assert.equal(((await res.json()) as { code?: string }).code, "unauthenticated", `${format}, ${name}`);
      }

      const abort = new AbortController();
      const opened = tg.gateway.openStreams();
      const res = await fetch(url, {
        headers: { accept, authorization: `Bearer ${await sign(rsa, { sub: "reader" })}` },
        signal: abort.signal,
      });
      assert.equal(res.status, 200, `${format}: ${res.status === 200 ? "" : await res.text()}`);
      assert.match(
        res.headers.get("content-type") ?? "",
        format === "SSE" ? /^text\/event-stream/ : /^application\/x-ndjson/,
      );
      type Line = { event: { entity: { key: string }; claims: { sub?: string } } };
      const messages: AsyncIterable<Line> =
        format === "SSE"
          ? (async function* () {
              for await (const m of sse(res.body!)) if (m.data !== undefined) yield JSON.parse(m.data) as Line;
            })()
          : ndjson(res.body!);
      const got = take(messages, 2);
      // The stored event is replayed; a live one follows once the stream subscribed.
      await until(() => tg.gateway.openStreams() > opened);
      const live = `live-${format}`;
      await writer.entity.set({ domain, type: "t", key: live, values: { n: 2 } });
      const events = await got;
      abort.abort();
      assert.deepEqual(
        events.map((l) => l.event.entity.key),
        ["before", live],
        format,
      );
      assert.deepEqual(
        events.map((l) => l.event.claims.sub),
        ["writer", "writer"],
        "each event carries its writer's claims",
      );
    }
    await until(() => tg.gateway.openStreams() === 0);
  });

  it("EventService/Stream and PeerService/Stream opened with no token: UNAUTHENTICATED on every protocol", async () => {
    for (const { name, options } of protocols) {
      const client = tg.client(options);
      try {
        for (const [stream, open] of [
          ["EventService/Stream", () => client.event.stream({ domain: unique("auth-rpc"), type: "*" })],
          ["PeerService/Stream", () => client.peer.stream({ domain: unique("auth-rpc"), channel: "c", type: "*" })],
        ] as const) {
          await assert.rejects(take(open() as AsyncIterable<unknown>, 1, 5_000), (err) => {
            const e = ConnectError.from(err);
            assert.equal(Code[e.code], "Unauthenticated", `${name} ${stream}: ${e.message}`);
            assert.match(e.rawMessage, /missing bearer token/);
            return true;
          });
        }
      } finally {
        client.close();
      }
    }
    // With a token, the same stream opens and delivers.
    const domain = unique("auth-rpc-ok");
    const client = tg.client({ protocol: "grpc", token: await sign(rsa, { sub: "streamer" }) });
    try {
      await client.entity.set({ domain, type: "t", key: "k", values: {} });
      const [first] = await take(client.event.stream({ domain, type: "*", afterPosition: 0n }), 1);
      assert.equal(first?.event?.claims?.sub, "streamer");
    } finally {
      client.close();
    }
  });
});
