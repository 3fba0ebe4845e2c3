// The cluster DNS server (spec §7): UDP and TCP on one address:port, DNS wire format with
// dns-packet, answering from the live Services and EndpointSlices (two informers on an
// ObjectSource), forwarding names outside the zone to upstream servers.
//
//   <svc>.<ns>.svc.<zone>           A/AAAA → clusterIP(s), also with zero endpoints;
//                                   headless: one record per ready endpoint (NXDOMAIN when none);
//                                   ExternalName: CNAME → externalName
//   <host>.<svc>.<ns>.svc.<zone>    headless endpoint (hostname, else the IP with . / : → -)
//   _<port>._<proto>.<svc>...       SRV for named ports: priority 0, weight floor(100/N) ≥ 1,
//                                   target the service FQDN (headless: each endpoint's FQDN)
//   reverse names                   PTR for clusterIPs and headless endpoint IPs
//   dns-version.<zone>              TXT "1.1.0"
//   unknown name in the zone → NXDOMAIN; known name without that type → NODATA (both with the
//   zone's SOA in the authority section); before the first sync → SERVFAIL; outside the zone →
//   the upstreams in order (SERVFAIL when none answers), REFUSED when none are configured.
// Names are case-insensitive. Over UDP the answer must fit the client's EDNS0 buffer (512 without
// EDNS); otherwise it is sent empty with TC set and the client retries over TCP. Malformed
// queries get FORMERR when a header can be read, otherwise they are dropped; both are counted.
// The index is built in full once both informers have listed, then updated in place per
// Service/EndpointSlice event (only that Service's names change, with the same result as a full
// build), so a Service switching between ExternalName and ClusterIP changes the answer at once.
// Encoded answers to ordinary queries are cached per question and dropped for the names an
// update touches; a hit only patches the ID (and picks the truncated form when it must).

import dgram from "node:dgram";
import net from "node:net";
import * as dnsPacket from "dns-packet";
import type { Answer, DecodedPacket, OptAnswer, Packet, Question, SrvData } from "dns-packet";
import type { ObjectSource } from "../store/watch.js";
import type { EndpointSlice, Service } from "../store/types.js";
import { Informer, objKey, type Obj } from "../agent/informer.js";
import { Counter, type Registry } from "prom-client";

export const DNS_VERSION = "1.1.0";
export const DEFAULT_ZONE = "cluster.local";
export const DEFAULT_TTL = 5;
/** The UDP payload size tapvip advertises in its own OPT record. */
export const SERVER_UDP_SIZE = 1232;
export const DEFAULT_ANSWER_CACHE = 65_536;
const SERVICE_NAME_LABEL = "kubernetes.io/service-name";

const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
type RcodeName = keyof typeof RCODE;
const RCODE_NAMES = Object.keys(RCODE) as RcodeName[];

export interface Upstream {
  host: string;
  port: number;
}

export interface DnsServerOptions {
  source: ObjectSource;
  /** Listen address (default 127.0.0.1). */
  address?: string;
  /** Listen port; 0 picks a free port usable for both UDP and TCP (default 53). */
  port?: number;
  zone?: string;
  ttl?: number;
  upstreams?: Upstream[];
  /** Per-upstream timeout (default 2000 ms). */
  upstreamTimeoutMs?: number;
  /** Encoded answers kept for repeated questions, about 0.5–1 KB each (default 65536; 0: no cache). */
  answerCache?: number;
}

export interface DnsCounters {
  queries: Record<string, number>;
  responses: Record<string, number>;
  udp: number;
  tcp: number;
  truncated: number;
  forwarded: number;
  malformed: number;
  dropped: number;
}

/** "ADDR:PORT" (IPv6 as [ADDR]:PORT); a bare address gets `defPort`. */
export function parseHostPort(s: string, defPort = 53): Upstream {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(s) ?? /^([^:]+)(?::(\d+))?$/.exec(s);
  if (m) return { host: m[1]!, port: m[2] ? Number(m[2]) : defPort };
  if (net.isIPv6(s)) return { host: s, port: defPort };
  throw new Error(`invalid address "${s}" (ADDR:PORT)`);
}

/** Comma-separated upstream list for --dns-upstream. */
export function parseUpstreams(s: string | undefined): Upstream[] {
  if (!s) return [];
  return s.split(",").map((x) => x.trim()).filter((x) => x !== "").map((x) => parseHostPort(x, 53));
}

function expandIPv6(ip: string): string[] {
  const [head, tail] = ip.includes("::") ? (ip.split("::") as [string, string]) : [ip, undefined];
  const h = head ? head.split(":") : [];
  const t = tail !== undefined && tail !== "" ? tail.split(":") : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill("0"), ...t];
  return groups.map((g) => g.padStart(4, "0").toLowerCase());
}

/** The reverse (PTR) name of an IPv4 or IPv6 address, lower case, without a trailing dot. */
export function reverseName(ip: string): string {
  if (net.isIPv4(ip)) return `${ip.split(".").reverse().join(".")}.in-addr.arpa`;
  const nibbles = expandIPv6(ip).join("").split("");
  return `${nibbles.reverse().join(".")}.ip6.arpa`;
}

interface Node {
  a: string[];
  aaaa: string[];
  cname?: string;
  srv: SrvData[];
  txt?: string[];
  apex?: boolean;
}

const newNode = (): Node => ({ a: [], aaaa: [], srv: [] });
/** The records of every empty non-terminal (shared, never written). */
const EMPTY: Node = Object.freeze({ a: Object.freeze([]) as unknown as string[], aaaa: Object.freeze([]) as unknown as string[], srv: Object.freeze([]) as unknown as SrvData[] });

/**
 * What one Service object (with the EndpointSlices of its name) puts into the zone: the names
 * that carry records, every name they make exist (themselves and their ancestors below the zone:
 * empty non-terminals answer NODATA, not NXDOMAIN), and PTR candidates.
 */
