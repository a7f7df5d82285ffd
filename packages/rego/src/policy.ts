import type { Term } from "./ast.js";
import { compileBody, kFalse } from "./compile/body.js";
import type { Program } from "./compile/build.js";
import { buildProgram } from "./compile/build.js";
import { Safety } from "./compile/safety.js";
import type { Globals, VarInfo } from "./compile/scope.js";
import { Resolver, Scope, Unit } from "./compile/scope.js";
import type { Gen, Stage } from "./compile/values.js";
import { value } from "./compile/values.js";
import { RegoError } from "./errors.js";
import type { Node } from "./eval/program.js";
import type { EvalEnv } from "./eval/runtime.js";
import { Ctx, Frame } from "./eval/runtime.js";
import { parseModule, parseQuery } from "./parser.js";
import type { Value } from "./value.js";
import { isObject, toJson } from "./value.js";

/** A policy file: its name (shown in error locations) and its Rego source. */
export interface RegoModule {
  name: string;
  source: string;
}

/** How a policy is compiled. */
export interface CompileOptions {
  /**
   * Built-in errors (a type mismatch, `to_number("x")`, a division by zero)
   * make the expression undefined, as OPA does by default. With this set they
   * stop the evaluation with a RegoError instead.
   */
  strictBuiltinErrors?: boolean;
}

/** The documents of one evaluation. */
export interface EvaluateOptions {
  /** The `input` document; absent means undefined. Must be JSON (what JSON.parse returns). */
  input?: unknown;
  /** The base `data` document (an object); rules are merged over it. */
  data?: unknown;
  /** Receives what `print()` writes; by default it is dropped. */
  print?: (message: string) => void;
  /** What `time.now_ns()` reports; by default the clock at its first call in the evaluation. */
  now?: Date;
}

/** A compiled policy: evaluate it as often as needed, nothing is parsed again. */
export interface Policy {
  /** The packages of the modules, e.g. ["stategate.authz"]. */
  readonly packages: readonly string[];
  /** Where the rules are, sorted: e.g. ["data.stategate.authz.allow", "data.stategate.authz.deny"]. */
  readonly rules: readonly string[];
  /**
   * The value of a reference into `data`, such as `"data.stategate.authz.allow"`
   * or `["stategate", "authz", "allow"]`, as JSON (sets become sorted arrays);
   * undefined when the policy does not define it.
   */
  evaluate(ref: string | readonly string[], options?: EvaluateOptions): unknown;
  /**
   * Runs a query such as `x := data.lib.f(input.y); x > 1` and returns one
   * object of variable bindings per solution ([] when there is none).
   */
  query(query: string, options?: EvaluateOptions): Record<string, unknown>[];
}

const noGlobals = (): Globals => ({ pkg: [], ruleNames: new Set(), imports: new Map() });

/** Cached compiled references and queries per policy, bounded so that ad-hoc strings cannot grow it forever. */
class Lru<T> {
  private readonly map = new Map<string, T>();
  constructor(private readonly max: number) {}
  get(key: string, make: () => T): T {
    let v = this.map.get(key);
    if (v === undefined) {
      v = make();
      if (this.map.size >= this.max) this.map.delete(this.map.keys().next().value!);
      this.map.set(key, v);
    }
    return v;
  }
}

class CompiledPolicy implements Policy {
  private readonly refs = new Lru<(c: Ctx) => Value | undefined>(256);
  private readonly queries = new Lru<(c: Ctx) => Record<string, unknown>[]>(256);
  readonly rules: readonly string[];

  constructor(
    private readonly program: Program,
    readonly packages: readonly string[],
    private readonly strict: boolean,
  ) {
    const out: string[] = [];
    const visit = (n: Node) => {
      if (n.hasRules) out.push(["data", ...n.path].join("."));
      for (const c of n.children.values()) visit(c);
    };
    visit(program.root);
    this.rules = out.sort();
  }

  private ctx(options: EvaluateOptions): Ctx {
    const data = options.data ?? {};
    if (!isObject(data as Value)) throw new TypeError("data must be an object");
    const env: EvalEnv = { strict: this.strict, print: options.print };
    if (options.now) env.nowNs = options.now.getTime() * 1e6;
    return new Ctx(options.input as Value | undefined, data as Value, env);
  }

