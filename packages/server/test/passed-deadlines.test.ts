import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { create, toBinary } from "@bufbuild/protobuf";
import { EntityServiceSetRequestSchema } from "@stategate/api";
import { Code, ConnectError } from "@stategate/sdk-node";
import { postGraphql } from "./graphql-helpers.js";
import type { TestGateway } from "./helpers.js";
import { startTestGateway, unique } from "./helpers.js";
import { envelope, rawUnary } from "./raw-rpc.js";
import { rest } from "./rest-helpers.js";

/**
 * A deadline under 1 ms (`connect-timeout-ms: 0`, `grpc-timeout: 0n` or `1n`)
 * has passed before the call starts: every door answers DEADLINE_EXCEEDED
 * without running the call, so a Set sent with it writes nothing.
 */

let tg: TestGateway;
before(async () => {
  tg = await startTestGateway();
});
after(async () => {
  await tg.close();
});

type Door = "grpc" | "grpc-web" | "connect" | "rest" | "graphql";

/** The deadline headers each door is tried with: its own, at zero and, for grpc-timeout, under a millisecond. */
const cases: [Door, Record<string, string>][] = [
  ["grpc", { "grpc-timeout": "0n" }],
  ["grpc", { "grpc-timeout": "1n" }],
  ["grpc", { "grpc-timeout": "999u" }],
  ["grpc-web", { "grpc-timeout": "0m" }],
  ["grpc-web", { "grpc-timeout": "1n" }],
  ["connect", { "connect-timeout-ms": "0" }],
  ["rest", { "connect-timeout-ms": "0" }],
  ["rest", { "grpc-timeout": "1n" }],
  ["graphql", { "connect-timeout-ms": "0" }],
  ["graphql", { "grpc-timeout": "1n" }],
];

/** An entity Set over `door` with `headers`, spoken by hand; how the gateway answered, in Connect's spelling of codes. */
async function setWith(door: Door, headers: Record<string, string>, ref: Record<string, string>): Promise<string> {
  const values = { n: 1 };
  const path = "/stategate.v1.EntityService/Set";
  const binary = () =>
    envelope(0, toBinary(EntityServiceSetRequestSchema, create(EntityServiceSetRequestSchema, { ...ref, values })));
  if (door === "grpc" || door === "grpc-web") return (await rawUnary(tg.baseUrl, door, path, binary(), headers)).code;
  if (door === "graphql") {
    const { body } = await postGraphql(
      tg.baseUrl,
      `mutation { entitySet(domain: "${ref.domain}", type: "${ref.type}", key: "${ref.key}", values: { n: 1 }) { event { version } } }`,
      { headers },
    );
    const code = body.errors?.[0]?.extensions?.code;
    if (typeof code === "string") return code.toLowerCase();
    return body.errors === undefined && body.data?.entitySet?.event?.version === "1" ? "ok" : JSON.stringify(body);
  }
  const { status, json } =
    door === "connect"
      ? await fetch(`${tg.baseUrl}${path}`, {
          method: "POST",
          headers: { "content-type": "application/json", "connect-protocol-version": "1", ...headers },
          body: JSON.stringify({ ...ref, values }),
        }).then(async (res) => ({ status: res.status, json: (await res.json()) as { code?: string } }))
      : await rest(tg.baseUrl, "POST", `/api/entity/ref/${ref.domain}/${ref.type}/${ref.key}`, { values }, headers);
  return status === 200 ? "ok" : `${json.code} (HTTP ${status})`;
}

describe("a deadline under 1 ms has passed before the call starts", () => {
  for (const [door, headers] of cases) {
    it(`${door} with ${JSON.stringify(headers)}: DEADLINE_EXCEEDED, and the Set wrote nothing`, async () => {
      const ref = { domain: unique("dl0"), type: "user", key: "ada" };
      const code = await setWith(door, headers, ref);
      const expected = door === "connect" || door === "rest" ? "deadline_exceeded (HTTP 504)" : "deadline_exceeded";
      assert.equal(code, expected);
      // A call the gateway kept running after answering would write a little later.
      await sleep(100);
      const client = tg.client({ protocol: "grpc" });
      await assert.rejects(client.entity.get(ref), (e) => ConnectError.from(e).code === Code.NotFound);
      assert.deepEqual((await client.event.search({ ...ref })).events, []);
    });
  }

  it("a deadline of 1 ms or more still runs the call", async () => {
    const ref = { domain: unique("dl0"), type: "user", key: "ada" };
    assert.equal(await setWith("grpc", { "grpc-timeout": "5S" }, ref), "ok");
    assert.equal(await setWith("rest", { "connect-timeout-ms": "5000" }, { ...ref, key: "bob" }), "ok");
    assert.equal(await setWith("graphql", { "grpc-timeout": "5000m" }, { ...ref, key: "cy" }), "ok");
  });
});
