import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError } from "@stategate/sdk-node";
import { postGraphql } from "./graphql-helpers.js";
import type { TestGateway } from "./helpers.js";
import { startTestGateway, unique } from "./helpers.js";
import { rest } from "./rest-helpers.js";

/**
 * A JSON timestamp names one instant or is refused: a date or time that does
 * not exist (February 30th, 24:00) is INVALID_ARGUMENT naming the field on
 * every JSON door, never rolled over into the next month or day.
 */

let tg: TestGateway;
before(async () => {
  tg = await startTestGateway();
});
after(async () => {
  await tg.close();
});

const impossible = [
  "2030-02-30T00:00:00Z",
  "2030-02-29T00:00:00Z", // 2030 is not a leap year
  "2100-02-29T00:00:00Z", // nor is 2100
  "2030-04-31T00:00:00Z",
  "2030-06-31T12:00:00.5+02:00",
  "2030-01-01T24:00:00Z",
  "2030-01-01T23:60:00Z",
  "2030-01-01T23:59:60Z",
  "2030-13-01T00:00:00Z",
  "2030-00-10T00:00:00Z",
  "2030-01-00T00:00:00Z",
  "2030-01-01T00:00:00+24:00",
];
/** Real instants at the edges of the same rules, which must still be accepted. */
const possible = [
  "2032-02-29T00:00:00Z",
  "2400-02-29T23:59:59Z",
  "2030-12-31T23:59:59.999Z",
  "2030-04-30T00:00:00-23:59",
];

/** Asserts a Connect or REST JSON error body is invalid_argument naming `exp`. */
function assertInvalidExp(status: number, body: { code?: string; message?: string }, value: string): void {
  assert.equal(status, 400, `${value}: ${JSON.stringify(body)}`);
  assert.equal(body.code, "invalid_argument", value);
  assert.match(body.message ?? "", /\bexp\b/, value);
}

describe("impossible JSON timestamps", () => {
  for (const value of impossible) {
    it(`${value} is refused naming exp on Connect JSON (cache Set and Lock), REST and GraphQL, and nothing is written`, async () => {
      const domain = unique("ts");
      const connect = async (path: string, body: unknown) => {
        const res = await fetch(`${tg.baseUrl}/stategate.v1.${path}`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(body),
        });
        assertInvalidExp(res.status, (await res.json()) as { code?: string; message?: string }, value);
      };
      await connect("CacheService/Set", { domain, key: "k", value: 1, exp: value });
      await connect("MutexService/Lock", { domain, key: "m", exp: value });

      const put = await rest(tg.baseUrl, "PUT", `/api/cache/ref/${domain}/k`, { value: 1, exp: value });
      assertInvalidExp(put.status, put.json, value);
      const lock = await rest(tg.baseUrl, "POST", `/api/mutex/ref/${domain}/m/lock`, { exp: value });
      assertInvalidExp(lock.status, lock.json, value);

      const gql = await postGraphql(
        tg.baseUrl,
        `mutation($exp: Timestamp) { cacheSet(domain: "${domain}", key: "k", value: 1, exp: $exp) }`,
        { variables: { exp: value } },
      );
      const error = gql.body.errors?.[0];
      assert.equal(error?.extensions?.code, "INVALID_ARGUMENT", JSON.stringify(gql.body));
      assert.match(error?.message ?? "", /\bexp\b/, value);

      const client = tg.client({ protocol: "grpc" });
      await assert.rejects(client.cache.get({ domain, key: "k" }), (e) => ConnectError.from(e).code === Code.NotFound);
      const { token } = await client.mutex.lock({
        domain,
        key: "m",
        exp: { seconds: 4_102_444_800n, nanos: 0 } as never,
      });
      await client.mutex.unlock({ domain, key: "m", token });
    });
  }

  it("real instants at the edges of those rules are kept exactly", async () => {
    for (const value of possible) {
      const domain = unique("ts");
      const res = await fetch(`${tg.baseUrl}/stategate.v1.CacheService/Set`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ domain, key: "k", value: 1, exp: value }),
      });
      assert.equal(res.status, 200, `${value}: ${await res.text()}`);
      const got = await rest(tg.baseUrl, "GET", `/api/cache/ref/${domain}/k`);
      assert.equal(Date.parse(got.json.cache.exp), Date.parse(value), value);
    }
  });
});