interface Contribution {
  records: Map<string, Node>;
  names: string[];
  /** [reverse name, "<rank>\t<target>"], sorted, no repeats: rank 0 for a clusterIP, 1 for an endpoint address. */
  ptr: Array<[string, string]>;
}

const STATIC_OWNER = ""; // the apex and dns-version; sorts before every "namespace/name"

/** "namespace/name" of the Service a Service object or an EndpointSlice stands for. */
function serviceRef(namespace: string | undefined, name: string): string {
  return `${namespace ?? "default"}/${name}`;
}

function sliceServiceRef(o: Obj): string | undefined {
  const svc = (o.metadata.labels as Record<string, string> | undefined)?.[SERVICE_NAME_LABEL];
  return svc ? serviceRef(o.metadata.namespace, svc) : undefined;
}

function sameNode(x: Node, y: Node): boolean {
  if (x.cname !== y.cname || x.apex !== y.apex || x.a.length !== y.a.length || x.aaaa.length !== y.aaaa.length || x.srv.length !== y.srv.length) return false;
  if ((x.txt ?? []).join("\0") !== (y.txt ?? []).join("\0") || (x.txt === undefined) !== (y.txt === undefined)) return false;
  for (let i = 0; i < x.a.length; i++) if (x.a[i] !== y.a[i]) return false;
  for (let i = 0; i < x.aaaa.length; i++) if (x.aaaa[i] !== y.aaaa[i]) return false;
  for (let i = 0; i < x.srv.length; i++) {
    const p = x.srv[i]!;
    const q = y.srv[i]!;
    if (p.target !== q.target || p.port !== q.port || p.weight !== q.weight || p.priority !== q.priority) return false;
  }
  return true;
}

function sameContribution(x: Contribution, y: Contribution): boolean {
  if (x.names.length !== y.names.length || x.ptr.length !== y.ptr.length || x.records.size !== y.records.size) return false;
  for (let i = 0; i < x.names.length; i++) if (x.names[i] !== y.names[i]) return false;
  for (let i = 0; i < x.ptr.length; i++) if (x.ptr[i]![0] !== y.ptr[i]![0] || x.ptr[i]![1] !== y.ptr[i]![1]) return false;
  for (const [n, node] of x.records) {
    const other = y.records.get(n);
    if (!other || !sameNode(node, other)) return false;
  }
  return true;
}

function addIP(n: Node, ip: string): void {
  const list = net.isIPv6(ip) ? n.aaaa : n.a;
  if (!list.includes(ip)) list.push(ip);
}

/**
 * The zone's records, built from the current Services and EndpointSlices and kept up to date
 * one object at a time (applyService / applySlice): a change recomputes only the Service objects
 * of that name, and the index is always exactly what a fresh build from the same objects gives.
 *
 * Records are owned per Service object and merged per name in owner order, so the result does
 * not depend on the order objects arrived in: a Service's slices are read in slice-name order,
 * and a reverse name several owners claim answers with one PTR — a clusterIP before an endpoint
 * address, then the smallest target name.
 */
export class ZoneIndex {
  /** Every existing name (records, or an empty non-terminal) → its records. Read-only outside. */
  readonly names = new Map<string, Node>();
  /** Reverse name → the PTR target. Read-only outside. */
  readonly ptr = new Map<string, string>();
  /** Called with every name (forward or reverse) whose answers may have changed. */
  onTouch: ((name: string) => void) | null = null;

  /**
   * Per existing name: how many owners make it exist (with its records, or as an ancestor of
   * theirs) and the owners' records for it, sorted by owner (almost always one, or none).
   */
  private readonly entries = new Map<string, { refs: number; owners: Array<[string, Node]> | null }>();
  /** Reverse name → the candidates owners claim ("<rank>\t<target>", one entry per owner). */
  private readonly ptrCands = new Map<string, string[]>();
  private readonly services = new Map<string, Service>();
  private readonly ownersByRef = new Map<string, Set<string>>();
  private readonly slices = new Map<string, EndpointSlice>();
  private readonly sliceRef = new Map<string, string>();
  private readonly slicesByRef = new Map<string, Set<string>>();
  private readonly contrib = new Map<string, Contribution>();

  constructor(readonly zone: string, services: Iterable<Obj> = [], slices: Iterable<Obj> = []) {
    const records = new Map<string, Node>([
      [zone, { ...newNode(), apex: true }],
      [`dns-version.${zone}`, { ...newNode(), txt: [DNS_VERSION] }],
    ]);
    this.swap(STATIC_OWNER, { records, names: this.namesOf(records), ptr: [] });
    for (const o of slices) this.storeSlice(objKey(o), o);
    for (const o of services) this.applyService(undefined, o);
  }

  /** A Service was added (old undefined), updated, or deleted (cur undefined). */
  applyService(old: Obj | undefined, cur: Obj | undefined): void {
    const o = cur ?? old;
    if (!o) return;
    const key = objKey(o);
    const ref = serviceRef(o.metadata.namespace, o.metadata.name ?? "");
    if (cur) {
      this.services.set(key, cur as unknown as Service);
      let owners = this.ownersByRef.get(ref);
      if (!owners) this.ownersByRef.set(ref, (owners = new Set()));
      owners.add(key);
    } else {
      this.services.delete(key);
      const owners = this.ownersByRef.get(ref);
      owners?.delete(key);
      if (owners?.size === 0) this.ownersByRef.delete(ref);
    }
    this.recompute(key);
  }

  /** An EndpointSlice was added (old undefined), updated, or deleted (cur undefined). */
  applySlice(old: Obj | undefined, cur: Obj | undefined): void {
    const o = cur ?? old;
    if (!o) return;
    const key = objKey(o);
    const before = this.sliceRef.get(key);
    const after = this.storeSlice(key, cur);
    for (const ref of new Set([before, after])) {
      if (ref === undefined) continue;
      for (const owner of this.ownersByRef.get(ref) ?? []) this.recompute(owner);
    }
  }

