import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, describe, it } from "node:test";
import { redactValue } from "../src/ops/redact.js";
import { dropPostgresTables, repoRoot, testBackends } from "./helpers.js";

// The start-up log prints the effective configuration, providers included.
// Whatever the providers' secrets (a password in a URL, a password or token
// option), no log line may carry them: not when the gateway starts, not when
// start-up fails.

/** Runs the gateway from its sources until it listens (then stops it) or exits; every output line. */
async function startUp(env: Record<string, string>): Promise<{ lines: string[]; listened: boolean }> {
  const dataDir = mkdtempSync(join(tmpdir(), "stategate-secrets-"));
  const child = spawn(process.execPath, ["--import", "tsx", join(repoRoot, "packages/server/src/bin/stategate.ts")], {
    cwd: repoRoot,
    env: {
      ...process.env,
      STATEGATE_PORT: "0",
      STATEGATE_METRICS_PORT: "0",
      STATEGATE_DATA_DIR: dataDir,
      STATEGATE_LOG_LEVEL: "debug",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: string[] = [];
  let listened = false;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  createInterface({ input: child.stderr }).on("line", (line) => lines.push(line));
  createInterface({ input: child.stdout }).on("line", (line) => {
    lines.push(line);
    if (line.includes("stategate listening")) {
      listened = true;
      child.kill("SIGTERM");
    }
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  await exited;
  clearTimeout(timer);
  rmSync(dataDir, { recursive: true, force: true });
  return { lines, listened };
}

/** Asserts no line holds any of the secrets, plain or percent-encoded. */
function assertNoSecret(lines: string[], secrets: string[]): void {
  assert.ok(lines.length > 0, "the gateway logged something");
  for (const secret of secrets) {
    for (const form of new Set([secret, encodeURIComponent(secret)])) {
      const leak = lines.find((line) => line.includes(form));
      assert.equal(leak, undefined, `"${form}" appears in: ${leak}`);
    }
  }
}

const tag = `secrets_${Math.random().toString(36).slice(2, 8)}`;
after(async () => {
  await dropPostgresTables(tag);
});

describe("no provider secret reaches the log at start-up", () => {
  it("a gateway that starts: passwords in postgres:// and redis:// URLs, a NATS token", async () => {
    const { lines, listened } = await startUp({
      // PostgreSQL trusts local connections and Redis's default user takes any password,
      // so these secrets are sent but not needed: the gateway starts.
      STATEGATE_STORAGE_PROVIDER: JSON.stringify({
        name: "postgres",
        url: `postgres://postgres:PgSecret789@${testBackends.postgres}/test`,
        tablePrefix: `${tag}_`,
      }),
      STATEGATE_CACHE_PROVIDER: JSON.stringify({
        name: "redis",
        url: `redis://default:RedisSecret456@${testBackends.redis}`,
        prefix: `${tag}:`,
      }),
      STATEGATE_CHANNEL_PROVIDER: JSON.stringify({
        name: "nats",
        addr: testBackends.nats,
        token: "NatsToken123",
        prefix: tag,
      }),
    });
    assert.ok(listened, lines.join("\n"));
    const starting = lines.find((l) => l.includes('"msg":"starting"'));
    assert.ok(starting, "the configuration was logged");
    assert.match(starting, /\[redacted\]/);
    assertNoSecret(lines, ["PgSecret789", "RedisSecret456", "NatsToken123"]);
  });

  it("a gateway that cannot start: a wrong amqp:// password, a wrong mysql password option", async () => {
    const { lines, listened } = await startUp({
      STATEGATE_STORAGE_PROVIDER: JSON.stringify({
        name: "mysql",
        addr: testBackends.mysql,
        user: "root",
        password: "MySqlSecret147",
        database: "test",
        connectTimeoutMs: 3000,
      }),
      STATEGATE_CHANNEL_PROVIDER: JSON.stringify({
        name: "amqp",
        url: `amqp://guest:AmqpSecret321@${testBackends.amqp}`,
        connectTimeoutMs: 3000,
      }),
    });
    assert.equal(listened, false);
    assertNoSecret(lines, ["MySqlSecret147", "AmqpSecret321"]);
    const amqp = await startUp({
      STATEGATE_CHANNEL_PROVIDER: JSON.stringify({
        name: "amqp",
        url: `amqp://guest:AmqpSecret321@${testBackends.amqp}`,
        connectTimeoutMs: 3000,
      }),
    });
    assert.equal(amqp.listened, false, amqp.lines.join("\n"));
    assertNoSecret(amqp.lines, ["AmqpSecret321"]);
  });

  it("a URL that does not parse, or credentials given as an address, still have their password hidden", async () => {
    const { lines, listened } = await startUp({
      STATEGATE_STORAGE_PROVIDER: JSON.stringify({
        name: "postgres",
        url: "postgres://postgres:Pg Secret 963@db host:5432/test",
      }),
      STATEGATE_CACHE_PROVIDER: JSON.stringify({ name: "redis", url: "redis://:Redis^Secret258@[bad:6379" }),
      // Credentials where an address belongs are refused, but only after the configuration was logged.
      STATEGATE_CHANNEL_PROVIDER: JSON.stringify({ name: "nats", addr: "u:NatsAddrSecret@127.0.0.1:4222" }),
    });
    assert.equal(listened, false);
    assertNoSecret(lines, ["Pg Secret 963", "Secret 963", "Redis^Secret258", "NatsAddrSecret"]);
  });
});

describe("redactValue", () => {
  it("hides URL passwords, secret-named options, and what follows :// up to @ in a URL that does not parse", () => {
    assert.deepEqual(
      redactValue({
        url: "postgres://u:p%40ss@host:5432/db",
        broken: "amqp://guest:se cret@ho st:5672",
        servers: "nats://a:b@h1:4222",
        password: "x",
        token: "y",
        nested: { apiKey: "z", tls: { key: "/path/key.pem" } },
        addr: "root:Addr:Secret@db:3306",
        plain: "hello",
        host: "db:3306",
      }),
      {
        url: "postgres://u:%5Bredacted%5D@host:5432/db",
        broken: "amqp://[redacted]@ho st:5672",
        servers: "nats://a:%5Bredacted%5D@h1:4222",
        password: "[redacted]",
        token: "[redacted]",
        nested: { apiKey: "[redacted]", tls: { key: "[redacted]" } },
        addr: "root:[redacted]@db:3306",
        plain: "hello",
        host: "db:3306",
      },
    );
  });
});
