// Types of rego-policy.mjs, for packages/rego/bench/evaluate.ts.

/** The policy: tenants read their own domain, writers write to it, operators do anything from ops tooling. */
export declare const POLICY: string;

/** The rule both benchmarks evaluate. */
export declare const QUERY: string;

/** The input of a Set on `domain` by ada, a reader and writer of tenant acme: allowed for "acme" only. */
export declare function authzInput(domain: string): {
  claims: { sub: string; tenant: string; roles: string[]; exp: number };
  method: string;
  metadata: Record<string, string>;
  body: { domain: string; type: string; key: string; values: { name: string; langs: string[] } };
  client_stream: boolean;
  server_stream: boolean;
};
