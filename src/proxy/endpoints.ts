// Proxy-side endpoint handling (spec §5): condition reading, local/remote grouping,
// CategorizeEndpoints (cluster/local/internal/external sets), the empty-set verdict and the
// healthCheckNodePort HTTP response. Pure functions, no I/O.

import { ipv4ToU32OrNeg } from "../maps/codec.js";

export type EndpointInfo = {
  ip: string;
  port: number;
  nodeName?: string;
  ready?: boolean | null;
  serving?: boolean | null;
  terminating?: boolean | null;
  zone?: string;
};

export interface EndpointConditions {
  ready: boolean;
  serving: boolean;
  terminating: boolean;
}

/** §5 condition reading: ready nil → true, serving nil → true, terminating nil → false. */
export function readConditions(e: EndpointInfo): EndpointConditions {
  return {
    ready: e.ready ?? true,
    serving: e.serving ?? true,
    terminating: e.terminating ?? false,
  };
}

/** Local = the endpoint's nodeName equals this node's name (an unset nodeName is never local). */
export function isLocalEndpoint(e: EndpointInfo, nodeName: string): boolean {
  return e.nodeName !== undefined && e.nodeName !== "" && e.nodeName === nodeName;
}

/** Usable as a fallback: not ready, but still serving while terminating. */
function isServingTerminating(c: EndpointConditions): boolean {
  return !c.ready && c.serving && c.terminating;
}

// ---------------------------------------------------------------------------------------
// Deterministic ordering and de-duplication by (ip, port)

function expandIPv6(ip: string): string | null {
  let s = ip.toLowerCase();
  const pct = s.indexOf("%");
  if (pct >= 0) s = s.slice(0, pct);
  // Embedded dotted IPv4 tail (e.g. ::ffff:10.0.0.1) → two hex groups.
  const lastColon = s.lastIndexOf(":");
  const tail = s.slice(lastColon + 1);
  if (tail.includes(".")) {
    const v4 = parseIPv4(tail);
    if (v4 === null) return null;
    const hi = ((v4[0]! << 8) | v4[1]!).toString(16);
    const lo = ((v4[2]! << 8) | v4[3]!).toString(16);
    s = `${s.slice(0, lastColon + 1)}${hi}:${lo}`;
  }
  const halves = s.split("::");
  if (halves.length > 2) return null;
  const head = halves[0] === "" ? [] : halves[0]!.split(":");
  const rest = halves.length === 2 ? (halves[1] === "" ? [] : halves[1]!.split(":")) : [];
  let groups: string[];
  if (halves.length === 2) {
    const fill = 8 - head.length - rest.length;
    if (fill < 1) return null;
    groups = [...head, ...new Array<string>(fill).fill("0"), ...rest];
  } else {
    groups = head;
  }
  if (groups.length !== 8) return null;
  let out = "";
  for (const g of groups) {
    if (!/^[0-9a-f]{1,4}$/.test(g)) return null;
    out += g.padStart(4, "0");
  }
  return out;
}

function parseIPv4(ip: string): number[] | null {
  const parts = ip.split(".");
  if (parts.length !== 4) return null;
  const out: number[] = [];
  for (const p of parts) {
    if (!/^[0-9]{1,3}$/.test(p)) return null;
    const v = Number(p);
    if (v > 255) return null;
    out.push(v);
  }
  return out;
}

/**
 * A canonical key for an address that sorts numerically: IPv4 before IPv6 before anything
 * unparseable; equal keys mean the same address (so "::1" and "0::1" de-duplicate).
 */
export function ipSortKey(ip: string): string {
  const v4 = parseIPv4(ip);
  if (v4 !== null) return "4" + v4.map((o) => o.toString().padStart(3, "0")).join("");
  if (ip.includes(":")) {
    const v6 = expandIPv6(ip);
    if (v6 !== null) return "6" + v6;
  }
  return "9" + ip;
}