  /** Records `o` (undefined: removes it) under its Service; returns that Service's ref. */
  private storeSlice(key: string, o: Obj | undefined): string | undefined {
    const before = this.sliceRef.get(key);
    if (before !== undefined) {
      const set = this.slicesByRef.get(before)!;
      set.delete(key);
      if (set.size === 0) this.slicesByRef.delete(before);
      this.sliceRef.delete(key);
    }
    this.slices.delete(key);
    const ref = o ? sliceServiceRef(o) : undefined;
    if (o && ref !== undefined) {
      this.slices.set(key, o as unknown as EndpointSlice);
      this.sliceRef.set(key, ref);
      let set = this.slicesByRef.get(ref);
      if (!set) this.slicesByRef.set(ref, (set = new Set()));
      set.add(key);
    }
    return ref;
  }

  private recompute(owner: string): void {
    const svc = this.services.get(owner);
    this.swap(owner, svc ? this.serviceRecords(svc) : undefined);
  }

  /** The names `records` make exist: each record name and its ancestors below the zone. */
  private namesOf(records: Map<string, Node>): string[] {
    const out = new Set<string>();
    for (const name of records.keys()) {
      out.add(name);
      let p = name;
      while (p !== this.zone && p.endsWith(`.${this.zone}`)) {
        p = p.slice(p.indexOf(".") + 1);
        if (out.has(p)) break;
        out.add(p);
      }
    }
    return [...out];
  }

  /** Replaces `owner`'s contribution; touches only the names either version has. */
  private swap(owner: string, next: Contribution | undefined): void {
    const prev = this.contrib.get(owner);
    if (!prev && !next) return;
    if (prev && next && sameContribution(prev, next)) return;
    if (prev) {
      for (const n of prev.names) this.entries.get(n)!.refs--;
      for (const n of prev.records.keys()) {
        const e = this.entries.get(n)!;
        e.owners = e.owners!.length === 1 ? null : e.owners!.filter(([o]) => o !== owner);
      }
      for (const [rev, cand] of prev.ptr) {
        const cands = this.ptrCands.get(rev)!;
        if (cands.length === 1) this.ptrCands.delete(rev);
        else cands.splice(cands.indexOf(cand), 1);
      }
      this.contrib.delete(owner);
    }
    if (next) {
      for (const n of next.names) {
        const e = this.entries.get(n);
        if (e) e.refs++;
        else this.entries.set(n, { refs: 1, owners: null });
      }
      for (const [n, node] of next.records) {
        const e = this.entries.get(n)!;
        if (!e.owners) e.owners = [[owner, node]];
        else {
          e.owners.push([owner, node]);
          e.owners.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
        }
      }
      for (const [rev, cand] of next.ptr) {
        const cands = this.ptrCands.get(rev);
        if (!cands) this.ptrCands.set(rev, [cand]);
        else cands.push(cand);
      }
      this.contrib.set(owner, next);
    }
    const touch = (n: string): void => {
      this.merge(n);
      this.onTouch?.(n);
    };
    const touchPtr = (r: string): void => {
      const cands = this.ptrCands.get(r);
      if (!cands) this.ptr.delete(r);
      else {
        let best = cands[0]!;
        for (const c of cands) if (c < best) best = c;
        this.ptr.set(r, best.slice(best.indexOf("\t") + 1));
      }
      this.onTouch?.(r);
    };
    if (prev && next) {
      const names = new Set([...prev.names, ...next.names]);
      for (const n of names) touch(n);
      const revs = new Set([...prev.ptr.map(([r]) => r), ...next.ptr.map(([r]) => r)]);
      for (const r of revs) touchPtr(r);
    } else {
      const c = (prev ?? next)!;
      for (const n of c.names) touch(n);
      for (let i = 0; i < c.ptr.length; i++) if (i === 0 || c.ptr[i]![0] !== c.ptr[i - 1]![0]) touchPtr(c.ptr[i]![0]);
    }
  }

  /** Recomputes the visible records of one name from its owners. */
  private merge(name: string): void {
    const e = this.entries.get(name);
    if (!e || e.refs === 0) {
      this.entries.delete(name);
      this.names.delete(name);
      return;
    }
    const owners = e.owners;
    if (!owners) {
      this.names.set(name, EMPTY);
      return;
    }
    if (owners.length === 1) {
      this.names.set(name, owners[0]![1]);
      return;
    }
    const m = newNode();
    for (const [, n] of owners) {
      for (const ip of n.a) addIP(m, ip);
      for (const ip of n.aaaa) addIP(m, ip);
      m.srv.push(...n.srv);
      if (n.cname !== undefined && m.cname === undefined) m.cname = n.cname;
      if (n.txt !== undefined && m.txt === undefined) m.txt = n.txt;
      if (n.apex) m.apex = true;
    }
    this.names.set(name, m);
  }

