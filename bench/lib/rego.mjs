// Scenario 7: how long @stategate/rego takes to evaluate a typical 20-line
// authorization policy. The engine is being built (issue 6); until the package
// exports `compile`, the scenario reports "not available" with the reason.
// Its evaluation API is not settled yet either, so the common shapes are
// tried, and a shape counts only if it allows an allowed input AND denies a
// denied one: nothing is timed that has not been seen to decide correctly.
import * as hdr from "hdr-histogram-js";

export const POLICY = `package stategate.authz

import rego.v1

default allow := false

writes := {"/stategate.v1.EntityService/Set", "/stategate.v1.EntityService/Edit", "/stategate.v1.EntityService/Del"}

# A tenant reads its own domain.
allow if {
	input.claims.tenant == input.body.domain
	not input.method in writes
}

# A tenant's writers write to it.
allow if {
	input.claims.tenant == input.body.domain
	input.method in writes
	"writer" in input.claims.roles
}

# Operators, from the ops tooling only.
allow if {
	"admin" in input.claims.roles
	startswith(input.metadata["x-request-id"], "ops-")
}
`;

const baseInput = (overrides = {}) => ({
  claims: { sub: "ada", tenant: "acme", roles: ["reader", "writer"], exp: 4102444800 },
  method: "/stategate.v1.EntityService/Set",
  metadata: { "content-type": "application/grpc", "x-request-id": "req-1", "user-agent": "bench" },
  body: { domain: "acme", type: "user", key: "ada", values: { name: "Ada", langs: ["en", "fr"] } },
  client_stream: false,
  server_stream: false,
  ...overrides,
});

export const ALLOWED = baseInput();
export const DENIED = baseInput({ body: { domain: "globex", type: "user", key: "ada", values: { name: "Ada" } } });
const QUERY = "data.stategate.authz.allow";

/** true / false / undefined out of whatever an evaluation returned. */
function decision(result) {
  if (typeof result === "boolean") return result;
  if (result === undefined || result === null) return undefined;
  if (typeof result !== "object") return undefined;
  for (const key of ["allow", "value", "result", "decision"]) {
    if (key in result) return decision(result[key]);
  }
  if (Array.isArray(result) && result.length > 0) return decision(result[0]);
  return undefined;
}

const isThenable = (v) => v !== null && typeof v === "object" && typeof v.then === "function";

/** The ways an evaluation could be called, each `(input) => result`. */
function candidates(rego, policy) {
  const out = [];
  // The shape packages/rego is being built with (issue 6) comes first.
  if (typeof policy?.evaluate === "function") {
    out.push([`policy.evaluate("${QUERY}", { input })`, (input) => policy.evaluate(QUERY, { input })]);
  }
  for (const name of ["evaluate", "eval", "decide", "query", "run"]) {
    if (typeof policy?.[name] === "function") {
      out.push([`policy.${name}(input)`, (input) => policy[name](input)]);
      out.push([`policy.${name}("${QUERY}", input)`, (input) => policy[name](QUERY, input)]);
      out.push([`policy.${name}(input, "${QUERY}")`, (input) => policy[name](input, QUERY)]);
      out.push([`policy.${name}({ input })`, (input) => policy[name]({ input })]);
    }
    if (typeof rego[name] === "function") {
      out.push([`${name}(policy, input)`, (input) => rego[name](policy, input)]);
      out.push([`${name}(policy, "${QUERY}", input)`, (input) => rego[name](policy, QUERY, input)]);
    }
  }
  if (typeof policy === "function") out.push(["policy(input)", (input) => policy(input)]);
  return out;
}

async function compilePolicy(rego) {
  const attempts = [
    () => rego.compile(POLICY),
    () => rego.compile([POLICY]),
    () => rego.compile({ "policy.rego": POLICY }),
  ];
  let lastError;
  for (const attempt of attempts) {
    try {
      let policy = attempt();
      if (isThenable(policy)) policy = await policy;
      if (policy !== undefined && policy !== null) return policy;
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError ?? new Error("compile() returned nothing");
}

/** job: { iterations, warmup }. */
export async function runRego({ iterations, warmup }) {
  let rego;
  try {
    rego = await import("@stategate/rego");
  } catch (error) {
    return { available: false, reason: `@stategate/rego cannot be loaded: ${error.message}` };
  }
  if (typeof rego.compile !== "function") {
    return { available: false, reason: "@stategate/rego does not export a compile function yet (issue 6)" };
  }
  let policy;
  const compileStarted = performance.now();
  try {
    policy = await compilePolicy(rego);
  } catch (error) {
    return { available: false, reason: `compile() refused the benchmark policy: ${error?.message ?? error}` };
  }
  const compileMs = performance.now() - compileStarted;
  let chosen;
  const tried = [];
  for (const [label, call] of candidates(rego, policy)) {
    tried.push(label);
    try {
      const allowed = call(ALLOWED);
      const denied = call(DENIED);
      const sync = !isThenable(allowed);
      const a = decision(sync ? allowed : await allowed);
      const d = decision(isThenable(denied) ? await denied : denied);
      if (a === true && d !== true) {
        chosen = { label, call, sync };
        break;
      }
    } catch {
      // not this shape
    }
  }
  if (!chosen) {
    return {
      available: false,
      reason: `compile() exists, but no evaluation call decided the policy correctly (tried: ${tried.join("; ") || "none"})`,
    };
  }
  const histogram = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 60e9,
    numberOfSignificantValueDigits: 3,
  });
  const inputs = [ALLOWED, DENIED];
  for (let i = 0; i < warmup; i++) {
    const r = chosen.call(inputs[i & 1]);
    if (!chosen.sync) await r;
  }
  let allowedCount = 0;
  const started = performance.now();
  for (let i = 0; i < iterations; i++) {
    const t0 = process.hrtime.bigint();
    let r = chosen.call(inputs[i & 1]);
    if (!chosen.sync) r = await r;
    histogram.recordValue(Math.max(1, Number(process.hrtime.bigint() - t0)));
    if (decision(r) === true) allowedCount++;
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
