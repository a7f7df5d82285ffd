import type { Writable } from "node:stream";
import type { JsonValue, Message, Registry } from "@bufbuild/protobuf";
import { toJson } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { codeToString, errorToJson } from "@connectrpc/connect/protocol-connect";
import type { Logger } from "pino";
import { errorRequestId, httpStatus } from "../../errors.js";
import type { AnyResponse } from "../door.js";
import type { Route } from "./routes.js";

/** An error as REST sends it: the Connect code name (`invalid_argument`), the message and any details. */
export interface ErrorJson {
  code: string;
  message: string;
  details: JsonValue[];
}

/**
 * Turns anything thrown into a ConnectError that is safe to send. Errors from
 * calls are ConnectErrors already (the interceptors hide internals); anything
 * else is a fault of this door, logged and sent as INTERNAL.
 */
export function toConnectError(err: unknown, log: Logger): ConnectError {
  if (err instanceof ConnectError) return err;
  log.error({ err }, "REST door failed");
  return new ConnectError("internal error", Code.Internal);
}

/** The JSON body of an error, in Connect's error shape with every key present. */
export function errorJson(err: ConnectError): ErrorJson {
  // Connect's own serializer encodes the details (type + base64 value) as a Connect client expects them.
  const details = errorToJson(err, undefined).details as JsonValue[] | undefined;
  return { code: codeToString(err.code), message: err.rawMessage, details: details ?? [] };
}

/** The response message in the proto3 JSON mapping, or just its `response_body` field. */
export function responseJson(route: Route, message: Message, registry: Registry): JsonValue {
  const output = route.method.output;
  if (!route.responseBody) return toJson(output, message, { registry });
  const json = toJson(output, message, { registry, alwaysEmitImplicit: true }) as Record<string, JsonValue>;
  return json[route.responseBody.jsonName] ?? null;
}

/** Sends a whole JSON response. */
export function writeJson(res: AnyResponse, status: number, body: JsonValue, requestId: string | null): void {
  const payload = JSON.stringify(body);
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "content-length": String(Buffer.byteLength(payload)),
  };
  if (requestId) headers["x-request-id"] = requestId;
  res.writeHead(status, headers);
  res.end(payload);
}

/** Sends an error with its HTTP status from the shared code→status table. */
export function writeError(res: AnyResponse, err: ConnectError): void {
  writeJson(res, httpStatus[err.code], errorJson(err) as unknown as JsonValue, errorRequestId(err) ?? null);
}

/**
 * Writes a chunk, waiting while the client is slow to read (so a stream cannot
 * pile up in memory), and not at all once it has gone.
 */
export function writeChunk(res: AnyResponse, chunk: string, gone: AbortSignal): Promise<void> {
  const out = res as Writable;
  if (gone.aborted || out.write(chunk)) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      out.off("drain", done);
      gone.removeEventListener("abort", done);
      resolve();
    };
    out.on("drain", done);
    gone.addEventListener("abort", done, { once: true });
  });
}