  /** The records of one Service object, with the EndpointSlices of its name in name order. */
  private serviceRecords(svc: Service): Contribution | undefined {
    const name = (svc.metadata.name ?? "").toLowerCase();
    const ns = (svc.metadata.namespace ?? "default").toLowerCase();
    if (!name || !svc.spec) return undefined;
    const base = `${name}.${ns}.svc.${this.zone}`;
    const spec = svc.spec;
    const records = new Map<string, Node>();
    const ptr: Array<[string, string]> = [];
    const node = (n: string): Node => {
      let r = records.get(n);
      if (!r) records.set(n, (r = newNode()));
      return r;
    };
    const done = (): Contribution | undefined => {
      if (records.size === 0) return undefined;
      ptr.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0));
      const unique = ptr.filter((p, i) => i === 0 || p[0] !== ptr[i - 1]![0] || p[1] !== ptr[i - 1]![1]);
      return { records, names: this.namesOf(records), ptr: unique };
    };
    if (spec.type === "ExternalName") {
      if (spec.externalName) node(base).cname = spec.externalName.replace(/\.$/, "").toLowerCase();
      return done();
    }
    const ports = (spec.ports ?? []).filter((p) => p.name);
    if (spec.clusterIP && spec.clusterIP !== "None") {
      const n = node(base);
      const ips = spec.clusterIPs && spec.clusterIPs.length > 0 ? spec.clusterIPs : [spec.clusterIP];
      for (const ip of ips) {
        addIP(n, ip);
        ptr.push([reverseName(ip), `0\t${base}`]);
      }
      for (const p of ports) {
        node(`_${p.name!.toLowerCase()}._${(p.protocol ?? "TCP").toLowerCase()}.${base}`).srv.push({ priority: 0, weight: 100, port: p.port, target: base });
      }
      return done();
    }
    if (spec.clusterIP !== "None") return undefined;
    // headless: the ready (or, with publishNotReadyAddresses, all) endpoints
    const sliceKeys = [...(this.slicesByRef.get(serviceRef(svc.metadata.namespace, svc.metadata.name ?? "")) ?? [])].sort();
    const srv = new Map<string, SrvData[]>();
    for (const k of sliceKeys) {
      const s = this.slices.get(k)!;
      if (s.addressType === "FQDN") continue;
      for (const ep of s.endpoints ?? []) {
        if (!spec.publishNotReadyAddresses && ep.conditions?.ready === false) continue;
        for (const ip of ep.addresses ?? []) {
          if (!net.isIP(ip)) continue;
          const host = (ep.hostname ?? ip.replace(/[.:]/g, "-")).toLowerCase();
          const fqdn = `${host}.${base}`;
          addIP(node(base), ip);
          addIP(node(fqdn), ip);
          ptr.push([reverseName(ip), `1\t${fqdn}`]);
          for (const p of ports) {
            const proto = p.protocol ?? "TCP";
            const sp = (s.ports ?? []).find((x) => (x.name ?? "") === p.name && (x.protocol ?? "TCP") === proto);
            if (!sp || sp.port === undefined) continue;
            const owner = `_${p.name!.toLowerCase()}._${proto.toLowerCase()}.${base}`;
            const list = srv.get(owner) ?? [];
            if (!list.some((r) => r.target === fqdn && r.port === sp.port)) list.push({ priority: 0, weight: 0, port: sp.port, target: fqdn });
            srv.set(owner, list);
          }
          break; // one address per endpoint (upstream allows exactly one)
        }
      }
    }
    for (const [owner, list] of srv) {
      const w = Math.max(1, Math.floor(100 / list.length));
      node(owner).srv.push(...list.map((r) => ({ ...r, weight: w })));
    }
    return done();
  }
}

export class DnsServer {
  readonly zone: string;
  readonly ttl: number;
  readonly upstreams: Upstream[];
  private readonly address: string;
  private wantPort: number;
  private udp: dgram.Socket | null = null;
  private tcp: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  private readonly services: Informer;
  private readonly slices: Informer;
  private syncedKinds = 0;
  private index: ZoneIndex | null = null;
  private readonly cacheMax: number;
  /** Encoded local answers by question (see parseSimpleQuery), oldest first. */
  private readonly cache = new Map<string, CachedAnswer>();
  /** Lower-cased name → keys of the cached answers that depend on it. */
  private readonly cacheByName = new Map<string, string[]>();
  private readonly queryCells = new Map<string, { n: number }>();
  private readonly responseCells = new Map<string, { n: number }>();
  private readonly counters: DnsCounters = { queries: {}, responses: {}, udp: 0, tcp: 0, truncated: 0, forwarded: 0, malformed: 0, dropped: 0 };

  constructor(private readonly opts: DnsServerOptions) {
    this.zone = (opts.zone ?? DEFAULT_ZONE).replace(/\.$/, "").toLowerCase();
    this.ttl = opts.ttl ?? DEFAULT_TTL;
    this.upstreams = opts.upstreams ?? [];
    this.address = opts.address ?? "127.0.0.1";
    this.wantPort = opts.port ?? 53;
    this.cacheMax = opts.answerCache ?? DEFAULT_ANSWER_CACHE;
    const onSynced = (): void => {
      this.syncedKinds++;
      this.setIndex(null);
      if (this.synced) this.currentIndex();
    };
    // Before the first full sync there is no index; after it, every change is applied to the
    // index in place (only that Service's names change) and drops only the cached answers of
    // the names it touched.
    this.services = new Informer(opts.source, "Service", { onChange: (old, cur) => this.index?.applyService(old, cur), onSynced });
    this.slices = new Informer(opts.source, "EndpointSlice", { onChange: (old, cur) => this.index?.applySlice(old, cur), onSynced });
  }

  /** Both informers delivered their first list. */
  get synced(): boolean {
    return this.syncedKinds >= 2;
  }

  get port(): number {
    return this.wantPort;
  }

  /** Counters as a plain object (a copy): per query type, per rcode, transports, errors. */
  metrics(): DnsCounters {
    const m = { ...this.counters, queries: { ...this.counters.queries }, responses: { ...this.counters.responses } };
    for (const [k, c] of this.queryCells) if (c.n > 0) m.queries[k] = (m.queries[k] ?? 0) + c.n;
    for (const [k, c] of this.responseCells) if (c.n > 0) m.responses[k] = (m.responses[k] ?? 0) + c.n;
    return m;
  }

  /** Counter cells for answers from the cache (a cell per query type and per rcode). */
  private cell(cells: Map<string, { n: number }>, key: string): { n: number } {
    let c = cells.get(key);
    if (!c) cells.set(key, (c = { n: 0 }));
    return c;
  }

  /** Binds UDP and TCP, then starts the informers (queries before the first sync get SERVFAIL). */
  async start(): Promise<void> {
    await this.listen();
    await Promise.all([this.services.start(), this.slices.start()]);
  }

