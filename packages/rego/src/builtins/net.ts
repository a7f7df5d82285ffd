import { BuiltinError } from "../errors.js";
import type { BuiltinTable } from "./args.js";
import { str } from "./args.js";

/**
 * These follow Go's net package, which OPA uses: an address is 16 bytes (an
 * IPv4 address is stored IPv4-mapped, ::ffff:a.b.c.d); a network keeps the
 * length it was written in (4 bytes for a.b.c.d/n, 16 for IPv6). An IPv4
 * address is only ever inside an IPv4 network, which includes an IPv6
 * network whose (masked) address is IPv4-mapped, such as ::ffff:0:0/96.
 */

/** Dotted-quad IPv4 as Go's netip parses it (no leading zeros), or undefined. */
function parseIpv4(s: string): number[] | undefined {
  const parts = s.split(".");
  if (parts.length !== 4) return undefined;
  const out: number[] = [];
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || (p.length > 1 && p[0] === "0")) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    out.push(n);
  }
  return out;
}

/** IPv6 text (with an optional trailing dotted quad) as 16 bytes, or undefined. */
function parseIpv6(s: string): number[] | undefined {
  if (!s.includes(":") || !/^[0-9A-Fa-f:.]+$/.test(s)) return undefined;
  let text = s;
  let tail: number[] = [];
  const lastColon = s.lastIndexOf(":");
  if (s.slice(lastColon + 1).includes(".")) {
    const v4 = parseIpv4(s.slice(lastColon + 1));
    if (!v4) return undefined;
    tail = v4;
    text = `${s.slice(0, lastColon + 1)}0:0`;
  }
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const groups = (h: string) => (h === "" ? [] : h.split(":"));
  const head = groups(halves[0]!);
  const back = halves.length === 2 ? groups(halves[1]!) : [];
  const missing = 8 - head.length - back.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const all = [...head, ...new Array(halves.length === 2 ? missing : 0).fill("0"), ...back];
  const bytes: number[] = [];
  for (const g of all) {
    if (!/^[0-9A-Fa-f]{1,4}$/.test(g)) return undefined;
    const n = Number.parseInt(g, 16);
    bytes.push(n >> 8, n & 0xff);
  }
  if (tail.length) bytes.splice(12, 4, ...tail);
  return bytes;
}

const v4InV6 = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

/** Go's net.ParseIP: 16 bytes, IPv4 mapped into IPv6. */
function parseIp(s: string): number[] | undefined {
  const v4 = parseIpv4(s);
  if (v4) return [...v4InV6, ...v4];
  return parseIpv6(s);
}

/** Go's IP.To4: the 4 bytes of an IPv4 or IPv4-mapped address, or undefined. */
function to4(ip: number[]): number[] | undefined {
  if (ip.length === 4) return ip;
  return v4InV6.every((b, i) => ip[i] === b) ? ip.slice(12) : undefined;
}

interface Net {
  /** The network address, masked: 4 bytes (written as IPv4) or 16. */
  ip: number[];
  /** The mask, as long as ip. */
  mask: number[];
}

function maskOf(bits: number, bytes: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < bytes; i++) {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    out.push((0xff << (8 - keep)) & 0xff);
  }
  return out;
}

/** Go's net.ParseCIDR. */
function parseCidr(s: string): Net {
  const slash = s.indexOf("/");
  const fail = (): never => {
    throw new BuiltinError(`invalid CIDR address: ${s}`);
  };
  if (slash < 0) fail();
  const addr = s.slice(0, slash);
  const bitsText = s.slice(slash + 1);
  const v4 = parseIpv4(addr);
  const ip = v4 ?? parseIpv6(addr);
  if (!ip || !/^\d+$/.test(bitsText)) fail();
  const bits = Number(bitsText);
  if (bits > ip!.length * 8) fail();
  const mask = maskOf(bits, ip!.length);
  return { ip: ip!.map((b, i) => b & mask[i]!), mask };
}

/** Go's IPNet.Contains. */
function contains(net: Net, ip: number[]): boolean {
  let nn = to4(net.ip);
  let m = net.mask;
  if (nn) {
    if (m.length === 16) m = m.slice(12);
  } else nn = net.ip;
  const addr = to4(ip) ?? ip;
  if (addr.length !== nn.length) return false;
  for (let i = 0; i < addr.length; i++) if ((nn[i]! & m[i]!) !== (addr[i]! & m[i]!)) return false;
  return true;
}

/** The last address of a network (host bits all set), as long as its address. */
function lastIp(net: Net): number[] {
  return net.ip.map((b, i) => b | (~net.mask[i]! & 0xff));
}

/** net.cidr_contains, net.cidr_intersects, net.cidr_is_valid. */
export const netBuiltins: BuiltinTable = {
  "net.cidr_contains": {
    arity: 2,
    fn: (args) => {
      const net = parseCidr(str(args, 0));
      const other = str(args, 1);
      const ip = parseIp(other);
      if (ip) return contains(net, ip);
      let inner: Net;
      try {
        inner = parseCidr(other);
      } catch {
        throw new BuiltinError(`not a valid textual representation of an IP address or CIDR: ${other}`);
      }
      // A contains B when it contains B's first and last addresses.
      return contains(net, inner.ip) && contains(net, lastIp(inner));
    },
  },
  "net.cidr_intersects": {
    arity: 2,
    fn: (args) => {
      const a = parseCidr(str(args, 0));
      const b = parseCidr(str(args, 1));
      return contains(a, b.ip) || contains(b, a.ip);
    },
  },
  "net.cidr_is_valid": {
    arity: 1,
    fn: ([s]) => {
      if (typeof s !== "string") return false;
      try {
        parseCidr(s);
        return true;
      } catch {
        return false;
      }
    },
  },
};
