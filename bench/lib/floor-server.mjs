// The floor of scenarios 1, 2 and 6: a bare node:http2 gRPC server that
// answers the three methods the bench calls by doing the direct path's
// backend work (ops.mjs, on the direct path's tables, keys and file) and
// nothing else: no auth, no validation, no interceptors, no metrics. What a
// call costs here is the least any Node gRPC gateway in front of the same
// backend must pay, so the gateway's figures are read against it.
//
// Started by run.mjs (never generates load): argv[2] is a JSON config
// { port, memcached?: { addr, prefix }, mysql?: { options, prefix }, sqlite?: { path } };
// it sends {type: "listening", port} once it accepts calls, and closes its
// backends on SIGTERM.
import http2 from "node:http2";
import { create, fromJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import {
  CacheServiceGetRequestSchema,
  CacheServiceGetResponseSchema,
  createBinaryDecoder,
  createBinaryEncoder,
  EntityServiceGetRequestSchema,
  EntityServiceGetResponseSchema,
  EntityServiceSetRequestSchema,
  EntityServiceSetResponseSchema,
  EventOperation,
} from "@stategate/api";
import { DOMAIN, directMemcached, directMysql, directSqlite, SET_METHOD } from "./ops.mjs";

const config = JSON.parse(process.argv[2] ?? "{}");

const cache = config.memcached && directMemcached(config.memcached.addr, config.memcached.prefix);
const store = config.mysql
  ? directMysql(config.mysql.options, config.mysql.prefix)
  : config.sqlite
    ? directSqlite(config.sqlite.path)
    : undefined;

class Failure extends Error {}

const need = (backend, what) => {
  if (backend === undefined) throw new Failure(`this floor server has no backend for ${what}`);
  return backend;
};

/** path → request schema, response encoder, and the work (sync for SQLite, async otherwise). */
const routes = {
  "/stategate.v1.CacheService/Get": {
    decode: createBinaryDecoder(CacheServiceGetRequestSchema),
    encode: createBinaryEncoder(CacheServiceGetResponseSchema),
    async handle(req) {
      const value = await need(cache, "CacheService").get(req.key);
      if (value === undefined) throw new Failure(`cache value ${req.domain}/${req.key} expired`);
      return create(CacheServiceGetResponseSchema, {
        cache: { domain: req.domain, key: req.key, value: fromJson(ValueSchema, value) },
      });
    },
  },
  "/stategate.v1.EntityService/Get": {
    decode: createBinaryDecoder(EntityServiceGetRequestSchema),
    encode: createBinaryEncoder(EntityServiceGetResponseSchema),
    handle(req) {
      const answer = (row) => {
        if (row === undefined) throw new Failure(`entity ${req.domain}/${req.type}/${req.key} not found`);
        return create(EntityServiceGetResponseSchema, {
          entity: {
            domain: row.domain,
            type: row.type,
            key: row.key,
            values: row.values,
            version: BigInt(row.version),
          },
        });
      };
      const row = need(store, "EntityService").get(req.type, req.key);
      return row instanceof Promise ? row.then(answer) : answer(row);
    },
  },
  "/stategate.v1.EntityService/Set": {
    decode: createBinaryDecoder(EntityServiceSetRequestSchema),
    encode: createBinaryEncoder(EntityServiceSetResponseSchema),
    handle(req) {
      const values = req.values ?? {};
      const answer = ({ id, time, position, version }) =>
        create(EntityServiceSetResponseSchema, {
          event: {
            id,
            entity: { domain: DOMAIN, type: req.type, key: req.key, values, version: BigInt(version) },
            method: SET_METHOD,
            time,
            version: BigInt(version),
            position: BigInt(position),
            operation: EventOperation.SET,
            // The gateway answers an empty Struct when no one signed in; the same bytes here.
            claims: {},
          },
        });
      const stored = need(store, "EntityService").set(req.type, req.key, values);
      return stored instanceof Promise ? stored.then(answer) : answer(stored);
    },
  },
};

const HEADERS = { ":status": 200, "content-type": "application/grpc+proto" };
const RESPOND = { waitForTrailers: true, sendDate: false };
const OK = { "grpc-status": "0" };

function answer(stream, frame, trailers) {
  if (stream.destroyed || stream.headersSent) return;
  stream.respond(HEADERS, RESPOND);
  stream.once("wantTrailers", () => {
    if (!stream.destroyed) stream.sendTrailers(trailers);
  });
  stream.end(frame);
}

function fail(stream, code, error) {
  const message = String(error?.message ?? error);
  answer(stream, undefined, { "grpc-status": String(code), "grpc-message": encodeURIComponent(message) });
}

function frameOf(bytes) {
  const frame = Buffer.allocUnsafe(5 + bytes.length);
  frame[0] = 0;
  frame.writeUInt32BE(bytes.length, 1);
  frame.set(bytes, 5);
  return frame;
}

function serve(stream, route, body) {
  if (body === undefined || body.length < 5 || body[0] !== 0 || body.readUInt32BE(1) !== body.length - 5) {
    throw new Failure("expected one uncompressed gRPC message");
  }
  const req = route.decode(body.subarray(5));
  const reply = (message) => answer(stream, frameOf(route.encode(message)), OK);
  const result = route.handle(req);
  if (result instanceof Promise) result.then(reply).catch((error) => fail(stream, 2, error));
  else reply(result);
}

const server = http2.createServer();
server.on("stream", (stream, headers) => {
  // A client that resets its stream reports it here too; nothing is left to answer.
  stream.on("error", () => {});
  const route = routes[headers[":path"]];
  if (route === undefined) {
    stream.resume();
    fail(stream, 12, `no method ${headers[":path"]} on the floor server`);
    return;
  }
  let body;
  stream.on("data", (chunk) => {
    body = body === undefined ? chunk : Buffer.concat([body, chunk]);
  });
  stream.once("end", () => {
    try {
      serve(stream, route, body);
    } catch (error) {
      fail(stream, 2, error);
    }
  });
});
server.on("sessionError", () => {});

const sessions = new Set();
server.on("session", (session) => {
  sessions.add(session);
  session.once("close", () => sessions.delete(session));
});
process.once("SIGTERM", () => {
  server.close();
  for (const session of sessions) session.destroy();
  Promise.resolve()
    .then(() => cache?.close())
    .then(() => store?.close())
    .finally(() => process.exit(0));
});

server.listen(config.port ?? 0, "127.0.0.1", () => {
  process.send?.({ type: "listening", port: server.address().port });
});
