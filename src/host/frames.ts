// Ethernet/IPv4/TCP/UDP/ICMP/SCTP frames in TypeScript, independent of the WASM code: a
// builder with full checksum computation (for tests, fixtures and crafted traffic) and a
// decoder that summarises a frame and verifies its checksums (for replay output and tests).

export type L4Proto = "TCP" | "UDP" | "SCTP" | "ICMP";
const PROTO_NUM: Record<L4Proto, number> = { ICMP: 1, TCP: 6, UDP: 17, SCTP: 132 };
const NUM_PROTO = new Map(Object.entries(PROTO_NUM).map(([k, v]) => [v, k as L4Proto]));

export interface FrameSpec {
  srcMac?: string;
  dstMac?: string;
  src: string;
  dst: string;
  proto: L4Proto;
  sport?: number;
  dport?: number;
  /** TCP flags as letters: S, A, F, R, P. Default "S". */
  flags?: string;
  seq?: number;
  ack?: number;
  payload?: Uint8Array | string;
  ttl?: number;
  id?: number;
  /** IPv4 options bytes (padded to a multiple of 4). */
  ipOptions?: Uint8Array;
  /** UDP: send a zero checksum ("no checksum"). */
  udpZeroChecksum?: boolean;
  /** ICMP: type/code and the 4 bytes after the checksum (echo id/seq). */
  icmpType?: number;
  icmpCode?: number;
  icmpRest?: number;
  /** Fragment offset in 8-byte units and the more-fragments flag. */
  fragOffset?: number;
  moreFragments?: boolean;
}

export function macBytes(mac: string): number[] {
  const parts = mac.split(":").map((h) => parseInt(h, 16));
  if (parts.length !== 6 || parts.some((p) => !(p >= 0 && p <= 255))) throw new Error(`bad MAC ${mac}`);
  return parts;
}

export function ipBytes(ip: string): number[] {
  const parts = ip.split(".").map(Number);
  if (parts.length !== 4 || parts.some((p) => !(Number.isInteger(p) && p >= 0 && p <= 255))) throw new Error(`bad IPv4 ${ip}`);
  return parts;
}

