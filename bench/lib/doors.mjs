// Scenario 3: one Entity Get through every door of the gateway. gRPC (HTTP/2)
// goes through our own closed loop on the Node SDK; the HTTP/1.1 doors
// (Connect binary and JSON, gRPC-Web, REST, GraphQL) through autocannon, with
// each response's latency recorded in our own HdrHistogram at µs precision
// (autocannon's own histogram keeps whole milliseconds).
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { EntityServiceGetRequestSchema, EntityServiceGetResponseSchema } from "@stategate/api";
import autocannon from "autocannon";
import { createHistogram, encode, recordMs, summary } from "./hist.mjs";
import { closedLoop } from "./loops.mjs";
import { DOMAIN, entityValues, gatewayClients, READ_TYPE } from "./ops.mjs";

const GET_PATH = "/stategate.v1.EntityService/Get";

function grpcWebFrame(message) {
  const frame = new Uint8Array(5 + message.length);
  new DataView(frame.buffer).setUint32(1, message.length);
  frame.set(message, 5);
  return Buffer.from(frame);
}

/** gRPC-Web response body: data frames (flag 0) and one trailer frame (flag 0x80). */
function parseGrpcWeb(body) {
  let at = 0;
  let message;
  let trailers = "";
  while (at + 5 <= body.length) {
    const flag = body[at];
    const length = body.readUInt32BE(at + 1);
    const payload = body.subarray(at + 5, at + 5 + length);
    if (flag & 0x80) trailers += payload.toString("utf8");
    else message = payload;
    at += 5 + length;
  }
  const status = /grpc-status:\s*(\d+)/i.exec(trailers)?.[1];
  return { message, status: status === undefined ? undefined : Number(status) };
}

/** The HTTP/1.1 request of each door, and how to read the entity out of its response. */
export function doorRequests(key) {
  const request = { domain: DOMAIN, type: READ_TYPE, key };
  const binary = Buffer.from(toBinary(EntityServiceGetRequestSchema, create(EntityServiceGetRequestSchema, request)));
  const graphqlQuery = `{ entityGet(domain: "${DOMAIN}", type: "${READ_TYPE}", key: "${key}") { entity { domain type key values version } } }`;
  return {
    "connect-binary": {
      method: "POST",
      path: GET_PATH,
      headers: { "content-type": "application/proto", "connect-protocol-version": "1" },
      body: binary,
      read: (buf) => fromBinary(EntityServiceGetResponseSchema, buf).entity?.values,
    },
    "connect-json": {
      method: "POST",
      path: GET_PATH,
      headers: { "content-type": "application/json", "connect-protocol-version": "1" },
      body: JSON.stringify(request),
      read: (buf) => JSON.parse(buf.toString("utf8")).entity?.values,
    },
    "grpc-web": {
      method: "POST",
      path: GET_PATH,
      headers: { "content-type": "application/grpc-web+proto", "x-grpc-web": "1" },
      body: grpcWebFrame(binary),
      read: (buf) => {
        const { message, status } = parseGrpcWeb(buf);
        if (status !== 0) throw new Error(`grpc-web status ${status}`);
        return fromBinary(EntityServiceGetResponseSchema, message).entity?.values;
      },
    },
    rest: {
      method: "GET",
      path: `/api/entity/ref/${DOMAIN}/${READ_TYPE}/${key}`,
      headers: {},
      body: undefined,
      read: (buf) => JSON.parse(buf.toString("utf8")).entity?.values,
    },
    graphql: {
      method: "POST",
      path: "/api/graphql",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: graphqlQuery }),
      read: (buf) => {
        const json = JSON.parse(buf.toString("utf8"));
        if (json.errors) throw new Error(JSON.stringify(json.errors));
        return json.data?.entityGet?.entity?.values;
      },
    },
  };
}

/** One request through the door, checked: it must return the seeded entity. */
async function preflight(baseUrl, door, spec, expected) {
  const res = await fetch(baseUrl + spec.path, { method: spec.method, headers: spec.headers, body: spec.body });
  const body = Buffer.from(await res.arrayBuffer());
  if (res.status !== 200) throw new Error(`${door}: HTTP ${res.status}: ${body.toString("utf8").slice(0, 200)}`);
  const values = spec.read(body);
  if (values?.email !== expected.email) {
    throw new Error(`${door}: the response did not carry the entity (${body.toString("utf8").slice(0, 200)})`);
  }
}

function cannon(baseUrl, spec, { connections, durationMs }, histogram) {
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: baseUrl + spec.path,
        method: spec.method,
        headers: spec.headers,
        body: spec.body,
        connections,
        duration: durationMs / 1000,
      },
      (error, result) => (error ? reject(error) : resolve(result)),
    );
    if (histogram) {
      instance.on("response", (_client, statusCode, _bytes, responseTime) => {
        if (statusCode === 200) recordMs(histogram, responseTime);
      });
    }
  });
}

/** job: { baseUrl, key, keyIndex, concurrency, durationMs, warmupMs }. */
export async function runDoors({ baseUrl, keyIndex, concurrency, durationMs, warmupMs }) {
  const key = `r${keyIndex}`;
  const expected = entityValues(keyIndex);
  const results = {};

  const clients = gatewayClients(baseUrl);
  const op = () => clients.entity.get({ domain: DOMAIN, type: READ_TYPE, key });
  const first = await op();
  if (first.entity?.values?.email !== expected.email) throw new Error("grpc: the response did not carry the entity");
  const grpc = await closedLoop(op, { concurrency, durationMs, warmupMs });
  clients.close();
  results.grpc = { transport: "HTTP/2, Node SDK closed loop", ...grpc };

  for (const [door, spec] of Object.entries(doorRequests(key))) {
    await preflight(baseUrl, door, spec, expected);
    if (warmupMs > 0) await cannon(baseUrl, spec, { connections: concurrency, durationMs: warmupMs });
    const histogram = createHistogram();
    const result = await cannon(baseUrl, spec, { connections: concurrency, durationMs }, histogram);
    const ok = result["2xx"];
    const elapsedMs = (result.duration ?? durationMs / 1000) * 1000;
    results[door] = {
      transport: "HTTP/1.1, autocannon",
      concurrency,
      ok,
      errors: result.errors + result.timeouts + result.non2xx,
      durationMs: elapsedMs,
      opsPerSecond: (ok * 1000) / elapsedMs,
      latency: encode(histogram),
      summary: summary(histogram),
    };
  }
  return results;
}
