#!/usr/bin/env node
// Builds the client packages and writes their npm tarballs to dist-packages/,
// so another project can install the SDKs before they are published:
//   npm install /path/to/stategate/dist-packages/*.tgz
// pnpm pack turns the workspace:* dependencies into the real versions.
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, rmSync } from "node:fs";
import { delimiter, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "dist-packages");
const bin = join(root, "node_modules", ".bin");

execFileSync(process.execPath, [join(root, "scripts", "prepare.mjs")], { cwd: root, stdio: "inherit" });
rmSync(out, { recursive: true, force: true });
mkdirSync(out);
const filters = ["@stategate/api", "@stategate/sdk-node", "@stategate/sdk-web"].flatMap((name) => ["--filter", name]);
execFileSync(join(bin, "pnpm"), [...filters, "pack", "--pack-destination", out], {
  cwd: root,
  stdio: ["ignore", "ignore", "inherit"],
  env: { ...process.env, PATH: `${bin}${delimiter}${process.env.PATH ?? ""}` },
});
for (const file of readdirSync(out).sort()) console.log(join("dist-packages", file));
