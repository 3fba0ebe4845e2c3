// IP address and CIDR helpers for the store: parsing (Go "sloppy" rules: IPv4 parts may carry
// leading zeros), canonical formatting, BigInt arithmetic and the special-range predicates that
// validation and the allocators share.

export type IPFamilyNum = 4 | 6;

export interface ParsedIP {
  family: IPFamilyNum;
  /** 4 bytes for IPv4 (also for IPv4-mapped IPv6 input, as Go's To4 does), 16 for IPv6. */
  bytes: Uint8Array;
}

function parseIPv4Parts(s: string): Uint8Array | null {
  const parts = s.split(".");
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (p.length === 0 || p.length > 3 || !/^[0-9]+$/.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    out[i] = n;
  }
  return out;
}

function parseIPv6Bytes(s: string): Uint8Array | null {
  if (s.length === 0 || s.includes("%")) return null;
  let tail4: Uint8Array | null = null;
  let text = s;
  // An embedded IPv4 suffix occupies the last 32 bits.
  const lastColon = text.lastIndexOf(":");
  if (lastColon >= 0 && text.slice(lastColon + 1).includes(".")) {
    tail4 = parseIPv4Parts(text.slice(lastColon + 1));
    if (!tail4) return null;
    text = text.slice(0, lastColon + 1) + "0:0";
  }
  const dbl = text.indexOf("::");
  if (dbl >= 0 && text.indexOf("::", dbl + 1) >= 0) return null;
  const parseGroups = (g: string): number[] | null => {
    if (g === "") return [];
    const out: number[] = [];
    for (const h of g.split(":")) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(h)) return null;
      out.push(parseInt(h, 16));
    }
    return out;
  };
  let groups: number[];
  if (dbl >= 0) {
    const head = parseGroups(text.slice(0, dbl));
    const tail = parseGroups(text.slice(dbl + 2));
    if (!head || !tail) return null;
    const fill = 8 - head.length - tail.length;
    if (fill < 1) return null;
    groups = [...head, ...new Array<number>(fill).fill(0), ...tail];
  } else {
    const all = parseGroups(text);
    if (!all || all.length !== 8) return null;
    groups = all;
  }
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    out[i * 2] = groups[i]! >> 8;
    out[i * 2 + 1] = groups[i]! & 0xff;
  }
  if (tail4) out.set(tail4, 12);
  return out;
}

/** Parses an IP address; null when it is not one. */
export function parseIP(s: unknown): ParsedIP | null {
  if (typeof s !== "string" || s.length === 0) return null;
  if (s.includes(":")) {
    const b = parseIPv6Bytes(s);
    if (!b) return null;
    // IPv4-mapped (::ffff:a.b.c.d) counts as IPv4, as with Go's net.IP.To4.
    let mapped = b[10] === 0xff && b[11] === 0xff;
    for (let i = 0; i < 10 && mapped; i++) if (b[i] !== 0) mapped = false;
    if (mapped) return { family: 4, bytes: b.slice(12) };
    return { family: 6, bytes: b };
  }
  const b = parseIPv4Parts(s);
  return b ? { family: 4, bytes: b } : null;
}

export function isIPv6String(s: string): boolean {
  return parseIP(s)?.family === 6;
}

export function ipToBigInt(ip: ParsedIP): bigint {
  let v = 0n;
  for (const byte of ip.bytes) v = (v << 8n) | BigInt(byte);
  return v;
}

export function bigIntToIP(v: bigint, family: IPFamilyNum): ParsedIP {
  const n = family === 4 ? 4 : 16;
  const bytes = new Uint8Array(n);
  for (let i = n - 1; i >= 0; i--) {
    bytes[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return { family, bytes };
}

/** Canonical text: dotted quad, or RFC 5952 for IPv6 (lower case, longest zero run compressed). */
export function formatIP(ip: ParsedIP): string {
  if (ip.family === 4) return Array.from(ip.bytes).join(".");
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((ip.bytes[i * 2]! << 8) | ip.bytes[i * 2 + 1]!);
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (bestLen < 2) return hex.join(":");
  const head = hex.slice(0, bestStart).join(":");
  const tail = hex.slice(bestStart + bestLen).join(":");
  return `${head}::${tail}`;
}

export function canonicalIP(s: string): string | null {
  const p = parseIP(s);
  return p ? formatIP(p) : null;
}

export interface ParsedCIDR {
  family: IPFamilyNum;
  /** Network address (host bits cleared). */
  network: bigint;
  prefix: number;
  /** Address width: 32 or 128. */
  bits: number;
}

/** Parses "a.b.c.d/n" or "x::/n"; host bits are masked off (as Go's ParseCIDR does). */
export function parseCIDR(s: unknown): ParsedCIDR | null {
  if (typeof s !== "string") return null;
  const slash = s.indexOf("/");
  if (slash < 0) return null;
  const addr = s.slice(0, slash);
  const len = s.slice(slash + 1);
  if (!/^[0-9]{1,3}$/.test(len)) return null;
  const ip = parseIP(addr);
  if (!ip) return null;
  // An IPv4-mapped address written in IPv6 form keeps a 128-bit prefix in Go; keep it simple
  // and only accept prefixes that fit the parsed family.
  const bits = ip.family === 4 ? 32 : 128;
  const prefix = Number(len);
  if (prefix > bits) return null;
  const mask = prefix === 0 ? 0n : ((1n << BigInt(prefix)) - 1n) << BigInt(bits - prefix);
  return { family: ip.family, network: ipToBigInt(ip) & mask, prefix, bits };
}

export function formatCIDR(c: ParsedCIDR): string {
  return `${formatIP(bigIntToIP(c.network, c.family))}/${c.prefix}`;
}

export function cidrContains(c: ParsedCIDR, ip: ParsedIP): boolean {
  if (ip.family !== c.family) return false;
  const v = ipToBigInt(ip);
  const size = 1n << BigInt(c.bits - c.prefix);
  return v >= c.network && v < c.network + size;
}

export function isUnspecified(ip: ParsedIP): boolean {
  return ip.bytes.every((b) => b === 0);
}

export function isLoopback(ip: ParsedIP): boolean {
  if (ip.family === 4) return ip.bytes[0] === 127;
  for (let i = 0; i < 15; i++) if (ip.bytes[i] !== 0) return false;
  return ip.bytes[15] === 1;
}

export function isLinkLocalUnicast(ip: ParsedIP): boolean {
  if (ip.family === 4) return ip.bytes[0] === 169 && ip.bytes[1] === 254;
  return ip.bytes[0] === 0xfe && (ip.bytes[1]! & 0xc0) === 0x80;
}

export function isLinkLocalMulticast(ip: ParsedIP): boolean {
  if (ip.family === 4) return ip.bytes[0] === 224 && ip.bytes[1] === 0 && ip.bytes[2] === 0;
  return ip.bytes[0] === 0xff && (ip.bytes[1]! & 0x0f) === 0x02;
}
