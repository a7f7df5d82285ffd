import { configureTextEncoding } from "@bufbuild/protobuf/wire";

// A leading U+FEFF is part of the string, not a byte order mark to drop.
const strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const lenient = new TextDecoder("utf-8", { ignoreBOM: true });

/**
 * UTF-8 bytes as a string, a leading U+FEFF kept. With `validate`, bytes that
 * are not UTF-8 throw; without, they read as U+FFFD.
 */
export function decodeUtf8(bytes: Uint8Array, validate = false): string {
  return (validate ? strict : lenient).decode(bytes);
}

/**
 * Makes protobuf-es keep a string's leading U+FEFF (a byte order mark) when
 * it reads binary, as the gateway's own decoder does. The WHATWG TextDecoder
 * protobuf-es uses by default drops one at the start of every string field,
 * so `"\uFEFFX"` sent over gRPC-Web or Connect came back as `"X"`. For the
 * process that calls it: the gateway does, at start-up.
 */
export function keepByteOrderMarks(): void {
  const encoder = new TextEncoder();
  configureTextEncoding({
    encodeUtf8: (text) => encoder.encode(text) as Uint8Array<ArrayBuffer>,
    decodeUtf8,
    // As protobuf-es checks: a string with an unpaired surrogate is not valid UTF-8.
    checkUtf8(text) {
      try {
        encodeURIComponent(text);
        return true;
      } catch {
        return false;
      }
    },
  });
}
