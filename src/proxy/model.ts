// Kubernetes objects → service-port models for the programmer: which Services are proxied
// (§5: not headless, not ExternalName, not labelled service-proxy-name / headless), their
// frontends per port, and each port's endpoints from EndpointSlices (preferred) or Endpoints,
// matched by port name and protocol. The lb algorithm comes from an annotation.

import type { Service, Endpoints, EndpointSlice, KubeObject } from "../store/types.js";
import type { EndpointInfo, EndpointColumns } from "./endpoints.js";
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
function fromSlices(slices: readonly EndpointSlice[], portName: string, proto: Protocol): EndpointInfo[] {
  const out: EndpointInfo[] = [];
  for (const s of slices) {
    if (s.addressType !== "IPv4") continue;
    let p: NonNullable<EndpointSlice["ports"]>[number] | undefined;
    for (const x of s.ports ?? []) {
      if ((x.name ?? "") === portName && (x.protocol ?? "TCP") === proto) {
        p = x;
        break;
      }
    }
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
    const l = slicesBySvc.get(k);
    if (l) l.push(s);
    else slicesBySvc.set(k, [s]);
  }
  const epBySvc = new Map(input.endpoints.map((e) => [nsName(e), e]));
  const out: ServicePortModel[] = [];
  for (const svc of input.services) {
    const id = nsName(svc);
    for (const m of serviceModels(svc, slicesBySvc.get(id), epBySvc.get(id))) out.push(m);
  }
  return out;
}

/** The empty list models share (frozen: models are read, never changed in place). */
const NONE = Object.freeze([]) as unknown as string[];

/**
 * Where the endpoints of one service port come from: the service's EndpointSlices when it has
 * any, else its Endpoints object; the port by name and protocol.
 */
export interface EndpointSource {
  slices: readonly EndpointSlice[] | undefined;
  endpoints: Endpoints | undefined;
  portName: string;
  protocol: Protocol;
}

function endpointsOf(src: EndpointSource): EndpointInfo[] {
  if (src.slices !== undefined && src.slices.length > 0) return fromSlices(src.slices, src.portName, src.protocol);
  return src.endpoints ? fromEndpoints(src.endpoints, src.portName, src.protocol) : [];
}

/**
 * A model whose `endpoints` are built on first use from its source (the proxier's models:
 * the programmer reads the source straight into columns, so a full sync of 100k endpoints
 * builds no EndpointInfo object; health checks and views that ask for them still get them).
 * Spread copies leave `endpoints` out (an accessor); JSON has it.
 */
class SourcedPortModel implements ServicePortModel {
  private eps: EndpointInfo[] | undefined = undefined;
  private replaced = false;
  constructor(
    readonly key: string,
    readonly protocol: Protocol,
    readonly port: number,
    readonly clusterIPs: string[],
    readonly nodePort: number | undefined,
    readonly externalIPs: string[],
    readonly loadBalancerIPs: string[],
    readonly affinityTimeoutSeconds: number | null,
    readonly externalTrafficPolicyLocal: boolean,
    readonly internalTrafficPolicyLocal: boolean,
    readonly loadBalancerSourceRanges: string[],
    readonly algorithm: Algorithm | undefined,
    readonly source: EndpointSource,
  ) {}

  get endpoints(): EndpointInfo[] {
    return (this.eps ??= endpointsOf(this.source));
  }

  set endpoints(v: EndpointInfo[]) {
    this.eps = v;
    this.replaced = true;
  }

  toJSON(): ServicePortModel {
    return {
      key: this.key, protocol: this.protocol, port: this.port, clusterIPs: this.clusterIPs, nodePort: this.nodePort,
      externalIPs: this.externalIPs, loadBalancerIPs: this.loadBalancerIPs, affinityTimeoutSeconds: this.affinityTimeoutSeconds,
      externalTrafficPolicyLocal: this.externalTrafficPolicyLocal, internalTrafficPolicyLocal: this.internalTrafficPolicyLocal,
      loadBalancerSourceRanges: this.loadBalancerSourceRanges, algorithm: this.algorithm, endpoints: this.endpoints,
    };
  }
}

/** The source of a model's endpoints (a sourced model whose endpoints were not replaced), else undefined. */
export function endpointSource(m: ServicePortModel): EndpointSource | undefined {
  return m instanceof SourcedPortModel && !(m as unknown as { replaced: boolean }).replaced ? m.source : undefined;
}

/** True when two sources name the same objects (by identity) and the same port: the same endpoints. */
export function sameSource(a: EndpointSource, b: EndpointSource): boolean {
  if (a.portName !== b.portName || a.protocol !== b.protocol) return false;
  const as = a.slices !== undefined && a.slices.length > 0;
  const bs = b.slices !== undefined && b.slices.length > 0;
  if (as !== bs) return false;
  if (!as) return a.endpoints === b.endpoints;
  if (a.slices!.length !== b.slices!.length) return false;
  for (let i = 0; i < a.slices!.length; i++) if (a.slices![i] !== b.slices![i]) return false;
  return true;
}

