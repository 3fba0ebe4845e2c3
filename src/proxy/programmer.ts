// Programs the dataplane's maps from service-port models: allocates service, backend and
// reverse-NAT ids (never reusing an id before the free list has aged), writes frontends,
// backend slot groups, Maglev tables (changed slots only), source ranges and node addresses,
// and applies only the difference from what is already programmed. The desired state comes
// from Kubernetes objects (model.ts); this file knows nothing of them.

import type { Dataplane } from "../maps/dataplane.js";
import { ADDR, ALGORITHMS, BE_STATE, BE_FLAG, FE, SVC, type Algorithm, type FrontendKey } from "../maps/layout.js";
import { groupEndpoints, type EndpointInfo } from "./endpoints.js";
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
  json: string;
  svcId: number;
  frontends: Map<string, { key: FrontendKey; revNatId: number; vipAddr?: string }>;
  backendKeys: string[];
  maglev: { cluster: ArenaRange | null; local: ArenaRange | null; clusterTable: Int32Array | null; localTable: Int32Array | null };
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

function backendKey(ip: string, port: number, proto: Protocol): string {
  return `${ip}:${port}/${proto}`;
}

function isIPv4(a: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(a);
}

export class Programmer {
  private readonly services = new Map<string, Programmed>();
  private readonly backends = new Map<string, { id: number; refs: number }>();
  private readonly addrState = new Map<string, { vipRefs: number; nodePort: boolean }>();
  private readonly svcIds: IdPool;
  private readonly backendIds: IdPool;
  private readonly revNatIds: IdPool;
  private readonly arena: Arena;
  private nodeAddrs: string[] = [];

  constructor(private readonly dp: Dataplane, private readonly opts: ProgrammerOptions) {
    this.svcIds = new IdPool("service", dp.maps.services.maxEntries);
    this.backendIds = new IdPool("backend", dp.maps.backends.maxEntries);
    this.revNatIds = new IdPool("reverse-NAT", dp.maps.revNat.maxEntries);
    this.arena = new Arena(dp.maps.maglev.maxEntries);
  }

  /** svcId of a programmed service port (for stats), or undefined. */
  serviceId(key: string): number | undefined {
    return this.services.get(key)?.svcId;
  }

  backendId(ip: string, port: number, proto: Protocol): number | undefined {
    return this.backends.get(backendKey(ip, port, proto))?.id;
  }

  /** Addresses on which NodePorts are served (nodeport-addresses already applied). */
  setNodeAddresses(addrs: string[]): void {
    for (const a of this.nodeAddrs) this.setAddr(a, (s) => (s.nodePort = false));
    this.nodeAddrs = addrs.filter(isIPv4);
    for (const a of this.nodeAddrs) this.setAddr(a, (s) => (s.nodePort = true));
  }

  /** Sources that count as this node's own (pod CIDR, node addresses): LPM table 0. */
  setLocalSources(cidrs: string[]): void {
    this.dp.lpmClear(0);
    for (const c of cidrs) if (isIPv4(c.split("/")[0]!)) this.dp.lpmAdd(0, c);
  }

  /** Makes the maps hold exactly `desired`, touching only what changed. */
  sync(desired: Iterable<ServicePortModel>): SyncResult {
    const res: SyncResult = { added: 0, updated: 0, removed: 0, unchanged: 0, flushedFlows: 0 };
    const want = new Map<string, ServicePortModel>();
    for (const m of desired) want.set(m.key, m);
    for (const key of [...this.services.keys()]) {
      if (!want.has(key)) {
        res.flushedFlows += this.remove(key);
        res.removed++;
      }
    }
    for (const m of want.values()) {
      const cur = this.services.get(m.key);
      const json = JSON.stringify(m);
      if (cur && cur.json === json) {
        res.unchanged++;
        continue;
      }
      res.flushedFlows += this.upsert(m, json);
      if (cur) res.updated++;
      else res.added++;
    }
    return res;
  }

