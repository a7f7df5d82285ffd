import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { GatewayProcess } from "./helpers.js";
import { repoRoot, spawnGateway, unique } from "./helpers.js";

const buf = join(repoRoot, "node_modules", ".bin", "buf");
// The gateway runs as its own process: the buf curl calls below block this one.
let tg: GatewayProcess;
let tempDir: string;
let schema: string;

before(async () => {
  tempDir = mkdtempSync(join(tmpdir(), "stategate-curl-"));
  tg = await spawnGateway({ STATEGATE_DATA_DIR: tempDir });
  // Build the schema image once; every call below reuses it.
  schema = join(tempDir, "image.binpb");
  execFileSync(buf, ["build", "-o", schema], { cwd: repoRoot });
});
after(async () => {
  tg.child.kill("SIGTERM");
  await tg.exited;
  rmSync(tempDir, { recursive: true, force: true });
});

type Json = Record<string, any>;

/** The buf curl arguments for one call. */
function curlArgs(protocol: string, method: string, data: Json): string[] {
  const flags = protocol === "grpc" ? ["--protocol", "grpc", "--http2-prior-knowledge"] : ["--protocol", protocol];
  return ["curl", "--schema", schema, ...flags, "--data", JSON.stringify(data), `${tg.baseUrl}/stategate.v1.${method}`];
}

