// Direct writers for the maps the programmer rewrites on every sync: array elements are
// written in place at base + index × size, hash keys and values are encoded into the scratch
// area field by field — no object per entry, no generic codec, addresses as host-order u32
// (no dotted strings). A full sync of 10k services writes some 250k entries; the generic
// handles (bpfmap.ts) build and parse an object per entry, which showed as a third of it.
// Offsets come from the layout declarations (layout.ts), which a test checks against the
// module's own constants; the generic handles and these writers see the same bytes.

import type { Dataplane } from "./dataplane.js";
import type { FieldDecl, Struct } from "./codec.js";
import { MapError, updateError } from "./bpfmap.js";
import * as L from "./layout.js";
import { exportedConst } from "./abi.js";

function off(s: Struct<readonly FieldDecl[]>, name: string): number {
  const f = s.fields.find((x) => x.name === name);
  if (!f) throw new Error(`no field ${name}`);
  return f.offset;
}

const BE = {
  addr: off(L.backends.value, "addrBe"), port: off(L.backends.value, "portBe"), proto: off(L.backends.value, "proto"),
  state: off(L.backends.value, "state"), flags: off(L.backends.value, "flags"), weight: off(L.backends.value, "weight"),
  conns: off(L.backends.value, "activeConns"), size: L.backends.value.size,
};
const SV = {
  flags: off(L.services.value, "flags"), algo: off(L.services.value, "algo"), aff: off(L.services.value, "affinityTimeoutSec"),
  rl: off(L.services.value, "readyLocal"), rr: off(L.services.value, "readyRemote"), tl: off(L.services.value, "terminatingLocal"),
  tr: off(L.services.value, "terminatingRemote"), mcOff: off(L.services.value, "maglevClusterOff"), mcSize: off(L.services.value, "maglevClusterSize"),
  mlOff: off(L.services.value, "maglevLocalOff"), mlSize: off(L.services.value, "maglevLocalSize"), rrCursor: off(L.services.value, "rrCursor"),
  size: L.services.value.size,
};
const RN = { addr: off(L.revNat.value, "addrBe"), port: off(L.revNat.value, "portBe"), size: L.revNat.value.size };
const SS = {
  svc: off(L.svcSlots.key, "svcId"), slot: off(L.svcSlots.key, "slot"), be: off(L.svcSlots.value, "backendId"),
  ksize: L.svcSlots.key.size, vsize: L.svcSlots.value.size, stride: L.svcSlots.key.size + L.svcSlots.value.size,
};
const FEK = { addr: off(L.frontends.key, "addrBe"), port: off(L.frontends.key, "portBe"), proto: off(L.frontends.key, "proto"), size: L.frontends.key.size };
const FEV = { svc: off(L.frontends.value, "svcId"), rev: off(L.frontends.value, "revNatId"), kind: off(L.frontends.value, "kind"), size: L.frontends.value.size };
const AD = { addr: off(L.addrs.key, "addrBe"), flags: off(L.addrs.value, "flags") };
const MG = { be: off(L.maglev.value, "backendId"), size: L.maglev.value.size };

/** Zeroes `n` bytes (a multiple of 4) at p. */
function zero(dv: DataView, p: number, n: number): void {
  for (let i = 0; i < n; i += 4) dv.setUint32(p + i, 0, true);
}

/** An array map's place in memory (fixed once the dataplane is made). */
interface ArrayPlace {
  id: number;
  name: string;
  base: number;
  max: number;
  size: number;
}

export class MapWriter {
  private readonly key: number;
  private readonly val: number;
  /** The maps live in shared memory, behind the maps' lock (Dataplane with queues). */
  private readonly shared: boolean;
  private ab: ArrayBufferLike;
  private view: DataView;
  private readonly backends: ArrayPlace;
  private readonly services: ArrayPlace;
  private readonly revNat: ArrayPlace;
  private readonly maglev: ArrayPlace;
  private readonly statsBackend: ArrayPlace;
  private readonly statsService: ArrayPlace;
  /** svc_slots updates staged for hashUpdateBatch: where, how many fit, how many are waiting. */
  private readonly stage: number;
  private readonly stageCap: number;
  private staged = 0;

  constructor(private readonly dp: Dataplane) {
    const x = dp.x;
    this.key = x.scratchPtr();
    this.val = this.key + 128;
    this.ab = x.memory.buffer;
    this.view = new DataView(this.ab);
    this.shared = typeof SharedArrayBuffer !== "undefined" && this.ab instanceof SharedArrayBuffer;
    const place = (d: { id: number; name: string; value: { size: number } }): ArrayPlace =>
      ({ id: d.id, name: d.name, base: x.mapBase(d.id), max: x.mapMaxEntries(d.id), size: d.value.size });
    this.backends = place(L.backends);
    this.services = place(L.services);
    this.revNat = place(L.revNat);
    this.maglev = place(L.maglev);
    this.statsBackend = place(L.statsBackend);
    this.statsService = place(L.statsService);
    this.stage = x.hashBatchPtr();
    this.stageCap = Math.floor(exportedConst(x, "HASH_BATCH_BYTES")! / SS.stride);
  }

