// The DNS benchmark's cluster and query mix (bench/dns.ts), deterministic from a seed:
//   - N Services over N/50 namespaces: 80 % ClusterIP with 1–3 named ports (http/https/metrics/
//     grpc/dns, TCP and UDP) and an EndpointSlice of 3 ready endpoints each (the DNS server keeps
//     them although only headless Services publish them), 15 % headless with 3 endpoints (half
//     StatefulSet-style with hostnames, half named after their IPs; one endpoint in ten not
//     ready), 5 % ExternalName;
//   - queries: 45 % A (ClusterIP names, headless names and endpoint names, ExternalName → CNAME),
//     20 % SRV for named ports, 15 % PTR for clusterIPs and headless endpoint IPs, 20 % names
//     that do not exist (what ndots:5 search-path expansion sends: external names and
//     FQDNs with a namespace's search suffix appended, unknown Services) → NXDOMAIN.

import { seededRandom } from "../src/store/allocators.js";
import type { EndpointSlice, Service, ServicePort } from "../src/store/types.js";
import type { StoredObject } from "../src/store/db.js";
import type { ObjectSource, ObjectList, Watch } from "../src/store/watch.js";

export const ZONE = "cluster.local";

export interface Zone {
  services: StoredObject[];
  slices: StoredObject[];
  counts: { clusterIP: number; headless: number; externalName: number; namespaces: number; endpoints: number };
  /** Names and types to ask, per kind of answer expected. */
  pools: { a: string[][]; srv: string[][]; ptr: string[][]; nx: string[][] };
}

const PORTS: Array<Pick<ServicePort, "name" | "port" | "protocol">> = [
  { name: "http", port: 80, protocol: "TCP" },
  { name: "https", port: 443, protocol: "TCP" },
  { name: "metrics", port: 9090, protocol: "TCP" },
  { name: "grpc", port: 50051, protocol: "TCP" },
  { name: "dns", port: 53, protocol: "UDP" },
];

const ip4 = (base: number, i: number): string => `${base >>> 24}.${(base >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`;

