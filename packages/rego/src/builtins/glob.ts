import { BuiltinError } from "../errors.js";
import type { BuiltinTable } from "./args.js";
import { str, typeError } from "./args.js";

/**
 * One instruction of a compiled glob, a Thompson NFA: the consuming kinds
 * take one character (a code point), `split` and `jmp` take none.
 */
type Inst =
  | { op: "char"; c: number }
  /** One character that is not a delimiter (`?`, and the body of `*`). */
  | { op: "any" }
  /** One character, delimiters included (the body of `**`). */
  | { op: "anyAll" }
  | { op: "range"; lo: number; hi: number; not: boolean }
  | { op: "list"; cs: Set<number>; not: boolean }
  | { op: "split"; x: number; y: number }
  | { op: "jmp"; x: number }
  | { op: "match" };

const code = (c: string) => c.codePointAt(0)!;

/**
 * Compiles the glob syntax OPA takes (gobwas/glob): `*` any run without
 * delimiters, `**` any run, `?` one character that is not a delimiter,
 * `[abc]`, `[a-z]`, `[!abc]`, `{a,b}` alternatives, `\` escapes. A class is
 * either one range `a-z` or a list of characters (where `-` is an ordinary
 * character and `\` escapes); anything else, such as two ranges `[a-z0-9]`,
 * is a syntax error in OPA, so it is here too.
 */
function compileGlobProgram(pattern: string): Inst[] {
  const chars = Array.from(pattern);
  const prog: Inst[] = [];
  let i = 0;
  const emit = (inst: Inst): number => prog.push(inst) - 1;
  /** `*` or `**`: split to the body or past it; the body loops back. */
  const star = (body: "any" | "anyAll") => {
    const split = emit({ op: "split", x: prog.length + 1, y: -1 });
    emit({ op: body });
    emit({ op: "jmp", x: split });
    (prog[split] as { y: number }).y = prog.length;
  };
  const cls = () => {
    let not = false;
    if (chars[i] === "!") {
      not = true;
      i++;
    }
    if (chars[i] !== undefined && chars[i + 1] === "-") {
      const lo = chars[i]!;
      const hi = chars[i + 2];
      if (hi === undefined) throw new BuiltinError("glob: unexpected end of input in a character range");
      if (chars[i + 3] !== "]") {
        throw new BuiltinError(
          "glob: expected close range character (a class holds one range, such as [a-z], or a list, such as [abc])",
        );
      }
      if (code(hi) < code(lo)) throw new BuiltinError("glob: range hi character is less than lo");
      emit({ op: "range", lo: code(lo), hi: code(hi), not });
      i += 4;
      return;
    }
    const cs = new Set<number>();
    for (; i < chars.length; i++) {
      const c = chars[i]!;
      if (c === "\\") {
        i++;
        if (i >= chars.length) break;
        cs.add(code(chars[i]!));
      } else if (c === "]") {
        if (cs.size === 0) throw new BuiltinError("glob: could not parse range (empty character class)");
        emit({ op: "list", cs, not });
        i++;
        return;
      } else cs.add(code(c));
    }
    throw new BuiltinError("glob: unexpected end of input: unclosed [");
  };
  const sequence = (inAlt: boolean): void => {
    while (i < chars.length) {
      const c = chars[i]!;
      if (inAlt && (c === "," || c === "}")) return;
      i++;
      switch (c) {
        case "\\": {
          const n = chars[i++];
          if (n === undefined) throw new BuiltinError("glob: trailing backslash");
          emit({ op: "char", c: code(n) });
          break;
        }
        case "*":
          if (chars[i] === "*") {
            i++;
            star("anyAll");
          } else star("any");
          break;
        case "?":
          emit({ op: "any" });
          break;
        case "[":
          cls();
          break;
        case "{": {
          // split(alt1, split(alt2, … altN)); each alternative jumps past the last.
          const jumps: number[] = [];
          while (true) {
            const split = emit({ op: "split", x: prog.length + 1, y: -1 });
            sequence(true);
            jumps.push(emit({ op: "jmp", x: -1 }));
            (prog[split] as { y: number }).y = prog.length;
            const end = chars[i++];
            if (end === "}") break;
            if (end !== ",") throw new BuiltinError("glob: unclosed {");
          }
          // The last split's other branch leads nowhere: make it a dead end.
          emit({ op: "list", cs: new Set(), not: false });
          for (const j of jumps) (prog[j] as { x: number }).x = prog.length;
          break;
        }
        default:
          emit({ op: "char", c: code(c) });
      }
    }
    if (inAlt) throw new BuiltinError("glob: unclosed {");
  };
  sequence(false);
  emit({ op: "match" });
  return prog;
}

