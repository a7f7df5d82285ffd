import type {
  DescEnum,
  DescEnumValue,
  DescField,
  DescMessage,
  DescMethod,
  DescService,
  JsonValue,
} from "@bufbuild/protobuf";
import { fromJson } from "@bufbuild/protobuf";
import type { DescriptorProto, EnumDescriptorProto, SourceCodeInfo_Location } from "@bufbuild/protobuf/wkt";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
// Written by the build (`buf build`, with source info): the descriptors
// embedded in the generated code have their comments stripped.
import descriptorSet from "../../gen/descriptor-set.json" with { type: "json" };

type Described = DescMessage | DescField | DescEnum | DescEnumValue | DescService | DescMethod;

// Field numbers in descriptor.proto that make up a source-info path.
const FILE_MESSAGE = 4;
const FILE_ENUM = 5;
const FILE_SERVICE = 6;
const MESSAGE_FIELD = 2;
const MESSAGE_NESTED = 3;
const MESSAGE_ENUM = 4;
const ENUM_VALUE = 2;
const SERVICE_METHOD = 2;

/** The proto comments of the contract, by the name `keyOf` gives each element. */
export type Comments = ReadonlyMap<string, string>;

/** Reads the comments of every message, field, enum, value, service and method of the contract. */
export function loadComments(): Comments {
  const set = fromJson(FileDescriptorSetSchema, descriptorSet as unknown as JsonValue, {
    // Options such as google.api.http are not needed here, and their extensions are not registered.
    ignoreUnknownFields: true,
  });
  const out = new Map<string, string>();
  for (const file of set.file) {
    const byPath = new Map<string, SourceCodeInfo_Location>();
    for (const location of file.sourceCodeInfo?.location ?? []) byPath.set(location.path.join("."), location);
    const note = (key: string, path: number[]) => {
      const text = clean(byPath.get(path.join("."))?.leadingComments);
      if (text) out.set(key, text);
    };
    const prefix = file.package ? `${file.package}.` : "";
    const enumComments = (e: EnumDescriptorProto, name: string, path: number[]) => {
      note(name, path);
      for (const [i, v] of e.value.entries()) note(`${name}.${v.name}`, [...path, ENUM_VALUE, i]);
    };
    const messageComments = (m: DescriptorProto, name: string, path: number[]) => {
      note(name, path);
      for (const [i, f] of m.field.entries()) note(`${name}.${f.name}`, [...path, MESSAGE_FIELD, i]);
      for (const [i, n] of m.nestedType.entries())
        messageComments(n, `${name}.${n.name}`, [...path, MESSAGE_NESTED, i]);
      for (const [i, e] of m.enumType.entries()) enumComments(e, `${name}.${e.name}`, [...path, MESSAGE_ENUM, i]);
    };
    for (const [i, m] of file.messageType.entries()) messageComments(m, prefix + m.name, [FILE_MESSAGE, i]);
    for (const [i, e] of file.enumType.entries()) enumComments(e, prefix + e.name, [FILE_ENUM, i]);
    for (const [i, s] of file.service.entries()) {
      note(prefix + s.name, [FILE_SERVICE, i]);
      for (const [j, m] of s.method.entries())
        note(`${prefix}${s.name}.${m.name}`, [FILE_SERVICE, i, SERVICE_METHOD, j]);
    }
  }
  return out;
}

/** The key of a descriptor in `Comments`: its full proto name (enum values under their enum). */
export function keyOf(desc: Described): string {
  return "typeName" in desc ? desc.typeName : `${desc.parent.typeName}.${desc.name}`;
}

/** A proto comment as a GraphQL description: the one space after `//` dropped, blank edges trimmed. */
function clean(comment: string | undefined): string | undefined {
  if (!comment) return undefined;
  const text = comment
    .split("\n")
    .map((line) => line.replace(/^ /, "").trimEnd())
    .join("\n")
    .trim();
  return text || undefined;
}
