import type { Commit } from "../types.js";

/**
 * Refuses a commit the gateway could never send: a programming error, not bad
 * input, so it is a plain Error. Every storage adapter checks the same way.
 */
export function checkCommit({ event, expectedVersion }: Commit): void {
  if (!Number.isSafeInteger(expectedVersion) || expectedVersion < 0) {
    throw new Error(`expectedVersion must be a non-negative integer, got ${expectedVersion}`);
  }
  if (event.version !== expectedVersion + 1) {
    throw new Error(`event version ${event.version} must be expectedVersion + 1 (${expectedVersion + 1})`);
  }
  if (typeof event.time !== "bigint") {
    throw new Error("event time must be a bigint of nanoseconds");
  }
}
