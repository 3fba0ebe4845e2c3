// The Dataplane: one instance of the WASM pipeline with its maps, sized at creation. It takes
// frames in batches and returns one verdict per frame; it knows nothing of TAP devices or of
// Kubernetes objects (src/proxy/ programs its maps, src/host/ feeds it frames).

import { instantiate, type Build, type DataplaneExports } from "./abi.js";
import { ArrayMap, HashMap, MemoryView, MapError } from "./bpfmap.js";
import * as L from "./layout.js";
import { ipv4ToU32 } from "./codec.js";
import { reasonName, verdictName, REASONS, type Verdict } from "./verdicts.js";

export interface DataplaneConfig {
  /** Masquerade source address (node IP); null = masquerading needed traffic is dropped. */
  snatAddr: string | null;
  snatPortMin: number;
  snatPortMax: number;
  tcpSynTimeout: number;
  tcpEstablishedTimeout: number;
  tcpClosingTimeout: number;
  udpTimeout: number;
  udpStreamTimeout: number;
  icmpTimeout: number;
  defaultAlgorithm: L.Algorithm;
  /** Frames sent back out of the TAP get their MACs swapped (true on a node). */
  swapMacs: boolean;
  /** Masquerade ClusterIP traffic from sources off this node (kube-proxy's cluster-CIDR rule). */
  masqueradeOffNode: boolean;
}

/** Upstream-like defaults: Linux nf_conntrack timeouts with kube-proxy's established 24 h. */
export const DEFAULT_CONFIG: DataplaneConfig = {
  snatAddr: null,
  snatPortMin: 32768,
  snatPortMax: 65535,
  tcpSynTimeout: 120,
  tcpEstablishedTimeout: 86400,
  tcpClosingTimeout: 120,
  udpTimeout: 30,
  udpStreamTimeout: 120,
  icmpTimeout: 30,
  defaultAlgorithm: "random",
  swapMacs: true,
  masqueradeOffNode: false,
};

export interface DataplaneOptions {
  build?: Build;
  /** Frames per WASM call (default 64). */
  batchMax?: number;
  /** Bytes per frame buffer (default 2048; a REPLY may grow a frame). */
  frameCap?: number;
  /**
   * Batch areas for this many TAP queues (default 1). With more than one the dataplane uses the
   * shared build: its memory is a shared WebAssembly.Memory that one worker instance per queue
   * attaches to (attachQueue), and every use of the maps from this thread takes the maps' lock.
   */
  queues?: number;
  /** Seeds hashing and random selection (default: random). */
  seed?: number;
  maxEntries?: Partial<Record<L.MapName, number>>;
  config?: Partial<DataplaneConfig>;
}

/** Size of the virtio-net header before each frame of a TAP opened with IFF_VNET_HDR. */
export const VNET_HDR_LEN = 10;
/** Descriptor input flag (in the result word before processing): a virtio-net header precedes the frame. */
export const DESC_IN_VNET = 1;

export interface FrameIn {
  data: Uint8Array;
  /** The frame's virtio-net header (VNET_HDR_LEN bytes), as a TAP with IFF_VNET_HDR gives it. */
  vnet?: Uint8Array;
}

export interface FrameResult {
  verdict: Verdict;
  reason: number;
  reasonName: string;
  /** The frame after processing (a copy); unchanged for PASS and DROP. */
  data: Uint8Array;
  /** The virtio-net header after processing, for frames that came with one. */
  vnet?: Uint8Array;
}

/** Conntrack needs its own delete: removing an entry also removes its peer and releases ports. */
export class ConntrackMap extends HashMap<typeof L.conntrack.key.fields, typeof L.conntrack.value.fields> {
  override delete(key: Partial<L.CtKey>): boolean {
    const p = this.xRef.scratchPtr();
    L.conntrack.key.encode(this.memRef.dv, p, key);
    return this.xRef.ctDelete(p) !== 0;
  }
  constructor(private readonly xRef: DataplaneExports, private readonly memRef: MemoryView) {
    super(xRef, memRef, L.conntrack);
  }
}

/**
 * The exports of a shared-build instance, for the thread that owns the control plane: every
 * call takes the maps' lock if this thread does not hold it yet, and the lock is let go once
 * the current synchronous run of JavaScript ends (process.nextTick). Map updates, reads,
 * sweeps and the DataView accesses between those calls are all synchronous, so a worker never
 * sees a half-made change, and never waits longer than one such run.
 */
