import { readFileSync } from "node:fs";

/**
 * The version of @stategate/server, from its package.json (two levels up from
 * both src/ops and dist/ops), for `--version` and `stategate_build_info`.
 */
export const VERSION: string = (
  JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }
).version;
