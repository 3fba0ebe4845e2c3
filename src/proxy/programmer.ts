// Programs the dataplane's maps from service-port models: allocates service, backend and
// reverse-NAT ids (never reusing an id before the free list has aged), writes frontends,
// backend slot groups, Maglev tables (changed slots only), source ranges and node addresses,
// and applies only the difference from what is already programmed. The desired state comes
// from Kubernetes objects (model.ts); a model may carry its EndpointSlices instead of
// EndpointInfo objects, which model.ts reads straight into number columns here.
//
// Built for a full sync of 10k services × 10 endpoints: no object per endpoint (columns,
// slot order on numbers, a typed-array table of backend ids), maps written in place
// (src/maps/direct.ts), change detection field by field. A backend that leaves is cleared at
// once; removing its UDP/SCTP flows from conntrack is one scan for any number of departed
// backends, run before returning or, with deferFlush, in bounded steps (flushStale) after.

import type { Dataplane } from "../maps/dataplane.js";
import { ADDR, ALGORITHMS, BE_STATE, BE_FLAG, FE, SVC, type Algorithm } from "../maps/layout.js";
import { MapWriter } from "../maps/direct.js";
import { ipv4ToU32, ipv4ToU32OrNeg } from "../maps/codec.js";
import { EndpointColumns, slotOrder, type EndpointInfo, type SlotOrder } from "./endpoints.js";
import { endpointSource, readEndpoints, sameSource } from "./model.js";
import { BackendIds, portProto } from "./backend-ids.js";
import { buildMaglevTable, maglevTableSize } from "./maglev.js";

export type Protocol = "TCP" | "UDP" | "SCTP";
export const PROTO_NUM: Record<Protocol, number> = { TCP: 6, UDP: 17, SCTP: 132 };

/** One Kubernetes service port as the proxy sees it. */
export interface ServicePortModel {
  /** Stable identity, e.g. "default/my-service:http/TCP". */
  key: string;
  protocol: Protocol;
  port: number;
  clusterIPs: string[];
  nodePort?: number;
  externalIPs: string[];
  loadBalancerIPs: string[];
  /** ClientIP affinity timeout, or null for sessionAffinity None. */
  affinityTimeoutSeconds: number | null;
  externalTrafficPolicyLocal: boolean;
  internalTrafficPolicyLocal: boolean;
  loadBalancerSourceRanges: string[];
  /** Backend selection; undefined = the node-wide default. */
  algorithm?: Algorithm;
  endpoints: EndpointInfo[];
}

interface Programmed {
  model: ServicePortModel;
  svcId: number;
  /** Frontends (a few: cluster IPs, external IPs, load-balancer IPs, the NodePort). */
  frontends: FrontendState[];
  /** Per slot: the backend id. */
  slotIds: number[];
  /** svc_slots entries that may exist (slots 0 .. slotsHigh-1). */
  slotsHigh: number;
  /** A previous upsert failed part-way: the maps may differ from beKeys/slotIds. */
  dirty: boolean;
  /** LPM table svcId may hold source ranges. */
  hasRanges: boolean;
  /** Maglev tables in the arena (cluster and local ready sets) and the backend ids last written there. */
  mgCluster: ArenaRange | null;
  mgLocal: ArenaRange | null;
  mgClusterTable: Int32Array | null;
  mgLocalTable: Int32Array | null;
}

interface FrontendState {
  addr: number;
  port: number;
  kind: number;
  revNatId: number;
  /** A service address (ClusterIP): counted in the addrs map. */
  vip: boolean;
}

interface ArenaRange {
  off: number;
  size: number;
}

/** Ids 1..max; a released id is reused only after every never-used id has been handed out. */
class IdPool {
  private next = 1;
  private readonly free: number[] = [];
  constructor(private readonly what: string, private readonly max: number) {}
  take(): number {
    if (this.next < this.max) return this.next++;
    const id = this.free.shift();
    if (id === undefined) throw new Error(`no free ${this.what} id: the map holds at most ${this.max - 1} (raise its max entries)`);
    return id;
  }
  give(id: number): void {
    this.free.push(id);
  }
}