  /** Binds UDP and TCP only (start() does it too); queries get SERVFAIL until start() syncs. */
  async listen(): Promise<void> {
    if (this.udp) return;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.bind();
        break;
      } catch (e) {
        this.closeSockets();
        if (this.opts.port !== 0 || attempt >= 20) throw e;
        this.wantPort = 0;
      }
    }
  }

  private async bind(): Promise<void> {
    const family = net.isIPv6(this.address) ? "udp6" : "udp4";
    // Answers go back to the address a query came from, always an IP: resolve it in place
    // (the default lookup defers every send by a tick).
    const udp = dgram.createSocket({ type: family, lookup: literalLookup });
    this.udp = udp;
    udp.on("error", () => {
      /* counted per message; never fatal */
    });
    udp.on("message", (msg, rinfo) => {
      this.counters.udp++;
      const cached = this.fromCache(msg, "udp");
      if (cached) {
        udp.send(cached, rinfo.port, rinfo.address);
        return;
      }
      this.decodeAndAnswer(msg, "udp")
        .then((resp) => {
          if (resp) udp.send(resp, rinfo.port, rinfo.address);
        })
        .catch(() => {
          this.counters.dropped++;
        });
    });
    await new Promise<void>((resolve, reject) => {
      udp.once("error", reject);
      udp.bind(this.wantPort, this.address, () => {
        udp.off("error", reject);
        resolve();
      });
    });
    this.wantPort = udp.address().port;
    const tcp = net.createServer((sock) => this.onTcp(sock));
    this.tcp = tcp;
    await new Promise<void>((resolve, reject) => {
      tcp.once("error", reject);
      tcp.listen(this.wantPort, this.address, () => {
        tcp.off("error", reject);
        resolve();
      });
    });
    tcp.on("error", () => {});
  }

  private closeSockets(): void {
    try {
      this.udp?.close();
    } catch {
      /* already closed */
    }
    this.udp = null;
    this.tcp?.close();
    this.tcp = null;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  async stop(): Promise<void> {
    this.services.stop();
    this.slices.stop();
    const tcp = this.tcp;
    this.closeSockets();
    if (tcp) await new Promise<void>((r) => tcp.close(() => r()));
  }

  private onTcp(sock: net.Socket): void {
    this.sockets.add(sock);
    sock.setTimeout(30_000, () => sock.destroy());
    sock.on("error", () => sock.destroy());
    sock.on("close", () => this.sockets.delete(sock));
    let buf = Buffer.alloc(0);
    sock.on("data", (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2) {
        const len = buf.readUInt16BE(0);
        if (buf.length < 2 + len) break;
        const msg = buf.subarray(2, 2 + len);
        buf = buf.subarray(2 + len);
        this.counters.tcp++;
        this.handle(msg, "tcp")
          .then((resp) => {
            if (!resp || sock.destroyed) return;
            const hdr = Buffer.alloc(2);
            hdr.writeUInt16BE(resp.length);
            sock.write(Buffer.concat([hdr, resp]));
          })
          .catch(() => {
            this.counters.dropped++;
          });
      }
    });
  }

  private count(map: Record<string, number>, key: string): void {
    map[key] = (map[key] ?? 0) + 1;
  }

  /** One query in wire format → the response in wire format, or null to drop it. */
  async handle(msg: Buffer, transport: "udp" | "tcp"): Promise<Buffer | null> {
    return this.fromCache(msg, transport) ?? this.decodeAndAnswer(msg, transport);
  }

  /**
   * An ordinary query for a local name, answered from the answer cache (filled on a miss): the
   * cached response with the query's ID, or its truncated form when it does not fit. Null when
   * the full path decides (anything unusual, names to forward, before the first sync).
   */
  private fromCache(msg: Buffer, transport: "udp" | "tcp"): Buffer | null {
    if (this.cacheMax <= 0 || !this.synced) return null;
    const p = parseSimpleQuery(msg);
    if (!p) return null;
    const e = this.cache.get(p.key) ?? this.fillCache(msg, p.key);
    if (!e) return null;
    e.queries.n++;
    const limit = transport === "tcp" ? 65535 : p.opt ? Math.max(512, p.udpSize || 512) : 512;
    let body = e.full;
    if (body.length > limit) {
      this.counters.truncated++;
      body = e.truncated!;
    }
    e.responses.n++;
    const out = Buffer.allocUnsafe(body.length);
    body.copy(out);
    out[0] = p.id >> 8;
    out[1] = p.id & 0xff;
    return out;
  }

  private fillCache(msg: Buffer, key: string): CachedAnswer | undefined {
    let q: DecodedPacket;
    try {
      q = dnsPacket.decode(msg);
    } catch {
      return undefined;
    }
    const question = q.questions?.[0];
    if (q.questions?.length !== 1 || !question || typeof question.name !== "string") return undefined;
    const local = this.answer(question);
    if (local === "forward") return undefined;
    const opt = (q.additionals ?? []).find((a): a is OptAnswer => a.type === "OPT");
    let parts: { full: Buffer; truncated: Buffer | null };
    try {
      parts = this.encodeLocal(q, question, local, opt);
    } catch {
      return undefined;
    }
    const name = question.name.replace(/\.$/, "").toLowerCase();
    const deps = [name];
    for (const a of local.answers) if (a.type === "SRV" && !deps.includes(a.data.target)) deps.push(a.data.target);
    // Copies in Node's shared buffer pool: dns-packet's buffers each hold their own ArrayBuffer.
    const e: CachedAnswer = {
      full: pooled(parts.full),
      truncated: parts.truncated && pooled(parts.truncated),
      queries: this.cell(this.queryCells, String(question.type)),
      responses: this.cell(this.responseCells, local.rcode),
      deps,
    };
    if (this.cache.size >= this.cacheMax) this.evict(this.cache.keys().next().value!);
    this.cache.set(key, e);
    for (const d of deps) {
      const keys = this.cacheByName.get(d);
      if (!keys) this.cacheByName.set(d, [key]);
      else keys.push(key);
    }
    return e;
  }

  private evict(key: string): void {
    const e = this.cache.get(key);
    if (!e) return;
    this.cache.delete(key);
    for (const d of e.deps) {
      const keys = this.cacheByName.get(d);
      if (!keys) continue;
      const i = keys.indexOf(key);
      if (i >= 0) keys.splice(i, 1);
      if (keys.length === 0) this.cacheByName.delete(d);
    }
  }

  /** Drops the cached answers that depend on `name` (the index changed it). */
  private uncache(name: string): void {
    const keys = this.cacheByName.get(name);
    if (!keys) return;
    for (const k of [...keys]) this.evict(k);
  }

  /** Entries in the answer cache (for tests and the benchmark). */
  get cachedAnswers(): number {
    return this.cache.size;
  }

  private async decodeAndAnswer(msg: Buffer, transport: "udp" | "tcp"): Promise<Buffer | null> {
    if (msg.length < 12) {
      this.counters.malformed++;
      this.counters.dropped++;
      return null;
    }
    const id = msg.readUInt16BE(0);
    const hflags = msg.readUInt16BE(2);
    if (hflags & 0x8000) {
      // a response: never answer one (no reflection loops)
      this.counters.dropped++;
      return null;
    }
    let q: DecodedPacket;
    try {
      q = dnsPacket.decode(msg);
    } catch {
      this.counters.malformed++;
      return this.bare(id, hflags, RCODE.FORMERR);
    }
    const opcode = (hflags >> 11) & 0xf;
    if (opcode !== 0) return this.bare(id, hflags, RCODE.NOTIMP);
    const questions = q.questions ?? [];
    if (questions.length !== 1 || !questions[0] || typeof questions[0].name !== "string") {
      this.counters.malformed++;
      return this.bare(id, hflags, RCODE.FORMERR);
    }
    const question = questions[0];
    this.count(this.counters.queries, String(question.type));
    const opt = (q.additionals ?? []).find((a): a is OptAnswer => a.type === "OPT");
    const limit = transport === "tcp" ? 65535 : opt ? Math.max(512, opt.udpPayloadSize || 512) : 512;

    const local = this.answer(question);
    if (local === "forward") {
      if (this.upstreams.length === 0) return this.encode(q, question, { rcode: "REFUSED", answers: [], authorities: [], additionals: [], aa: false }, opt, limit);
      this.counters.forwarded++;
      const resp = await this.forward(msg, transport);
      if (resp) {
        this.count(this.counters.responses, RCODE_NAMES[resp.readUInt16BE(2) & 0xf] ?? `RCODE_${resp.readUInt16BE(2) & 0xf}`);
        return resp;
      }
      return this.encode(q, question, { rcode: "SERVFAIL", answers: [], authorities: [], additionals: [], aa: false }, opt, limit);
    }
    return this.encode(q, question, local, opt, limit);
  }

  /** A header-only response (FORMERR, NOTIMP) for a query that could not be (fully) read. */
  private bare(id: number, hflags: number, rcode: number): Buffer {
    this.count(this.counters.responses, RCODE_NAMES[rcode]!);
    const b = Buffer.alloc(12);
    b.writeUInt16BE(id, 0);
    b.writeUInt16BE(0x8000 | (hflags & 0x7800) | (hflags & 0x0100) | rcode, 2);
    return b;
  }

  /**
   * A local answer in wire format: whole, and (when it is longer than the smallest UDP limit,
   * 512) emptied with TC set, for clients whose limit it exceeds — they retry over TCP. Throws
   * when dns-packet cannot encode it.
   */
  private encodeLocal(q: DecodedPacket, question: Question, r: LocalAnswer, opt: OptAnswer | undefined): { full: Buffer; truncated: Buffer | null } {
    const rd = (q.flags ?? 0) & dnsPacket.RECURSION_DESIRED;
    const flags = rd | (r.aa ? dnsPacket.AUTHORITATIVE_ANSWER : 0) | (this.upstreams.length > 0 ? dnsPacket.RECURSION_AVAILABLE : 0) | RCODE[r.rcode];
    const optRR: OptAnswer[] = opt ? [{ type: "OPT", name: ".", udpPayloadSize: SERVER_UDP_SIZE, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }] : [];
    const packet: Packet = { type: "response", id: q.id, flags, questions: [question], answers: r.answers, authorities: r.authorities, additionals: [...r.additionals, ...optRR] };
    const full = dnsPacket.encode(packet);
    const truncated = full.length > 512 ? dnsPacket.encode({ ...packet, flags: flags | dnsPacket.TRUNCATED_RESPONSE, answers: [], authorities: [], additionals: optRR }) : null;
    return { full, truncated };
  }

  private encode(q: DecodedPacket, question: Question, r: LocalAnswer, opt: OptAnswer | undefined, limit: number): Buffer {
    let parts: { full: Buffer; truncated: Buffer | null };
    try {
      parts = this.encodeLocal(q, question, r, opt);
    } catch {
      this.counters.malformed++;
      return this.bare(q.id ?? 0, (q.flags ?? 0) & 0x7fff, RCODE.FORMERR);
    }
    let out = parts.full;
    if (out.length > limit) {
      this.counters.truncated++;
      out = parts.truncated!;
    }
    this.count(this.counters.responses, r.rcode);
    return out;
  }

  private currentIndex(): ZoneIndex {
    if (!this.index) this.setIndex(new ZoneIndex(this.zone, this.services.cache.values(), this.slices.cache.values()));
    return this.index!;
  }

  private setIndex(idx: ZoneIndex | null): void {
    if (this.index) this.index.onTouch = null;
    this.index = idx;
    this.cache.clear();
    this.cacheByName.clear();
    if (idx) idx.onTouch = (name) => this.uncache(name);
  }

  private soa(): Answer {
    return {
      type: "SOA",
      name: this.zone,
      ttl: this.ttl,
      class: "IN",
      data: { mname: `ns.dns.${this.zone}`, rname: `hostmaster.${this.zone}`, serial: 1, refresh: 7200, retry: 1800, expire: 86400, minimum: this.ttl },
    };
  }

  /**
   * The local answer for a question, or "forward" for names tapvip is not authoritative for;
   * from the live index, or from `index` (tests compare with a fresh full build).
   */
  answer(question: Question, index?: ZoneIndex): LocalAnswer | "forward" {
    const asked = question.name;
    const name = asked.replace(/\.$/, "").toLowerCase();
    const type: string = question.type;
    const cls = question.class ?? "IN";
    const inZone = name === this.zone || name.endsWith(`.${this.zone}`);
    const isReverse = name.endsWith(".in-addr.arpa") || name.endsWith(".ip6.arpa");
    if (!inZone && !isReverse) return "forward";
    if (cls !== "IN" && cls !== "ANY") return inZone ? { rcode: "REFUSED", answers: [], authorities: [], additionals: [], aa: false } : "forward";
    if (!this.synced) return inZone ? { rcode: "SERVFAIL", answers: [], authorities: [], additionals: [], aa: false } : "forward";
    const idx = index ?? this.currentIndex();
    const ttl = this.ttl;
    if (isReverse) {
      const target = idx.ptr.get(name);
      if (!target) return "forward";
      const answers: Answer[] = type === "PTR" || type === "ANY" ? [{ type: "PTR", name: asked, ttl, class: "IN", data: target }] : [];
      return { rcode: "NOERROR", answers, authorities: [], additionals: [], aa: true };
    }
    const node = idx.names.get(name);
    if (!node) return { rcode: "NXDOMAIN", answers: [], authorities: [this.soa()], additionals: [], aa: true };
    const answers: Answer[] = [];
    const additionals: Answer[] = [];
    const want = (t: string): boolean => type === t || type === "ANY";
    if (node.cname) {
      answers.push({ type: "CNAME", name: asked, ttl, class: "IN", data: node.cname });
    } else {
      if (want("A")) for (const ip of node.a) answers.push({ type: "A", name: asked, ttl, class: "IN", data: ip });
      if (want("AAAA")) for (const ip of node.aaaa) answers.push({ type: "AAAA", name: asked, ttl, class: "IN", data: ip });
      if (want("SRV")) {
        const extra = new Set<string>();
        for (const s of node.srv) {
          answers.push({ type: "SRV", name: asked, ttl, class: "IN", data: s });
          const t = idx.names.get(s.target);
          if (!t || extra.has(s.target)) continue;
          extra.add(s.target);
          for (const ip of t.a) additionals.push({ type: "A", name: s.target, ttl, class: "IN", data: ip });
          for (const ip of t.aaaa) additionals.push({ type: "AAAA", name: s.target, ttl, class: "IN", data: ip });
        }
      }
      if (want("TXT") && node.txt) answers.push({ type: "TXT", name: asked, ttl, class: "IN", data: node.txt });
      if (node.apex && want("SOA")) answers.push(this.soa());
      if (node.apex && want("NS")) answers.push({ type: "NS", name: asked, ttl, class: "IN", data: `ns.dns.${this.zone}` });
    }
    return { rcode: "NOERROR", answers, authorities: answers.length === 0 ? [this.soa()] : [], additionals, aa: true };
  }

  private async forward(msg: Buffer, transport: "udp" | "tcp"): Promise<Buffer | null> {
    const timeout = this.opts.upstreamTimeoutMs ?? 2000;
    for (const up of this.upstreams) {
      try {
        const resp = transport === "tcp" ? await tcpExchange(up, msg, timeout) : await udpExchange(up, msg, timeout);
        if (resp && resp.length >= 12 && resp.readUInt16BE(0) === msg.readUInt16BE(0)) return resp;
      } catch {
        /* next upstream */
      }
    }
    return null;
  }
}

