/**
 * @stategate/api: the stategate v1 contract as generated protobuf-es code, and
 * the transport-agnostic client core used by `@stategate/sdk-node` and the
 * browser SDK.
 */

export type { TokenSource } from "./bearer-token.js";
export { bearerToken } from "./bearer-token.js";
export type { BinaryDecoderOptions } from "./binary-decoder.js";
export { createBinaryDecoder } from "./binary-decoder.js";
export { createBinaryEncoder } from "./binary-encoder.js";
export type { CacheClient, CachedValue } from "./cache-client.js";
export { createCacheClient } from "./cache-client.js";
export type { StategateClient } from "./client.js";
export { createStategateClient, expiresIn } from "./client.js";
export { file_google_api_annotations, http } from "./gen/google/api/annotations_pb.js";
export type { CustomHttpPattern, HttpRule } from "./gen/google/api/http_pb.js";
export { CustomHttpPatternSchema, HttpRuleSchema } from "./gen/google/api/http_pb.js";
export * from "./gen/stategate/v1/cache_service_pb.js";
export * from "./gen/stategate/v1/entity_service_pb.js";
export * from "./gen/stategate/v1/event_service_pb.js";
export * from "./gen/stategate/v1/mutex_service_pb.js";
export * from "./gen/stategate/v1/peer_service_pb.js";
export * from "./gen/stategate/v1/types_pb.js";
export { forwardProperties } from "./lazy-properties.js";
export { keepByteOrderMarks } from "./text-encoding.js";
