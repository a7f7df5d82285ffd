import { aggregateBuiltins } from "./aggregates.js";
import type { Builtin } from "./args.js";
import { collectionBuiltins } from "./collections.js";
import { encodingBuiltins } from "./encoding.js";
import { globBuiltins } from "./glob.js";
import { jwtBuiltins } from "./jwt.js";
import { netBuiltins } from "./net.js";
import { numberBuiltins } from "./numbers.js";
import { regexBuiltins } from "./regex.js";
import { stringBuiltins } from "./strings.js";
import { timeBuiltins } from "./time.js";
import { typeBuiltins } from "./types.js";

export type { Builtin } from "./args.js";

/** Every built-in the engine implements, by its Rego name. A call to any other stops compile. */
export const builtins: ReadonlyMap<string, Builtin> = new Map(
  Object.entries({
    ...numberBuiltins,
    ...aggregateBuiltins,
    ...stringBuiltins,
    ...regexBuiltins,
    ...globBuiltins,
    ...collectionBuiltins,
    ...encodingBuiltins,
    ...timeBuiltins,
    ...netBuiltins,
    ...jwtBuiltins,
    ...typeBuiltins,
  }),
);
