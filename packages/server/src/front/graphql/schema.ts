import type { DescEnum, DescField, DescMessage, DescMethod, DescService } from "@bufbuild/protobuf";
import { ScalarType } from "@bufbuild/protobuf";
import { FeatureSet_FieldPresence } from "@bufbuild/protobuf/wkt";
import type {
  GraphQLFieldConfig,
  GraphQLFieldConfigArgumentMap,
  GraphQLInputType,
  GraphQLOutputType,
  GraphQLScalarType,
} from "graphql";
import {
  GraphQLBoolean,
  GraphQLEnumType,
  GraphQLError,
  GraphQLFloat,
  GraphQLInputObjectType,
  GraphQLInt,
  GraphQLList,
  GraphQLNonNull,
  GraphQLObjectType,
  GraphQLSchema,
  GraphQLString,
} from "graphql";
import type { Comments } from "./comments.js";
import { keyOf } from "./comments.js";
import type { CallContext, Caller } from "./resolvers.js";
import { Int64, JSONScalar, Timestamp } from "./scalars.js";

/** Unary methods that only read; every other unary method is a mutation. */
const readOnly = /^(Get|Search|List)/;

/**
 * Builds the GraphQL schema of the given services from their descriptors:
 * reading methods become queries, the other unary methods mutations, and
 * server-streaming methods subscriptions, each named after its service and
 * method (`entityGet`, `entitySet`, `eventStream`). Arguments are the request's
 * fields; results are the response messages in the proto3 JSON mapping.
 */
