/**
 * The options of the NATS channel, checked once at start-up and turned into
 * the `nats` client's connection options. A bad option stops start-up with a
 * ProviderConfigError naming it; TLS files are read here, not per connection.
 */
import { readFileSync } from "node:fs";
import type { ConnectionOptions, TlsOptions } from "nats";
import { ProviderConfigError } from "../errors.js";

/** TLS settings of {@link NatsChannelOptions.tls}. Paths are read once, at start-up. */
export interface NatsTlsOptions {
  /** PEM file of the CA certificates to trust instead of the system ones. */
  ca?: string;
  /** PEM file of a client certificate, for servers that verify clients (`verify: true`); needs `key`. */
  cert?: string;
  /** PEM file of the private key of `cert`. */
  key?: string;
  /** Whether the server's certificate must verify. Default true; turn off only for tests. */
  rejectUnauthorized?: boolean;
  /**
   * The name the server's certificate must carry, also sent as SNI. Default:
   * the host name of the server dialled; set it when dialling an IP address.
   */
  servername?: string;
}

/**
 * Options of {@link createNatsChannel}. Give either `addr` or `servers`; for
 * authentication either `user` with `password`, or `token`.
 */
export interface NatsChannelOptions {
  /** `host:port` of the server (`[v6]:port` for IPv6). Default "127.0.0.1:4222". */
  addr?: string;
  /**
   * Comma-separated `host:port` list of the servers of one cluster, e.g.
   * "n1:4222,n2:4222". The client connects to one and moves to another when
   * it is lost; servers the cluster announces are added.
   */
  servers?: string;
  /** User name, with `password`. */
  user?: string;
  /** Password of `user`. */
  password?: string;
  /** Authentication token (the server's `authorization { token }`); not with `user`. */
  token?: string;
  /**
   * The first subject token: payloads travel on `<prefix>.events` and
   * `<prefix>.messages`, so several installations can share one server.
   * Gateways of one installation must use the same prefix. A single subject
   * token: no spaces, ".", "*" or ">", not starting with "$". Default "stategate".
   */
  prefix?: string;
  /**
   * Require TLS: `true` with the system CAs, or settings. NATS upgrades to TLS
   * after the server's INFO line, on the same port; a server that does not
   * offer TLS is refused. Absent or false: plain, unless the server requires TLS.
   */
  tls?: boolean | NatsTlsOptions;
  /** How long connecting (TCP, TLS and the NATS handshake) may take, per attempt. Default 5000. */
  connectTimeoutMs?: number;
  /** The pause between reconnect attempts to one server (plus up to 100 ms of jitter, 1 s with TLS). Default 1000. */
  reconnectWaitMs?: number;
  /**
   * Reconnect attempts per server before the client gives up for good (the
   * channel then answers ProviderUnavailableError until the gateway restarts).
   * -1, the default, never gives up.
   */
  maxReconnectAttempts?: number;
  /** Interval of the client's pings; a server that misses two is given up and reconnected. Default 10000. */
  pingIntervalMs?: number;
  /** How long publish() waits for the server's round trip, and ping() for its answer, before failing. Default 5000. */
  publishTimeoutMs?: number;
  /**
   * Told about errors the channel handles itself: handler failures, lost
   * connections, errors the server reports (e.g. a denied publish). They may
   * name hosts: log them, never send them to clients. Without it they are dropped.
   */
  onError?: (error: unknown) => void;
  /**
   * Told when the connection to the server is lost (false) and back, with
   * every subscription in place again (true).
   */
  onConnectionChange?: (connected: boolean) => void;
}

/** Everything the adapter connects with, resolved from the options. */
export interface NatsSettings {
  connect: ConnectionOptions;
  prefix: string;
  publishTimeoutMs: number;
}

const tlsKeys = new Set(["ca", "cert", "key", "rejectUnauthorized", "servername"]);

function fail(option: string, expected: string): never {
  throw new ProviderConfigError(`channel provider "nats": option "${option}" must be ${expected}`, option);
}

function integer(option: string, value: number | undefined, fallback: number, min = 1, max = 2 ** 31 - 1): number {
  if (value === undefined) {
    return fallback;
  }
  if (!Number.isInteger(value) || value < min || value > max) {
    fail(option, `an integer from ${min} to ${max}`);
  }
  return value;
}

// The client tries once more than 0 allows, so 0 would not mean what it says.
function reconnectAttempts(value: number | undefined): number {
  if (value === undefined) {
    return -1;
  }
  if (value !== -1 && (!Number.isInteger(value) || value < 1 || value > 2 ** 31 - 1)) {
    fail("maxReconnectAttempts", "-1 (never give up) or an integer from 1 to 2147483647");
  }
  return value;
}

/** `host:port`, `[v6]:port` or a bare host, as the client's server list wants it. */
function server(option: string, addr: string): string {
  // A bare v6 address is refused: its colons are ambiguous.
  const match = /^\[([^\]]+)\](?::(\d+))?$/.exec(addr) ?? /^([^:[\]\s/@]+)(?::(\d+))?$/.exec(addr);
  const hostname = match?.[1];
  const port = match?.[2] === undefined ? 4222 : Number(match[2]);
  if (hostname === undefined || port < 1 || port > 65535) {
    fail(option, 'like "host:4222" or "[::1]:4222"');
  }
  return hostname.includes(":") ? `[${hostname}]:${port}` : `${hostname}:${port}`;
}

