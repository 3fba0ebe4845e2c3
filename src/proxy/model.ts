// Kubernetes objects → service-port models for the programmer: which Services are proxied
// (§5: not headless, not ExternalName, not labelled service-proxy-name / headless), their
// frontends per port, and each port's endpoints from EndpointSlices (preferred) or Endpoints,
// matched by port name and protocol. The lb algorithm comes from an annotation.

import type { Service, Endpoints, EndpointSlice, KubeObject } from "../store/types.js";
import type { EndpointInfo } from "./endpoints.js";
import type { Protocol, ServicePortModel } from "./programmer.js";
import { ALGORITHMS, type Algorithm } from "../maps/layout.js";

/** Per-service backend selection: random (default), maglev, rr, lc, dh, sh, sed, nq. */
export const ALGORITHM_ANNOTATION = "tapvip.io/lb-algorithm";

export class ModelError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ModelError";
  }
}

export function parseAlgorithm(v: string | undefined, where: string): Algorithm | undefined {
  if (v === undefined || v === "") return undefined;
  const a = v.trim().toLowerCase();
  if (a === "default" || !(a in ALGORITHMS)) {
    throw new ModelError(`${where}: annotation ${ALGORITHM_ANNOTATION}: Unsupported value: "${v}": supported values: ${Object.keys(ALGORITHMS).filter((k) => k !== "default").join(", ")}`);
  }
  return a as Algorithm;
}

/** Why a service is not proxied, or null when it is (§5). */
export function notProxiedReason(svc: Service): string | null {
  const labels = svc.metadata.labels ?? {};
  if ("service.kubernetes.io/service-proxy-name" in labels) return "labelled service.kubernetes.io/service-proxy-name";
  if ("service.kubernetes.io/headless" in labels) return "labelled service.kubernetes.io/headless";
  if (svc.spec?.type === "ExternalName") return "ExternalName";
  if (svc.spec?.clusterIP === "None") return "headless";
  return null;
}

function nsName(o: { metadata: { namespace?: string; name?: string } }): string {
  return `${o.metadata.namespace ?? "default"}/${o.metadata.name ?? ""}`;
}

/** Endpoints of one service port from its EndpointSlices. */
function fromSlices(slices: EndpointSlice[], portName: string, proto: Protocol): EndpointInfo[] {
  const out: EndpointInfo[] = [];
  for (const s of slices) {
    if (s.addressType !== "IPv4") continue;
    const p = (s.ports ?? []).find((x) => (x.name ?? "") === portName && (x.protocol ?? "TCP") === proto);
    if (!p || p.port === undefined || p.port === null) continue;
    for (const e of s.endpoints ?? []) {
      for (const ip of e.addresses ?? []) {
        out.push({
          ip, port: p.port, nodeName: e.nodeName, zone: e.zone,
          ready: e.conditions?.ready ?? null, serving: e.conditions?.serving ?? null, terminating: e.conditions?.terminating ?? null,
        });
      }
    }
  }
  return out;
}

/** Endpoints of one service port from an Endpoints object (no terminating information). */
function fromEndpoints(ep: Endpoints, portName: string, proto: Protocol): EndpointInfo[] {
  const out: EndpointInfo[] = [];
  for (const ss of ep.subsets ?? []) {
    const p = (ss.ports ?? []).find((x) => (x.name ?? "") === portName && (x.protocol ?? "TCP") === proto);
    if (!p) continue;
    for (const a of ss.addresses ?? []) out.push({ ip: a.ip, port: p.port, nodeName: a.nodeName, ready: true, serving: true, terminating: false });
    for (const a of ss.notReadyAddresses ?? []) out.push({ ip: a.ip, port: p.port, nodeName: a.nodeName, ready: false, serving: false, terminating: false });
  }
  return out;
}

export interface ModelInput {
  services: Service[];
  endpoints: Endpoints[];
  endpointSlices: EndpointSlice[];
}

export function splitObjects(objs: KubeObject[]): ModelInput {
  return {
    services: objs.filter((o): o is Service => o.kind === "Service"),
    endpoints: objs.filter((o): o is Endpoints => o.kind === "Endpoints"),
    endpointSlices: objs.filter((o): o is EndpointSlice => o.kind === "EndpointSlice"),
  };
}

/**
 * Service-port models for every proxied Service. Endpoints come from the EndpointSlices
 * labelled kubernetes.io/service-name=<svc> when any exist, else from the Endpoints object.
 */
export function buildModels(input: ModelInput): ServicePortModel[] {
  const slicesBySvc = new Map<string, EndpointSlice[]>();
  for (const s of input.endpointSlices) {
    const svc = s.metadata.labels?.["kubernetes.io/service-name"];
    if (!svc) continue;
    const k = `${s.metadata.namespace ?? "default"}/${svc}`;
    slicesBySvc.set(k, [...(slicesBySvc.get(k) ?? []), s]);
  }
  const epBySvc = new Map(input.endpoints.map((e) => [nsName(e), e]));
  const out: ServicePortModel[] = [];
  for (const svc of input.services) {
    if (notProxiedReason(svc)) continue;
    const spec = svc.spec ?? {};
    const id = nsName(svc);
    const algorithm = parseAlgorithm(svc.metadata.annotations?.[ALGORITHM_ANNOTATION], `Service "${id}"`);
    const clusterIPs = (spec.clusterIPs ?? (spec.clusterIP ? [spec.clusterIP] : [])).filter((ip) => ip && ip !== "None");
    const lbIPs = spec.type === "LoadBalancer" ? (svc.status?.loadBalancer?.ingress ?? []).map((i) => i.ip).filter((x): x is string => !!x) : [];
    const slices = slicesBySvc.get(id);
    const ep = epBySvc.get(id);
    for (const port of spec.ports ?? []) {
      const proto = (port.protocol ?? "TCP") as Protocol;
      const portName = port.name ?? "";
      const endpoints = slices ? fromSlices(slices, portName, proto) : ep ? fromEndpoints(ep, portName, proto) : [];
      out.push({
        key: `${id}:${portName || port.port}/${proto}`,
        protocol: proto,
        port: port.port,
        clusterIPs,
        nodePort: spec.type === "NodePort" || spec.type === "LoadBalancer" ? port.nodePort : undefined,
        externalIPs: spec.externalIPs ?? [],
        loadBalancerIPs: lbIPs,
        affinityTimeoutSeconds: spec.sessionAffinity === "ClientIP" ? spec.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? 10800 : null,
        externalTrafficPolicyLocal: spec.externalTrafficPolicy === "Local",
        internalTrafficPolicyLocal: spec.internalTrafficPolicy === "Local",
        loadBalancerSourceRanges: spec.type === "LoadBalancer" ? spec.loadBalancerSourceRanges ?? [] : [],
        algorithm,
        endpoints,
      });
    }
  }
  return out;
}
