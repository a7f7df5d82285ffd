import type { FilterTerm, SortSpec } from "@stategate/providers";
import { stringProblem } from "./string-problem.js";

/**
 * Turns the text parts of a search (the JSON filter and the sort field) into
 * structured terms. Providers receive only these terms and bind them as
 * parameters; user text never reaches a query language as text.
 */

/** Most terms one filter may have. */
const MAX_FILTER_TERMS = 32;
/** Longest dot path accepted in a filter or sort field. */
const MAX_PATH_SEGMENTS = 16;
// A segment may not start with "-": MariaDB's JSON paths cannot name such a
// member at all (`$."-a"` finds nothing however it is quoted), and a search
// must find the same on every backend.
const segmentPattern = /^[^"\\\p{Cc}-][^"\\\p{Cc}]{0,127}$/u;

/** Splits "address.city" into ["address", "city"]; throws with a reason when unusable. */
export function parsePath(field: string): string[] {
  if (field === "") throw new Error("must not be empty");
  // Checked before the field is quoted in a message: a lone surrogate cannot be percent-encoded into grpc-message.
  const problem = stringProblem(field);
  if (problem) throw new Error(problem);
  const segments = field.split(".");
  if (segments.length > MAX_PATH_SEGMENTS) throw new Error(`must have at most ${MAX_PATH_SEGMENTS} segments`);
  for (const segment of segments) {
    if (!segmentPattern.test(segment)) {
      throw new Error(
        `"${field}" is not a dot path: segments are 1-128 characters without double quotes, backslashes or control characters, not starting with "-"`,
      );
    }
  }
  return segments;
}

/**
 * Parses a filter such as {"address.city": "Lyon", "active": true}. Empty text
 * means no filter. Values must be strings, numbers, booleans or null.
 */
export function parseFilter(text: string): FilterTerm[] {
  if (text.trim() === "") return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error("must be a JSON object");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new Error("must be a JSON object");
  }
  const entries = Object.entries(parsed as Record<string, unknown>);
  if (entries.length > MAX_FILTER_TERMS) throw new Error(`must have at most ${MAX_FILTER_TERMS} terms`);
  const terms: FilterTerm[] = [];
  for (const [field, value] of entries) {
    let path: string[];
    try {
      path = parsePath(field);
    } catch (err) {
      throw new Error(`key ${(err as Error).message}`);
    }
    if (value !== null && typeof value === "object") {
      throw new Error(`value of "${field}" must be a string, number, boolean or null`);
    }
    if (typeof value === "number" && !Number.isFinite(value)) {
      throw new Error(`value of "${field}" must be a finite number`);
    }
    // The rule entity values follow: a string no backend could store is one no search can find.
    const problem = typeof value === "string" ? stringProblem(value) : undefined;
    if (problem) throw new Error(`value of "${field}" ${problem}`);
    terms.push({ path, value: value as FilterTerm["value"] });
  }
  return terms;
}

/** The sort of a search request, or undefined for the default order. */
export function toSortSpec(sort: { field: string; desc: boolean } | undefined): SortSpec | undefined {
  return sort && sort.field !== "" ? { path: parsePath(sort.field), desc: sort.desc } : undefined;
}
