import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { createStorage } from "@stategate/providers";
import { loadConfig } from "../src/config.js";
import { redactConfig } from "../src/ops/redact.js";
import { freePort, repoRoot } from "./helpers.js";

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** Runs the built `stategate` with `args` and only the given STATEGATE_* variables. */
function stategate(args: string[], env: Record<string, string> = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), "stategate-cli-"));
  dirs.push(dataDir);
  return spawnSync(process.execPath, [join(repoRoot, "packages/server/dist/bin/stategate.js"), ...args], {
    env: { PATH: process.env.PATH, STATEGATE_DATA_DIR: dataDir, ...env },
    encoding: "utf8",
    timeout: 60_000,
  });
}

describe("stategate --version and --help", () => {
  it("prints the package's version", () => {
    const { version } = JSON.parse(readFileSync(join(repoRoot, "packages/server/package.json"), "utf8")) as {
      version: string;
    };
    for (const flag of ["--version", "-v"]) {
      const result = stategate([flag]);
      assert.equal(result.status, 0);
      assert.equal(result.stdout, `stategate ${version}\n`);
    }
  });

  it("prints the commands, and refuses what it does not know with one line", () => {
    const help = stategate(["--help"]);
    assert.equal(help.status, 0);
    assert.match(help.stdout, /stategate check-config/);
    const bad = stategate(["serve-please"]);
    assert.equal(bad.status, 2);
    assert.equal(bad.stderr, 'stategate: unknown command "serve-please"; see stategate --help\n');
  });
});

describe("stategate check-config", () => {
  it("checks the environment and every provider, then exits 0 without serving", () => {
    const started = Date.now();
    const result = stategate(["check-config"], { STATEGATE_PORT: "1" });
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(
      result.stdout
        .trim()
        .split("\n")
        .map((l) => l.replace(/\(\d+ ms\)/, "(N ms)")),
      [
        "configuration: ok (port 1 on 127.0.0.1)",
        "storage: sqlite ok (N ms)",
        "cache: memory ok (N ms)",
        "channel: memory ok (N ms)",
      ],
    );
    assert.ok(Date.now() - started < 20_000, "and does not stay to serve");
  });

  it("exits 1 with one clear line naming the variable when a provider cannot be reached", async () => {
    const port = await freePort(); // nothing listens on it
    const result = stategate(["check-config"], {
      STATEGATE_STORAGE_PROVIDER: JSON.stringify({
        name: "mysql",
        addr: `127.0.0.1:${port}`,
        user: "root",
        password: "hunter2",
        database: "test",
        connectTimeoutMs: 2000,
      }),
    });
    assert.equal(result.status, 1);
    const lines = result.stderr.trim().split("\n");
    assert.equal(lines.length, 1, result.stderr);
    assert.match(lines[0]!, /^stategate: STATEGATE_STORAGE_PROVIDER: cannot reach storage provider mysql: /);
    assert.ok(!result.stderr.includes("hunter2"));
    assert.match(result.stdout, /cache: memory ok/, "the other providers are still checked");
  });

  it("exits 2 naming the variable when a value is bad", () => {
    for (const [env, expected] of [
      [{ STATEGATE_MAX_OPEN_STREAMS: "lots" }, /^stategate: STATEGATE_MAX_OPEN_STREAMS: expected a whole number/],
      [
        { STATEGATE_CACHE_PROVIDER: '{"name":"memcached","colour":"red"}' },
        /^stategate: STATEGATE_CACHE_PROVIDER: .*colour/,
      ],
      [
        {
          STATEGATE_REQUEST_POLICY: Buffer.from("package stategate.authz\n\nallow if http.send({})\n").toString(
            "base64",
          ),
        },
        /^stategate: STATEGATE_REQUEST_POLICY: .*line 3, column \d+.*http\.send/,
      ],
    ] as const) {
      const result = stategate(["check-config"], env);
      assert.equal(result.status, 2, result.stderr);
      assert.match(result.stderr.trim(), expected);
    }
  });
});

