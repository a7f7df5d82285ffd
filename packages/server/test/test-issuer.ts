import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { JWTPayload } from "jose";
import { exportJWK, generateKeyPair, SignJWT } from "jose";

/** The issuer every test token names, and a gateway trusting a TestIssuer expects. */
export const ISSUER = "https://issuer.test";
/** The audience every test token names, and a gateway trusting a TestIssuer expects. */
export const AUDIENCE = "stategate";

/** A token issuer for tests: an ES256 key whose public half a JWKS endpoint on loopback serves. */
export interface TestIssuer {
  /** The JWKS endpoint's URL. */
  jwksUri: string;
  /** STATEGATE_JWKS_URI, STATEGATE_JWT_ISSUER and STATEGATE_JWT_AUDIENCE for a gateway that trusts this issuer. */
  env: Record<string, string>;
  /**
   * A token carrying ISSUER, AUDIENCE, `iat` now (unless `claims` has one) and
   * `claims`, that expires at `expires`: a time span from now ("10m") or epoch seconds.
   */
  sign(claims: JWTPayload, expires?: string | number): Promise<string>;
  /** Stops the JWKS endpoint. */
  close(): Promise<void>;
}

/**
 * Generates a key and serves it.
 *
 * @example
 * const issuer = await startTestIssuer();
 * const tg = await startTestGateway(issuer.env);
 * const client = tg.client({ token: await issuer.sign({ sub: "ada" }) });
 */
export async function startTestIssuer(): Promise<TestIssuer> {
  const { privateKey, publicKey } = await generateKeyPair("ES256", { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid: "k1", alg: "ES256", use: "sig" };
  const jwks = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((resolve) => jwks.listen(0, "127.0.0.1", resolve));
  const jwksUri = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json`;
  return {
    jwksUri,
    env: { STATEGATE_JWKS_URI: jwksUri, STATEGATE_JWT_ISSUER: ISSUER, STATEGATE_JWT_AUDIENCE: AUDIENCE },
    sign: (claims, expires = "10m") =>
      new SignJWT({ iat: Math.floor(Date.now() / 1000), ...claims })
        .setProtectedHeader({ alg: "ES256", kid: "k1" })
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .setExpirationTime(expires)
        .sign(privateKey),
    async close() {
      jwks.closeAllConnections();
      await new Promise((resolve) => jwks.close(resolve));
    },
  };
}