function lockingExports(raw: DataplaneExports): DataplaneExports {
  let held = false;
  const release = (): void => {
    held = false;
    raw.lockLeave();
  };
  const out: Record<string, unknown> = {};
  for (const [name, v] of Object.entries(raw)) {
    if (typeof v !== "function" || name.startsWith("lock") || name === "attach") {
      out[name] = v;
      continue;
    }
    const f = v as (...a: unknown[]) => unknown;
    out[name] = (...a: unknown[]) => {
      if (!held) {
        raw.lockEnter();
        held = true;
        process.nextTick(release);
      }
      return f(...a);
    };
  }
  return out as unknown as DataplaneExports;
}

export class Dataplane {
  readonly x: DataplaneExports;
  readonly mem: MemoryView;
  readonly batchMax: number;
  readonly frameCap: number;
  private readonly descs: number;
  private readonly frames: number;
  /** LPM prefixes in the map, per table: prefix length → addresses. Keeps clear and delete per table, not per entry of every table. */
  private readonly lpmPrefixes = new Map<number, Map<number, Set<string>>>();
  private readonly hostReasons = new Map<number, { packets: bigint; bytes: bigint }>();
  private sweepCursor = 0;
  private cfg: DataplaneConfig;

  readonly maps;

  /** Queues (batch areas) laid out; > 1 means the memory is shared with worker instances. */
  readonly queues: number;

  constructor(opts: DataplaneOptions = {}) {
    this.queues = opts.queues ?? 1;
    if (!Number.isInteger(this.queues) || this.queues < 1 || this.queues > 16) throw new Error(`queues must be an integer in 1..16, got ${opts.queues}`);
    if (this.queues > 1 && opts.build && opts.build !== "shared") throw new Error(`queues > 1 needs the shared build, not ${opts.build}`);
    this.x = this.queues > 1 || opts.build === "shared" ? lockingExports(instantiate("shared")) : instantiate(opts.build ?? "release");
    for (const [name, n] of Object.entries(opts.maxEntries ?? {})) {
      const d = L.MAPS.find((m) => m.name === name);
      if (!d) throw new Error(`unknown map ${name}`);
      if (!Number.isInteger(n) || n! < 1) throw new Error(`max entries of ${name} must be a positive integer, got ${n}`);
      // A flow takes two conntrack entries; with fewer the reply entry would evict its own flow.
      if (name === "conntrack" && n! < 2) throw new Error(`max entries of conntrack must be at least 2 (one flow = 2 entries), got ${n}`);
      this.x.mapSetMaxEntries(d.id, n!);
    }
    const rc = this.x.initShared(opts.batchMax ?? 64, opts.frameCap ?? 2048, this.queues);
    if (rc !== 0) throw new Error(`dataplane init failed (${rc}): batchMax ≥ 1 and frameCap ≥ 64 are required`);
    this.mem = new MemoryView(this.x);
    this.batchMax = this.x.batchMax();
    this.frameCap = this.x.frameCap();
    this.descs = this.x.batchDescsPtr();
    this.frames = this.x.frameAreaPtr();
    const x = this.x;
    const mem = this.mem;
    this.maps = {
      config: new ArrayMap(x, mem, L.config),
      frontends: new HashMap(x, mem, L.frontends),
      addrs: new HashMap(x, mem, L.addrs),
      services: new ArrayMap(x, mem, L.services),
      backends: new ArrayMap(x, mem, L.backends),
      svcSlots: new HashMap(x, mem, L.svcSlots),
      maglev: new ArrayMap(x, mem, L.maglev),
      revNat: new ArrayMap(x, mem, L.revNat),
      conntrack: new ConntrackMap(x, mem),
      affinity: new HashMap(x, mem, L.affinity),
      snat: new HashMap(x, mem, L.snat),
      lpmV4: new HashMap(x, mem, L.lpmV4),
      lpmMasks: new ArrayMap(x, mem, L.lpmMasks),
      statsReason: new ArrayMap(x, mem, L.statsReason),
      statsService: new ArrayMap(x, mem, L.statsService),
      statsBackend: new ArrayMap(x, mem, L.statsBackend),
    } as const;
    this.cfg = { ...DEFAULT_CONFIG, ...opts.config };
    this.writeConfig();
    this.x.setSeed((opts.seed ?? Math.floor(Math.random() * 0xffffffff)) >>> 0);
  }

  get config(): Readonly<DataplaneConfig> {
    return this.cfg;
  }

  setConfig(patch: Partial<DataplaneConfig>): void {
    this.cfg = { ...this.cfg, ...patch };
    this.writeConfig();
  }

