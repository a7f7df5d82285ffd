import type { DocumentNode, GraphQLSchema, Source } from "graphql";
import { BREAK, GraphQLError, parse, specifiedRules, validate, visit } from "graphql";

/**
 * What one GraphQL document may make the gateway do, checked the same way for
 * every transport (HTTP GET and POST, Server-Sent Events, WebSocket) before
 * anything runs: every field is an RPC, so 10,000 aliases would be 10,000
 * calls, and a document nested thousands deep would exhaust the parser's stack.
 */

/** Most fields one document may select, aliases and fragments included (a fragment's fields count once). */
export const MAX_FIELDS = 200;
/** Deepest selection nesting of one operation or fragment. */
export const MAX_DEPTH = 12;
/**
 * Deepest nesting of `{`, `[` and `(` in a document, values written inline
 * included. Far above what the limits above and the values' own (32 levels)
 * allow, and far below what would exhaust graphql-js's recursive parser.
 */
export const MAX_NESTING = 64;
/** Most lexical tokens in one document: bounds the work of parsing and validating it. */
export const MAX_TOKENS = 50_000;

/** A document refused for its size: a bad request, whatever the transport. */
function refused(message: string): GraphQLError {
  return new GraphQLError(message);
}

/**
 * Parses a GraphQL document within the limits above; throws a GraphQLError
 * (a syntax error, or the limit broken) otherwise, never a RangeError.
 */
export function parseOperation(source: string | Source): DocumentNode {
  const body = typeof source === "string" ? source : source.body;
  if (nestsDeeperThan(body, MAX_NESTING)) {
    throw refused(`a document may nest braces, brackets and parentheses at most ${MAX_NESTING} levels deep`);
  }
  let document: DocumentNode;
  try {
    document = parse(source, { maxTokens: MAX_TOKENS });
  } catch (err) {
    // graphql-js words it "Document contains more that … tokens".
    if (err instanceof GraphQLError && /contains more th(?:an|at) \d+ tokens/.test(err.message)) {
      throw refused(`a document may have at most ${MAX_TOKENS} tokens`);
    }
    throw err;
  }
  const problem = sizeProblem(document);
  if (problem) throw refused(problem);
  return document;
}

/**
 * Parses and validates an operation as the HTTP door does (graphql-yoga calls
 * `parseOperation` and the same rules), for transports that do it themselves:
 * the document, or the errors that refuse it.
 */
export function checkOperation(
  schema: GraphQLSchema,
  query: string,
): { document: DocumentNode; errors?: undefined } | { document?: undefined; errors: readonly GraphQLError[] } {
  let document: DocumentNode;
  try {
    document = parseOperation(query);
  } catch (err) {
    if (err instanceof GraphQLError) return { errors: [err] };
    throw err;
  }
  const errors = validate(schema, document, specifiedRules);
  return errors.length > 0 ? { errors } : { document };
}

/**
 * Whether `{`, `[` or `(` nest deeper than `max` in a document, outside
 * strings and comments: a linear scan, so that the parser never meets such a
 * document.
 */
function nestsDeeperThan(body: string, max: number): boolean {
  let depth = 0;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c === "#") {
      while (i + 1 < body.length && body[i + 1] !== "\n" && body[i + 1] !== "\r") i++;
    } else if (c === '"') {
      if (body.startsWith('"""', i)) {
        // A block string ends at """; \""" is an escaped one.
        i += 3;
        while (i < body.length && !body.startsWith('"""', i)) i += body.startsWith('\\"""', i) ? 4 : 1;
        i += 2;
      } else {
        // A string ends at an unescaped " (or, malformed, at the end of its line).
        i++;
        while (i < body.length && body[i] !== '"' && body[i] !== "\n" && body[i] !== "\r") {
          i += body[i] === "\\" ? 2 : 1;
        }
      }
    } else if (c === "{" || c === "[" || c === "(") {
      if (++depth > max) return true;
    } else if ((c === "}" || c === "]" || c === ")") && depth > 0) {
      depth--;
    }
  }
  return false;
}

/**
 * What is too big in a parsed document, if anything: more than MAX_FIELDS
 * fields written, or fields nested deeper than MAX_DEPTH. Fields are counted
 * where they are written: a fragment's once, each alias on its own.
 */
function sizeProblem(document: DocumentNode): string | undefined {
  let fields = 0;
  let depth = 0;
  let problem: string | undefined;
  // visit() walks with a stack of its own, not by recursion.
  visit(document, {
    Field: {
      enter() {
        fields++;
        depth++;
        if (fields > MAX_FIELDS) problem = `an operation may select at most ${MAX_FIELDS} fields`;
        else if (depth > MAX_DEPTH) problem = `an operation may nest at most ${MAX_DEPTH} levels`;
        return problem === undefined ? undefined : BREAK;
      },
      leave() {
        depth--;
      },
    },
  });
  return problem;
}
