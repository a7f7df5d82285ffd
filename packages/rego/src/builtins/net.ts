import { BuiltinError } from "../errors.js";
import type { BuiltinTable } from "./args.js";
import { str } from "./args.js";

/** An address as bytes: 4 for IPv4 (and IPv4-mapped IPv6, as Go's To4 does), 16 for IPv6. */
function parseIp(s: string): number[] | undefined {
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(s)) {
    const parts = s.split(".").map(Number);
    if (parts.some((p) => p > 255) || s.split(".").some((p) => p.length > 1 && p.startsWith("0"))) return undefined;
    return parts;
  }
  if (!s.includes(":") || !/^[0-9A-Fa-f:.]+$/.test(s)) return undefined;
  let tail: number[] = [];
  let text = s;
  const lastColon = s.lastIndexOf(":");
  if (s.slice(lastColon + 1).includes(".")) {
    const v4 = parseIp(s.slice(lastColon + 1));
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
  // IPv4-mapped (::ffff:a.b.c.d) compares as IPv4.
  if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) return bytes.slice(12);
  return bytes;
}

interface Net {
  ip: number[];
  bits: number;
}

function parseCidr(s: string): Net {
  const slash = s.indexOf("/");
  if (slash < 0) throw new BuiltinError(`invalid CIDR address: ${s}`);
  const addr = s.slice(0, slash);
  const bitsText = s.slice(slash + 1);
  let ip = parseIp(addr);
  // An IPv6 prefix written for a mapped address keeps its IPv6 length.
  if (ip && ip.length === 4 && addr.includes(":")) ip = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...ip];
  if (!ip || !/^\d{1,3}$/.test(bitsText)) throw new BuiltinError(`invalid CIDR address: ${s}`);
  const bits = Number(bitsText);
  if (bits > ip.length * 8) throw new BuiltinError(`invalid CIDR address: ${s}`);
  return { ip: masked(ip, bits), bits };
}

function masked(ip: number[], bits: number): number[] {
  return ip.map((b, i) => {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    return b & ((0xff << (8 - keep)) & 0xff);
  });
}

function contains(net: Net, ip: number[]): boolean {
  let addr = ip;
  if (net.ip.length === 16 && ip.length === 4) addr = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...ip];
  if (addr.length !== net.ip.length) return false;
  return masked(addr, net.bits).every((b, i) => b === net.ip[i]);
}

/** An address or a network: an address is a network of its full length. */
function parseEither(s: string): Net {
  if (s.includes("/")) return parseCidr(s);
  const ip = parseIp(s);
  if (!ip) throw new BuiltinError(`invalid IP address: ${s}`);
  return { ip, bits: ip.length * 8 };
}

/** net.cidr_contains, net.cidr_intersects, net.cidr_is_valid. */
export const netBuiltins: BuiltinTable = {
  "net.cidr_contains": {
    arity: 2,
    fn: (args) => {
      const net = parseCidr(str(args, 0));
      const other = parseEither(str(args, 1));
      return other.bits >= net.bits && contains(net, other.ip);
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
