import { configureTextEncoding } from "@bufbuild/protobuf/wire";

/**
 * Makes protobuf-es keep a string's leading U+FEFF (a byte order mark) when
 * it reads binary, as the gateway's own decoder does. The WHATWG TextDecoder
 * protobuf-es uses by default drops one at the start of every string field,
 * so `"\uFEFFX"` sent over gRPC-Web or Connect came back as `"X"`. For the
 * process that calls it: the gateway does, at start-up.
 */
export function keepByteOrderMarks(): void {
  const encoder = new TextEncoder();
  const lenient = new TextDecoder("utf-8", { ignoreBOM: true });
  const strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  configureTextEncoding({
    encodeUtf8: (text) => encoder.encode(text) as Uint8Array<ArrayBuffer>,
    decodeUtf8: (bytes, validate) => (validate ? strict : lenient).decode(bytes),
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
