import { Code, ConnectError } from "@connectrpc/connect";
import type { JsonObject } from "@stategate/providers";
import type { JWTPayload, RemoteJWKSet } from "jose";
import { createLocalJWKSet, createRemoteJWKSet, errors, jwtVerify } from "jose";
import type { Logger } from "pino";
import { checkStoredJson } from "../services/rules.js";
import type { AuthConfig } from "./config.js";

/** Verified claims, and when the token stops being valid (ms since the epoch). */
export interface Identity {
  claims: JsonObject;
  expiresAtMs?: number;
}

/** Turns an `authorization` header into verified claims, or throws UNAUTHENTICATED / UNAVAILABLE. */
export type Verifier = (authorization: string | null) => Promise<Identity>;

const anonymous: Identity = { claims: {} };

/**
 * Builds the verifier for the configured mode. With JWT, tokens are checked
 * against the remote key set (cached, refetched for an unknown `kid` at most
 * once per cooldown, and refreshed past its max age), for signature, allowed
 * `alg`, exp, nbf, and iss/aud when configured, all with the clock-skew
 * allowance.
 *
 * When a fetch of the key set fails (unreachable, timed out, not 200, not a
 * key set), the failure is remembered for one cooldown: meanwhile calls are
 * verified with the keys fetched before, without fetching again, so they do
 * not each wait for a JWKS that hangs; a token whose key is not among them is
 * UNAVAILABLE (the gateway cannot tell whether the key exists), as is any
 * token when no keys were ever fetched.
 */
export function createVerifier(config: AuthConfig, log: Logger): Verifier {
  if (config.mode !== "jwt" || !config.jwksUri) return async () => anonymous;
  const remote: RemoteJWKSet = createRemoteJWKSet(config.jwksUri, {
    timeoutDuration: config.jwksTimeoutMs,
    cooldownDuration: config.jwksCooldownMs,
    cacheMaxAge: config.jwksMaxAgeMs,
  });
  const options = {
    // Without exp a token would never expire, and neither would its streams.
    requiredClaims: ["exp"],
    algorithms: config.algorithms,
    issuer: config.issuer,
    audience: config.audience,
    clockTolerance: config.clockSkewSeconds,
  };
  /** When a fetch of the key set last failed (ms since the epoch). */
  let failedAt = Number.NEGATIVE_INFINITY;
  const failing = () => Date.now() < failedAt + config.jwksCooldownMs;
  let local: { json: string; keys: ReturnType<typeof createLocalJWKSet> } | undefined;

  /** Verifies with the keys fetched before, without fetching: UNAVAILABLE when none of them fits. */
  const verifyCached = async (token: string): Promise<JWTPayload> => {
    const cached = remote.jwks();
    if (!cached) throw unavailable();
    const json = JSON.stringify(cached);
    if (local?.json !== json) local = { json, keys: createLocalJWKSet(cached) };
    try {
      return (await jwtVerify(token, local.keys, options)).payload;
    } catch (err) {
      if (err instanceof errors.JWKSNoMatchingKey) throw unavailable();
      throw toUnauthenticated(err);
    }
  };

  return async (authorization) => {
    if (!authorization) throw unauthenticated("missing bearer token");
    // The scheme is case-insensitive (RFC 7235); the token is base64url parts.
    const match = /^Bearer +([A-Za-z0-9_.~+/=-]+)$/i.exec(authorization.trim());
    if (!match?.[1]) throw unauthenticated('authorization must be "Bearer <token>"');
    const token = match[1];
    let payload: JWTPayload;
    if (failing()) payload = await verifyCached(token);
    else {
      try {
        ({ payload } = await jwtVerify(token, remote, options));
      } catch (err) {
        if (!isUnreachable(err)) throw toUnauthenticated(err);
        // The key set cannot be fetched right now: the keys fetched before still count,
        // and no call fetches again until the cooldown has passed.
        // Calls that were waiting on the same fetch log it once.
        if (!failing()) {
          log.warn(
            { err, retryInMs: config.jwksCooldownMs, cachedKeys: remote.jwks()?.keys.length ?? 0 },
            "JWKS unreachable or unusable: verifying with the keys fetched before",
          );
        }
        failedAt = Date.now();
        payload = await verifyCached(token);
      }
    }
    // Claims are recorded on events: they must be storable and readable through every door.
    const problem = checkStoredJson(payload);
    if (problem) throw unauthenticated(`token claims ${problem}`);
    return { claims: payload as JsonObject, expiresAtMs: payload.exp === undefined ? undefined : payload.exp * 1000 };
  };
}

function unavailable(): ConnectError {
  return new ConnectError("cannot verify tokens right now", Code.Unavailable);
}

function unauthenticated(reason: string): ConnectError {
  return new ConnectError(reason, Code.Unauthenticated);
}

/** The key set could not be fetched or used (network, timeout, a broken answer): not the token's fault. */
function isUnreachable(err: unknown): boolean {
  if (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid) return true;
  // fetch() failures surface as TypeError("fetch failed"); a non-2xx answer, or a body that is not
  // JSON, as a plain JOSEError (no subclass, no code of its own) with that message.
  if (err instanceof TypeError) return true;
  return err instanceof errors.JOSEError && /Expected 200 OK|parse the JSON Web Key Set/i.test(err.message);
}

/** A short reason the caller can act on; verifier internals stay out. */
function toUnauthenticated(err: unknown): ConnectError {
  if (err instanceof errors.JWTExpired) return unauthenticated("token expired");
  if (err instanceof errors.JWTClaimValidationFailed) {
    const claim = err.claim;
    if (err.reason === "missing") return unauthenticated(`token has no "${claim}" claim`);
    if (claim === "nbf") return unauthenticated("token not valid yet");
    if (claim === "iss") return unauthenticated("token issuer not accepted");
    if (claim === "aud") return unauthenticated("token audience not accepted");
    return unauthenticated(`token claim "${claim}" not accepted`);
  }
  if (err instanceof errors.JOSEAlgNotAllowed) return unauthenticated("token algorithm not accepted");
  if (err instanceof errors.JWKSNoMatchingKey) return unauthenticated("token signed by an unknown key");
  if (err instanceof errors.JWSSignatureVerificationFailed) return unauthenticated("token signature invalid");
  return unauthenticated("token invalid");
}
