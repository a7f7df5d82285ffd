// The authorization policy the Rego benchmarks time, shared by scenario 7
// (bench/lib/rego.mjs) and packages/rego/bench/evaluate.ts: a typical 20-line
// policy, the rule they query, and the input of a gateway call it decides.

/** The policy: tenants read their own domain, writers write to it, operators do anything from ops tooling. */
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

/** The rule both benchmarks evaluate. */
export const QUERY = "data.stategate.authz.allow";

/** The input of a Set on `domain` by ada, a reader and writer of tenant acme: allowed for "acme" only. */
export const authzInput = (domain) => ({
  claims: { sub: "ada", tenant: "acme", roles: ["reader", "writer"], exp: 4102444800 },
  method: "/stategate.v1.EntityService/Set",
  metadata: { "content-type": "application/grpc", "x-request-id": "req-1", "user-agent": "bench" },
  body: { domain, type: "user", key: "ada", values: { name: "Ada", langs: ["en", "fr"] } },
  client_stream: false,
  server_stream: false,
});