interface CachedAnswer {
  full: Buffer;
  truncated: Buffer | null;
  /** The counters of its query type and rcode. */
  queries: { n: number };
  responses: { n: number };
  /** Lower-cased names the answer depends on: the question's, and SRV targets (additionals). */
  deps: string[];
}

/**
 * The cache key of an ordinary query — one question, no answer or authority records, at most an
 * OPT record with well-formed options dns-packet decodes without interpretation — or null for
 * anything else. The key holds the question's bytes as sent (so the name's case is kept, as the
 * response echoes it), RD (echoed) and whether EDNS is used (the response carries OPT then);
 * nothing else in such a query changes the response but its ID and the size limit.
 */
export function parseSimpleQuery(msg: Buffer): { key: string; id: number; opt: boolean; udpSize: number } | null {
  const len = msg.length;
  if (len < 17) return null;
  const flags = (msg[2]! << 8) | msg[3]!;
  if (flags & 0xf800) return null; // a response, or an opcode other than QUERY
  if (msg[4] !== 0 || msg[5] !== 1 || msg[6] !== 0 || msg[7] !== 0 || msg[8] !== 0 || msg[9] !== 0 || msg[10] !== 0 || msg[11]! > 1) return null;
  let p = 12;
  for (;;) {
    if (p >= len) return null;
    const l = msg[p]!;
    if (l === 0) break;
    if (l > 63) return null; // a compression pointer or a reserved label type
    p += l + 1;
  }
  if (p - 12 > 254) return null;
  const qEnd = p + 5;
  if (qEnd > len) return null;
  let opt = false;
  let udpSize = 0;
  if (msg[11] === 1) {
    // OPT: root owner, TYPE 41, CLASS = UDP payload size, TTL = extended rcode/version/flags
    if (qEnd + 11 > len || msg[qEnd] !== 0 || msg[qEnd + 1] !== 0 || msg[qEnd + 2] !== 41) return null;
    const rdlen = (msg[qEnd + 9]! << 8) | msg[qEnd + 10]!;
    if (qEnd + 11 + rdlen !== len) return null;
    for (let o = qEnd + 11; o < len; ) {
      if (o + 4 > len) return null;
      const code = (msg[o]! << 8) | msg[o + 1]!;
      if (code === 8 || code === 11 || code === 14) return null; // options dns-packet parses further
      o += 4 + ((msg[o + 2]! << 8) | msg[o + 3]!);
      if (o > len) return null;
    }
    opt = true;
    udpSize = (msg[qEnd + 3]! << 8) | msg[qEnd + 4]!;
  } else if (qEnd !== len) return null;
  const key = (flags & 0x0100 ? "r" : "-") + (opt ? "e" : "-") + msg.toString("latin1", 12, qEnd);
  return { key, id: (msg[0]! << 8) | msg[1]!, opt, udpSize };
}

