/** How the gateway authenticates callers, parsed once from STATEGATE_* variables. */
export interface AuthConfig {
  /** "jwt": verify bearer tokens; "disabled": everyone is anonymous (STATEGATE_AUTH_DISABLED=true); "loopback": nothing configured, so only loopback is served. */
  mode: "jwt" | "disabled" | "loopback";
  /** STATEGATE_JWKS_URI: where the verification keys are fetched. */
  jwksUri?: URL;
  /** STATEGATE_JWT_ISSUER: the `iss` every token must carry, when set. */
  issuer?: string;
  /** STATEGATE_JWT_AUDIENCE: comma-separated; a token's `aud` must name one, when set. */
  audience?: string[];
  /** STATEGATE_JWT_ALGORITHMS: the only `alg` values accepted. */
  algorithms: string[];
  /** STATEGATE_JWT_CLOCK_SKEW_SECONDS: tolerance on exp and nbf, default 30. */
  clockSkewSeconds: number;
  /** STATEGATE_JWKS_TIMEOUT_MS: how long one key-set fetch may take, default 5000. */
  jwksTimeoutMs: number;
  /** STATEGATE_JWKS_COOLDOWN_MS: least time between fetches caused by unknown `kid`s, default 30000. */
  jwksCooldownMs: number;
  /** STATEGATE_JWKS_MAX_AGE_MS: how long fetched keys are used before a refresh, default 600000. */
  jwksMaxAgeMs: number;
}

/** Asymmetric signature algorithms only: the keys come from a public JWKS, so HMAC and "none" can never be right. */
export const SAFE_ALGORITHMS = [
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
];

type Fail = (variable: string, message: string) => Error;

/** Reads the auth variables; `fail` builds the start-up error that names a variable. */
export function loadAuthConfig(env: NodeJS.ProcessEnv, fail: Fail): AuthConfig {
  const disabledRaw = env.STATEGATE_AUTH_DISABLED?.trim().toLowerCase();
  let disabled = false;
  if (disabledRaw) {
    if (["true", "1", "yes", "on"].includes(disabledRaw)) disabled = true;
    else if (!["false", "0", "no", "off"].includes(disabledRaw)) {
      throw fail("STATEGATE_AUTH_DISABLED", `expected true or false, got "${env.STATEGATE_AUTH_DISABLED}"`);
    }
  }
  const uri = env.STATEGATE_JWKS_URI?.trim();
  let jwksUri: URL | undefined;
  if (uri) {
    try {
      jwksUri = new URL(uri);
    } catch {
      throw fail("STATEGATE_JWKS_URI", `expected an http(s) URL, got "${uri}"`);
    }
    if (jwksUri.protocol !== "https:" && jwksUri.protocol !== "http:") {
      throw fail("STATEGATE_JWKS_URI", `expected an http(s) URL, got "${uri}"`);
    }
  }
  const list = (name: string) =>
    env[name]
      ?.split(",")
      .map((s) => s.trim())
      .filter(Boolean);
  const algorithms = list("STATEGATE_JWT_ALGORITHMS") ?? SAFE_ALGORITHMS;
  for (const alg of algorithms) {
    if (!SAFE_ALGORITHMS.includes(alg)) {
      throw fail("STATEGATE_JWT_ALGORITHMS", `"${alg}" is not allowed; choose from ${SAFE_ALGORITHMS.join(", ")}`);
    }
  }
  const int = (name: string, fallback: number, max: number) => {
    const raw = env[name]?.trim();
    if (!raw) return fallback;
    if (!/^\d+$/.test(raw) || Number(raw) > max)
      throw fail(name, `expected a whole number from 0 to ${max}, got "${raw}"`);
    return Number(raw);
  };
  return {
    mode: disabled ? "disabled" : jwksUri ? "jwt" : "loopback",
    jwksUri,
    issuer: env.STATEGATE_JWT_ISSUER?.trim() || undefined,
    audience: list("STATEGATE_JWT_AUDIENCE"),
    algorithms,
    clockSkewSeconds: int("STATEGATE_JWT_CLOCK_SKEW_SECONDS", 30, 300),
    jwksTimeoutMs: int("STATEGATE_JWKS_TIMEOUT_MS", 5_000, 60_000),
    jwksCooldownMs: int("STATEGATE_JWKS_COOLDOWN_MS", 30_000, 3_600_000),
    jwksMaxAgeMs: int("STATEGATE_JWKS_MAX_AGE_MS", 600_000, 86_400_000),
  };
}

/** Whether a listen address only takes connections from this machine. */
export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || host === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(host);
}