/** Calls a unary method with buf curl; resolves with the response JSON, or rejects with buf's error JSON. */
function call(protocol: string, method: string, data: Json): Json {
  try {
    const out = execFileSync(buf, curlArgs(protocol, method, data), {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
    return JSON.parse(out) as Json;
  } catch (err) {
    const stderr = String((err as { stderr?: string }).stderr ?? "");
    throw Object.assign(new Error(stderr), { body: JSON.parse(stderr || "{}") as Json });
  }
}

/**
 * Opens a server stream with buf curl and returns every message it printed
 * until `count` arrived and then `settleMs` passed (so a late duplicate shows
 * up too). Each printed message is counted once as it completes; none is
 * dropped or merged, so a duplicate delivery stays visible to the caller.
 */
function stream(
  protocol: string,
  method: string,
  data: Json,
  count: number,
  whileOpen?: () => void,
  settleMs = 500,
): Promise<Json[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(buf, curlArgs(protocol, method, data));
    let pending = "";
    const messages: Json[] = [];
    const timer = setTimeout(() => {
      child.kill();
      reject(new Error(`stream gave ${messages.length} of ${count} messages: ${pending}`));
    }, 15_000);
    const interval = whileOpen ? setInterval(whileOpen, 100) : undefined;
    let settling = false;
    child.stdout.on("data", (chunk: Buffer) => {
      pending += chunk.toString();
      // buf curl prints each message as a pretty JSON object starting at column 0:
      // every part followed by another "{" line is complete.
      const parts = pending.split(/\n(?=\{)/);
      pending = parts.pop() ?? "";
      for (const part of parts) if (part.trim() !== "") messages.push(JSON.parse(part) as Json);
      // The last one is complete once it parses: no proper prefix of a JSON object does.
      try {
        messages.push(JSON.parse(pending) as Json);
        pending = "";
      } catch {
        // incomplete
      }
      if (messages.length >= count && !settling) {
        settling = true;
        clearTimeout(timer);
        clearInterval(interval);
        setTimeout(() => {
          child.kill();
          resolve(messages);
        }, settleMs);
      }
    });
  });
}

/** Asserts that no message of a stream arrived twice, telling them apart by event or message id. */
function assertNoDuplicates(messages: Json[]): void {
  const ids = messages.map((m) => m.event?.id ?? m.message?.id);
  assert.ok(
    ids.every((id) => typeof id === "string" && id !== ""),
    `every message has an id: ${JSON.stringify(messages)}`,
  );
  assert.equal(new Set(ids).size, ids.length, `no message arrived twice: ${ids.join(", ")}`);
}

for (const protocol of ["connect", "grpc", "grpcweb"]) {
  describe(`buf curl over ${protocol}: every method`, () => {
    const domain = unique("curl");
    const ref = { domain, type: "user", key: "ada" };

    it("EntityService and EventService", async () => {
      const set = call(protocol, "EntityService/Set", { ...ref, values: { name: "Ada" } });
      assert.equal(set.event.version, "1");
      assert.equal(set.event.operation, "EVENT_OPERATION_SET");
      assert.match(set.event.time, /^\d{19}$/);
      const edit = call(protocol, "EntityService/Edit", { ...ref, values: { role: "admin" }, expectedVersion: "1" });
      assert.deepEqual(edit.event.entity.values, { name: "Ada", role: "admin" });
      const get = call(protocol, "EntityService/Get", ref);
      assert.equal(get.entity.version, "2");
      const search = call(protocol, "EntityService/Search", { domain, type: "user", filter: '{"role":"admin"}' });
      assert.deepEqual(
        search.entities.map((e: Json) => e.key),
        ["ada"],
      );
      const revert = call(protocol, "EntityService/Revert", { ...ref, id: set.event.id });
      assert.deepEqual(revert.event.entity.values, { name: "Ada" });
      const del = call(protocol, "EntityService/Del", ref);
      assert.equal(del.event.operation, "EVENT_OPERATION_DELETE");
      assert.throws(
        () => call(protocol, "EntityService/Get", ref),
        (e: Error & { body: Json }) => e.body.code === "not_found",
      );

      const events = call(protocol, "EventService/Search", { domain, type: "user", key: "ada" });
      assert.deepEqual(
        events.events.map((e: Json) => e.version),
        ["1", "2", "3", "4"],
      );
      const one = call(protocol, "EventService/Get", { ...ref, id: set.event.id });
      assert.equal(one.event.time, set.event.time);
      const streamed = await stream(protocol, "EventService/Stream", { domain, type: "*", afterPosition: "0" }, 4);
      assertNoDuplicates(streamed);
      assert.deepEqual(
        streamed.map((m) => m.event.version),
        ["1", "2", "3", "4"],
        "the four stored events, each once, and nothing more",
      );
      assert.throws(
        () => call(protocol, "EntityService/Set", { ...ref, key: "", values: {} }),
        (e: Error & { body: Json }) => e.body.code === "invalid_argument" && /^key: /.test(e.body.message),
      );
    });

    it("PeerService", async () => {
      // Broadcast until the stream hears one (it may not be subscribed yet); each broadcast is numbered.
      let sent = 0;
      const got = await stream(protocol, "PeerService/Stream", { domain, channel: "*", type: "*" }, 1, () => {
        sent++;
        call(protocol, "PeerService/Broadcast", {
          domain,
          channel: "general",
          type: "note",
          body: { text: "hi", n: sent },
        });
      });
      assertNoDuplicates(got);
      const heard = got.map((m) => m.message.body.n as number);
      assert.equal(new Set(heard).size, heard.length, `no broadcast heard twice: ${heard.join(", ")}`);
      assert.ok(
        heard.every((n, i) => i === 0 || n === (heard[i - 1] ?? 0) + 1),
        `broadcasts heard in order with none missing once subscribed: ${heard.join(", ")}`,
      );
      assert.ok(
        heard.every((n) => n >= 1 && n <= sent),
        "only broadcasts that were sent",
      );
      assert.deepEqual(got[0]?.message.body, { text: "hi", n: heard[0] });
      assert.equal(got[0]?.message.channel, "general");
    });

    it("CacheService and MutexService", () => {
      const exp = new Date(Date.now() + 60_000).toISOString();
      call(protocol, "CacheService/Set", { domain, key: "greeting", value: { text: "hello" }, exp });
      const got = call(protocol, "CacheService/Get", { domain, key: "greeting" });
      assert.deepEqual(got.cache.value, { text: "hello" });
      call(protocol, "CacheService/Del", { domain, key: "greeting" });
      assert.throws(
        () => call(protocol, "CacheService/Get", { domain, key: "greeting" }),
        (e: Error & { body: Json }) => e.body.code === "not_found",
      );

      const lock = call(protocol, "MutexService/Lock", { domain, key: "job", exp });
      assert.ok(lock.token);
      assert.throws(
        () => call(protocol, "MutexService/Lock", { domain, key: "job", exp }),
        (e: Error & { body: Json }) => e.body.code === "already_exists",
      );
      assert.throws(
        () => call(protocol, "MutexService/Unlock", { domain, key: "job", token: "wrong" }),
        (e: Error & { body: Json }) => e.body.code === "failed_precondition",
      );
      call(protocol, "MutexService/Unlock", { domain, key: "job", token: lock.token });
    });
  });
}
