/**
 * Compiles a stream pattern into a matcher. "*" matches any run of characters
 * (including none) and "?" exactly one; everything else is literal, and the
 * whole name must match. "*" alone matches every name.
 *
 * Matching is the classic two-pointer wildcard walk, at most O(name × pattern)
 * steps: a pattern such as "*a*a*a*b" cannot make it backtrack exponentially,
 * as a regular expression would, on the delivery path shared by all streams.
 */
export function compileGlob(pattern: string): (name: string) => boolean {
  if (pattern === "*") return () => true;
  if (!/[*?]/.test(pattern)) return (name) => name === pattern;
  const p = [...pattern];
  return (name) => {
    const s = [...name];
    let i = 0; // in s
    let j = 0; // in p
    let star = -1; // position in p of the last "*"
    let resume = 0; // where in s that "*" resumes matching
    while (i < s.length) {
      if (j < p.length && (p[j] === "?" || (p[j] !== "*" && p[j] === s[i]))) {
        i++;
        j++;
      } else if (j < p.length && p[j] === "*") {
        star = j++;
        resume = i;
      } else if (star >= 0) {
        j = star + 1;
        i = ++resume;
      } else {
        return false;
      }
    }
    while (j < p.length && p[j] === "*") j++;
    return j === p.length;
  };
}
