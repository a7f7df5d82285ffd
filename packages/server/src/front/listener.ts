import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import type { Duplex } from "node:stream";
import tls from "node:tls";
import { oneHostOnly, refuseRepeatedHostUpgrade } from "./host.js";

/** Takes an HTTP/1.1 upgrade request (WebSocket); returns false to refuse it. */
export type Upgrade = (req: http.IncomingMessage, socket: Duplex, head: Buffer) => boolean;

/** Takes an HTTP/2 stream before any request object exists for it; returns false to leave it to the handler. */
export type StreamTaker = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => boolean;

type Handler = (
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
) => void;

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
/** How long a new connection may take to send its first bytes. */
const PEEK_TIMEOUT_MS = 30_000;
/** How long an HTTP/2 connection without open streams is kept. */
const IDLE_TIMEOUT_MS = 60_000;

/**
 * Hands an HTTP/2 stream to `handler` as Node's compatibility API does (its
 * `request` event): a request and a response object, CONNECT refused with
 * 405, `Expect: 100-continue` answered with 100 first and any other
 * expectation refused with 417. Node builds these objects for every stream
 * once a `request` listener exists; building them here lets the direct gRPC
 * path skip them.
 */
function compatRequest(
  handler: Handler,
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
  rawHeaders: string[],
): void {
  // The constructors' fourth argument (raw headers) is what Node itself passes; the types omit it.
  const Request = http2.Http2ServerRequest as unknown as new (
    stream: http2.ServerHttp2Stream,
    headers: http2.IncomingHttpHeaders,
    options: undefined,
    rawHeaders: string[],
  ) => http2.Http2ServerRequest;
  const req = new Request(stream, headers, undefined, rawHeaders);
  const res = new http2.Http2ServerResponse(stream);
  if (headers[":method"] === "CONNECT") {
    res.statusCode = http2.constants.HTTP_STATUS_METHOD_NOT_ALLOWED;
    res.end();
    return;
  }
  if (headers.expect !== undefined) {
    if (headers.expect !== "100-continue") {
      res.statusCode = http2.constants.HTTP_STATUS_EXPECTATION_FAILED;
      res.end();
      return;
    }
    res.writeContinue();
  }
  handler(req, res);
}

/** One port, both HTTP/2 cleartext (gRPC) and HTTP/1.1 (gRPC-Web, Connect, REST). */
export interface Listener {
  readonly port: number;
  /**
   * Stops accepting connections, asks HTTP/2 clients to go away and closes idle
   * HTTP/1.1 connections; after `graceMs`, destroys whatever is still open.
   */
  close(graceMs: number): Promise<void>;
}

/** The certificate and key to serve TLS with. */
export interface ListenTls {
  cert: Buffer;
  key: Buffer;
}

/**
 * Listens on host:port and hands each connection to an HTTP/2 or an HTTP/1.1
 * server after peeking at its first bytes for the HTTP/2 connection preface.
 * Node's `http2.createServer({ allowHTTP1 })` only does this with TLS. With
 * `tls`, the port speaks TLS only, and ALPN picks the server: "h2" or
 * "http/1.1" (a client that offers neither gets HTTP/1.1, as HTTP/2 over TLS
 * requires ALPN). With `direct`, each HTTP/2 stream is offered to it first,
 * and only the ones it leaves become requests for `handler`.
 */