/** ipSortKey per address string, computed once: sorts compare the same addresses many times. */
const sortKeys = new Map<string, string>();
function cachedSortKey(ip: string): string {
  let k = sortKeys.get(ip);
  if (k === undefined) {
    if (sortKeys.size > 1 << 20) sortKeys.clear(); // bound the cache; keys are cheap to rebuild
    k = ipSortKey(ip);
    sortKeys.set(ip, k);
  }
  return k;
}

/** Total order on endpoints by (ip, port). */
export function compareEndpoints(a: EndpointInfo, b: EndpointInfo): number {
  const ka = cachedSortKey(a.ip);
  const kb = cachedSortKey(b.ip);
  if (ka !== kb) return ka < kb ? -1 : 1;
  return a.port - b.port;
}

/**
 * Remove duplicate (ip, port) endpoints (e.g. the same endpoint listed by two slices).
 * The first occurrence wins, except that a local duplicate replaces a non-local one
 * (upstream favours isLocal=true when overlapping endpoints disagree). Output is sorted.
 */
export function dedupeEndpoints(eps: readonly EndpointInfo[], nodeName: string): EndpointInfo[] {
  const byKey = new Map<string, EndpointInfo>();
  for (const e of eps) {
    const key = `${cachedSortKey(e.ip)}/${e.port}`;
    const prev = byKey.get(key);
    if (prev === undefined || (isLocalEndpoint(e, nodeName) && !isLocalEndpoint(prev, nodeName))) {
      byKey.set(key, e);
    }
  }
  return [...byKey.values()].sort(compareEndpoints);
}

// ---------------------------------------------------------------------------------------
// Slot order for the maps (IPv4), on columns of numbers: no object per endpoint

/** Endpoint condition and placement bits in EndpointColumns.flags. */
export const EP_READY = 1;
export const EP_SERVING = 2;
export const EP_TERMINATING = 4;
export const EP_LOCAL = 8;

/**
 * The IPv4 endpoints of one service port as columns (address as a host-order u32, port,
 * condition bits, the address as written), filled from EndpointInfo objects or straight
 * from EndpointSlices (model.ts) — the programmer orders 100k endpoints per full sync and
 * an object each cost more than the rest of the work. Reused: reset() before each port.
 */
export class EndpointColumns {
  n = 0;
  addr = new Float64Array(64);
  port = new Int32Array(64);
  flags = new Uint8Array(64);
  ip: string[] = [];

  reset(): void {
    this.n = 0;
  }

  private grow(): void {
    const cap = this.addr.length * 2;
    const a = new Float64Array(cap);
    a.set(this.addr);
    const p = new Int32Array(cap);
    p.set(this.port);
    const f = new Uint8Array(cap);
    f.set(this.flags);
    this.addr = a;
    this.port = p;
    this.flags = f;
  }

  /**
   * Adds one endpoint with §5's condition reading (ready and serving default to true,
   * terminating to false); anything but an IPv4 address with a port in 0..65535 is left out.
   */
  push(ip: string, port: number, nodeName: string | undefined, ready: boolean | null | undefined,
    serving: boolean | null | undefined, terminating: boolean | null | undefined, selfNode: string): void {
    const a = typeof ip === "string" ? ipv4ToU32OrNeg(ip) : -1;
    if (a < 0 || !(port >= 0 && port <= 65535) || port !== Math.floor(port)) return;
    const i = this.n;
    if (i === this.addr.length) this.grow();
    this.addr[i] = a;
    this.port[i] = port;
    this.flags[i] = ((ready ?? true) ? EP_READY : 0) | ((serving ?? true) ? EP_SERVING : 0) | ((terminating ?? false) ? EP_TERMINATING : 0)
      | (nodeName !== undefined && nodeName !== "" && nodeName === selfNode ? EP_LOCAL : 0);
    this.ip[i] = ip;
    this.n = i + 1;
  }

