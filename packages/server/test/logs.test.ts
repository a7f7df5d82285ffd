import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { after, before, describe, it } from "node:test";
import type { NodeClient } from "@stategate/sdk-node";
import { Code, ConnectError, createClient } from "@stategate/sdk-node";
import pino from "pino";
import { loadConfig } from "../src/config.js";
import type { Gateway } from "../src/gateway.js";
import { startGateway } from "../src/gateway.js";
import { unique } from "./helpers.js";

/** Every JSON line the gateway logged, parsed. */
const lines: Record<string, unknown>[] = [];
const sink = new Writable({
  write(chunk: Buffer, _encoding, callback) {
    for (const text of chunk.toString("utf8").split("\n")) if (text !== "") lines.push(JSON.parse(text));
    callback();
  },
});

const dataDir = mkdtempSync(join(tmpdir(), "stategate-logs-"));
let gateway: Gateway;
let client: NodeClient;

before(async () => {
  const config = loadConfig({
    STATEGATE_PORT: "0",
    STATEGATE_METRICS_PORT: "off",
    STATEGATE_DATA_DIR: dataDir,
    STATEGATE_LOG_LEVEL: "debug",
  });
  gateway = await startGateway(config, pino({ level: "debug" }, sink));
  client = createClient({ baseUrl: `http://127.0.0.1:${gateway.port}`, protocol: "grpc" });
});

after(async () => {
  client.close();
  await gateway.close();
  rmSync(dataDir, { recursive: true, force: true });
});

/** The log lines of the call that carried `requestId`. */
function linesOf(requestId: string): Record<string, unknown>[] {
  return lines.filter((line) => line.requestId === requestId);
}

describe("logs at debug level", () => {
  it("write one JSON line per call, with its request id, method, door, code and duration", async () => {
    const requestId = `ok-${unique("r")}`;
    await client.entity.set(
      { domain: unique("log"), type: "t", key: "k", values: { a: 1 } },
      { headers: { "x-request-id": requestId } },
    );
    const mine = linesOf(requestId);
    assert.equal(mine.length, 1, `one line for the call: ${JSON.stringify(mine)}`);
    const [line] = mine;
    assert.equal(line?.level, 20, "debug level");
    assert.equal(line?.method, "/stategate.v1.EntityService/Set");
    assert.equal(line?.door, "grpc");
    assert.equal(line?.code, "ok");
    assert.equal(typeof line?.ms, "number");
  });

  it("log bad input at debug level too, and hand the client the request id of the line", async () => {
    const requestId = await client.entity.get({ domain: "", type: "t", key: "k" }).then(
      () => assert.fail("an empty domain is refused"),
      (err) => {
        const e = ConnectError.from(err);
        assert.equal(e.code, Code.InvalidArgument);
        return e.metadata.get("x-request-id");
      },
    );
    assert.ok(requestId, "the error carries x-request-id");
    const mine = linesOf(requestId);
    assert.equal(mine.length, 1);
    assert.equal(mine[0]?.level, 20, "a caller's mistake is not a gateway error");
    assert.equal(mine[0]?.code, "InvalidArgument");
  });

  it("make up a request id when the incoming one is not a sane token", async () => {
    let answered: string | null = null;
    await client.entity.set(
      { domain: unique("log"), type: "t", key: "k", values: { a: 1 } },
      {
        headers: { "x-request-id": "forged id!" },
        onHeader: (headers) => {
          answered = headers.get("x-request-id");
        },
      },
    );
    assert.ok(answered, "the response carries x-request-id");
    assert.match(answered, /^[0-9a-f-]{36}$/, "a fresh UUID, not the forged text");
    assert.equal(linesOf(answered).length, 1);
    assert.ok(!lines.some((line) => line.requestId === "forged id!"));
  });
});
