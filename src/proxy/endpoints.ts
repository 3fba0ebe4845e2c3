// Proxy-side endpoint handling (spec §5): condition reading, local/remote grouping,
// CategorizeEndpoints (cluster/local/internal/external sets), the empty-set verdict and the
// healthCheckNodePort HTTP response. Pure functions, no I/O.

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