export interface LocalAnswer {
  rcode: RcodeName;
  answers: Answer[];
  authorities: Answer[];
  additionals: Answer[];
  aa: boolean;
}

function pooled(b: Buffer): Buffer {
  const out = Buffer.allocUnsafe(b.length);
  b.copy(out);
  return out;
}

/** dgram's lookup for addresses that are IP literals already. */
function literalLookup(address: string, family: unknown, cb?: unknown): void {
  const done = (typeof family === "function" ? family : cb) as (err: Error | null, address: string, family: number) => void;
  done(null, address, address.includes(":") ? 6 : 4);
}

function udpExchange(up: Upstream, msg: Buffer, timeoutMs: number): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const sock = dgram.createSocket(net.isIPv6(up.host) ? "udp6" : "udp4");
    const done = (b: Buffer | null): void => {
      clearTimeout(t);
      try {
        sock.close();
      } catch {
        /* closed */
      }
      resolve(b);
    };
    const t = setTimeout(() => done(null), timeoutMs);
    sock.on("error", () => done(null));
    sock.on("message", (m) => {
      if (m.length >= 12 && m.readUInt16BE(0) === msg.readUInt16BE(0)) done(m);
    });
    sock.send(msg, up.port, up.host);
  });
}

function tcpExchange(up: Upstream, msg: Buffer, timeoutMs: number): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const sock = net.connect(up.port, up.host);
    let buf = Buffer.alloc(0);
    const done = (b: Buffer | null): void => {
      clearTimeout(t);
      sock.destroy();
      resolve(b);
    };
    const t = setTimeout(() => done(null), timeoutMs);
    sock.on("error", () => done(null));
    sock.on("connect", () => {
      const hdr = Buffer.alloc(2);
      hdr.writeUInt16BE(msg.length);
      sock.write(Buffer.concat([hdr, msg]));
    });
    sock.on("data", (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) done(buf.subarray(2, 2 + buf.readUInt16BE(0)));
    });
    sock.on("close", () => done(null));
  });
}

