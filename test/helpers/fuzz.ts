// Fuzzing support for the WASM pipeline: a seeded PRNG, a fast frame builder (byte-identical
// to src/host/frames.ts buildFrame, checked by a test; ~15x faster), a small world of services
// and addresses, a generator of frames (random bytes, fixtures, valid traffic to frontends,
// replies, ICMP errors quoting real flows, with mutations), and a harness that runs batches
// through Dataplane.process with canaries around every frame and checks each result.

import { Dataplane, type FrameResult } from "../../src/maps/dataplane.js";
import { Programmer, type ServicePortModel } from "../../src/proxy/programmer.js";
import { REASONS, VERDICTS, reasonName } from "../../src/maps/verdicts.js";
import { crc32c, decodeFrame } from "../../src/host/frames.js";
import { ALL_FIXTURES } from "../wire/fixtures.js";

// ---- PRNG ---------------------------------------------------------------------------------

/** sfc32: small, fast, good enough for fuzzing; fully determined by the seed. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  constructor(seed: number) {
    this.a = 0x9e3779b9;
    this.b = 0x243f6a88;
    this.c = 0xb7e15162;
    this.d = seed >>> 0;
    for (let i = 0; i < 16; i++) this.u32();
  }
  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor((this.u32() / 4294967296) * n);
  }
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  chance(p: number): boolean {
    return this.u32() < p * 4294967296;
  }
  pick<T>(a: readonly T[]): T {
    return a[this.int(a.length)]!;
  }
  fill(b: Uint8Array, from = 0, to = b.length): Uint8Array {
    for (let i = from; i < to; i++) b[i] = this.u32() & 0xff;
    return b;
  }
  bytes(n: number): Uint8Array {
    return this.fill(new Uint8Array(n));
  }
}

// ---- addresses ----------------------------------------------------------------------------

export function ip4(s: string): number {
  const p = s.split(".").map(Number);
  return ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0;
}

export function ipStr(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

// ---- fast frame building ------------------------------------------------------------------

export const P_ICMP = 1;
export const P_TCP = 6;
export const P_UDP = 17;
export const P_SCTP = 132;

export interface Spec {
  src: number;
  dst: number;
  proto: number;
  sport?: number;
  dport?: number;
  /** TCP flag bits (FIN 1, SYN 2, RST 4, PSH 8, ACK 16); default SYN. */
  tcpFlags?: number;
  seq?: number;
  ack?: number;
  payload?: Uint8Array;
  ttl?: number;
  id?: number;
  ipOptions?: Uint8Array;
  udpZeroChecksum?: boolean;
  icmpType?: number;
  icmpCode?: number;
  icmpRest?: number;
  fragOffset?: number;
  moreFragments?: boolean;
}

function sum16(b: Uint8Array, from: number, to: number, s: number): number {
  let i = from;
  for (; i + 1 < to; i += 2) s += (b[i]! << 8) | b[i + 1]!;
  if (i < to) s += b[i]! << 8;
  return s;
}