  private writeConfig(): void {
    const c = this.cfg;
    if (c.snatPortMin < 1 || c.snatPortMax > 65535 || c.snatPortMin > c.snatPortMax) {
      throw new Error(`SNAT port range ${c.snatPortMin}-${c.snatPortMax} is invalid`);
    }
    const flags = (c.swapMacs ? L.CFG.SwapMacs : 0) | (c.masqueradeOffNode ? L.CFG.MasqOffNode : 0);
    this.maps.config.patch(0, {
      snatAddrBe: c.snatAddr ?? "0.0.0.0",
      snatPortMin: c.snatPortMin,
      snatPortMax: c.snatPortMax,
      tcpSynTimeout: c.tcpSynTimeout,
      tcpEstablishedTimeout: c.tcpEstablishedTimeout,
      tcpClosingTimeout: c.tcpClosingTimeout,
      udpTimeout: c.udpTimeout,
      udpStreamTimeout: c.udpStreamTimeout,
      icmpTimeout: c.icmpTimeout,
      defaultAlgo: L.ALGORITHMS[c.defaultAlgorithm],
      flags,
    });
  }

  // ---- frames -----------------------------------------------------------------------------

  /** Runs frames through the pipeline in batches; one result per frame, in order. */
  process(frames: readonly FrameIn[], nowSec: number): FrameResult[] {
    const out: FrameResult[] = [];
    for (let i = 0; i < frames.length; i += this.batchMax) {
      out.push(...this.processChunk(frames.slice(i, i + this.batchMax), nowSec));
    }
    return out;
  }

  private processChunk(frames: readonly FrameIn[], nowSec: number): FrameResult[] {
    const dv = this.mem.dv;
    const buf = new Uint8Array(this.x.memory.buffer);
    const slots: number[] = [];
    for (let i = 0; i < frames.length; i++) {
      const f = frames[i]!.data;
      const h = frames[i]!.vnet;
      const hl = h ? VNET_HDR_LEN : 0;
      if (h && h.length !== VNET_HDR_LEN) throw new RangeError(`a virtio-net header is ${VNET_HDR_LEN} bytes, got ${h.length}`);
      const d = this.descs + slots.length * 16;
      if (f.length > this.frameCap - hl) continue;
      const slot = this.frames + slots.length * this.frameCap;
      if (h) buf.set(h, slot);
      buf.set(f, slot + hl);
      dv.setUint32(d, slot + hl, true);
      dv.setUint32(d + 4, f.length, true);
      dv.setUint32(d + 8, this.frameCap - hl, true);
      dv.setUint32(d + 12, h ? DESC_IN_VNET : 0, true);
      slots.push(i);
    }
    this.x.processBatch(this.descs, slots.length, nowSec >>> 0);
    const results: FrameResult[] = frames.map((f) => {
      // Frames larger than a frame buffer never reach the module: counted here.
      this.countHost(REASONS.R_DROP_FRAME_TOO_BIG, f.data.length);
      return { verdict: "DROP", reason: REASONS.R_DROP_FRAME_TOO_BIG, reasonName: reasonName(REASONS.R_DROP_FRAME_TOO_BIG), data: f.data };
    });
    const dv2 = this.mem.dv;
    const buf2 = new Uint8Array(this.x.memory.buffer);
    slots.forEach((frameIdx, k) => {
      const d = this.descs + k * 16;
      const off = dv2.getUint32(d, true);
      const len = dv2.getUint32(d + 4, true);
      const r = dv2.getUint32(d + 12, true);
      const verdict = verdictName(r & 0xff);
      const reason = r >>> 8;
      const data = verdict === "TX" || verdict === "REPLY" ? buf2.slice(off, off + len) : frames[frameIdx]!.data;
      results[frameIdx] = { verdict, reason, reasonName: reasonName(reason), data };
      if (frames[frameIdx]!.vnet) results[frameIdx]!.vnet = buf2.slice(off - VNET_HDR_LEN, off);
    });
    // Undo the provisional host counts for frames that did reach the module.
    for (const i of slots) this.countHost(REASONS.R_DROP_FRAME_TOO_BIG, -frames[i]!.data.length, -1n);
    return results;
  }

  private countHost(reason: number, bytes: number, packets = 1n): void {
    const c = this.hostReasons.get(reason) ?? { packets: 0n, bytes: 0n };
    c.packets += packets;
    c.bytes += BigInt(bytes);
    this.hostReasons.set(reason, c);
  }

