import { BuiltinError } from "../errors.js";
import type { PlainObject, Value } from "../value.js";
import { objectGet } from "../value.js";
import type { BuiltinTable } from "./args.js";
import { str } from "./args.js";
import { parseJsonObject } from "./encoding.js";

const part = /^[A-Za-z0-9_-]*={0,2}$/;

function segment(s: string, what: string): Buffer {
  if (!part.test(s)) throw new BuiltinError(`JWT ${what} had invalid encoding`);
  return Buffer.from(s.replace(/=+$/, ""), "base64url");
}

/** [header, payload, signature as hex], without verifying anything; a nested JWT (cty "JWT") is opened. */
function decode(token: string, depth = 0): Value[] {
  const parts = token.split(".");
  if (parts.length !== 3) throw new BuiltinError("encoded JWT had no period separators");
  const header = parseJsonObject(segment(parts[0]!, "header").toString("utf8"), "JWT header");
  const body = segment(parts[1]!, "payload").toString("utf8");
  const cty = objectGet(header as PlainObject, "cty");
  if (typeof cty === "string" && cty.toUpperCase() === "JWT" && depth < 8) return decode(body, depth + 1);
  const payload = parseJsonObject(body, "JWT payload");
  const signature = segment(parts[2]!, "signature").toString("hex");
  return [header, payload, signature];
}

/** io.jwt.decode. Verification built-ins (io.jwt.verify_*, decode_verify) are not implemented. */
export const jwtBuiltins: BuiltinTable = {
  "io.jwt.decode": { arity: 1, fn: (args) => decode(str(args, 0)) },
};