  pushInfo(e: EndpointInfo, selfNode: string): void {
    this.push(e.ip, e.port, e.nodeName, e.ready, e.serving, e.terminating, selfNode);
  }
}

/**
 * Columns in the order the services map's slot groups take them: ready local, ready remote,
 * serving-terminating local, serving-terminating remote; each group sorted by (address,
 * port) and de-duplicated as dedupeEndpoints does (the first occurrence wins, a local
 * duplicate replaces a non-local one). The same result as groupEndpoints restricted to IPv4.
 * The arrays are reused by the next call: read them before calling again.
 */
export interface SlotOrder {
  /** Slots filled (the sum of the four group sizes). */
  count: number;
  readyLocal: number;
  readyRemote: number;
  terminatingLocal: number;
  terminatingRemote: number;
  /** Per slot: the endpoint's row in the columns (or index in the input of slotOrderV4). */
  index: Int32Array;
  /** Per slot: its address as a host-order u32. */
  addr: Float64Array;
}

let cap = 0;
let keys = new Float64Array(0);
let rows = new Int32Array(0);
let group = new Int8Array(0);
const order: SlotOrder = { count: 0, readyLocal: 0, readyRemote: 0, terminatingLocal: 0, terminatingRemote: 0, index: new Int32Array(0), addr: new Float64Array(0) };
const counts = [0, 0, 0, 0];

function grow(n: number): void {
  if (n <= cap) return;
  cap = Math.max(n, cap * 2, 64);
  keys = new Float64Array(cap);
  rows = new Int32Array(cap);
  group = new Int8Array(cap);
  order.index = new Int32Array(cap);
  order.addr = new Float64Array(cap);
}

export function slotOrder(c: EndpointColumns): SlotOrder {
  const m = c.n;
  grow(m);
  for (let i = 0; i < m; i++) {
    keys[i] = c.addr[i]! * 65536 + c.port[i]!;
    rows[i] = i;
  }
  // Stable sort by (address, port): equal keys keep their input order.
  if (m <= 48) {
    for (let i = 1; i < m; i++) {
      const k = keys[i]!;
      const x = rows[i]!;
      let j = i - 1;
      while (j >= 0 && keys[j]! > k) {
        keys[j + 1] = keys[j]!;
        rows[j + 1] = rows[j]!;
        j--;
      }
      keys[j + 1] = k;
      rows[j + 1] = x;
    }
  } else {
    const perm = Array.from({ length: m }, (_, i) => i);
    const k0 = keys.slice(0, m);
    perm.sort((a, b) => k0[a]! - k0[b]! || a - b);
    for (let i = 0; i < m; i++) {
      keys[i] = k0[perm[i]!]!;
      rows[i] = perm[i]!;
    }
  }
  // One winner per run of equal keys, and its group (0..3, or -1: not usable).
  const flags = c.flags;
  counts[0] = counts[1] = counts[2] = counts[3] = 0;
  let u = 0;
  for (let i = 0; i < m; ) {
    let j = i + 1;
    while (j < m && keys[j] === keys[i]) j++;
    let w = rows[i]!;
    if (!(flags[w]! & EP_LOCAL)) {
      for (let k = i + 1; k < j; k++) {
        if (flags[rows[k]!]! & EP_LOCAL) {
          w = rows[k]!;
          break;
        }
      }
    }
    const f = flags[w]!;
    const local = (f & EP_LOCAL) !== 0;
    let g = -1;
    if (f & EP_READY) g = local ? 0 : 1;
    else if ((f & EP_SERVING) && (f & EP_TERMINATING)) g = local ? 2 : 3;
    rows[u] = w;
    group[u] = g;
    if (g >= 0) counts[g]!++;
    u++;
    i = j;
  }
  let s = 0;
  for (let g = 0; g < 4; g++) {
    if (counts[g] === 0) continue;
    for (let i = 0; i < u; i++) {
      if (group[i] !== g) continue;
      const r = rows[i]!;
      order.index[s] = r;
      order.addr[s] = c.addr[r]!;
      s++;
    }
  }
  order.count = s;
  order.readyLocal = counts[0]!;
  order.readyRemote = counts[1]!;
  order.terminatingLocal = counts[2]!;
  order.terminatingRemote = counts[3]!;
  return order;
}

