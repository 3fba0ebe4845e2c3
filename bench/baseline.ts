// A plain TypeScript implementation of the dataplane's service hot path, for comparison with
// the AssemblyScript → WASM pipeline on the same frames in the same run. It follows the same
// algorithms and layouts on typed arrays, with no allocation per frame:
//
//   parse   Ethernet → IPv4 (version/IHL/length checks, header checksum verified, fragments
//           refused) → TCP/UDP (data offset check), ports and addresses kept "raw" (wire bytes
//           loaded little-endian, as the WASM module does)
//   CT      an open-addressing, linear-probing hash over one Uint32Array with the engine's slot
//           layout (tag, LRU stamp, 16-byte key {saddr, daddr, sport|dport, proto}, 32-byte
//           value {backendId, revNatId, svcId, natAddr, natPort|state|flags, expires, peerAddr,
//           peerPort}), the same murmur3-style hash, fastrange home slot, 0.8 load factor,
//           backward-shift deletion; both directions inserted per flow
//   hit     expiry check, LRU stamp, TCP state tracking (refresh / FIN / RST / handshake),
//           backend-still-valid check, DNAT (and reverse NAT for replies), stats per reason,
//           service and backend, MAC swap
//   new     frontend hash lookup (addr, port|proto), service record, local-source LPM check
//           (table 0: hash per present prefix length, longest first), ready-set range,
//           random backend (xorshift32) through a (svcId, slot) → backendId hash, conntrack
//           insert of both directions (fail closed), activeConns, DNAT
//   NAT     RFC 1624 incremental update of the IPv4 header and TCP/UDP checksums
//
// Not implemented (the benchmark traffic never needs them; the code fails safe instead):
// SNAT/masquerade port allocation (a flow that needs it is dropped), NodePorts and the addrs
// map (unknown destination = PASS), session affinity, source ranges, schedulers other than
// random, SCTP/ICMP, LRU eviction (a full table fails closed), the expiry sweep.

const VERDICT_PASS = 0;
const VERDICT_TX = 1;
const VERDICT_DROP = 3;
const R_PASS_NOT_SERVICE = 1;
const R_PASS_NOT_IPV4 = 3;
const R_PASS_FRAGMENT = 5;
const R_PASS_OTHER_L4 = 6;
const R_TX_NEW_FLOW = 16;
const R_TX_ESTABLISHED = 17;
const R_TX_REPLY = 18;
const R_TX_RESELECTED = 20;
const R_DROP_ETH_TRUNCATED = 32;
const R_DROP_IP_TRUNCATED = 33;
const R_DROP_IP_HEADER = 34;
const R_DROP_IP_CHECKSUM = 35;
const R_DROP_L4_TRUNCATED = 36;
const R_DROP_CT_FULL = 40;
const R_DROP_SNAT_NO_ADDR = 42;
const R_DROP_NO_BACKEND = 43;
const R_DROP_BAD_DESCRIPTOR = 45;

const TCP_FIN = 0x01;
const TCP_SYN = 0x02;
const TCP_RST = 0x04;
const TCP_ACK = 0x10;

const CT_STATE_NONE = 0;
const CT_STATE_SYN_SENT = 1;
const CT_STATE_ESTABLISHED = 2;
const CT_STATE_CLOSING = 3;
const CT_STATE_RESET = 4;
const CT_REPLY = 1;
const CT_SNAT = 2;
const CT_SEEN_REPLY = 4;
const CT_COUNTED = 8;

const SVC_EXT_LOCAL = 2;
const SVC_INT_LOCAL = 4;
const FE_CLUSTER_IP = 1;
const BE_STATE_ACTIVE = 1;

// ---- hashing (assembly/maps/engine.ts hashWords, with Math.imul) ---------------------------

