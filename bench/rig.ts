// The WASM side of the benchmarks: a Dataplane (release build) programmed through the real
// Programmer, driven directly through its exports — descriptors written once, pristine
// frames copied into the frame area with one Uint8Array.set per batch of 64, then one
// processBatch call. Nothing is allocated per batch (the per-batch subarray views are built
// when a pool is attached).

import { Dataplane } from "../src/maps/dataplane.js";
import { Programmer, type ServicePortModel } from "../src/proxy/programmer.js";
import type { Algorithm, MapName } from "../src/maps/layout.js";
import { BATCH, BATCH_BYTES, FRAME_LEN, STRIDE, ip4s } from "./frames.js";

export const NODE = "node-a";
export const NODE_IP = "192.0.2.10";
export const POD_CIDR = "10.244.0.0/24";
export const NOW = 1000; // fixed clock: nothing expires during a run

export const R_TX_NEW_FLOW = 16;
export const R_TX_ESTABLISHED = 17;

/** The interface run.ts drives (the TypeScript baseline's TsRig has the same shape). */
export interface Rig {
  attach(pool: Uint8Array): void;
  step(): void;
  copyStep(): void;
  runPool(): void;
  reset(): void;
  reasons(): Map<number, number>;
  outFrame(i: number): Uint8Array;
  processed: number;
  wraps: number;
}

/** Splits a pool into one view per batch (built once, so step() allocates nothing). */
export function batchViews(pool: Uint8Array): Uint8Array[] {
  const views: Uint8Array[] = [];
  for (let o = 0; o < pool.length; o += BATCH_BYTES) views.push(pool.subarray(o, o + BATCH_BYTES));
  return views;
}

/** Service i: VIP 10.96.0.0 + i, port 80/TCP, `nBackends` remote endpoints on port 8080. */
export function serviceModel(i: number, nBackends: number, backendBase: number, algorithm?: Algorithm): ServicePortModel {
  const endpoints = [];
  for (let b = 0; b < nBackends; b++) endpoints.push({ ip: ip4s(backendBase + b), port: 8080, nodeName: "node-b" });
  return {
    key: `bench/svc-${i}:http/TCP`,
    protocol: "TCP",
    port: 80,
    clusterIPs: [ip4s(vip(i))],
    externalIPs: [],
    loadBalancerIPs: [],
    affinityTimeoutSeconds: null,
    externalTrafficPolicyLocal: false,
    internalTrafficPolicyLocal: false,
    loadBalancerSourceRanges: [],
    algorithm,
    endpoints,
  };
}

/** VIP of service i (10.96.0.0/12 service CIDR). */
export function vip(i: number): number {
  return (((10 << 24) | (96 << 16)) >>> 0) + 1 + i;
}

/** First backend address of service i when each service has `per` backends: 10.128.0.0 + i·per. */
export function backendBase(i: number, per: number): number {
  return (((10 << 24) | (128 << 16)) >>> 0) + i * per + 1;
}

export class WasmRig implements Rig {
  readonly dp: Dataplane;
  readonly prog: Programmer;
  private readonly mem: Uint8Array;
  private readonly area: number;
  private readonly descs: number;
  private readonly conntrackId: number;
  private readonly snatId: number;
  private backendIds: number[] = [];
  private views: Uint8Array[] = [];
  private cur = 0;
  wraps = 0;
  processed = 0;

  constructor(maxEntries: Partial<Record<MapName, number>>, seed = 42) {
    this.dp = new Dataplane({ build: "release", seed, batchMax: BATCH, frameCap: STRIDE, maxEntries, config: { snatAddr: NODE_IP } });
    if (this.dp.frameCap !== STRIDE || this.dp.batchMax !== BATCH) throw new Error("unexpected frame area geometry");
    this.prog = new Programmer(this.dp, { nodeName: NODE });
    this.prog.setNodeAddresses([NODE_IP]);
    this.prog.setLocalSources([POD_CIDR, `${NODE_IP}/32`]);
    const x = this.dp.x;
    this.mem = new Uint8Array(x.memory.buffer); // memory never grows after init
    this.area = x.frameAreaPtr();
    this.descs = x.batchDescsPtr();
    this.conntrackId = this.dp.maps.conntrack.id;
    this.snatId = this.dp.maps.snat.id;
    const dv = new DataView(x.memory.buffer);
    for (let i = 0; i < BATCH; i++) {
      const d = this.descs + i * 16;
      dv.setUint32(d, this.area + i * STRIDE, true);
      dv.setUint32(d + 4, FRAME_LEN, true);
      dv.setUint32(d + 8, STRIDE, true);
      dv.setUint32(d + 12, 0, true);
    }
  }

  /** Programs service ports through the Programmer (as the proxy would). */
  programAll(models: ServicePortModel[]): void {
    for (const m of models) this.prog.upsert(m);
    const ids = new Set<number>(this.backendIds);
    for (const m of models) for (const e of m.endpoints) ids.add(this.prog.backendId(e.ip, e.port, m.protocol)!);
    this.backendIds = [...ids];
  }

  attach(pool: Uint8Array): void {
    this.views = batchViews(pool);
    this.cur = 0;
    this.wraps = 0;
  }

  /** One batch: copy the next 64 pristine frames in, translate them. */
  step(): void {
    this.mem.set(this.views[this.cur]!, this.area);
    this.dp.x.processBatch(this.descs, BATCH, NOW);
    this.processed += BATCH;
    if (++this.cur === this.views.length) {
      this.cur = 0;
      this.wraps++;
    }
  }

  /** The copy alone (to measure and subtract it). */
  copyStep(): void {
    this.mem.set(this.views[this.cur]!, this.area);
    if (++this.cur === this.views.length) {
      this.cur = 0;
      this.wraps++;
    }
  }

  /** Every batch of the attached pool once. */
  runPool(): void {
    this.cur = 0;
    for (let i = 0; i < this.views.length; i++) this.step();
    this.cur = 0;
    this.wraps = 0;
  }

  /**
   * Between rounds of the new-flow benchmarks: empties conntrack and snat (hashClear) and
   * zeroes every backend's activeConns, then rewinds the pool.
   */
  reset(): void {
    this.dp.x.hashClear(this.conntrackId);
    this.dp.x.hashClear(this.snatId);
    const dv = this.dp.mem.dv;
    for (const id of this.backendIds) dv.setUint32(this.dp.x.arrayPtr(this.dp.maps.backends.id, id) + 12, 0, true);
    this.cur = 0;
  }

  /** Packets per reason so far (module counters). */
  reasons(): Map<number, number> {
    const out = new Map<number, number>();
    for (let r = 0; r < 64; r++) {
      const p = Number(this.dp.maps.statsReason.get(r).packets);
      if (p > 0) out.set(r, p);
    }
    return out;
  }

  /** One output frame of the last batch (for cross-checks). */
  outFrame(i: number): Uint8Array {
    return this.mem.slice(this.area + i * STRIDE, this.area + i * STRIDE + FRAME_LEN);
  }

  /** Result word of descriptor i of the last batch. */
  result(i: number): number {
    return this.dp.mem.dv.getUint32(this.descs + i * 16 + 12, true);
  }
}
