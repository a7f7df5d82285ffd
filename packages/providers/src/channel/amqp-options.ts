/**
 * The options of the AMQP channel, checked once at start-up and turned into
 * amqplib's connection settings. A bad option stops start-up with a
 * ProviderConfigError naming it; TLS files are read here, not per connection.
 */
import { readFileSync } from "node:fs";
import type { Options, SocketOptions } from "amqplib";
import { ProviderConfigError } from "../errors.js";

/** TLS settings of {@link AmqpChannelOptions.tls}. Paths are read once, at start-up. */
export interface AmqpTlsOptions {
  /** PEM file of the CA certificates to trust instead of the system ones. */
  ca?: string;
  /** PEM file of a client certificate, for brokers that verify clients; needs `key`. */
  cert?: string;
  /** PEM file of the private key of `cert`. */
  key?: string;
  /** Whether the broker's certificate must verify. Default true; turn off only for tests. */
  rejectUnauthorized?: boolean;
  /** The name the broker's certificate must carry, also sent as SNI. Default: the host, unless it is an IP address. */
  servername?: string;
}

/**
 * Options of {@link createAmqpChannel}. Give either `url`, or `addr` with
 * `user`, `password` and `vhost`; not both.
 */
export interface AmqpChannelOptions {
  /** `amqp://user:password@host:port/vhost` or `amqps://…` (TLS). Percent-encode reserved characters. */
  url?: string;
  /** `host:port` of the broker (`[v6]:port` for IPv6). Default "127.0.0.1:5672", 5671 with TLS. */
  addr?: string;
  /** Default "guest". */
  user?: string;
  /** Default "guest". */
  password?: string;
  /** The virtual host. Default "/". */
  vhost?: string;
  /**
   * Namespaces exchanges and group queues (`<prefix>.events`, …), so several
   * installations can share one broker. Gateways of one installation must
   * use the same prefix. Default "stategate".
   */
  prefix?: string;
  /** Heartbeat interval; a silent broker is given up after two missed beats. 0 turns heartbeats off. Default 10. */
  heartbeatSeconds?: number;
  /**
   * Connect with TLS (amqps): `true` with the system CAs, or settings. An
   * `amqps://` url turns TLS on by itself; `false` with one is refused.
   */
  tls?: boolean | AmqpTlsOptions;
  /** How long connecting (TCP, TLS and AMQP handshake) may take. Default 5000. */
  connectTimeoutMs?: number;
  /** How long publish() waits for the broker's confirm, and ping() for its answer, before failing. Default 5000. */
  publishTimeoutMs?: number;
  /** Payloads a group member may hold unacknowledged (RabbitMQ prefetch). Default 64. */
  prefetch?: number;
  /**
   * Told about errors the channel handles itself: handler failures, lost
   * connections, failed reconnects. They may name hosts: log them, never send
   * them to clients. Without it they are dropped.
   */
  onError?: (error: unknown) => void;
  /**
   * Told when the connection to the broker is lost (false) and back (true).
   * Plain subscribers miss what is published while their gateway is
   * disconnected, so this is the moment to catch streams up from storage.
   */
  onConnectionChange?: (connected: boolean) => void;
}

/** Everything the adapter connects with, resolved from the options. */
export interface AmqpSettings {
  connect: Options.Connect;
  socket: SocketOptions;
  prefix: string;
  publishTimeoutMs: number;
  prefetch: number;
}

const tlsKeys = new Set(["ca", "cert", "key", "rejectUnauthorized", "servername"]);

function fail(option: string, expected: string): never {
  throw new ProviderConfigError(`channel provider "amqp": option "${option}" must be ${expected}`, option);
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

function splitAddr(addr: string): { hostname: string; port: number | undefined } {
  // [v6]:port, host:port or a bare host. A bare v6 address is refused: its colons are ambiguous.
  const match = /^\[([^\]]+)\](?::(\d+))?$/.exec(addr) ?? /^([^:]+)(?::(\d+))?$/.exec(addr);
  const hostname = match?.[1];
  const port = match?.[2] === undefined ? undefined : Number(match[2]);
  if (hostname === undefined || (port !== undefined && (port < 1 || port > 65535))) {
    fail("addr", 'like "host:5672" or "[::1]:5672"');
  }
  return { hostname, port };
}

function readPem(option: string, path: unknown): Buffer {
  if (typeof path !== "string" || path === "") {
    fail(option, "the path of a PEM file");
  }
  try {
    return readFileSync(path);
  } catch {
    // The path is configuration, not a secret; the OS error adds nothing useful.
    throw new ProviderConfigError(`channel provider "amqp": option "${option}": cannot read ${path}`, option);
  }
}