export function buildSchema(services: readonly DescService[], caller: Caller, comments: Comments): GraphQLSchema {
  const describe = (desc: Parameters<typeof keyOf>[0]) => comments.get(keyOf(desc));
  const outputs = new Map<string, GraphQLObjectType>();
  const inputs = new Map<string, GraphQLInputObjectType>();
  const enums = new Map<string, GraphQLEnumType>();

  const enumType = (desc: DescEnum): GraphQLEnumType => {
    let type = enums.get(desc.typeName);
    if (!type) {
      const values = desc.values.map((v) => [v.name, { value: v.name, description: describe(v) }]);
      type = new GraphQLEnumType({
        name: typeName(desc),
        description: describe(desc),
        values: Object.fromEntries(values),
      });
      enums.set(desc.typeName, type);
    }
    return type;
  };

  // Well-known types take the shape of their proto3 JSON form.
  const wellKnown = (desc: DescMessage): GraphQLScalarType | undefined => {
    if (desc.typeName === "google.protobuf.Timestamp") return Timestamp;
    if (desc.typeName.startsWith("google.protobuf.")) return JSONScalar;
    return undefined;
  };

  const outputType = (desc: DescMessage): GraphQLOutputType => {
    const known = wellKnown(desc);
    if (known) return known;
    let type = outputs.get(desc.typeName);
    if (!type) {
      type = new GraphQLObjectType({
        name: typeName(desc),
        description: describe(desc),
        fields: () =>
          Object.fromEntries(
            desc.fields.map((f) => [f.jsonName, { type: fieldOutput(f), description: describe(f) }]),
          ) as Record<string, GraphQLFieldConfig<unknown, CallContext>>,
      });
      outputs.set(desc.typeName, type);
    }
    return type;
  };

  const inputType = (desc: DescMessage): GraphQLInputType => {
    const known = wellKnown(desc);
    if (known) return known;
    let type = inputs.get(desc.typeName);
    if (!type) {
      type = new GraphQLInputObjectType({
        name: `${typeName(desc)}Input`,
        description: describe(desc),
        fields: () => args(desc),
      });
      inputs.set(desc.typeName, type);
    }
    return type;
  };

  const fieldOutput = (f: DescField): GraphQLOutputType => {
    if (f.fieldKind === "map") return new GraphQLNonNull(JSONScalar);
    const item = f.scalar !== undefined ? scalarType(f.scalar) : f.enum ? enumType(f.enum) : outputType(f.message);
    if (f.fieldKind === "list") return new GraphQLNonNull(new GraphQLList(new GraphQLNonNull(item)));
    // Written even when at their default (see the caller), so never null; fields with presence may be absent.
    const implicit = f.presence === FeatureSet_FieldPresence.IMPLICIT && f.fieldKind !== "message";
    return implicit ? new GraphQLNonNull(item) : item;
  };

  const fieldInput = (f: DescField): GraphQLInputType => {
    if (f.fieldKind === "map") return JSONScalar;
    const item = f.scalar !== undefined ? scalarType(f.scalar) : f.enum ? enumType(f.enum) : inputType(f.message);
    // Nothing is required in proto3: a missing value is refused, naming the field, by validation.
    return f.fieldKind === "list" ? new GraphQLList(new GraphQLNonNull(item)) : item;
  };

  const args = (desc: DescMessage): GraphQLFieldConfigArgumentMap =>
    Object.fromEntries(desc.fields.map((f) => [f.jsonName, { type: fieldInput(f), description: describe(f) }]));

  // An empty message cannot be a GraphQL object type: such a result is `true` on success.
  // Every result is nullable: a failed call is null with its error in `errors`, and
  // the operation's other fields keep their results (a non-null one would null them all).
  const resultType = (desc: DescMessage): GraphQLOutputType =>
    desc.fields.length === 0 ? GraphQLBoolean : outputType(desc);

  const query: Record<string, GraphQLFieldConfig<unknown, CallContext>> = {};
  const mutation: Record<string, GraphQLFieldConfig<unknown, CallContext>> = {};
  const subscription: Record<string, GraphQLFieldConfig<unknown, CallContext>> = {};
  for (const service of services) {
    for (const method of service.methods) {
      const field = {
        type: resultType(method.output),
        description: describe(method),
        args: args(method.input),
      };
      const empty = method.output.fields.length === 0;
      if (method.methodKind === "unary") {
        const resolve = async (_: unknown, a: unknown, context: CallContext) => {
          const result = await caller.unary(method, a, context);
          return empty ? true : result;
        };
        (readOnly.test(method.name) ? query : mutation)[fieldName(method)] = { ...field, resolve };
      } else if (method.methodKind === "server_streaming") {
        subscription[fieldName(method)] = {
          ...field,
          subscribe: (_, a, context) => caller.stream(method, a, context),
          resolve: (payload: unknown) => {
            if (payload instanceof GraphQLError) throw payload;
            return empty ? true : payload;
          },
        };
      }
      // Client and bidi streams have no GraphQL counterpart; the contract has none.
    }
  }
  const root = (name: string, description: string, fields: Record<string, GraphQLFieldConfig<unknown, CallContext>>) =>
    Object.keys(fields).length > 0 ? new GraphQLObjectType({ name, description, fields }) : undefined;
  return new GraphQLSchema({
    query: root("Query", "The methods that only read (Get, Search), as service + method.", query),
    mutation: root("Mutation", "The methods that change state, as service + method.", mutation),
    subscription: root("Subscription", "The server-streaming methods: each event as it happens.", subscription),
  });
}

/** A GraphQL field name for a method: "EntityService" + "Get" is "entityGet". */
export function fieldName(method: DescMethod): string {
  const service = method.parent.name.replace(/Service$/, "");
  return service.charAt(0).toLowerCase() + service.slice(1) + method.name;
}

/** The GraphQL name of a message or enum: its proto name without the package, nested names joined by "_". */
function typeName(desc: DescMessage | DescEnum): string {
  const pkg = desc.file.proto.package;
  return (pkg ? desc.typeName.slice(pkg.length + 1) : desc.typeName).replaceAll(".", "_");
}

/** GraphQL's Int is 32-bit: every 64-bit integer is an Int64 string, as in the proto3 JSON mapping. */
function scalarType(scalar: ScalarType): GraphQLScalarType {
  switch (scalar) {
    case ScalarType.INT64:
    case ScalarType.UINT64:
    case ScalarType.SINT64:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return Int64;
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return GraphQLInt;
    // Unsigned 32-bit values exceed Int; Float holds them exactly and stays a JSON number.
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
    case ScalarType.FLOAT:
    case ScalarType.DOUBLE:
      return GraphQLFloat;
    case ScalarType.BOOL:
      return GraphQLBoolean;
    // Bytes are base64 strings in the proto3 JSON mapping.
    case ScalarType.STRING:
    case ScalarType.BYTES:
      return GraphQLString;
  }
}
