/** An unpaired surrogate: JSON carries it, UTF-8 (so binary protobuf) cannot. */
const loneSurrogate = /\p{Cs}/u;

/**
 * What keeps a string from being stored and matched the same on every backend,
 * if anything: a lone surrogate, or NUL (PostgreSQL's JSONB refuses it). Applied
 * to entity values and to search filters alike.
 */
export function stringProblem(s: string): string | undefined {
  if (loneSurrogate.test(s)) return "must not contain unpaired UTF-16 surrogates";
  if (s.includes("\u0000")) return "must not contain NUL characters";
  return undefined;
}
