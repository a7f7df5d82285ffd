import type { Logger } from "pino";
import pino from "pino";
import type { Config } from "./config.js";

/** JSON log lines on stdout at the configured level; secrets are never logged. */
export function createLogger(config: Pick<Config, "logLevel">): Logger {
  return pino({
    level: config.logLevel,
    base: { service: "stategate" },
    redact: { paths: ["*.password", "*.token", "*.authorization", "config.*.password"], censor: "[redacted]" },
  });
}
