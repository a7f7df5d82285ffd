#!/usr/bin/env node
// Makes sure the backends the tests talk to are reachable before any test runs.
// MariaDB, PostgreSQL, Redis, RabbitMQ and NATS are expected to be running
// already (CI machines start them); Memcached is installed with apt and started
// here when missing, and Chromium, for the browser tests, is installed with apt
// when missing. Anything still unreachable stops the run with a message naming
// it: a test that needs a service fails, it never skips.
//
// Elsewhere, point the tests at your own servers with the STATEGATE_TEST_*
// variables (see README, "Running the tests").
import { execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { reachable, waitForPort } from "./reachable.mjs";

/** host:port of each service the tests need, overridable per machine. */
export const services = {
  mysql: process.env.STATEGATE_TEST_MYSQL_ADDR ?? "127.0.0.1:3306",
  rabbitmq: process.env.STATEGATE_TEST_AMQP_ADDR ?? "127.0.0.1:5672",
  memcached: process.env.STATEGATE_TEST_MEMCACHED_ADDR ?? "127.0.0.1:11211",
  postgres: process.env.STATEGATE_TEST_POSTGRES_ADDR ?? "127.0.0.1:5432",
  redis: process.env.STATEGATE_TEST_REDIS_ADDR ?? "127.0.0.1:6379",
  nats: process.env.STATEGATE_TEST_NATS_ADDR ?? "127.0.0.1:4222",
};

/** host and port of "host:port". */
function split(addr) {
  const at = addr.lastIndexOf(":");
  return [addr.slice(0, at), Number(addr.slice(at + 1))];
}

function sh(cmd, args) {
  execFileSync(cmd, args, { stdio: "inherit", env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
}

async function ensureMemcached() {
  const addr = services.memcached;
  if (await reachable(...split(addr))) return;
  if (addr !== "127.0.0.1:11211")
    throw new Error(`memcached is not reachable at ${addr} (STATEGATE_TEST_MEMCACHED_ADDR)`);
  if (!existsSync("/usr/bin/memcached")) {
    console.error("stategate: installing memcached with apt …");
    sh("apt-get", ["update", "-qq"]);
    sh("apt-get", ["install", "-y", "-qq", "memcached"]);
  }
  console.error("stategate: starting memcached on 127.0.0.1:11211 …");
  // -u root: CI runs as root and memcached refuses root without it.
  const child = spawn("/usr/bin/memcached", ["-l", "127.0.0.1", "-p", "11211", "-U", "0", "-m", "256", "-u", "root"], {
    detached: true,
    stdio: "ignore",
  });
  child.unref();
  if (!(await waitForPort(...split(addr), 10_000))) throw new Error(`memcached did not start on ${addr}`);
}

/**
 * The browser tests drive Debian's Chromium through playwright-core (which
 * cannot download a browser here): install it with apt when it is missing.
 */
function ensureChromium() {
  if (existsSync("/usr/bin/chromium")) return;
  console.error("stategate: installing chromium with apt …");
  sh("apt-get", ["update", "-qq"]);
  sh("apt-get", ["install", "-y", "-qq", "chromium"]);
}

/** Ensures every service is up; throws naming the first one that is not. */
export async function ensureServices() {
  ensureChromium();
  await ensureMemcached();
  for (const [name, addr] of Object.entries(services)) {
    if (!(await waitForPort(...split(addr), 5_000))) {
      throw new Error(`${name} is not reachable at ${addr}; the tests need it (see README, "Running the tests")`);
    }
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  ensureServices().then(
    () => console.error("stategate: test services are up"),
    (err) => {
      console.error(`stategate: ${err.message}`);
      process.exit(1);
    },
  );
}
