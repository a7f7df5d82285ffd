// Scenarios 4 and 5: event streams.
//
// Fan-out: subscriber processes hold the streams; a writer process sends Sets
// on an open-loop timetable. Each Set carries `t`, the writer's wall clock
// just before it sent the Set (the direct path: just before its first SQL
// statement), so write-to-delivery latency includes the commit itself.
// Gateway path: Set through the gateway, streams are EventService.Stream over
// gRPC. Direct path: the same SQL through mysql2, then a NATS publish; the
// streams are NATS subscriptions. Both sides use the same NATS server.
//
// Idle streams: one process opens N streams and holds them while the
// orchestrator measures the server's RSS and CPU.
import { randomUUID } from "node:crypto";
import http2 from "node:http2";
import { setTimeout as sleep } from "node:timers/promises";
import { create, toBinary } from "@bufbuild/protobuf";
import { createBinaryDecoder, EventServiceStreamRequestSchema, EventServiceStreamResponseSchema } from "@stategate/api";
import { connect } from "nats";
import { createHistogram, encode, recordMs, summary } from "./hist.mjs";
import { openLoop } from "./loops.mjs";
import { DOMAIN, directMysql, gatewayClients, SET_METHOD, wallNow } from "./ops.mjs";

const STREAM_PATH = "/stategate.v1.EventService/Stream";

/** Decodes each message as the Node SDK does (the compiled decoder, protobuf-es's results). */
const decodeResponse = createBinaryDecoder(EventServiceStreamResponseSchema);

/**
 * Opens `streams` gRPC event streams of domain/type, spread over `connections`
 * HTTP/2 connections, calling onMessage(index, response) for each message.
 *
 * The streams are read with a bare gRPC reader on node:http2 (frames split by
 * hand, each message decoded with protobuf-es), not with connect-node's
 * client: that spends about as much CPU per message as the gateway does to
 * send it, so two subscriber processes holding 1,000 streams would measure
 * themselves rather than the gateway. The direct path's NATS subscribers are
 * equally bare.
 */
async function openGrpcStreams({ baseUrl, connections, streams, type, onMessage, onEnd }) {
  const sessions = Array.from({ length: connections }, () => {
    const session = http2.connect(baseUrl);
    session.on("error", () => {});
    return session;
  });
  const payload = toBinary(
    EventServiceStreamRequestSchema,
    create(EventServiceStreamRequestSchema, { domain: DOMAIN, type }),
  );
  const request = Buffer.alloc(5 + payload.length);
  request.writeUInt32BE(payload.length, 1);
  request.set(payload, 5);
  let closing = false;
  for (let s = 0; s < streams; s++) {
    const req = sessions[s % connections].request({
      ":method": "POST",
      ":path": STREAM_PATH,
      "content-type": "application/grpc",
      te: "trailers",
    });
    let buffered = Buffer.alloc(0);
    let status;
    let message = "";
    let ended = false;
    const end = (error) => {
      if (ended) return;
      ended = true;
      onEnd(s, error, closing);
    };
    req.on("data", (chunk) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      while (buffered.length >= 5) {
        const length = buffered.readUInt32BE(1);
        if (buffered.length < 5 + length) break;
        onMessage(s, decodeResponse(buffered.subarray(5, 5 + length)));
        buffered = buffered.subarray(5 + length);
      }
    });
    const statusOf = (headers) => {
      if (headers["grpc-status"] !== undefined) status = headers["grpc-status"];
      if (headers["grpc-message"] !== undefined) message = decodeURIComponent(String(headers["grpc-message"]));
    };
    req.on("response", statusOf);
    req.on("trailers", statusOf);
    req.on("end", () => end(new Error(`stream ended: grpc-status ${status ?? "none"} ${message}`)));
    req.on("error", (error) => end(error));
    req.on("close", () => end(new Error("stream closed")));
    req.end(request);
    // Let the requests go out in batches rather than as one burst of thousands.
    if (s % 200 === 199) await sleep(5);
  }
  return () => {
    closing = true;
    for (const session of sessions) session.destroy();
  };
}

/** Index of the first measured write (the writer's open loop starts there). */
const FIRST_WRITE = 1_000_000;

