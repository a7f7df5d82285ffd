import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import * as rego from "../src/index.js";

const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");

describe("the package README", () => {
  it("its example gives the results its comments say", () => {
    const block = /```ts\n([\s\S]*?)```/.exec(readme)?.[1];
    assert.ok(block, "a ts block");
    const code = block.replace(/^import .*$/m, "");
    // Each `policy.…;` line followed by `// value` is checked.
    const checks = [...code.matchAll(/^(policy\.[^\n]*);\n\/\/ ([^\n]*)$/gm)];
    assert.equal(checks.length, 3);
    const setup = code.slice(0, checks[0]!.index);
    const body = `${setup}\nreturn [${checks.map((m) => `[${m[1]}, ${m[2]}]`).join(", ")}];`;
    const pairs = new Function("compile", body)(rego.compile) as [unknown, unknown][];
    for (const [got, want] of pairs) assert.deepEqual(got, want);
  });

  it("its built-in table lists exactly the built-ins implemented", () => {
    const section = readme.slice(readme.indexOf("## Built-ins"), readme.indexOf("## Differences"));
    const rows = section
      .split("\n")
      .filter((l) => l.startsWith("| ") && !l.startsWith("| Group") && !l.startsWith("| ---"));
    const listed = new Set<string>();
    for (const row of rows) {
      const cell = row.split(" | ")[1] ?? "";
      for (const m of cell.matchAll(/`([a-z_][a-z0-9_.]*)`/g)) listed.add(m[1]!);
    }
    assert.deepEqual([...listed].sort(), rego.supportedBuiltins());
  });
});
