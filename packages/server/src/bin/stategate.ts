#!/usr/bin/env node
import { checkConfig } from "../cli/check-config.js";
import { helpText } from "../cli/help.js";
import type { Config } from "../config.js";
import { ConfigError, loadConfig } from "../config.js";
import type { Gateway } from "../gateway.js";
import { startGateway } from "../gateway.js";
import { createLogger } from "../log.js";
import { redactConfig } from "../ops/redact.js";
import { VERSION } from "../ops/version.js";

/**
 * The `stategate` command: with no argument, reads STATEGATE_* variables,
 * starts the gateway, and stops it cleanly on SIGTERM or SIGINT (exit 0).
 * `--help`, `--version` and `check-config` answer and exit.
 */
async function main(args: string[]): Promise<void> {
  const [command, ...extra] = args;
  if (command !== undefined) {
    if (extra.length > 0) return usage(`unexpected argument "${extra[0]}"`);
    if (command === "--help" || command === "-h" || command === "help") {
      process.stdout.write(helpText());
      return;
    }
    if (command === "--version" || command === "-v" || command === "version") {
      process.stdout.write(`stategate ${VERSION}\n`);
      return;
    }
    if (command === "check-config") {
      const code = await checkConfig(
        process.env,
        (line) => process.stdout.write(`${line}\n`),
        (line) => process.stderr.write(`${line}\n`),
      );
      process.exit(code);
    }
    return usage(`unknown command "${command}"`);
  }
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
  log.info({ version: VERSION, config: redactConfig(config) }, "starting");
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

function usage(problem: string): void {
  process.stderr.write(`stategate: ${problem}; see stategate --help\n`);
  process.exit(2);
}

await main(process.argv.slice(2));
