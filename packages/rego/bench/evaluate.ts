// Times the evaluation of a typical 20-line authorization policy, the one
// `npm run bench` times too (median and p99 over many runs, after a warm-up).
// Run from the repository root:
//   node --import tsx packages/rego/bench/evaluate.ts [iterations]
import { authzInput, POLICY, QUERY } from "../../../bench/lib/rego-policy.mjs";
import { compile } from "../src/index.js";

const iterations = Number(process.argv[2] ?? 200_000);
const started = performance.now();
const policy = compile([{ name: "authz.rego", source: POLICY }]);
const compileMs = performance.now() - started;
const inputs = [authzInput("acme"), authzInput("globex")];
if (policy.evaluate(QUERY, { input: inputs[0] }) !== true) throw new Error("should allow");
if (policy.evaluate(QUERY, { input: inputs[1] }) !== false) throw new Error("should deny");

for (let i = 0; i < 20_000; i++) policy.evaluate(QUERY, { input: inputs[i & 1] });
const ns = new Float64Array(iterations);
for (let i = 0; i < iterations; i++) {
  const t0 = process.hrtime.bigint();
  policy.evaluate(QUERY, { input: inputs[i & 1] });
  ns[i] = Number(process.hrtime.bigint() - t0);
}
ns.sort();
const at = (p: number) => (ns[Math.min(iterations - 1, Math.floor(iterations * p))]! / 1000).toFixed(2);
console.log(
  `compile ${compileMs.toFixed(1)} ms; evaluate over ${iterations} runs: median ${at(0.5)} µs, p99 ${at(0.99)} µs, max ${at(1)} µs`,
);
