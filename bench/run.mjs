#!/usr/bin/env node
// The stategate benchmark suite: what the gateway costs over talking to the
// backends directly (issue 9). `npm run bench` builds, then runs this.
//
//   node bench/run.mjs                 full run: bench/results/<date>.json + .svg, BENCHMARKS.md
//   node bench/run.mjs --smoke         a few seconds per scenario, no targets judged
//   options: --out DIR (where results go; default bench/results, smoke: a temp dir)
//            --only 1,2,3              scenarios to run (numbers as in BENCHMARKS.md)
//            --profile                 run the gateways and floor servers under `node --cpu-prof` (profiles in the out dir)
//            --no-md                   do not rewrite BENCHMARKS.md
//            --render FILE.json        re-print and re-chart an earlier run (and BENCHMARKS.md for a full one)
//            --set s4.rate=100         change one figure of the plan (repeatable); a changed full run is
//                                      still written to --out, so use --out and --no-md when trying things
//
// The orchestrator starts gateways and floor servers (lib/floor-server.mjs)
// and forks load-generator processes (lib/worker.mjs); it never generates
// load itself, and no load is ever generated inside a server. Backends:
// MySQL/MariaDB, Memcached and NATS, at the addresses the tests use
// (STATEGATE_TEST_*_ADDR override them).
import { fork } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { startFloorServer } from "./lib/floor.mjs";
import { repoRoot, startGateway } from "./lib/gateway.mjs";
import { decode, summary } from "./lib/hist.mjs";
import { cpuSeconds, machine, reachable, rssBytes } from "./lib/proc.mjs";
import { renderChart, renderMarkdown, renderText, updateBenchmarksMd } from "./lib/report.mjs";
import { createDirectMysqlTables, dropMysqlTables } from "./lib/seed.mjs";
import { evaluateTargets } from "./lib/targets.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({
  options: {
    smoke: { type: "boolean", default: false },
    out: { type: "string" },
    only: { type: "string" },
    profile: { type: "boolean", default: false },
    "no-md": { type: "boolean", default: false },
    set: { type: "string", multiple: true, default: [] },
    render: { type: "string" },
  },
});

// --render FILE.json: print and chart an earlier run again (and, for a full
// run, rewrite BENCHMARKS.md), without running anything: the figures are
// those of the file; only the presentation is today's.
if (args.render) {
  const { renderChart, renderMarkdown, renderText, updateBenchmarksMd } = await import("./lib/report.mjs");
  const { evaluateTargets } = await import("./lib/targets.mjs");
  const earlier = JSON.parse(readFileSync(args.render, "utf8"));
  earlier.targets = evaluateTargets(earlier);
  const base = args.render.replace(/\.json$/, "");
  writeFileSync(`${base}.svg`, renderChart(earlier));
  process.stdout.write(renderText(earlier));
  if (earlier.mode === "full" && !args["no-md"]) {
    updateBenchmarksMd(
      join(repoRoot, "BENCHMARKS.md"),
      renderMarkdown(earlier, {
        chartPath: relative(repoRoot, `${base}.svg`),
        jsonPath: relative(repoRoot, args.render),
      }),
    );
  }
  process.exit(0);
}

