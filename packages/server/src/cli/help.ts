import { ENV_VARS } from "../env-vars.js";
import { VERSION } from "../ops/version.js";

/**
 * What `stategate --help` prints: the commands, then every environment
 * variable with its default and meaning, from the one table in env-vars.ts.
 */
export function helpText(): string {
  const lines = [
    `stategate ${VERSION}: one gateway for entities (event-sourced), event streams, peer messages, cache and locks.`,
    "",
    "Usage:",
    "  stategate                serve gRPC, gRPC-Web, Connect, REST and GraphQL, configured by the variables below",
    "  stategate check-config   check the variables and reach every provider, then exit (0 when all is well)",
    "  stategate --help         print this text",
    "  stategate --version      print the version",
    "",
    "Environment variables:",
  ];
  for (const v of ENV_VARS) {
    lines.push(`  ${v.name}`, `      ${v.meaning}`, `      default: ${v.default}`);
  }
  lines.push("", 'Providers are JSON such as {"name":"mysql","addr":"db:3306"}; see the README for every option.');
  return `${lines.join("\n")}\n`;
}