  /** The memory as a DataView (a new one only if the memory was replaced: it is laid out once). */
  private get dv(): DataView {
    if (this.ab.byteLength === 0) {
      this.ab = this.dp.x.memory.buffer;
      this.view = new DataView(this.ab);
    }
    return this.view;
  }

  /**
   * Element `index` of an array map. With shared memory any call into the module takes the
   * maps' lock for the rest of this synchronous run (see Dataplane): make one before writing.
   */
  private elem(m: ArrayPlace, index: number): number {
    if (!(index >= 0 && index < m.max)) throw new MapError(m.name, -7, `${m.name}: index ${index} is outside 0..${m.max - 1} (max entries ${m.max})`);
    if (this.shared) this.dp.x.batchMax();
    return m.base + index * m.size;
  }

  // ---- array maps ---------------------------------------------------------------------------

  /**
   * Writes backend `id`; its activeConns (written by the dataplane) is kept when the entry
   * already holds this address and port, else zeroed.
   */
  setBackend(id: number, addr: number, port: number, proto: number, state: number, flags: number, weight: number): void {
    const dv = this.dv;
    const p = this.elem(this.backends, id);
    const same = dv.getUint32(p + BE.addr, false) === addr && dv.getUint16(p + BE.port, false) === port;
    const conns = same ? dv.getUint32(p + BE.conns, true) : 0;
    zero(dv, p, BE.size);
    dv.setUint32(p + BE.addr, addr, false);
    dv.setUint16(p + BE.port, port, false);
    dv.setUint8(p + BE.proto, proto);
    dv.setUint8(p + BE.state, state);
    dv.setUint8(p + BE.flags, flags);
    dv.setUint16(p + BE.weight, weight, true);
    dv.setUint32(p + BE.conns, conns, true);
  }

  /**
   * Flows of backend `id` that a stale-flow cleanup would have to remove: its activeConns when
   * it is a UDP or SCTP backend (the dataplane counts every flow it makes there until the flow
   * is removed), 0 for TCP ones (the cleanup leaves TCP flows to re-selection).
   */
  datagramFlows(id: number): number {
    const dv = this.dv;
    const p = this.elem(this.backends, id);
    const proto = dv.getUint8(p + BE.proto);
    return proto === 17 || proto === 132 ? dv.getUint32(p + BE.conns, true) : 0;
  }

  clearBackend(id: number): void {
    zero(this.dv, this.elem(this.backends, id), BE.size);
  }

  clearStatsBackend(id: number): void {
    zero(this.dv, this.elem(this.statsBackend, id), L.statsBackend.value.size);
  }

  clearStatsService(id: number): void {
    zero(this.dv, this.elem(this.statsService, id), L.statsService.value.size);
  }

  /** Writes service `id`, keeping the fields the dataplane owns (rrCursor). */
  patchService(
    id: number, flags: number, algo: number, affinityTimeoutSec: number,
    readyLocal: number, readyRemote: number, terminatingLocal: number, terminatingRemote: number,
    maglevClusterOff: number, maglevClusterSize: number, maglevLocalOff: number, maglevLocalSize: number,
  ): void {
    const dv = this.dv;
    const p = this.elem(this.services, id);
    const rr = dv.getUint32(p + SV.rrCursor, true);
    zero(dv, p, SV.size);
    dv.setUint8(p + SV.flags, flags);
    dv.setUint8(p + SV.algo, algo);
    dv.setUint32(p + SV.aff, affinityTimeoutSec >>> 0, true);
    dv.setUint16(p + SV.rl, readyLocal, true);
    dv.setUint16(p + SV.rr, readyRemote, true);
    dv.setUint16(p + SV.tl, terminatingLocal, true);
    dv.setUint16(p + SV.tr, terminatingRemote, true);
    dv.setUint32(p + SV.rrCursor, rr, true);
    dv.setUint32(p + SV.mcOff, maglevClusterOff, true);
    dv.setUint32(p + SV.mcSize, maglevClusterSize, true);
    dv.setUint32(p + SV.mlOff, maglevLocalOff, true);
    dv.setUint32(p + SV.mlSize, maglevLocalSize, true);
  }

  clearService(id: number): void {
    zero(this.dv, this.elem(this.services, id), SV.size);
  }