/**
 * The endpoints of `src` into columns, as endpointsOf would list them (same order, same
 * condition reading), without building them.
 */
export function readEndpoints(src: EndpointSource, nodeName: string, out: EndpointColumns): void {
  const { portName, protocol } = src;
  if (src.slices !== undefined && src.slices.length > 0) {
    for (const s of src.slices) {
      if (s.addressType !== "IPv4") continue;
      let port: number | undefined | null;
      for (const x of s.ports ?? []) {
        if ((x.name ?? "") === portName && (x.protocol ?? "TCP") === protocol) {
          port = x.port;
          break;
        }
      }
      if (port === undefined || port === null) continue;
      const eps = s.endpoints ?? [];
      for (let i = 0; i < eps.length; i++) {
        const e = eps[i]!;
        const addrs = e.addresses ?? [];
        const c = e.conditions;
        for (let j = 0; j < addrs.length; j++) out.push(addrs[j]!, port, e.nodeName, c?.ready, c?.serving, c?.terminating, nodeName);
      }
    }
    return;
  }
  const ep = src.endpoints;
  if (!ep) return;
  for (const ss of ep.subsets ?? []) {
    let port: number | undefined;
    for (const x of ss.ports ?? []) {
      if ((x.name ?? "") === portName && (x.protocol ?? "TCP") === protocol) {
        port = x.port;
        break;
      }
    }
    if (port === undefined) continue;
    for (const a of ss.addresses ?? []) out.push(a.ip, port, a.nodeName, true, true, false, nodeName);
    for (const a of ss.notReadyAddresses ?? []) out.push(a.ip, port, a.nodeName, false, false, false, nodeName);
  }
}

/**
 * The models of one Service from its own EndpointSlices (none or an empty list: use
 * `endpoints`) — what buildModels does per Service, for a caller that already holds each
 * service's objects together (the proxier's change tracker). [] when it is not proxied.
 * With `sourced`, each model's endpoints are built only when asked for (see SourcedPortModel).
 */
export function serviceModels(svc: Service, slices: readonly EndpointSlice[] | undefined, ep: Endpoints | undefined, o: { sourced?: boolean } = {}): ServicePortModel[] {
  if (notProxiedReason(svc)) return [];
  const spec = svc.spec ?? {};
  const id = nsName(svc);
  const annotation = svc.metadata.annotations?.[ALGORITHM_ANNOTATION];
  const algorithm = annotation === undefined ? undefined : parseAlgorithm(annotation, `Service "${id}"`);
  const ips = spec.clusterIPs ?? (spec.clusterIP ? [spec.clusterIP] : NONE);
  let clean = true;
  for (let i = 0; i < ips.length; i++) if (!ips[i] || ips[i] === "None") clean = false;
  const clusterIPs = clean ? ips : ips.filter((ip) => ip && ip !== "None");
  const lbIPs = spec.type === "LoadBalancer" ? (svc.status?.loadBalancer?.ingress ?? []).map((i) => i.ip).filter((x): x is string => !!x) : NONE;
  const out: ServicePortModel[] = [];
  const ports = spec.ports ?? [];
  for (const port of ports) {
    const protocol = (port.protocol ?? "TCP") as Protocol;
    const portName = port.name ?? "";
    const key = `${id}:${portName || port.port}/${protocol}`;
    const nodePort = spec.type === "NodePort" || spec.type === "LoadBalancer" ? port.nodePort : undefined;
    const externalIPs = spec.externalIPs ?? NONE;
    const affinity = spec.sessionAffinity === "ClientIP" ? spec.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? 10800 : null;
    const extLocal = spec.externalTrafficPolicy === "Local";
    const intLocal = spec.internalTrafficPolicy === "Local";
    const ranges = spec.type === "LoadBalancer" ? spec.loadBalancerSourceRanges ?? NONE : NONE;
    const source: EndpointSource = { slices, endpoints: ep, portName, protocol };
    if (o.sourced) {
      const m = new SourcedPortModel(key, protocol, port.port, clusterIPs, nodePort, externalIPs, lbIPs, affinity, extLocal, intLocal, ranges, algorithm, source);
      if (ports.length === 1) return [m];
      out.push(m);
      continue;
    }
    out.push({
      key, protocol, port: port.port, clusterIPs, nodePort, externalIPs, loadBalancerIPs: lbIPs, affinityTimeoutSeconds: affinity,
      externalTrafficPolicyLocal: extLocal, internalTrafficPolicyLocal: intLocal, loadBalancerSourceRanges: ranges, algorithm,
      endpoints: endpointsOf(source),
    });
  }
  return out;
}
