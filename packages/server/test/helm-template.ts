import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse, stringify } from "yaml";

// No helm here: this renders a chart's templates with the part of Go's
// text/template and Helm's functions that deploy/helm/stategate uses, so the
// test can check what the chart produces, not only what its values say.
// Anything else (a function, an action, a value that is missing) throws, so a
// template that grows past this subset fails the test instead of rendering
// wrong: extend this file, or keep the chart simple.

type Value = unknown;
type Scope = Map<string, Value>;

interface Text {
  kind: "text";
  text: string;
}
interface Action {
  kind: "action";
  pipeline: string;
}
interface Range {
  kind: "range";
  vars: string[];
  pipeline: string;
  body: Node[];
}
interface If {
  kind: "if";
  pipeline: string;
  body: Node[];
  otherwise: Node[];
}
type Node = Text | Action | Range | If;

/** The text between `{{` and `}}`, and whether each side trims the whitespace next to it. */
interface Tag {
  body: string;
  trimLeft: boolean;
  trimRight: boolean;
}

/** Splits a template into texts and tags, applying `{{-` and `-}}`. */
function lex(source: string): (string | Tag)[] {
  const out: (string | Tag)[] = [];
  let at = 0;
  while (at < source.length) {
    const open = source.indexOf("{{", at);
    if (open < 0) {
      out.push(source.slice(at));
      break;
    }
    out.push(source.slice(at, open));
    const close = source.indexOf("}}", open);
    if (close < 0) throw new Error(`unclosed action at ${open}`);
    let body = source.slice(open + 2, close);
    const trimLeft = /^-\s/.test(body);
    const trimRight = /\s-$/.test(body);
    if (trimLeft) body = body.slice(1);
    if (trimRight) body = body.slice(0, -1);
    out.push({ body: body.trim(), trimLeft, trimRight });
    at = close + 2;
  }
  // Trim markers eat the white space (newlines included) on their side.
  for (let i = 0; i < out.length; i++) {
    const tag = out[i];
    if (typeof tag === "string") continue;
    if (tag?.trimLeft && typeof out[i - 1] === "string") out[i - 1] = (out[i - 1] as string).replace(/\s+$/, "");
    if (tag?.trimRight && typeof out[i + 1] === "string") out[i + 1] = (out[i + 1] as string).replace(/^\s+/, "");
  }
  return out;
}

/** Parses a template into its nodes, collecting `define`s into `defines`. */
function parseTemplate(source: string, defines: Map<string, Node[]>, name: string): Node[] {
  const tokens = lex(source);
  let i = 0;
  const block = (ends: string[]): { nodes: Node[]; end: string } => {
    const nodes: Node[] = [];
    while (i < tokens.length) {
      const token = tokens[i++]!;
      if (typeof token === "string") {
        if (token !== "") nodes.push({ kind: "text", text: token });
        continue;
      }
      const { body } = token;
      const word = /^\S+/.exec(body)?.[0] ?? "";
      if (body.startsWith("/*")) continue;
      if (ends.includes(word)) return { nodes, end: word };
      if (word === "define") {
        const defined = /^define\s+"([^"]+)"$/.exec(body);
        if (!defined) throw new Error(`${name}: bad define: ${body}`);
        defines.set(defined[1]!, block(["end"]).nodes);
      } else if (word === "range") {
        const m = /^range\s+(?:(\$\w+)(?:\s*,\s*(\$\w+))?\s*:=\s*)?(.+)$/.exec(body);
        if (!m) throw new Error(`${name}: bad range: ${body}`);
        const vars = [m[1], m[2]].filter((v): v is string => v !== undefined);
        nodes.push({ kind: "range", vars, pipeline: m[3]!, body: block(["end"]).nodes });
      } else if (word === "if") {
        const body1 = block(["else", "end"]);
        const otherwise = body1.end === "else" ? block(["end"]).nodes : [];
        nodes.push({ kind: "if", pipeline: body.slice(2).trim(), body: body1.nodes, otherwise });
      } else if (["with", "template", "block", "else", "end", "break", "continue"].includes(word)) {
        throw new Error(`${name}: "${word}" is not supported by this renderer`);
      } else {
        nodes.push({ kind: "action", pipeline: body });
      }
    }
    if (ends.length > 0) throw new Error(`${name}: missing {{ end }}`);
    return { nodes, end: "" };
  };
  return block([]).nodes;
}

