// Defaulting of stored objects, following upstream core/v1 SetDefaults_Service/_Endpoints, the
// discovery/v1 EndpointSlice defaults and the service registry's clusterIP/ipFamily
// normalisation. Every function returns a new object; nothing here allocates IPs or ports.

import { isIPv6String, parseIP } from "./net.js";
import type {
  EndpointSlice,
  Endpoints,
  IPFamily,
  Service,
  ServiceSpec,
} from "./types.js";

export const DEFAULT_CLIENT_IP_SERVICE_AFFINITY_SECONDS = 10800;
export const MAX_CLIENT_IP_SERVICE_AFFINITY_SECONDS = 86400;

export interface ServiceDefaultOptions {
  /** The cluster's primary service IP family (from the service CIDR); default IPv4. */
  primaryFamily?: IPFamily;
  /** The secondary family when the cluster is dual-stack; none by default. */
  secondaryFamily?: IPFamily;
  /**
   * The stored object when this is an update. Turns on the update-only normalisation that the
   * upstream registry applies (keeping allocated values, clusterIP/clusterIPs sync, dropping
   * fields the new type does not use): see prepareServiceForUpdate.
   */
  old?: Service;
}

function clone<T>(v: T): T {
  return v === undefined ? v : (structuredClone(v) as T);
}

/** "Externally accessible": LoadBalancer, NodePort, or ClusterIP with externalIPs. */
export function externallyAccessible(svc: Service): boolean {
  const s = svc.spec ?? {};
  return (
    s.type === "LoadBalancer" ||
    s.type === "NodePort" ||
    (s.type === "ClusterIP" && (s.externalIPs?.length ?? 0) > 0)
  );
}

/** A health-check nodePort is needed: type LoadBalancer with externalTrafficPolicy Local. */
export function needsHealthCheck(svc: Service): boolean {
  return svc.spec?.type === "LoadBalancer" && svc.spec?.externalTrafficPolicy === "Local";
}

export function needsClusterIP(svc: Service): boolean {
  return svc.spec?.type !== "ExternalName";
}

export function needsNodePort(svc: Service): boolean {
  return svc.spec?.type === "NodePort" || svc.spec?.type === "LoadBalancer";
}

/** Headless = clusterIPs is exactly ["None"] (or clusterIP "None" before normalisation). */
export function isHeadless(svc: Service): boolean {
  const s = svc.spec ?? {};
  if (s.clusterIPs && s.clusterIPs.length > 0) return s.clusterIPs.length === 1 && s.clusterIPs[0] === "None";
  return s.clusterIP === "None";
}

/**
 * SetDefaults_Service plus the create-time clusterIP(s)/ipFamily initialisation:
 * type ClusterIP; per port protocol TCP and targetPort = port; sessionAffinity None (which
 * drops any sessionAffinityConfig, as upstream does); ClientIP without a timeout → 10800 s;
 * externalTrafficPolicy Cluster where externally accessible; internalTrafficPolicy Cluster for
 * ClusterIP/NodePort/LoadBalancer; allocateLoadBalancerNodePorts true on LoadBalancer;
 * clusterIPs = [clusterIP] when only the singular is given; ipFamilyPolicy SingleStack and
 * ipFamilies from the clusterIPs or the cluster's primary family (not for ExternalName).
 */
export function defaultService(svc: Service, opts: ServiceDefaultOptions = {}): Service {
  const out = clone(svc);
  out.apiVersion ??= "v1";
  out.kind ??= "Service";
  out.metadata ??= {};
  const spec: ServiceSpec = (out.spec ??= {});

  if (!spec.sessionAffinity) spec.sessionAffinity = "None";
  if (spec.sessionAffinity === "None") delete spec.sessionAffinityConfig;
  if (spec.sessionAffinity === "ClientIP") {
    const t = spec.sessionAffinityConfig?.clientIP?.timeoutSeconds;
    if (t === undefined || t === null) {
      spec.sessionAffinityConfig = { clientIP: { timeoutSeconds: DEFAULT_CLIENT_IP_SERVICE_AFFINITY_SECONDS } };
    }
  }
  if (!spec.type) spec.type = "ClusterIP";
  for (const p of spec.ports ?? []) {
    if (!p || typeof p !== "object") continue;
    if (!p.protocol) p.protocol = "TCP";
    if (p.targetPort === undefined || p.targetPort === null || p.targetPort === 0 || p.targetPort === "") {
      p.targetPort = p.port;
    }
  }
  if (externallyAccessible(out) && !spec.externalTrafficPolicy) spec.externalTrafficPolicy = "Cluster";
  if (
    spec.internalTrafficPolicy === undefined &&
    (spec.type === "ClusterIP" || spec.type === "NodePort" || spec.type === "LoadBalancer")
  ) {
    spec.internalTrafficPolicy = "Cluster";
  }
  if (spec.type === "LoadBalancer" && spec.allocateLoadBalancerNodePorts === undefined) {
    spec.allocateLoadBalancerNodePorts = true;
  }

  if (opts.old) {
    prepareServiceForUpdateInPlace(out, opts.old);
  } else {
    normalizeClusterIPs(out, undefined);
  }
  initIPFamilyFields(out, opts);
  return out;
}

