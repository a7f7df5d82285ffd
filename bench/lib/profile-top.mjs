#!/usr/bin/env node
// Summarises a V8 .cpuprofile (from `node --cpu-prof`): the functions with the
// most self time, and the packages/files that time falls in.
//   node bench/lib/profile-top.mjs FILE.cpuprofile [--top 30] [--callers FUNCTION]
// --callers lists the call stacks (5 frames up) through which FUNCTION's self time is reached.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: "string", default: "30" }, callers: { type: "string" } },
});
if (positionals.length !== 1) {
  console.error("usage: node bench/lib/profile-top.mjs FILE.cpuprofile [--top N] [--callers FUNCTION]");
  process.exit(2);
}
const profile = JSON.parse(readFileSync(positionals[0], "utf8"));
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const interval = new Map();
// timeDeltas[i] is the time before sample i; it is spent in samples[i].
for (let i = 0; i < profile.samples.length; i++) {
  const id = profile.samples[i];
  interval.set(id, (interval.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
}
let total = 0;
const fns = new Map();
const files = new Map();
const where = (url) => {
  if (!url) return "(native / V8)";
  const pnpm = /node_modules\/\.pnpm\/([^/]+)\//.exec(url);
  if (pnpm) return pnpm[1].replace(/@[\d.]+(_.*)?$/, "").replace(/\+/g, "/");
  const pkg = /\/packages\/([^/]+)\//.exec(url);
  if (pkg) return `@stategate/${pkg[1]}`;
  if (url.startsWith("node:")) return "node core";
  return url;
};
for (const [id, us] of interval) {
  const node = byId.get(id);
  const frame = node.callFrame;
  total += us;
  const name = frame.functionName || "(anonymous)";
  const key = `${name} ${frame.url ? `${frame.url.replace(/^.*\/(node_modules\/\.pnpm\/[^/]+\/node_modules\/|packages\/)/, "")}:${frame.lineNumber + 1}` : ""}`;
  fns.set(key, (fns.get(key) ?? 0) + us);
  const file = ["(idle)", "(program)", "(garbage collector)"].includes(name) ? name : where(frame.url);
  files.set(file, (files.get(file) ?? 0) + us);
}
const top = Number(values.top);
const pct = (us) => `${((us / total) * 100).toFixed(1).padStart(5)}%`;
console.log(`total ${(total / 1e6).toFixed(2)} s sampled\n\nself time by package:`);
for (const [k, us] of [...files].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`${pct(us)}  ${k}`);
console.log(`\ntop ${top} functions by self time:`);
for (const [k, us] of [...fns].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(us)}  ${k}`);

if (values.callers) {
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const label = (n) =>
    `${n.callFrame.functionName || "(anonymous)"}${n.callFrame.url ? ` ${n.callFrame.url.replace(/^.*\//, "")}:${n.callFrame.lineNumber + 1}` : ""}`;
  const stacks = new Map();
  for (const [id, us] of interval) {
    const node = byId.get(id);
    if (node.callFrame.functionName !== values.callers) continue;
    const chain = [];
    for (let at = parent.get(id); at !== undefined && chain.length < 5; at = parent.get(at))
      chain.push(label(byId.get(at)));
    const key = chain.join(" < ");
    stacks.set(key, (stacks.get(key) ?? 0) + us);
  }
  console.log(`\ncallers of ${values.callers}:`);
  for (const [k, us] of [...stacks].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(us)}  ${k}`);
}
