// Starts and stops gateway processes: `node packages/server/dist/bin/stategate.js`
// with the bench's own port, data directory and providers.
import { spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, waitForPort } from "./proc.mjs";

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const gatewayBin = join(repoRoot, "packages", "server", "dist", "bin", "stategate.js");

/**
 * Starts a gateway and resolves once its port accepts connections.
 * `env` holds the STATEGATE_* variables that pick its providers; the
 * inherited environment's STATEGATE_* variables are dropped.
 * With `profileDir`, the gateway runs under `node --cpu-prof`; `execArgv`
 * adds other Node options (`--trace-gc`, say).
 */
export async function startGateway({ name, env, logDir, profileDir, execArgv = [] }) {
  if (!existsSync(gatewayBin)) {
    throw new Error(`${gatewayBin} is missing: build first (node scripts/prepare.mjs)`);
  }
  const port = await freePort();
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("STATEGATE_")));
  const args = [];
  if (profileDir) args.push("--cpu-prof", `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${name}.cpuprofile`);
  args.push(...execArgv, gatewayBin);
  const logPath = join(logDir, `gateway-${name}.log`);
  const log = openSync(logPath, "a");
  const child = spawn(process.execPath, args, {
    cwd: repoRoot,
    env: {
      ...inherited,
      STATEGATE_HOST: "127.0.0.1",
      STATEGATE_PORT: String(port),
      STATEGATE_METRICS_PORT: "off",
      STATEGATE_LOG_LEVEL: "warn",
      STATEGATE_SHUTDOWN_GRACE_MS: "2000",
      STATEGATE_MAX_OPEN_STREAMS: "100000",
      ...env,
    },
    stdio: ["ignore", log, log],
  });
  closeSync(log);
  let exited = null;
  const exit = new Promise((resolve) => {
    child.once("exit", (code, signal) => {
      exited = { code, signal };
      resolve(exited);
    });
  });
  const up = await Promise.race([waitForPort("127.0.0.1", port, 30_000), exit.then(() => false)]);
  if (!up) {
    child.kill("SIGKILL");
    const tail = readFileSync(logPath, "utf8").split("\n").slice(-15).join("\n");
    throw new Error(`gateway ${name} did not start (${JSON.stringify(exited)}); log ${logPath}:\n${tail}`);
  }
  return {
    name,
    pid: child.pid,
    port,
    baseUrl: `http://127.0.0.1:${port}`,
    logPath,
    /** SIGTERM, then SIGKILL after 15 s; resolves with how it exited. */
    async stop() {
      if (exited) return exited;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
      const result = await exit;
      clearTimeout(timer);
      return result;
    },
  };
}
