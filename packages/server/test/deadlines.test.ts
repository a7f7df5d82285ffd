import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { TestGateway } from "./helpers.js";
import { startTestGateway, unique, until } from "./helpers.js";
import type { RawDoor } from "./raw-rpc.js";
import { openRawStream, rawDoors } from "./raw-rpc.js";
import { ok, rest, sse } from "./rest-helpers.js";

let tg: TestGateway;
before(async () => {
  tg = await startTestGateway();
});
after(async () => {
  await tg.close();
});
afterEach(async () => {
  await until(() => tg.gateway.openStreams() === 0);
});

/** Node's warnings while `work` runs: a deadline set past a timer's range shows as a TimeoutOverflowWarning. */
async function warningsDuring(work: () => Promise<void>): Promise<string[]> {
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
  process.on("warning", onWarning);
  try {
    await work();
    // Warnings are emitted on a later tick.
    await sleep(20);
  } finally {
    process.off("warning", onWarning);
  }
  return warnings;
}

/** Deadlines past what a Node timer can wait (2^31-1 ms, about 24.8 days), per header. */
const huge: Record<string, string>[] = [
  { "grpc-timeout": "2200000S" },
  { "grpc-timeout": "99999999H" },
  { "connect-timeout-ms": "2200000000" },
];
/** Which header each door reads its deadline from. */
const ownHeader = (door: RawDoor, h: Record<string, string>) =>
  door === "connect" ? "connect-timeout-ms" in h : "grpc-timeout" in h;

describe("deadlines past a timer's range are no deadline", () => {
  for (const door of rawDoors) {
    for (const headers of huge.filter((h) => ownHeader(door, h))) {
      it(`a ${door} event stream with ${JSON.stringify(headers)} stays open and delivers`, async () => {
        const domain = unique("dl-huge");
        const warnings = await warningsDuring(async () => {
          const stream = openRawStream(
            tg.baseUrl,
            door,
            "/stategate.v1.EventService/Stream",
            { domain, type: "*" },
            headers,
          );
          await until(() => tg.gateway.openStreams() === 1);
          const early = await Promise.race([stream.ended, sleep(1_000).then(() => undefined)]);
          assert.equal(early, undefined, `the stream ended at once: ${JSON.stringify(early)}`);
          await ok(rest(tg.baseUrl, "POST", `/api/entity/ref/${domain}/user/ada`, { values: { n: 1 } }));
          await until(() => stream.messages === 1);
          stream.cancel();
          await stream.ended;
        });
        assert.deepEqual(warnings, []);
      });
    }
  }

  for (const headers of huge) {
    it(`a unary call with ${JSON.stringify(headers)} answers over Connect and REST, with no timer overflow`, async () => {
      const domain = unique("dl-unary");
      const warnings = await warningsDuring(async () => {
        // Connect unary over HTTP/1.1, the header sent as given.
        const connect = await fetch(`${tg.baseUrl}/stategate.v1.EntityService/Set`, {
          method: "POST",
          headers: { "content-type": "application/json", "connect-protocol-version": "1", ...headers },
          body: JSON.stringify({ domain, type: "user", key: "ada", values: { n: 1 } }),
        });
        assert.equal(connect.status, 200, await connect.clone().text());
        // REST reads the same headers.
        const got = await ok(rest(tg.baseUrl, "GET", `/api/entity/ref/${domain}/user/ada`, undefined, headers));
        assert.deepEqual(got.entity.values, { n: 1 });
      });
      assert.deepEqual(warnings, []);
    });

    it(`a REST event stream with ${JSON.stringify(headers)} stays open and delivers`, async () => {
      const domain = unique("dl-rest");
      const abort = new AbortController();
      const warnings = await warningsDuring(async () => {
        const res = await fetch(`${tg.baseUrl}/api/events/stream?domain=${domain}&type=*`, {
          headers,
          signal: abort.signal,
        });
        assert.equal(res.status, 200, await (res.status === 200 ? "" : res.text()));
        const events = sse(res.body!);
        await sleep(1_000);
        assert.equal(tg.gateway.openStreams(), 1, "still open after a second");
        await ok(rest(tg.baseUrl, "POST", `/api/entity/ref/${domain}/user/ada`, { values: { n: 1 } }));
        const first = await events.next();
        assert.equal(first.done, false);
        assert.equal(JSON.parse(first.value.data!).event.entity.key, "ada");
        abort.abort();
      });
      assert.deepEqual(warnings, []);
    });
  }
});

describe("a stream whose deadline passes ends with DEADLINE_EXCEEDED", () => {
  for (const door of rawDoors) {
    for (const path of ["/stategate.v1.EventService/Stream", "/stategate.v1.PeerService/Stream"]) {
      it(`${door} ${path.split(".v1.")[1]}`, async () => {
        const headers: Record<string, string> =
          door === "connect" ? { "connect-timeout-ms": "1000" } : { "grpc-timeout": "1S" };
        const request = { domain: unique("dl-pass"), type: "*", ...(path.includes("Peer") ? { channel: "*" } : {}) };
        const stream = openRawStream(tg.baseUrl, door, path, request, headers);
        const end = await stream.ended;
        assert.equal(end.code, "deadline_exceeded", JSON.stringify(end));
        assert.ok(end.ms >= 900 && end.ms < 5_000, `ended after ${end.ms} ms`);
      });
    }
  }

  it("REST: an SSE event stream sends `event: error` with deadline_exceeded", async () => {
    const res = await fetch(`${tg.baseUrl}/api/events/stream?domain=${unique("dl-sse")}&type=*`, {
      headers: { "connect-timeout-ms": "1000" },
    });
    assert.equal(res.status, 200);
    const got = [];
    for await (const m of sse(res.body!)) got.push(m);
    const last = got.at(-1);
    assert.equal(last?.event, "error", JSON.stringify(got));
    assert.equal(JSON.parse(last.data!).code, "deadline_exceeded");
  });
});