function deliveryTracker(streams, channel, writes) {
  const latency = createHistogram();
  const perStream = new Uint32Array(streams);
  // Which measured writes each stream received, to account for the missing ones.
  const got = Array.from({ length: streams }, () => new Uint8Array(writes));
  const ready = new Uint8Array(streams);
  let readyCount = 0;
  let delivered = 0;
  let firstAt;
  let lastAt;
  let ended = 0;
  let firstError;
  let readyResolve;
  const allReady = new Promise((resolve) => {
    readyResolve = resolve;
  });
  return {
    allReady,
    onValues(s, values) {
      if (values?.phase === "probe") {
        if (!ready[s]) {
          ready[s] = 1;
          if (++readyCount === streams) readyResolve();
        }
      } else if (values?.phase === "measure") {
        const w = values.i - FIRST_WRITE;
        if (w < 0 || w >= writes || got[s][w]) return;
        got[s][w] = 1;
        const now = wallNow();
        recordMs(latency, now - values.t);
        perStream[s]++;
        delivered++;
        firstAt ??= now;
        lastAt = now;
      }
    },
    onEnd(_s, error, aborted) {
      if (aborted) return;
      ended++;
      firstError ??= error ? String(error.message ?? error) : "stream ended";
    },
    get readyCount() {
      return readyCount;
    },
    /**
     * `stamps`: [i, t] of every measured write. A write a stream never
     * received is recorded at the time it has waited until now: a lower
     * bound, so undelivered events count against the percentiles instead of
     * vanishing from them.
     */
    result(stamps) {
      const now = wallNow();
      let missing = 0;
      for (const [i, t] of stamps) {
        const w = i - FIRST_WRITE;
        for (let s = 0; s < streams; s++) {
          if (!got[s][w]) {
            missing++;
            recordMs(latency, now - t);
          }
        }
      }
      let min = Number.POSITIVE_INFINITY;
      let max = 0;
      for (const n of perStream) {
        min = Math.min(min, n);
        max = Math.max(max, n);
      }
      return {
        streams,
        delivered,
        missing,
        minPerStream: min,
        maxPerStream: max,
        endedEarly: ended,
        firstError,
        spanMs: lastAt === undefined ? 0 : lastAt - firstAt,
        latency: encode(latency),
        summary: summary(latency),
      };
    },
    channel,
  };
}

/**
 * job: { mode: "gateway" | "direct", baseUrl, natsAddr, subject, type, streams, connections }.
 * Sends {type:"ready"} once every stream has seen a probe, then waits for {type:"stop"}.
 */
