import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Code } from "@connectrpc/connect";
import { codeToHttpStatus, codeToString } from "@connectrpc/connect/protocol-connect";
import { GraphQLError } from "graphql";
import { httpStatus } from "../src/errors.js";
import { grpcCodeName, withGrpcCodes } from "../src/front/graphql/errors.js";
import { repoRoot } from "./helpers.js";

/** Every code, walked from the enum, so a code added to it needs a row. */
const codes = Object.values(Code).filter((c): c is Code => typeof c === "number");

/** README's "Error codes and HTTP statuses" section. */
function readmeSection(): string {
  const readme = readFileSync(join(repoRoot, "README.md"), "utf8");
  const start = readme.indexOf("\n### Error codes and HTTP statuses\n");
  assert.ok(start >= 0, "README has the section");
  const end = readme.indexOf("\n## ", start + 1);
  return readme.slice(start, end < 0 ? undefined : end);
}

/** The section's table, by REST code name. */
function readmeTable(): Map<string, { graphql: string; status: number; connect: number }> {
  const rows = new Map<string, { graphql: string; status: number; connect: number }>();
  for (const m of readmeSection().matchAll(/^\| `(\w+)` \| `(\w+)` \| (\d+) \| (\d+) \|$/gm)) {
    const [, rest, graphql, status, connect] = m as unknown as [string, string, string, string, string];
    assert.ok(!rows.has(rest), `${rest} is listed once`);
    rows.set(rest, { graphql, status: Number(status), connect: Number(connect) });
  }
  return rows;
}

describe("the code → HTTP status table", () => {
  it("README lists every code with the status the gateway answers, and Connect's", () => {
    const rows = readmeTable();
    assert.equal(codes.length, 16);
    assert.deepEqual([...rows.keys()].sort(), codes.map(codeToString).sort(), "one row per code, and no other");
    for (const code of codes) {
      const name = codeToString(code);
      const row = rows.get(name)!;
      assert.equal(row.graphql, grpcCodeName(code), `${name}: GraphQL's extensions.code`);
      assert.equal(row.status, httpStatus[code], `${name}: httpStatus in src/errors.ts`);
      assert.equal(row.connect, codeToHttpStatus(code), `${name}: connect-es's codeToHttpStatus`);
    }
  });

  it("differs from connect-es's codeToHttpStatus only where README's text says why", () => {
    const differ = codes.filter((c) => httpStatus[c] !== codeToHttpStatus(c)).map(codeToString);
    assert.deepEqual(differ, ["failed_precondition"]);
    const prose = readmeSection()
      .split("\n")
      .filter((line) => !line.startsWith("|"))
      .join(" ");
    for (const name of differ) assert.ok(prose.includes(`\`${name}\``), `README explains ${name}`);
  });

  it("gives a GraphQL request that Yoga refuses the status of its code, as REST would", () => {
    const refused = (code: string, http: Record<string, unknown>) =>
      withGrpcCodes({ errors: [new GraphQLError("refused", { extensions: { code, http } })] }).errors?.[0]?.extensions;
    assert.deepEqual(refused("REQUEST_ENTITY_TOO_LARGE", { status: 413 }), {
      code: "RESOURCE_EXHAUSTED",
      http: { status: httpStatus[Code.ResourceExhausted] },
    });
    assert.deepEqual(refused("BAD_REQUEST", { status: 400 }), {
      code: "INVALID_ARGUMENT",
      http: { status: httpStatus[Code.InvalidArgument] },
    });
    // GraphQL over HTTP's own flag (200 to a client that accepts only application/json) is kept.
    assert.deepEqual(refused("GRAPHQL_PARSE_FAILED", { status: 400, spec: true }), {
      code: "INVALID_ARGUMENT",
      http: { status: 400, spec: true },
    });
    // A 405 answers the HTTP method, with its Allow header: it is not a code's status.
    assert.deepEqual(refused("BAD_REQUEST", { status: 405, headers: { Allow: "POST" } }), {
      code: "INVALID_ARGUMENT",
      http: { status: 405, headers: { Allow: "POST" } },
    });
  });
});
