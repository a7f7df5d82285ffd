// Starts and stops floor servers (floor-server.mjs): the bare node:http2 gRPC
// server of the floor path, in a process of its own, like a gateway.
import { fork } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { freePort } from "./proc.mjs";

const here = dirname(fileURLToPath(import.meta.url));

/**
 * Starts a floor server on its own port and resolves once it accepts calls.
 * `backends` says which of the direct path's backends it serves from
 * ({ memcached, mysql, sqlite }, as floor-server.mjs takes them). With
 * `profileDir` it runs under `node --cpu-prof`; `execArgv` adds other Node
 * options.
 */
export async function startFloorServer({ name, backends, logDir, profileDir, execArgv = [] }) {
  const port = await freePort();
  const logPath = join(logDir, `floor-${name}.log`);
  const logFd = openSync(logPath, "a");
  const profile = profileDir
    ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=floor-${name}.cpuprofile`]
    : [];
  const child = fork(join(here, "floor-server.mjs"), [JSON.stringify({ ...backends, port })], {
    cwd: join(here, ".."),
    execArgv: [...profile, ...execArgv],
    stdio: ["ignore", logFd, logFd, "ipc"],
  });
  closeSync(logFd);
  let exited = null;
  const exit = new Promise((resolve) => {
    child.once("exit", (code, signal) => {
      exited = { code, signal };
      resolve(exited);
    });
  });
  const up = await Promise.race([
    new Promise((resolve) => child.once("message", (m) => resolve(m?.type === "listening" && m.port === port))),
    exit.then(() => false),
    // Unreferenced, so a run that ends soon after does not wait for it.
    sleep(30_000, false, { ref: false }),
  ]);
  if (!up) {
    child.kill("SIGKILL");
    const tail = readFileSync(logPath, "utf8").split("\n").slice(-15).join("\n");
    throw new Error(`floor server ${name} did not start (${JSON.stringify(exited)}); log ${logPath}:\n${tail}`);
  }
  return {
    name,
    child,
    pid: child.pid,
    logPath,
    baseUrl: `http://127.0.0.1:${port}`,
    /** SIGTERM, then SIGKILL after 15 s; resolves with how it exited. */
    async stop() {
      if (!exited) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
        await exit;
        clearTimeout(timer);
      }
      return exited;
    },
  };
}