function mix(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function hashKey(kw: number, a: number, b: number, c: number, d: number, seed: number): number {
  let h = mix(seed, a);
  if (kw > 1) h = mix(h, b);
  if (kw > 2) h = mix(h, c);
  if (kw > 3) h = mix(h, d);
  h ^= kw << 2;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const TWO32 = 4294967296;

/**
 * Open-addressing hash over a Uint32Array, the engine's scheme: slot = [tag, stamp, key(kw
 * words), value(vw words)]; tag 0 = empty, else hash | 1; capacity ⌈max / 0.8⌉ + 1; home =
 * fastrange(tag, capacity); linear probing; backward-shift deletion. Keys are up to 4 words,
 * passed as arguments (unused words 0). Slot handles are word offsets into `t`.
 */
export class U32Hash {
  readonly t: Uint32Array;
  readonly cap: number;
  readonly sw: number;
  count = 0;
  constructor(readonly max: number, readonly kw: number, readonly vw: number, readonly seed: number) {
    this.cap = Math.floor((max * 5 + 3) / 4) + 1;
    this.sw = 2 + kw + vw;
    this.t = new Uint32Array(this.cap * this.sw);
  }

  get bytes(): number {
    return this.t.byteLength;
  }

  /** Word offset of the slot holding the key, or -1. */
  find(a: number, b: number, c: number, d: number): number {
    const t = this.t;
    const sw = this.sw;
    const cap = this.cap;
    const kw = this.kw;
    const tag = (hashKey(kw, a, b, c, d, this.seed) | 1) >>> 0;
    let i = Math.floor((tag * cap) / TWO32);
    for (;;) {
      const s = i * sw;
      const x = t[s]!;
      if (x === 0) return -1;
      if (x === tag && t[s + 2] === a && (kw < 2 || t[s + 3] === b) && (kw < 3 || t[s + 4] === c) && (kw < 4 || t[s + 5] === d)) return s;
      if (++i === cap) i = 0;
    }
  }

  /** Inserts an absent key with a zeroed value; word offset of the slot, or -1 when full. */
  insert(a: number, b: number, c: number, d: number, stamp: number): number {
    if (this.count >= this.max) return -1;
    const t = this.t;
    const sw = this.sw;
    const cap = this.cap;
    const kw = this.kw;
    const tag = (hashKey(kw, a, b, c, d, this.seed) | 1) >>> 0;
    let i = Math.floor((tag * cap) / TWO32);
    for (;;) {
      const s = i * sw;
      if (t[s] === 0) {
        t[s] = tag;
        t[s + 1] = stamp;
        t[s + 2] = a;
        if (kw > 1) t[s + 3] = b;
        if (kw > 2) t[s + 4] = c;
        if (kw > 3) t[s + 5] = d;
        t.fill(0, s + 2 + kw, s + sw);
        this.count++;
        return s;
      }
      if (++i === cap) i = 0;
    }
  }

  /** Removes the entry at word offset s (backward-shift deletion). */
  removeAt(s: number): void {
    const t = this.t;
    const sw = this.sw;
    const cap = this.cap;
    let i = s / sw;
    let j = i;
    for (;;) {
      if (++j === cap) j = 0;
      const x = t[j * sw]!;
      if (x === 0) break;
      const k = Math.floor((x * cap) / TWO32);
      const move = i <= j ? k <= i || k > j : k <= i && k > j;
      if (move) {
        t.copyWithin(i * sw, j * sw, j * sw + sw);
        i = j;
      }
    }
    t[i * sw] = 0;
    this.count--;
  }

  clear(): void {
    this.t.fill(0);
    this.count = 0;
  }
}

// ---- checksums (RFC 1624 eqn. 3 on raw words) ----------------------------------------------

function csumReplace4(csum: number, from: number, to: number): number {
  const nf = ~from;
  let s = (~csum & 0xffff) + (nf & 0xffff) + (nf >>> 16) + (to & 0xffff) + (to >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

function csumReplace2(csum: number, from: number, to: number): number {
  let s = (~csum & 0xffff) + (~from & 0xffff) + to;
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/** host-order u32 → raw (wire bytes loaded little-endian). */
export function rawAddr(v: number): number {
  return (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0;
}
export function rawPort(p: number): number {
  return ((p & 0xff) << 8) | (p >>> 8);
}
function netmaskRaw(len: number): number {
  return len === 0 ? 0 : rawAddr((0xffffffff << (32 - len)) >>> 0);
}

const SVC_W = 4; // services: [flags, readyLocal|readyRemote<<16, terminatingLocal|terminatingRemote<<16, pad]
const BE_W = 4; // backends: [addrRaw, portRaw|proto<<16|state<<24, flags|weight<<16, activeConns]

export interface TsDataplaneOptions {
  seed: number;
  conntrackMax: number;
  servicesMax?: number;
  backendsMax?: number;
  batchMax?: number;
  frameCap?: number;
}

export class TsDataplane {
  /** Batch area: descriptors at 0, frames from `frameArea`; offsets are into this buffer. */
  readonly buf: Uint8Array;
  private readonly dv: DataView;
  readonly batchMax: number;
  readonly frameCap: number;
  readonly frameArea: number;
  readonly ct: U32Hash;
  private readonly fe: U32Hash;
  private readonly slots: U32Hash;
  private readonly lpm: U32Hash;
  private lpmMaskLo = 0; // prefix lengths 0..31 present in table 0
  private lpmMaskHi = 0; // length 32
  private readonly svcs: Uint32Array;
  readonly bes: Uint32Array;
  readonly statsReason = new Float64Array(64 * 2);
  private readonly statsService: Float64Array;
  private readonly statsBackend: Float64Array;
  private rng: number;
  private lruClock = 1;
  private nextSvc = 1;
  private nextRevNat = 1;
  private nextBe = 1;
  private readonly beIds = new Map<string, number>();
  outLen = 0;
  // Config (Linux nf_conntrack timeouts, kube-proxy's established 24 h).
  tcpSynTimeout = 120;
  tcpEstablishedTimeout = 86400;
  tcpClosingTimeout = 120;
  udpTimeout = 30;
  udpStreamTimeout = 120;
  swapMacs = true;
  masqOffNode = false;

  constructor(o: TsDataplaneOptions) {
    this.batchMax = o.batchMax ?? 64;
    this.frameCap = o.frameCap ?? 64;
    this.frameArea = this.batchMax * 16;
    this.buf = new Uint8Array(this.frameArea + this.batchMax * this.frameCap);
    this.dv = new DataView(this.buf.buffer);
    const seed = (o.seed | 1) >>> 0;
    this.rng = o.seed >>> 0 || 1;
    this.ct = new U32Hash(o.conntrackMax, 4, 8, seed);
    const svcMax = o.servicesMax ?? 65536;
    const beMax = o.backendsMax ?? 65536;
    this.fe = new U32Hash(svcMax, 2, 3, seed);
    this.slots = new U32Hash(Math.max(262144, beMax), 2, 1, seed);
    this.lpm = new U32Hash(1024, 3, 1, seed);
    this.svcs = new Uint32Array(svcMax * SVC_W);
    this.bes = new Uint32Array(beMax * BE_W);
    this.statsService = new Float64Array(svcMax * 3);
    this.statsBackend = new Float64Array(beMax * 3);
  }

  // ---- programming (host side, not measured) ------------------------------------------------

  /** Adds a prefix to LPM table 0 (this node's sources). Addresses host-order. */
  addLocalSource(addr: number, len: number): void {
    const masked = rawAddr(addr) & netmaskRaw(len);
    if (this.lpm.find(0, len, masked >>> 0, 0) < 0) this.lpm.t[this.lpm.insert(0, len, masked >>> 0, 0, 0) + 5] = 1;
    if (len === 32) this.lpmMaskHi = 1;
    else this.lpmMaskLo = (this.lpmMaskLo | (1 << len)) >>> 0;
  }

  /** A ClusterIP TCP service port with ready remote backends; returns its svcId. Host-order in. */
  addService(vip: number, port: number, backends: Array<{ addr: number; port: number }>): number {
    const svcId = this.nextSvc++;
    const revNat = this.nextRevNat++;
    const s = this.fe.insert(rawAddr(vip), (rawPort(port) | (6 << 16)) >>> 0, 0, 0, 0);
    if (s < 0) throw new Error("baseline frontends full");
    this.fe.t[s + 4] = svcId;
    this.fe.t[s + 5] = revNat;
    this.fe.t[s + 6] = FE_CLUSTER_IP;
    backends.forEach((b, slot) => {
      const k = `${b.addr}:${b.port}`;
      let id = this.beIds.get(k);
      if (id === undefined) {
        id = this.nextBe++;
        this.beIds.set(k, id);
        const w = id * BE_W;
        this.bes[w] = rawAddr(b.addr);
        this.bes[w + 1] = (rawPort(b.port) | (6 << 16) | (BE_STATE_ACTIVE << 24)) >>> 0;
        this.bes[w + 2] = 1 << 16; // weight 1
        this.bes[w + 3] = 0;
      }
      const e = this.slots.insert(svcId, slot, 0, 0, 0);
      if (e < 0) throw new Error("baseline svc slots full");
      this.slots.t[e + 4] = id;
    });
    const w = svcId * SVC_W;
    this.svcs[w] = 0; // flags
    this.svcs[w + 1] = (backends.length << 16) >>> 0; // readyLocal 0 | readyRemote n
    this.svcs[w + 2] = 0;
    return svcId;
  }

  /** Clears conntrack and zeroes activeConns (between new-flow rounds). */
  reset(): void {
    this.ct.clear();
    for (let i = 3; i < this.bes.length; i += BE_W) this.bes[i] = 0;
  }

  // ---- the per-frame path ---------------------------------------------------------------------

  private out(verdict: number, reason: number, bytes: number): number {
    const sr = this.statsReason;
    sr[reason * 2]++;
    sr[reason * 2 + 1] += bytes;
    return verdict | (reason << 8);
  }

  private countTraffic(stats: Float64Array, id: number, bytes: number, newFlow: boolean): void {
    const o = id * 3;
    if (o >= stats.length) return;
    stats[o]++;
    stats[o + 1] += bytes;
    if (newFlow) stats[o + 2]++;
  }

  private ctTimeout(proto: number, state: number, flags: number): number {
    if (proto === 6) {
      if (state === CT_STATE_ESTABLISHED) return this.tcpEstablishedTimeout;
      if (state === CT_STATE_CLOSING) return this.tcpClosingTimeout;
      if (state === CT_STATE_RESET) return 10;
      return this.tcpSynTimeout;
    }
    return flags & CT_SEEN_REPLY ? this.udpStreamTimeout : this.udpTimeout;
  }

  /** Word offset of the peer entry of the CT entry at slot s, or -1. */
  private ctPeer(s: number): number {
    const t = this.ct.t;
    const v = s + 6;
    const w4 = t[v + 4]!;
    const flags = w4 >>> 24;
    const proto = t[s + 5]!;
    if (flags & CT_REPLY) {
      return this.ct.find(t[v + 3]!, t[v + 6]!, ((w4 & 0xffff) | (t[v + 7]! << 16)) >>> 0, proto);
    }
    const snat = (flags & CT_SNAT) !== 0;
    const da = snat ? t[v + 3]! : t[s + 2]!;
    const dp = snat ? w4 & 0xffff : t[s + 4]! & 0xffff;
    return this.ct.find(t[v + 6]!, da, ((t[v + 7]! & 0xffff) | (dp << 16)) >>> 0, proto);
  }

  private ctRefresh(s: number, now: number): void {
    const t = this.ct.t;
    const w4 = t[s + 10]!;
    t[s + 11] = (now + this.ctTimeout(t[s + 5]!, (w4 >>> 16) & 0xff, w4 >>> 24)) >>> 0;
  }

  private ctSetBoth(s: number, state: number, addFlags: number, now: number): void {
    const t = this.ct.t;
    t[s + 10] = ((t[s + 10]! & 0xffff) | (state << 16) | (((t[s + 10]! >>> 24) | addFlags) << 24)) >>> 0;
    this.ctRefresh(s, now);
    const p = this.ctPeer(s);
    if (p < 0) return;
    t[p + 10] = ((t[p + 10]! & 0xffff) | (state << 16) | (((t[p + 10]! >>> 24) | addFlags) << 24)) >>> 0;
    this.ctRefresh(p, now);
  }

  private ctUncount(s: number): void {
    const t = this.ct.t;
    let f = s;
    if ((t[s + 10]! >>> 24) & CT_REPLY) {
      f = this.ctPeer(s);
      if (f < 0) return;
    }
    const fl = t[f + 10]! >>> 24;
    if (!(fl & CT_COUNTED)) return;
    t[f + 10] = ((t[f + 10]! & 0xffffff) | ((fl & ~CT_COUNTED) << 24)) >>> 0;
    const be = t[f + 6]! * BE_W;
    if (be < this.bes.length && this.bes[be + 3]! > 0) this.bes[be + 3]!--;
  }

  /** Removes the entry at slot s and its peer, releasing the backend count. */
  private ctDelete(s: number): void {
    const t = this.ct.t;
    const p = this.ctPeer(s);
    const fwd = ((t[s + 10]! >>> 24) & CT_REPLY) === 0 ? s : p;
    if (fwd >= 0 && (t[fwd + 10]! >>> 24) & CT_COUNTED) {
      const be = t[fwd + 6]! * BE_W;
      if (be < this.bes.length && this.bes[be + 3]! > 0) this.bes[be + 3]!--;
    }
    // Remove the later-found one first so the other's offset stays valid, then re-find.
    if (p >= 0) {
      const k0 = t[s + 2]!, k1 = t[s + 3]!, k2 = t[s + 4]!, k3 = t[s + 5]!;
      this.ct.removeAt(p);
      const again = this.ct.find(k0, k1, k2, k3);
      if (again >= 0) this.ct.removeAt(again);
    } else this.ct.removeAt(s);
  }

  private tcpTrack(s: number, f: number, isReply: boolean, now: number): void {
    const w4 = this.ct.t[s + 10]!;
    const st = (w4 >>> 16) & 0xff;
    if (f & TCP_RST) {
      this.ctUncount(s);
      this.ctSetBoth(s, CT_STATE_RESET, 0, now);
    } else if (f & TCP_FIN) {
      if (st !== CT_STATE_CLOSING) {
        this.ctUncount(s);
        this.ctSetBoth(s, CT_STATE_CLOSING, 0, now);
      } else this.ctRefresh(s, now);
    } else if (st === CT_STATE_SYN_SENT) {
      const seen = ((w4 >>> 24) & CT_SEEN_REPLY) !== 0;
      if (isReply && !seen) this.ctSetBoth(s, CT_STATE_SYN_SENT, CT_SEEN_REPLY, now);
      else if (!isReply && seen && f & TCP_ACK && !(f & TCP_SYN)) this.ctSetBoth(s, CT_STATE_ESTABLISHED, 0, now);
      else this.ctRefresh(s, now);
    } else this.ctRefresh(s, now);
  }

  private rewriteAddr(ip: number, l4: number, proto: number, which: number, addr: number): void {
    const dv = this.dv;
    const old = dv.getUint32(ip + which, true);
    if (old === addr) return;
    dv.setUint32(ip + which, addr, true);
    dv.setUint16(ip + 10, csumReplace4(dv.getUint16(ip + 10, true), old, addr), true);
    const co = proto === 6 ? 16 : 6;
    const c = dv.getUint16(l4 + co, true);
    if (proto === 17 && c === 0) return;
    let n = csumReplace4(c, old, addr);
    if (proto === 17 && n === 0) n = 0xffff;
    dv.setUint16(l4 + co, n, true);
  }

  private rewritePort(l4: number, proto: number, which: number, port: number): void {
    const dv = this.dv;
    const old = dv.getUint16(l4 + which, true);
    if (old === port) return;
    dv.setUint16(l4 + which, port, true);
    const co = proto === 6 ? 16 : 6;
    const c = dv.getUint16(l4 + co, true);
    if (proto === 17 && c === 0) return;
    let n = csumReplace2(c, old, port);
    if (proto === 17 && n === 0) n = 0xffff;
    dv.setUint16(l4 + co, n, true);
  }

  private swap(p: number): void {
    if (!this.swapMacs) return;
    const dv = this.dv;
    const d4 = dv.getUint32(p, true);
    const d2 = dv.getUint16(p + 4, true);
    dv.setUint32(p, dv.getUint32(p + 6, true), true);
    dv.setUint16(p + 4, dv.getUint16(p + 10, true), true);
    dv.setUint32(p + 6, d4, true);
    dv.setUint16(p + 10, d2, true);
  }

  private backendValid(s: number): boolean {
    const t = this.ct.t;
    const be = t[s + 6]! * BE_W;
    if (be === 0 || be >= this.bes.length) return false;
    const w1 = this.bes[be + 1]!;
    if (w1 >>> 24 === 0) return false;
    return this.bes[be] === t[s + 12] && (w1 & 0xffff) === (t[s + 13]! & 0xffff);
  }

  private srcLocal(addr: number): boolean {
    let hi = this.lpmMaskHi;
    let lo = this.lpmMaskLo;
    while (hi !== 0 || lo !== 0) {
      let len: number;
      if (hi !== 0) {
        len = 32;
        hi = 0;
      } else {
        len = 31 - Math.clz32(lo);
        lo = (lo & ~(1 << len)) >>> 0;
      }
      if (this.lpm.find(0, len, (addr & netmaskRaw(len)) >>> 0, 0) >= 0) return true;
    }
    return false;
  }

  private nextRandom(): number {
    let x = this.rng;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.rng = x >>> 0;
    return this.rng;
  }

  processBatch(count: number, now: number): number {
    const dv = this.dv;
    const lo = this.frameArea;
    const hi = this.buf.length;
    for (let i = 0; i < count; i++) {
      const d = i * 16;
      const off = dv.getUint32(d, true);
      const len = dv.getUint32(d + 4, true);
      const cap = dv.getUint32(d + 8, true);
      if (off < lo || off + cap > hi || len > cap) {
        dv.setUint32(d + 12, this.out(VERDICT_DROP, R_DROP_BAD_DESCRIPTOR, 0), true);
        continue;
      }
      const r = this.processFrame(off, len, now);
      dv.setUint32(d + 4, this.outLen, true);
      dv.setUint32(d + 12, r, true);
    }
    return count;
  }

  processFrame(p: number, len: number, now: number): number {
    this.outLen = len;
    this.lruClock = (this.lruClock + 1) >>> 0;
    const u8 = this.buf;
    const dv = this.dv;
    if (len < 14) return this.out(VERDICT_DROP, R_DROP_ETH_TRUNCATED, len);
    if (u8[p + 12] !== 0x08 || u8[p + 13] !== 0x00) return this.out(VERDICT_PASS, R_PASS_NOT_IPV4, len);
    const ip = p + 14;
    const avail = len - 14;
    if (avail < 20) return this.out(VERDICT_DROP, R_DROP_IP_TRUNCATED, len);
    const vihl = u8[ip]!;
    const ihl = (vihl & 0xf) << 2;
    if (vihl >> 4 !== 4 || ihl < 20) return this.out(VERDICT_DROP, R_DROP_IP_HEADER, len);
    if (ihl > avail) return this.out(VERDICT_DROP, R_DROP_IP_TRUNCATED, len);
    const tot = (u8[ip + 2]! << 8) | u8[ip + 3]!;
    if (tot < ihl) return this.out(VERDICT_DROP, R_DROP_IP_HEADER, len);
    if (tot > avail) return this.out(VERDICT_DROP, R_DROP_IP_TRUNCATED, len);
    let sum = 0;
    for (let o = 0; o < ihl; o += 2) sum += dv.getUint16(ip + o, true);
    sum = (sum & 0xffff) + (sum >>> 16);
    sum = (sum & 0xffff) + (sum >>> 16);
    if (sum !== 0xffff) return this.out(VERDICT_DROP, R_DROP_IP_CHECKSUM, len);
    if (((u8[ip + 6]! << 8) | u8[ip + 7]!) & 0x3fff) return this.out(VERDICT_PASS, R_PASS_FRAGMENT, len);
    const proto = u8[ip + 9]!;
    if (proto !== 6 && proto !== 17) return this.out(VERDICT_PASS, R_PASS_OTHER_L4, len);
    const l4 = ip + ihl;
    const l4len = tot - ihl;
    if (l4len < (proto === 6 ? 20 : 8)) return this.out(VERDICT_DROP, R_DROP_L4_TRUNCATED, len);
    let tflags = 0;
    if (proto === 6) {
      const doff = (u8[l4 + 12]! >> 4) << 2;
      if (doff < 20 || doff > l4len) return this.out(VERDICT_DROP, R_DROP_L4_TRUNCATED, len);
      tflags = u8[l4 + 13]!;
    }
    const saddr = dv.getUint32(ip + 12, true);
    const daddr = dv.getUint32(ip + 16, true);
    const sport = dv.getUint16(l4, true);
    const dport = dv.getUint16(l4 + 2, true);
    const ports = (sport | (dport << 16)) >>> 0;

    // 1. A tracked flow.
    let reason = R_TX_NEW_FLOW;
    const ct = this.ct;
    let s = ct.find(saddr, daddr, ports, proto);
    if (s >= 0) {
      const t = ct.t;
      if (((t[s + 11]! - now) | 0) < 0) {
        const peer = this.ctPeer(s);
        const pe = peer >= 0 ? t[peer + 11]! : 0;
        if (peer < 0 || ((pe - now) | 0) < 0) {
          this.ctDelete(s);
          s = -1;
        } else t[s + 11] = pe;
      }
    }
    if (s >= 0) {
      const t = ct.t;
      t[s + 1] = this.lruClock;
      const w4 = t[s + 10]!;
      const flags = w4 >>> 24;
      const state = (w4 >>> 16) & 0xff;
      if (flags & CT_REPLY) {
        if (proto === 6) this.tcpTrack(s, tflags, true, now);
        else if (!(flags & CT_SEEN_REPLY)) this.ctSetBoth(s, CT_STATE_NONE, CT_SEEN_REPLY, now);
        else this.ctRefresh(s, now);
        const svcId = t[s + 8]!;
        const beId = t[s + 6]!;
        this.rewriteAddr(ip, l4, proto, 12, t[s + 12]!);
        this.rewritePort(l4, proto, 0, t[s + 13]! & 0xffff);
        if (flags & CT_SNAT) {
          this.rewriteAddr(ip, l4, proto, 16, t[s + 9]!);
          this.rewritePort(l4, proto, 2, w4 & 0xffff);
        }
        this.countTraffic(this.statsService, svcId, len, false);
        this.countTraffic(this.statsBackend, beId, len, false);
        this.swap(p);
        return this.out(VERDICT_TX, R_TX_REPLY, len);
      }
      const reopened = proto === 6 && (tflags & (TCP_SYN | TCP_ACK)) === TCP_SYN
        && (state === CT_STATE_CLOSING || state === CT_STATE_RESET);
      if (reopened) {
        this.ctDelete(s);
      } else if (!this.backendValid(s)) {
        this.ctDelete(s);
        reason = R_TX_RESELECTED;
      } else {
        if (proto === 6) this.tcpTrack(s, tflags, false, now);
        else this.ctRefresh(s, now);
        const svcId = t[s + 8]!;
        const beId = t[s + 6]!;
        const f2 = t[s + 10]! >>> 24;
        this.rewriteAddr(ip, l4, proto, 16, t[s + 12]!);
        this.rewritePort(l4, proto, 2, t[s + 13]! & 0xffff);
        if (f2 & CT_SNAT) {
          this.rewriteAddr(ip, l4, proto, 12, t[s + 9]!);
          this.rewritePort(l4, proto, 0, t[s + 10]! & 0xffff);
        }
        this.countTraffic(this.statsService, svcId, len, false);
        this.countTraffic(this.statsBackend, beId, len, false);
        this.swap(p);
        return this.out(VERDICT_TX, R_TX_ESTABLISHED, len);
      }
    }
    return this.newFlow(p, ip, l4, len, saddr, daddr, sport, dport, ports, proto, tflags, now, reason);
  }

  private newFlow(p: number, ip: number, l4: number, len: number, saddr: number, daddr: number,
    sport: number, dport: number, ports: number, proto: number, tflags: number, now: number, reason: number): number {
    // 2. Frontend.
    const fe = this.fe.find(daddr, (dport | (proto << 16)) >>> 0, 0, 0);
    if (fe < 0) return this.out(VERDICT_PASS, R_PASS_NOT_SERVICE, len);
    const ft = this.fe.t;
    const svcId = ft[fe + 4]!;
    const revNatId = ft[fe + 5]!;
    const kind = ft[fe + 6]!;
    const sv = svcId * SVC_W;
    if (sv >= this.svcs.length) return this.out(VERDICT_DROP, R_DROP_NO_BACKEND, len);
    const sflags = this.svcs[sv]!;
    // 4. The §5 set (cluster or local, ready first, else terminating).
    const srcLocal = this.srcLocal(saddr);
    const internal = kind === FE_CLUSTER_IP;
    const useLocal = internal ? (sflags & SVC_INT_LOCAL) !== 0 : (sflags & SVC_EXT_LOCAL) !== 0 && !srcLocal;
    const w1 = this.svcs[sv + 1]!;
    const w2 = this.svcs[sv + 2]!;
    const rl = w1 & 0xffff, rr = w1 >>> 16, tl = w2 & 0xffff, tr = w2 >>> 16;
    let start: number, n: number;
    if (useLocal) {
      start = rl > 0 ? 0 : rl + rr;
      n = rl > 0 ? rl : tl;
    } else {
      start = rl + rr > 0 ? 0 : rl + rr;
      n = rl + rr > 0 ? rl + rr : tl + tr;
    }
    if (n === 0) return this.out(VERDICT_DROP, R_DROP_NO_BACKEND, len);
    // 6. Random backend: (svcId, slot) → backendId.
    const e = this.slots.find(svcId, start + (this.nextRandom() % n), 0, 0);
    const beId = e < 0 ? 0 : this.slots.t[e + 4]!;
    const be = beId * BE_W;
    if (beId === 0 || be >= this.bes.length || this.bes[be + 1]! >>> 24 === 0) return this.out(VERDICT_DROP, R_DROP_NO_BACKEND, len);
    const baddr = this.bes[be]!;
    const bport = this.bes[be + 1]! & 0xffff;
    // 7. Masquerade decision (allocation not implemented in the baseline: fail closed).
    const needSnat = baddr === saddr || (internal ? !srcLocal && this.masqOffNode : (sflags & SVC_EXT_LOCAL) === 0);
    if (needSnat) return this.out(VERDICT_DROP, R_DROP_SNAT_NO_ADDR, len);
    // 8. Conntrack, both directions or nothing.
    const state = proto === 6 ? (tflags & TCP_SYN ? CT_STATE_SYN_SENT : CT_STATE_ESTABLISHED) : CT_STATE_NONE;
    const ct = this.ct;
    const fv = ct.insert(saddr, daddr, ports, proto, this.lruClock);
    if (fv < 0) return this.out(VERDICT_DROP, R_DROP_CT_FULL, len);
    const t = ct.t;
    t[fv + 6] = beId;
    t[fv + 7] = revNatId;
    t[fv + 8] = svcId;
    t[fv + 9] = 0;
    t[fv + 10] = ((state << 16) | (CT_COUNTED << 24)) >>> 0;
    t[fv + 12] = baddr;
    t[fv + 13] = bport;
    this.ctRefresh(fv, now);
    const rv = ct.insert(baddr, saddr, (bport | (sport << 16)) >>> 0, proto, this.lruClock);
    if (rv < 0) {
      ct.removeAt(fv);
      if (this.bes[be + 3]! > 0) this.bes[be + 3]!--;
      return this.out(VERDICT_DROP, R_DROP_CT_FULL, len);
    }
    t[rv + 6] = beId;
    t[rv + 7] = revNatId;
    t[rv + 8] = svcId;
    t[rv + 9] = saddr;
    t[rv + 10] = (sport | (state << 16) | (CT_REPLY << 24)) >>> 0;
    t[rv + 12] = daddr;
    t[rv + 13] = dport;
    this.ctRefresh(rv, now);
    this.bes[be + 3]!++;
    // 9. Translate.
    this.rewriteAddr(ip, l4, proto, 16, baddr);
    this.rewritePort(l4, proto, 2, bport);
    this.countTraffic(this.statsService, svcId, len, true);
    this.countTraffic(this.statsBackend, beId, len, true);
    this.swap(p);
    return this.out(VERDICT_TX, reason, len);
  }
}

/** The benchmark driver for the baseline, with the same interface as the WASM rig. */
export class TsRig {
  readonly dp: TsDataplane;
  private views: Uint8Array[] = [];
  private cur = 0;
  wraps = 0;
  processed = 0;
  now = 1000;

  constructor(o: TsDataplaneOptions & { localSources: Array<[number, number]> }) {
    this.dp = new TsDataplane(o);
    for (const [a, l] of o.localSources) this.dp.addLocalSource(a, l);
    const dv = new DataView(this.dp.buf.buffer);
    for (let i = 0; i < this.dp.batchMax; i++) {
      dv.setUint32(i * 16, this.dp.frameArea + i * this.dp.frameCap, true);
      dv.setUint32(i * 16 + 4, 54, true);
      dv.setUint32(i * 16 + 8, this.dp.frameCap, true);
    }
  }

  attach(pool: Uint8Array): void {
    const bb = this.dp.batchMax * this.dp.frameCap;
    this.views = [];
    for (let o = 0; o < pool.length; o += bb) this.views.push(pool.subarray(o, o + bb));
    this.cur = 0;
    this.wraps = 0;
  }

  /** One batch: copy the next 64 pristine frames in, translate them. */
  step(): void {
    this.dp.buf.set(this.views[this.cur]!, this.dp.frameArea);
    this.dp.processBatch(this.dp.batchMax, this.now);
    this.processed += this.dp.batchMax;
    if (++this.cur === this.views.length) {
      this.cur = 0;
      this.wraps++;
    }
  }

  copyStep(): void {
    this.dp.buf.set(this.views[this.cur]!, this.dp.frameArea);
    if (++this.cur === this.views.length) {
      this.cur = 0;
      this.wraps++;
    }
  }

  runPool(): void {
    this.cur = 0;
    for (let i = 0; i < this.views.length; i++) this.step();
    this.cur = 0;
    this.wraps = 0;
  }

  reset(): void {
    this.dp.reset();
    this.cur = 0;
  }

  reasons(): Map<number, number> {
    const out = new Map<number, number>();
    for (let r = 0; r < 64; r++) if (this.dp.statsReason[r * 2]! > 0) out.set(r, this.dp.statsReason[r * 2]!);
    return out;
  }

  outFrame(i: number): Uint8Array {
    const o = this.dp.frameArea + i * this.dp.frameCap;
    return this.dp.buf.slice(o, o + 54);
  }
}
