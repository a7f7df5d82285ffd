import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { put, uniqueDomain } from "../src/conformance/helpers.js";
import { runStorageConformance } from "../src/conformance/index.js";
import { ProviderClosedError } from "../src/errors.js";
import { createSqliteStorage } from "../src/storage/sqlite.js";
import type { EventRecord, Storage } from "../src/types.js";

const dir = mkdtempSync(join(tmpdir(), "stategate-sqlite-"));
after(() => rmSync(dir, { recursive: true, force: true }));

// One file for the whole suite, like one shared server: every factory call is
// a new connection to it, which is what the multi-client race tests need.
runStorageConformance(() => createSqliteStorage({ path: join(dir, "conformance.db") }));

async function withStorage<R>(path: string, body: (storage: Storage) => Promise<R>): Promise<R> {
  const storage = await createSqliteStorage({ path });
  try {
    return await body(storage);
  } finally {
    await storage.close();
  }
}

const here = dirname(fileURLToPath(import.meta.url));

// Runs test/fixtures/sqlite-writer.ts until it is busy writing, then SIGKILLs it.
async function killWriterAfter(path: string, domain: string, delayMs: number): Promise<void> {
  const child = spawn(process.execPath, ["--import", "tsx", join(here, "fixtures", "sqlite-writer.ts"), path, domain], {
    cwd: join(here, ".."),
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  await new Promise<void>((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`writer exited early with ${code}`)));
    child.stdout.once("data", () => resolve());
  });
  await new Promise((resolve) => setTimeout(resolve, delayMs));
  child.kill("SIGKILL");
  await exited;
}

async function assertLogMatchesState(path: string, domain: string): Promise<void> {
  await withStorage(path, async (storage) => {
    const log = await storage.searchEvents({ domain, type: "crash", filter: [], limit: 1_000_000, offset: 0 });
    assert.ok(log.length > 50, `the writer wrote (${log.length} events)`);
    for (let k = 0; k < 7; k++) {
      const ref = { domain, type: "crash", key: `k${k}` };
      const events = log.filter((event) => event.key === ref.key);
      const last = events.at(-1);
      const entity = await storage.getEntity(ref);
      if (last === undefined || last.operation === "delete") {
        assert.equal(entity, undefined, `${ref.key} has no state after its delete`);
      } else {
        assert.deepEqual(entity, { ...ref, values: last.values, version: last.version }, ref.key);
      }
      for (let i = 1; i < events.length; i++) {
        const previous = events[i - 1] as EventRecord;
        assert.equal(
          (events[i] as EventRecord).version,
          previous.version + 1,
          `${ref.key} versions have no gaps, across deletes too`,
        );
      }
    }
  });
}

describe("sqlite storage", () => {
  it("creates the file and its missing parent directories", async () => {
    const path = join(dir, "nested", "deeper", "state.db");
    await withStorage(path, (storage) => storage.ping());
    assert.ok(existsSync(path));
  });

  it("keeps data across reopening the same file", async () => {
    const path = join(dir, "reopen.db");
    const ref = { domain: uniqueDomain("reopen"), type: "user", key: "k" };
    const event = await withStorage(path, (storage) => put(storage, ref, 0, { kept: true }));
    await withStorage(path, async (storage) => {
      assert.deepEqual(await storage.getEntity(ref), { ...ref, values: { kept: true }, version: 1 });
      assert.deepEqual(await storage.getEvent({ ...ref, id: event.id }), event);
      const next = await put(storage, ref, 1, { kept: "again" });
      assert.ok(next.position > event.position);
    });
  });

  it("refuses every call after close, and tolerates a second close", async () => {
    const storage = await createSqliteStorage({ path: join(dir, "closed.db") });
    await storage.close();
    await storage.close();
    const ref = { domain: "d", type: "t", key: "k" };
    await assert.rejects(storage.ping(), ProviderClosedError);
    await assert.rejects(storage.searchEntities({ ...ref, filter: [], limit: 1, offset: 0 }), ProviderClosedError);
    await assert.rejects(storage.eventsAfter(0, 1), ProviderClosedError);
  });

  it("refuses path segments that JSON paths cannot carry safely", async () => {
    await withStorage(join(dir, "paths.db"), async (storage) => {
      const scope = { domain: "d", type: "t", limit: 10, offset: 0 };
      for (const segment of ['a"b', "a\\b", "a\u0000b", "a\nb"]) {
        await assert.rejects(storage.searchEntities({ ...scope, filter: [{ path: [segment], value: 1 }] }), RangeError);
      }
      await assert.rejects(storage.searchEntities({ ...scope, filter: [{ path: [], value: 1 }] }), RangeError);
      await assert.rejects(
        storage.searchEvents({ ...scope, filter: [], sort: { path: ['"'], desc: false } }),
        RangeError,
      );
      await assert.rejects(storage.searchEntities({ ...scope, filter: [], limit: -1 }), RangeError);
    });
  });

  // Several rounds, each killed at a different moment, because one kill lands
  // inside any given window only by chance; later rounds also write on top of a
  // file that was left by a crash.
  it("leaves every entity equal to the last event of its log after kill -9 mid-burst", async () => {
    const path = join(dir, "crash.db");
    const domain = uniqueDomain("crash");
    for (const delayMs of [40, 130, 220]) {
      await killWriterAfter(path, domain, delayMs);
      await assertLogMatchesState(path, domain);
    }
  });
});