/** First-fit allocator over the Maglev arena. */
class Arena {
  private readonly free: ArenaRange[];
  constructor(size: number) {
    this.free = [{ off: 0, size }];
  }
  take(size: number): ArenaRange {
    const i = this.free.findIndex((r) => r.size >= size);
    if (i < 0) throw new Error(`Maglev arena full: no room for a table of ${size} entries (raise maglev max entries)`);
    const r = this.free[i]!;
    const out = { off: r.off, size };
    if (r.size === size) this.free.splice(i, 1);
    else this.free[i] = { off: r.off + size, size: r.size - size };
    return out;
  }
  give(r: ArenaRange): void {
    this.free.push({ ...r });
    this.free.sort((a, b) => a.off - b.off);
    for (let i = 0; i + 1 < this.free.length; ) {
      const a = this.free[i]!;
      const b = this.free[i + 1]!;
      if (a.off + a.size === b.off) {
        a.size += b.size;
        this.free.splice(i + 1, 1);
      } else i++;
    }
  }
}

export interface ProgrammerOptions {
  /** This node's name: endpoints with this nodeName are local. */
  nodeName: string;
}

export interface SyncResult {
  added: number;
  updated: number;
  removed: number;
  unchanged: number;
  /** Flows removed because their backend went away (UDP/SCTP stale entries). */
  flushedFlows: number;
}

/** The name a backend has in Maglev tables (and had as its key). */
function backendName(ip: string, port: number, proto: Protocol): string {
  return `${ip}:${port}/${proto}`;
}

function isIPv4(a: string): boolean {
  return ipv4ToU32OrNeg(a) >= 0;
}

/** Flows the stale-flow cleanup removes: datagram protocols (bit 1 UDP, bit 2 SCTP). */
const FLUSH_PROTOS = 2 | 4;

/** Equality of two values as JSON would see them (undefined and missing alike), without serialising. */
function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameJson(a[i] ?? null, b[i] ?? null)) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  let na = 0;
  for (const k in ao) {
    if (ao[k] === undefined) continue;
    na++;
    if (!sameJson(ao[k], bo[k])) return false;
  }
  let nb = 0;
  for (const k in bo) if (bo[k] !== undefined) nb++;
  return na === nb;
}

/** Every field of a model (a missing one fails to compile: sameModel must see them all). */
const MODEL_FIELDS = [
  "key", "protocol", "port", "clusterIPs", "nodePort", "externalIPs", "loadBalancerIPs", "affinityTimeoutSeconds",
  "externalTrafficPolicyLocal", "internalTrafficPolicyLocal", "loadBalancerSourceRanges", "algorithm",
] as const satisfies ReadonlyArray<Exclude<keyof ServicePortModel, "endpoints">>;
type Unlisted = Exclude<keyof ServicePortModel, (typeof MODEL_FIELDS)[number] | "endpoints">;
const allListed: [Unlisted] extends [never] ? true : never = true;
void allListed;

/**
 * True when two models program the same maps (what JSON.stringify equality said before,
 * without serialising 100k endpoints): field by field, and endpoints by their source objects'
 * identity when both come from the same EndpointSlices or Endpoints.
 */
export function sameModel(a: ServicePortModel, b: ServicePortModel): boolean {
  if (a === b) return true;
  for (const f of MODEL_FIELDS) if (!sameJson(a[f] ?? null, b[f] ?? null)) return false;
  const sa = endpointSource(a);
  const sb = endpointSource(b);
  if (sa && sb && sameSource(sa, sb)) return true;
  return sameJson(a.endpoints, b.endpoints);
}

export interface WriteOptions {
  /**
   * Leave the cleanup of flows whose backend left to flushStale() (the proxier runs it after
   * the maps are in, in bounded steps) instead of scanning conntrack before returning.
   */
  deferFlush?: boolean;
}