/** Whether instruction `inst` takes character `c`. */
function takes(inst: Inst, c: number, delimiters: ReadonlySet<number>): boolean {
  switch (inst.op) {
    case "char":
      return inst.c === c;
    case "any":
      return !delimiters.has(c);
    case "anyAll":
      return true;
    case "range":
      return (c >= inst.lo && c <= inst.hi) !== inst.not;
    case "list":
      return inst.cs.has(c) !== inst.not;
    default:
      return false;
  }
}

/**
 * Runs the NFA over `s`, all its states at once (Thompson's construction):
 * time is at most the input's length times the pattern's, never exponential,
 * whatever `*`, `**` and `{…}` the pattern nests.
 */
function runGlob(prog: readonly Inst[], delimiters: ReadonlySet<number>, s: string): boolean {
  const seen = new Int32Array(prog.length).fill(-1);
  let step = 0;
  /** Adds `from` and every state it reaches without taking a character. */
  const add = (list: number[], from: number) => {
    const stack = [from];
    while (stack.length > 0) {
      const pc = stack.pop()!;
      if (seen[pc] === step) continue;
      seen[pc] = step;
      const inst = prog[pc]!;
      if (inst.op === "split") stack.push(inst.y, inst.x);
      else if (inst.op === "jmp") stack.push(inst.x);
      else list.push(pc);
    }
  };
  let states: number[] = [];
  add(states, 0);
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    step++;
    const next: number[] = [];
    for (const pc of states) if (takes(prog[pc]!, c, delimiters)) add(next, pc + 1);
    if (next.length === 0) return false;
    states = next;
  }
  return states.some((pc) => prog[pc]!.op === "match");
}

const cache = new Map<string, Inst[]>();

function compileGlob(pattern: string): Inst[] {
  let prog = cache.get(pattern);
  if (!prog) {
    prog = compileGlobProgram(pattern);
    if (cache.size >= 1000) cache.delete(cache.keys().next().value!);
    cache.set(pattern, prog);
  }
  return prog;
}

/** glob.match and glob.quote_meta. */
export const globBuiltins: BuiltinTable = {
  "glob.match": {
    arity: 3,
    fn: (args) => {
      const pattern = str(args, 0);
      const d = args[1]!;
      const delimiters = new Set<number>();
      if (Array.isArray(d)) {
        for (const x of d) {
          // OPA takes each delimiter as one character (a rune): "" or "::" is an error.
          if (typeof x !== "string" || Array.from(x).length !== 1) {
            throw new BuiltinError("operand 2 must be array of runes (one-character strings)");
          }
          delimiters.add(code(x));
        }
        // An empty array means the default, ".".
        if (d.length === 0) delimiters.add(code("."));
      } else if (d !== null) throw typeError(1, "one of {null, array}", d);
      return runGlob(compileGlob(pattern), delimiters, str(args, 2));
    },
    check: ([p, d]) => {
      if (typeof p !== "string" || !(d === null || Array.isArray(d))) return undefined;
      try {
        compileGlob(p);
        return undefined;
      } catch (err) {
        return (err as Error).message;
      }
    },
  },
  "glob.quote_meta": { arity: 1, fn: (args) => str(args, 0).replace(/[*?\\[\]{}]/g, "\\$&") },
};
