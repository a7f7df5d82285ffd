import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Code, ConnectError } from "@stategate/sdk-node";
import { protocols, startTestGateway, unique, until } from "./helpers.js";
import { ndjson, readAll, sse } from "./rest-helpers.js";

/** How a stream ended: its code and message, or "ended" when it ended with OK. */
async function outcome(stream: AsyncIterable<unknown>): Promise<string> {
  try {
    for await (const _ of stream) {
      // no message is expected before the shutdown
    }
    return "ended";
  } catch (err) {
    const e = ConnectError.from(err);
    return `${Code[e.code]}: ${e.rawMessage}`;
  }
}

const UNAVAILABLE = "Unavailable: the gateway is shutting down";

describe("at shutdown, open streams end with UNAVAILABLE so clients reconnect", () => {
  for (const { name, options } of protocols) {
    it(`event and peer streams over ${name}`, async () => {
      const tg = await startTestGateway({ STATEGATE_SHUTDOWN_GRACE_MS: "10000" });
      const client = tg.client(options);
      try {
        const domain = unique("down");
        const ends = [
          outcome(client.event.stream({ domain, type: "*" })),
          outcome(client.peer.stream({ domain, channel: "*", type: "*" })),
        ];
        await until(() => tg.gateway.openStreams() === 2);
        const started = Date.now();
        await tg.close();
        assert.deepEqual(await Promise.all(ends), [UNAVAILABLE, UNAVAILABLE]);
        assert.ok(Date.now() - started < 5_000, "at once, not at the end of the grace period");
      } finally {
        client.close();
        await tg.close();
      }
    });
  }

  for (const path of ["/api/events/stream?type=*", "/api/peers/stream?channel=*&type=*"]) {
    it(`REST ${path.split("?")[0]} as SSE: an error event with code unavailable, then the end`, async () => {
      const tg = await startTestGateway({ STATEGATE_SHUTDOWN_GRACE_MS: "10000" });
      try {
        const res = await fetch(`${tg.baseUrl}${path}&domain=${unique("down-sse")}`);
        assert.equal(res.status, 200);
        const read = readAll(sse(res.body!));
        await until(() => tg.gateway.openStreams() === 1);
        const started = Date.now();
        await tg.close();
        const got = await read;
        assert.equal(got.length, 1, JSON.stringify(got));
        assert.equal(got[0]?.event, "error");
        assert.deepEqual(JSON.parse(got[0].data!), {
          code: "unavailable",
          message: "the gateway is shutting down",
          details: [],
        });
        assert.ok(Date.now() - started < 5_000);
      } finally {
        await tg.close();
      }
    });
  }

  it("REST as NDJSON: a last error line with code unavailable", async () => {
    const tg = await startTestGateway({ STATEGATE_SHUTDOWN_GRACE_MS: "10000" });
    try {
      const res = await fetch(`${tg.baseUrl}/api/events/stream?domain=${unique("down-nd")}&type=*`, {
        headers: { accept: "application/x-ndjson" },
      });
      assert.equal(res.status, 200);
      const read = readAll(ndjson(res.body!));
      await until(() => tg.gateway.openStreams() === 1);
      await tg.close();
      const got = await read;
      assert.deepEqual(got, [{ error: { code: "unavailable", message: "the gateway is shutting down", details: [] } }]);
    } finally {
      await tg.close();
    }
  });
});