export class Programmer {
  private readonly services = new Map<string, Programmed>();
  /** (address, port, protocol) → backend id, with references per id. */
  private readonly backendTable: BackendIds;
  private readonly addrState = new Map<number, { vipRefs: number; nodePort: boolean }>();
  private readonly svcIds: IdPool;
  private readonly backendIds: IdPool;
  private readonly revNatIds: IdPool;
  private readonly arena: Arena;
  private readonly w: MapWriter;
  private readonly cols = new EndpointColumns();
  /** Frontends wanted by the port being programmed (reused). */
  private readonly fw = { n: 0, addr: [] as number[], port: [] as number[], kind: [] as number[], vip: [] as boolean[] };
  private nodeAddrs: string[] = [];
  /** Stale-flow cleanup: slots left to examine (a full circle from the cursor after each departure), and where. */
  private flushLeft = 0;
  private flushCursor = 0;
  /** Backend ids of departed backends whose flows the cleanup has yet to remove. */
  private readonly flushHeld: number[] = [];

  constructor(private readonly dp: Dataplane, private readonly opts: ProgrammerOptions) {
    this.svcIds = new IdPool("service", dp.maps.services.maxEntries);
    this.backendIds = new IdPool("backend", dp.maps.backends.maxEntries);
    this.revNatIds = new IdPool("reverse-NAT", dp.maps.revNat.maxEntries);
    this.arena = new Arena(dp.maps.maglev.maxEntries);
    this.backendTable = new BackendIds(dp.maps.backends.maxEntries);
    this.w = new MapWriter(dp);
  }

  /** svcId of a programmed service port (for stats), or undefined. */
  serviceId(key: string): number | undefined {
    return this.services.get(key)?.svcId;
  }

  backendId(ip: string, port: number, proto: Protocol): number | undefined {
    const a = ipv4ToU32OrNeg(ip);
    if (a < 0) return undefined;
    return this.backendTable.get(a, portProto(port, PROTO_NUM[proto])) || undefined;
  }

  /** Addresses on which NodePorts are served (nodeport-addresses already applied). */
  setNodeAddresses(addrs: string[]): void {
    for (const a of this.nodeAddrs) this.setAddr(ipv4ToU32(a), 0, false);
    this.nodeAddrs = addrs.filter(isIPv4);
    for (const a of this.nodeAddrs) this.setAddr(ipv4ToU32(a), 0, true);
  }

  /** Sources that count as this node's own (pod CIDR, node addresses): LPM table 0. */
  setLocalSources(cidrs: string[]): void {
    this.dp.lpmClear(0);
    for (const c of cidrs) if (isIPv4(c.split("/")[0]!)) this.dp.lpmAdd(0, c);
  }

  /**
   * Makes the maps hold exactly `desired`, touching only what changed; then removes the
   * datagram flows of backends that left (unless deferred).
   */
  sync(desired: Iterable<ServicePortModel>, o: WriteOptions = {}): SyncResult {
    const res: SyncResult = { added: 0, updated: 0, removed: 0, unchanged: 0, flushedFlows: 0 };
    const want = new Map<string, ServicePortModel>();
    for (const m of desired) want.set(m.key, m);
    for (const key of [...this.services.keys()]) {
      if (!want.has(key)) {
        this.removeNoFlush(key);
        res.removed++;
      }
    }
    for (const m of want.values()) {
      const cur = this.services.get(m.key);
      if (cur && !cur.dirty && sameModel(cur.model, m)) {
        res.unchanged++;
        continue;
      }
      this.upsertNoFlush(m, cur);
      if (cur) res.updated++;
      else res.added++;
    }
    if (!o.deferFlush) res.flushedFlows = this.flushStaleAll();
    return res;
  }

  /** Programs one service port (add or change). Returns flows flushed. */
  upsert(m: ServicePortModel, o: WriteOptions = {}): number {
    this.upsertNoFlush(m, this.services.get(m.key));
    return o.deferFlush ? 0 : this.flushStaleAll();
  }

  /** Programs a service port unless it is programmed exactly so already. Returns flows flushed. */
  upsertIfChanged(m: ServicePortModel, o: WriteOptions = {}): number {
    const p = this.services.get(m.key);
    if (p && !p.dirty && sameModel(p.model, m)) return 0;
    this.upsertNoFlush(m, p);
    return o.deferFlush ? 0 : this.flushStaleAll();
  }