/** Splits on `sep` outside strings and parentheses. */
function split(text: string, sep: RegExp): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quoted = false;
  let current = "";
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      current += c;
      if (c === "\\") current += text[++i] ?? "";
      else if (c === '"') quoted = false;
      continue;
    }
    if (c === '"') quoted = true;
    if (c === "(") depth++;
    if (c === ")") depth--;
    if (depth === 0 && sep.test(c)) {
      parts.push(current);
      current = "";
      continue;
    }
    current += c;
  }
  parts.push(current);
  return parts.map((p) => p.trim()).filter((p) => p !== "");
}

/** Go's truthiness: false, 0, nil, and empty strings, lists and maps are false. */
function truthy(v: Value): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === "") return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === "object") return Object.keys(v).length > 0;
  return true;
}

/** A value as Go's fmt prints it in a template. */
function print(v: Value): string {
  if (v === undefined || v === null) throw new Error("a value used in the output is missing");
  if (typeof v === "object") throw new Error(`cannot print ${JSON.stringify(v)}: use toYaml or toJson`);
  return String(v);
}

/** JSON with object keys sorted, as Go's encoding/json writes maps. */
function sortedJson(v: Value): string {
  if (Array.isArray(v)) return `[${v.map(sortedJson).join(",")}]`;
  if (v !== null && typeof v === "object") {
    const entries = Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${sortedJson(x)}`).join(",")}}`;
  }
  return JSON.stringify(v);
}

const indent = (n: number, s: string) =>
  s
    .split("\n")
    .map((line) => " ".repeat(n) + line)
    .join("\n");

/** Renders parsed templates against `root` (`.Values`, `.Chart`, `.Release`). */
class Renderer {
  constructor(private readonly defines: Map<string, Node[]>) {}

  render(nodes: Node[], dot: Value, scope: Scope): string {
    let out = "";
    for (const node of nodes) {
      if (node.kind === "text") out += node.text;
      else if (node.kind === "action") out += print(this.pipeline(node.pipeline, dot, scope));
      else if (node.kind === "if") {
        out += this.render(truthy(this.pipeline(node.pipeline, dot, scope)) ? node.body : node.otherwise, dot, scope);
      } else {
        const over = this.pipeline(node.pipeline, dot, scope);
        const items: [Value, Value][] = Array.isArray(over)
          ? over.map((x, i) => [i, x])
          : over !== null && typeof over === "object"
            ? Object.keys(over)
                .sort()
                .map((k) => [k, (over as Record<string, unknown>)[k]])
            : (() => {
                throw new Error(`cannot range over ${JSON.stringify(over)}`);
              })();
        for (const [key, item] of items) {
          const inner = new Map(scope);
          if (node.vars.length === 1) inner.set(node.vars[0]!, item);
          if (node.vars.length === 2) {
            inner.set(node.vars[0]!, key);
            inner.set(node.vars[1]!, item);
          }
          out += this.render(node.body, item, inner);
        }
      }
    }
    return out;
  }

  private pipeline(text: string, dot: Value, scope: Scope): Value {
    let result: Value;
    let first = true;
    for (const command of split(text, /\|/)) {
      const args = split(command, /\s/);
      result = this.command(args, dot, scope, first ? [] : [result]);
      first = false;
    }
    return result;
  }

  private command(args: string[], dot: Value, scope: Scope, piped: Value[]): Value {
    const [head, ...rest] = args;
    if (head === undefined) throw new Error("empty command");
    if (/^[a-zA-Z]\w*$/.test(head) && !["true", "false", "nil"].includes(head)) {
      const values = [...rest.map((a) => this.operand(a, dot, scope)), ...piped];
      return this.call(head, values);
    }
    if (rest.length > 0 || piped.length > 0) throw new Error(`${head} is not a function`);
    return this.operand(head, dot, scope);
  }

