import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { providerOptionNames } from "../src/registry.js";

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const readme = readFileSync(join(repoRoot, "README.md"), "utf8");

/** Text outside parentheses: in the table, what follows an option in parentheses is its default or values. */
function outsideParentheses(text: string): string {
  let depth = 0;
  let out = "";
  for (const char of text) {
    if (char === "(") depth++;
    else if (char === ")") depth = Math.max(0, depth - 1);
    else if (depth === 0) out += char;
  }
  return out;
}

/** The README's provider table: kind → provider → the options its row names. */
function documentedOptions(): Record<string, Record<string, string[]>> {
  const table: Record<string, Record<string, string[]>> = {};
  for (const m of readme.matchAll(/^\| (storage|cache|channel) \| `([a-z]+)`[^|]*\| (.*) \|$/gm)) {
    const [, kind, name, options] = m as unknown as [string, string, string, string];
    const names = [...outsideParentheses(options).matchAll(/`([A-Za-z]+)`/g)].map((o) => o[1] as string);
    table[kind] ??= {};
    (table[kind] as Record<string, string[]>)[name] = [...new Set(names)].sort();
  }
  return table;
}

describe("the README's provider table", () => {
  it("lists every provider of the registry, each with exactly the options it accepts", () => {
    const documented = documentedOptions();
    const registry = Object.fromEntries(
      Object.entries(providerOptionNames).map(([kind, providers]) => [
        kind,
        Object.fromEntries(Object.entries(providers).map(([name, options]) => [name, [...options].sort()])),
      ]),
    );
    assert.deepEqual(documented, registry);
  });
});

function files(dir: string, suffixes: string[]): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (name === "node_modules" || name === "dist" || name.startsWith(".")) return [];
    if (statSync(path).isDirectory()) return files(path, suffixes);
    return suffixes.some((suffix) => name.endsWith(suffix)) ? [path] : [];
  });
}

describe("the README's section on running the tests", () => {
  it("documents every STATEGATE_TEST_* variable the tests read, and no other", () => {
    const sources = [
      ...files(join(repoRoot, "packages"), [".ts"]).filter((path) => /[/\\]test[/\\]/.test(path)),
      ...files(join(repoRoot, "scripts"), [".mjs"]),
      ...files(join(repoRoot, "bench"), [".ts", ".mjs"]),
    ];
    const read = new Set<string>();
    for (const path of sources) {
      for (const m of readFileSync(path, "utf8").matchAll(/STATEGATE_TEST_[A-Z0-9_]*[A-Z0-9]/g)) read.add(m[0]);
    }
    const section = readme.slice(
      readme.indexOf("## Running the tests"),
      readme.indexOf("\n## ", readme.indexOf("## Running the tests") + 1),
    );
    const documented = new Set([...section.matchAll(/STATEGATE_TEST_[A-Z0-9_]*[A-Z0-9]/g)].map((m) => m[0]));
    assert.ok(read.size >= 8, `found the variables the tests read (${[...read].join(", ")})`);
    assert.deepEqual([...read].filter((name) => !documented.has(name)).sort(), [], "read by a test, not documented");
    assert.deepEqual([...documented].filter((name) => !read.has(name)).sort(), [], "documented, read by no test");
  });
});