  /** Removes a service port from the maps. Returns flows flushed. */
  remove(key: string, o: WriteOptions = {}): number {
    if (!this.removeNoFlush(key)) return 0;
    return o.deferFlush ? 0 : this.flushStaleAll();
  }

  /** True while flows of departed backends may remain (see flushStale). */
  get flushPending(): boolean {
    return this.flushLeft > 0;
  }

  /**
   * One bounded step of the deferred cleanup: examines up to `budget` conntrack slots and
   * removes the UDP/SCTP flows whose backend left. Returns the flows removed; flushPending
   * turns false once a full circle of the table has been examined since the last departure.
   */
  flushStale(budget = 32768): number {
    const cap = this.w.conntrackSlots;
    let todo = Math.min(budget, this.flushLeft);
    let removed = 0;
    while (todo > 0) {
      const n = Math.min(todo, cap - this.flushCursor);
      const r = this.w.flushStaleStep(FLUSH_PROTOS, this.flushCursor, n);
      removed += r.removed;
      this.flushCursor = r.cursor;
      todo -= n;
      this.flushLeft -= n;
    }
    if (this.flushLeft === 0) this.flushDone();
    return removed;
  }

  /** Removes every stale datagram flow now (repeated passes until one finds none). */
  private flushStaleAll(): number {
    if (this.flushLeft === 0) return 0;
    const cap = this.w.conntrackSlots;
    let total = 0;
    for (;;) {
      const r = this.w.flushStaleStep(FLUSH_PROTOS, 0, cap);
      total += r.removed;
      if (r.removed === 0) break;
    }
    this.flushLeft = 0;
    this.flushCursor = 0;
    this.flushDone();
    return total;
  }

  /** Programs `m`; `p` is what is programmed for its key (services.get(m.key), which the caller has). */
  private upsertNoFlush(m: ServicePortModel, p: Programmed | undefined): void {
    if (!p) {
      p = {
        model: m, svcId: this.svcIds.take(), frontends: [], slotIds: [], slotsHigh: 0, dirty: false, hasRanges: false,
        mgCluster: null, mgLocal: null, mgClusterTable: null, mgLocalTable: null,
      };
      this.services.set(m.key, p);
      this.w.clearStatsService(p.svcId);
    }
    const wasDirty = p.dirty;
    p.dirty = true;
    const w = this.w;
    const svcId = p.svcId;
    const proto = PROTO_NUM[m.protocol];

    // Backends in the four slot groups of the services map. References are taken for the new
    // set before the old set's are dropped, so a backend in both never reaches zero.
    const c = this.cols;
    c.reset();
    const src = endpointSource(m);
    if (src) readEndpoints(src, this.opts.nodeName, c);
    else for (const e of m.endpoints) c.pushInfo(e, this.opts.nodeName);
    const o = slotOrder(c);
    const n = o.count;
    const ready = o.readyLocal + o.readyRemote;
    const ids: number[] = new Array<number>(n).fill(0);
    try {
      this.programBackends(o, c, proto, ids);
      this.writeSlots(p, ids, wasDirty);

      // Maglev tables for the cluster and local ready sets (the terminating fallback is random).
      const algorithm = m.algorithm ?? this.dp.config.defaultAlgorithm;
      let cl: ArenaRange | null = null;
      let lo: ArenaRange | null = null;
      if (algorithm === "maglev" || p.mgCluster || p.mgLocal) {
        const names = algorithm === "maglev" ? Array.from({ length: n }, (_, s) => backendName(c.ip[o.index[s]!]!, c.port[o.index[s]!]!, m.protocol)) : [];
        const wantMaglev = algorithm === "maglev";
        cl = this.programMaglev(p, "cluster", wantMaglev ? ids.slice(0, ready) : [], names);
        lo = this.programMaglev(p, "local", wantMaglev && (m.externalTrafficPolicyLocal || m.internalTrafficPolicyLocal) ? ids.slice(0, o.readyLocal) : [], names);
      }

      const flags = (m.affinityTimeoutSeconds !== null ? SVC.Affinity : 0)
        | (m.externalTrafficPolicyLocal ? SVC.ExtLocal : 0)
        | (m.internalTrafficPolicyLocal ? SVC.IntLocal : 0)
        | (m.loadBalancerSourceRanges.length > 0 ? SVC.SourceRanges : 0);
      w.patchService(svcId, flags, m.algorithm ? ALGORITHMS[m.algorithm] : ALGORITHMS.default, m.affinityTimeoutSeconds ?? 0,
        o.readyLocal, o.readyRemote, o.terminatingLocal, o.terminatingRemote,
        cl?.off ?? 0, cl?.size ?? 0, lo?.off ?? 0, lo?.size ?? 0);

      // loadBalancerSourceRanges: LPM table svcId.
      if (p.hasRanges || m.loadBalancerSourceRanges.length > 0) {
        this.dp.lpmClear(svcId);
        p.hasRanges = false;
        for (const r of m.loadBalancerSourceRanges) {
          if (!isIPv4(r.trim().split("/")[0]!)) continue;
          this.dp.lpmAdd(svcId, r.trim());
          p.hasRanges = true;
        }
      }

      this.programFrontends(p, m, proto);
    } catch (e) {
      // Keep the reference counts true to what the service holds: drop what this attempt took.
      for (const id of ids) if (id > 0) this.releaseBackend(id);
      throw e;
    }

    // Release backends this service no longer uses.
    for (const id of p.slotIds) this.releaseBackend(id);
    p.slotIds = ids;
    p.model = m;
    p.dirty = false;
  }

