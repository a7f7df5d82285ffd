// Whether a TCP port accepts connections, for scripts/services.mjs (the test
// backends) and the benchmark harness (its backends and gateways).
import net from "node:net";

/** True when `host`:`port` accepts a TCP connection within `timeoutMs`. */
export function reachable(host, port, timeoutMs = 1_000) {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

/** Polls until `host`:`port` accepts a connection: true, or false once `timeoutMs` has passed. */
export async function waitForPort(host, port, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await reachable(host, port)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}