const smoke = args.smoke;
/** Durations and sizes: the full run takes about 12 minutes on 2 cores; smoke takes seconds. */
const plan = smoke
  ? {
      keys: 20,
      s1: { rate: 100, durationMs: 500, warmupMs: 100, graceMs: 10_000 },
      s2: { concurrencies: [1, 16, 64], durationMs: 150, warmupMs: 0, minOps: 8 },
      s3: { concurrency: 4, durationMs: 250, warmupMs: 0 },
      s4: {
        streams: 40,
        processes: 1,
        connections: 4,
        rate: 50,
        durationMs: 500,
        // The light-rate pass runs the same code at another rate: not repeated here.
        lightRate: 0,
        lightDurationMs: 0,
        graceMs: 10_000,
        drainMs: 300,
      },
      s5: { streams: 200, connections: 4, settleMs: 300, idleMs: 500 },
      s7: { iterations: 500, warmup: 100 },
    }
  : {
      keys: 1000,
      // graceMs: how long after the last scheduled request the answers are awaited.
      s1: { rate: 1000, durationMs: 20_000, warmupMs: 3_000, graceMs: 10_000 },
      s2: { concurrencies: [1, 16, 64], durationMs: 3_000, warmupMs: 1_000, minOps: 128 },
      s3: { concurrency: 16, durationMs: 5_000, warmupMs: 1_000 },
      s4: {
        streams: 1000,
        processes: 2,
        connections: 20,
        rate: 500,
        durationMs: 8_000,
        lightRate: 50,
        lightDurationMs: 5_000,
        graceMs: 10_000,
        drainMs: 3_000,
      },
      s5: { streams: 10_000, connections: 100, settleMs: 4_000, idleMs: 8_000 },
      s7: { iterations: 20_000, warmup: 5_000 },
    };
// --set s4.durationMs=5000 overrides one figure of the plan (for trying things out).
for (const assignment of args.set) {
  const [path, value] = assignment.split("=");
  const keys = path.split(".");
  let at = plan;
  for (const key of keys.slice(0, -1)) at = at[key];
  if (at === undefined || !(keys.at(-1) in at)) throw new Error(`--set: no plan entry ${path}`);
  at[keys.at(-1)] = JSON.parse(value);
}
const only = args.only ? new Set(args.only.split(",").map((s) => Number(s.trim()))) : undefined;
const wanted = (n) => only === undefined || only.has(n) || (n === 6 && only.has(1));

const startedAt = new Date();
const stamp = startedAt
  .toISOString()
  .replace(/\.\d+Z$/, "Z")
  .replace(/:/g, "-");
const outDir = args.out ?? (smoke ? mkdtempSync(join(tmpdir(), "stategate-bench-out-")) : join(here, "results"));
mkdirSync(outDir, { recursive: true });
const workDir = mkdtempSync(join(tmpdir(), "stategate-bench-"));
const logDir = join(workDir, "logs");
mkdirSync(logDir);
const profileDir = args.profile ? join(outDir, `profiles-${stamp}`) : undefined;
if (profileDir) mkdirSync(profileDir, { recursive: true });

function splitAddr(addr) {
  const at = addr.lastIndexOf(":");
  return { host: addr.slice(0, at), port: Number(addr.slice(at + 1)) };
}
const mysqlAddr = process.env.STATEGATE_TEST_MYSQL_ADDR ?? "127.0.0.1:3306";
const memcachedAddr = process.env.STATEGATE_TEST_MEMCACHED_ADDR ?? "127.0.0.1:11211";
const natsAddr = process.env.STATEGATE_TEST_NATS_ADDR ?? "127.0.0.1:4222";
/** The gateways' MySQL storage options; the direct path builds its pool from them as the adapter does. */
const mysqlOptions = { addr: mysqlAddr, user: "root", password: "", database: "test" };

// Every run gets names of its own, so a smoke run inside `npm test` and a
// full run never share tables, cache keys or subjects. The full run reuses
// fixed table names (dropped first) so its tables do not pile up.
const id = randomBytes(3).toString("hex");
const tablePrefix = smoke ? `sgbs${id}_` : "sgbench_";
const names = {
  gatewayMysqlPrefix: `${tablePrefix}g_`,
  directMysqlPrefix: `${tablePrefix}d_`,
  gatewayMemcachedPrefix: `sgbench${id}:`,
  directMemcachedPrefix: `sgbench${id}-direct:`,
  natsPrefix: `sgbench${id}`,
  directSubject: `sgbench${id}-direct.fan`,
};

const children = new Set();
const gateways = new Set();
async function cleanup() {
  for (const child of children) child.kill("SIGKILL");
  for (const gateway of gateways) await gateway.stop().catch(() => {});
}
process.on("SIGINT", () => {
  cleanup().finally(() => process.exit(130));
});

