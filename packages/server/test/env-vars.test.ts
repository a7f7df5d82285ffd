import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { loadConfig } from "../src/config.js";
import { ENV_VARS } from "../src/env-vars.js";
import { repoRoot } from "./helpers.js";

const table = new Set(ENV_VARS.map((v) => v.name));

/** Every STATEGATE_* variable `loadConfig` reads, seen through an environment that records each read. */
function variablesRead(): Set<string> {
  const read = new Set<string>();
  const env = new Proxy({} as NodeJS.ProcessEnv, {
    get(_, name) {
      if (typeof name === "string" && name.startsWith("STATEGATE_")) read.add(name);
      return undefined;
    },
  });
  loadConfig(env);
  return read;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (name === "gen") return [];
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return name.endsWith(".ts") ? [path] : [];
  });
}

describe("the one table of environment variables", () => {
  it("is exactly what the config code reads", () => {
    const read = variablesRead();
    assert.deepEqual(
      [...read].filter((name) => !table.has(name)),
      [],
      "read by the config code but missing from the table",
    );
    assert.deepEqual(
      [...table].filter((name) => !read.has(name)),
      [],
      "in the table but never read",
    );
  });

  it("covers every variable named anywhere in the gateway's and providers' code", () => {
    const named = new Set<string>();
    for (const dir of ["packages/server/src", "packages/providers/src"]) {
      for (const file of sourceFiles(join(repoRoot, dir))) {
        for (const m of readFileSync(file, "utf8").matchAll(/STATEGATE_[A-Z0-9_]*[A-Z0-9]/g)) named.add(m[0]);
      }
    }
    // Prefixes written in comments ("the STATEGATE_CORS_* variables") are not variables.
    const prefixes = ["STATEGATE_CORS", "STATEGATE_JWT"];
    const unknown = [...named].filter((name) => !table.has(name) && !prefixes.includes(name));
    assert.deepEqual(unknown, []);
  });

  it("is documented in the README, each with the same default, and the README names no other", () => {
    const readme = readFileSync(join(repoRoot, "README.md"), "utf8");
    const rows = new Map<string, string>();
    for (const m of readme.matchAll(/^\| `(STATEGATE_[A-Z0-9_]+)` \| ([^|]*(?:\\\|[^|]*)*) \|/gm)) {
      rows.set(m[1]!, m[2]!.replaceAll("`", "").trim());
    }
    for (const v of ENV_VARS) {
      assert.ok(rows.has(v.name), `${v.name} has a row in a README table`);
      assert.equal(rows.get(v.name), v.default, `${v.name}: the README's default is the table's`);
    }
    const mentioned = new Set([...readme.matchAll(/STATEGATE_[A-Z0-9_]*[A-Z0-9]/g)].map((m) => m[0]));
    const others = [...mentioned].filter((name) => !table.has(name) && !name.startsWith("STATEGATE_TEST_"));
    assert.deepEqual(others, [], "the README documents only variables that exist");
  });

  it("is what `stategate --help` prints, every variable with its default and meaning", () => {
    const help = execFileSync(process.execPath, [join(repoRoot, "packages/server/dist/bin/stategate.js"), "--help"], {
      encoding: "utf8",
    });
    const lines = help.split("\n");
    for (const v of ENV_VARS) {
      const at = lines.indexOf(`  ${v.name}`);
      assert.ok(at >= 0, `${v.name} is listed`);
      assert.equal(lines[at + 1]?.trim(), v.meaning);
      assert.equal(lines[at + 2]?.trim(), `default: ${v.default}`);
    }
    const listed = lines.filter((l) => /^ {2}STATEGATE_/.test(l)).map((l) => l.trim());
    assert.deepEqual(
      listed,
      ENV_VARS.map((v) => v.name),
      "and nothing else, in the table's order",
    );
  });

  it("states defaults that are the config's real defaults", () => {
    const config = loadConfig({});
    const defaults: Record<string, unknown> = {
      STATEGATE_PORT: config.port,
      STATEGATE_HOST: config.host,
      STATEGATE_SHUTDOWN_GRACE_MS: config.shutdownGraceMs,
      STATEGATE_MAX_OPEN_STREAMS: config.maxOpenStreams,
      STATEGATE_MAX_STREAM_BUFFER: config.maxStreamBuffer,
      STATEGATE_METRICS_PORT: config.metricsPort,
      STATEGATE_JWT_CLOCK_SKEW_SECONDS: config.auth.clockSkewSeconds,
      STATEGATE_JWKS_TIMEOUT_MS: config.auth.jwksTimeoutMs,
      STATEGATE_JWKS_COOLDOWN_MS: config.auth.jwksCooldownMs,
      STATEGATE_JWKS_MAX_AGE_MS: config.auth.jwksMaxAgeMs,
      STATEGATE_JWT_ALGORITHMS: config.auth.algorithms.join(","),
      STATEGATE_CORS_ALLOW_METHODS: config.cors.allowMethods.join(","),
      STATEGATE_STORAGE_PROVIDER: JSON.stringify(config.storage),
      STATEGATE_CACHE_PROVIDER: JSON.stringify(config.cache),
      STATEGATE_CHANNEL_PROVIDER: JSON.stringify(config.channel),
    };
    for (const [name, value] of Object.entries(defaults)) {
      const stated = ENV_VARS.find((v) => v.name === name)?.default.split(" ")[0];
      assert.equal(stated, String(value), name);
    }
    assert.equal(
      config.maxRequestBytes,
      Number(ENV_VARS.find((v) => v.name === "STATEGATE_MAX_REQUEST_BYTES")?.default.split(" ")[0]),
    );
    // "4 × STATEGATE_MAX_REQUEST_BYTES (16 MiB)": both the rule and the number it gives by default.
    const response = ENV_VARS.find((v) => v.name === "STATEGATE_MAX_RESPONSE_BYTES")?.default ?? "";
    assert.match(response, /^4 × STATEGATE_MAX_REQUEST_BYTES \(16 MiB\)$/);
    assert.equal(config.maxResponseBytes, 4 * config.maxRequestBytes);
    assert.equal(config.maxResponseBytes, 16 * 1024 * 1024);
    assert.equal(loadConfig({ STATEGATE_MAX_REQUEST_BYTES: "2048" }).maxResponseBytes, 8192);
  });
});

describe("loadConfig with nothing set", () => {
  it("serves on port 8080", () => {
    assert.equal(loadConfig({}).port, 8080);
  });

  it("keeps embedded data in ./data under the working directory, wherever that is", () => {
    assert.equal(loadConfig({}).dataDir, join(process.cwd(), "data"));
    const elsewhere = realpathSync(mkdtempSync(join(tmpdir(), "stategate-cwd-")));
    const home = process.cwd();
    try {
      process.chdir(elsewhere);
      assert.equal(loadConfig({}).dataDir, join(elsewhere, "data"));
    } finally {
      process.chdir(home);
      rmSync(elsewhere, { recursive: true, force: true });
    }
    assert.equal(loadConfig({ STATEGATE_DATA_DIR: "/srv/state" }).dataDir, "/srv/state");
  });

  it("logs at info, and at debug with STATEGATE_DEBUG=true", () => {
    assert.equal(loadConfig({}).logLevel, "info");
    assert.equal(loadConfig({ STATEGATE_DEBUG: "true" }).logLevel, "debug");
    assert.equal(loadConfig({ STATEGATE_DEBUG: "false" }).logLevel, "info");
  });
});