  /** Programs one service port (add or change). Returns flows flushed. */
  upsert(m: ServicePortModel, json = JSON.stringify(m)): number {
    const dp = this.dp;
    let p = this.services.get(m.key);
    if (!p) {
      p = { model: m, json, svcId: this.svcIds.take(), frontends: new Map(), backendKeys: [], maglev: { cluster: null, local: null, clusterTable: null, localTable: null } };
      this.services.set(m.key, p);
      dp.maps.statsService.clear(p.svcId);
    }
    const svcId = p.svcId;
    const proto = PROTO_NUM[m.protocol];

    // Backends in the four slot groups of the services map.
    const g = groupEndpoints(m.endpoints, this.opts.nodeName);
    const ordered: Array<{ e: EndpointInfo; state: number; local: boolean }> = [
      ...g.readyLocal.map((e) => ({ e, state: BE_STATE.Active, local: true })),
      ...g.readyRemote.map((e) => ({ e, state: BE_STATE.Active, local: false })),
      ...g.terminatingLocal.map((e) => ({ e, state: BE_STATE.Terminating, local: true })),
      ...g.terminatingRemote.map((e) => ({ e, state: BE_STATE.Terminating, local: false })),
    ].filter((b) => isIPv4(b.e.ip));
    const newKeys: string[] = [];
    const newKeySet = new Set<string>();
    const oldKeySet = new Set(p.backendKeys);
    const ids: number[] = [];
    for (const b of ordered) {
      const k = backendKey(b.e.ip, b.e.port, m.protocol);
      const id = this.acquireBackend(k, newKeySet.has(k) || oldKeySet.has(k));
      newKeys.push(k);
      newKeySet.add(k);
      ids.push(id);
      const cur = dp.maps.backends.get(id);
      dp.maps.backends.set(id, {
        addrBe: b.e.ip, portBe: b.e.port, proto, state: b.state, flags: b.local ? BE_FLAG.Local : 0,
        weight: 1, activeConns: cur.addrBe === b.e.ip && cur.portBe === b.e.port ? cur.activeConns : 0,
      });
    }
    for (let i = 0; i < ids.length; i++) dp.maps.svcSlots.update({ svcId, slot: i }, { backendId: ids[i]! });
    for (let i = ids.length; i < p.backendKeys.length; i++) dp.maps.svcSlots.delete({ svcId, slot: i });

    // Maglev tables for the cluster and local ready sets (the terminating fallback is random).
    const algorithm = m.algorithm ?? dp.config.defaultAlgorithm;
    const wantMaglev = algorithm === "maglev";
    const readyAll = ids.slice(0, g.readyLocal.length + g.readyRemote.length);
    const readyLocal = ids.slice(0, g.readyLocal.length);
    const cl = this.programMaglev(p, "cluster", wantMaglev ? readyAll : [], newKeys);
    const lo = this.programMaglev(p, "local", wantMaglev && (m.externalTrafficPolicyLocal || m.internalTrafficPolicyLocal) ? readyLocal : [], newKeys);

    const flags = (m.affinityTimeoutSeconds !== null ? SVC.Affinity : 0)
      | (m.externalTrafficPolicyLocal ? SVC.ExtLocal : 0)
      | (m.internalTrafficPolicyLocal ? SVC.IntLocal : 0)
      | (m.loadBalancerSourceRanges.length > 0 ? SVC.SourceRanges : 0);
    dp.maps.services.patch(svcId, {
      flags,
      algo: m.algorithm ? ALGORITHMS[m.algorithm] : ALGORITHMS.default,
      affinityTimeoutSec: m.affinityTimeoutSeconds ?? 0,
      readyLocal: g.readyLocal.length,
      readyRemote: g.readyRemote.length,
      terminatingLocal: g.terminatingLocal.length,
      terminatingRemote: g.terminatingRemote.length,
      maglevClusterOff: cl?.off ?? 0,
      maglevClusterSize: cl?.size ?? 0,
      maglevLocalOff: lo?.off ?? 0,
      maglevLocalSize: lo?.size ?? 0,
    });

    // loadBalancerSourceRanges: LPM table svcId.
    dp.lpmClear(svcId);
    for (const r of m.loadBalancerSourceRanges) if (isIPv4(r.trim().split("/")[0]!)) dp.lpmAdd(svcId, r.trim());

    // Frontends.
    const wantFe = new Map<string, { key: FrontendKey; kind: number; vipAddr?: string }>();
    const addFe = (addr: string, port: number, kind: number, vip: boolean) => {
      if (!isIPv4(addr)) return;
      const key: FrontendKey = { addrBe: addr, portBe: port, proto };
      wantFe.set(`${addr}:${port}`, { key, kind, vipAddr: vip ? addr : undefined });
    };
    for (const ip of m.clusterIPs) addFe(ip, m.port, FE.ClusterIP, true);
    for (const ip of m.externalIPs) addFe(ip, m.port, FE.ExternalIP, false);
    for (const ip of m.loadBalancerIPs) addFe(ip, m.port, FE.LoadBalancer, false);
    if (m.nodePort) addFe("0.0.0.0", m.nodePort, FE.NodePort, false);
    for (const [k, fe] of p.frontends) {
      if (wantFe.has(k)) continue;
      dp.maps.frontends.delete(fe.key);
      dp.maps.revNat.clear(fe.revNatId);
      this.revNatIds.give(fe.revNatId);
      if (fe.vipAddr) this.setAddr(fe.vipAddr, (s) => s.vipRefs--);
      p.frontends.delete(k);
    }
    for (const [k, fe] of wantFe) {
      let cur = p.frontends.get(k);
      if (!cur) {
        cur = { key: fe.key, revNatId: this.revNatIds.take(), vipAddr: fe.vipAddr };
        p.frontends.set(k, cur);
        dp.maps.revNat.set(cur.revNatId, { addrBe: fe.key.addrBe, portBe: fe.key.portBe });
        if (fe.vipAddr) this.setAddr(fe.vipAddr, (s) => s.vipRefs++);
      }
      dp.maps.frontends.update(fe.key, { svcId, revNatId: cur.revNatId, kind: fe.kind });
    }

    // Release backends this service no longer uses.
    let flushed = 0;
    for (const k of p.backendKeys) if (!newKeySet.has(k)) flushed += this.releaseBackend(k);
    p.backendKeys = newKeys;
    p.model = m;
    p.json = json;
    return flushed;
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
      for (const ip of [...p.model.externalIPs, ...p.model.loadBalancerIPs]) if (isIPv4(ip)) externalIPs.add(ip);
      if (p.model.nodePort) nodePorts.add(`${p.model.protocol}:${p.model.nodePort}`);
    }
    return { externalIPs, nodePorts };
  }

  /** Programs a service port unless it is programmed exactly so already. Returns flows flushed. */
  upsertIfChanged(m: ServicePortModel): number {
    const json = JSON.stringify(m);
    if (this.services.get(m.key)?.json === json) return 0;
    return this.upsert(m, json);
  }

  /** Removes a service port from the maps. Returns flows flushed. */
  remove(key: string): number {
    const p = this.services.get(key);
    if (!p) return 0;
    const dp = this.dp;
    for (const fe of p.frontends.values()) {
      dp.maps.frontends.delete(fe.key);
      dp.maps.revNat.clear(fe.revNatId);
      this.revNatIds.give(fe.revNatId);
      if (fe.vipAddr) this.setAddr(fe.vipAddr, (s) => s.vipRefs--);
    }
    for (let i = 0; i < p.backendKeys.length; i++) dp.maps.svcSlots.delete({ svcId: p.svcId, slot: i });
    if (p.maglev.cluster) this.arena.give(p.maglev.cluster);
    if (p.maglev.local) this.arena.give(p.maglev.local);
    dp.lpmClear(p.svcId);
    dp.maps.services.clear(p.svcId);
    let flushed = 0;
    for (const k of p.backendKeys) flushed += this.releaseBackend(k);
    this.svcIds.give(p.svcId);
    this.services.delete(key);
    return flushed;
  }

  private programMaglev(p: Programmed, which: "cluster" | "local", ids: number[], names: string[]): ArenaRange | null {
    const rangeKey = which === "cluster" ? "cluster" : "local";
    const tableKey = which === "cluster" ? "clusterTable" : "localTable";
    const old = p.maglev[rangeKey];
    if (ids.length === 0) {
      if (old) this.arena.give(old);
      p.maglev[rangeKey] = null;
      p.maglev[tableKey] = null;
      return null;
    }
    // M is the smallest prime > 100·N, but an existing table that still satisfies M > 100·N
    // keeps its size: changing M would remap every slot and undo Maglev's minimal disruption.
    const m = old && old.size > 100 * ids.length ? old.size : maglevTableSize(ids.length);
    const table = buildMaglevTable(ids.map((_, i) => names[i]!), m);
    let range = old;
    let prev = p.maglev[tableKey];
    if (!range || range.size !== m) {
      if (range) this.arena.give(range);
      range = this.arena.take(m);
      prev = null;
    }
    const arr = this.dp.maps.maglev;
    for (let s = 0; s < m; s++) {
      const be = ids[table[s]!]!;
      if (prev && prev[s] === be) continue; // only changed slots are written
      arr.set(range.off + s, { backendId: be });
    }
    const written = Int32Array.from(table, (i) => ids[i]!);
    p.maglev[rangeKey] = range;
    p.maglev[tableKey] = written;
    return range;
  }

  private acquireBackend(k: string, alreadyHeld: boolean): number {
    const b = this.backends.get(k);
    if (b) {
      if (!alreadyHeld) b.refs++;
      return b.id;
    }
    const id = this.backendIds.take();
    this.backends.set(k, { id, refs: 1 });
    return id;
  }

  /** Drops one reference; a backend nobody uses leaves the map and its UDP/SCTP flows go. */
  private releaseBackend(k: string): number {
    const b = this.backends.get(k);
    if (!b) return 0;
    if (--b.refs > 0) return 0;
    this.backends.delete(k);
    // TCP flows are re-selected by the dataplane on their next packet; datagram flows would
    // otherwise keep a stale entry (kube-proxy's conntrack cleanup of UDP does the same).
    const flushed = this.dp.flushBackend(b.id, { udp: true, sctp: true });
    this.dp.maps.backends.clear(b.id);
    this.dp.maps.statsBackend.clear(b.id);
    this.backendIds.give(b.id);
    return flushed;
  }

  private setAddr(addr: string, f: (s: { vipRefs: number; nodePort: boolean }) => void): void {
    const s = this.addrState.get(addr) ?? { vipRefs: 0, nodePort: false };
    f(s);
    const flags = (s.vipRefs > 0 ? ADDR.Vip : 0) | (s.nodePort ? ADDR.NodePort : 0);
    if (flags === 0) {
      this.addrState.delete(addr);
      this.dp.maps.addrs.delete({ addrBe: addr });
    } else {
      this.addrState.set(addr, s);
      this.dp.maps.addrs.update({ addrBe: addr }, { flags });
    }
  }
}
