// Times the evaluation of a typical 20-line authorization policy (median and
// p99 over many runs, after a warm-up). Run from the repository root:
//   node --import tsx packages/rego/bench/evaluate.ts [iterations]
import { compile } from "../src/index.js";

const POLICY = `package stategate.authz

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

const input = (domain: string) => ({
  claims: { sub: "ada", tenant: "acme", roles: ["reader", "writer"], exp: 4102444800 },
  method: "/stategate.v1.EntityService/Set",
  metadata: { "content-type": "application/grpc", "x-request-id": "req-1", "user-agent": "bench" },
  body: { domain, type: "user", key: "ada", values: { name: "Ada", langs: ["en", "fr"] } },
  client_stream: false,
  server_stream: false,
});

const iterations = Number(process.argv[2] ?? 200_000);
const started = performance.now();
const policy = compile([{ name: "authz.rego", source: POLICY }]);
const compileMs = performance.now() - started;
const inputs = [input("acme"), input("globex")];
if (policy.evaluate("data.stategate.authz.allow", { input: inputs[0] }) !== true) throw new Error("should allow");
if (policy.evaluate("data.stategate.authz.allow", { input: inputs[1] }) !== false) throw new Error("should deny");

for (let i = 0; i < 20_000; i++) policy.evaluate("data.stategate.authz.allow", { input: inputs[i & 1] });
const ns = new Float64Array(iterations);
for (let i = 0; i < iterations; i++) {
  const t0 = process.hrtime.bigint();
  policy.evaluate("data.stategate.authz.allow", { input: inputs[i & 1] });
  ns[i] = Number(process.hrtime.bigint() - t0);
}
ns.sort();
const at = (p: number) => (ns[Math.min(iterations - 1, Math.floor(iterations * p))]! / 1000).toFixed(2);
console.log(
  `compile ${compileMs.toFixed(1)} ms; evaluate over ${iterations} runs: median ${at(0.5)} µs, p99 ${at(0.99)} µs, max ${at(1)} µs`,
);