function readPem(option: string, path: unknown): string {
  if (typeof path !== "string" || path === "") {
    fail(option, "the path of a PEM file");
  }
  try {
    return readFileSync(path, "utf8");
  } catch {
    // The path is configuration, not a secret; the OS error adds nothing useful.
    throw new ProviderConfigError(`channel provider "nats": option "${option}": cannot read ${path}`, option);
  }
}

// The client spreads these into node's tls.connect() options when it upgrades
// the socket, so node's own names (rejectUnauthorized, servername) apply too.
function tlsOptions(tls: NatsTlsOptions | true): TlsOptions {
  if (tls === true) {
    return {};
  }
  if (typeof tls !== "object" || tls === null || Array.isArray(tls)) {
    fail("tls", "true, false or an object of ca, cert, key, rejectUnauthorized, servername");
  }
  for (const key of Object.keys(tls)) {
    if (!tlsKeys.has(key)) {
      fail(`tls.${key}`, `one of the known TLS options (${[...tlsKeys].join(", ")}), not an unknown key`);
    }
  }
  const options: TlsOptions & { rejectUnauthorized?: boolean; servername?: string } = {};
  if (tls.ca !== undefined) options.ca = readPem("tls.ca", tls.ca);
  if (tls.cert !== undefined) options.cert = readPem("tls.cert", tls.cert);
  if (tls.key !== undefined) options.key = readPem("tls.key", tls.key);
  if ((options.cert === undefined) !== (options.key === undefined)) {
    fail(options.cert === undefined ? "tls.cert" : "tls.key", "given together with the other (tls.cert and tls.key)");
  }
  if (tls.rejectUnauthorized !== undefined) {
    if (typeof tls.rejectUnauthorized !== "boolean") fail("tls.rejectUnauthorized", "true or false");
    options.rejectUnauthorized = tls.rejectUnauthorized;
  }
  if (tls.servername !== undefined) {
    if (typeof tls.servername !== "string" || tls.servername === "") fail("tls.servername", "a host name");
    options.servername = tls.servername;
  }
  return options;
}

function credentials(options: NatsChannelOptions): Pick<ConnectionOptions, "user" | "pass" | "token"> {
  if (options.token !== undefined) {
    if (options.user !== undefined || options.password !== undefined) {
      fail(options.user !== undefined ? "user" : "password", 'left out when "token" is given');
    }
    if (options.token === "") fail("token", "a non-empty string");
    return { token: options.token };
  }
  if ((options.user === undefined) !== (options.password === undefined)) {
    fail(options.user === undefined ? "user" : "password", 'given together with the other ("user" and "password")');
  }
  return options.user === undefined ? {} : { user: options.user, pass: options.password ?? "" };
}

/**
 * A subject token of its own: no whitespace or control characters, no "."
 * (a token separator), no "*" or ">" (wildcards), and not "$…" (the server's
 * own subjects, like $SYS and $JS).
 */
function subjectPrefix(prefix: string | undefined): string {
  const value = prefix ?? "stategate";
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses.
  if (!/^[^\s.*>$\u0000-\u001f\u007f][^\s.*>\u0000-\u001f\u007f]{0,199}$/u.test(value)) {
    fail("prefix", 'one subject token of at most 200 characters: no spaces, ".", "*" or ">", not starting with "$"');
  }
  return value;
}

/** Checks the options and resolves them into connection settings; throws ProviderConfigError naming a bad one. */
export function resolveNatsSettings(options: NatsChannelOptions): NatsSettings {
  if (options.addr !== undefined && options.servers !== undefined) {
    fail("servers", 'left out when "addr" is given (use one of them)');
  }
  let servers: string[];
  if (options.servers !== undefined) {
    const list = options.servers.split(",").map((entry) => entry.trim());
    if (list.some((entry) => entry === "")) {
      fail("servers", 'a comma-separated list like "n1:4222,n2:4222"');
    }
    servers = list.map((entry) => server("servers", entry));
  } else {
    servers = [server("addr", options.addr ?? "127.0.0.1:4222")];
  }
  const prefix = subjectPrefix(options.prefix);
  const tls = options.tls === undefined || options.tls === false ? undefined : tlsOptions(options.tls);
  return {
    connect: {
      servers,
      ...credentials(options),
      ...(tls === undefined ? {} : { tls }),
      // Lets an operator tell installations apart in the server's connection list (connz).
      name: `stategate ${prefix} (pid ${process.pid})`,
      timeout: integer("connectTimeoutMs", options.connectTimeoutMs, 5000),
      reconnect: true,
      reconnectTimeWait: integer("reconnectWaitMs", options.reconnectWaitMs, 1000, 0),
      maxReconnectAttempts: reconnectAttempts(options.maxReconnectAttempts),
      // The client's default (2 minutes) would let a silently dead server go unnoticed for minutes.
      pingInterval: integer("pingIntervalMs", options.pingIntervalMs, 10_000),
      maxPingOut: 2,
      waitOnFirstConnect: false,
      // Every subscription of an instance must see the instance's own payloads too.
      noEcho: false,
    },
    prefix,
    publishTimeoutMs: integer("publishTimeoutMs", options.publishTimeoutMs, 5000),
  };
}
