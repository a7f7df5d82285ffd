import type { Config } from "../config.js";

/** Option names whose values are secrets, in provider specs and anywhere else. */
const secretKey = /pass(word|phrase)?$|secret|token|credential|api[-_]?key|private[-_]?key|^key$/i;

const REDACTED = "[redacted]";

/**
 * A URL's password (or a lone username, which some schemes use as the secret)
 * replaced; other strings as they are. A string that looks like a URL but does
 * not parse (a space or a stray character in it) may still hold a password
 * that a driver would use: everything between "://" and its last "@" goes.
 * So does the password of "user:password@host" without a scheme.
 */
function redactString(value: string): string {
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(value)?.[0];
  if (scheme === undefined) {
    // "user:password@host:port" given where an address belongs: the provider refuses it, after it was logged.
    const userinfo = /^([^\s:/@]+):[^@]*@/.exec(value);
    return userinfo ? `${userinfo[1]}:${REDACTED}${value.slice(value.lastIndexOf("@"))}` : value;
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    const at = value.lastIndexOf("@");
    return at < scheme.length ? value : `${scheme}${REDACTED}${value.slice(at)}`;
  }
  if (!url.password && !url.username) return value;
  if (url.password) url.password = REDACTED;
  else url.username = REDACTED;
  return url.toString();
}

/** A deep copy of `value` with every secret-named key and every URL password replaced. */
export function redactValue(value: unknown): unknown {
  if (typeof value === "string") return redactString(value);
  if (Array.isArray(value)) return value.map(redactValue);
  if (value instanceof URL) return redactString(value.href);
  if (typeof value !== "object" || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = secretKey.test(k) && v !== "" ? REDACTED : redactValue(v);
  return out;
}

/**
 * The configuration as start-up logs it: every effective value, but no
 * secrets. Provider passwords and tokens (as options or inside URLs), URL
 * credentials, the TLS key, and the policies' text (which may embed secrets)
 * are left out; file paths stay, since they say where a secret comes from.
 *
 * @example
 * log.info({ config: redactConfig(config) }, "starting");
 */
export function redactConfig(config: Config): Record<string, unknown> {
  const { tls, policies, ...rest } = config;
  const policy = (p: Config["policies"]["request"]) =>
    p && { variable: p.variable, origin: p.origin, bytes: Buffer.byteLength(p.source) };
  return {
    ...(redactValue(rest) as Record<string, unknown>),
    tls: tls ? { certFile: tls.certFile, keyFile: tls.keyFile } : null,
    policies: { request: policy(policies.request) ?? null, response: policy(policies.response) ?? null },
  };
}
