// Turns a run's results into the stdout table, the Markdown of BENCHMARKS.md
// and an SVG chart (hand-written: no charting dependency).
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { cpuPerThousand, OPERATIONS, overhead, throughput } from "./targets.mjs";

const ms = (v) => (v === undefined || Number.isNaN(v) ? "–" : v.toFixed(3));
const signed = (v) => (v === undefined || Number.isNaN(v) ? "–" : `${v >= 0 ? "+" : ""}${v.toFixed(3)}`);
const int = (v) => (v === undefined || Number.isNaN(v) ? "–" : Math.round(v).toLocaleString("en-US"));
const ratio = (v) => (v === undefined || !Number.isFinite(v) ? "–" : `${v.toFixed(2)}×`);
const mib = (bytes) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
const kib = (bytes) => `${(bytes / 1024).toFixed(1)} KiB`;

/** The tables of a run, each { title, note, head, rows }. */
export function tables(results) {
  const s = results.scenarios;
  const out = [];
  const ops = Object.entries(OPERATIONS).filter(([name]) => s.operations?.[name]);

  // One row per path: direct, floor (when it ran; earlier runs had none), gateway.
  const PATHS = [
    ["direct", "direct"],
    ["floor", "floor"],
    ["gateway", "gateway"],
  ];
  const s1 = ops.map(([name, label]) => [name, label, overhead(s.operations[name])]).filter(([, , o]) => o);
  const withFloor = ops.some(([name]) => s.operations[name].floor);
  if (s1.length) {
    const rate = results.plan.s1.rate;
    out.push({
      title: `1. Overhead at a fixed rate: open loop, ${int(rate)} req/s for ${results.plan.s1.durationMs / 1000} s per path`,
      note:
        "Latency in ms, measured from each request's scheduled send time (no coordinated omission). Δ = path − direct. " +
        (withFloor
          ? "floor: a bare node:http2 gRPC server doing the direct path's backend call, called with the gateway path's client (the SDK), " +
            "so gateway − floor is what the gateway's own work adds. "
          : "") +
        "Served/s is the rate each path actually answered at: below the offered rate, requests queued and the percentiles are mostly queueing. " +
        `Requests still unanswered ${results.plan.s1.graceMs / 1000} s after the last send count at the time they had waited (a lower bound).`,
      head: [
        "operation",
        "path",
        "served/s",
        "p50",
        "p90",
        "p99",
        "Δp50",
        "Δp90",
        "Δp99",
        "p99 ×",
        "unanswered",
        "errors",
      ],
      rows: s1.flatMap(([name, label, o]) =>
        PATHS.filter(([path]) => o[path]).map(([path, pathLabel]) => {
          const open = s.operations[name][path].open;
          const diff = path === "gateway" ? o.diff : path === "floor" ? o.floorDiff : undefined;
          const times = path === "gateway" ? o.ratio : path === "floor" ? o.floorRatio : undefined;
          return [
            label,
            pathLabel,
            int(open.achievedRate),
            ms(o[path].p50),
            ms(o[path].p90),
            ms(o[path].p99),
            signed(diff?.p50),
            signed(diff?.p90),
            signed(diff?.p99),
            ratio(times?.p99),
            String(open.unanswered ?? 0),
            String(open.errors ?? 0),
          ];
        }),
      ),
    });
  }

  const s2 = ops.map(([name, label]) => [label, throughput(s.operations[name])]).filter(([, t]) => t);
  if (s2.length) {
    const cs = s2[0][1].map((r) => r.concurrency);
    out.push({
      title: "2. Throughput ceiling: closed loop, ops/s",
      note:
        `ops/s and path ÷ direct at each concurrency; ${results.plan.s2.durationMs / 1000} s per cell. ` +
        "Direct SQLite is synchronous, so its concurrency is 1 whatever the column says.",
      head: ["operation", "path", ...cs.flatMap((c) => [`c${c} ops/s`, `c${c} ÷ direct`])],
      rows: s2.flatMap(([label, t]) =>
        PATHS.filter(([path]) => t[0][path] !== undefined).map(([path, pathLabel]) => [
          label,
          pathLabel,
          ...t.flatMap((r) => [
            int(r[path]),
            path === "direct" ? "–" : ratio(path === "floor" ? r.floorRatio : r.ratio),
          ]),
        ]),
      ),
    });
  }

  if (s.doors) {
    const grpc = s.doors.grpc?.opsPerSecond;
    out.push({
      title: `3. Doors: Entity Get on MySQL, closed loop at concurrency ${results.plan.s3.concurrency}`,
      note: "gRPC over HTTP/2 with our own closed loop (its client in the transport column); the others over HTTP/1.1 with autocannon (one request in flight per connection).",
      head: ["door", "transport", "ops/s", "vs gRPC", "p50 ms", "p99 ms", "errors"],
      rows: Object.entries(s.doors).map(([door, d]) => [
        door,
        d.transport,
        int(d.opsPerSecond),
        ratio(d.opsPerSecond / grpc),
        ms(d.summary.p50),
        ms(d.summary.p99),
        String(d.errors),
      ]),
    });
  }

  if (s.fanout) {
    const rows = [];
    const runs = [
      [s.fanout.light?.direct, "direct (mysql2 + NATS subscriptions)"],
      [s.fanout.light?.gateway, "gateway (Set → NATS → EventService.Stream)"],
      [s.fanout.direct, "direct (mysql2 + NATS subscriptions)"],
      [s.fanout.gateway, "gateway (Set → NATS → EventService.Stream)"],
    ];
    for (const [f, label] of runs) {
      if (!f) continue;
      rows.push([
        label,
        `${f.rate}/s`,
        int(f.streams),
        int(f.writes.ok),
        `${(f.deliveredShare * 100).toFixed(2)}%`,
        int(f.deliveredPerSecond),
        ms(f.summary.p50),
        ms(f.summary.p99),
        ms(f.summary.max),
        f.gatewayCpuSeconds === undefined ? "–" : f.gatewayCpuSeconds.toFixed(2),
        f.subscriberCpuSeconds.toFixed(2),
        String(f.endedEarly),
      ]);
    }
    out.push({
      title: `4. Fan-out: ${int(results.plan.s4.streams)} streams, one writer (${
        results.plan.s4.lightRate > 0
          ? `${results.plan.s4.lightRate} Sets/s for ${results.plan.s4.lightDurationMs / 1000} s, then `
          : ""
      }${results.plan.s4.rate} Sets/s for ${results.plan.s4.durationMs / 1000} s)`,
      note:
        `Latency from just before the write is sent (so it includes the commit) to its delivery on each stream, in ms. ` +
        `Deliveries are counted until ${results.plan.s4.drainMs / 1000} s after the writer stops (it waits at most ${results.plan.s4.graceMs / 1000} s for its last answers); ` +
        `an event a stream never received counts at the time it had waited by then (a lower bound). The target is judged at ${results.plan.s4.rate} Sets/s.`,
      head: [
        "path",
        "writes/s",
        "streams",
        "writes",
        "delivered",
        "deliveries/s",
        "p50",
        "p99",
        "max",
        "gateway CPU s",
        "subscribers CPU s",
        "streams ended",
      ],
      rows,
    });
  }

  if (s.idle) {
    const rows = [];
    for (const path of ["baseline", "gateway"]) {
      const i = s.idle[path];
      if (!i) continue;
      rows.push([
        path === "gateway" ? "gateway (EventService.Stream)" : "baseline (bare node:http2 server)",
        `${int(i.opened)} / ${int(i.streams)}`,
        mib(i.rssBeforeBytes),
        mib(i.rssAfterBytes),
        kib(i.rssPerStreamBytes),
        `${(i.idleCpuCores * 100).toFixed(2)}%`,
        String(i.endedEarly),
      ]);
    }
    out.push({
      title: `5. Idle streams: ${int(results.plan.s5.streams)} open event streams`,
      note: "RSS of the server process before and after opening the streams; CPU of one core used while they sit idle.",
      head: ["server", "held", "RSS before", "RSS after", "RSS per stream", "idle CPU", "dropped"],
      rows,
    });
  }

  const s6 = ops.map(([name, label]) => [label, cpuPerThousand(s.operations[name]), s.operations[name]]);
  if (s6.some(([, v]) => v !== undefined)) {
    const perThousand = (open) => (open ? ((open.loadgenCpuSeconds / open.ok) * 1000).toFixed(3) : "–");
    const fixed = (v) => (v === undefined ? "–" : v.toFixed(3));
    out.push({
      title: "6. CPU cost: gateway CPU during scenario 1",
      note:
        "CPU seconds per 1,000 requests = cores used at 1,000 req/s (from /proc, 10 ms ticks)." +
        (withFloor
          ? " Floor server: the bare node:http2 server of the floor path, over its own open-loop window."
          : ""),
      // Columns of the floor only when it ran (earlier runs had none).
      head: [
        "operation",
        "gateway CPU s / 1,000 req",
        ...(withFloor ? ["floor server CPU s / 1,000 req"] : []),
        "load generator CPU s / 1,000 req (gateway path)",
        ...(withFloor ? ["(floor path)"] : []),
        "(direct path)",
      ],
      rows: s6.map(([label, v, op]) => [
        label,
        fixed(v),
        ...(withFloor ? [fixed(cpuPerThousand(op, "floor"))] : []),
        perThousand(op.gateway.open),
        ...(withFloor ? [perThousand(op.floor?.open)] : []),
        perThousand(op.direct.open),
      ]),
    });
  }

  if (s.policy) {
    const p = s.policy;
    out.push({
      title: "7. Policy: a typical 20-line Rego policy (@stategate/rego)",
      note: p.available ? `evaluated through ${p.api}` : "",
      head: p.available ? ["compile ms", "p50 µs", "p90 µs", "p99 µs", "evaluations/s"] : ["status"],
      rows: p.available
        ? [
            [
              p.compileMs.toFixed(2),
              p.summaryUs.p50.toFixed(1),
              p.summaryUs.p90.toFixed(1),
              p.summaryUs.p99.toFixed(1),
              int(p.evaluationsPerSecond),
            ],
          ]
        : [[`not available: ${p.reason}`]],
    });
  }
  return out;
}

