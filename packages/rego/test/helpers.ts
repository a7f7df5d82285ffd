import assert from "node:assert/strict";
import type { EvaluateOptions, Policy } from "../src/index.js";
import { compile, RegoError } from "../src/index.js";

/** Compiles a module written without its package line (package test is added). */
export function policy(body: string, options?: { strictBuiltinErrors?: boolean }): Policy {
  return compile([{ name: "test.rego", source: `package test\n\n${body}` }], options);
}

/** The value of data.test.<rule> for a module body. */
export function value(body: string, rule = "p", options: EvaluateOptions = {}): unknown {
  return policy(body).evaluate(`data.test.${rule}`, options);
}

/** The value of `x` in the one solution of a query (undefined when there is none). */
export function q(query: string, options: EvaluateOptions = {}, modules = ""): unknown {
  const rows = policy(modules).query(query, options);
  assert.ok(rows.length <= 1, `expected at most one solution, got ${JSON.stringify(rows)}`);
  return rows[0]?.x;
}

/** Asserts that compiling fails with a RegoError of this code, at this line and column, with a message matching. */
export function refused(
  source: string,
  code: string,
  line: number | undefined,
  col: number | undefined,
  message: RegExp,
  name = "test.rego",
): RegoError {
  let caught: unknown;
  try {
    compile([{ name, source }]);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof RegoError, `expected a RegoError, got ${caught}`);
  assert.equal(caught.code, code, caught.message);
  assert.equal(caught.location?.file, name, caught.message);
  if (line !== undefined) assert.equal(caught.location?.line, line, caught.message);
  if (col !== undefined) assert.equal(caught.location?.col, col, caught.message);
  assert.match(caught.message, message);
  return caught;
}

/** Asserts that evaluating throws a RegoError of this code. */
export function throwsEval(run: () => unknown, code: string, message?: RegExp): void {
  assert.throws(run, (err: unknown) => {
    assert.ok(err instanceof RegoError, `expected a RegoError, got ${err}`);
    assert.equal(err.code, code, err.message);
    if (message) assert.match(err.message, message);
    return true;
  });
}