/**
 * Keeps clusterIP and clusterIPs in sync the way the upstream registry does. Create: a
 * singular-only clusterIP initialises clusterIPs. Update: an old client that omitted
 * clusterIPs keeps the stored ones; changing clusterIP alone rewrites clusterIPs[0]'s list;
 * clearing clusterIP alone clears clusterIPs. Mutates `svc`.
 */
export function normalizeClusterIPs(svc: Service, old: Service | undefined): void {
  const spec = (svc.spec ??= {});
  if (!old) {
    if (spec.clusterIP && (!spec.clusterIPs || spec.clusterIPs.length === 0)) spec.clusterIPs = [spec.clusterIP];
    return;
  }
  const os = old.spec ?? {};
  if ((os.clusterIPs?.length ?? 0) > 0 && (spec.clusterIPs?.length ?? 0) === 0) {
    if ((os.clusterIP ?? "") === (spec.clusterIP ?? "")) spec.clusterIPs = [...os.clusterIPs!];
  }
  if ((os.clusterIP ?? "") !== (spec.clusterIP ?? "")) {
    if (os.clusterIP && !spec.clusterIP) {
      if (sameStrings(os.clusterIPs, spec.clusterIPs)) delete spec.clusterIPs;
    } else if (sameStrings(os.clusterIPs, spec.clusterIPs)) {
      spec.clusterIPs = [spec.clusterIP!];
    }
  }
}

