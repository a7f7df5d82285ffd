/** One error of a GraphQL result, as the gateway formats it. */
export interface GraphqlError {
  message: string;
  path?: string[];
  extensions?: Record<string, unknown>;
}

/** A GraphQL result: data, errors, or both. */
export interface GraphqlResult {
  data?: Record<string, any> | null;
  errors?: GraphqlError[];
}

/** What to send along with a GraphQL operation. */
export interface GraphqlRequest {
  variables?: Record<string, unknown>;
  /** Sent after content-type: application/json. */
  headers?: Record<string, string>;
}

/** POSTs one operation to /api/graphql as JSON; returns the status and the JSON answer. */
export async function postGraphql(
  baseUrl: string,
  query: string,
  { variables, headers = {} }: GraphqlRequest = {},
): Promise<{ status: number; body: GraphqlResult }> {
  const res = await fetch(`${baseUrl}/api/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({ query, variables }),
  });
  return { status: res.status, body: (await res.json()) as GraphqlResult };
}

/**
 * POSTs one operation asking for Server-Sent Events (a subscription over
 * graphql-sse's distinct connections) and reads the answer to its end: the
 * status, the raw text, and the payload of each `next` event.
 */
export async function graphqlSse(
  baseUrl: string,
  query: string,
  { variables, headers = {} }: GraphqlRequest = {},
): Promise<{ status: number; text: string; results: GraphqlResult[] }> {
  const res = await fetch(`${baseUrl}/api/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "text/event-stream", ...headers },
    body: JSON.stringify({ query, variables }),
  });
  const text = await res.text();
  const results = [...text.matchAll(/^event: next\ndata: (.*)$/gm)].map((m) => JSON.parse(m[1] ?? "") as GraphqlResult);
  return { status: res.status, text, results };
}