  private operand(token: string, dot: Value, scope: Scope): Value {
    if (token.startsWith("(")) return this.pipeline(token.slice(1, -1), dot, scope);
    if (token.startsWith('"')) return JSON.parse(token) as string;
    if (/^-?\d+$/.test(token)) return Number(token);
    if (token === "true" || token === "false") return token === "true";
    if (token === ".") return dot;
    const m = /^(\$\w*)?((?:\.\w+)*)$/.exec(token);
    if (!m) throw new Error(`cannot read ${token}`);
    let value: Value = m[1] === undefined ? dot : scope.get(m[1]);
    if (m[1] !== undefined && !scope.has(m[1])) throw new Error(`undefined variable ${m[1]}`);
    for (const key of m[2]!.split(".").slice(1)) {
      if (value === null || typeof value !== "object" || !(key in value)) {
        throw new Error(`${token}: no "${key}"`);
      }
      value = (value as Record<string, unknown>)[key];
    }
    return value;
  }

  private call(name: string, args: Value[]): Value {
    const str = (v: Value) => print(v);
    switch (name) {
      case "include": {
        const body = this.defines.get(String(args[0]));
        if (!body) throw new Error(`include of undefined template ${String(args[0])}`);
        return this.render(body, args[1], new Map([["$", args[1]]]));
      }
      case "default":
        return truthy(args[1]) ? args[1] : args[0];
      case "trunc":
        return str(args[1]).slice(0, Number(args[0]));
      case "trimSuffix":
        return str(args[1]).endsWith(str(args[0])) ? str(args[1]).slice(0, -str(args[0]).length) : args[1];
      case "quote":
        return args.map((a) => JSON.stringify(str(a))).join(" ");
      case "upper":
        return str(args[0]).toUpperCase();
      case "list":
        return args;
      case "indent":
        return indent(Number(args[0]), str(args[1]));
      case "nindent":
        return `\n${indent(Number(args[0]), str(args[1]))}`;
      case "toYaml":
        return stringify(args[0], { sortMapEntries: true }).replace(/\n$/, "");
      case "toJson":
        return sortedJson(args[0]);
      case "sha256sum":
        return createHash("sha256").update(str(args[0])).digest("hex");
      default:
        throw new Error(`function "${name}" is not supported by this renderer`);
    }
  }
}

/** A chart rendered as `helm template` would: each template's output, by file name. */
export function renderChart(
  chartDir: string,
  release: { name: string; namespace?: string },
  overrides: Record<string, unknown> = {},
): Record<string, string> {
  const chartYaml = parse(readFileSync(join(chartDir, "Chart.yaml"), "utf8")) as Record<string, unknown>;
  // Helm names the Chart.yaml fields with a capital: appVersion is .Chart.AppVersion.
  const chart = Object.fromEntries(Object.entries(chartYaml).map(([k, v]) => [k[0]!.toUpperCase() + k.slice(1), v]));
  const values = {
    ...(parse(readFileSync(join(chartDir, "values.yaml"), "utf8")) as Record<string, unknown>),
    ...overrides,
  };
  const root = {
    Values: values,
    Chart: chart,
    Release: { Name: release.name, Namespace: release.namespace ?? "default", Service: "Helm" },
  };
  const dir = join(chartDir, "templates");
  const defines = new Map<string, Node[]>();
  const parsed = readdirSync(dir)
    .sort()
    .map((file) => ({ file, nodes: parseTemplate(readFileSync(join(dir, file), "utf8"), defines, file) }));
  const renderer = new Renderer(defines);
  const out: Record<string, string> = {};
  // Files whose names start with "_" hold definitions only.
  for (const { file, nodes } of parsed.filter((p) => !p.file.startsWith("_"))) {
    out[file] = renderer.render(nodes, root, new Map([["$", root]]));
  }
  return out;
}