function sameStrings(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  const x = a ?? [];
  const y = b ?? [];
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

function nodePortsOf(svc: Service): number[] {
  return (svc.spec?.ports ?? []).map((p) => p?.nodePort ?? 0);
}

/**
 * The update-time preparation upstream applies before validating an update (returns a new
 * object): re-fills values that were allocated for the stored object and that the client left
 * out (clusterIP(s), nodePorts by port name, healthCheckNodePort), syncs clusterIP/clusterIPs,
 * and drops fields the new type no longer uses when the client did not change them (clusterIPs,
 * ipFamilies, ipFamilyPolicy when moving to ExternalName; nodePorts when leaving
 * NodePort/LoadBalancer; healthCheckNodePort when leaving LoadBalancer+Local;
 * allocateLoadBalancerNodePorts, loadBalancerClass and status.loadBalancer when leaving
 * LoadBalancer; externalTrafficPolicy when no longer externally accessible).
 */
export function prepareServiceForUpdate(svc: Service, old: Service): Service {
  const out = clone(svc);
  prepareServiceForUpdateInPlace(out, old);
  return out;
}

function prepareServiceForUpdateInPlace(svc: Service, old: Service): void {
  const spec = (svc.spec ??= {});
  const os = old.spec ?? {};

  // patch allocated values
  if (needsClusterIP(old) && needsClusterIP(svc)) {
    if (!spec.clusterIP && os.clusterIP) spec.clusterIP = os.clusterIP;
    if ((spec.clusterIPs?.length ?? 0) === 0 && (os.clusterIPs?.length ?? 0) > 0) spec.clusterIPs = [...os.clusterIPs!];
  }
  if (needsNodePort(old) && needsNodePort(svc)) {
    const newUsed = new Set(nodePortsOf(svc).filter((n) => n !== 0));
    const used = new Set(nodePortsOf(old).filter((n) => n !== 0 && newUsed.has(n)));
    const byName = new Map<string, number>();
    for (const p of os.ports ?? []) byName.set(p.name ?? "", p.nodePort ?? 0);
    for (const p of spec.ports ?? []) {
      if (!p.nodePort) {
        const v = byName.get(p.name ?? "") ?? 0;
        if (v !== 0 && !used.has(v)) p.nodePort = v;
      }
    }
  }
  if (needsHealthCheck(old) && needsHealthCheck(svc) && !spec.healthCheckNodePort && os.healthCheckNodePort) {
    spec.healthCheckNodePort = os.healthCheckNodePort;
  }

  normalizeClusterIPs(svc, old);

  // drop type-dependent fields the client did not change
  if (needsClusterIP(old) && !needsClusterIP(svc)) {
    if (sameStrings(os.clusterIPs, spec.clusterIPs)) {
      delete spec.clusterIP;
      delete spec.clusterIPs;
    }
    if (sameStrings(os.ipFamilies, spec.ipFamilies)) delete spec.ipFamilies;
    if (os.ipFamilyPolicy === spec.ipFamilyPolicy) delete spec.ipFamilyPolicy;
  }
  if (needsNodePort(old) && !needsNodePort(svc) && sameStrings(nodePortsOf(old).map(String), nodePortsOf(svc).map(String))) {
    for (const p of spec.ports ?? []) delete p.nodePort;
  }
  if (needsHealthCheck(old) && !needsHealthCheck(svc) && (os.healthCheckNodePort ?? 0) === (spec.healthCheckNodePort ?? 0)) {
    delete spec.healthCheckNodePort;
  }
  if (os.type === "LoadBalancer" && spec.type !== "LoadBalancer") {
    if (
      spec.allocateLoadBalancerNodePorts !== undefined &&
      os.allocateLoadBalancerNodePorts !== undefined &&
      spec.allocateLoadBalancerNodePorts === os.allocateLoadBalancerNodePorts
    ) {
      delete spec.allocateLoadBalancerNodePorts;
    }
    if ((os.loadBalancerClass ?? null) === (spec.loadBalancerClass ?? null)) delete spec.loadBalancerClass;
  }
  if (externallyAccessible(old) && !externallyAccessible(svc) && os.externalTrafficPolicy === spec.externalTrafficPolicy) {
    delete spec.externalTrafficPolicy;
  }
  if (spec.type !== "LoadBalancer" && svc.status?.loadBalancer) {
    svc.status.loadBalancer = {};
  }
}

function familyOf(ip: string): IPFamily | null {
  const p = parseIP(ip);
  if (!p) return null;
  return isIPv6String(ip) ? "IPv6" : "IPv4";
}

/**
 * ipFamilyPolicy defaults to SingleStack; ipFamilies come from the clusterIPs when they are
 * real IPs, else the cluster's primary family (plus the secondary for a dual-stack policy when
 * the cluster has one). ExternalName services get neither. Mutates `svc`.
 */
function initIPFamilyFields(svc: Service, opts: ServiceDefaultOptions): void {
  const spec = svc.spec!;
  if (spec.type === "ExternalName") return;
  const primary: IPFamily = opts.primaryFamily ?? "IPv4";
  if (!spec.ipFamilyPolicy) spec.ipFamilyPolicy = "SingleStack";
  if (spec.ipFamilies && spec.ipFamilies.length > 0) return;
  const families: IPFamily[] = [];
  for (const ip of spec.clusterIPs ?? []) {
    if (ip === "None" || ip === "") continue;
    const f = familyOf(ip);
    if (!f) return; // leave it to validation to report the bad IP
    if (!families.includes(f)) families.push(f);
  }
  if (families.length === 0) families.push(primary);
  if (spec.ipFamilyPolicy !== "SingleStack" && families.length === 1 && opts.secondaryFamily) {
    const other: IPFamily = families[0] === "IPv4" ? "IPv6" : "IPv4";
    if (opts.secondaryFamily === other || opts.primaryFamily === other) families.push(other);
  }
  spec.ipFamilies = families;
}

/** SetDefaults_Endpoints: every subset port's protocol defaults to TCP. Returns a new object. */
export function defaultEndpoints(ep: Endpoints): Endpoints {
  const out = clone(ep);
  out.apiVersion ??= "v1";
  out.kind ??= "Endpoints";
  out.metadata ??= {};
  for (const ss of out.subsets ?? []) {
    for (const p of ss?.ports ?? []) if (p && !p.protocol) p.protocol = "TCP";
  }
  return out;
}

/** discovery/v1 defaults: each port's name defaults to "" and protocol to TCP. New object. */
export function defaultEndpointSlice(es: EndpointSlice): EndpointSlice {
  const out = clone(es);
  out.apiVersion ??= "discovery.k8s.io/v1";
  out.kind ??= "EndpointSlice";
  out.metadata ??= {};
  for (const p of out.ports ?? []) {
    if (!p) continue;
    if (p.name === undefined || p.name === null) p.name = "";
    if (!p.protocol) p.protocol = "TCP";
  }
  return out;
}