const infoColumns = new EndpointColumns();
const infoRows: number[] = [];

/** slotOrder of EndpointInfo objects; `index` then points into `eps`. */
export function slotOrderV4(eps: readonly EndpointInfo[], nodeName: string): SlotOrder {
  infoColumns.reset();
  infoRows.length = 0;
  for (let i = 0; i < eps.length; i++) {
    const before = infoColumns.n;
    infoColumns.pushInfo(eps[i]!, nodeName);
    if (infoColumns.n > before) infoRows.push(i);
  }
  const o = slotOrder(infoColumns);
  for (let s = 0; s < o.count; s++) o.index[s] = infoRows[o.index[s]!]!;
  return o;
}

// ---------------------------------------------------------------------------------------
// Grouping and CategorizeEndpoints

export interface EndpointGroups {
  /** Ready endpoints on this node. */
  readyLocal: EndpointInfo[];
  /** Ready endpoints elsewhere (or with no nodeName). */
  readyRemote: EndpointInfo[];
  /** Not ready but serving && terminating, on this node. */
  terminatingLocal: EndpointInfo[];
  /** Not ready but serving && terminating, elsewhere. */
  terminatingRemote: EndpointInfo[];
}

/**
 * Split endpoints into ready / serving-terminating × local / remote. A ready endpoint is
 * ready even if it is also terminating (upstream checks ready first). Not-ready endpoints
 * that are not (serving && terminating) are dropped. Each group is sorted by (ip, port)
 * and de-duplicated.
 */
export function groupEndpoints(eps: readonly EndpointInfo[], nodeName: string): EndpointGroups {
  const groups: EndpointGroups = { readyLocal: [], readyRemote: [], terminatingLocal: [], terminatingRemote: [] };
  for (const e of dedupeEndpoints(eps, nodeName)) {
    const c = readConditions(e);
    const local = isLocalEndpoint(e, nodeName);
    if (c.ready) {
      (local ? groups.readyLocal : groups.readyRemote).push(e);
    } else if (isServingTerminating(c)) {
      (local ? groups.terminatingLocal : groups.terminatingRemote).push(e);
    }
  }
  return groups;
}

export interface TrafficPolicies {
  internalTrafficPolicyLocal: boolean;
  externalTrafficPolicyLocal: boolean;
}

export interface CategorizedEndpoints {
  /** All ready endpoints; if none, all serving+terminating ones. */
  clusterSet: EndpointInfo[];
  /** Local ready endpoints; if none, local serving+terminating ones. */
  localSet: EndpointInfo[];
  /** What ClusterIP traffic uses (localSet when internalTrafficPolicy Local). */
  internalSet: EndpointInfo[];
  /** What NodePort/LB/externalIP traffic from off-node uses (localSet when externalTrafficPolicy Local). */
  externalSet: EndpointInfo[];
  /** Any ready or serving+terminating endpoint anywhere: false means REJECT, not DROP. */
  hasAnyEndpoints: boolean;
}

/** §5 CategorizeEndpoints (no topology hints: every ready endpoint is in the cluster set). */
export function categorizeEndpoints(
  eps: readonly EndpointInfo[],
  nodeName: string,
  policies: TrafficPolicies,
): CategorizedEndpoints {
  const g = groupEndpoints(eps, nodeName);
  const allReady = [...g.readyLocal, ...g.readyRemote].sort(compareEndpoints);
  const allTerminating = [...g.terminatingLocal, ...g.terminatingRemote].sort(compareEndpoints);
  const clusterSet = allReady.length > 0 ? allReady : allTerminating;
  const localSet = g.readyLocal.length > 0 ? g.readyLocal : g.terminatingLocal;
  return {
    clusterSet,
    localSet,
    internalSet: policies.internalTrafficPolicyLocal ? localSet : clusterSet,
    externalSet: policies.externalTrafficPolicyLocal ? localSet : clusterSet,
    hasAnyEndpoints: clusterSet.length > 0,
  };
}

