import { Code, ConnectError } from "@connectrpc/connect";

/** One segment of a path template: a literal, `*` (one segment) or `**` (the rest of the path). */
export type Segment = { kind: "literal"; value: string } | { kind: "*" } | { kind: "**" };

/** A `{field.path=…}` variable: the field it binds and the template segments it covers. */
export interface Variable {
  /** Field names as written in the template (`a.b` → ["a", "b"]). */
  fieldPath: string[];
  /** First covered segment (index into `segments`). */
  start: number;
  /** One past the last covered segment. */
  end: number;
}

/** A parsed `google.api.http` path template (`/v1/{name=shelves/*}/books:verb`). */
export interface PathTemplate {
  source: string;
  segments: Segment[];
  variables: Variable[];
  /** The `:verb` suffix, if the template declares one. */
  verb: string | undefined;
}

const literalChar = /[^/{}=*:]/;
const identPattern = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Parses a path template by the grammar in google/api/http.proto:
 * `"/" Segments [":" Verb]`, where a segment is `*`, `**`, a literal or
 * `{field.path[=Segments]}`. `**` may only end the path. Throws on anything else.
 */
export function parseTemplate(source: string): PathTemplate {
  const segments: Segment[] = [];
  const variables: Variable[] = [];
  let i = 0;
  const fail = (why: string): never => {
    throw new Error(`path template "${source}": ${why} at offset ${i}`);
  };
  const literal = (): string => {
    const from = i;
    while (i < source.length && literalChar.test(source[i]!)) i++;
    if (i === from) fail("expected a literal");
    return source.slice(from, i);
  };
  const segment = (inVariable: boolean): void => {
    if (source.startsWith("**", i)) {
      i += 2;
      segments.push({ kind: "**" });
    } else if (source[i] === "*") {
      i += 1;
      segments.push({ kind: "*" });
    } else if (source[i] === "{") {
      if (inVariable) fail("variables cannot nest");
      i += 1;
      const close = source.slice(i).search(/[=}]/);
      if (close < 0) fail("unclosed variable");
      const fieldPath = source.slice(i, i + close).split(".");
      if (!fieldPath.every((name) => identPattern.test(name))) fail("expected a field path");
      i += close;
      const start = segments.length;
      if (source[i] === "=") {
        i += 1;
        segmentList(true);
      } else {
        segments.push({ kind: "*" });
      }
      if (source[i] !== "}") fail("expected }");
      i += 1;
      variables.push({ fieldPath, start, end: segments.length });
    } else {
      segments.push({ kind: "literal", value: literal() });
    }
  };
  const segmentList = (inVariable: boolean): void => {
    segment(inVariable);
    while (source[i] === "/") {
      i += 1;
      segment(inVariable);
    }
  };

  if (source[i] !== "/") fail("must start with /");
  i += 1;
  segmentList(false);
  let verb: string | undefined;
  if (source[i] === ":") {
    i += 1;
    verb = literal();
  }
  if (i !== source.length) fail("unexpected character");
  const deep = segments.findIndex((s) => s.kind === "**");
  if (deep >= 0 && deep !== segments.length - 1) fail("** may only be the last segment");
  const bound = variables.map((v) => v.fieldPath.join("."));
  const twice = bound.find((name, n) => bound.indexOf(name) !== n);
  if (twice) fail(`field ${twice} is bound twice`);
  return { source, segments, variables, verb };
}

/**
 * What makes two templates equivalent: the same segments and verb, whatever
 * the variables are called (`/a/{x}` and `/a/{y=*}` are the same route).
 */
export function templateShape(t: PathTemplate): string {
  const path = t.segments.map((s) => (s.kind === "literal" ? s.value : s.kind)).join("/");
  return `/${path}${t.verb === undefined ? "" : `:${t.verb}`}`;
}

/**
 * Orders templates so the most specific is tried first: a verb before none,
 * then segment by segment a literal before `*` before `**`.
 */
export function compareSpecificity(a: PathTemplate, b: PathTemplate): number {
  if ((a.verb === undefined) !== (b.verb === undefined)) return a.verb === undefined ? 1 : -1;
  const rank = (s: Segment | undefined) => (s === undefined ? 3 : s.kind === "literal" ? 0 : s.kind === "*" ? 1 : 2);
  for (let n = 0; n < Math.max(a.segments.length, b.segments.length); n++) {
    const d = rank(a.segments[n]) - rank(b.segments[n]);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * Matches the raw (still percent-encoded) path against a template. Returns,
 * per variable, the raw segments it captured; undefined when it does not
 * match. Matching before decoding is what keeps `a%2Fb` one segment, and an
 * encoded `%3A` from being read as the verb separator.
 */
export function matchTemplate(t: PathTemplate, rawPath: string): string[][] | undefined {
  if (!rawPath.startsWith("/")) return undefined;
  const parts = rawPath.slice(1).split("/");
  if (t.verb !== undefined) {
    // Only a template that declares a verb looks for one, so `user:123` stays a key elsewhere.
    const last = parts[parts.length - 1]!;
    const suffix = `:${t.verb}`;
    if (!last.endsWith(suffix) || last.length === suffix.length) return undefined;
    parts[parts.length - 1] = last.slice(0, -suffix.length);
  }
  const spans: [number, number][] = [];
  let p = 0;
  for (const s of t.segments) {
    const from = p;
    if (s.kind === "**") {
      p = parts.length;
    } else {
      const part = parts[p];
      if (part === undefined || part === "") return undefined;
      if (s.kind === "literal" && part !== s.value) return undefined;
      p++;
    }
    spans.push([from, p]);
  }
  if (p !== parts.length) return undefined;
  return t.variables.map((v) => parts.slice(spans[v.start]![0], spans[v.end - 1]![1]));
}

/**
 * Percent-decodes a captured value, exactly once. A one-segment capture is
 * decoded whole (`a%2Fb` → `a/b`); a multi-segment capture is joined with `/`
 * and keeps `%2F` as is, as google/api/http.proto specifies, so the joined
 * value stays unambiguous.
 */
export function decodeCapture(raw: string[], multiSegment: boolean, field: string): string {
  try {
    if (!multiSegment) return decodeURIComponent(raw.join("/"));
    return raw.map((part) => part.split(/%2F/i).map(decodeURIComponent).join("%2F")).join("/");
  } catch {
    throw new ConnectError(`${field}: the path segment is not valid percent-encoded UTF-8`, Code.InvalidArgument);
  }
}
