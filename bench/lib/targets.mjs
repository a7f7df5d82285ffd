// The targets of issue 9 (and the policy target of issue 6), judged against a
// run's results. They are benchmark targets: a miss is reported, not thrown.

export const OPERATIONS = {
  "memcached.cache.get": "Cache Get (Memcached)",
  "mysql.entity.get": "Entity Get (MySQL)",
  "mysql.entity.set": "Entity Set (MySQL)",
  "sqlite.entity.get": "Entity Get (SQLite)",
  "sqlite.entity.set": "Entity Set (SQLite)",
};

/** Scenario 1 figures of one operation: both paths' percentiles and their differences. */
export function overhead(op) {
  const d = op.direct?.open?.summary;
  const g = op.gateway?.open?.summary;
  if (!d || !g) return undefined;
  return {
    direct: d,
    gateway: g,
    diff: { p50: g.p50 - d.p50, p90: g.p90 - d.p90, p99: g.p99 - d.p99 },
    ratio: { p50: g.p50 / d.p50, p90: g.p90 / d.p90, p99: g.p99 / d.p99 },
  };
}

/** Scenario 2 of one operation: ops/s of both paths and gateway ÷ direct, per concurrency. */
export function throughput(op) {
  if (!op.direct?.closed || !op.gateway?.closed) return undefined;
  return op.direct.closed.map((d, i) => {
    const g = op.gateway.closed[i];
    return {
      concurrency: d.concurrency,
      direct: d.opsPerSecond,
      gateway: g.opsPerSecond,
      ratio: g.opsPerSecond / d.opsPerSecond,
    };
  });
}

/** Scenario 6: gateway CPU seconds per 1,000 requests (= cores per 1,000 req/s) of one operation. */
export function cpuPerThousand(op) {
  const open = op.gateway?.open;
  if (!open || open.gatewayCpuSeconds === undefined || open.ok === 0) return undefined;
  return (open.gatewayCpuSeconds / open.ok) * 1000;
}

export function evaluateTargets(results) {
  const s = results.scenarios;
  const out = [];
  const add = (target, scope, value, limit, unit, better, note) => {
    const pass =
      value === undefined || Number.isNaN(value) ? undefined : better === "max" ? value <= limit : value >= limit;
    out.push({ target, scope, value, limit, unit, pass, ...(note ? { note } : {}) });
  };
  for (const [name, label] of Object.entries(OPERATIONS)) {
    const op = s.operations?.[name];
    const o = op && overhead(op);
    if (o) {
      add("overhead p90 at 1,000 req/s", label, o.diff.p90, 0.4, "ms", "max");
      add("overhead p99 at 1,000 req/s", label, o.diff.p99, 1.0, "ms", "max");
    }
  }
  const ratioAt64 = (name) => throughput(s.operations?.[name] ?? {})?.find((r) => r.concurrency === 64)?.ratio;
  if (s.operations?.["memcached.cache.get"]) {
    add(
      "throughput ratio at concurrency 64",
      OPERATIONS["memcached.cache.get"],
      ratioAt64("memcached.cache.get"),
      0.6,
      "×",
      "min",
    );
  }
  if (s.operations?.["mysql.entity.set"]) {
    add(
      "throughput ratio at concurrency 64",
      OPERATIONS["mysql.entity.set"],
      ratioAt64("mysql.entity.set"),
      0.7,
      "×",
      "min",
    );
  }
  if (s.fanout?.gateway) {
    const f = s.fanout.gateway;
    const complete = f.deliveredShare === 1;
    add(
      `fan-out p99, ${f.streams} streams`,
      "gateway",
      f.summary.p99,
      25,
      "ms",
      "max",
      complete ? undefined : `only ${(f.deliveredShare * 100).toFixed(2)}% of the expected deliveries arrived`,
    );
    if (!complete) out.at(-1).pass = false;
  }
  if (s.idle?.gateway) {
    add("RSS per idle stream", "gateway", s.idle.gateway.rssPerStreamBytes / 1024, 30, "KiB", "max");
  }
  for (const [name, label] of Object.entries(OPERATIONS)) {
    const op = s.operations?.[name];
    if (op) add("CPU per 1,000 req/s", label, cpuPerThousand(op), 0.15, "cores", "max");
  }
  if (s.policy) {
    if (s.policy.available) {
      add("policy evaluation median (issue 6)", "typical 20-line policy", s.policy.summaryUs.p50, 50, "µs", "max");
      if (!s.policy.decisionsCorrect) {
        Object.assign(out.at(-1), { pass: false, note: "the policy's decisions were wrong during the timed loop" });
      }
    } else
      out.push({
        target: "policy evaluation median (issue 6)",
        scope: "typical 20-line policy",
        pass: undefined,
        note: `not available: ${s.policy.reason}`,
      });
  }
  const judged = results.mode === "full";
  return out.map((t) => ({ ...t, judged }));
}