function fold(s: number): number {
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

const EMPTY = new Uint8Array(0);
const MACS = [0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00];

/** Same bytes as buildFrame(spec) for the fields both support, without the allocations. */
export function fastFrame(s: Spec): Uint8Array {
  const payload = s.payload ?? EMPTY;
  const opts = s.ipOptions ?? EMPTY;
  const ihl = 20 + Math.ceil(opts.length / 4) * 4;
  const l4h = s.proto === P_TCP ? 20 : s.proto === P_SCTP ? 12 : 8;
  const l4len = l4h + payload.length;
  const f = new Uint8Array(14 + ihl + l4len);
  for (let i = 0; i < 14; i++) f[i] = MACS[i]!;
  const ip = 14;
  f[ip] = 0x40 | (ihl / 4);
  const tot = ihl + l4len;
  f[ip + 2] = tot >> 8;
  f[ip + 3] = tot & 0xff;
  const id = s.id ?? 1;
  f[ip + 4] = id >> 8;
  f[ip + 5] = id & 0xff;
  const frag = ((s.moreFragments ? 1 : 0) << 13) | (s.fragOffset ?? 0);
  f[ip + 6] = frag >> 8;
  f[ip + 7] = frag & 0xff;
  f[ip + 8] = s.ttl ?? 64;
  f[ip + 9] = s.proto;
  const src = s.src >>> 0;
  const dst = s.dst >>> 0;
  f[ip + 12] = src >>> 24; f[ip + 13] = (src >>> 16) & 255; f[ip + 14] = (src >>> 8) & 255; f[ip + 15] = src & 255;
  f[ip + 16] = dst >>> 24; f[ip + 17] = (dst >>> 16) & 255; f[ip + 18] = (dst >>> 8) & 255; f[ip + 19] = dst & 255;
  f.set(opts, ip + 20);
  const ic = fold(sum16(f, ip, ip + ihl, 0));
  f[ip + 10] = ic >> 8;
  f[ip + 11] = ic & 0xff;
  const l4 = ip + ihl;
  f.set(payload, l4 + l4h);
  const pseudo = (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + s.proto + l4len;
  if (s.proto === P_TCP || s.proto === P_UDP || s.proto === P_SCTP) {
    const sp = s.sport ?? 40000;
    const dp = s.dport ?? (s.proto === P_TCP ? 80 : s.proto === P_UDP ? 53 : 9000);
    f[l4] = sp >> 8; f[l4 + 1] = sp & 0xff; f[l4 + 2] = dp >> 8; f[l4 + 3] = dp & 0xff;
  }
  if (s.proto === P_TCP) {
    const seq = (s.seq ?? 1000) >>> 0;
    const ack = (s.ack ?? 0) >>> 0;
    f[l4 + 4] = seq >>> 24; f[l4 + 5] = (seq >>> 16) & 255; f[l4 + 6] = (seq >>> 8) & 255; f[l4 + 7] = seq & 255;
    f[l4 + 8] = ack >>> 24; f[l4 + 9] = (ack >>> 16) & 255; f[l4 + 10] = (ack >>> 8) & 255; f[l4 + 11] = ack & 255;
    f[l4 + 12] = 5 << 4;
    f[l4 + 13] = s.tcpFlags ?? 2;
    f[l4 + 14] = 64240 >> 8;
    f[l4 + 15] = 64240 & 0xff;
    const c = fold(sum16(f, l4, l4 + l4len, pseudo));
    f[l4 + 16] = c >> 8;
    f[l4 + 17] = c & 0xff;
  } else if (s.proto === P_UDP) {
    f[l4 + 4] = l4len >> 8;
    f[l4 + 5] = l4len & 0xff;
    if (!s.udpZeroChecksum) {
      let c = fold(sum16(f, l4, l4 + l4len, pseudo));
      if (c === 0) c = 0xffff;
      f[l4 + 6] = c >> 8;
      f[l4 + 7] = c & 0xff;
    }
  } else if (s.proto === P_SCTP) {
    f[l4 + 4] = 1; f[l4 + 5] = 2; f[l4 + 6] = 3; f[l4 + 7] = 4;
    const c = crc32c(f.subarray(l4, l4 + l4len));
    f[l4 + 8] = c & 255; f[l4 + 9] = (c >>> 8) & 255; f[l4 + 10] = (c >>> 16) & 255; f[l4 + 11] = c >>> 24;
  } else {
    f[l4] = s.icmpType ?? 8;
    f[l4 + 1] = s.icmpCode ?? 0;
    const r = (s.icmpRest ?? 0x12340001) >>> 0;
    f[l4 + 4] = r >>> 24; f[l4 + 5] = (r >>> 16) & 255; f[l4 + 6] = (r >>> 8) & 255; f[l4 + 7] = r & 255;
    const c = fold(sum16(f, l4, l4 + l4len, 0));
    f[l4 + 2] = c >> 8;
    f[l4 + 3] = c & 0xff;
  }
  return f;
}

/** Recomputes the IPv4 header checksum in place when the header lies inside the frame. */
export function fixIpChecksum(f: Uint8Array): void {
  if (f.length < 34 || f[12] !== 0x08 || f[13] !== 0x00) return;
  const ihl = (f[14]! & 15) * 4;
  if (ihl < 20 || 14 + ihl > f.length) return;
  f[24] = 0;
  f[25] = 0;
  const c = fold(sum16(f, 14, 14 + ihl, 0));
  f[24] = c >> 8;
  f[25] = c & 0xff;
}

/** Recomputes an SCTP CRC32c in place when the frame is IPv4/SCTP with a sane header. */
export function fixSctpCrc(f: Uint8Array): void {
  if (f.length < 34 || f[12] !== 0x08 || f[13] !== 0x00 || f[23] !== P_SCTP) return;
  const ihl = (f[14]! & 15) * 4;
  const tot = (f[16]! << 8) | f[17]!;
  if (ihl < 20 || tot < ihl + 12 || 14 + tot > f.length) return;
  const l4 = 14 + ihl;
  f[l4 + 8] = f[l4 + 9] = f[l4 + 10] = f[l4 + 11] = 0;
  const c = crc32c(f.subarray(l4, 14 + tot));
  f[l4 + 8] = c & 255; f[l4 + 9] = (c >>> 8) & 255; f[l4 + 10] = (c >>> 16) & 255; f[l4 + 11] = c >>> 24;
}

/** Quick IPv4 header view (no checks beyond bounds): null when not IPv4 with a full header. */
export interface Parsed {
  ihl: number;
  tot: number;
  proto: number;
  src: number;
  dst: number;
  sport: number;
  dport: number;
}

export function parse(f: Uint8Array): Parsed | null {
  if (f.length < 34 || f[12] !== 0x08 || f[13] !== 0x00) return null;
  const ihl = (f[14]! & 15) * 4;
  const l4 = 14 + ihl;
  const has = l4 + 4 <= f.length;
  return {
    ihl,
    tot: (f[16]! << 8) | f[17]!,
    proto: f[23]!,
    src: ((f[26]! << 24) | (f[27]! << 16) | (f[28]! << 8) | f[29]!) >>> 0,
    dst: ((f[30]! << 24) | (f[31]! << 16) | (f[32]! << 8) | f[33]!) >>> 0,
    sport: has ? (f[l4]! << 8) | f[l4 + 1]! : -1,
    dport: has ? (f[l4 + 2]! << 8) | f[l4 + 3]! : -1,
  };
}

// ---- the world: services, addresses -------------------------------------------------------

export const NODE_NAME = "node-a";
export const NODE_IP = "192.0.2.10";
export const SNAT_PORTS = { min: 50000, max: 50063 } as const; // small: exhaustion is reachable

interface Endpoint { ip: string; port: number; nodeName?: string; ready?: boolean; serving?: boolean; terminating?: boolean }

function model(p: Partial<ServicePortModel> & { key: string }): ServicePortModel {
  return {
    protocol: "TCP", port: 80, clusterIPs: [], externalIPs: [], loadBalancerIPs: [], affinityTimeoutSeconds: null,
    externalTrafficPolicyLocal: false, internalTrafficPolicyLocal: false, loadBalancerSourceRanges: [], endpoints: [],
    ...p,
  };
}

const remote = (ip: string, port: number): Endpoint => ({ ip, port, nodeName: "node-b" });
const local = (ip: string, port: number): Endpoint => ({ ip, port, nodeName: NODE_NAME });
const terminating = (ip: string, port: number, nodeName = "node-b"): Endpoint => ({ ip, port, nodeName, ready: false, serving: true, terminating: true });

/** The services every fuzz world programs (variant 0/1 differ in some endpoints: churn). */
export function fuzzServices(variant: number): ServicePortModel[] {
  const webEps = variant === 0
    ? [remote("10.244.1.10", 8080), remote("10.244.1.11", 8080), local("10.244.0.20", 8080), terminating("10.244.1.12", 8080)]
    : [remote("10.244.1.10", 8080), local("10.244.0.20", 8080), remote("10.244.1.30", 8080)];
  const dnsEps = variant === 0
    ? [remote("10.244.1.10", 5353), local("10.244.0.21", 5353)]
    : [remote("10.244.1.31", 5353), local("10.244.0.21", 5353)];
  return [
    model({ key: "web", protocol: "TCP", port: 80, clusterIPs: ["10.96.0.10"], nodePort: 30080, endpoints: webEps }),
    model({ key: "dns", protocol: "UDP", port: 53, clusterIPs: ["10.96.0.10"], affinityTimeoutSeconds: 30, algorithm: "rr", endpoints: dnsEps }),
    model({
      key: "lb", protocol: "TCP", port: 443, clusterIPs: ["10.96.0.11"], nodePort: 30443, loadBalancerIPs: ["198.51.100.5"],
      loadBalancerSourceRanges: ["203.0.113.0/24"], externalTrafficPolicyLocal: true, algorithm: "maglev",
      endpoints: [local("10.244.0.22", 8443), remote("10.244.1.13", 8443)],
    }),
    model({ key: "sctp", protocol: "SCTP", port: 9000, clusterIPs: ["10.96.0.12"], nodePort: 30900, algorithm: "sh", endpoints: [remote("10.244.1.14", 9000), local("10.244.0.23", 9000)] }),
    model({ key: "noep", protocol: "TCP", port: 80, clusterIPs: ["10.96.0.13"], endpoints: [] }),
    model({
      key: "ext", protocol: "UDP", port: 5000, clusterIPs: ["10.96.0.14"], externalIPs: ["192.0.2.50"], internalTrafficPolicyLocal: true,
      algorithm: "lc", endpoints: [remote("10.244.1.15", 5000), remote("10.244.1.16", 5000)],
    }),
    model({ key: "hairpin", protocol: "TCP", port: 80, clusterIPs: ["10.96.0.15"], algorithm: "dh", endpoints: [local("10.244.0.5", 8080), local("10.244.0.6", 8080)] }),
    model({ key: "term", protocol: "TCP", port: 80, clusterIPs: ["10.96.0.16"], algorithm: "sed", endpoints: [terminating("10.244.1.17", 80), terminating("10.244.0.24", 80, NODE_NAME)] }),
    model({
      key: "nq", protocol: "UDP", port: 123, clusterIPs: ["10.96.0.17"], nodePort: 30123, algorithm: "nq",
      endpoints: [remote("10.244.1.18", 123), remote("10.244.1.19", 123), local("10.244.0.25", 123)],
    }),
    model({
      key: "maglev-local", protocol: "TCP", port: 80, clusterIPs: ["10.96.0.18"], internalTrafficPolicyLocal: true, algorithm: "maglev",
      affinityTimeoutSeconds: 5, endpoints: [local("10.244.0.26", 80), local("10.244.0.27", 80), remote("10.244.1.20", 80)],
    }),
    // The wire fixtures' peer address: captured frames hit real services.
    model({ key: "cap-tcp", protocol: "TCP", port: 8080, clusterIPs: ["10.99.0.2"], endpoints: [remote("10.244.1.40", 18080)] }),
    model({ key: "cap-udp", protocol: "UDP", port: 53, clusterIPs: ["10.99.0.2"], endpoints: [remote("10.244.1.40", 5353)] }),
    model({ key: "cap-sctp", protocol: "SCTP", port: 9000, clusterIPs: ["10.99.0.2"], endpoints: [remote("10.244.1.40", 9900)] }),
  ];
}

const PROTO_NUM = { TCP: P_TCP, UDP: P_UDP, SCTP: P_SCTP } as const;

export interface Endpoint3 { addr: number; port: number; proto: number }

export interface World {
  dp: Dataplane;
  prog: Programmer;
  variant: number;
  /** (address, port, protocol) a client may speak to: VIPs, external/LB IPs, NodePorts on the node address. */
  frontends: Endpoint3[];
  /** Every backend of every variant. */
  backends: Endpoint3[];
  /** Addresses with ADDR_VIP (unknown ports rejected, pings answered). */
  vips: number[];
  clients: number[];
  others: number[];
  /** key = addr * 65536 + port, per protocol: TX outputs must go to / come from these. */
  backendKeys: Map<number, Set<number>>;
  frontendKeys: Map<number, Set<number>>;
  snatAddr: number;
  setVariant(v: number): void;
}

export function epKey(addr: number, port: number): number {
  return addr * 65536 + port;
}

export function makeWorld(build: "release" | "debug", seed: number, opts: { snatMax?: number } = {}): World {
  const dp = new Dataplane({
    build, seed, frameCap: 512, batchMax: 64,
    config: { snatAddr: NODE_IP, snatPortMin: SNAT_PORTS.min, snatPortMax: SNAT_PORTS.max, masqueradeOffNode: true },
    // Small tables: LRU eviction and affinity/SNAT churn happen within a run.
    maxEntries: {
      conntrack: 2048, affinity: 256, snat: opts.snatMax ?? 512, frontends: 1024, addrs: 256, services: 256, backends: 256,
      svc_slots: 1024, maglev: 65536, rev_nat: 256, lpm_v4: 256, lpm_masks: 256, stats_service: 256, stats_backend: 256,
    },
  });
  const prog = new Programmer(dp, { nodeName: NODE_NAME });
  prog.setNodeAddresses([NODE_IP]);
  prog.setLocalSources(["10.244.0.0/24", `${NODE_IP}/32`]);
  prog.sync(fuzzServices(0));
  const frontends: Endpoint3[] = [];
  const backends: Endpoint3[] = [];
  const vips = new Set<number>();
  for (const v of [0, 1]) {
    for (const m of fuzzServices(v)) {
      const proto = PROTO_NUM[m.protocol];
      for (const e of m.endpoints) backends.push({ addr: ip4(e.ip), port: e.port, proto });
      if (v === 1) continue;
      for (const a of m.clusterIPs) {
        frontends.push({ addr: ip4(a), port: m.port, proto });
        vips.add(ip4(a));
      }
      for (const a of [...m.externalIPs, ...m.loadBalancerIPs]) frontends.push({ addr: ip4(a), port: m.port, proto });
      if (m.nodePort) frontends.push({ addr: ip4(NODE_IP), port: m.nodePort, proto });
    }
  }
  const keys = (l: Endpoint3[]) => {
    const out = new Map<number, Set<number>>();
    for (const e of l) {
      if (!out.has(e.proto)) out.set(e.proto, new Set());
      out.get(e.proto)!.add(epKey(e.addr, e.port));
    }
    return out;
  };
  const w: World = {
    dp, prog, variant: 0, frontends, backends, vips: [...vips],
    clients: ["10.244.0.5", "10.244.0.6", "203.0.113.7", "203.0.113.99", "198.18.5.5", NODE_IP, "10.99.0.1", "10.244.1.50"].map(ip4),
    // Not 0.0.0.0: a packet to 0.0.0.0 matches the NodePort wildcard frontend (a known bug,
    // test/wire/pipeline.test.ts "destination 0.0.0.0"), and its replies come from 0.0.0.0.
    others: ["10.244.1.10", "8.8.8.8", "10.96.0.99", "192.0.2.11", "10.99.0.3", "224.0.0.1", "255.255.255.255", "0.0.0.1"].map(ip4),
    backendKeys: keys(backends),
    frontendKeys: keys(frontends),
    snatAddr: ip4(NODE_IP),
    setVariant(v: number) {
      w.variant = v;
      prog.sync(fuzzServices(v));
    },
  };
  return w;
}

// ---- the generator ------------------------------------------------------------------------

interface Flow {
  proto: number;
  client: number;
  cport: number;
  fe: number;
  feport: number;
  /** The translated packet's source (client, or the SNAT address) and destination (backend). */
  natSrc: number;
  natSport: number;
  be: number;
  beport: number;
  /** IP header + up to 28 bytes of the translated forward packet (what an ICMP error quotes). */
  fwdQuote: Uint8Array;
}

interface SeenReply {
  client: number;
  fe: number;
  quote: Uint8Array;
}

const TCP_FLAG_SETS = [2, 2, 2, 0x12, 0x10, 0x10, 0x18, 0x11, 0x04, 0x14, 0x01, 0x00, 0x3f];
const ICMP_ERR = [3, 3, 3, 11, 12];

export type Kind = "random" | "fixture" | "new" | "continue" | "reply" | "icmp-err-be" | "icmp-err-client" | "other" | "oversize";

export class FrameGen {
  private readonly flows: Flow[] = [];
  private readonly replies: SeenReply[] = [];
  readonly kinds = new Map<Kind, number>();
  private readonly fixtures = Object.values(ALL_FIXTURES);
  private readonly byProto = new Map<number, Endpoint3[]>();
  private readonly pool: Uint8Array;
  private readonly clients: number[];

  /**
   * avoidClashes: never send from one client address:port to two frontends (new flows to
   * frontend i use source ports 20000+64i..+63 and exactly its port and protocol; no
   * retargeting mutation). Two such flows reaching the same backend without SNAT have the
   * same reply tuple — a clash the dataplane does not detect (see test/maps/conntrack-lru.test.ts).
   */
  constructor(private readonly rng: Rng, private readonly w: World, private readonly avoidClashes = false) {
    this.pool = rng.bytes(1 << 16);
    // The node address as a client: its source ports may equal a masquerade port (clash).
    this.clients = avoidClashes ? w.clients.filter((c) => c !== w.snatAddr) : w.clients;
    for (const fe of w.frontends) this.byProto.set(fe.proto, [...(this.byProto.get(fe.proto) ?? []), fe]);
  }

  private count(k: Kind): void {
    this.kinds.set(k, (this.kinds.get(k) ?? 0) + 1);
  }

  private port(proto: number): number {
    const r = this.rng;
    if (r.chance(0.6)) {
      const fe = this.byProto.get(proto);
      if (fe?.length) return r.pick(fe).port;
    }
    return r.chance(0.5) ? r.range(1, 1024) : r.range(0, 65535);
  }

  /** Random bytes as a view into a pool filled once (no per-frame allocation or PRNG loop). */
  private randomBytes(n: number): Uint8Array {
    const at = this.rng.int(this.pool.length - n + 1);
    return this.pool.subarray(at, at + n);
  }

  private payload(max: number): Uint8Array {
    const r = this.rng;
    return r.chance(0.3) ? EMPTY : this.randomBytes(r.int(max + 1));
  }

  private l4(proto: number, s: Spec): Spec {
    const r = this.rng;
    if (proto === P_TCP) {
      s.tcpFlags = r.pick(TCP_FLAG_SETS);
      s.seq = r.u32();
      s.ack = r.u32();
      s.payload = this.payload(64);
    } else if (proto === P_UDP) {
      s.udpZeroChecksum = r.chance(0.15);
      s.payload = this.payload(64);
    } else if (proto === P_SCTP) {
      s.payload = this.payload(48);
    } else {
      s.icmpType = r.chance(0.8) ? 8 : r.int(256);
      s.icmpCode = r.chance(0.9) ? 0 : r.int(256);
      s.icmpRest = r.u32();
      s.payload = this.payload(56);
    }
    return s;
  }

  private ipOptions(): Uint8Array | undefined {
    const r = this.rng;
    if (!r.chance(0.08)) return undefined;
    const n = r.range(1, 10) * 4;
    const o = r.chance(0.5) ? new Uint8Array(n) : this.randomBytes(n).slice();
    if (o.length >= 4 && r.chance(0.5)) {
      o[0] = 1; // NOP, then record route
      o[1] = 7;
      o[2] = n - 1;
      o[3] = 4;
    }
    return o;
  }

  /** One frame of a randomly chosen kind (mutated with some probability). */
  next(): { frame: Uint8Array; kind: Kind } {
    const r = this.rng;
    const x = r.int(1000);
    let kind: Kind;
    let f: Uint8Array;
    let mutate = r.chance(0.25);
    if (x < 80) {
      kind = "random";
      f = this.randomBytes(r.chance(0.2) ? r.int(34) : r.int(400)).slice();
      if (f.length >= 34 && r.chance(0.6)) {
        f[12] = 8;
        f[13] = 0;
        f[14] = r.chance(0.8) ? 0x45 : 0x40 | r.int(16);
        if (r.chance(0.7)) {
          const tot = Math.min(f.length - 14, r.chance(0.7) ? f.length - 14 : r.int(f.length));
          f[16] = tot >> 8;
          f[17] = tot & 0xff;
        }
        if (r.chance(0.6)) f[20] = f[21] = 0;
        if (r.chance(0.7)) f[23] = r.pick([P_TCP, P_UDP, P_SCTP, P_ICMP]);
        if (r.chance(0.5)) {
          const d = r.pick(this.w.frontends);
          f[30] = d.addr >>> 24; f[31] = (d.addr >>> 16) & 255; f[32] = (d.addr >>> 8) & 255; f[33] = d.addr & 255;
        }
        if (r.chance(0.8)) fixIpChecksum(f);
        fixSctpCrc(f);
      }
      mutate = false;
    } else if (x < 160) {
      kind = "fixture";
      f = r.pick(this.fixtures).slice();
      mutate = r.chance(0.7);
    } else if (x < 560) {
      kind = "new";
      const feIdx = r.chance(0.85) ? r.int(this.w.frontends.length) : -1;
      const fe = feIdx >= 0 ? this.w.frontends[feIdx]! : null;
      const exact = this.avoidClashes || r.chance(0.9);
      const proto = fe ? (exact ? fe.proto : r.pick([P_TCP, P_UDP, P_SCTP, P_ICMP])) : r.pick([P_TCP, P_UDP, P_SCTP, P_ICMP]);
      const dst = fe ? fe.addr : r.chance(0.5) ? r.pick(this.w.vips) : r.pick(this.w.others);
      const dport = fe && (this.avoidClashes || r.chance(0.85)) ? fe.port : this.port(proto);
      const src = r.chance(0.9) ? r.pick(this.clients) : r.u32();
      const sport = this.avoidClashes
        ? (fe ? 20000 + 64 * feIdx + r.int(64) : r.range(1024, 19999))
        : (r.chance(0.5) ? r.range(20000, 20063) : r.range(1, 65535));
      f = fastFrame(this.l4(proto, { src, dst, proto, sport, dport, ipOptions: this.ipOptions(), ttl: r.range(1, 255), id: r.int(65536) }));
    } else if (x < 660 && this.flows.length) {
      kind = "continue";
      const fl = r.pick(this.flows);
      f = fastFrame(this.l4(fl.proto, { src: fl.client, dst: fl.fe, proto: fl.proto, sport: fl.cport, dport: fl.feport, ipOptions: this.ipOptions() }));
    } else if (x < 800 && this.flows.length) {
      kind = "reply";
      const fl = r.pick(this.flows);
      f = fastFrame(this.l4(fl.proto, { src: fl.be, dst: fl.natSrc, proto: fl.proto, sport: fl.beport, dport: fl.natSport, ipOptions: this.ipOptions() }));
    } else if (x < 870 && this.flows.length) {
      kind = "icmp-err-be";
      const fl = r.pick(this.flows);
      const q = fl.fwdQuote.subarray(0, r.chance(0.8) ? fl.fwdQuote.length : r.int(fl.fwdQuote.length + 1));
      f = fastFrame({
        src: r.chance(0.7) ? fl.be : r.pick(this.w.others), dst: fl.natSrc, proto: P_ICMP,
        icmpType: r.pick(ICMP_ERR), icmpCode: r.chance(0.7) ? 3 : r.int(16), icmpRest: r.chance(0.5) ? 0 : 1400, payload: q,
      });
    } else if (x < 920 && this.replies.length) {
      kind = "icmp-err-client";
      const rp = r.pick(this.replies);
      const q = rp.quote.subarray(0, r.chance(0.8) ? rp.quote.length : r.int(rp.quote.length + 1));
      f = fastFrame({ src: r.chance(0.7) ? rp.client : r.pick(this.w.others), dst: rp.fe, proto: P_ICMP, icmpType: r.pick(ICMP_ERR), icmpCode: r.int(16), icmpRest: 0, payload: q });
    } else if (x < 990) {
      kind = "other";
      const y = r.int(6);
      if (y === 0) f = ALL_FIXTURES.ARP_REQUEST!.slice();
      else if (y === 1) f = ALL_FIXTURES.IPV6_ECHO!.slice();
      else if (y === 2) f = ALL_FIXTURES.VLAN_ECHO!.slice();
      else if (y === 3) {
        // Another IP protocol (GRE, ESP, OSPF, IGMP, IPv6-in-IPv4, ...) to a frontend or elsewhere.
        f = fastFrame({ src: r.pick(this.clients), dst: r.chance(0.5) ? r.pick(this.w.others) : r.pick(this.w.frontends).addr, proto: P_UDP, payload: this.payload(40) });
        f[23] = r.pick([47, 50, 89, 2, 41, 0, 255, 58]);
        fixIpChecksum(f);
      } else {
        // Fragments (first, middle, last) to frontends or elsewhere; or plain traffic elsewhere.
        const feIdx = r.int(this.w.frontends.length);
        const fe = this.w.frontends[feIdx]!;
        const frag = y === 4;
        f = fastFrame(this.l4(fe.proto, {
          src: r.pick(this.clients), dst: r.chance(0.5) ? r.pick(this.w.others) : fe.addr, proto: fe.proto,
          sport: this.avoidClashes ? 20000 + 64 * feIdx + r.int(64) : r.range(1, 65535), dport: fe.port,
          fragOffset: frag && r.chance(0.7) ? r.int(8192) : 0, moreFragments: frag && r.chance(0.5),
        }));
      }
    } else {
      kind = "oversize";
      f = this.randomBytes(r.range(513, 1600)).slice();
      f[12] = 8;
      f[13] = 0;
    }
    this.count(kind);
    if (mutate) f = this.mutate(f);
    return { frame: f, kind };
  }

  /** 1-4 random edits; then usually the IP checksum (and SCTP CRC) are made right again. */
  mutate(f0: Uint8Array): Uint8Array {
    const r = this.rng;
    let f = f0;
    const n = r.range(1, 4);
    for (let i = 0; i < n; i++) {
      const op = r.int(12);
      const hdr = Math.min(f.length, 80);
      if (op === 0 && f.length) f[r.int(f.length)] ^= 1 << r.int(8);
      else if (op === 1 && hdr) f[r.int(hdr)] = r.int(256);
      else if (op === 2) f = f.slice(0, r.int(f.length + 1));
      else if (op === 3) {
        const g = new Uint8Array(f.length + r.range(1, 64));
        g.set(f);
        g.set(this.randomBytes(g.length - f.length), f.length);
        f = g;
      } else if (op === 4 && f.length > 14) f[14] = (f[14]! & 0xf0) | r.int(16); // IHL
      else if (op === 5 && f.length > 17) {
        const tot = r.chance(0.5) ? r.int(f.length) : r.int(65536);
        f[16] = tot >> 8;
        f[17] = tot & 0xff;
      } else if (op === 6 && f.length > 21) {
        f[20] = r.int(256);
        f[21] = r.int(256);
      } else if (op === 7 && f.length > 23) f[23] = r.pick([P_TCP, P_UDP, P_SCTP, P_ICMP, r.int(256)]);
      else if (op === 8 && f.length > 14) {
        // TCP data offset / ICMP inner IHL / UDP length: whatever sits at l4+12 or l4+8.
        const ihl = (f[14]! & 15) * 4;
        const at = 14 + ihl + r.pick([4, 5, 8, 12, 13]);
        if (at < f.length) f[at] = r.int(256);
      } else if (op === 9 && f.length > 14) f[14] = (r.int(16) << 4) | (f[14]! & 15); // version
      else if (op === 10 && f.length >= 14) {
        f[12] = r.pick([0x08, 0x08, 0x81, 0x86, 0x88]);
        f[13] = r.pick([0x00, 0x00, 0x06, 0xdd, 0xa8]);
      } else if (op === 11 && f.length > 33 && !this.avoidClashes) {
        const d = r.pick(this.w.frontends);
        f[30] = d.addr >>> 24; f[31] = (d.addr >>> 16) & 255; f[32] = (d.addr >>> 8) & 255; f[33] = d.addr & 255;
      }
    }
    if (r.chance(0.75)) fixIpChecksum(f);
    if (r.chance(0.6)) fixSctpCrc(f);
    return f;
  }

  /** Learns flows from translated frames, so later frames can continue, answer or quote them. */
  observe(input: Uint8Array, res: FrameResult): void {
    if (res.verdict !== "TX") return;
    const reason = res.reason;
    if (reason === REASONS.R_TX_NEW_FLOW || reason === REASONS.R_TX_RESELECTED) {
      const a = parse(input);
      const b = parse(res.data);
      if (!a || !b || a.sport < 0) return;
      const fl: Flow = {
        proto: a.proto, client: a.src, cport: a.sport, fe: a.dst, feport: a.dport,
        natSrc: b.src, natSport: b.sport, be: b.dst, beport: b.dport,
        fwdQuote: res.data.slice(14, 14 + Math.min(b.tot, b.ihl + 28)),
      };
      if (this.flows.length < 256) this.flows.push(fl);
      else this.flows[this.rng.int(this.flows.length)] = fl;
    } else if (reason === REASONS.R_TX_REPLY) {
      const b = parse(res.data);
      if (!b) return;
      const rp = { client: b.dst, fe: b.src, quote: res.data.slice(14, 14 + Math.min(b.tot, b.ihl + 28)) };
      if (this.replies.length < 128) this.replies.push(rp);
      else this.replies[this.rng.int(this.replies.length)] = rp;
    }
  }
}

// ---- the harness --------------------------------------------------------------------------

export interface Violation {
  what: string;
  frame: string;
  kind?: string;
}

const FAMILY_OF = new Map<number, string>(Object.entries(REASONS).map(([k, v]) => [v, /^R_(PASS|TX|REPLY|DROP)_/.exec(k)![1]!]));
const KNOWN_REASONS = new Set<number>(Object.values(REASONS));

function hexOf(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/**
 * Runs batches through Dataplane.process with canaries: before each batch the frame area (and
 * 256 bytes after it, and the unused descriptors) is filled with a pseudo-random pattern; the
 * frames are then copied in by process(). Afterwards, every byte outside each frame must still
 * hold the pattern (REPLY may write up to its output length), PASS/DROP frames must be
 * unchanged, and each result must be well-formed.
 */
export class Harness {
  readonly violations: Violation[] = [];
  readonly reasons = new Map<number, number>();
  frames = 0;
  bytes = 0;
  decodeChecks = 0;
  private readonly patterns: Uint8Array[];
  private batchNo = 0;
  private readonly area: number;
  private readonly areaLen: number;
  private readonly guard: number;

  constructor(readonly dp: Dataplane, patternSeed: number, private readonly world?: World, private readonly decodeEvery = 8) {
    this.area = dp.x.frameAreaPtr();
    this.areaLen = dp.batchMax * dp.frameCap;
    this.guard = Math.min(256, dp.x.memory.buffer.byteLength - (this.area + this.areaLen));
    const pr = new Rng(patternSeed);
    this.patterns = [0, 1, 2].map(() => pr.bytes(this.areaLen + this.guard));
  }

  private fail(what: string, frame: Uint8Array, kind?: string): void {
    if (this.violations.length < 20) this.violations.push({ what, frame: hexOf(frame), kind });
  }

  /** Processes one batch (≤ batchMax frames reach the module in one call) and checks it. */
  run(frames: Uint8Array[], now: number, kinds?: string[]): FrameResult[] {
    const dp = this.dp;
    const cap = dp.frameCap;
    if (frames.length > dp.batchMax) throw new Error("one chunk per run");
    const pat = this.patterns[this.batchNo++ % this.patterns.length]!;
    let mem = new Uint8Array(dp.x.memory.buffer);
    mem.set(pat, this.area);
    const descs = dp.x.batchDescsPtr();
    const descPat = pat.subarray(0, dp.batchMax * 16);
    mem.set(descPat, descs);
    const results = dp.process(frames.map((data) => ({ data })), now);
    mem = new Uint8Array(dp.x.memory.buffer);
    if (results.length !== frames.length) {
      this.fail(`${results.length} results for ${frames.length} frames`, new Uint8Array());
      return results;
    }
    let slot = 0;
    for (let i = 0; i < frames.length; i++) {
      const f = frames[i]!;
      const r = results[i]!;
      const kind = kinds?.[i];
      this.frames++;
      this.bytes += f.length;
      this.reasons.set(r.reason, (this.reasons.get(r.reason) ?? 0) + 1);
      if (!KNOWN_REASONS.has(r.reason) || !VERDICTS.includes(r.verdict) || FAMILY_OF.get(r.reason) !== r.verdict) {
        this.fail(`bad result ${r.verdict}/${r.reason} (${reasonName(r.reason)})`, f, kind);
      }
      if (f.length > cap) {
        if (r.verdict !== "DROP" || r.reason !== REASONS.R_DROP_FRAME_TOO_BIG || r.data !== f) this.fail(`oversize frame got ${r.verdict}/${r.reasonName}`, f, kind);
        continue;
      }
      const buf = this.area + slot * cap;
      slot++;
      let tailFrom = buf + f.length;
      if (r.verdict === "PASS" || r.verdict === "DROP") {
        if (r.data !== f) this.fail(`${r.verdict} returned other data`, f, kind);
        for (let k = 0; k < f.length; k++) {
          if (mem[buf + k] !== f[k]) {
            this.fail(`${r.verdict} ${r.reasonName}: frame byte ${k} changed in place`, f, kind);
            break;
          }
        }
      } else if (r.verdict === "TX") {
        if (r.data.length !== f.length) this.fail(`TX changed the length ${f.length} → ${r.data.length}`, f, kind);
        this.checkTx(f, r, kind);
      } else {
        if (r.data.length > cap || r.data.length < 14 + 20 + 8) this.fail(`REPLY of ${r.data.length} bytes (cap ${cap})`, f, kind);
        tailFrom = buf + Math.max(f.length, r.data.length);
        this.checkReply(f, r, kind);
      }
      const end = buf + cap;
      for (let p = tailFrom; p < end; p++) {
        if (mem[p] !== pat[p - this.area]) {
          this.fail(`${r.verdict} ${r.reasonName}: byte ${p - buf} of the buffer (frame ${f.length}, out ${r.data.length}) written`, f, kind);
          break;
        }
      }
    }
    // Buffers no frame used, and the guard after the area.
    for (let p = this.area + slot * cap; p < this.area + this.areaLen + this.guard; p++) {
      if (mem[p] !== pat[p - this.area]) {
        this.fail(`unused frame area byte at +${p - this.area} written`, new Uint8Array());
        break;
      }
    }
    for (let p = descs + slot * 16; p < descs + dp.batchMax * 16; p++) {
      if (mem[p] !== descPat[p - descs]) {
        this.fail(`unused descriptor byte at +${p - descs} written`, new Uint8Array());
        break;
      }
    }
    return results;
  }

  private backendOk(proto: number, addr: number, port: number): boolean {
    return this.world?.backendKeys.get(proto)?.has(epKey(addr, port)) ?? true;
  }

  private frontendOk(proto: number, addr: number, port: number): boolean {
    return this.world?.frontendKeys.get(proto)?.has(epKey(addr, port)) ?? true;
  }

  private checkTx(f: Uint8Array, r: FrameResult, kind?: string): void {
    const a = parse(f);
    const b = parse(r.data);
    if (!a || !b) {
      this.fail(`TX of a frame that is not IPv4`, f, kind);
      return;
    }
    if (r.reason === REASONS.R_TX_NEW_FLOW || r.reason === REASONS.R_TX_ESTABLISHED || r.reason === REASONS.R_TX_RESELECTED) {
      if (!this.backendOk(b.proto, b.dst, b.dport)) this.fail(`TX ${r.reasonName} to ${ipStr(b.dst)}:${b.dport}, not a backend`, f, kind);
    } else if (r.reason === REASONS.R_TX_REPLY) {
      if (!this.frontendOk(b.proto, b.src, b.sport)) this.fail(`TX reply from ${ipStr(b.src)}:${b.sport}, not a frontend`, f, kind);
    }
    if (this.frames % this.decodeEvery === 0) this.checksums(f, r, kind);
  }

  private checkReply(f: Uint8Array, r: FrameResult, kind?: string): void {
    const a = parse(f);
    const b = parse(r.data);
    if (!a || !b || b.proto !== P_ICMP || b.src !== a.dst || b.dst !== a.src) {
      this.fail(`REPLY ${r.reasonName} is not ICMP from the frame's destination to its source`, f, kind);
      return;
    }
    this.checksums(f, r, kind);
  }

  /** Output checksums: the IP header always verifies; L4 verifies when it did on input. */
  private checksums(f: Uint8Array, r: FrameResult, kind?: string): void {
    this.decodeChecks++;
    let before: string[];
    try {
      before = decodeFrame(f).badChecksums;
    } catch {
      before = ["undecodable"];
    }
    let after: string[];
    try {
      after = decodeFrame(r.data).badChecksums;
    } catch (e) {
      this.fail(`${r.verdict} ${r.reasonName} output does not decode: ${(e as Error).message}`, f, kind);
      return;
    }
    const fresh = r.reason === REASONS.R_REPLY_NO_ENDPOINTS || r.reason === REASONS.R_REPLY_UNKNOWN_PORT;
    for (const c of after) {
      const ok = c !== "ip" && !fresh && !(c === "icmp" && r.reason === REASONS.R_TX_ICMP_ERROR) && c !== "sctp"
        && (before.includes(c) || before.includes("undecodable"));
      if (!ok) this.fail(`${r.verdict} ${r.reasonName}: output checksum ${c} bad (input bad: ${before.join(",") || "none"})`, f, kind);
    }
  }

  /** Sum of the dataplane's per-reason packet counters. */
  statsPackets(): bigint {
    return this.dp.reasonStats().reduce((s, x) => s + x.packets, 0n);
  }

  statsBytes(): bigint {
    return this.dp.reasonStats().reduce((s, x) => s + x.bytes, 0n);
  }
}

// ---- conntrack integrity ------------------------------------------------------------------

/**
 * Structural invariants of the conntrack table: every entry is found by its own key (no
 * duplicate keys, no entry lost in a probe chain), every entry has its peer (the other
 * direction, pointing back), and each backend's activeConns equals its counted forward
 * entries. Returns the problems found (empty = intact).
 */
export function conntrackProblems(dp: Dataplane, limit = 10): string[] {
  const x = dp.x;
  const id = 8; // conntrack_id
  const out: string[] = [];
  const dv = () => new DataView(x.memory.buffer);
  const scratch = x.scratchPtr();
  const keyStr = (p: number) => {
    const d = dv();
    return `${ipStr(d.getUint32(p, false))}:${d.getUint16(p + 8, false)}>${ipStr(d.getUint32(p + 4, false))}:${d.getUint16(p + 10, false)}/${d.getUint8(p + 12)}`;
  };
  const counted = new Map<number, number>();
  for (let i = x.hashNext(id, 0); i >= 0; i = x.hashNext(id, i + 1)) {
    const k = x.slotKeyPtr(id, i);
    const v = x.slotValuePtr(id, i);
    const found = x.hashFind(id, k);
    if (found !== i) out.push(`entry ${keyStr(k)} in slot ${i}: its key finds slot ${found} (duplicate or lost)`);
    const d = dv();
    const flags = d.getUint8(v + 19);
    const proto = d.getUint8(k + 12);
    // The peer key, as assembly/conntrack.ts ctPeerKey builds it (raw addresses and ports).
    const pk = new Uint8Array(16);
    const pdv = new DataView(pk.buffer);
    const raw32 = (p: number) => d.getUint32(p, true);
    const raw16 = (p: number) => d.getUint16(p, true);
    if (flags & 1) {
      pdv.setUint32(0, raw32(v + 12), true);
      pdv.setUint32(4, raw32(v + 24), true);
      pdv.setUint16(8, raw16(v + 16), true);
      pdv.setUint16(10, raw16(v + 28), true);
    } else {
      const snat = (flags & 2) !== 0;
      pdv.setUint32(0, raw32(v + 24), true);
      pdv.setUint32(4, snat ? raw32(v + 12) : raw32(k), true);
      pdv.setUint16(8, raw16(v + 28), true);
      pdv.setUint16(10, snat ? raw16(v + 16) : raw16(k + 8), true);
      if (flags & 8) counted.set(d.getUint32(v, true), (counted.get(d.getUint32(v, true)) ?? 0) + 1);
    }
    pk[12] = proto;
    new Uint8Array(x.memory.buffer).set(pk, scratch);
    const j = x.hashFind(id, scratch);
    if (j < 0) out.push(`entry ${keyStr(k)} (${flags & 1 ? "reply" : "forward"}) has no peer ${keyStr(scratch)}`);
    else if ((dv().getUint8(x.slotValuePtr(id, j) + 19) & 1) === (flags & 1)) out.push(`entry ${keyStr(k)}: peer ${keyStr(scratch)} has the same direction`);
    if (out.length >= limit) return out;
  }
  for (let b = 1; b < dp.maps.backends.maxEntries; b++) {
    const be = dp.maps.backends.get(b);
    if (be.state === 0 && be.activeConns === 0) continue;
    const n = counted.get(b) ?? 0;
    if (be.activeConns !== n) out.push(`backend ${b} ${be.addrBe}:${be.portBe}: activeConns ${be.activeConns}, counted forward entries ${n}`);
    if (out.length >= limit) return out;
  }
  return out;
}