  /** Adds a wanted frontend (a later one for the same address and port replaces the earlier). */
  private want(ip: string, port: number, kind: number, vip: boolean): void {
    const a = ipv4ToU32OrNeg(ip);
    if (a < 0) return;
    const w = this.fw;
    for (let i = 0; i < w.n; i++) {
      if (w.addr[i] === a && w.port[i] === port) {
        w.kind[i] = kind;
        w.vip[i] = vip;
        return;
      }
    }
    w.addr[w.n] = a;
    w.port[w.n] = port;
    w.kind[w.n] = kind;
    w.vip[w.n] = vip;
    w.n++;
  }

  /** A reference and an entry per slot's backend, in `ids` (0 until taken: a failure releases what was). */
  private programBackends(o: SlotOrder, c: EndpointColumns, proto: number, ids: number[]): void {
    const w = this.w;
    const ready = o.readyLocal + o.readyRemote;
    const localEnd2 = ready + o.terminatingLocal;
    for (let s = 0; s < o.count; s++) {
      const addr = o.addr[s]!;
      const port = c.port[o.index[s]!]!;
      const id = this.acquireBackend(addr, portProto(port, proto));
      ids[s] = id;
      const local = s < o.readyLocal || (s >= ready && s < localEnd2);
      w.setBackend(id, addr, port, proto, s < ready ? BE_STATE.Active : BE_STATE.Terminating, local ? BE_FLAG.Local : 0, 1);
    }
  }

  /** The service's slots: the changed ones (all after a failure), one batch; and none past the last. */
  private writeSlots(p: Programmed, ids: number[], all: boolean): void {
    const w = this.w;
    const n = ids.length;
    p.slotsHigh = Math.max(p.slotsHigh, n);
    for (let s = 0; s < n; s++) if (all || p.slotIds[s] !== ids[s]) w.setSlot(p.svcId, s, ids[s]!);
    w.flush(); // this port's slots in one batch (a failure is this port's)
    for (let s = n; s < p.slotsHigh; s++) w.deleteSlot(p.svcId, s);
    p.slotsHigh = n;
  }

