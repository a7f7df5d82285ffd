/** Where something is in a policy: the module name given to `compile()`, 1-based line and column. */
export interface Location {
  readonly file: string;
  readonly line: number;
  readonly col: number;
}

/**
 * What went wrong, with OPA's error codes: `rego_parse_error`,
 * `rego_compile_error`, `rego_unsafe_var_error`, `rego_type_error` and
 * `rego_recursion_error` stop `compile()`; the `eval_*` codes come from an
 * evaluation.
 */
export type RegoErrorCode =
  | "rego_parse_error"
  | "rego_compile_error"
  | "rego_unsafe_var_error"
  | "rego_type_error"
  | "rego_recursion_error"
  | "eval_conflict_error"
  | "eval_builtin_error"
  | "eval_type_error"
  | "eval_recursion_error";

/**
 * The one error type of this package. Its message reads
 * `file:line:col: code: reason`, so a policy author can go straight to the spot.
 */
export class RegoError extends Error {
  override readonly name = "RegoError";
  constructor(
    readonly code: RegoErrorCode,
    /** The reason alone, without location and code. */
    readonly reason: string,
    readonly location?: Location,
  ) {
    super(location ? `${location.file}:${location.line}:${location.col}: ${code}: ${reason}` : `${code}: ${reason}`);
  }
}

/**
 * Thrown by a built-in on bad operands or input; the evaluator turns it into
 * undefined (OPA's default) or, with `strictBuiltinErrors`, into a RegoError.
 */
export class BuiltinError extends Error {
  constructor(
    message: string,
    readonly code: "eval_type_error" | "eval_builtin_error" = "eval_builtin_error",
  ) {
    super(message);
  }
}
