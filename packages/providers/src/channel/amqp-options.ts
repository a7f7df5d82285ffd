/**
 * The options of the AMQP channel, checked once at start-up and turned into
 * amqplib's connection settings. A bad option stops start-up with a
 * ProviderConfigError naming it; TLS files are read here, not per connection.
 */
import type { Options, SocketOptions } from "amqplib";
import { optionChecker, type TlsFileOptions } from "../options.js";

/** TLS settings of {@link AmqpChannelOptions.tls}. Paths are read once, at start-up. */
export type AmqpTlsOptions = TlsFileOptions;

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

const check = optionChecker('channel provider "amqp"');

interface Target {
  host: string;
  port: number | undefined;
  user: string;
  password: string;
  vhost: string;
  secure: boolean;
}

function fromUrl(url: string): Target {
  const parts = check.url(url, ["amqp", "amqps"], "amqp://user:password@host:5672/vhost or amqps://… (TLS)");
  return {
    host: parts.host,
    port: parts.port,
    user: parts.user ?? "guest",
    password: parts.password ?? (parts.user === undefined ? "guest" : ""),
    vhost: parts.path === "" ? "/" : parts.path,
    secure: parts.scheme === "amqps",
  };
}

/** Checks the options and resolves them into connection settings; throws ProviderConfigError naming a bad one. */
export function resolveAmqpSettings(options: AmqpChannelOptions): AmqpSettings {
  check.notWithUrl(options, ["addr", "user", "password", "vhost"]);
  const addr = options.addr === undefined ? undefined : check.address("addr", options.addr, undefined);
  const target: Target =
    options.url !== undefined
      ? fromUrl(options.url)
      : {
          host: addr?.host ?? "127.0.0.1",
          // Left open until TLS is known: 5671 with it, 5672 without.
          port: addr?.port,
          user: options.user ?? "guest",
          password: options.password ?? "guest",
          vhost: options.vhost ?? "/",
          secure: false,
        };
  if (options.tls === false && target.secure) {
    check.fail("tls", "true or left out with an amqps:// url");
  }
  const tls = options.tls === undefined || options.tls === false ? (target.secure ? true : undefined) : options.tls;
  const prefix = options.prefix ?? "stategate";
  // 255 bytes is RabbitMQ's limit for names; the group queue suffix takes up to 48.
  if (prefix === "" || Buffer.byteLength(prefix) > 200 || prefix.startsWith("amq.")) {
    check.fail("prefix", 'a non-empty name of at most 200 bytes, not starting with "amq."');
  }
  const connectTimeoutMs = check.integer("connectTimeoutMs", options.connectTimeoutMs, 5000);
  return {
    connect: {
      protocol: tls === undefined ? "amqp" : "amqps",
      hostname: target.host,
      port: target.port ?? (tls === undefined ? 5672 : 5671),
      username: target.user,
      password: target.password,
      // amqplib percent-decodes the vhost once more, so hand it over encoded.
      vhost: encodeURIComponent(target.vhost),
      heartbeat: check.integer("heartbeatSeconds", options.heartbeatSeconds, 10, 0, 65535),
    },
    socket: {
      // amqplib itself sends the host as servername (SNI) unless it is an IP address.
      ...(tls === undefined ? {} : (check.tls(tls) as SocketOptions)),
      timeout: connectTimeoutMs,
      noDelay: true,
      // Lets an operator tell installations apart in `rabbitmqctl list_connections`.
      clientProperties: { connection_name: `stategate ${prefix} (pid ${process.pid})` },
    },
    prefix,
    publishTimeoutMs: check.integer("publishTimeoutMs", options.publishTimeoutMs, 5000),
    prefetch: check.integer("prefetch", options.prefetch, 64, 1, 65535),
  };
}