  private programFrontends(p: Programmed, m: ServicePortModel, proto: number): void {
    const w = this.w;
    // What is wanted, in order (an external IP that is also the cluster IP is served as external).
    const fw = this.fw;
    fw.n = 0;
    for (let i = 0; i < m.clusterIPs.length; i++) this.want(m.clusterIPs[i]!, m.port, FE.ClusterIP, true);
    for (let i = 0; i < m.externalIPs.length; i++) this.want(m.externalIPs[i]!, m.port, FE.ExternalIP, false);
    for (let i = 0; i < m.loadBalancerIPs.length; i++) this.want(m.loadBalancerIPs[i]!, m.port, FE.LoadBalancer, false);
    if (m.nodePort) this.want("0.0.0.0", m.nodePort, FE.NodePort, false);
    const have = p.frontends;
    for (let i = have.length - 1; i >= 0; i--) {
      const fe = have[i]!;
      let wanted = false;
      for (let j = 0; j < fw.n && !wanted; j++) wanted = fw.addr[j] === fe.addr && fw.port[j] === fe.port;
      if (wanted) continue;
      w.deleteFrontend(fe.addr, fe.port, proto);
      w.clearRevNat(fe.revNatId);
      this.revNatIds.give(fe.revNatId);
      if (fe.vip) this.setAddr(fe.addr, -1, undefined);
      have.splice(i, 1);
    }
    for (let j = 0; j < fw.n; j++) {
      const addr = fw.addr[j]!;
      const port = fw.port[j]!;
      let cur: FrontendState | undefined;
      for (let i = 0; i < have.length; i++) {
        if (have[i]!.addr === addr && have[i]!.port === port) {
          cur = have[i];
          break;
        }
      }
      if (!cur) {
        cur = { addr, port, kind: 0, revNatId: this.revNatIds.take(), vip: false };
        if (have.length === 0 && fw.n === 1) p.frontends = [cur]; // the common case, without a grown array
        else have.push(cur);
        w.setRevNat(cur.revNatId, addr, port);
      }
      if (cur.vip !== fw.vip[j]) {
        cur.vip = fw.vip[j]!;
        this.setAddr(addr, cur.vip ? 1 : -1, undefined);
      }
      if (cur.kind !== fw.kind[j]) {
        w.setFrontend(addr, port, proto, p.svcId, cur.revNatId, fw.kind[j]!);
        cur.kind = fw.kind[j]!;
      }
    }
  }

  /** Every programmed service port with its id (for metrics and admin views). */
  programmed(): Array<{ svcId: number; model: ServicePortModel }> {
    return [...this.services.values()].map((p) => ({ svcId: p.svcId, model: p.model }));
  }

  /** What the kernel must send to the dataplane: routed service addresses and NodePorts. */
  frontendSummary(): { externalIPs: Set<string>; nodePorts: Set<string> } {
    const externalIPs = new Set<string>();
    const nodePorts = new Set<string>();
    for (const p of this.services.values()) {
      for (const ip of p.model.externalIPs) if (isIPv4(ip)) externalIPs.add(ip);
      for (const ip of p.model.loadBalancerIPs) if (isIPv4(ip)) externalIPs.add(ip);
      if (p.model.nodePort) nodePorts.add(`${p.model.protocol}:${p.model.nodePort}`);
    }
    return { externalIPs, nodePorts };
  }

  private removeNoFlush(key: string): boolean {
    const p = this.services.get(key);
    if (!p) return false;
    const w = this.w;
    const proto = PROTO_NUM[p.model.protocol];
    for (const fe of p.frontends) {
      w.deleteFrontend(fe.addr, fe.port, proto);
      w.clearRevNat(fe.revNatId);
      this.revNatIds.give(fe.revNatId);
      if (fe.vip) this.setAddr(fe.addr, -1, undefined);
    }
    for (let i = 0; i < p.slotsHigh; i++) w.deleteSlot(p.svcId, i);
    if (p.mgCluster) this.arena.give(p.mgCluster);
    if (p.mgLocal) this.arena.give(p.mgLocal);
    if (p.hasRanges) this.dp.lpmClear(p.svcId);
    w.clearService(p.svcId);
    for (const id of p.slotIds) this.releaseBackend(id);
    this.svcIds.give(p.svcId);
    this.services.delete(key);
    return true;
  }

