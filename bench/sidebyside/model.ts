// The Services every mode of the side-by-side benchmark programs (bench/sidebyside.ts): one
// model, turned into kube-proxy-style iptables rules (iptables.ts), nftables rules
// (nftables.ts) and Kubernetes objects for tapvip (objects() below), so that every mode
// translates exactly the same set.
//
// N Services in namespace "default", installed in index order:
//   - svc-0 … svc-(N-2): fillers, one TCP port 80 → 8080, two endpoints each in 10.245.0.0/16
//     (addresses nobody answers on: they only make the tables big). Every tenth filler
//     (i % 10 === 5) has ClientIP session affinity, so the `recent` / affinity-set paths exist.
//   - probe (index N-1, the last-installed Service): the one the traffic goes to, three ports
//     (iperf3 TCP 5201, UDP sink 9000, TCP accept server 8080, in that order so that the
//     connect-latency port is the very last rule of a linear chain), two endpoints: the two
//     backend addresses of the benchmark's backend namespace.
// ClusterIPs are consecutive from 10.96.1.1 (10.96.0.1 is the store's `kubernetes` Service).

export type Protocol = "TCP" | "UDP";

export interface PortModel {
  name: string;
  protocol: Protocol;
  port: number;
  targetPort: number;
  /** Endpoint addresses (all ready). */
  endpoints: string[];
}

export interface ServiceModel {
  namespace: string;
  name: string;
  clusterIP: string;
  /** ClientIP session affinity (timeout 10800 s, the Kubernetes default). */
  affinity: boolean;
  ports: PortModel[];
}

export const NAMESPACE = "default";
export const SERVICE_CIDR = "10.96.0.0/12";
/** Sources inside it are not masqueraded (kube-proxy's --cluster-cidr; tapvip's --pod-cidr). */
export const CLUSTER_CIDR = "10.244.0.0/16";
export const AFFINITY_TIMEOUT = 10_800;
export const PROBE_PORTS = { iperf: 5201, sink: 9000, conn: 8080 } as const;
export const FILLER_PORT = 80;
export const FILLER_TARGET = 8080;

export function ip4(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

const CLUSTER_IP_BASE = ((10 << 24) | (96 << 16) | (1 << 8) | 1) >>> 0; // 10.96.1.1
const FILLER_EP_BASE = ((10 << 24) | (245 << 16)) >>> 0; // 10.245.0.0
const CHANGED_EP_BASE = ((10 << 24) | (246 << 16)) >>> 0; // 10.246.0.0

export function clusterIPOf(i: number): string {
  return ip4(CLUSTER_IP_BASE + i);
}

/** N Services (N ≥ 2): N-1 fillers and the probe, whose endpoints are `backends`. */
export function buildModel(n: number, backends: string[]): ServiceModel[] {
  if (!Number.isInteger(n) || n < 2 || n > 60_000) throw new Error(`services: ${n} (use 2 … 60000)`);
  if (backends.length === 0) throw new Error("the probe Service needs at least one backend");
  const out: ServiceModel[] = [];
  for (let i = 0; i < n - 1; i++) {
    out.push({
      namespace: NAMESPACE, name: `svc-${i}`, clusterIP: clusterIPOf(i), affinity: i % 10 === 5,
      ports: [{
        name: "http", protocol: "TCP", port: FILLER_PORT, targetPort: FILLER_TARGET,
        endpoints: [ip4(FILLER_EP_BASE + 2 * i + 1), ip4(FILLER_EP_BASE + 2 * i + 2)],
      }],
    });
  }
  const eps = [...backends];
  out.push({
    namespace: NAMESPACE, name: "probe", clusterIP: clusterIPOf(n - 1), affinity: false,
    ports: [
      { name: "iperf", protocol: "TCP", port: PROBE_PORTS.iperf, targetPort: PROBE_PORTS.iperf, endpoints: eps },
      { name: "sink", protocol: "UDP", port: PROBE_PORTS.sink, targetPort: PROBE_PORTS.sink, endpoints: eps },
      { name: "conn", protocol: "TCP", port: PROBE_PORTS.conn, targetPort: PROBE_PORTS.conn, endpoints: eps },
    ],
  });
  return out;
}

/** The probe Service (last installed). */
export function probeOf(model: ServiceModel[]): ServiceModel {
  return model[model.length - 1]!;
}

/**
 * The k-th endpoint change (k = 0, 1, …): svc-0's second endpoint is replaced by a fresh
 * address, as when one pod of a Service is replaced. Returns the Service after the change.
 */
export function endpointChange(before: ServiceModel, k: number): ServiceModel {
  const p = before.ports[0]!;
  const fresh = ip4(CHANGED_EP_BASE + 1 + (k % 60_000));
  return { ...before, ports: [{ ...p, endpoints: [p.endpoints[0]!, fresh] }, ...before.ports.slice(1)] };
}

// ---------------------------------------------------------------- Kubernetes objects for tapvip

/** The Service object (explicit clusterIP; no selector: its EndpointSlice is given). */
export function serviceObject(s: ServiceModel): object {
  return {
    apiVersion: "v1", kind: "Service",
    metadata: { name: s.name, namespace: s.namespace },
    spec: {
      type: "ClusterIP", clusterIP: s.clusterIP, clusterIPs: [s.clusterIP],
      ports: s.ports.map((p) => ({ name: p.name, protocol: p.protocol, port: p.port, targetPort: p.targetPort })),
      ...(s.affinity ? { sessionAffinity: "ClientIP", sessionAffinityConfig: { clientIP: { timeoutSeconds: AFFINITY_TIMEOUT } } } : {}),
    },
  };
}

/**
 * The Service's EndpointSlice. Every port of a Service here has the same endpoint addresses,
 * so one slice carries them all.
 */
export function sliceObject(s: ServiceModel): object {
  const addrs = s.ports[0]!.endpoints;
  return {
    apiVersion: "discovery.k8s.io/v1", kind: "EndpointSlice",
    metadata: { name: `${s.name}-1`, namespace: s.namespace, labels: { "kubernetes.io/service-name": s.name } },
    addressType: "IPv4",
    endpoints: addrs.map((a) => ({ addresses: [a], conditions: { ready: true, serving: true, terminating: false }, nodeName: "node-a" })),
    ports: s.ports.map((p) => ({ name: p.name, protocol: p.protocol, port: p.targetPort })),
  };
}

/** Services then their slices, in install order, as one `kind: List` (what `tapvip run --manifests` reads). */
export function manifestList(model: ServiceModel[]): string {
  const items: object[] = [];
  for (const s of model) items.push(serviceObject(s), sliceObject(s));
  return JSON.stringify({ apiVersion: "v1", kind: "List", items });
}
