/**
 * @stategate/sdk-web: a typed browser client for stategate, over gRPC-Web or
 * Connect. The same API as `@stategate/sdk-node`; it bundles with esbuild or
 * Vite and uses nothing from Node.
 *
 * @example
 * import { createClient } from "@stategate/sdk-web";
 * const client = createClient({ baseUrl: "http://localhost:8080" });
 * const { event } = await client.entity.set({ domain: "acme", type: "user", key: "ada", values: { name: "Ada" } });
 * console.log(event?.version); // 1n
 */

export { Code, ConnectError } from "@connectrpc/connect";
export type { CacheClient, CachedValue, Entity, Event, StategateClient, TokenSource } from "@stategate/api";
export { createStategateClient, EventOperation, expiresIn } from "@stategate/api";
export type { ClientOptions, Protocol } from "./create-client.js";
export { createClient } from "./create-client.js";
