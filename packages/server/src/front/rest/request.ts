import type { DescMessage, JsonObject, JsonValue, Message, Registry } from "@bufbuild/protobuf";
import { create, fromJson, mergeFromJson, toJson } from "@bufbuild/protobuf";
import type { CallOptions } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { callerHeaders } from "../../auth/metadata.js";
import { checkJson } from "../../services/rules.js";
import { requestTimeoutMs } from "../deadline.js";
import type { AnyRequest } from "../door.js";
import type { Taken } from "./query.js";
import { queryToJson, setPath, urlValueToJson } from "./query.js";
import type { RouteMatch } from "./routes.js";
import { decodeCapture } from "./template.js";

function invalid(message: string): ConnectError {
  return new ConnectError(message, Code.InvalidArgument);
}

/**
 * Builds the request message of a matched route: the body as its rule says
 * (`*` or one field), then the query parameters, then the path variables,
 * each decoded with protobuf-es's proto3 JSON reader so unknown fields and bad
 * values are INVALID_ARGUMENT naming them. With `body: "*"` a path field may
 * also be in the body, but only with the same value.
 */
export async function decodeRequest(
  match: RouteMatch,
  search: string,
  req: AnyRequest,
  maxBytes: number,
  registry: Registry,
): Promise<Message> {
  const { route, captures } = match;
  const input = route.method.input;
  const message = create(input);

  const text = await readBody(req, maxBytes);
  if (route.body === undefined) {
    if (text.trim() !== "") throw invalid(`${req.method} ${route.template.source} takes no request body`);
  } else if (text.trim() !== "") {
    // Only JSON, declared as such: a browser can send text/plain or a form
    // cross-origin without asking (no preflight), so those must not write.
    const type =
      String(req.headers["content-type"] ?? "")
        .split(";")[0]
        ?.trim()
        .toLowerCase() ?? "";
    if (type !== "application/json" && !/^application\/[\w.+-]+\+json$/.test(type)) {
      throw invalid("the request body must be JSON, sent with content-type: application/json");
    }
    let body: JsonValue;
    try {
      body = JSON.parse(text) as JsonValue;
    } catch {
      throw invalid("the request body is not valid JSON");
    }
    const problem = checkJson(body);
    if (problem) throw invalid(`request body: ${problem}`);
    const json = route.body === "*" ? body : { [route.body.jsonName]: body };
    read("request body", () => mergeFromJson(input, message, json, { registry }));
  }

  const taken: Taken = (fields) => {
    if (route.body === "*") return "every field not in the path goes in the request body";
    if (route.body !== undefined && fields[0] === route.body) return "the field goes in the request body";
    const inPath = route.pathFields.some(
      (p) => fields.length <= p.fields.length && fields.every((f, n) => p.fields[n] === f),
    );
    return inPath ? "the field is bound by the path" : undefined;
  };
  const query = queryToJson(input, new URLSearchParams(search), taken);
  read("query", () => mergeFromJson(input, message, query, { registry }));

  const path: JsonObject = {};
  for (const [n, p] of route.pathFields.entries()) {
    const value = decodeCapture(captures[n]!, p.multiSegment, p.name);
    const json = urlValueToJson(p.fields[p.fields.length - 1]!, value, `path parameter "${p.name}"`);
    setPath(
      path,
      p.fields.map((f) => f.jsonName),
      json,
    );
  }
  if (route.body === "*") agreeWithBody(input, message, path, route.pathFields, registry);
  read("path", () => mergeFromJson(input, message, path, { registry }));
  return message;
}

/** A field both in the path and in the body must have one value: which one to believe is not ours to guess. */
function agreeWithBody(
  input: DescMessage,
  message: Message,
  path: JsonObject,
  pathFields: RouteMatch["route"]["pathFields"],
  registry: Registry,
): void {
  const fromPath = toJson(
    input,
    read("path", () => fromJson(input, path, { registry })),
    { registry },
  );
  const fromBody = toJson(input, message, { registry });
  const at = (json: JsonValue | undefined, names: string[]): JsonValue | undefined =>
    names.reduce<JsonValue | undefined>(
      (v, name) => (typeof v === "object" && v !== null && !Array.isArray(v) ? v[name] : undefined),
      json,
    );
  for (const p of pathFields) {
    const names = p.fields.map((f) => f.jsonName);
    const inBody = at(fromBody, names);
    const inPath = at(fromPath, names);
    if (inBody !== undefined && inBody !== inPath) {
      const said = (v: JsonValue | undefined) => JSON.stringify(v ?? "");
      throw invalid(`${p.name}: the request body says ${said(inBody)} but the path says ${said(inPath)}`);
    }
  }
}

/** Runs a protobuf-es JSON read, turning its error into INVALID_ARGUMENT (its message names the field). */
function read<T>(where: string, decode: () => T): T {
  try {
    return decode();
  } catch (err) {
    throw invalid(`invalid ${where}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** Reads the whole body as UTF-8, refusing more than `maxBytes` as the RPC doors do. */
async function readBody(req: AnyRequest, maxBytes: number): Promise<string> {
  const tooLarge = () => new ConnectError(`request body larger than ${maxBytes} bytes`, Code.ResourceExhausted);
  if (Number(req.headers["content-length"] ?? 0) > maxBytes) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw tooLarge();
    chunks.push(chunk);
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(Buffer.concat(chunks));
  } catch {
    throw invalid("the request body is not valid UTF-8");
  }
}

/**
 * The call options for the in-process call: the caller's headers (as
 * policies see them on every door: see auth/metadata.ts), the door's name for the log, and a deadline
 * from `connect-timeout-ms` or `grpc-timeout`, read as the RPC doors read them.
 */
export function callOptions(req: AnyRequest, doorHeader: string): CallOptions {
  const headers = new Headers(callerHeaders(req.headers));
  headers.set(doorHeader, "rest");
  const header = (name: string) => {
    const value = req.headers[name];
    return typeof value === "string" ? value : null;
  };
  // Throws DEADLINE_EXCEEDED for a deadline under 1 ms: the call is not made.
  return { headers, timeoutMs: requestTimeoutMs(header) };
}
