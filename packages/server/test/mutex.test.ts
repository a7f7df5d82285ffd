import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError, expiresIn } from "@stategate/sdk-node";
import type { TestGateway } from "./helpers.js";
import { startTestGateway, unique } from "./helpers.js";

let tg: TestGateway;
before(async () => {
  tg = await startTestGateway();
});
after(async () => {
  await tg.close();
});

const codeOf = (e: unknown) => Code[ConnectError.from(e).code];

it("an expired holder cannot release a lock someone else took", async () => {
  const [a, b, c] = [
    tg.client({ protocol: "grpc" }),
    tg.client({ protocol: "connect" }),
    tg.client({ protocol: "grpc-web" }),
  ];
  const ref = { domain: unique("lock"), key: "job" };
  const { token: tokenA } = await a.mutex.lock({ ...ref, exp: expiresIn(1_000) });
  await assert.rejects(b.mutex.lock({ ...ref, exp: expiresIn(5_000) }), (e) => codeOf(e) === "AlreadyExists");
  await sleep(1_100);
  const { token: tokenB } = await b.mutex.lock({ ...ref, exp: expiresIn(5_000) });
  assert.notEqual(tokenB, tokenA);
  await assert.rejects(a.mutex.unlock({ ...ref, token: tokenA }), (e) => codeOf(e) === "FailedPrecondition");
  await assert.rejects(
    c.mutex.lock({ ...ref, exp: expiresIn(5_000) }),
    (e) => codeOf(e) === "AlreadyExists",
    "B still holds it",
  );
  await b.mutex.unlock({ ...ref, token: tokenB });
  const { token: tokenC } = await c.mutex.lock({ ...ref, exp: expiresIn(5_000) });
  await c.mutex.unlock({ ...ref, token: tokenC });
});

it("withLock releases the lock when the function throws", async () => {
  const client = tg.client();
  const ref = { domain: unique("wl"), key: "k" };
  await assert.rejects(
    client.withLock(ref.domain, ref.key, 5_000, () => {
      throw new Error("boom");
    }),
    /boom/,
  );
  const { token } = await client.mutex.lock({ ...ref, exp: expiresIn(1_000) });
  await client.mutex.unlock({ ...ref, token });
});

it("a cached value expires at its absolute expiry", async () => {
  const client = tg.client();
  const ref = { domain: unique("exp"), key: "k" };
  await client.cache.set({ ...ref, value: "soon gone", exp: expiresIn(400) });
  assert.equal((await client.cache.get(ref)).value, "soon gone");
  await sleep(600);
  await assert.rejects(client.cache.get(ref), (e) => codeOf(e) === "NotFound");
});
