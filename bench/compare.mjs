#!/usr/bin/env node
// One operation on the gateway and on the floor server side by side, for
// trying a change before a full run (BENCHMARKS.md, "Profiling"): the rate
// each path served, its latency, and the CPU its server used per call (from
// /proc). The load comes from this process, one path at a time.
//
//   node bench/compare.mjs --ops mysql.entity.get,mysql.entity.set           closed loop, concurrency 16
//   node bench/compare.mjs --embedded --ops sqlite.entity.get --rate 1000     open loop at 1,000 req/s
//   options: --paths gateway,floor   --concurrency 16   --seconds 5   --profile (both servers under --cpu-prof)
//            --gateway-node-options "--trace-gc"   (logs and profiles stay in the printed work dir)
//
// Backends as for the suite: MySQL and Memcached (the default), or the
// embedded SQLite store and memory cache with --embedded.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startFloorServer } from "./lib/floor.mjs";
import { startGateway } from "./lib/gateway.mjs";
import { closedLoop, openLoop } from "./lib/loops.mjs";
import { createOperation } from "./lib/ops.mjs";
import { cpuSeconds } from "./lib/proc.mjs";
import { dropMysqlTables, seed } from "./lib/seed.mjs";

const { values: args } = parseArgs({
  options: {
    ops: { type: "string" },
    paths: { type: "string", default: "gateway,floor" },
    embedded: { type: "boolean", default: false },
    rate: { type: "string" },
    concurrency: { type: "string", default: "16" },
    seconds: { type: "string", default: "5" },
    profile: { type: "boolean", default: false },
    "gateway-node-options": { type: "string", default: "" },
  },
});
const embedded = args.embedded;
const ops = (args.ops ?? (embedded ? "sqlite.entity.get" : "mysql.entity.get")).split(",");
const paths = args.paths.split(",");
const seconds = Number(args.seconds);

const work = mkdtempSync(join(tmpdir(), "stategate-compare-"));
const profileDir = args.profile ? join(work, "profiles") : undefined;
const mysql = {
  addr: process.env.STATEGATE_TEST_MYSQL_ADDR ?? "127.0.0.1:3306",
  user: "root",
  password: "",
  database: "test",
};
const memcachedAddr = process.env.STATEGATE_TEST_MEMCACHED_ADDR ?? "127.0.0.1:11211";
const ctx = {
  keys: 1000,
  mysql,
  mysqlPrefix: "sgbc_d_",
  gatewayMysqlPrefix: "sgbc_g_",
  memcachedAddr,
  memcachedPrefix: "sgbc-direct:",
  gatewaySqlitePath: join(work, "sqlite", "stategate.db"),
  sqlitePath: join(work, "direct", "direct.db"),
};
const env = embedded
  ? { STATEGATE_DATA_DIR: join(work, "sqlite") }
  : {
      STATEGATE_STORAGE_PROVIDER: JSON.stringify({ name: "mysql", ...mysql, tablePrefix: ctx.gatewayMysqlPrefix }),
      STATEGATE_CACHE_PROVIDER: JSON.stringify({ name: "memcached", addr: memcachedAddr, prefix: "sgbc:" }),
      STATEGATE_CHANNEL_PROVIDER: JSON.stringify({ name: "memory" }),
    };
const gatewayOptions = args["gateway-node-options"].split(" ").filter(Boolean);

const gateway = await startGateway({ name: "compare", env, logDir: work, profileDir, execArgv: gatewayOptions });
let floor;
try {
  await seed({
    backends: embedded ? ["sqlite"] : ["mysql", "memcached"],
    ctx: { ...ctx, baseUrl: gateway.baseUrl },
  });
  floor = await startFloorServer({
    name: "compare",
    logDir: work,
    profileDir,
    backends: embedded
      ? { sqlite: { path: ctx.sqlitePath } }
      : {
          memcached: { addr: memcachedAddr, prefix: ctx.memcachedPrefix },
          mysql: { options: mysql, prefix: ctx.mysqlPrefix },
        },
  });
  const servers = { gateway, floor };
  const where = { ...ctx, baseUrl: gateway.baseUrl, floorBaseUrl: floor.baseUrl };
  for (const name of ops) {
    for (const path of paths) {
      const server = servers[path];
      if (server === undefined) throw new Error(`unknown path ${path}: gateway or floor`);
      const { op, close } = createOperation(path, name, where);
      try {
        await op(0);
        await closedLoop(op, { concurrency: 16, durationMs: 1000 }); // warm-up
        const cpuBefore = cpuSeconds(server.pid);
        const result = args.rate
          ? await openLoop(op, {
              rate: Number(args.rate),
              durationMs: seconds * 1000,
              firstIndex: 1_000_000,
              graceMs: 10_000,
            })
          : await closedLoop(op, {
              concurrency: Number(args.concurrency),
              durationMs: seconds * 1000,
              firstIndex: 1_000_000,
            });
        const cpuPerCall = ((cpuSeconds(server.pid) - cpuBefore) * 1e6) / result.ok;
        const s = result.summary;
        const rate = args.rate
          ? `open loop ${args.rate}/s`
          : `c${args.concurrency} ${Math.round(result.opsPerSecond)}/s`;
        console.log(
          `${name} ${path}: ${rate}, p50 ${s.p50.toFixed(3)} p90 ${s.p90.toFixed(3)} p99 ${s.p99.toFixed(3)} ms, ` +
            `server ${cpuPerCall.toFixed(0)} µs CPU per call, ${result.errors} errors`,
        );
      } finally {
        await close();
      }
    }
  }
} finally {
  await floor?.stop();
  await gateway.stop();
  if (!embedded) await dropMysqlTables(mysql, [ctx.gatewayMysqlPrefix, ctx.mysqlPrefix]);
}
console.log(`work dir (logs${profileDir ? ", profiles" : ""}): ${work}`);
