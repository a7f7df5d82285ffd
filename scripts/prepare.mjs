#!/usr/bin/env node
// Makes a fresh clone runnable: installs dependencies with the pinned pnpm when
// they are missing or stale, then builds every package (turbo skips what is
// already built). Used by `npm start` and `npm test`; needs only Node 20+ and npm.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { delimiter, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const pnpm = pkg.packageManager; // e.g. "pnpm@10.34.9"

const bin = join(root, "node_modules", ".bin");

function run(cmd, args, extraEnv = {}) {
  // turbo looks for pnpm, and package scripts for buf and tsc, on the PATH.
  const PATH = `${bin}${delimiter}${process.env.PATH ?? ""}`;
  execFileSync(cmd, args, { cwd: root, stdio: "inherit", env: { ...process.env, PATH, ...extraEnv } });
}

function installed() {
  const marker = join(root, "node_modules", ".pnpm", "lock.yaml");
  if (!existsSync(marker)) return false;
  return statSync(marker).mtimeMs >= statSync(join(root, "pnpm-lock.yaml")).mtimeMs;
}

if (!installed()) {
  console.error(`stategate: installing dependencies with ${pnpm} …`);
  run("npx", ["--yes", pnpm, "install", "--frozen-lockfile", "--config.confirmModulesPurge=false"]);
}
run(join(bin, "turbo"), ["run", "build", "--output-logs=errors-only", "--log-prefix=none"], {
  TURBO_TELEMETRY_DISABLED: "1",
  DO_NOT_TRACK: "1",
});