export async function listen(
  handler: Handler,
  host: string,
  port: number,
  upgrade?: Upgrade,
  secure?: ListenTls,
  direct?: StreamTaker,
): Promise<Listener> {
  // Whatever the authentication mode, an HTTP/1.1 request naming several hosts is refused (see host.ts).
  const h1 = http.createServer(oneHostOnly(handler as http.RequestListener));
  h1.on("upgrade", (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    if (refuseRepeatedHostUpgrade(req, socket)) return;
    if (upgrade?.(req, socket, head)) {
      // The socket is the door's now (a WebSocket), not idle keep-alive: at shutdown the
      // door closes it once its subscriptions said why they ended (destroyed after the grace at the latest).
      busy.delete(socket as net.Socket);
      return;
    }
    // Node routes every request with an Upgrade header here; answer it instead of hanging up.
    const body =
      "only WebSocket upgrades on /api/graphql are served; for HTTP/2 use prior knowledge (h2c upgrade is not supported)";
    socket.end(
      `HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  });
  h1.keepAliveTimeout = 65_000;
  // Clients cancel streams (a `break` out of a stream loop) far more often than
  // nghttp2's rapid-reset guard expects; keep a guard, at a higher rate. (Node
  // 20.12+ options, missing from @types/node 20.)
  const h2Options = { streamResetBurst: 10_000, streamResetRate: 1_000 } as http2.ServerOptions;
  const h2 = http2.createServer(h2Options);
  h2.on(
    "stream",
    (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, _flags: number, rawHeaders: string[]) => {
      if (direct?.(stream, headers)) return;
      compatRequest(handler, stream, headers, rawHeaders);
    },
  );
  const sockets = new Set<net.Socket>();
  const sessions = new Set<http2.ServerHttp2Session>();
  h2.on("session", (session) => {
    sessions.add(session);
    session.on("close", () => sessions.delete(session));
    // A session that broke the protocol is done: do not leave its socket open.
    session.on("error", () => session.destroy());
    session.on("goaway", () => session.close());
    // An HTTP/2 connection with no open stream for this long is closed; one
    // holding streams (even idle event streams) is kept.
    let open = 0;
    session.on("stream", (stream) => {
      open++;
      stream.once("close", () => open--);
    });
    session.setTimeout(IDLE_TIMEOUT_MS, () => {
      if (open === 0) session.close();
    });
  });

  // HTTP/1.1 requests in flight per socket: at shutdown, a socket with none is
  // idle keep-alive and is closed at once (closeIdleConnections does not see
  // sockets handed over with emit("connection")); a busy one when it is done.
  const busy = new Map<net.Socket, number>();
  let closing = false;
  h1.on("request", (req: http.IncomingMessage, res: http.ServerResponse) => {
    const socket = req.socket as net.Socket;
    busy.set(socket, (busy.get(socket) ?? 0) + 1);
    res.once("close", () => {
      // A response can close after its socket did: do not bring a closed socket back into the map.
      if (!busy.has(socket)) return;
      const left = (busy.get(socket) ?? 1) - 1;
      busy.set(socket, left);
      if (closing && left === 0) socket.destroy();
    });
  });

  const accept = (socket: net.Socket) => {
    sockets.add(socket);
    socket.on("close", () => {
      sockets.delete(socket);
      busy.delete(socket);
    });
    socket.on("error", () => socket.destroy());
    const alpn = (socket as tls.TLSSocket).alpnProtocol;
    if (secure) {
      if (alpn !== "h2") busy.set(socket, 0);
      (alpn === "h2" ? h2 : h1).emit("connection", socket as Duplex);
      return;
    }
    socket.setTimeout(PEEK_TIMEOUT_MS, () => socket.destroy());
    let seen = Buffer.alloc(0);
    const onReadable = () => {
      for (let chunk = socket.read() as Buffer | null; chunk !== null; chunk = socket.read() as Buffer | null) {
        seen = Buffer.concat([seen, chunk]);
      }
      const n = Math.min(seen.length, PREFACE.length);
      const isH2 = seen.subarray(0, n).equals(PREFACE.subarray(0, n));
      if (isH2 && seen.length < PREFACE.length) return;
      socket.off("readable", onReadable);
      socket.setTimeout(0);
      socket.unshift(seen);
      if (!isH2) busy.set(socket, 0);
      (isH2 ? h2 : h1).emit("connection", socket as Duplex);
    };
    socket.on("readable", onReadable);
  };
  const server = secure
    ? tls.createServer(
        { cert: secure.cert, key: secure.key, ALPNProtocols: ["h2", "http/1.1"], handshakeTimeout: PEEK_TIMEOUT_MS },
        accept,
      )
    : net.createServer(accept);

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });

  return {
    port: (server.address() as net.AddressInfo).port,
    async close(graceMs) {
      closing = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const session of sessions) session.close();
      for (const [socket, inFlight] of busy) if (inFlight === 0) socket.destroy();
      const timer = setTimeout(() => {
        for (const session of sessions) session.destroy();
        for (const socket of sockets) socket.destroy();
      }, graceMs);
      timer.unref();
      await closed;
      clearTimeout(timer);
    },
  };
}