  /** Packets and bytes per reason (module counters plus frames the host refused). */
  reasonStats(): Array<{ code: number; name: string; packets: bigint; bytes: bigint }> {
    const out = [];
    for (const code of Object.values(REASONS)) {
      const s = this.maps.statsReason.get(code);
      const h = this.hostReasons.get(code);
      const packets = s.packets + (h?.packets ?? 0n);
      const bytes = s.bytes + (h?.bytes ?? 0n);
      if (packets > 0n) out.push({ code, name: reasonName(code), packets, bytes });
    }
    return out;
  }

  // ---- conntrack ----------------------------------------------------------------------------

  /** Expires old conntrack entries: examines `budget` slots from where the last call stopped. */
  sweep(nowSec: number, budget = 65536): void {
    this.sweepCursor = this.x.ctSweep(nowSec >>> 0, this.sweepCursor, budget);
  }

  /** A full expiry pass over the whole table. */
  sweepAll(nowSec: number): void {
    let c = this.x.ctSweep(nowSec >>> 0, 0, 0xffffffff);
    while (c !== 0) c = this.x.ctSweep(nowSec >>> 0, c, 0xffffffff);
    this.sweepCursor = 0;
  }

  /** Removes flows to a backend for the given protocols; returns how many. */
  flushBackend(backendId: number, protocols: { tcp?: boolean; udp?: boolean; sctp?: boolean }): number {
    const mask = (protocols.tcp ? 1 : 0) | (protocols.udp ? 2 : 0) | (protocols.sctp ? 4 : 0);
    return this.x.ctFlushBackend(backendId, mask);
  }

  // ---- LPM ------------------------------------------------------------------------------------

  /** Adds CIDR to LPM table `table` (0 = this node's sources, svcId = source ranges). */
  lpmAdd(table: number, cidr: string, value = 1): void {
    const { addr, len } = parseCidr(cidr);
    const key = { tableId: table, prefixLen: len, addrBe: addr };
    const existed = this.maps.lpmV4.has(key);
    this.maps.lpmV4.update(key, { value });
    if (existed) return;
    let byLen = this.lpmPrefixes.get(table);
    if (!byLen) this.lpmPrefixes.set(table, (byLen = new Map()));
    let addrs = byLen.get(len);
    if (!addrs) byLen.set(len, (addrs = new Set()));
    addrs.add(addr);
    const m = this.maps.lpmMasks.get(table).lengths;
    this.maps.lpmMasks.set(table, { lengths: m | (1n << BigInt(len)) });
  }

  lpmDelete(table: number, cidr: string): boolean {
    const { addr, len } = parseCidr(cidr);
    if (!this.maps.lpmV4.delete({ tableId: table, prefixLen: len, addrBe: addr })) return false;
    const byLen = this.lpmPrefixes.get(table);
    const addrs = byLen?.get(len);
    addrs?.delete(addr);
    if (!addrs || addrs.size === 0) {
      byLen?.delete(len);
      if (byLen?.size === 0) this.lpmPrefixes.delete(table);
      const m = this.maps.lpmMasks.get(table).lengths;
      this.maps.lpmMasks.set(table, { lengths: m & ~(1n << BigInt(len)) });
    }
    return true;
  }

  lpmClear(table: number): void {
    for (const [len, addrs] of this.lpmPrefixes.get(table) ?? []) {
      for (const addr of addrs) this.maps.lpmV4.delete({ tableId: table, prefixLen: len, addrBe: addr });
    }
    this.lpmPrefixes.delete(table);
    this.maps.lpmMasks.set(table, { lengths: 0n });
  }

  /** True when `addr` is inside some prefix of LPM table `table`. */
  lpmMatch(table: number, addr: string): boolean {
    const raw = ipv4ToU32(addr);
    const rawLe = ((raw & 0xff) << 24 | (raw & 0xff00) << 8 | (raw >>> 8) & 0xff00 | raw >>> 24) >>> 0;
    return this.x.lpmLookup(table, rawLe) !== 0;
  }
}

/** Parses "a.b.c.d/len" (a bare address means /32) and masks the address. */
export function parseCidr(cidr: string): { addr: string; len: number } {
  const [a, l] = cidr.trim().split("/");
  const len = l === undefined ? 32 : Number(l);
  if (!Number.isInteger(len) || len < 0 || len > 32) throw new Error(`invalid CIDR ${JSON.stringify(cidr)}`);
  const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  const v = (ipv4ToU32(a!) & mask) >>> 0;
  return { addr: `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`, len };
}

export { MapError };
