import type { ValueNode } from "graphql";
import { GraphQLError, GraphQLScalarType, Kind, print } from "graphql";

const integer = /^-?\d{1,20}$/;

/**
 * 64-bit integers (int64, uint64 and their kin). GraphQL's Int is 32-bit and a
 * JS number loses precision past 2^53, so, as in the proto3 JSON mapping, the
 * value travels as a decimal string. Range is checked by the protobuf runtime.
 */
export const Int64 = new GraphQLScalarType<string, string>({
  name: "Int64",
  description:
    "A 64-bit integer, written as a decimal string (GraphQL's Int is only 32-bit). " +
    'Input may also be a safe integer literal: 42 or "42".',
  serialize(value) {
    if (typeof value === "string" && integer.test(value)) return value;
    if (typeof value === "bigint" || (typeof value === "number" && Number.isSafeInteger(value))) return String(value);
    throw new GraphQLError(`Int64 cannot represent ${String(value)}`);
  },
  parseValue: int64Input,
  parseLiteral(ast) {
    if (ast.kind === Kind.INT || ast.kind === Kind.STRING) return int64Input(ast.value);
    throw new GraphQLError(`Int64 cannot represent ${print(ast)}`, { nodes: ast });
  },
});

function int64Input(value: unknown): string {
  if (typeof value === "number" && Number.isSafeInteger(value)) return String(value);
  if (typeof value === "string" && integer.test(value)) return value;
  throw new GraphQLError(`Int64 expects a decimal integer string or a safe integer, got ${JSON.stringify(value)}`);
}

/** Timestamps as RFC 3339 strings, as the proto3 JSON mapping writes them; the protobuf runtime checks the format. */
export const Timestamp = new GraphQLScalarType<string, string>({
  name: "Timestamp",
  description: 'A point in time, as an RFC 3339 string in UTC, for example "2030-01-02T03:04:05.678Z".',
  serialize(value) {
    if (typeof value === "string") return value;
    throw new GraphQLError(`Timestamp cannot represent ${String(value)}`);
  },
  parseValue(value) {
    if (typeof value === "string") return value;
    throw new GraphQLError(`Timestamp expects an RFC 3339 string, got ${JSON.stringify(value)}`);
  },
  parseLiteral(ast) {
    if (ast.kind === Kind.STRING) return ast.value;
    throw new GraphQLError(`Timestamp expects an RFC 3339 string, got ${print(ast)}`, { nodes: ast });
  },
});

/** Any JSON value: google.protobuf.Struct, Value, ListValue and the other well-known types. */
export const JSONScalar = new GraphQLScalarType<unknown, unknown>({
  name: "JSON",
  description:
    "Any JSON value: objects for google.protobuf.Struct, any value for google.protobuf.Value, " +
    "and the proto3 JSON form of the other well-known types.",
  serialize: (value) => value,
  parseValue: (value) => value,
  parseLiteral: (ast, variables) => jsonLiteral(ast, variables),
});

/** A literal written inline in a query, as the JSON value it stands for. */
function jsonLiteral(ast: ValueNode, variables: { [name: string]: unknown } | null | undefined): unknown {
  switch (ast.kind) {
    case Kind.STRING:
    case Kind.BOOLEAN:
    case Kind.ENUM:
      return ast.value;
    case Kind.INT:
    case Kind.FLOAT:
      return Number(ast.value);
    case Kind.NULL:
      return null;
    case Kind.LIST:
      return ast.values.map((v) => jsonLiteral(v, variables));
    case Kind.OBJECT:
      return Object.fromEntries(ast.fields.map((f) => [f.name.value, jsonLiteral(f.value, variables)]));
    case Kind.VARIABLE:
      return variables?.[ast.name.value];
  }
}