  evaluate(ref: string | readonly string[], options: EvaluateOptions = {}): unknown {
    const key = typeof ref === "string" ? ref : JSON.stringify(ref);
    const run = this.refs.get(key, () => this.compileRef(ref));
    const v = run(this.ctx(options));
    return v === undefined ? undefined : toJson(v);
  }

  query(query: string, options: EvaluateOptions = {}): Record<string, unknown>[] {
    const run = this.queries.get(query, () => this.compileQuery(query));
    return run(this.ctx(options));
  }

  private gen(resolver: Resolver, unit: Unit): Gen {
    return { r: resolver, safety: new Safety(resolver), unit, root: this.program.root, node: undefined };
  }

  private compileRef(ref: string | readonly string[]): (c: Ctx) => Value | undefined {
    let term: Term;
    const loc = { file: "query", line: 1, col: 1 };
    if (typeof ref === "string") {
      const lits = parseQuery(ref);
      const e = lits[0]?.expr;
      const t = e?.e === "term" ? e.term : undefined;
      const head = t?.t === "ref" ? t.head : t;
      if (
        lits.length !== 1 ||
        lits[0]!.negated ||
        lits[0]!.with.length > 0 ||
        head?.t !== "var" ||
        head.name !== "data"
      ) {
        throw new RegoError(
          "rego_parse_error",
          `expected a reference into data, such as data.pkg.rule, got "${ref}"`,
          loc,
        );
      }
      term = t!;
    } else {
      term = {
        t: "ref",
        head: { t: "var", name: "data", loc },
        path: ref.map((p) => ({ t: "scalar", value: p, loc })),
        loc,
      };
    }
    const unit = new Unit();
    const resolver = new Resolver(noGlobals(), this.program.root);
    resolver.term(term, new Scope(unit, undefined));
    const stages: Stage[] = [];
    const get = value(this.gen(resolver, unit), term, new Set(), stages);
    if (stages.length > 0) {
      throw new RegoError("rego_compile_error", "a reference with variables has several values: use query()", loc);
    }
    return (c) => get(new Frame(unit.slots, c));
  }

  private compileQuery(query: string): (c: Ctx) => Record<string, unknown>[] {
    const lits = parseQuery(query);
    const unit = new Unit();
    const scope = new Scope(unit, undefined);
    const resolver = new Resolver(noGlobals(), this.program.root);
    resolver.body(lits, scope);
    const named = [...scope.vars.values()].map((x) => x.v);
    const body = compileBody(this.gen(resolver, unit), lits, new Set<VarInfo>(), (after) => {
      const shown = named.filter((v) => after.has(v));
      return (f) => {
        const row: Record<string, unknown> = {};
        for (const v of shown) row[v.name] = toJson(f.v[v.slot] as Value);
        (f.acc as Record<string, unknown>[]).push(row);
        return false;
      };
    });
    return (c) => {
      const f = new Frame(unit.slots, c);
      f.acc = [];
      body(f, kFalse);
      return f.acc as Record<string, unknown>[];
    };
  }
}

/**
 * Compiles Rego v1 modules. A syntax error, an unknown built-in, an unsafe
 * variable or anything this engine does not support throws a RegoError that
 * names the file, line and column.
 *
 * @example
 * const policy = compile([{ name: "authz.rego", source: `
 *   package authz
 *   default allow := false
 *   allow if input.user == "admin"
 * ` }]);
 * policy.evaluate("data.authz.allow", { input: { user: "admin" } }); // true
 */
export function compile(modules: readonly RegoModule[] | string, options: CompileOptions = {}): Policy {
  const list = typeof modules === "string" ? [{ name: "policy.rego", source: modules }] : modules;
  const parsed = list.map((m) => parseModule(m.source, m.name));
  const program = buildProgram(parsed);
  const packages = [...new Set(parsed.map((m) => m.pkg.join(".")))];
  return new CompiledPolicy(program, packages, options.strictBuiltinErrors === true);
}
