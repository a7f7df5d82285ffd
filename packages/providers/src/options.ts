/**
 * Checks the options of a provider spec, once, at start-up. Every adapter's
 * options file uses these checks, so the same mistake (a bad port, an unread
 * certificate, a URL with a query that would be ignored) gets the same
 * message from every backend. A bad value throws ProviderConfigError naming
 * the option; messages never echo a URL or a password.
 */
import { readFileSync } from "node:fs";
import type { ConnectionOptions } from "node:tls";
import { ProviderConfigError } from "./errors.js";

/** The `tls` object a provider spec may carry: PEM file paths and checks, all optional. */
export interface TlsFileOptions {
  /** PEM file of the CA certificates to trust instead of the system ones. */
  ca?: string;
  /** PEM file of a client certificate, for servers that verify clients; needs `key`. */
  cert?: string;
  /** PEM file of the private key of `cert`. */
  key?: string;
  /** Whether the server's certificate must verify. Default true; turn off only for tests. */
  rejectUnauthorized?: boolean;
  /** The name the server's certificate must carry, also sent as SNI. Default: the host. */
  servername?: string;
}

/** A server address, split; the port is `P` (the default given) when the address has none. */
export interface HostPort<P extends number | undefined = number> {
  host: string;
  port: number | P;
}

/** The parts of a connection URL, percent-decoded. */
export interface UrlParts {
  /** The scheme without its colon, such as "rediss". */
  scheme: string;
  /** The host, without the brackets of an IPv6 address. */
  host: string;
  port: number | undefined;
  user: string | undefined;
  password: string | undefined;
  /** The path without its leading slash ("" when there is none). */
  path: string;
}

/** The checks of one provider's options; `where` (e.g. `cache provider "redis"`) starts every message. */
export interface OptionChecker {
  /** Throws ProviderConfigError: `<where>: option "<option>" must be <expected>`. */
  fail(option: string, expected: string): never;
  /** `value` as an integer in [min, max], or `fallback` when it is left out. */
  integer(option: string, value: number | undefined, fallback: number, min?: number, max?: number): number;
  /**
   * "host", "host:port", "[v6]" or "[v6]:port". A bare IPv6 address is
   * refused: its colons are ambiguous.
   */
  address<P extends number | undefined>(option: string, text: string, defaultPort: P): HostPort<P>;
  /**
   * A connection URL with one of `schemes` and a host. A query or fragment is
   * refused: parameters silently ignored are how TLS settings got lost.
   */
  url(text: string, schemes: readonly string[], example: string): UrlParts;
  /** Refuses each of `options` that is set when `url` is: the URL carries them. */
  notWithUrl<T extends object>(spec: T, options: readonly (keyof T & string)[]): void;
  /**
   * A spec's `tls` (true, or the object of PEM paths and checks) as Node TLS
   * options, with the files read now. Node checks the certificate against the
   * host (or `servername`) and sends the host as SNI unless it is an IP address.
   */
  tls(tls: TlsFileOptions | true): ConnectionOptions;
}

const tlsKeys = ["ca", "cert", "key", "rejectUnauthorized", "servername"];
const maxInt32 = 2 ** 31 - 1;

/**
 * The checks for one provider.
 *
 * @example
 * const check = optionChecker('channel provider "nats"');
 * const timeout = check.integer("connectTimeoutMs", options.connectTimeoutMs, 5000);
 */
export function optionChecker(where: string): OptionChecker {
  const fail = (option: string, expected: string): never => {
    throw new ProviderConfigError(`${where}: option "${option}" must be ${expected}`, option);
  };

  const port = (option: string, text: string): number => {
    const value = Number(text);
    if (!/^\d{1,5}$/.test(text) || value < 1 || value > 65535) fail(option, "a port between 1 and 65535");
    return value;
  };

  const readPem = (option: string, path: unknown): Buffer => {
    if (typeof path !== "string" || path === "") fail(option, "the path of a PEM file");
    try {
      return readFileSync(path as string);
    } catch {
      // The path is configuration, not a secret; the OS error adds nothing useful.
      throw new ProviderConfigError(`${where}: option "${option}": cannot read ${path}`, option);
    }
  };

  return {
    fail,

    integer(option, value, fallback, min = 1, max = maxInt32) {
      if (value === undefined) return fallback;
      if (!Number.isInteger(value) || value < min || value > max) fail(option, `an integer from ${min} to ${max}`);
      return value;
    },

    address(option, text, defaultPort) {
      const match = /^\[([0-9a-fA-F:.]+)\](?::(.*))?$/.exec(text) ?? /^([^\s:[\]@/,]+)(?::(.*))?$/.exec(text);
      if (match === null) fail(option, '"host:port", with an IPv6 address in brackets ("[::1]:port")');
      const [, host = "", given] = match as RegExpExecArray;
      return { host, port: given === undefined ? defaultPort : port(option, given) };
    },

    url(text, schemes, example) {
      const usage = `a URL like ${example}`;
      let url: URL | undefined;
      try {
        url = new URL(text);
      } catch {
        fail("url", usage);
      }
      const parsed = url as URL;
      const scheme = parsed.protocol.replace(/:$/, "");
      if (!schemes.includes(scheme) || parsed.hostname === "") fail("url", usage);
      if (parsed.search !== "" || parsed.hash !== "") {
        fail("url", `${usage}, with no query or fragment (use the other options)`);
      }
      try {
        return {
          scheme,
          host: parsed.hostname.replace(/^\[(.*)\]$/, "$1"),
          port: parsed.port === "" ? undefined : port("url", parsed.port),
          user: parsed.username === "" ? undefined : decodeURIComponent(parsed.username),
          password: parsed.password === "" ? undefined : decodeURIComponent(parsed.password),
          path: decodeURIComponent(parsed.pathname.replace(/^\//, "")),
        };
      } catch (error) {
        if (error instanceof ProviderConfigError) throw error;
        return fail("url", `${usage}, with its reserved characters percent-encoded`);
      }
    },

    notWithUrl(spec, options) {
      if ((spec as { url?: unknown }).url === undefined) return;
      for (const option of options) {
        if (spec[option] !== undefined) fail(option, 'left out when "url" is given (the url carries it)');
      }
    },

    tls(tls) {
      if (tls === true) return {};
      if (typeof tls !== "object" || tls === null || Array.isArray(tls)) {
        fail("tls", `true, false or an object of ${tlsKeys.join(", ")}`);
      }
      for (const key of Object.keys(tls)) {
        if (!tlsKeys.includes(key)) fail(`tls.${key}`, `one of the known TLS options (${tlsKeys.join(", ")})`);
      }
      if ((tls.cert === undefined) !== (tls.key === undefined)) {
        fail(tls.cert === undefined ? "tls.cert" : "tls.key", "given together with the other (tls.cert and tls.key)");
      }
      const connection: ConnectionOptions = {};
      if (tls.ca !== undefined) connection.ca = readPem("tls.ca", tls.ca);
      if (tls.cert !== undefined) connection.cert = readPem("tls.cert", tls.cert);
      if (tls.key !== undefined) connection.key = readPem("tls.key", tls.key);
      if (tls.rejectUnauthorized !== undefined) {
        if (typeof tls.rejectUnauthorized !== "boolean") fail("tls.rejectUnauthorized", "true or false");
        connection.rejectUnauthorized = tls.rejectUnauthorized;
      }
      if (tls.servername !== undefined) {
        if (typeof tls.servername !== "string" || tls.servername === "") fail("tls.servername", "a host name");
        connection.servername = tls.servername;
      }
      return connection;
    },
  };
}
