import { VersionConflictError } from "../errors.js";
import type { Commit } from "../types.js";

/**
 * The version a commit gives its event once the entity is known to be at
 * `actual` (read under the transaction's lock): the next one, if the commit
 * expected `actual` or expected nothing. Otherwise a VersionConflictError.
 */
export function nextVersion({ expectedVersion }: Pick<Commit, "expectedVersion">, actual: number): number {
  if (expectedVersion !== undefined && actual !== expectedVersion) {
    throw new VersionConflictError(expectedVersion, actual);
  }
  return actual + 1;
}

/**
 * Refuses a commit the gateway could never send: a programming error, not bad
 * input, so it is a plain Error. Every storage adapter checks the same way.
 */
export function checkCommit({ event, expectedVersion }: Commit): void {
  if (expectedVersion === undefined) {
    // The storage gives the event its version: one given here could only disagree.
    if (event.version !== undefined) {
      throw new Error(`an event committed without expectedVersion has no version, got ${event.version}`);
    }
  } else {
    if (!Number.isSafeInteger(expectedVersion) || expectedVersion < 0) {
      throw new Error(`expectedVersion must be a non-negative integer, got ${expectedVersion}`);
    }
    if (event.version !== expectedVersion + 1) {
      throw new Error(`event version ${event.version} must be expectedVersion + 1 (${expectedVersion + 1})`);
    }
  }
  if (typeof event.time !== "bigint") {
    throw new Error("event time must be a bigint of nanoseconds");
  }
}