/** RFC 1071 checksum of bytes (with an initial 32-bit sum). */
export function inetChecksum(b: Uint8Array, initial = 0): number {
  let s = initial;
  for (let i = 0; i + 1 < b.length; i += 2) s += (b[i]! << 8) | b[i + 1]!;
  if (b.length & 1) s += b[b.length - 1]! << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

function pseudoSum(src: number[], dst: number[], proto: number, len: number): number {
  return ((src[0]! << 8) | src[1]!) + ((src[2]! << 8) | src[3]!) + ((dst[0]! << 8) | dst[1]!) + ((dst[2]! << 8) | dst[3]!) + proto + len;
}

const CRC32C_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

export function crc32c(b: Uint8Array): number {
  let c = 0xffffffff;
  for (const x of b) c = CRC32C_TABLE[(c ^ x) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

function tcpFlagBits(f: string): number {
  let v = 0;
  for (const ch of f) v |= ({ F: 1, S: 2, R: 4, P: 8, A: 16 } as Record<string, number>)[ch] ?? 0;
  return v;
}

/** Builds a complete Ethernet frame with correct checksums. */
export function buildFrame(s: FrameSpec): Uint8Array {
  const payload = typeof s.payload === "string" ? new TextEncoder().encode(s.payload) : (s.payload ?? new Uint8Array());
  const src = ipBytes(s.src);
  const dst = ipBytes(s.dst);
  const proto = PROTO_NUM[s.proto];
  let l4: Uint8Array;
  if (s.proto === "TCP") {
    l4 = new Uint8Array(20 + payload.length);
    const v = new DataView(l4.buffer);
    v.setUint16(0, s.sport ?? 40000);
    v.setUint16(2, s.dport ?? 80);
    v.setUint32(4, s.seq ?? 1000);
    v.setUint32(8, s.ack ?? 0);
    l4[12] = 5 << 4;
    l4[13] = tcpFlagBits(s.flags ?? "S");
    v.setUint16(14, 64240);
    l4.set(payload, 20);
    v.setUint16(16, inetChecksum(l4, pseudoSum(src, dst, proto, l4.length)));
  } else if (s.proto === "UDP") {
    l4 = new Uint8Array(8 + payload.length);
    const v = new DataView(l4.buffer);
    v.setUint16(0, s.sport ?? 40000);
    v.setUint16(2, s.dport ?? 53);
    v.setUint16(4, l4.length);
    l4.set(payload, 8);
    if (!s.udpZeroChecksum) {
      const c = inetChecksum(l4, pseudoSum(src, dst, proto, l4.length));
      v.setUint16(6, c === 0 ? 0xffff : c);
    }
  } else if (s.proto === "SCTP") {
    l4 = new Uint8Array(12 + payload.length);
    const v = new DataView(l4.buffer);
    v.setUint16(0, s.sport ?? 40000);
    v.setUint16(2, s.dport ?? 9000);
    v.setUint32(4, 0x01020304);
    l4.set(payload, 12);
    v.setUint32(8, crc32c(l4), true);
  } else {
    l4 = new Uint8Array(8 + payload.length);
    const v = new DataView(l4.buffer);
    l4[0] = s.icmpType ?? 8;
    l4[1] = s.icmpCode ?? 0;
    v.setUint32(4, s.icmpRest ?? 0x12340001);
    l4.set(payload, 8);
    v.setUint16(2, inetChecksum(l4));
  }
  const opts = s.ipOptions ?? new Uint8Array();
  const ihl = 20 + Math.ceil(opts.length / 4) * 4;
  const ip = new Uint8Array(ihl + l4.length);
  const iv = new DataView(ip.buffer);
  ip[0] = 0x40 | (ihl / 4);
  iv.setUint16(2, ip.length);
  iv.setUint16(4, s.id ?? 1);
  iv.setUint16(6, ((s.moreFragments ? 1 : 0) << 13) | (s.fragOffset ?? 0));
  ip[8] = s.ttl ?? 64;
  ip[9] = proto;
  ip.set(src, 12);
  ip.set(dst, 16);
  ip.set(opts, 20);
  iv.setUint16(10, inetChecksum(ip.subarray(0, ihl)));
  ip.set(l4, ihl);
  const frame = new Uint8Array(14 + ip.length);
  frame.set(macBytes(s.dstMac ?? "02:00:00:00:00:02"), 0);
  frame.set(macBytes(s.srcMac ?? "02:00:00:00:00:01"), 6);
  frame[12] = 0x08;
  frame[13] = 0x00;
  frame.set(ip, 14);
  return frame;
}

export interface FrameSummary {
  ethertype: number;
  srcMac: string;
  dstMac: string;
  src?: string;
  dst?: string;
  proto?: L4Proto | number;
  sport?: number;
  dport?: number;
  ttl?: number;
  tcpFlags?: string;
  icmpType?: number;
  icmpCode?: number;
  /** For ICMP errors: the quoted datagram's tuple. */
  inner?: { src: string; dst: string; proto: L4Proto | number; sport?: number; dport?: number };
  /** Checksums that do not verify (empty = all good). */
  badChecksums: string[];
  payloadLength?: number;
}

function mac(b: Uint8Array, o: number): string {
  return Array.from(b.subarray(o, o + 6), (x) => x.toString(16).padStart(2, "0")).join(":");
}

function ipStr(b: Uint8Array, o: number): string {
  return `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;
}

function flagStr(f: number): string {
  return ["F", "S", "R", "P", "A"].filter((_, i) => f & (1 << i)).join("");
}

/** Decodes a frame and verifies every checksum it carries. Throws on frames too short to parse. */
export function decodeFrame(frame: Uint8Array): FrameSummary {
  if (frame.length < 14) throw new Error(`frame of ${frame.length} bytes is shorter than an Ethernet header`);
  const dv = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const out: FrameSummary = { ethertype: dv.getUint16(12), srcMac: mac(frame, 6), dstMac: mac(frame, 0), badChecksums: [] };
  if (out.ethertype !== 0x0800) return out;
  const ip = frame.subarray(14);
  const ihl = (ip[0]! & 15) * 4;
  const tot = dv.getUint16(16);
  out.src = ipStr(ip, 12);
  out.dst = ipStr(ip, 16);
  out.ttl = ip[8];
  const pnum = ip[9]!;
  out.proto = NUM_PROTO.get(pnum) ?? pnum;
  if (inetChecksum(ip.subarray(0, ihl)) !== 0) out.badChecksums.push("ip");
  const frag = dv.getUint16(20);
  const fragOffset = frag & 0x1fff;
  const moreFragments = (frag & 0x2000) !== 0;
  if (fragOffset !== 0) return out; // a non-first fragment carries no L4 header
  const l4 = ip.subarray(ihl, tot);
  const l4v = new DataView(l4.buffer, l4.byteOffset, l4.byteLength);
  const srcB = Array.from(ip.subarray(12, 16));
  const dstB = Array.from(ip.subarray(16, 20));
  if (out.proto === "TCP" || out.proto === "UDP" || out.proto === "SCTP") {
    out.sport = l4v.getUint16(0);
    out.dport = l4v.getUint16(2);
  }
  if (out.proto === "TCP") {
    out.tcpFlags = flagStr(l4[13]!);
    out.payloadLength = l4.length - (l4[12]! >> 4) * 4;
    if (!moreFragments && inetChecksum(l4, pseudoSum(srcB, dstB, 6, l4.length)) !== 0) out.badChecksums.push("tcp");
  } else if (out.proto === "UDP") {
    out.payloadLength = l4.length - 8;
    if (!moreFragments && l4v.getUint16(6) !== 0 && inetChecksum(l4, pseudoSum(srcB, dstB, 17, l4.length)) !== 0) out.badChecksums.push("udp");
  } else if (out.proto === "SCTP") {
    const copy = l4.slice();
    new DataView(copy.buffer).setUint32(8, 0, true);
    if (!moreFragments && crc32c(copy) !== l4v.getUint32(8, true)) out.badChecksums.push("sctp");
  } else if (out.proto === "ICMP") {
    out.icmpType = l4[0];
    out.icmpCode = l4[1];
    if (!moreFragments && inetChecksum(l4) !== 0) out.badChecksums.push("icmp");
    if ((l4[0] === 3 || l4[0] === 11 || l4[0] === 12) && l4.length >= 8 + 20) {
      const inner = l4.subarray(8);
      const iihl = (inner[0]! & 15) * 4;
      const ip2 = NUM_PROTO.get(inner[9]!) ?? inner[9]!;
      const iv = new DataView(inner.buffer, inner.byteOffset, inner.byteLength);
      out.inner = { src: ipStr(inner, 12), dst: ipStr(inner, 16), proto: ip2 };
      if (inner.length >= iihl + 4) {
        out.inner.sport = iv.getUint16(iihl);
        out.inner.dport = iv.getUint16(iihl + 2);
      }
      if (inetChecksum(inner.subarray(0, iihl)) !== 0) out.badChecksums.push("inner-ip");
    }
  }
  return out;
}

/** One line describing a frame, tcpdump-like: "10.0.0.1:1234 > 10.96.0.10:80 TCP S". */
export function describeFrame(frame: Uint8Array): string {
  const f = decodeFrame(frame);
  if (f.ethertype !== 0x0800) return `ethertype 0x${f.ethertype.toString(16).padStart(4, "0")}`;
  const ep = (a?: string, p?: number) => (p === undefined ? a : `${a}:${p}`);
  let s = `${ep(f.src, f.sport)} > ${ep(f.dst, f.dport)} ${f.proto}`;
  if (f.tcpFlags !== undefined) s += ` ${f.tcpFlags}`;
  if (f.icmpType !== undefined) s += ` type ${f.icmpType} code ${f.icmpCode}`;
  if (f.inner) s += ` [quoting ${ep(f.inner.src, f.inner.sport)} > ${ep(f.inner.dst, f.inner.dport)} ${f.inner.proto}]`;
  if (f.badChecksums.length) s += ` BAD-CHECKSUM(${f.badChecksums.join(",")})`;
  return s;
}

// ---- checksum offload (virtio-net headers) ---------------------------------------------------
// A TAP opened with IFF_VNET_HDR and offloads hands over frames whose TCP/UDP checksum is
// "partial": the field holds the folded pseudo-header sum, not complemented, and the header says
// where summing starts (csum_start) and where the result goes (csum_offset). These helpers make
// such frames from complete ones and complete them the way the kernel does, for tests and for
// turning captured partial frames into ones tcpdump verifies.

export const VNET_HDR_LEN = 10;
export const VNET_F_NEEDS_CSUM = 1;
export const VNET_GSO = { NONE: 0, TCPV4: 1, UDP: 3, TCPV6: 4, UDP_L4: 5 } as const;

export interface VnetHeader {
  flags: number;
  gsoType: number;
  hdrLen: number;
  gsoSize: number;
  csumStart: number;
  csumOffset: number;
}

export function encodeVnet(h: Partial<VnetHeader>): Uint8Array {
  const b = new Uint8Array(VNET_HDR_LEN);
  const v = new DataView(b.buffer);
  b[0] = h.flags ?? 0;
  b[1] = h.gsoType ?? 0;
  v.setUint16(2, h.hdrLen ?? 0, true);
  v.setUint16(4, h.gsoSize ?? 0, true);
  v.setUint16(6, h.csumStart ?? 0, true);
  v.setUint16(8, h.csumOffset ?? 0, true);
  return b;
}

export function decodeVnet(b: Uint8Array): VnetHeader {
  if (b.length < VNET_HDR_LEN) throw new Error(`a virtio-net header is ${VNET_HDR_LEN} bytes, got ${b.length}`);
  const v = new DataView(b.buffer, b.byteOffset, VNET_HDR_LEN);
  return { flags: b[0]!, gsoType: b[1]!, hdrLen: v.getUint16(2, true), gsoSize: v.getUint16(4, true), csumStart: v.getUint16(6, true), csumOffset: v.getUint16(8, true) };
}

/**
 * A copy of an Ethernet/IPv4 TCP or UDP frame with its L4 checksum made partial, and the
 * virtio-net header that describes it (NEEDS_CSUM; GSO when `gsoSize` is given).
 */
export function toChecksumPartial(frame: Uint8Array, gsoSize = 0): { data: Uint8Array; vnet: Uint8Array } {
  const f = frame.slice();
  const ihl = (f[14]! & 15) * 4;
  const proto = f[23]!;
  if (proto !== 6 && proto !== 17) throw new Error(`checksum offload applies to TCP and UDP, not protocol ${proto}`);
  const tot = (f[16]! << 8) | f[17]!;
  const l4 = 14 + ihl;
  const off = proto === 6 ? 16 : 6;
  let s = pseudoSum(Array.from(f.subarray(26, 30)), Array.from(f.subarray(30, 34)), proto, tot - ihl);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  f[l4 + off] = s >> 8;
  f[l4 + off + 1] = s & 0xff;
  const gsoType = gsoSize ? (proto === 6 ? VNET_GSO.TCPV4 : VNET_GSO.UDP_L4) : VNET_GSO.NONE;
  const hdrLen = proto === 6 ? l4 + ((f[l4 + 12]! >> 4) << 2) : l4 + 8;
  return { data: f, vnet: encodeVnet({ flags: VNET_F_NEEDS_CSUM, gsoType, gsoSize, hdrLen, csumStart: l4, csumOffset: off }) };
}

/** Completes a partial checksum in place, as the kernel or a NIC does: sum from csum_start, store the complement. */
export function completeChecksum(frame: Uint8Array, vnet: Uint8Array): Uint8Array {
  const h = decodeVnet(vnet);
  if (!(h.flags & VNET_F_NEEDS_CSUM)) return frame;
  const at = h.csumStart + h.csumOffset;
  const tot = (frame[16]! << 8) | frame[17]!;
  const end = Math.min(frame.length, 14 + tot);
  let c = inetChecksum(frame.subarray(h.csumStart, end));
  if (c === 0 && frame[23] === 17) c = 0xffff;
  frame[at] = c >> 8;
  frame[at + 1] = c & 0xff;
  return frame;
}
