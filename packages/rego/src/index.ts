/**
 * An embedded Rego (OPA v1 syntax) interpreter: policies are compiled once
 * into closures and evaluated per call.
 *
 * @example
 * import { compile } from "@stategate/rego";
 * const policy = compile("package authz\n\ndefault allow := false\n\nallow if input.user == \"admin\"");
 * policy.evaluate("data.authz.allow", { input: { user: "admin" } }); // true
 */
export type { Location, RegoErrorCode } from "./errors.js";
export { RegoError } from "./errors.js";
export { parseCount } from "./parser.js";
export type { CompileOptions, EvaluateOptions, Policy, RegoModule } from "./policy.js";
export { compile } from "./policy.js";

import { builtins } from "./builtins/index.js";

/** The names of the built-in functions this engine implements, sorted. A policy calling any other is refused. */
export function supportedBuiltins(): string[] {
  return [...builtins.keys()].filter((n) => !n.startsWith("internal.")).sort();
}
