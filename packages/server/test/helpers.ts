import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import type { ClientOptions, NodeClient } from "@stategate/sdk-node";
import { createClient } from "@stategate/sdk-node";
import type { Gateway, GatewayOptions } from "../src/index.js";
import { createLogger, loadConfig, startGateway } from "../src/index.js";

/** The repository root. */
export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

/** Every door a client can use, as SDK options. */
export const protocols: { name: string; options: Omit<ClientOptions, "baseUrl"> }[] = [
  { name: "grpc", options: { protocol: "grpc" } },
  { name: "grpc-web binary", options: { protocol: "grpc-web", binary: true, httpVersion: "1.1" } },
  { name: "grpc-web json", options: { protocol: "grpc-web", binary: false, httpVersion: "1.1" } },
  { name: "connect binary", options: { protocol: "connect", binary: true, httpVersion: "1.1" } },
  { name: "connect json", options: { protocol: "connect", binary: false, httpVersion: "1.1" } },
  { name: "connect json over http/2", options: { protocol: "connect", binary: false, httpVersion: "2" } },
];

/** A gateway in this process on a free port, with its own data directory. */
export interface TestGateway {
  gateway: Gateway;
  baseUrl: string;
  dataDir: string;
  client(options?: Omit<ClientOptions, "baseUrl">): NodeClient;
  close(): Promise<void>;
}

/** Starts a gateway on embedded providers in a fresh temporary data directory. */
export async function startTestGateway(
  env: Record<string, string> = {},
  options: GatewayOptions = {},
): Promise<TestGateway> {
  const dataDir = mkdtempSync(join(tmpdir(), "stategate-test-"));
  const config = loadConfig({
    STATEGATE_PORT: "0",
    STATEGATE_METRICS_PORT: "0",
    STATEGATE_DATA_DIR: dataDir,
    STATEGATE_LOG_LEVEL: process.env.STATEGATE_LOG_LEVEL ?? "warn",
    STATEGATE_SHUTDOWN_GRACE_MS: "2000",
    ...env,
  });
  const gateway = await startGateway(config, createLogger(config), options);
  const baseUrl = `http://127.0.0.1:${gateway.port}`;
  return {
    gateway,
    baseUrl,
    dataDir,
    client: (options = { protocol: "grpc" }) => createClient({ baseUrl, ...options }),
    async close() {
      await gateway.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A gateway running as its own process, the way users run it. */
export interface GatewayProcess {
  child: ChildProcess;
  port: number;
  baseUrl: string;
  /** Every stdout and stderr line so far. */
  output: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Runs the built `stategate` command and waits until it listens. */
export async function spawnGateway(env: Record<string, string>): Promise<GatewayProcess> {
  const child = spawn(process.execPath, [join(repoRoot, "packages/server/dist/bin/stategate.js")], {
    // Info level at least: the "listening" line is how the port is learnt.
    env: {
      ...process.env,
      STATEGATE_PORT: "0",
      STATEGATE_METRICS_PORT: "0",
      ...env,
      STATEGATE_LOG_LEVEL: env.STATEGATE_LOG_LEVEL === "debug" ? "debug" : "info",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const output: string[] = [];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  createInterface({ input: child.stderr as NodeJS.ReadableStream }).on("line", (line) => output.push(line));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL"); // never leave a half-started gateway behind
      reject(new Error(`gateway did not start:\n${output.join("\n")}`));
    }, 20_000);
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
      output.push(line);
      try {
        const entry = JSON.parse(line) as { port?: number; msg?: string };
        if (entry.msg?.startsWith("stategate listening") && entry.port) {
          clearTimeout(timer);
          resolve(entry.port);
        }
      } catch {
        // not a JSON line
      }
    });
    void exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited with ${code}:\n${output.join("\n")}`));
    });
  });
  return { child, port, baseUrl: `http://127.0.0.1:${port}`, output, exited };
}

/**
 * Starts `count` gateways at once (racing on shared backends, as a deployment
 * does). If any fails, the others are killed before the error is thrown, so
 * no process outlives the test.
 */
export async function spawnGateways(env: Record<string, string>, count: number): Promise<GatewayProcess[]> {
  const started = await Promise.allSettled(Array.from({ length: count }, () => spawnGateway(env)));
  const failed = started.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) {
    for (const r of started) if (r.status === "fulfilled") r.value.child.kill("SIGKILL");
    throw failed.reason;
  }
  return started.map((r) => (r as PromiseFulfilledResult<GatewayProcess>).value);
}

/** A port that was free on loopback a moment ago: for a server a test starts itself, or one nothing listens on. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** True when something accepts connections on loopback `port`. */
export function listening(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on("error", () => resolve(false));
  });
}

/** A stream for a pino logger that parses each JSON line it is given into `lines`, for tests that read the log. */
export function jsonLineSink(lines: Record<string, unknown>[]): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const text of chunk.toString("utf8").split("\n")) if (text !== "") lines.push(JSON.parse(text));
      callback();
    },
  });
}

