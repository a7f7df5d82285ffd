// Scenario 7: how long @stategate/rego takes to evaluate a typical 20-line
// authorization policy: compiled once with `compile()`, then evaluated with
// `policy.evaluate("data.stategate.authz.allow", { input })`, allowed and
// denied inputs alternating. Nothing is timed before both inputs have been
// seen to decide correctly; the scenario reports "not available", with the
// reason, only if the package cannot be loaded or refuses the policy.
import * as hdr from "hdr-histogram-js";
import { authzInput, POLICY, QUERY } from "./rego-policy.mjs";

export const ALLOWED = authzInput("acme");
export const DENIED = authzInput("globex");

/** job: { iterations, warmup }. */
export async function runRego({ iterations, warmup }) {
  let rego;
  try {
    rego = await import("@stategate/rego");
  } catch (error) {
    return { available: false, reason: `@stategate/rego cannot be loaded: ${error.message}` };
  }
  let policy;
  const compileStarted = performance.now();
  try {
    policy = rego.compile([{ name: "policy.rego", source: POLICY }]);
  } catch (error) {
    return { available: false, reason: `compile() refused the benchmark policy: ${error?.message ?? error}` };
  }
  const compileMs = performance.now() - compileStarted;
  const chosen = {
    label: `policy.evaluate("${QUERY}", { input })`,
    call: (input) => policy.evaluate(QUERY, { input }),
  };
  const a = chosen.call(ALLOWED);
  const d = chosen.call(DENIED);
  if (a !== true || d === true) {
    return { available: false, reason: `the policy decided wrongly: allowed input gave ${a}, denied input gave ${d}` };
  }
  const histogram = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 60e9,
    numberOfSignificantValueDigits: 3,
  });
  const inputs = [ALLOWED, DENIED];
  for (let i = 0; i < warmup; i++) chosen.call(inputs[i & 1]);
  let allowedCount = 0;
  const started = performance.now();
  for (let i = 0; i < iterations; i++) {
    const t0 = process.hrtime.bigint();
    const r = chosen.call(inputs[i & 1]);
    histogram.recordValue(Math.max(1, Number(process.hrtime.bigint() - t0)));
    if (r === true) allowedCount++;
  }
  const elapsedMs = performance.now() - started;
  const us = (p) => histogram.getValueAtPercentile(p) / 1000;
  return {
    available: true,
    api: chosen.label,
    compileMs,
    iterations,
    allowed: allowedCount,
    // Inputs alternate allowed / denied, so exactly half must be allowed.
    decisionsCorrect: allowedCount === Math.ceil(iterations / 2),
    evaluationsPerSecond: (iterations * 1000) / elapsedMs,
    summaryUs: { p50: us(50), p90: us(90), p99: us(99), max: histogram.maxValue / 1000 },
  };
}
