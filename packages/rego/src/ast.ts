import type { Location } from "./errors.js";
import type { Scalar } from "./value.js";

/** A term: what can stand as an operand. Infix operators parse to calls of their built-ins (`a + b` is `plus(a, b)`). */
export type Term =
  | { t: "scalar"; value: Scalar; loc: Location }
  /** A variable; `_` is a wildcard, a fresh variable at each occurrence. */
  | { t: "var"; name: string; loc: Location }
  /** `head.a[b]`: `path` holds string scalars for the dotted parts. */
  | { t: "ref"; head: Term; path: Term[]; loc: Location }
  | { t: "array"; items: Term[]; loc: Location }
  | { t: "object"; entries: [Term, Term][]; loc: Location }
  | { t: "set"; items: Term[]; loc: Location }
  /** A call of a built-in or a function, by its dotted name. */
  | { t: "call"; name: string[]; args: Term[]; loc: Location }
  | { t: "arraycompr"; head: Term; body: Literal[]; loc: Location }
  | { t: "setcompr"; head: Term; body: Literal[]; loc: Location }
  | { t: "objectcompr"; key: Term; value: Term; body: Literal[]; loc: Location };

export type VarTerm = Extract<Term, { t: "var" }>;

/** An expression of a query. */
export type Expr =
  | { e: "term"; term: Term }
  | { e: "unify"; op: "=" | ":="; lhs: Term; rhs: Term }
  /** `some x, y`: declares local variables. */
  | { e: "some"; vars: VarTerm[] }
  /** `some v in xs` and `some k, v in xs`. */
  | { e: "somein"; key?: Term; value: Term; domain: Term }
  | { e: "every"; key?: VarTerm; value: VarTerm; domain: Term; body: Literal[] };

/** One expression of a query, possibly negated, with its `with` modifiers. */
export interface Literal {
  expr: Expr;
  negated: boolean;
  with: With[];
  loc: Location;
}

/** `with target as value`. */
export interface With {
  target: Term;
  value: Term;
  loc: Location;
}

/** One part of a rule head's reference: a name (dotted, or a string in brackets) or a term in brackets. */
export type HeadPart = { name: string; loc: Location } | { term: Term; loc: Location };

/** `else [:= value] [if] { body }`. */
export interface Else {
  value?: Term;
  body: Literal[];
  loc: Location;
}

/** A rule as written. */
export interface Rule {
  loc: Location;
  isDefault: boolean;
  /** The head reference, relative to the package: `allow`, `a.b.c`, `p[x]`. */
  ref: HeadPart[];
  /** "value": single-value rules (`p := v`, `p[k] := v`); "contains": multi-value; "function": has arguments. */
  kind: "value" | "contains" | "function";
  args?: Term[];
  /** The member of a multi-value rule. */
  member?: Term;
  /** The value; absent means `true`. */
  value?: Term;
  /** Several bodies mean OR; a rule written without one has one empty body. */
  bodies: Literal[][];
  elses: Else[];
}

export interface Import {
  /** E.g. ["data", "lib"], ["input", "claims"], ["rego", "v1"]. */
  path: string[];
  alias: string;
  loc: Location;
}

export interface Module {
  file: string;
  pkg: string[];
  pkgLoc: Location;
  imports: Import[];
  rules: Rule[];
}
