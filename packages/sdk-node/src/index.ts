/**
 * @stategate/sdk-node: a typed Node.js client for stategate.
 *
 * @example
 * import { createClient } from "@stategate/sdk-node";
 * const client = createClient({ baseUrl: "http://localhost:8080", protocol: "grpc" });
 * const { event } = await client.entity.set({ domain: "acme", type: "user", key: "ada", values: { name: "Ada" } });
 * console.log(event?.version); // 1n
 */

export { Code, ConnectError } from "@connectrpc/connect";
export type { CacheClient, CachedValue, Entity, Event, StategateClient, TokenSource } from "@stategate/api";
export { createStategateClient, EventOperation, expiresIn } from "@stategate/api";
export type { ClientOptions, NodeClient, Protocol } from "./create-client.js";
export { createClient } from "./create-client.js";
export type { LeanGrpcTransportOptions } from "./lean-grpc-transport.js";
export { createLeanGrpcTransport } from "./lean-grpc-transport.js";