// ------------------------------------------------------------------ wiring helpers

export interface DnsFlags {
  /** --dns ADDR:PORT (absent: no DNS server). */
  dns?: string;
  /** --cluster-domain ZONE (default cluster.local). */
  clusterDomain?: string;
  /** --dns-upstream IP:PORT,... */
  dnsUpstream?: string;
}

/** Starts the DNS server the flags ask for on `source`, or returns null without --dns. */
export async function startDnsFromFlags(flags: DnsFlags, source: ObjectSource, log?: (l: string) => void): Promise<DnsServer | null> {
  if (!flags.dns) return null;
  const { host, port } = parseHostPort(flags.dns, 53);
  const s = new DnsServer({ source, address: host, port, zone: flags.clusterDomain, upstreams: parseUpstreams(flags.dnsUpstream) });
  await s.start();
  log?.(`tapvip: DNS for ${s.zone} on ${host}:${s.port} (udp+tcp)${s.upstreams.length ? `, forwarding to ${s.upstreams.map((u) => `${u.host}:${u.port}`).join(",")}` : ""}`);
  return s;
}

/** Usage lines for the flags above. */
export const DNS_FLAGS_USAGE = `  --dns ADDR:PORT            serve cluster DNS (UDP and TCP) on this address
  --cluster-domain ZONE      DNS zone (default ${DEFAULT_ZONE})
  --dns-upstream IP:PORT,... forward names outside the zone (default: none, REFUSED)`;

/** The parseArgs options for the flags above. */
export const DNS_PARSE_OPTIONS = {
  dns: { type: "string" },
  "cluster-domain": { type: "string" },
  "dns-upstream": { type: "string" },
} as const;

/**
 * Registers tapvip_dns_queries_total{type}, tapvip_dns_responses_total{rcode} and
 * tapvip_dns_events_total{event} (udp, tcp, truncated, forwarded, malformed, dropped) on a
 * prom-client registry, read from server.metrics() at scrape time.
 */
export function registerDnsMetrics(registry: Registry, server: DnsServer): void {
  const counter = (name: string, help: string, label: string, read: (m: DnsCounters) => Record<string, number>): void => {
    new Counter({
      name,
      help,
      labelNames: [label],
      registers: [registry],
      collect(this: Counter<string>) {
        this.reset();
        for (const [k, v] of Object.entries(read(server.metrics()))) this.inc({ [label]: k }, v);
      },
    });
  };
  counter("tapvip_dns_queries_total", "DNS queries by query type.", "type", (m) => m.queries);
  counter("tapvip_dns_responses_total", "DNS responses by rcode (forwarded answers by the upstream's rcode).", "rcode", (m) => m.responses);
  counter("tapvip_dns_events_total", "DNS transport and error events.", "event", (m) => ({
    udp: m.udp,
    tcp: m.tcp,
    truncated: m.truncated,
    forwarded: m.forwarded,
    malformed: m.malformed,
    dropped: m.dropped,
  }));
}
