import type { IncomingHttpHeaders } from "node:http2";

/**
 * A Fetch `Headers` on a plain Map, for the direct gRPC path's request,
 * response and trailer headers. Node 20's `Headers` (undici's) checks every
 * name and value in JavaScript, which costs several microseconds a call on
 * a path that handles each gRPC call in about a hundred; the names and
 * values here come from nghttp2, which has checked them, or from the
 * gateway's own code, and are checked again by Node when they are sent.
 * Iteration is in sorted name order, as with `Headers`.
 */
export class HeaderMap implements Headers {
  private readonly map = new Map<string, string>();

  constructor(init?: Record<string, string>) {
    if (init) for (const name of Object.keys(init)) this.map.set(name.toLowerCase(), init[name] as string);
  }

  /**
   * The headers of an HTTP/2 request as the handlers see them: without
   * pseudo-headers and without `skip` (a header only the gateway may set),
   * repeated values joined as `Headers` joins them.
   */
  static fromRequest(headers: IncomingHttpHeaders, skip: string): HeaderMap {
    const out = new HeaderMap();
    for (const name of Object.keys(headers)) {
      if (name.charCodeAt(0) === 58 /* ":" */ || name === skip) continue;
      const value = headers[name];
      if (value === undefined) continue;
      out.map.set(name, Array.isArray(value) ? value.join(", ") : String(value));
    }
    return out;
  }

  append(name: string, value: string): void {
    const key = name.toLowerCase();
    const current = this.map.get(key);
    this.map.set(key, current === undefined ? String(value) : `${current}, ${value}`);
  }

  delete(name: string): void {
    this.map.delete(name.toLowerCase());
  }

  get(name: string): string | null {
    return this.map.get(name.toLowerCase()) ?? null;
  }

  getSetCookie(): string[] {
    const value = this.map.get("set-cookie");
    return value === undefined ? [] : [value];
  }

  has(name: string): boolean {
    return this.map.has(name.toLowerCase());
  }

  set(name: string, value: string): void {
    this.map.set(name.toLowerCase(), String(value));
  }

  forEach(callback: (value: string, key: string, parent: Headers) => void, thisArg?: unknown): void {
    for (const [key, value] of this.entries()) callback.call(thisArg, value, key, this);
  }

  *entries(): IterableIterator<[string, string]> {
    const keys = [...this.map.keys()];
    if (keys.length > 1) keys.sort();
    for (const key of keys) yield [key, this.map.get(key) as string];
  }

  *keys(): IterableIterator<string> {
    for (const [key] of this.entries()) yield key;
  }

  *values(): IterableIterator<string> {
    for (const [, value] of this.entries()) yield value;
  }

  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.entries();
  }

  /** The headers as Node's HTTP/2 API takes them; with `status`, response headers led by `:status`. */
  toObject(status?: number): Record<string, string | number> {
    const out: Record<string, string | number> = status === undefined ? {} : { ":status": status };
    for (const [key, value] of this.map) out[key] = value;
    return out;
  }

  /** Makes this hold exactly what `source` holds (an interceptor may have returned other Headers). */
  replaceWith(source: Headers): void {
    if (source === this) return;
    this.map.clear();
    source.forEach((value, key) => {
      this.append(key, value);
    });
  }
}
