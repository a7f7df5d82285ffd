import type { DescEnum, DescFile, DescMessage, DescService } from "@bufbuild/protobuf";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { Code } from "@connectrpc/connect";
import type { ServerReflectionRequest, ServerReflectionResponse } from "../gen/grpc/reflection/v1/reflection_pb.js";
import {
  ErrorResponseSchema,
  ExtensionNumberResponseSchema,
  FileDescriptorResponseSchema,
  ListServiceResponseSchema,
  ServerReflection,
  ServerReflectionRequestSchema,
  ServerReflectionResponseSchema,
} from "../gen/grpc/reflection/v1/reflection_pb.js";
import {
  ServerReflectionRequestSchema as AlphaRequestSchema,
  ServerReflectionResponseSchema as AlphaResponseSchema,
  ServerReflection as ServerReflectionAlpha,
} from "../gen/grpc/reflection/v1alpha/reflection_pb.js";

/** The reflection services, to serve beside the others. */
export const REFLECTION_SERVICES = [ServerReflection, ServerReflectionAlpha] as const;

/** The descriptors of the served services, indexed the ways reflection asks for them. */
interface Index {
  services: string[];
  files: Map<string, DescFile>;
  /** Fully-qualified name of every message, enum, service, method and extension → its file. */
  symbols: Map<string, DescFile>;
  /** Extendee type name → extension number → the file declaring it. */
  extensions: Map<string, Map<number, DescFile>>;
}

function buildIndex(services: readonly DescService[]): Index {
  const index: Index = {
    services: services.map((s) => s.typeName),
    files: new Map(),
    symbols: new Map(),
    extensions: new Map(),
  };
  const addMessage = (file: DescFile, message: DescMessage) => {
    index.symbols.set(message.typeName, file);
    for (const nested of message.nestedMessages) addMessage(file, nested);
    for (const e of message.nestedEnums) addEnum(file, e);
    for (const ext of message.nestedExtensions) addExtension(file, ext.typeName, ext.extendee.typeName, ext.number);
  };
  const addEnum = (file: DescFile, e: DescEnum) => index.symbols.set(e.typeName, file);
  const addExtension = (file: DescFile, name: string, extendee: string, number: number) => {
    index.symbols.set(name, file);
    let byNumber = index.extensions.get(extendee);
    if (!byNumber) {
      byNumber = new Map();
      index.extensions.set(extendee, byNumber);
    }
    byNumber.set(number, file);
  };
  const addFile = (file: DescFile) => {
    // DescFile.name has no ".proto"; reflection names files as they were compiled.
    if (index.files.has(file.proto.name)) return;
    index.files.set(file.proto.name, file);
    for (const dep of file.dependencies) addFile(dep);
    for (const message of file.messages) addMessage(file, message);
    for (const e of file.enums) addEnum(file, e);
    for (const ext of file.extensions) addExtension(file, ext.typeName, ext.extendee.typeName, ext.number);
    for (const service of file.services) {
      index.symbols.set(service.typeName, file);
      for (const method of service.methods) index.symbols.set(`${service.typeName}.${method.name}`, file);
    }
  };
  for (const service of services) addFile(service.file);
  return index;
}

type Answer = ServerReflectionResponse["messageResponse"];

function failed(code: Code, errorMessage: string): Answer {
  return { case: "errorResponse", value: create(ErrorResponseSchema, { errorCode: code, errorMessage }) };
}

/**
 * One reflection stream: answers each request in turn. A file comes with the
 * files it imports, transitively, except those already sent on this stream,
 * as grpc-go does, so a client needs one round trip per symbol.
 */
function createResponder(index: Index): (req: ServerReflectionRequest) => ServerReflectionResponse {
  const sent = new Set<string>();
  const withImports = (file: DescFile): Uint8Array[] => {
    const out: Uint8Array[] = [];
    const visit = (f: DescFile) => {
      if (sent.has(f.name)) return;
      sent.add(f.name);
      out.push(toBinary(FileDescriptorProtoSchema, f.proto));
      for (const dep of f.dependencies) visit(dep);
    };
    // The file asked for always comes, first, even when it was sent before.
    sent.delete(file.name);
    visit(file);
    return out;
  };
  const files = (file: DescFile | undefined, what: string): Answer =>
    file
      ? {
          case: "fileDescriptorResponse",
          value: create(FileDescriptorResponseSchema, { fileDescriptorProto: withImports(file) }),
        }
      : failed(Code.NotFound, `${what} not found`);

  const answer = (req: ServerReflectionRequest): Answer => {
    const r = req.messageRequest;
    switch (r.case) {
      case "listServices":
        return {
          case: "listServicesResponse",
          value: create(ListServiceResponseSchema, { service: index.services.map((name) => ({ name })) }),
        };
      case "fileByFilename":
        return files(index.files.get(r.value), `file "${r.value}"`);
      case "fileContainingSymbol": {
        // A field or enum value is found through the message or scope that holds it.
        const symbol = r.value.replace(/^\./, "");
        const parent = symbol.slice(0, Math.max(0, symbol.lastIndexOf(".")));
        return files(index.symbols.get(symbol) ?? index.symbols.get(parent), `symbol "${symbol}"`);
      }
      case "fileContainingExtension":
        return files(
          index.extensions.get(r.value.containingType)?.get(r.value.extensionNumber),
          `extension ${r.value.extensionNumber} of "${r.value.containingType}"`,
        );
      case "allExtensionNumbersOfType": {
        if (!index.symbols.has(r.value)) return failed(Code.NotFound, `type "${r.value}" not found`);
        return {
          case: "allExtensionNumbersResponse",
          value: create(ExtensionNumberResponseSchema, {
            baseTypeName: r.value,
            extensionNumber: [...(index.extensions.get(r.value)?.keys() ?? [])].sort((a, b) => a - b),
          }),
        };
      }
      default:
        return failed(Code.InvalidArgument, "empty reflection request");
    }
  };
  return (req) =>
    create(ServerReflectionResponseSchema, { validHost: req.host, originalRequest: req, messageResponse: answer(req) });
}

/**
 * gRPC server reflection, v1 and v1alpha, over the descriptors of `services`
 * (and every file they import), so `buf curl`, grpcurl and Postman work
 * without a schema file. The two versions share their wire format, so
 * v1alpha is answered by the v1 code.
 *
 * @example
 * router.service(ServerReflection, createReflectionServices(services).v1);
 */
export function createReflectionServices(services: readonly DescService[]): {
  v1: ServiceImpl<typeof ServerReflection>;
  v1alpha: ServiceImpl<typeof ServerReflectionAlpha>;
} {
  const index = buildIndex([...services, ...REFLECTION_SERVICES]);
  return {
    v1: {
      async *serverReflectionInfo(requests) {
        const respond = createResponder(index);
        for await (const req of requests) yield respond(req);
      },
    },
    v1alpha: {
      async *serverReflectionInfo(requests) {
        const respond = createResponder(index);
        for await (const req of requests) {
          const v1 = fromBinary(ServerReflectionRequestSchema, toBinary(AlphaRequestSchema, req));
          yield fromBinary(AlphaResponseSchema, toBinary(ServerReflectionResponseSchema, respond(v1)));
        }
      },
    },
  };
}