  private programMaglev(p: Programmed, which: "cluster" | "local", ids: number[], names: string[]): ArenaRange | null {
    const cluster = which === "cluster";
    const old = cluster ? p.mgCluster : p.mgLocal;
    const set = (r: ArenaRange | null, t: Int32Array | null): void => {
      if (cluster) {
        p.mgCluster = r;
        p.mgClusterTable = t;
      } else {
        p.mgLocal = r;
        p.mgLocalTable = t;
      }
    };
    if (ids.length === 0) {
      if (old) this.arena.give(old);
      set(null, null);
      return null;
    }
    // M is the smallest prime > 100·N, but an existing table that still satisfies M > 100·N
    // keeps its size: changing M would remap every slot and undo Maglev's minimal disruption.
    const m = old && old.size > 100 * ids.length ? old.size : maglevTableSize(ids.length);
    const table = buildMaglevTable(ids.map((_, i) => names[i]!), m);
    let range = old;
    let prev = cluster ? p.mgClusterTable : p.mgLocalTable;
    if (!range || range.size !== m) {
      if (range) this.arena.give(range);
      range = this.arena.take(m);
      prev = null;
    }
    for (let s = 0; s < m; s++) {
      const be = ids[table[s]!]!;
      if (prev && prev[s] === be) continue; // only changed slots are written
      this.w.setMaglev(range.off + s, be);
    }
    set(range, Int32Array.from(table, (i) => ids[i]!));
    return range;
  }

  /** One more reference to the backend (address, port × protocol): a new id, with zeroed counters, for a new one. */
  private acquireBackend(addr: number, pp: number): number {
    const t = this.backendTable;
    const id = t.get(addr, pp);
    if (id !== 0) {
      t.refs[id]!++;
      return id;
    }
    const nid = this.backendIds.take();
    t.add(addr, pp, nid);
    this.w.clearStatsBackend(nid);
    return nid;
  }

  /**
   * Drops one reference; a backend nobody uses leaves the map. Its entry is cleared at once,
   * which is all the dataplane needs: a flow whose backend is gone is re-selected on its next
   * packet (ctBackendValid). UDP/SCTP flows are also removed from conntrack afterwards
   * (kube-proxy's conntrack cleanup of UDP does the same), by one scan for any number of
   * departed backends; TCP flows are left to re-selection.
   */
  private releaseBackend(id: number): void {
    const t = this.backendTable;
    if (t.refs[id]! <= 0 || --t.refs[id]! > 0) return;
    t.remove(id);
    // Every flow the dataplane makes is counted in its backend's activeConns until removed (TCP
    // ones stop counting when they close): a UDP/SCTP backend at zero has no flow to remove.
    const flows = this.w.datagramFlows(id);
    this.w.clearBackend(id);
    this.w.clearStatsBackend(id);
    if (flows === 0) {
      this.backendIds.give(id);
      return;
    }
    // The id waits for the cleanup: reused before it, the old flows' removal would uncount the new owner's.
    this.flushHeld.push(id);
    this.flushLeft = this.w.conntrackSlots; // a full circle from wherever the cleanup stands
  }

  /** The cleanup finished a full circle: the ids it held are free again. */
  private flushDone(): void {
    for (const id of this.flushHeld) this.backendIds.give(id);
    this.flushHeld.length = 0;
  }

  /**
   * Changes an address's state — service-address references by `vipDelta`, serving NodePorts
   * when `nodePort` is given — and the addrs map when its flags change.
   */
  private setAddr(addr: number, vipDelta: number, nodePort: boolean | undefined): void {
    const had = this.addrState.get(addr);
    const before = had ? (had.vipRefs > 0 ? ADDR.Vip : 0) | (had.nodePort ? ADDR.NodePort : 0) : 0;
    const s = had ?? { vipRefs: 0, nodePort: false };
    s.vipRefs += vipDelta;
    if (nodePort !== undefined) s.nodePort = nodePort;
    const flags = (s.vipRefs > 0 ? ADDR.Vip : 0) | (s.nodePort ? ADDR.NodePort : 0);
    if (flags === 0) {
      this.addrState.delete(addr);
      if (before !== 0) this.w.deleteAddr(addr);
    } else {
      if (flags !== before) this.w.setAddr(addr, flags);
      if (!had) this.addrState.set(addr, s);
    }
  }
}