/** Where a packet comes from, as far as endpoint selection is concerned. */
export type TrafficSource =
  /** ClusterIP traffic (from pods or the node). */
  | "internal"
  /** NodePort / LoadBalancer / externalIP traffic arriving from off the node. */
  | "external"
  /** NodePort / LoadBalancer / externalIP traffic from this node or its pods. */
  | "external-from-node";

export type TrafficVerdict =
  | { action: "forward"; endpoints: EndpointInfo[] }
  /** No endpoints at all: ICMP port unreachable (TCP clients see connection refused). */
  | { action: "reject" }
  /** Endpoints exist, but none in the set this traffic may use (Local policy, none local). */
  | { action: "drop" };

/**
 * §5 packet-flow verdict for a categorized service. Traffic to an external address from this
 * node's own pods/host still uses the cluster set even with externalTrafficPolicy Local.
 */
export function trafficVerdict(cat: CategorizedEndpoints, source: TrafficSource): TrafficVerdict {
  if (!cat.hasAnyEndpoints) return { action: "reject" };
  const set =
    source === "internal" ? cat.internalSet : source === "external" ? cat.externalSet : cat.clusterSet;
  return set.length > 0 ? { action: "forward", endpoints: set } : { action: "drop" };
}

// ---------------------------------------------------------------------------------------
// healthCheckNodePort

/**
 * The count the health check reports: distinct IPs of local READY endpoints across all of a
 * service's ports (terminating endpoints never count; 10.0.0.1:80 and 10.0.0.1:443 count once).
 * Accepts one endpoint list or one list per service port.
 */
export function countLocalReadyEndpoints(
  eps: readonly EndpointInfo[] | readonly (readonly EndpointInfo[])[],
  nodeName: string,
): number {
  const ips = new Set<string>();
  const visit = (e: EndpointInfo): void => {
    if (readConditions(e).ready && isLocalEndpoint(e, nodeName)) ips.add(ipSortKey(e.ip));
  };
  for (const item of eps) {
    if (Array.isArray(item)) for (const e of item as readonly EndpointInfo[]) visit(e);
    else visit(item as EndpointInfo);
  }
  return ips.size;
}

export interface HealthCheckResponse {
  status: 200 | 503;
  headers: Record<string, string>;
  body: string;
}

/**
 * Response of the healthCheckNodePort server (any path). `localEndpoints` is the number of
 * local READY endpoints (see countLocalReadyEndpoints), so a node with only terminating
 * endpoints answers 503 while its traffic still flows. Like upstream, 200 also requires the
 * proxy itself to be healthy. Body is upstream's tab-indented JSON without a trailing newline.
 */
export function healthCheckResponse(
  namespace: string,
  name: string,
  localEndpoints: number,
  proxyHealthy: boolean,
): HealthCheckResponse {
  const count = Math.max(0, Math.trunc(localEndpoints));
  const body = [
    "{",
    '\t"service": {',
    `\t\t"namespace": ${JSON.stringify(namespace)},`,
    `\t\t"name": ${JSON.stringify(name)}`,
    "\t},",
    `\t"localEndpoints": ${count},`,
    `\t"serviceProxyHealthy": ${proxyHealthy ? "true" : "false"}`,
    "}",
  ].join("\n");
  return {
    status: count !== 0 && proxyHealthy ? 200 : 503,
    headers: {
      "Content-Type": "application/json",
      "X-Content-Type-Options": "nosniff",
      // Recent upstream also advertises the local endpoint count as a weight hint.
      "X-Load-Balancing-Endpoint-Weight": String(count),
    },
    body,
  };
}