const logStart = performance.now();
const log = (line) =>
  process.stderr.write(`bench [${((performance.now() - logStart) / 1000).toFixed(1)} s]: ${line}\n`);

/**
 * Forks a load generator for one job. `on` handles the messages it sends on
 * the way ({type:"phase"} …); resolves with its result.
 */
function worker(job, on = {}) {
  const child = fork(join(here, "lib", "worker.mjs"), [], {
    cwd: here,
    execArgv: [],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  children.add(child);
  const done = new Promise((resolve, reject) => {
    let settled = false;
    child.on("message", (message) => {
      if (message.type === "result") {
        settled = true;
        resolve(message.result);
      } else if (message.type === "error") {
        settled = true;
        reject(new Error(`${job.kind} worker failed: ${message.message}`));
      } else {
        on[message.type]?.(message);
      }
    });
    child.once("exit", (code) => {
      children.delete(child);
      if (!settled) reject(new Error(`${job.kind} worker exited with ${code} before answering`));
    });
  });
  child.send({ type: "job", job });
  return { child, done, send: (message) => child.send(message) };
}

/** Waits for one message of `type` from a forked worker. */
function nextMessage(handle, type) {
  return new Promise((resolve, reject) => {
    const onMessage = (message) => {
      if (message.type === type) {
        handle.child.off("message", onMessage);
        resolve(message);
      }
    };
    handle.child.on("message", onMessage);
    handle.done.catch(reject);
  });
}

async function gateway(name, env) {
  const g = await startGateway({ name, env, logDir, profileDir });
  gateways.add(g);
  return {
    ...g,
    async stop() {
      gateways.delete(g);
      const exit = await g.stop();
      if (exit.code !== 0) log(`gateway ${name} exited with ${JSON.stringify(exit)} (log: ${g.logPath})`);
      return exit;
    },
  };
}

/** Starts a floor server (lib/floor.mjs) for `backends`, stopped with the rest on failure. */
async function floorServer(name, backends) {
  const floor = await startFloorServer({ name, backends, logDir, profileDir });
  children.add(floor.child);
  return {
    ...floor,
    async stop() {
      const exited = await floor.stop();
      children.delete(floor.child);
      if (exited.code !== 0) log(`floor server ${name} exited with ${JSON.stringify(exited)} (log: ${floor.logPath})`);
      return exited;
    },
  };
}

const mysqlProvider = (prefix) => JSON.stringify({ name: "mysql", ...mysqlOptions, tablePrefix: prefix });
const memcachedProvider = JSON.stringify({
  name: "memcached",
  addr: memcachedAddr,
  prefix: names.gatewayMemcachedPrefix,
});
const natsProvider = JSON.stringify({ name: "nats", addr: natsAddr, prefix: names.natsPrefix });

/** How busy the machine is before we start: share of all cores busy over `ms`, from /proc/stat. */
async function machineBusy(ms) {
  const read = () => {
    const cpu = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
    const idle = cpu[3] + (cpu[4] ?? 0);
    return { idle, total: cpu.reduce((a, b) => a + b, 0) };
  };
  const a = read();
  await sleep(ms);
  const b = read();
  return 1 - (b.idle - a.idle) / Math.max(1, b.total - a.total);
}

const results = {
  version: 1,
  mode: smoke ? "smoke" : "full",
  startedAt: startedAt.toISOString(),
  machine: machine(),
  plan,
  backends: {
    mysql: mysqlAddr,
    memcached: memcachedAddr,
    nats: natsAddr,
  },
  scenarios: {},
};

/**
 * Scenarios 1, 2 and 6 for one operation: direct path, floor path, then
 * gateway path. A full run gives each path a fresh load-generator process; a
 * smoke run runs all three in one to save start-ups. The CPU of the gateway
 * and of the floor server is read around its own path's open-loop window.
 */
async function operation(gw, floor, name, ctx) {
  const out = {};
  const servers = { gateway: gw, floor };
  const cpuAtStart = {};
  const cpu = {};
  const groups = smoke ? [["direct", "floor", "gateway"]] : [["direct"], ["floor"], ["gateway"]];
  for (const paths of groups) {
    const handle = worker(
      {
        kind: "suite",
        paths,
        name,
        ctx: { ...ctx, baseUrl: gw.baseUrl, floorBaseUrl: floor.baseUrl },
        open: wanted(1) ? plan.s1 : null,
        closed: wanted(2) ? plan.s2 : null,
      },
      {
        phase: (m) => {
          const server = servers[m.path];
          if (server === undefined) return;
          if (m.phase === "open-start") cpuAtStart[m.path] = cpuSeconds(server.pid);
          if (m.phase === "open-end") cpu[m.path] = cpuSeconds(server.pid) - cpuAtStart[m.path];
        },
      },
    );
    Object.assign(out, await handle.done);
  }
  if (out.gateway?.open) out.gateway.open.gatewayCpuSeconds = cpu.gateway;
  if (out.floor?.open) out.floor.open.floorCpuSeconds = cpu.floor;
  for (const path of ["direct", "floor", "gateway"]) {
    const o = out[path].open?.summary;
    const c = out[path].closed;
    log(
      `${name} ${path}: ${o ? `p50 ${o.p50.toFixed(3)} p99 ${o.p99.toFixed(3)} ms` : ""}${
        c ? ` ${c.map((r) => `c${r.concurrency} ${Math.round(r.opsPerSecond)}/s`).join(" ")}` : ""
      }`,
    );
  }
  return out;
}

async function sharedBackendScenarios() {
  await dropMysqlTables(mysqlOptions, [names.gatewayMysqlPrefix, names.directMysqlPrefix]);
  const gw = await gateway("mysql", {
    STATEGATE_STORAGE_PROVIDER: mysqlProvider(names.gatewayMysqlPrefix),
    STATEGATE_CACHE_PROVIDER: memcachedProvider,
    STATEGATE_CHANNEL_PROVIDER: JSON.stringify({ name: "memory" }),
  });
  const ctx = {
    keys: plan.keys,
    mysql: mysqlOptions,
    mysqlPrefix: names.directMysqlPrefix,
    gatewayMysqlPrefix: names.gatewayMysqlPrefix,
    memcachedAddr,
    memcachedPrefix: names.directMemcachedPrefix,
  };
  try {
    log(`gateway mysql+memcached on ${gw.baseUrl}; seeding ${plan.keys} keys`);
    await worker({ kind: "seed", backends: ["mysql", "memcached"], ctx: { ...ctx, baseUrl: gw.baseUrl } }).done;
    const ops = {};
    if (wanted(1) || wanted(2)) {
      // On the direct path's keys and tables (seeded above), never the gateway's.
      const floor = await floorServer("mysql", {
        memcached: { addr: memcachedAddr, prefix: names.directMemcachedPrefix },
        mysql: { options: mysqlOptions, prefix: names.directMysqlPrefix },
      });
      log(`floor server (memcached, mysql) on ${floor.baseUrl}`);
      try {
        for (const name of ["memcached.cache.get", "mysql.entity.get", "mysql.entity.set"]) {
          ops[name] = await operation(gw, floor, name, ctx);
        }
      } finally {
        await floor.stop();
      }
    }
    let doors;
    if (wanted(3)) {
      log("scenario 3: doors");
      doors = await worker({ kind: "doors", baseUrl: gw.baseUrl, keyIndex: 1, ...plan.s3 }).done;
      log("scenario 3 done");
    }
    return { ops, doors };
  } finally {
    await gw.stop();
  }
}

async function embeddedScenarios() {
  const dataDir = join(workDir, "sqlite");
  const gw = await gateway("sqlite", { STATEGATE_DATA_DIR: dataDir });
  const ctx = {
    keys: plan.keys,
    gatewaySqlitePath: join(dataDir, "stategate.db"),
    sqlitePath: join(workDir, "direct", "direct.db"),
  };
  try {
    log(`gateway sqlite on ${gw.baseUrl}; seeding`);
    await worker({ kind: "seed", backends: ["sqlite"], ctx: { ...ctx, baseUrl: gw.baseUrl } }).done;
    // The direct path's file exists once seeded; the floor server opens it as the direct path does.
    const floor = await floorServer("sqlite", { sqlite: { path: ctx.sqlitePath } });
    log(`floor server (sqlite) on ${floor.baseUrl}`);
    const ops = {};
    try {
      for (const name of ["sqlite.entity.get", "sqlite.entity.set"]) ops[name] = await operation(gw, floor, name, ctx);
    } finally {
      await floor.stop();
    }
    return { ops };
  } finally {
    await gw.stop();
  }
}

/** Scenario 4 on one path: subscriber processes hold the streams, a writer process writes. */
async function fanoutPath(mode, gw, rate = plan.s4.rate, durationMs = plan.s4.durationMs) {
  const s4 = plan.s4;
  const perProcess = Math.ceil(s4.streams / s4.processes);
  const subscribers = Array.from({ length: s4.processes }, (_, p) =>
    worker({
      kind: "fanoutSubscriber",
      mode,
      baseUrl: gw?.baseUrl,
      natsAddr,
      subject: names.directSubject,
      type: "fan",
      streams: Math.min(perProcess, s4.streams - p * perProcess),
      connections: s4.connections,
      writes: Math.max(1, Math.round((rate * durationMs) / 1000)),
    }),
  );
  await Promise.all(subscribers.map((s) => nextMessage(s, "opened")));
  const writer = worker({
    kind: "fanoutWriter",
    mode,
    baseUrl: gw?.baseUrl,
    mysql: mysqlOptions,
    mysqlPrefix: names.directMysqlPrefix,
    natsAddr,
    subject: names.directSubject,
    type: "fan",
    keys: plan.keys,
    rate,
    durationMs,
    graceMs: s4.graceMs,
  });
  await Promise.all(subscribers.map((s) => nextMessage(s, "ready")));
  const cpuBefore = gw ? cpuSeconds(gw.pid) : undefined;
  writer.send({ type: "go" });
  const written = await writer.done;
  await sleep(s4.drainMs);
  const gatewayCpuSeconds = gw ? cpuSeconds(gw.pid) - cpuBefore : undefined;
  for (const s of subscribers) s.send({ type: "stop", stamps: written.stamps });
  const subs = await Promise.all(subscribers.map((s) => s.done));
  const merged = decode(...subs.map((s) => s.latency));
  const delivered = subs.reduce((n, s) => n + s.delivered, 0);
  // Every write the writer sent, to every stream; undelivered ones are in the
  // latency histogram at the time they had waited (a lower bound).
  const expected = written.stamps.length * s4.streams;
  return {
    mode,
    rate,
    streams: s4.streams,
    writes: {
      scheduled: written.scheduled,
      ok: written.ok,
      errors: written.errors,
      unanswered: written.unanswered,
      firstError: written.firstError,
      summary: written.summary,
    },
    delivered,
    missing: subs.reduce((n, s) => n + s.missing, 0),
    expected,
    deliveredShare: expected === 0 ? 0 : delivered / expected,
    minPerStream: Math.min(...subs.map((s) => s.minPerStream)),
    endedEarly: subs.reduce((n, s) => n + s.endedEarly, 0),
    firstError: subs.find((s) => s.firstError)?.firstError,
    // Deliveries over the writer's measured window (the drain adds the tail).
    deliveredPerSecond: delivered / (written.elapsedMs / 1000),
    subscriberCpuSeconds: subs.reduce((n, s) => n + s.subscriberCpuSeconds, 0),
    gatewayCpuSeconds,
    summary: summary(merged),
  };
}

async function fanoutScenario() {
  const gw = await gateway("fanout", {
    STATEGATE_STORAGE_PROVIDER: mysqlProvider(names.gatewayMysqlPrefix),
    STATEGATE_CACHE_PROVIDER: memcachedProvider,
    STATEGATE_CHANNEL_PROVIDER: natsProvider,
  });
  const { streams, rate, lightRate, durationMs, lightDurationMs } = plan.s4;
  const out = { gateway: undefined, direct: undefined, light: {} };
  try {
    // The direct writer's own tables, shaped like the gateway's (which now exist).
    await createDirectMysqlTables(mysqlOptions, names.gatewayMysqlPrefix, names.directMysqlPrefix);
    // First at a rate the machine sustains, for the latency of fan-out itself;
    // then at the issue's rate, which the target is judged at.
    if (lightRate > 0) {
      log(`scenario 4: fan-out to ${streams} streams through the gateway (mysql+nats) at ${lightRate} Sets/s`);
      out.light.gateway = await fanoutPath("gateway", gw, lightRate, lightDurationMs);
    }
    log(`scenario 4: fan-out to ${streams} streams through the gateway (mysql+nats) at ${rate} Sets/s`);
    out.gateway = await fanoutPath("gateway", gw, rate, durationMs);
  } finally {
    await gw.stop();
  }
  log(`scenario 4: fan-out direct (mysql2 + NATS)`);
  if (lightRate > 0) out.light.direct = await fanoutPath("direct", undefined, lightRate, lightDurationMs);
  out.direct = await fanoutPath("direct", undefined, rate, durationMs);
  return out;
}

/** Scenario 5 on one server process: RSS before and after opening the streams, CPU while they idle. */
async function idleOn(pid, baseUrl, mode) {
  const s5 = plan.s5;
  const handle = worker({
    kind: "idleStreams",
    mode,
    baseUrl,
    streams: s5.streams,
    connections: s5.connections,
    type: "idle",
    warmStreams: 20,
  });
  // The worker first opens and closes a few streams, so the server's code
  // paths are warm and the difference below is the streams' own.
  await nextMessage(handle, "warmed");
  await sleep(s5.settleMs);
  const rssBefore = rssBytes(pid);
  handle.send({ type: "open" });
  const ready = await nextMessage(handle, "ready");
  await sleep(s5.settleMs);
  const rssAfter = rssBytes(pid);
  const cpu0 = cpuSeconds(pid);
  await sleep(s5.idleMs);
  const idleCpuSeconds = cpuSeconds(pid) - cpu0;
  const rssEnd = rssBytes(pid);
  handle.send({ type: "stop" });
  const held = await handle.done;
  return {
    mode,
    streams: s5.streams,
    opened: ready.opened,
    openMs: ready.openMs,
    heldToEnd: held.heldToEnd,
    endedEarly: held.endedEarly,
    firstError: held.firstError,
    rssBeforeBytes: rssBefore,
    rssAfterBytes: rssAfter,
    rssEndBytes: rssEnd,
    rssPerStreamBytes: (rssAfter - rssBefore) / s5.streams,
    idleCpuSeconds,
    idleCpuCores: idleCpuSeconds / (s5.idleMs / 1000),
  };
}

async function idleScenario() {
  log(`scenario 5: ${plan.s5.streams} idle streams`);
  const gw = await gateway("idle", {
    STATEGATE_STORAGE_PROVIDER: mysqlProvider(names.gatewayMysqlPrefix),
    STATEGATE_CACHE_PROVIDER: memcachedProvider,
    STATEGATE_CHANNEL_PROVIDER: JSON.stringify({ name: "memory" }),
  });
  let gatewayPath;
  try {
    gatewayPath = await idleOn(gw.pid, gw.baseUrl, "gateway");
  } finally {
    await gw.stop();
  }
  const baseline = fork(join(here, "lib", "h2-baseline.mjs"), [], {
    execArgv: [],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  children.add(baseline);
  try {
    const { port } = await new Promise((resolve, reject) => {
      baseline.once("message", resolve);
      baseline.once("exit", (code) => reject(new Error(`baseline server exited with ${code}`)));
    });
    const baselinePath = await idleOn(baseline.pid, `http://127.0.0.1:${port}`, "baseline");
    return { gateway: gatewayPath, baseline: baselinePath };
  } finally {
    baseline.kill("SIGTERM");
    children.delete(baseline);
  }
}

async function main() {
  for (const [name, addr] of [
    ["MySQL", mysqlAddr],
    ["Memcached", memcachedAddr],
    ["NATS", natsAddr],
  ]) {
    const { host, port } = splitAddr(addr);
    if (!(await reachable(host, port))) {
      throw new Error(`${name} is not reachable at ${addr} (start the test services: node scripts/services.mjs)`);
    }
  }
  results.machine.busyBeforeRun = await machineBusy(smoke ? 300 : 2_000);
  log(
    `${results.mode} run; ${results.machine.cores} cores, load ${results.machine.loadAverage.join(" ")}, ` +
      `${Math.round(results.machine.busyBeforeRun * 100)}% busy before start; work dir ${workDir}`,
  );
  const t0 = performance.now();
  const s = results.scenarios;
  results.phaseSeconds = {};
  const timed = async (phase, body) => {
    const started = performance.now();
    try {
      return await body();
    } finally {
      results.phaseSeconds[phase] = Math.round(performance.now() - started) / 1000;
    }
  };
  if (wanted(1) || wanted(2) || wanted(3)) {
    const shared = await timed("mysql+memcached gateway (1, 2, 3)", sharedBackendScenarios);
    s.operations = { ...shared.ops };
    if (shared.doors) s.doors = shared.doors;
  }
  if (wanted(1) || wanted(2)) {
    const embedded = await timed("sqlite gateway (1, 2)", embeddedScenarios);
    s.operations = { ...s.operations, ...embedded.ops };
  }
  if (wanted(4)) s.fanout = await timed("fan-out (4)", fanoutScenario);
  if (wanted(5)) s.idle = await timed("idle streams (5)", idleScenario);
  if (wanted(7)) {
    log("scenario 7: Rego policy evaluation");
    s.policy = await timed("policy (7)", () => worker({ kind: "rego", ...plan.s7 }).done);
  }
  await dropMysqlTables(mysqlOptions, [names.gatewayMysqlPrefix, names.directMysqlPrefix]).catch((e) =>
    log(`could not drop the bench tables: ${e.message}`),
  );
  results.durationSeconds = (performance.now() - t0) / 1000;
  results.machine.loadAverageAfter = machine().loadAverage;
  results.targets = evaluateTargets(results);

  const base = join(outDir, stamp);
  results.files = { json: `${base}.json`, chart: `${base}.svg` };
  writeFileSync(`${base}.svg`, renderChart(results));
  writeFileSync(`${base}.json`, `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write(renderText(results));
  if (!smoke && !args["no-md"]) {
    const md = join(repoRoot, "BENCHMARKS.md");
    updateBenchmarksMd(
      md,
      renderMarkdown(results, {
        chartPath: relative(repoRoot, `${base}.svg`),
        jsonPath: relative(repoRoot, `${base}.json`),
      }),
    );
    log(`wrote ${relative(process.cwd(), md)}`);
  }
  log(`wrote ${base}.json and ${base}.svg`);
  if (profileDir)
    log(`gateway and floor server CPU profiles in ${profileDir} (summarise: node bench/lib/profile-top.mjs FILE)`);
}

try {
  await main();
  rmSync(workDir, { recursive: true, force: true });
} catch (error) {
  log(`failed: ${error.stack ?? error}`);
  log(`gateway logs kept in ${logDir}`);
  await cleanup();
  process.exit(1);
}
await cleanup();
