import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import type { NodeClient } from "@stategate/sdk-node";
import { Code, ConnectError, createClient } from "@stategate/sdk-node";
import pino from "pino";
import { loadConfig } from "../src/config.js";
import type { Gateway } from "../src/gateway.js";
import { startGateway } from "../src/gateway.js";
import { postGraphql } from "./graphql-helpers.js";
import { freePort, jsonLineSink, repoRoot, unique, until } from "./helpers.js";

/** Every JSON line the gateway logged, parsed. */
const lines: Record<string, unknown>[] = [];
const sink = jsonLineSink(lines);

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

/** Asserts that the call that carried `requestId` left one debug "call" line, with `expected` fields and its duration. */
function assertCallLine(requestId: string, expected: { door: string; method: string; code: string }): void {
  const mine = linesOf(requestId);
  assert.equal(mine.length, 1, JSON.stringify(mine));
  assert.deepEqual(
    { ...mine[0], ms: typeof mine[0]?.ms },
    { ...mine[0], level: 20, msg: "call", ...expected, ms: "number", requestId },
  );
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

describe("per-call lines name the door a call came through", () => {
  const baseUrl = () => `http://127.0.0.1:${gateway.port}`;

  it("REST: door, method, code, ms and the caller's request id", async () => {
    const requestId = `rest-${unique("r")}`;
    const res = await fetch(`${baseUrl()}/api/entity/ref/${unique("log")}/t/nobody`, {
      headers: { "x-request-id": requestId },
    });
    assert.equal(res.status, 404);
    assert.equal(res.headers.get("x-request-id"), requestId);
    assertCallLine(requestId, { door: "rest", method: "/stategate.v1.EntityService/Get", code: "NotFound" });
  });

  it("GraphQL: door, method, code, ms and the caller's request id", async () => {
    const requestId = `gql-${unique("r")}`;
    const { body } = await postGraphql(
      baseUrl(),
      `mutation { cacheSet(domain: "${unique("log")}", key: "k", value: 1) }`,
      {
        headers: { "x-request-id": requestId },
      },
    );
    assert.equal(body.errors, undefined, JSON.stringify(body));
    assertCallLine(requestId, { door: "graphql", method: "/stategate.v1.CacheService/Set", code: "ok" });
  });

  it("a client cannot name its door: gRPC and Connect calls sending x-stategate-door are logged as what they are", async () => {
    for (const [protocol, claimed, door] of [
      ["grpc", "rest", "grpc"],
      ["connect", "graphql", "connect"],
      ["grpc-web", "rest", "grpc-web"],
    ] as const) {
      const other = createClient({ baseUrl: baseUrl(), protocol, httpVersion: protocol === "grpc" ? "2" : "1.1" });
      const requestId = `door-${unique("r")}`;
      await other.entity.set(
        { domain: unique("log"), type: "t", key: "k", values: {} },
        { headers: { "x-request-id": requestId, "x-stategate-door": claimed } },
      );
      other.close();
      const mine = linesOf(requestId);
      assert.equal(mine.length, 1);
      assert.equal(mine[0]?.door, door, `${protocol} claiming ${claimed}`);
    }
  });
});

/**
 * Runs the real `stategate` with exactly `env` (plus PATH and ports, never the
 * test runner's own STATEGATE_* variables), makes one Connect call with
 * `requestId`, stops it, and returns every line it printed.
 */
async function runOnce(env: Record<string, string>, requestId: string): Promise<Record<string, unknown>[]> {
  const dir = mkdtempSync(join(tmpdir(), "stategate-level-"));
  const [port, metricsPort] = [await freePort(), await freePort()];
  const child = spawn(process.execPath, [join(repoRoot, "packages/server/dist/bin/stategate.js")], {
    env: {
      PATH: process.env.PATH,
      STATEGATE_PORT: String(port),
      STATEGATE_METRICS_PORT: String(metricsPort),
      STATEGATE_DATA_DIR: dir,
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const out: string[] = [];
  createInterface({ input: child.stdout! }).on("line", (l) => out.push(l));
  createInterface({ input: child.stderr! }).on("line", (l) => out.push(l));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  try {
    await until(async () => {
      if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}:\n${out.join("\n")}`);
      return fetch(`http://127.0.0.1:${metricsPort}/healthz`).then(
        (r) => r.status === 200,
        () => false,
      );
    }, 20_000);
    const res = await fetch(`http://127.0.0.1:${port}/stategate.v1.CacheService/Set`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-request-id": requestId },
      body: JSON.stringify({ domain: "levels", key: "k", value: 1 }),
    });
    assert.equal(res.status, 200, await res.text());
  } finally {
    child.kill("SIGTERM");
    assert.equal(await exited, 0, out.join("\n"));
    rmSync(dir, { recursive: true, force: true });
  }
  return out.map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe("the log level of the real binary", () => {
  it("STATEGATE_DEBUG=true, with no STATEGATE_LOG_LEVEL, logs each call at debug (20)", async () => {
    const requestId = `dbg-${unique("r")}`;
    const out = await runOnce({ STATEGATE_DEBUG: "true" }, requestId);
    const call = out.filter((l) => l.requestId === requestId);
    assert.equal(call.length, 1, JSON.stringify(out));
    assert.equal(call[0]?.level, 20);
    assert.equal(call[0]?.msg, "call");
    assert.equal(call[0]?.method, "/stategate.v1.CacheService/Set");
  });

  it("without either, the level is info: no call lines", async () => {
    const requestId = `info-${unique("r")}`;
    const out = await runOnce({}, requestId);
    assert.ok(
      out.some((l) => l.level === 30),
      "info lines are written",
    );
    assert.ok(!out.some((l) => (l.level as number) < 30 || l.requestId === requestId), JSON.stringify(out));
  });

  it("STATEGATE_LOG_LEVEL wins over STATEGATE_DEBUG: warn with DEBUG=true writes warnings only", async () => {
    const requestId = `warn-${unique("r")}`;
    const out = await runOnce({ STATEGATE_DEBUG: "true", STATEGATE_LOG_LEVEL: "warn" }, requestId);
    // The loopback warning shows the log is written at all.
    assert.ok(
      out.some((l) => l.level === 40),
      JSON.stringify(out),
    );
    assert.deepEqual(
      out.filter((l) => (l.level as number) < 40),
      [],
      "nothing below warn: no call line, no start-up info",
    );
    assert.ok(!out.some((l) => l.requestId === requestId));
  });

  it("a bad STATEGATE_LOG_LEVEL or STATEGATE_DEBUG stops start-up with exit code 2, naming the variable", () => {
    for (const [name, value] of [
      ["STATEGATE_LOG_LEVEL", "loud"],
      ["STATEGATE_DEBUG", "maybe"],
    ] as const) {
      const result = spawnSync(process.execPath, [join(repoRoot, "packages/server/dist/bin/stategate.js")], {
        env: { PATH: process.env.PATH, STATEGATE_PORT: "0", STATEGATE_METRICS_PORT: "off", [name]: value },
        encoding: "utf8",
        timeout: 20_000,
      });
      assert.equal(result.status, 2, `${name}=${value}: ${result.stdout}${result.stderr}`);
      assert.match(result.stderr, new RegExp(`^stategate: ${name}: .*"${value}"`, "m"));
      assert.equal(result.stdout, "", "nothing was started, so nothing was logged");
    }
  });
});
