import assert from "node:assert/strict";
import { builtinModules } from "node:module";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

/** Every name Node resolves to a built-in: `fs`, `node:fs`, `node:test` … */
const builtins = [...builtinModules, ...builtinModules.map((name) => `node:${name}`), "node:*"];

/**
 * Bundles `entry` for browsers as an app's bundler would. Node built-ins are
 * left as external imports instead of failing the build, so the test can say
 * which ones leaked in.
 */
async function bundleForBrowser(entry: { path: string } | { contents: string }) {
  const result = await esbuild.build({
    ...("path" in entry
      ? { entryPoints: [entry.path] }
      : { stdin: { contents: entry.contents, resolveDir: join(repoRoot, "packages", "sdk-web"), loader: "ts" } }),
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    minify: true,
    write: false,
    metafile: true,
    external: builtins,
    logLevel: "silent",
  });
  const [output] = Object.values(result.metafile.outputs);
  const [file] = result.outputFiles;
  assert.ok(output && file);
  return { imports: output.imports, text: file.text, inputs: Object.keys(result.metafile.inputs) };
}

describe("@stategate/sdk-web in a bundler", () => {
  it("bundles the example page for browsers with no Node built-in", async () => {
    const { imports, text, inputs } = await bundleForBrowser({
      path: join(repoRoot, "examples", "live-entities", "src", "main.ts"),
    });
    assert.deepEqual(
      imports.map((i) => i.path),
      [],
      "everything is in the bundle: no import is left, least of all a Node built-in",
    );
    assert.ok(!/\bfrom\s*["']node:|\b(import|require)\s*\(\s*["']node:/.test(text), "no node: import in the bundle");
    assert.ok(
      inputs.some((i) => i.includes("@connectrpc/connect-web")),
      "the browser transports are in",
    );
    assert.ok(!inputs.some((i) => i.includes("@connectrpc/connect-node")), "the Node transports are not");
  });

  it("bundles an app that imports it by package name", async () => {
    const { imports, text } = await bundleForBrowser({
      contents:
        'import { createClient } from "@stategate/sdk-web";\nexport const client = createClient({ baseUrl: "/" });',
    });
    assert.deepEqual(imports, []);
    assert.ok(/connect-protocol-version/i.test(text), "the Connect transport is in");
  });
});
