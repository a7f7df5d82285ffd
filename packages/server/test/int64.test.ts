import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import type { TestGateway } from "./helpers.js";
import { startTestGateway, unique } from "./helpers.js";

let tg: TestGateway;
before(async () => {
  tg = await startTestGateway();
});
after(async () => {
  await tg.close();
});

it("an event's int64 fields read the same, digit for digit, through binary and JSON", async () => {
  const ref = { domain: unique("i64"), type: "doc", key: "k" };
  const binary = tg.client({ protocol: "grpc" });
  const { event } = await binary.entity.set({ ...ref, values: { x: 1 } });
  assert.ok(event);
  assert.ok(event.time > 1_700_000_000_000_000_000n, "time is in nanoseconds");
  assert.notEqual(event.time % 1_000_000n, 0n, "time has sub-millisecond digits");

  // The Connect protocol with JSON, as curl would send it.
  const res = await fetch(`${tg.baseUrl}/stategate.v1.EventService/Get`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ ...ref, id: event.id }),
  });
  assert.equal(res.status, 200);
  const text = await res.text();
  const time = /"time":"(\d+)"/.exec(text)?.[1];
  assert.equal(time, event.time.toString(), `JSON carries time as a string: ${text}`);
  assert.match(text, new RegExp(`"position":"${event.position}"`));
  assert.match(text, /"version":"1"/);

  const viaJson = await tg.client({ protocol: "connect", binary: false }).event.get({ ...ref, id: event.id });
  assert.equal(viaJson.event?.time, event.time);
  const viaGrpcWeb = await tg.client({ protocol: "grpc-web", binary: true }).event.get({ ...ref, id: event.id });
  assert.equal(viaGrpcWeb.event?.time, event.time);
});
