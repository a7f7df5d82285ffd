#!/usr/bin/env node
// Runs every test with node's built-in runner (TypeScript through tsx).
// Pass file paths to run only those: `node scripts/test.mjs packages/server/test/entity.test.ts`.
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureServices } from "./services.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

function findTests(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    if (name === "node_modules" || name === "dist") continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...findTests(path));
    else if (name.endsWith(".test.ts")) out.push(relative(root, path));
  }
  return out;
}

const bin = join(root, "node_modules", ".bin");

/** Runs a check and stops the test run when it fails. */
function check(label, cmd, args) {
  const r = spawnSync(join(bin, cmd), args, { cwd: root, stdio: "inherit" });
  if (r.status !== 0) {
    console.error(`stategate: ${label} failed`);
    process.exit(r.status ?? 1);
  }
}

const files =
  process.argv.length > 2
    ? process.argv.slice(2)
    : [...findTests(join(root, "packages")), ...findTests(join(root, "bench"))].sort();
if (process.argv.length <= 2) {
  check("biome (lint and format)", "biome", ["check", "."]);
  check("buf lint", "buf", ["lint"]);
  for (const pkg of ["providers", "server", "sdk-web", "rego"]) {
    check(`type-check of packages/${pkg} tests`, "tsc", ["-p", join("packages", pkg, "tsconfig.test.json")]);
  }
}

try {
  await ensureServices();
} catch (err) {
  console.error(`stategate: ${err.message}`);
  process.exit(1);
}

/** One node:test run over `list`; returns its exit status. */
function runTests(list, concurrency) {
  if (list.length === 0) return 0;
  const r = spawnSync(
    process.execPath,
    [
      "--import",
      "tsx",
      "--test",
      "--test-reporter=spec",
      `--test-concurrency=${concurrency}`,
      "--test-timeout=120000",
      ...list,
    ],
    {
      cwd: root,
      stdio: "inherit",
      env: { ...process.env, STATEGATE_LOG_LEVEL: process.env.STATEGATE_LOG_LEVEL ?? "warn" },
    },
  );
  return r.status ?? 1;
}

// Files named *.serial.test.ts disturb shared services (they restart RabbitMQ,
// for one): they run after the others, one at a time.
const parallel = runTests(
  files.filter((f) => !f.endsWith(".serial.test.ts")),
  2,
);
const serial = runTests(
  files.filter((f) => f.endsWith(".serial.test.ts")),
  1,
);
process.exit(parallel || serial);