/** A fresh name, so tests sharing a gateway never see each other's data. */
export function unique(prefix: string): string {
  return `${prefix}-${Math.random().toString(36).slice(2, 10)}`;
}

/** Takes items from an async iterable until `count` arrived or `ms` passed. */
export async function take<T>(iterable: AsyncIterable<T>, count: number, ms = 10_000): Promise<T[]> {
  const out: T[] = [];
  const timeout = new Promise<never>((_, reject) =>
    setTimeout(() => reject(new Error(`got ${out.length} of ${count} items within ${ms} ms`)), ms).unref(),
  );
  const read = (async () => {
    for await (const item of iterable) {
      out.push(item);
      if (out.length >= count) break;
    }
    return out;
  })();
  return Promise.race([read, timeout]);
}

/** Waits until `check` returns true, polling. */
export async function until(check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Connection settings of the shared test backends (see scripts/services.mjs). */
export const testBackends = {
  mysql: process.env.STATEGATE_TEST_MYSQL_ADDR ?? "127.0.0.1:3306",
  postgres: process.env.STATEGATE_TEST_POSTGRES_ADDR ?? "127.0.0.1:5432",
  memcached: process.env.STATEGATE_TEST_MEMCACHED_ADDR ?? "127.0.0.1:11211",
  redis: process.env.STATEGATE_TEST_REDIS_ADDR ?? "127.0.0.1:6379",
  amqp: process.env.STATEGATE_TEST_AMQP_ADDR ?? "127.0.0.1:5672",
  nats: process.env.STATEGATE_TEST_NATS_ADDR ?? "127.0.0.1:4222",
};

/**
 * The storage provider spec of the shared MariaDB with the tables of `tag`,
 * reached at `addr`: a TcpCut's `127.0.0.1:<port>` in front of it, say.
 */
export function mysqlStorage(tag: string, addr = testBackends.mysql): Record<string, unknown> {
  return { name: "mysql", addr, user: "root", password: "", database: "test", tablePrefix: `${tag}_` };
}

/** Which shared backends a gateway uses. */
export interface BackendChoice {
  storage: "mysql" | "postgres" | "sqlite";
  cache: "memcached" | "redis" | "memory";
  channel: "amqp" | "redis" | "nats" | "memory";
}

/**
 * Gateway environment for the chosen backends (MySQL + Memcached + AMQP by
 * default), namespaced by `tag` so concurrent test files never share tables,
 * keys, exchanges or subjects.
 */
export function sharedBackendEnv(
  tag: string,
  choice: BackendChoice = { storage: "mysql", cache: "memcached", channel: "amqp" },
): Record<string, string> {
  const storage = {
    mysql: mysqlStorage(tag),
    postgres: {
      name: "postgres",
      addr: testBackends.postgres,
      user: "postgres",
      password: "",
      database: "test",
      tablePrefix: `${tag}_`,
    },
    sqlite: { name: "sqlite" },
  }[choice.storage];
  const cache = {
    memcached: { name: "memcached", addr: testBackends.memcached, prefix: `${tag}:` },
    redis: { name: "redis", addr: testBackends.redis, prefix: `${tag}:` },
    memory: { name: "memory" },
  }[choice.cache];
  const channel = {
    amqp: { name: "amqp", addr: testBackends.amqp, user: "guest", password: "guest", prefix: tag },
    redis: { name: "redis", addr: testBackends.redis, prefix: tag },
    nats: { name: "nats", addr: testBackends.nats, prefix: tag },
    memory: { name: "memory" },
  }[choice.channel];
  return {
    STATEGATE_STORAGE_PROVIDER: JSON.stringify(storage),
    STATEGATE_CACHE_PROVIDER: JSON.stringify(cache),
    STATEGATE_CHANNEL_PROVIDER: JSON.stringify(channel),
  };
}

/** Drops the PostgreSQL tables a `sharedBackendEnv(tag, {storage: "postgres"})` gateway created. */
export async function dropPostgresTables(tag: string): Promise<void> {
  const { default: pg } = await import("pg");
  const [host, port] = testBackends.postgres.split(":");
  const client = new pg.Client({ host, port: Number(port), user: "postgres", database: "test" });
  await client.connect();
  try {
    const { rows } = await client.query<{ name: string }>(
      "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE $1",
      [`${tag}\\_%`],
    );
    for (const { name } of rows) await client.query(`DROP TABLE IF EXISTS "${name}" CASCADE`);
  } finally {
    await client.end();
  }
}

/** Drops the MySQL tables a `sharedBackendEnv(tag)` gateway created. */
export async function dropMysqlTables(tag: string): Promise<void> {
  const { createConnection } = await import("mysql2/promise");
  const [host, port] = testBackends.mysql.split(":");
  const conn = await createConnection({ host, port: Number(port), user: "root", password: "", database: "test" });
  try {
    const [rows] = await conn.query(
      "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'test' AND table_name LIKE ?",
      [`${tag}\\_%`],
    );
    for (const { name } of rows as { name: string }[]) await conn.query(`DROP TABLE IF EXISTS \`${name}\``);
  } finally {
    await conn.end();
  }
}