  setRevNat(id: number, addr: number, port: number): void {
    const dv = this.dv;
    const p = this.elem(this.revNat, id);
    zero(dv, p, RN.size);
    dv.setUint32(p + RN.addr, addr, false);
    dv.setUint16(p + RN.port, port, false);
  }

  clearRevNat(id: number): void {
    zero(this.dv, this.elem(this.revNat, id), RN.size);
  }

  setMaglev(index: number, backendId: number): void {
    this.dv.setUint32(this.elem(this.maglev, index) + MG.be, backendId, true);
  }

  // ---- hash maps ----------------------------------------------------------------------------

  private update(id: number, name: string): void {
    const r = this.dp.x.hashUpdate(id, this.key, this.val, 0);
    if (r !== 0) throw updateError(name, this.dp.x.mapMaxEntries(id), r);
  }

  /**
   * Stages svc_slots[svcId, slot] = backendId; staged entries reach the map in batches (see
   * assembly/mapbatch.ts), at the latest at flush(), which the caller runs before the maps
   * are read. Any other svc_slots operation flushes first, so the order is kept.
   */
  setSlot(svcId: number, slot: number, backendId: number): void {
    if (this.staged === this.stageCap) this.flush();
    const dv = this.dv;
    const p = this.stage + this.staged * SS.stride;
    dv.setUint32(p + SS.svc, svcId, true);
    dv.setUint32(p + SS.slot, slot, true);
    dv.setUint32(p + SS.ksize + SS.be, backendId, true);
    this.staged++;
  }

  /** Applies the staged svc_slots entries. */
  flush(): void {
    const n = this.staged;
    if (n === 0) return;
    this.staged = 0;
    const done = this.dp.x.hashUpdateBatch(L.svcSlots.id, n, SS.ksize, SS.vsize);
    if (done !== n) {
      const r = this.dp.x.hashBatchError();
      const e = updateError(L.svcSlots.name, this.dp.x.mapMaxEntries(L.svcSlots.id), r);
      throw new MapError(e.map, e.code, `${e.message} (${n - done} of a batch of ${n} not applied)`);
    }
  }

  deleteSlot(svcId: number, slot: number): boolean {
    this.flush();
    const dv = this.dv;
    dv.setUint32(this.key + SS.svc, svcId, true);
    dv.setUint32(this.key + SS.slot, slot, true);
    return this.dp.x.hashDelete(L.svcSlots.id, this.key) !== 0;
  }

  private frontendKey(addr: number, port: number, proto: number): void {
    const dv = this.dv;
    zero(dv, this.key, FEK.size);
    dv.setUint32(this.key + FEK.addr, addr, false);
    dv.setUint16(this.key + FEK.port, port, false);
    dv.setUint8(this.key + FEK.proto, proto);
  }

  setFrontend(addr: number, port: number, proto: number, svcId: number, revNatId: number, kind: number): void {
    this.frontendKey(addr, port, proto);
    const dv = this.dv;
    zero(dv, this.val, FEV.size);
    dv.setUint32(this.val + FEV.svc, svcId, true);
    dv.setUint32(this.val + FEV.rev, revNatId, true);
    dv.setUint8(this.val + FEV.kind, kind);
    this.update(L.frontends.id, L.frontends.name);
  }

  deleteFrontend(addr: number, port: number, proto: number): boolean {
    this.frontendKey(addr, port, proto);
    return this.dp.x.hashDelete(L.frontends.id, this.key) !== 0;
  }

  setAddr(addr: number, flags: number): void {
    const dv = this.dv;
    dv.setUint32(this.key + AD.addr, addr, false);
    dv.setUint32(this.val + AD.flags, flags, true);
    this.update(L.addrs.id, L.addrs.name);
  }

  deleteAddr(addr: number): boolean {
    this.dv.setUint32(this.key + AD.addr, addr, false);
    return this.dp.x.hashDelete(L.addrs.id, this.key) !== 0;
  }

  // ---- conntrack ----------------------------------------------------------------------------

  /** Conntrack slots (one flush pass examines this many). */
  get conntrackSlots(): number {
    return this.dp.x.mapCapacity(L.conntrack.id);
  }

  /**
   * One bounded step of the stale-flow cleanup: removes forward flows of the protocols in
   * `protoMask` (1 TCP, 2 UDP, 4 SCTP) whose backend is gone, among `budget` slots from
   * `cursor`. Returns the next cursor (0: the pass reached the end) and the flows removed.
   */
  flushStaleStep(protoMask: number, cursor: number, budget: number): { cursor: number; removed: number } {
    const next = this.dp.x.ctFlushStale(protoMask, cursor >>> 0, Math.min(budget, 0xffffffff) >>> 0);
    return { cursor: next, removed: this.dp.x.ctFlushStaleRemoved() };
  }
}
