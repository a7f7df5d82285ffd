/**
 * @stategate/server: the stategate gateway as a library. Most users run the
 * `stategate` command instead.
 *
 * @example
 * import { createLogger, loadConfig, startGateway } from "@stategate/server";
 * const config = loadConfig();
 * const gateway = await startGateway(config, createLogger(config));
 */

export type { Config } from "./config.js";
export { ConfigError, loadConfig } from "./config.js";
export { httpStatus } from "./errors.js";
export type { Gateway, GatewayOptions } from "./gateway.js";
export { startGateway } from "./gateway.js";
export { createLogger } from "./log.js";
