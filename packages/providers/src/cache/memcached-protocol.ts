/**
 * Binary-protocol requests sent through memjs's server connections.
 *
 * memjs 1.3.2 drops the CAS of a get and cannot send one with set or delete
 * (its sources say "TODO: support version (CAS)"), yet owner-safe locks need
 * exactly that: read a lock with its CAS, then delete or replace it only if
 * the CAS still matches. So requests are encoded here, CAS field included, and
 * written through memjs's `Server` (`onResponse`/`onError`/`write`), the way
 * memjs's own `stats` and `flush` do: memjs keeps the connection, SASL, request
 * timeouts and response parsing. Requests go straight to the server rather than
 * through `Client.perform`, whose retries would repeat an `add` or a CAS
 * delete whose reply was lost, and whose failures are logged to the console.
 */
import type { Client, Response, Server } from "memjs";
import { connectionError } from "./memcached-errors.js";

/** Binary-protocol opcodes the adapter sends. */
export const opcode = {
  get: 0x00,
  set: 0x01,
  add: 0x02,
  delete: 0x04,
  version: 0x0b,
  stat: 0x10,
} as const;

/** One request. */
export interface MemcachedRequest {
  opcode: number;
  key: string;
  extras?: Buffer;
  value?: Buffer;
  /** The item must still have this CAS (8 bytes, as a reply gave it) for the request to apply. */
  cas?: Buffer;
}

/** The parts of a response the adapter reads. */
export interface MemcachedReply {
  status: number;
  key: Buffer;
  value: Buffer;
  /** The item's CAS after the request (8 bytes). */
  cas: Buffer;
}

const headerBytes = 24;
const requestMagic = 0x80;

function encode(request: MemcachedRequest, opaque: number): Buffer {
  const key = Buffer.from(request.key, "utf8");
  const extras = request.extras ?? Buffer.alloc(0);
  const value = request.value ?? Buffer.alloc(0);
  const header = Buffer.alloc(headerBytes);
  header.writeUInt8(requestMagic, 0);
  header.writeUInt8(request.opcode, 1);
  header.writeUInt16BE(key.length, 2);
  header.writeUInt8(extras.length, 4);
  // Byte 5 (data type) and bytes 6-7 (vbucket) stay 0.
  header.writeUInt32BE(extras.length + key.length + value.length, 8);
  header.writeUInt32BE(opaque, 12);
  request.cas?.copy(header, 16, 0, 8);
  return Buffer.concat([header, extras, key, value]);
}

/** The extras of a set or add: flags (unused, 0) and exptime. */
export function storeExtras(exptime: number): Buffer {
  const extras = Buffer.alloc(8);
  extras.writeUInt32BE(exptime, 4);
  return extras;
}

function toReply(response: Response): MemcachedReply {
  return { status: response.header.status, key: response.key, value: response.val, cas: response.header.cas };
}

// A response is matched to its request by the opaque field; memjs's client
// counter keeps it unique per connection.
function nextOpaque(client: Client): number {
  client.incrSeq();
  return client.seq;
}

/**
 * How much longer than memjs's own request timeout an exchange may take
 * before it is given up. memjs loses a request written just before the
 * server closed the connection cleanly (its close handler cancels the
 * request timer and never reports an error), so without this backstop the
 * call would wait forever.
 */
const backstopMarginMs = 250;

// Resolves with the request's responses: the first one, or with `series` all
// of them up to the empty one that ends a series (as `stats` sends).
function exchange(
  client: Client,
  server: Server,
  request: MemcachedRequest,
  series: boolean,
  timeoutMs: number,
): Promise<MemcachedReply[]> {
  return new Promise((resolve, reject) => {
    const opaque = nextOpaque(client);
    const replies: MemcachedReply[] = [];
    // memjs.Server#error() drops the connection and fails every request on it
    // (this one included, through its error handler), so the next one connects afresh.
    const backstop = setTimeout(
      () => server.error(new Error("timed out waiting on response")),
      timeoutMs + backstopMarginMs,
    );
    const settle = () => clearTimeout(backstop);
    const onResponse = (response: Response): void => {
      replies.push(toReply(response));
      if (!series || response.header.totalBodyLength === 0) {
        settle();
        resolve(replies);
      }
    };
    // memjs forgets a handler (and its request's timeout) after the first
    // response, unless the handler is marked quiet: then only after an empty one.
    server.onResponse(opaque, series ? Object.assign(onResponse, { quiet: true }) : onResponse);
    server.onError(opaque, (error) => {
      settle();
      reject(connectionError(error));
    });
    try {
      server.write(encode(request, opaque));
    } catch (error) {
      settle();
      reject(connectionError(error));
    }
  });
}

/**
 * Sends one request that has one response. Rejects with
 * ProviderUnavailableError when the connection fails or no answer comes
 * within about `timeoutMs` (memjs's own request timeout).
 */
export async function call(
  client: Client,
  server: Server,
  request: MemcachedRequest,
  timeoutMs: number,
): Promise<MemcachedReply> {
  const [reply] = await exchange(client, server, request, false, timeoutMs);
  return reply as MemcachedReply;
}

/** One group of `stats` of one server (e.g. "settings"), as name → value. */
export async function stats(
  client: Client,
  server: Server,
  group: string,
  timeoutMs: number,
): Promise<Map<string, string>> {
  const replies = await exchange(client, server, { opcode: opcode.stat, key: group }, true, timeoutMs);
  return new Map(
    replies
      .filter((reply) => reply.status === 0 && reply.key.length > 0)
      .map((reply) => [reply.key.toString("utf8"), reply.value.toString("utf8")]),
  );
}