describe("stategate check-config and the embedded store", () => {
  /** A fresh directory, removed after the tests. */
  const tempDir = () => {
    const dir = mkdtempSync(join(tmpdir(), "stategate-check-"));
    dirs.push(dir);
    return dir;
  };

  it("names STATEGATE_STORAGE_PROVIDER for a bad sqlite option, in check-config and at start-up", () => {
    const env = { STATEGATE_STORAGE_PROVIDER: '{"name":"sqlite","bogus":1}', STATEGATE_PORT: "0" };
    for (const args of [["check-config"], []]) {
      const result = stategate(args, env);
      assert.equal(result.status, 2, result.stderr);
      assert.match(result.stderr.trim(), /^stategate: STATEGATE_STORAGE_PROVIDER: .*unknown option "bogus"/, args[0]);
    }
  });

  it("creates no directory and no database: a missing directory is an error naming the variable", () => {
    const root = tempDir();
    const path = join(root, "nonexistent", "dir", "x.db");
    const result = stategate(["check-config"], {
      STATEGATE_STORAGE_PROVIDER: JSON.stringify({ name: "sqlite", path }),
    });
    assert.equal(result.status, 1, result.stderr);
    assert.match(
      result.stderr.trim(),
      /^stategate: STATEGATE_STORAGE_PROVIDER: cannot reach storage provider sqlite: directory .*nonexistent\/dir does not exist/,
    );
    assert.deepEqual(readdirSync(root), [], "nothing was created");

    // The default file, in STATEGATE_DATA_DIR: that variable is named.
    const dataDir = join(root, "data");
    const missing = stategate(["check-config"], { STATEGATE_DATA_DIR: dataDir });
    assert.equal(missing.status, 1, missing.stderr);
    assert.match(
      missing.stderr.trim(),
      /^stategate: STATEGATE_DATA_DIR: cannot reach storage provider sqlite: directory /,
    );
    assert.equal(existsSync(dataDir), false);
  });

  it("passes an existing writable directory without creating the database in it", () => {
    const dataDir = tempDir();
    const result = stategate(["check-config"], { STATEGATE_DATA_DIR: dataDir });
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /storage: sqlite ok/);
    assert.deepEqual(readdirSync(dataDir), []);
  });

  it("opens an existing database and leaves it and its directory as they were; refuses a file that is not one", async () => {
    const dataDir = tempDir();
    const storage = await createStorage({ name: "sqlite" }, { dataDir });
    await storage.close();
    const before = readFileSync(join(dataDir, "stategate.db"));
    const result = stategate(["check-config"], { STATEGATE_DATA_DIR: dataDir });
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(readdirSync(dataDir), ["stategate.db"], "no -wal or -shm file left behind");
    assert.ok(readFileSync(join(dataDir, "stategate.db")).equals(before), "the database is unchanged");

    const junk = join(tempDir(), "junk.db");
    writeFileSync(junk, "not a database ".repeat(100));
    const refused = stategate(["check-config"], {
      STATEGATE_STORAGE_PROVIDER: JSON.stringify({ name: "sqlite", path: junk }),
    });
    assert.equal(refused.status, 1, refused.stderr);
    assert.match(refused.stderr.trim(), /^stategate: STATEGATE_STORAGE_PROVIDER: .*junk\.db: file is not a database/);
  });
});

describe("the start-up log", () => {
  const secrets = ["pw-in-url", "pw-option", "redis-pw", "nats-token", "jwks-pw", "policy-secret"];
  const env = {
    STATEGATE_STORAGE_PROVIDER: JSON.stringify({ name: "mysql", url: "mysql://app:pw-in-url@127.0.0.1:1/db" }),
    STATEGATE_CACHE_PROVIDER: JSON.stringify({
      name: "redis",
      addr: "127.0.0.1:1",
      password: "redis-pw",
      connectTimeoutMs: 200,
    }),
    STATEGATE_CHANNEL_PROVIDER: JSON.stringify({ name: "nats", addr: "127.0.0.1:1", token: "nats-token" }),
    STATEGATE_JWKS_URI: "https://ops:jwks-pw@auth.example.com/jwks.json",
    STATEGATE_REQUEST_POLICY: Buffer.from("package stategate.authz\ndefault allow := false # policy-secret\n").toString(
      "base64",
    ),
  };

  it("logs the effective configuration with every secret redacted", () => {
    const logged = JSON.stringify(
      redactConfig(
        loadConfig({ ...env, STATEGATE_STORAGE_PROVIDER: JSON.stringify({ name: "mysql", password: "pw-option" }) }),
      ),
    );
    for (const secret of secrets) assert.ok(!logged.includes(secret), `${secret} is not in ${logged}`);
    assert.match(logged, /"password":"\[redacted\]"/);
    const result = stategate([], {
      ...env,
      STATEGATE_PORT: "0",
      STATEGATE_METRICS_PORT: "off",
      STATEGATE_LOG_LEVEL: "info",
    });
    assert.notEqual(result.status, 0, "the providers cannot be reached");
    const starting = result.stdout.split("\n").find((l) => l.includes('"msg":"starting"'));
    assert.ok(starting, result.stdout);
    for (const secret of secrets)
      assert.ok(!result.stdout.includes(secret) && !result.stderr.includes(secret), `${secret} is not logged`);
    const { config } = JSON.parse(starting) as { config: Record<string, any> };
    assert.equal(
      config.storage.url,
      "mysql://app:%5Bredacted%5D@127.0.0.1:1/db",
      "the rest of the URL stays, to say where it points",
    );
    assert.equal(config.cache.addr, "127.0.0.1:1");
    assert.equal(config.policies.request.variable, "STATEGATE_REQUEST_POLICY");
    assert.equal(config.maxOpenStreams, 10_000, "effective values, defaults included");
  });
});