function targetRows(results) {
  return results.targets.map((t) => {
    const value =
      t.value === undefined || Number.isNaN(t.value)
        ? "–"
        : `${t.value >= 0 && t.unit === "ms" ? "+" : ""}${t.value.toFixed(t.unit === "µs" ? 1 : 3)} ${t.unit}`;
    const limit = t.limit === undefined ? "–" : `${t.unit === "×" ? "≥" : "≤"} ${t.limit} ${t.unit}`;
    const verdict = !t.judged ? "not judged (smoke)" : t.pass === undefined ? "n/a" : t.pass ? "pass" : "MISS";
    return [
      t.target,
      t.scope,
      value,
      limit,
      verdict + (t.note ? ` (${t.note})` : "") + (t.floor ? ` — ${t.floor}` : ""),
    ];
  });
}

function textTable(head, rows) {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i] ?? "").length)));
  const line = (cells) =>
    cells
      .map((c, i) => String(c ?? "").padEnd(widths[i]))
      .join("  ")
      .trimEnd();
  return [line(head), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

function mdTable(head, rows) {
  const esc = (c) => String(c ?? "").replace(/\|/g, "\\|");
  return [
    `| ${head.map(esc).join(" | ")} |`,
    `|${head.map(() => "---").join("|")}|`,
    ...rows.map((r) => `| ${r.map(esc).join(" | ")} |`),
  ].join("\n");
}

function machineLine(results) {
  const m = results.machine;
  return `${m.cores} cores (${m.cpuModel}), ${m.memoryGiB} GiB, Node ${m.node}, ${m.platform}`;
}

function loadNote(results) {
  const m = results.machine;
  const busy = Math.round((m.busyBeforeRun ?? 0) * 100);
  const shared = busy >= 10 || m.loadAverage[0] >= 0.5;
  return (
    `load average ${m.loadAverage.join(" / ")} at start, ${m.loadAverageAfter?.join(" / ") ?? "?"} at the end; ` +
    `${busy}% of the machine was busy in the 2 s before the run started` +
    (shared
      ? " — other work was running on this shared machine, so absolute figures are noisy; ratios and differences hold up better"
      : "")
  );
}

export function renderText(results) {
  const parts = [
    `\nstategate bench (${results.mode}) — ${results.startedAt} — ${machineLine(results)}`,
    `machine: ${loadNote(results)}`,
  ];
  for (const t of tables(results)) {
    parts.push(`\n${t.title}${t.note ? `\n${t.note}` : ""}\n${textTable(t.head, t.rows)}`);
  }
  parts.push(`\nTargets\n${textTable(["target", "scope", "value", "limit", "result"], targetRows(results))}`);
  parts.push(`\n${results.durationSeconds.toFixed(0)} s in all\n`);
  return `${parts.join("\n")}\n`;
}

/** The generated part of BENCHMARKS.md. */
export function renderMarkdown(results, { chartPath, jsonPath }) {
  const judged = results.targets.filter((t) => t.judged && t.pass !== undefined);
  const met = judged.filter((t) => t.pass).length;
  const parts = [
    `## Latest run: ${results.startedAt}`,
    "",
    `- Machine: ${machineLine(results)}.`,
    `- Load: ${loadNote(results)}.`,
    `- Backends: MariaDB at ${results.backends.mysql}, Memcached at ${results.backends.memcached}, NATS at ${results.backends.nats}, all on the same machine.`,
    `- Raw results: [\`${jsonPath}\`](${jsonPath}); ${results.durationSeconds.toFixed(0)} s in all.`,
    "",
    `![Benchmark chart](${chartPath})`,
    "",
    `### Targets: ${met} of ${judged.length} met`,
    "",
    mdTable(["target", "scope", "value", "limit", "result"], targetRows(results)),
  ];
  for (const t of tables(results)) {
    parts.push("", `### ${t.title}`, "", ...(t.note ? [t.note, ""] : []), mdTable(t.head, t.rows));
  }
  return parts.join("\n");
}

const BEGIN = "<!-- bench:results:begin (generated by `npm run bench`; edit outside these markers) -->";
const END = "<!-- bench:results:end -->";

/** Replaces the generated part of BENCHMARKS.md, keeping everything written by hand around it. */
export function updateBenchmarksMd(path, generated) {
  const block = `${BEGIN}\n${generated}\n${END}`;
  if (!existsSync(path)) {
    writeFileSync(path, `# Benchmarks\n\n${block}\n`);
    return;
  }
  const text = readFileSync(path, "utf8");
  const start = text.indexOf(BEGIN);
  const end = text.indexOf(END);
  writeFileSync(
    path,
    start >= 0 && end > start
      ? text.slice(0, start) + block + text.slice(end + END.length)
      : `${text.trimEnd()}\n\n${block}\n`,
  );
}

// ---- chart ----

const esc = (s) => String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const COLORS = {
  direct: "#8d99a6",
  floor: "#f59e0b",
  gateway: "#2563eb",
  miss: "#dc2626",
  grid: "#e5e7eb",
  text: "#111827",
  dim: "#6b7280",
};

function text(x, y, s, { size = 12, anchor = "start", color = COLORS.text, weight = "normal", rotate } = {}) {
  const transform = rotate ? ` transform="rotate(${rotate} ${x} ${y})"` : "";
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" font-size="${size}" text-anchor="${anchor}" fill="${color}" font-weight="${weight}"${transform}>${esc(s)}</text>`;
}
const rect = (x, y, w, h, color, title) =>
  `<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${Math.max(0, w).toFixed(1)}" height="${Math.max(0, h).toFixed(1)}" fill="${color}">${title ? `<title>${esc(title)}</title>` : ""}</rect>`;
const line = (x1, y1, x2, y2, color, dash) =>
  `<line x1="${x1.toFixed(1)}" y1="${y1.toFixed(1)}" x2="${x2.toFixed(1)}" y2="${y2.toFixed(1)}" stroke="${color}" stroke-width="1"${dash ? ` stroke-dasharray="${dash}"` : ""}/>`;

/** Swatches of the given paths, laid out from x to the right. */
function legend(x, y, paths = ["direct", "gateway"]) {
  return paths
    .map((path, i) => rect(x + i * 70, y - 9, 10, 10, COLORS[path]) + text(x + i * 70 + 14, y, path))
    .join("");
}

/** Scenario 1: grouped bars of p50/p90/p99, direct, floor (when it ran) and gateway, log scale. */
function latencyPanel(results, top, width) {
  const ops = Object.entries(OPERATIONS)
    .map(([name, label]) => [
      label,
      results.scenarios.operations?.[name] && overhead(results.scenarios.operations[name]),
    ])
    .filter(([, o]) => o);
  if (!ops.length) return { svg: "", height: 0 };
  const height = 310;
  const left = 60;
  const plotTop = top + 40;
  const plotH = height - 110;
  const plotW = width - left - 20;
  const paths = ops.some(([, o]) => o.floor) ? ["direct", "floor", "gateway"] : ["direct", "gateway"];
  const values = ops.flatMap(([, o]) => [o.direct.p50, o.gateway.p99, o.direct.p99, o.floor?.p99 ?? 0]);
  const lo = 0.01;
  const hi = 10 ** Math.ceil(Math.log10(Math.max(1, ...values)));
  const y = (v) =>
    plotTop + plotH - ((Math.log10(Math.max(lo, v)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * plotH;
  const parts = [
    text(
      left,
      top + 16,
      `1. Latency at ${results.plan.s1.rate.toLocaleString("en-US")} req/s, open loop (ms, log scale)`,
      { size: 14, weight: "bold" },
    ),
    legend(width - 20 - paths.length * 70, top + 16, paths),
  ];
  for (let v = lo; v <= hi * 1.001; v *= 10) {
    parts.push(
      line(left, y(v), left + plotW, y(v), COLORS.grid),
      text(left - 6, y(v) + 4, String(Number(v.toPrecision(1))), { anchor: "end", size: 10, color: COLORS.dim }),
    );
  }
  const group = plotW / ops.length;
  const n = paths.length;
  const bar = Math.min(14, (group - 20) / (3 * n));
  ops.forEach(([label, o], i) => {
    const gx = left + i * group + (group - bar * 3 * n - 8) / 2;
    ["p50", "p90", "p99"].forEach((p, j) => {
      const x = gx + j * (bar * n + 4);
      paths.forEach((path, k) => {
        const v = o[path]?.[p];
        if (v === undefined) return;
        parts.push(
          rect(
            x + k * bar,
            y(v),
            bar,
            plotTop + plotH - y(v),
            COLORS[path],
            `${label} ${path} ${p}: ${v.toFixed(3)} ms`,
          ),
        );
      });
      parts.push(text(x + (bar * n) / 2, plotTop + plotH + 12, p, { anchor: "middle", size: 9, color: COLORS.dim }));
    });
    parts.push(text(left + i * group + group / 2, plotTop + plotH + 28, label, { anchor: "middle", size: 11 }));
    parts.push(
      text(left + i * group + group / 2, plotTop + plotH + 42, `Δp99 ${signed(o.diff.p99)} ms`, {
        anchor: "middle",
        size: 10,
        color: o.diff.p99 > 1 ? COLORS.miss : COLORS.dim,
      }),
    );
    if (o.floorDiff) {
      parts.push(
        text(left + i * group + group / 2, plotTop + plotH + 55, `floor Δp99 ${signed(o.floorDiff.p99)} ms`, {
          anchor: "middle",
          size: 10,
          color: COLORS.dim,
        }),
      );
    }
  });
  return { svg: parts.join("\n"), height };
}

/** Scenario 2: gateway ÷ direct (and floor ÷ direct) per concurrency, with the targets marked. */
function throughputPanel(results, top, width) {
  const ops = Object.entries(OPERATIONS)
    .map(([name, label]) => [
      name,
      label,
      results.scenarios.operations?.[name] && throughput(results.scenarios.operations[name]),
    ])
    .filter(([, , t]) => t);
  if (!ops.length) return { svg: "", height: 0 };
  const height = 270;
  const left = 60;
  const plotTop = top + 40;
  const plotH = height - 90;
  const plotW = width - left - 20;
  const paths = ops.some(([, , t]) => t[0].floor !== undefined) ? ["floor", "gateway"] : ["gateway"];
  const ratioOf = (r, path) => (path === "floor" ? r.floorRatio : r.ratio);
  const hi =
    Math.max(
      1.2,
      ...ops.flatMap(([, , t]) => t.flatMap((r) => paths.map((path) => ratioOf(r, path)))).filter(Number.isFinite),
    ) * 1.05;
  const y = (v) => plotTop + plotH - (Math.min(v, hi) / hi) * plotH;
  const parts = [
    text(left, top + 16, `2. Throughput ceiling: ${paths.join(" and ")} ops/s ÷ direct ops/s, closed loop`, {
      size: 14,
      weight: "bold",
    }),
    legend(width - 20 - paths.length * 70, top + 16, paths),
  ];
  for (let v = 0; v <= hi; v += hi > 3 ? 1 : 0.2) {
    parts.push(
      line(left, y(v), left + plotW, y(v), COLORS.grid),
      text(left - 6, y(v) + 4, v.toFixed(1), { anchor: "end", size: 10, color: COLORS.dim }),
    );
  }
  parts.push(line(left, y(1), left + plotW, y(1), COLORS.dim, "4 3"));
  const group = plotW / ops.length;
  const targets = { "memcached.cache.get": 0.6, "mysql.entity.set": 0.7 };
  const n = paths.length;
  ops.forEach(([name, label, t], i) => {
    const bar = Math.min(26, (group - 30) / (t.length * n));
    const gx = left + i * group + (group - bar * n * t.length - (t.length - 1) * 4) / 2;
    t.forEach((r, j) => {
      const x = gx + j * (bar * n + 4);
      paths.forEach((path, k) => {
        const raw = ratioOf(r, path);
        if (raw === undefined) return;
        const v = Number.isFinite(raw) ? raw : 0;
        const bx = x + k * bar;
        parts.push(
          rect(
            bx,
            y(v),
            bar,
            plotTop + plotH - y(v),
            COLORS[path],
            `${label} ${path} c${r.concurrency}: ${int(r[path])} / ${int(r.direct)} ops/s = ${v.toFixed(2)}`,
          ),
        );
        parts.push(text(bx + bar / 2, y(v) - 3, v.toFixed(2), { anchor: "middle", size: 9 }));
      });
      parts.push(
        text(x + (bar * n) / 2, plotTop + plotH + 12, `c${r.concurrency}`, {
          anchor: "middle",
          size: 9,
          color: COLORS.dim,
        }),
      );
      if (r.concurrency === 64 && targets[name] !== undefined) {
        parts.push(
          `<line x1="${(x - 3).toFixed(1)}" y1="${y(targets[name]).toFixed(1)}" x2="${(x + bar * n + 3).toFixed(1)}" y2="${y(targets[name]).toFixed(1)}" stroke="${COLORS.miss}" stroke-width="2"><title>target ≥ ${targets[name]} (gateway)</title></line>`,
        );
      }
    });
    parts.push(text(left + i * group + group / 2, plotTop + plotH + 28, label, { anchor: "middle", size: 11 }));
  });
  parts.push(
    text(left + plotW, top + 32, "red: gateway target at c64 · dashed: parity", {
      anchor: "end",
      size: 10,
      color: COLORS.dim,
    }),
  );
  return { svg: parts.join("\n"), height };
}

/** Scenario 3: ops/s of each door. */
function doorsPanel(results, top, width) {
  const doors = results.scenarios.doors && Object.entries(results.scenarios.doors);
  if (!doors) return { svg: "", height: 0 };
  const height = 230;
  const left = 60;
  const plotTop = top + 40;
  const plotH = height - 80;
  const plotW = width - left - 20;
  const hi = Math.max(...doors.map(([, d]) => d.opsPerSecond)) * 1.15 || 1;
  const y = (v) => plotTop + plotH - (v / hi) * plotH;
  const parts = [
    text(
      left,
      top + 16,
      `3. Doors: Entity Get on MySQL at concurrency ${results.plan.s3.concurrency} (ops/s; p99 in ms below)`,
      { size: 14, weight: "bold" },
    ),
  ];
  const step = 10 ** Math.floor(Math.log10(hi / 2));
  for (let v = 0; v <= hi; v += step * (hi / step > 8 ? 2 : 1)) {
    parts.push(
      line(left, y(v), left + plotW, y(v), COLORS.grid),
      text(left - 6, y(v) + 4, int(v), { anchor: "end", size: 10, color: COLORS.dim }),
    );
  }
  const group = plotW / doors.length;
  const bar = Math.min(50, group - 30);
  doors.forEach(([door, d], i) => {
    const x = left + i * group + (group - bar) / 2;
    parts.push(
      rect(
        x,
        y(d.opsPerSecond),
        bar,
        plotTop + plotH - y(d.opsPerSecond),
        COLORS.gateway,
        `${door}: ${int(d.opsPerSecond)} ops/s, p99 ${ms(d.summary.p99)} ms`,
      ),
    );
    parts.push(text(x + bar / 2, y(d.opsPerSecond) - 3, int(d.opsPerSecond), { anchor: "middle", size: 10 }));
    parts.push(text(x + bar / 2, plotTop + plotH + 14, door, { anchor: "middle", size: 11 }));
    parts.push(
      text(x + bar / 2, plotTop + plotH + 28, `p99 ${ms(d.summary.p99)}`, {
        anchor: "middle",
        size: 10,
        color: COLORS.dim,
      }),
    );
  });
  return { svg: parts.join("\n"), height };
}

/** Scenarios 4, 5 and the targets, as a strip of figures. */
function summaryPanel(results, top) {
  const s = results.scenarios;
  const rows = [];
  if (s.fanout?.gateway) {
    const g = s.fanout.gateway;
    const d = s.fanout.direct;
    rows.push(
      `4. Fan-out to ${int(g.streams)} streams at ${results.plan.s4.rate} Sets/s: gateway p50 ${ms(g.summary.p50)} / p99 ${ms(g.summary.p99)} ms, ${int(g.deliveredPerSecond)} deliveries/s` +
        (d ? `; direct p50 ${ms(d.summary.p50)} / p99 ${ms(d.summary.p99)} ms` : ""),
    );
  }
  if (s.idle?.gateway) {
    const g = s.idle.gateway;
    const b = s.idle.baseline;
    rows.push(
      `5. ${int(g.streams)} idle streams: gateway ${kib(g.rssPerStreamBytes)} RSS per stream, ${(g.idleCpuCores * 100).toFixed(2)}% of a core idle` +
        (b ? `; bare node:http2 ${kib(b.rssPerStreamBytes)}, ${(b.idleCpuCores * 100).toFixed(2)}%` : ""),
    );
  }
  if (s.policy)
    rows.push(
      s.policy.available
        ? `7. Rego policy: p50 ${s.policy.summaryUs.p50.toFixed(1)} µs, p99 ${s.policy.summaryUs.p99.toFixed(1)} µs`
        : "7. Rego policy: not available yet",
    );
  const judged = results.targets.filter((t) => t.judged && t.pass !== undefined);
  rows.push(
    judged.length
      ? `Targets: ${judged.filter((t) => t.pass).length} of ${judged.length} met; missed: ${
          judged
            .filter((t) => !t.pass)
            .map((t) => `${t.target} (${t.scope})`)
            .join(", ") || "none"
        }`
      : "Targets: not judged (smoke run)",
  );
  rows.push(`${machineLine(results)} · ${results.startedAt}`);
  const height = 24 + rows.length * 18;
  const parts = rows.map((r, i) =>
    text(60, top + 18 + i * 18, r.length > 170 ? `${r.slice(0, 167)}…` : r, {
      size: 11,
      color: i === rows.length - 1 ? COLORS.dim : COLORS.text,
    }),
  );
  return { svg: parts.join("\n"), height: height + 10 };
}

export function renderChart(results) {
  const width = 1000;
  let top = 10;
  const panels = [];
  for (const panel of [latencyPanel, throughputPanel, doorsPanel, summaryPanel]) {
    const { svg, height } = panel(results, top, width);
    if (!height) continue;
    panels.push(svg);
    top += height + 10;
  }
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${top}" viewBox="0 0 ${width} ${top}" font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    ...panels,
    "</svg>",
    "",
  ].join("\n");
}
