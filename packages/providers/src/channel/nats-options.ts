/**
 * The options of the NATS channel, checked once at start-up and turned into
 * the `nats` client's connection options. A bad option stops start-up with a
 * ProviderConfigError naming it; TLS files are read here, not per connection.
 */
import type { ConnectionOptions, TlsOptions } from "nats";
import { optionChecker, type TlsFileOptions } from "../options.js";

/** TLS settings of {@link NatsChannelOptions.tls}; files are read once, at start-up. */
export type NatsTlsOptions = TlsFileOptions;

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

const check = optionChecker('channel provider "nats"');

// The client tries once more than 0 allows, so 0 would not mean what it says.
function reconnectAttempts(value: number | undefined): number {
  if (value === undefined) {
    return -1;
  }
  if (value !== -1 && (!Number.isInteger(value) || value < 1 || value > 2 ** 31 - 1)) {
    check.fail("maxReconnectAttempts", "-1 (never give up) or an integer from 1 to 2147483647");
  }
  return value;
}

/** `host:port`, `[v6]:port` or a bare host, as the client's server list wants it. */
function server(option: string, addr: string): string {
  const { host, port } = check.address(option, addr, 4222);
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * The client spreads these into node's tls.connect() options when it
 * upgrades the socket, so node's own names (rejectUnauthorized, servername)
 * apply too; it wants the PEM contents as text.
 */
function tlsOptions(tls: NatsTlsOptions | true): TlsOptions {
  const { ca, cert, key, ...checks } = check.tls(tls);
  return {
    ...checks,
    ...(ca === undefined ? {} : { ca: String(ca) }),
    ...(cert === undefined ? {} : { cert: String(cert) }),
    ...(key === undefined ? {} : { key: String(key) }),
  } as TlsOptions;
}

function credentials(options: NatsChannelOptions): Pick<ConnectionOptions, "user" | "pass" | "token"> {
  if (options.token !== undefined) {
    if (options.user !== undefined || options.password !== undefined) {
      check.fail(options.user !== undefined ? "user" : "password", 'left out when "token" is given');
    }
    if (options.token === "") check.fail("token", "a non-empty string");
    return { token: options.token };
  }
  if ((options.user === undefined) !== (options.password === undefined)) {
    check.fail(
      options.user === undefined ? "user" : "password",
      'given together with the other ("user" and "password")',
    );
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
    check.fail(
      "prefix",
      'one subject token of at most 200 characters: no spaces, ".", "*" or ">", not starting with "$"',
    );
  }
  return value;
}

/** Checks the options and resolves them into connection settings; throws ProviderConfigError naming a bad one. */
export function resolveNatsSettings(options: NatsChannelOptions): NatsSettings {
  if (options.addr !== undefined && options.servers !== undefined) {
    check.fail("servers", 'left out when "addr" is given (use one of them)');
  }
  let servers: string[];
  if (options.servers !== undefined) {
    const list = options.servers.split(",").map((entry) => entry.trim());
    if (list.some((entry) => entry === "")) {
      check.fail("servers", 'a comma-separated list like "n1:4222,n2:4222"');
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
      timeout: check.integer("connectTimeoutMs", options.connectTimeoutMs, 5000),
      reconnect: true,
      reconnectTimeWait: check.integer("reconnectWaitMs", options.reconnectWaitMs, 1000, 0),
      maxReconnectAttempts: reconnectAttempts(options.maxReconnectAttempts),
      // The client's default (2 minutes) would let a silently dead server go unnoticed for minutes.
      pingInterval: check.integer("pingIntervalMs", options.pingIntervalMs, 10_000),
      maxPingOut: 2,
      waitOnFirstConnect: false,
      // Every subscription of an instance must see the instance's own payloads too.
      noEcho: false,
    },
    prefix,
    publishTimeoutMs: check.integer("publishTimeoutMs", options.publishTimeoutMs, 5000),
  };
}
