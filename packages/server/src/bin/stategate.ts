#!/usr/bin/env node
import type { Config } from "../config.js";
import { ConfigError, loadConfig } from "../config.js";
import type { Gateway } from "../gateway.js";
import { startGateway } from "../gateway.js";
import { createLogger } from "../log.js";

/**
 * The `stategate` command: reads STATEGATE_* variables, starts the gateway,
 * and stops it cleanly on SIGTERM or SIGINT (exit 0).
 */
async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`stategate: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger(config);
  const redacted = {
    ...config,
    storage: redact(config.storage),
    cache: redact(config.cache),
    channel: redact(config.channel),
  };
  log.info({ config: redacted }, "starting");
  let gateway: Gateway;
  try {
    gateway = await startGateway(config, log);
  } catch (err) {
    if (err instanceof ConfigError) {
      if (err.cause) log.debug({ err: err.cause }, "start-up failed");
      process.stderr.write(`stategate: ${err.message}\n`);
      process.exit(2);
    }
    log.fatal({ err }, "start-up failed");
    process.stderr.write(`stategate: start-up failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      // A second signal means "now": an operator should never have to reach for kill -9.
      log.warn({ signal }, "second signal: exiting without waiting");
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, "shutting down");
    // Whatever hangs (a backend that never answers close), the process still ends.
    setTimeout(() => {
      log.error("shutdown did not finish in time; exiting");
      process.exit(1);
    }, config.shutdownGraceMs + 5_000).unref();
    gateway.close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

function redact(spec: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(spec)) out[k] = /password|secret|token|key/i.test(k) ? "[redacted]" : v;
  return out;
}

await main();
