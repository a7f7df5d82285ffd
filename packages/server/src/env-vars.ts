/** One environment variable the gateway reads. */
export interface EnvVar {
  name: string;
  /** The default as an operator reads it (the README's default column, without code marks). */
  default: string;
  /** What it does, in one line. */
  meaning: string;
}

/**
 * Every variable the gateway reads, in the order `stategate --help` prints
 * them. This is the one list: a test checks that the config code reads exactly
 * these, and that the README documents each with the same default.
 */
export const ENV_VARS: readonly EnvVar[] = [
  {
    name: "STATEGATE_PORT",
    default: "8080",
    meaning: "port for gRPC, gRPC-Web, Connect, REST and GraphQL (0 picks one)",
  },
  { name: "STATEGATE_HOST", default: "127.0.0.1", meaning: "address to listen on (the metrics port too)" },
  { name: "STATEGATE_DEBUG", default: "false", meaning: "true logs one JSON line per call (log level debug)" },
  {
    name: "STATEGATE_LOG_LEVEL",
    default: "info (debug with STATEGATE_DEBUG)",
    meaning: "fatal, error, warn, info, debug, trace or silent",
  },
  {
    name: "STATEGATE_DATA_DIR",
    default: "./data (under the working directory)",
    meaning: "where embedded providers keep files ($STATEGATE_DATA_DIR/stategate.db for SQLite)",
  },
  { name: "STATEGATE_STORAGE_PROVIDER", default: '{"name":"sqlite"}', meaning: "storage provider as JSON" },
  { name: "STATEGATE_CACHE_PROVIDER", default: '{"name":"memory"}', meaning: "cache provider as JSON" },
  { name: "STATEGATE_CHANNEL_PROVIDER", default: '{"name":"memory"}', meaning: "channel provider as JSON" },
  { name: "STATEGATE_SHUTDOWN_GRACE_MS", default: "10000", meaning: "how long SIGTERM waits for calls in flight" },
  {
    name: "STATEGATE_MAX_REQUEST_BYTES",
    default: "4194304 (4 MiB)",
    meaning: "largest request message; a larger one is RESOURCE_EXHAUSTED",
  },
  {
    name: "STATEGATE_MAX_RESPONSE_BYTES",
    default: "4 × STATEGATE_MAX_REQUEST_BYTES (16 MiB)",
    meaning:
      "largest search page (binary protobuf), at least STATEGATE_MAX_REQUEST_BYTES; a larger page is RESOURCE_EXHAUSTED, asking for a smaller limit",
  },
  {
    name: "STATEGATE_MAX_OPEN_STREAMS",
    default: "10000",
    meaning: "most event and peer streams open at once; past it a new one is RESOURCE_EXHAUSTED",
  },
  {
    name: "STATEGATE_MAX_STREAM_BUFFER",
    default: "10000",
    meaning: "most items one stream holds for a client that reads slowly; past it the stream ends RESOURCE_EXHAUSTED",
  },
  {
    name: "STATEGATE_METRICS_PORT",
    default: "9090",
    meaning: "port for /metrics (Prometheus), /healthz and /readyz; off serves none",
  },
  {
    name: "STATEGATE_TLS_CERT_FILE",
    default: "none (cleartext)",
    meaning: "PEM certificate chain; with STATEGATE_TLS_KEY_FILE the port serves TLS (HTTP/2 and HTTP/1.1 by ALPN)",
  },
  { name: "STATEGATE_TLS_KEY_FILE", default: "none", meaning: "PEM private key of STATEGATE_TLS_CERT_FILE" },
  {
    name: "STATEGATE_CORS_ALLOW_ORIGINS",
    default: "none (no CORS headers)",
    meaning: "comma-separated origins browsers may call from, or * for any",
  },
  {
    name: "STATEGATE_CORS_ALLOW_METHODS",
    default: "GET,POST,PUT,PATCH,DELETE,OPTIONS",
    meaning: "methods a preflight allows; * allows the one asked for",
  },
  {
    name: "STATEGATE_CORS_ALLOW_HEADERS",
    default: "the headers gRPC-Web and Connect send, authorization, x-request-id, last-event-id",
    meaning: "request headers a preflight allows; * allows those asked for",
  },
  {
    name: "STATEGATE_JWKS_URI",
    default: "none",
    meaning: "the JWKS URL (http or https); setting it turns authentication on",
  },
  {
    name: "STATEGATE_AUTH_DISABLED",
    default: "false",
    meaning: "true serves everyone as anonymous (claims {}), on any address",
  },
  { name: "STATEGATE_JWT_ISSUER", default: "none", meaning: "the iss every token must carry" },
  { name: "STATEGATE_JWT_AUDIENCE", default: "none", meaning: "comma-separated; a token's aud must name one" },
  {
    name: "STATEGATE_JWT_ALGORITHMS",
    default: "RS256,RS384,RS512,PS256,PS384,PS512,ES256,ES384,ES512,EdDSA",
    meaning: "accepted algorithms (asymmetric only)",
  },
  { name: "STATEGATE_JWT_CLOCK_SKEW_SECONDS", default: "30", meaning: "tolerance on exp and nbf" },
  { name: "STATEGATE_JWKS_TIMEOUT_MS", default: "5000", meaning: "timeout of one JWKS fetch" },
  {
    name: "STATEGATE_JWKS_COOLDOWN_MS",
    default: "30000",
    meaning: "least time between fetches caused by unknown kids, and how long a failed fetch is remembered",
  },
  { name: "STATEGATE_JWKS_MAX_AGE_MS", default: "600000", meaning: "how long fetched keys are used before a refresh" },
  {
    name: "STATEGATE_REQUEST_POLICY",
    default: "none",
    meaning: "base64-encoded Rego policy that authorizes each request",
  },
  {
    name: "STATEGATE_REQUEST_POLICY_FILE",
    default: "none",
    meaning: "path of a Rego request policy (instead of STATEGATE_REQUEST_POLICY)",
  },
  {
    name: "STATEGATE_RESPONSE_POLICY",
    default: "none",
    meaning: "base64-encoded Rego policy applied to each response",
  },
  {
    name: "STATEGATE_RESPONSE_POLICY_FILE",
    default: "none",
    meaning: "path of a Rego response policy (instead of STATEGATE_RESPONSE_POLICY)",
  },
];