export function buildZone(n: number, seed = 7): Zone {
  const r = seededRandom(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const shuffle = <T>(xs: T[]): T[] => {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = Math.floor(r() * (i + 1));
      [xs[i], xs[j]] = [xs[j]!, xs[i]!];
    }
    return xs;
  };
  const services: StoredObject[] = [];
  const slices: StoredObject[] = [];
  const pools: Zone["pools"] = { a: [], srv: [], ptr: [], nx: [] };
  const counts = { clusterIP: 0, headless: 0, externalName: 0, namespaces: Math.max(1, Math.ceil(n / 50)), endpoints: 0 };
  let podIP = 0;
  const rev = (ip: string): string => `${ip.split(".").reverse().join(".")}.in-addr.arpa`;
  for (let i = 0; i < n; i++) {
    const ns = `ns-${i % counts.namespaces}`;
    const name = `${pick(["web", "api", "db", "cache", "auth", "search", "queue", "billing"])}-${i}`;
    const fqdn = `${name}.${ns}.svc.${ZONE}`;
    const ports = shuffle([...PORTS]).slice(0, 1 + Math.floor(r() * 3));
    const kind = r();
    const meta = { name, namespace: ns, uid: `uid-${i}`, resourceVersion: "1" };
    const endpoints = (hostnames: boolean) =>
      Array.from({ length: 3 }, (_, k) => ({
        addresses: [ip4(0x0af40000, podIP++)], // 10.244.0.0/16
        ...(hostnames ? { hostname: `${name}-${k}` } : {}),
        conditions: { ready: r() >= 0.1 },
      }));
    const slice = (eps: ReturnType<typeof endpoints>): EndpointSlice => ({
      apiVersion: "discovery.k8s.io/v1",
      kind: "EndpointSlice",
      metadata: { name: `${name}-abcde`, namespace: ns, labels: { "kubernetes.io/service-name": name }, resourceVersion: "1" },
      addressType: "IPv4",
      endpoints: eps,
      ports: ports.map((p) => ({ name: p.name, port: 8000 + p.port, protocol: p.protocol })),
    });
    if (kind < 0.05) {
      counts.externalName++;
      const svc: Service = { apiVersion: "v1", kind: "Service", metadata: meta, spec: { type: "ExternalName", externalName: `${name}.example.com` } };
      services.push(svc as unknown as StoredObject);
      pools.a.push([fqdn, "A"]);
    } else if (kind < 0.2) {
      counts.headless++;
      const eps = endpoints(r() < 0.5);
      const svc: Service = { apiVersion: "v1", kind: "Service", metadata: meta, spec: { type: "ClusterIP", clusterIP: "None", clusterIPs: ["None"], ports: ports.map((p) => ({ ...p })), selector: { app: name } } };
      services.push(svc as unknown as StoredObject);
      slices.push(slice(eps) as unknown as StoredObject);
      counts.endpoints += eps.length;
      pools.a.push([fqdn, "A"]);
      for (const ep of eps) {
        if (ep.conditions.ready === false) continue;
        const host = ep.hostname ?? ep.addresses[0]!.replaceAll(".", "-");
        pools.a.push([`${host}.${fqdn}`, "A"]);
        pools.ptr.push([rev(ep.addresses[0]!), "PTR"]);
      }
      for (const p of ports) pools.srv.push([`_${p.name}._${p.protocol!.toLowerCase()}.${fqdn}`, "SRV"]);
    } else {
      counts.clusterIP++;
      const vip = ip4(0x0a600000, i + 10); // 10.96.0.0/16
      const svc: Service = { apiVersion: "v1", kind: "Service", metadata: meta, spec: { type: "ClusterIP", clusterIP: vip, clusterIPs: [vip], ports: ports.map((p) => ({ ...p })), selector: { app: name } } };
      services.push(svc as unknown as StoredObject);
      const eps = endpoints(false);
      slices.push(slice(eps) as unknown as StoredObject);
      counts.endpoints += eps.length;
      pools.a.push([fqdn, "A"]);
      pools.ptr.push([rev(vip), "PTR"]);
      for (const p of ports) pools.srv.push([`_${p.name}._${p.protocol!.toLowerCase()}.${fqdn}`, "SRV"]);
    }
    // what a pod's resolver sends before the name that exists (ndots:5, search <ns>.svc.cluster.local …)
    if (i % 2 === 0) pools.nx.push([`${fqdn}.${ns}.svc.${ZONE}`, "A"]);
    else pools.nx.push([`${pick(["api.github.com", "registry.npmjs.org", "s3.amazonaws.com", "pypi.org"])}.${ns}.svc.${ZONE}`, "A"]);
    if (i % 5 === 0) pools.nx.push([`missing-${i}.${ns}.svc.${ZONE}`, pick(["A", "AAAA"])]);
  }
  return { services, slices, counts, pools };
}

export const MIX = { a: 0.45, srv: 0.2, ptr: 0.15, nx: 0.2 } as const;

/** `count` questions ("name TYPE", dnsperf's input format) drawn from the pools in MIX proportions. */
export function queryLines(z: Zone, count: number, seed = 11): string[] {
  const r = seededRandom(seed);
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const x = r();
    const pool = x < MIX.a ? z.pools.a : x < MIX.a + MIX.srv ? z.pools.srv : x < MIX.a + MIX.srv + MIX.ptr ? z.pools.ptr : z.pools.nx;
    const [name, type] = pool[Math.floor(r() * pool.length)]!;
    out.push(`${name} ${type}`);
  }
  return out;
}

/** A fixed set of objects as an ObjectSource (watches never deliver anything). */
export class StaticSource implements ObjectSource {
  constructor(private readonly byKind: Record<string, StoredObject[]>) {}
  async list(kind: string): Promise<ObjectList> {
    return { items: this.byKind[kind] ?? [], resourceVersion: "1" };
  }
  watch(): Watch {
    return { stop: () => {} };
  }
}
