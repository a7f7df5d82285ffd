import assert from "node:assert/strict";

/** A REST answer: status, headers, and the body parsed as JSON. */
export interface RestAnswer {
  status: number;
  headers: Headers;
  json: any;
}

/** Calls a REST route with plain fetch; `body` is sent as JSON when given. */
export async function rest(
  baseUrl: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<RestAnswer> {
  const res = await fetch(`${baseUrl}${path}`, {
    method,
    headers: body === undefined ? headers : { "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = text === "" ? undefined : JSON.parse(text);
  } catch {
    assert.fail(`${method} ${path} answered ${res.status} with a body that is not JSON: ${text}`);
  }
  return { status: res.status, headers: res.headers, json };
}

/** Asserts a 200 and returns the JSON body. */
export async function ok(answer: Promise<RestAnswer>): Promise<any> {
  const { status, json } = await answer;
  assert.equal(status, 200, JSON.stringify(json));
  return json;
}

/** One Server-Sent Event, or a comment line (`: ping`). */
export interface SseMessage {
  id?: string;
  event?: string;
  data?: string;
  comment?: string;
}

/** Splits a byte stream into text lines (without their "\n"). */
async function* lines(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffered = "";
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    buffered += decoder.decode(chunk, { stream: true });
    for (let nl = buffered.indexOf("\n"); nl >= 0; nl = buffered.indexOf("\n")) {
      yield buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
    }
  }
}

/** Parses a `text/event-stream` body the way EventSource does (fields `id`, `event`, `data`; comments kept). */
export async function* sse(body: ReadableStream<Uint8Array>): AsyncGenerator<SseMessage> {
  let current: SseMessage = {};
  for await (const line of lines(body)) {
    if (line === "") {
      if (Object.keys(current).length > 0) yield current;
      current = {};
    } else if (line.startsWith(":")) {
      yield { comment: line.slice(1).trim() };
    } else {
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "id" || field === "event") current[field] = value;
      if (field === "data") current.data = current.data === undefined ? value : `${current.data}\n${value}`;
    }
  }
}

/** Parses a newline-delimited JSON body, one value per line. */
export async function* ndjson(body: ReadableStream<Uint8Array>): AsyncGenerator<any> {
  for await (const line of lines(body)) if (line.trim() !== "") yield JSON.parse(line);
}

/**
 * Everything a stream of messages (`sse(body)`, `ndjson(body)`) yields until
 * the response ends. Reading starts at once: call it before what ends the
 * stream, await it after.
 */
export async function readAll<T>(messages: AsyncIterable<T>): Promise<T[]> {
  const got: T[] = [];
  for await (const m of messages) got.push(m);
  return got;
}
