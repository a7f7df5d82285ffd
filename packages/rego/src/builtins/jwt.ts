import { BuiltinError } from "../errors.js";
import type { PlainObject, Value } from "../value.js";
import { objectGet } from "../value.js";
import type { BuiltinTable } from "./args.js";
import { str } from "./args.js";
import { base64UrlBytes, parseJsonObject } from "./encoding.js";

function segment(s: string, what: string): Buffer {
  try {
    return base64UrlBytes(s);
  } catch {
    throw new BuiltinError(`JWT ${what} had invalid encoding`);
  }
}

/**
 * [header, payload, signature as hex], without verifying anything, as OPA's
 * io.jwt.decode: a JWE (a header with "enc") is refused; a nested JWT
 * (header cty exactly "JWT") is opened, its quotes trimmed.
 */
function decode(token: string, depth = 0): Value[] {
  if (!token.includes(".")) throw new BuiltinError("encoded JWT had no period separators");
  const parts = token.split(".");
  if (parts.length !== 3) throw new BuiltinError(`encoded JWT must have 3 sections, found ${parts.length}`);
  const header = parseJsonObject(segment(parts[0]!, "header").toString("utf8"), "JWT header");
  if (objectGet(header as PlainObject, "enc") !== undefined) {
    throw new BuiltinError("JWT is a JWE object, which is not supported");
  }
  const body = segment(parts[1]!, "payload").toString("utf8");
  const cty = objectGet(header as PlainObject, "cty");
  if (cty !== undefined) {
    if (typeof cty !== "string") throw new BuiltinError("JWT header cty must be a string");
    if (cty === "JWT") {
      if (depth >= 16) throw new BuiltinError("JWT nested too deeply");
      return decode(body.replace(/^["']+|["']+$/g, ""), depth + 1);
    }
  }
  const payload = parseJsonObject(body, "JWT payload");
  const signature = segment(parts[2]!, "signature").toString("hex");
  return [header, payload, signature];
}

/** io.jwt.decode. Verification built-ins (io.jwt.verify_*, decode_verify) are not implemented. */
export const jwtBuiltins: BuiltinTable = {
  "io.jwt.decode": { arity: 1, fn: (args) => decode(str(args, 0)) },
};
