// The bench's smoke run (`node bench/run.mjs --smoke`): every scenario for a
// few seconds, no targets judged. It checks the harness, not the gateway's
// speed: every scenario is present with work actually done on every path,
// and the results go to a temporary directory, never to the repository.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const bench = join(dirname(fileURLToPath(import.meta.url)), "..");
const repo = join(bench, "..");
/** The operations of scenarios 1 and 2, and their labels in the report. */
const labels = {
  "memcached.cache.get": "Cache Get (Memcached)",
  "mysql.entity.get": "Entity Get (MySQL)",
  "mysql.entity.set": "Entity Set (MySQL)",
  "sqlite.entity.get": "Entity Get (SQLite)",
  "sqlite.entity.set": "Entity Set (SQLite)",
};
const operations = Object.keys(labels);
const doors = ["grpc", "connect-binary", "connect-json", "grpc-web", "rest", "graphql"];

const listing = (dir: string) => (existsSync(dir) ? readdirSync(dir).sort() : []);
const mtime = (path: string) => (existsSync(path) ? statSync(path).mtimeMs : undefined);

test(
  "the bench smoke run covers every scenario and writes only to its output directory",
  { timeout: 120_000 },
  async () => {
    const out = mkdtempSync(join(tmpdir(), "stategate-bench-smoke-"));
    const resultsBefore = listing(join(bench, "results"));
    const benchmarksMd = mtime(join(repo, "BENCHMARKS.md"));
    try {
      const started = Date.now();
      const run = spawnSync(process.execPath, [join(bench, "run.mjs"), "--smoke", "--out", out], {
        cwd: repo,
        encoding: "utf8",
        timeout: 110_000,
      });
      const seconds = (Date.now() - started) / 1000;
      assert.equal(run.status, 0, `bench --smoke failed (${run.signal ?? run.status}):\n${run.stderr}\n${run.stdout}`);
      process.stderr.write(`bench smoke run: ${seconds.toFixed(1)} s\n`);

      const files = readdirSync(out);
      const json = files.filter((f) => f.endsWith(".json"));
      assert.equal(json.length, 1, `one results file in ${out}, got ${files.join(", ")}`);
      assert.ok(
        files.some((f) => f.endsWith(".svg")),
        "an SVG chart",
      );
      const svg = readFileSync(join(out, json[0]!.replace(/\.json$/, ".svg")), "utf8");
      assert.match(svg, /^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
      assert.match(svg, /<rect /, "the chart has bars");
      const r = JSON.parse(readFileSync(join(out, json[0]!), "utf8"));
      assert.equal(r.mode, "smoke");
      const s = r.scenarios;

      // 1, 2 and 6: every operation on all three paths (the floor too), with requests answered.
      for (const name of operations) {
        for (const path of ["direct", "floor", "gateway"]) {
          const p = s.operations?.[name]?.[path];
          assert.ok(p, `${name} ${path} missing`);
          assert.equal(p.open.errors, 0, `${name} ${path} open loop errors: ${p.open.firstError}`);
          assert.equal(p.open.unanswered, 0, `${name} ${path}: requests unanswered at the deadline`);
          assert.equal(p.open.ok, p.open.scheduled, `${name} ${path}: every scheduled request answered`);
          assert.ok(p.open.ok > 0 && p.open.summary.count === p.open.ok, `${name} ${path}: latencies recorded`);
          assert.ok(
            p.open.summary.p50 > 0 && p.open.summary.p99 >= p.open.summary.p50,
            `${name} ${path}: sane percentiles`,
          );
          assert.deepEqual(
            p.closed.map((c: { concurrency: number }) => c.concurrency),
            [1, 16, 64],
          );
          for (const c of p.closed) {
            assert.equal(c.errors, 0, `${name} ${path} c${c.concurrency}: ${c.firstError}`);
            assert.ok(c.ok > 0 && c.opsPerSecond > 0, `${name} ${path} c${c.concurrency}: no requests completed`);
          }
        }
        const cpu = s.operations[name].gateway.open.gatewayCpuSeconds;
        assert.ok(typeof cpu === "number" && cpu >= 0, `${name}: gateway CPU measured`);
        const floorCpu = s.operations[name].floor.open.floorCpuSeconds;
        assert.ok(typeof floorCpu === "number" && floorCpu >= 0, `${name}: floor server CPU measured`);
      }
      // The report shows the floor beside the other paths: a row in scenarios 1 and 2 for each operation.
      for (const label of Object.values(labels)) {
        const rows = run.stdout.split("\n").filter((line) => line.startsWith(label) && /^[^)]*\)\s+floor\s/.test(line));
        assert.equal(rows.length, 2, `${label}: floor rows in scenarios 1 and 2`);
      }
      assert.match(run.stdout, /floor server CPU s \/ 1,000 req/, "scenario 6 shows the floor server's CPU");

      // 3: every door answered with the entity, without errors.
      assert.deepEqual(Object.keys(s.doors).sort(), [...doors].sort());
      for (const door of doors) {
        assert.ok(s.doors[door].ok > 0, `${door}: no requests`);
        assert.equal(s.doors[door].errors, 0, `${door}: errors`);
      }

      // 4: every write reached every stream, on both paths.
      for (const [path, f] of [
        ["direct", s.fanout.direct],
        ["gateway", s.fanout.gateway],
      ]) {
        assert.ok(f, `fan-out ${path} missing`);
        assert.ok(f.writes.ok > 0, `fan-out ${path}: no writes`);
        assert.equal(f.writes.errors, 0, `fan-out ${path}: ${f.writes.firstError}`);
        assert.equal(f.delivered, f.expected, `fan-out ${path}: ${f.delivered} of ${f.expected} deliveries`);
        assert.equal(f.writes.unanswered, 0, `fan-out ${path}: writes unanswered`);
        assert.equal(f.missing, 0, `fan-out ${path}: deliveries missing`);
        assert.ok(f.summary.count === f.expected && f.summary.p99 > 0, `fan-out ${path}: latencies recorded`);
      }

      // 5: the streams were opened, held and measured.
      for (const path of ["baseline", "gateway"]) {
        const i = s.idle[path];
        assert.equal(i.opened, i.streams, `idle ${path}: ${i.opened} of ${i.streams} opened`);
        assert.equal(i.heldToEnd, i.streams, `idle ${path}: streams dropped (${i.firstError})`);
        assert.ok(i.rssBeforeBytes > 0 && i.rssAfterBytes > 0, `idle ${path}: RSS read`);
      }

      // 7: timed only when the engine exists; otherwise an explicit "not available".
      let compile: unknown;
      try {
        compile = ((await import("@stategate/rego")) as Record<string, unknown>).compile;
      } catch {}
      if (typeof compile === "function") {
        // The engine exists: the scenario must run, and decide correctly.
        assert.equal(s.policy.available, true, `policy scenario not run: ${s.policy.reason}`);
        assert.ok(s.policy.summaryUs.p50 > 0, "policy evaluations timed");
        assert.equal(s.policy.decisionsCorrect, true, "the policy allowed the allowed input and denied the other");
        assert.equal(s.policy.allowed, s.policy.iterations / 2);
      } else {
        assert.equal(s.policy.available, false);
        assert.match(s.policy.reason, /compile/);
      }

      // Targets are listed, and not judged in a smoke run.
      assert.ok(r.targets.length >= 10);
      assert.ok(r.targets.every((t: { judged: boolean }) => t.judged === false));
      assert.match(run.stdout, /Targets/);

      // Nothing written to the repository.
      assert.deepEqual(listing(join(bench, "results")), resultsBefore, "bench/results changed");
      assert.equal(mtime(join(repo, "BENCHMARKS.md")), benchmarksMd, "BENCHMARKS.md changed");
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  },
);