// amqplib itself sends the host as servername (SNI) unless it is an IP address.
function tlsSocket(tls: AmqpTlsOptions | true): SocketOptions {
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
  const socket: SocketOptions = {};
  if (tls.ca !== undefined) socket.ca = readPem("tls.ca", tls.ca);
  if (tls.cert !== undefined) socket.cert = readPem("tls.cert", tls.cert);
  if (tls.key !== undefined) socket.key = readPem("tls.key", tls.key);
  if ((socket.cert === undefined) !== (socket.key === undefined)) {
    fail(socket.cert === undefined ? "tls.cert" : "tls.key", "given together with the other (tls.cert and tls.key)");
  }
  if (tls.rejectUnauthorized !== undefined) {
    if (typeof tls.rejectUnauthorized !== "boolean") fail("tls.rejectUnauthorized", "true or false");
    socket.rejectUnauthorized = tls.rejectUnauthorized;
  }
  if (tls.servername !== undefined) {
    if (typeof tls.servername !== "string" || tls.servername === "") fail("tls.servername", "a host name");
    socket.servername = tls.servername;
  }
  return socket;
}

function fromUrl(url: string): {
  hostname: string;
  port: number | undefined;
  user: string;
  password: string;
  vhost: string;
  secure: boolean;
} {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // Never echo the url: it may hold the password.
    fail("url", "an amqp:// or amqps:// URL");
  }
  if (parsed.protocol !== "amqp:" && parsed.protocol !== "amqps:") {
    fail("url", "an amqp:// or amqps:// URL");
  }
  if (parsed.hostname === "" || parsed.search !== "") {
    fail("url", "an amqp:// or amqps:// URL with a host and no query (use the other options)");
  }
  const path = decodeURIComponent(parsed.pathname.slice(1));
  return {
    hostname: parsed.hostname.replace(/^\[|\]$/g, ""),
    port: parsed.port === "" ? undefined : Number(parsed.port),
    user: parsed.username === "" ? "guest" : decodeURIComponent(parsed.username),
    password: parsed.password === "" && parsed.username === "" ? "guest" : decodeURIComponent(parsed.password),
    vhost: path === "" ? "/" : path,
    secure: parsed.protocol === "amqps:",
  };
}

/** Checks the options and resolves them into connection settings; throws ProviderConfigError naming a bad one. */
export function resolveAmqpSettings(options: AmqpChannelOptions): AmqpSettings {
  if (options.url !== undefined) {
    for (const option of ["addr", "user", "password", "vhost"] as const) {
      if (options[option] !== undefined) {
        fail(option, 'left out when "url" is given (the url carries it)');
      }
    }
  }
  const target =
    options.url !== undefined
      ? fromUrl(options.url)
      : {
          ...splitAddr(options.addr ?? "127.0.0.1:5672"),
          user: options.user ?? "guest",
          password: options.password ?? "guest",
          vhost: options.vhost ?? "/",
          secure: false,
        };
  if (options.tls === false && target.secure) {
    fail("tls", "true or left out with an amqps:// url");
  }
  const tls = options.tls === undefined || options.tls === false ? (target.secure ? true : undefined) : options.tls;
  const prefix = options.prefix ?? "stategate";
  // 255 bytes is RabbitMQ's limit for names; the group queue suffix takes up to 48.
  if (prefix === "" || Buffer.byteLength(prefix) > 200 || prefix.startsWith("amq.")) {
    fail("prefix", 'a non-empty name of at most 200 bytes, not starting with "amq."');
  }
  const connectTimeoutMs = integer("connectTimeoutMs", options.connectTimeoutMs, 5000);
  return {
    connect: {
      protocol: tls === undefined ? "amqp" : "amqps",
      hostname: target.hostname,
      port: target.port ?? (tls === undefined ? 5672 : 5671),
      username: target.user,
      password: target.password,
      // amqplib percent-decodes the vhost once more, so hand it over encoded.
      vhost: encodeURIComponent(target.vhost),
      heartbeat: integer("heartbeatSeconds", options.heartbeatSeconds, 10, 0, 65535),
    },
    socket: {
      ...(tls === undefined ? {} : tlsSocket(tls)),
      timeout: connectTimeoutMs,
      noDelay: true,
      // Lets an operator tell installations apart in `rabbitmqctl list_connections`.
      clientProperties: { connection_name: `stategate ${prefix} (pid ${process.pid})` },
    },
    prefix,
    publishTimeoutMs: integer("publishTimeoutMs", options.publishTimeoutMs, 5000),
    prefetch: integer("prefetch", options.prefetch, 64, 1, 65535),
  };
}
