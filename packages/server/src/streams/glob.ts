/**
 * Compiles a stream pattern into a matcher. "*" matches any run of characters
 * (including none) and "?" exactly one; everything else is literal, and the
 * whole name must match. "*" alone matches every name.
 */
export function compileGlob(pattern: string): (name: string) => boolean {
  if (pattern === "*") return () => true;
  if (!/[*?]/.test(pattern)) return (name) => name === pattern;
  let source = "";
  for (const ch of pattern) {
    if (ch === "*") source += ".*";
    else if (ch === "?") source += ".";
    else source += ch.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  }
  const re = new RegExp(`^${source}$`, "su");
  return (name) => re.test(name);
}