export async function fanoutSubscriber(job, channel) {
  const tracker = deliveryTracker(job.streams, channel, job.writes);
  const cpuBefore = process.cpuUsage();
  let close;
  if (job.mode === "gateway") {
    close = await openGrpcStreams({
      baseUrl: job.baseUrl,
      connections: job.connections,
      streams: job.streams,
      type: job.type,
      onMessage: (s, response) => tracker.onValues(s, response.event?.entity?.values),
      onEnd: tracker.onEnd,
    });
  } else {
    const conns = await Promise.all(
      Array.from({ length: job.connections }, () => connect({ servers: job.natsAddr, noEcho: true })),
    );
    for (let s = 0; s < job.streams; s++) {
      const index = s;
      conns[s % conns.length].subscribe(job.subject, {
        callback: (error, msg) => {
          if (error) tracker.onEnd(index, error, false);
          else tracker.onValues(index, msg.json().values);
        },
      });
    }
    await Promise.all(conns.map((nc) => nc.flush()));
    close = () => Promise.all(conns.map((nc) => nc.close()));
  }
  await channel.send({ type: "opened" });
  await tracker.allReady;
  await channel.send({ type: "ready" });
  const { stamps } = await channel.receive("stop");
  const cpu = process.cpuUsage(cpuBefore);
  const result = tracker.result(stamps);
  await close();
  return { ...result, subscriberCpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

/**
 * job: { mode, baseUrl, mysql, mysqlPrefix, natsAddr, subject, type, keys, rate, durationMs }.
 * Sends probe writes every 100 ms until {type:"go"}, then the measured writes.
 */
export async function fanoutWriter(job, channel) {
  const stamps = [];
  let write;
  let close;
  if (job.mode === "gateway") {
    const clients = gatewayClients(job.baseUrl);
    write = (i, phase) => {
      const t = wallNow();
      if (phase === "measure") stamps.push([i, t]);
      return clients.entity.set({ domain: DOMAIN, type: job.type, key: `f${i % job.keys}`, values: { t, phase, i } });
    };
    close = async () => clients.close();
  } else {
    const store = directMysql(job.mysql, job.mysqlPrefix);
    const nc = await connect({ servers: job.natsAddr });
    write = async (i, phase) => {
      const key = `f${i % job.keys}`;
      const values = { t: wallNow(), phase, i };
      if (phase === "measure") stamps.push([i, values.t]);
      const { position, version } = await store.set(job.type, key, values);
      nc.publish(
        job.subject,
        JSON.stringify({
          id: randomUUID(),
          domain: DOMAIN,
          type: job.type,
          key,
          values,
          version,
          position,
          operation: "set",
          method: SET_METHOD,
          claims: {},
          time: String(BigInt(Math.round(wallNow() * 1e6))),
        }),
      );
    };
    close = async () => {
      await nc.drain();
      await store.close();
    };
  }
  let go = false;
  const started = channel.receive("go").then(() => {
    go = true;
  });
  for (let i = 0; !go; i++) {
    await write(i, "probe");
    await Promise.race([sleep(100), started]);
  }
  const result = await openLoop((i) => write(i, "measure"), {
    rate: job.rate,
    durationMs: job.durationMs,
    firstIndex: FIRST_WRITE,
    graceMs: job.graceMs,
  });
  // Writes still unanswered are not waited for (the gateway may be saturated).
  void close().catch(() => {});
  return { ...result, stamps };
}

/** Opens `streams` streams and resolves once each has received a message; returns how to close them. */
async function holdStreams(job, streams) {
  const received = new Uint8Array(streams);
  const state = { count: 0, endedEarly: 0, firstError: undefined, closing: false };
  let allResolve;
  const all = new Promise((resolve) => {
    allResolve = resolve;
  });
  const openedAt = performance.now();
  const close = await openGrpcStreams({
    baseUrl: job.baseUrl,
    connections: Math.min(job.connections, streams),
    streams,
    type: job.type,
    onMessage: (s) => {
      if (!received[s]) {
        received[s] = 1;
        if (++state.count === streams) allResolve();
      }
    },
    onEnd: (_s, error, aborted) => {
      if (aborted) return;
      state.endedEarly++;
      state.firstError ??= error ? String(error.message ?? error) : "stream ended";
    },
  });
  const deadline = sleep(120_000).then(() => {
    throw new Error(`only ${state.count} of ${streams} streams opened`);
  });
  if (job.mode === "gateway") {
    // The gateway sends an event only to streams it has subscribed: a write
    // every 250 ms until each stream has one proves every stream is held.
    const clients = gatewayClients(job.baseUrl);
    for (let i = 0; state.count < streams; i++) {
      await clients.entity.set({ domain: DOMAIN, type: job.type, key: "probe", values: { i } });
      await Promise.race([sleep(250), all, deadline]);
    }
    clients.close();
  }
  await Promise.race([all, deadline]);
  return { state, openMs: performance.now() - openedAt, close };
}

/**
 * job: { mode: "gateway" | "baseline", baseUrl, streams, connections, type, warmStreams }.
 * Opens and closes `warmStreams` streams, sends {type:"warmed"}; on
 * {type:"open"} opens the streams, makes sure the server holds every one
 * (each must receive a message), sends {type:"ready"}; holds them until
 * {type:"stop"}.
 */
export async function idleStreams(job, channel) {
  if (job.warmStreams > 0) {
    const warm = await holdStreams(job, job.warmStreams);
    warm.close();
  }
  await channel.send({ type: "warmed" });
  await channel.receive("open");
  const { state, openMs, close } = await holdStreams(job, job.streams);
  await channel.send({ type: "ready", opened: state.count, openMs });
  await channel.receive("stop");
  const heldToEnd = state.count - state.endedEarly;
  close();
  return {
    streams: job.streams,
    opened: state.count,
    heldToEnd,
    endedEarly: state.endedEarly,
    firstError: state.firstError,
    openMs,
  };
}
