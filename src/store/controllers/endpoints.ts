// The (legacy) Endpoints controller's sync as a pure function (spec §4), following upstream
// pkg/controller/endpoint (syncService, addEndpointSubset, truncateEndpoints,
// capacityAnnotationSetCorrectly) and pkg/api/v1/endpoints (RepackSubsets):
// - pods selected by the Service that are not terminal and have an IP; terminating pods are
//   left out unless publishNotReadyAddresses;
// - one address per pod, of the Service's primary IP family; ready pods (or all, with
//   publishNotReadyAddresses) in `addresses`, the others in `notReadyAddresses`;
// - per Service port the pod's resolved port (named targetPorts per pod; a pod without the port
//   is left out for it); headless Services without ports list addresses without ports;
// - subsets repacked: addresses with the same ports (and readiness) merged, everything sorted;
// - over 1000 addresses: truncated (ready first) and annotated
//   endpoints.kubernetes.io/over-capacity=truncated, the annotation removed once back under;
// - labels = the Service's labels, plus service.kubernetes.io/headless="" for headless Services
//   and endpoints.kubernetes.io/managed-by=endpoint-controller.

import { controllerManagesService, isServiceIPSet, podsForService, ANNOTATION_LAST_CHANGE_TRIGGER_TIME, LABEL_HEADLESS, labelsEqual, timeText, cmpStr } from "./common.js";
import { findPort, podIPs, podIsReady, shouldPodBeInEndpoints, shouldSetHostname } from "./pods.js";
import { parseIP } from "../net.js";
import type { EndpointAddress, EndpointPort, EndpointSubset, Endpoints, IPFamily, Pod, Service } from "../types.js";

export const ANNOTATION_OVER_CAPACITY = "endpoints.kubernetes.io/over-capacity";
/** Label the Endpoints controller puts on the objects it writes (upstream since v1.33, KEP-4974). */
export const LABEL_ENDPOINTS_MANAGED_BY = "endpoints.kubernetes.io/managed-by";
export const ENDPOINTS_CONTROLLER_NAME = "endpoint-controller";
export const OVER_CAPACITY_TRUNCATED = "truncated";
/** Upstream maxCapacity: addresses (ready + not ready, over all subsets) an Endpoints object keeps. */
export const ENDPOINTS_MAX_CAPACITY = 1000;

export interface EndpointsOptions {
  /** Address cap before truncation (default 1000). */
  maxCapacity?: number;
  /** Written as endpoints.kubernetes.io/last-change-trigger-time; cleared when absent (only on writes). */
  triggerTime?: Date | string;
}

// ------------------------------------------------------------------ addresses

/** The Service's primary family: spec.ipFamilies[0]; else the clusterIP's; else (headless) the pod IP's. */
function primaryFamily(svc: Service, pod: Pod): IPFamily {
  const fams = svc.spec?.ipFamilies ?? [];
  if (fams.length > 0) return fams[0]!;
  const ip = svc.spec?.clusterIP ?? svc.spec?.clusterIPs?.[0] ?? "";
  if (ip !== "" && ip !== "None") return parseIP(ip)?.family === 6 ? "IPv6" : "IPv4";
  const podIP = pod.status?.podIP ?? "";
  return parseIP(podIP)?.family === 6 ? "IPv6" : "IPv4";
}

/** podToEndpointAddressForService: the pod's address of the Service's family, or null when it has none. */
export function podToEndpointAddress(svc: Service, pod: Pod): EndpointAddress | null {
  const want = primaryFamily(svc, pod) === "IPv6" ? 6 : 4;
  const ip = podIPs(pod).find((s) => parseIP(s)?.family === want);
  if (!ip) return null;
  const addr: EndpointAddress = { ip };
  if (pod.spec?.nodeName) addr.nodeName = pod.spec.nodeName;
  addr.targetRef = { kind: "Pod", namespace: pod.metadata?.namespace ?? "", name: pod.metadata?.name ?? "" };
  if (pod.metadata?.uid) addr.targetRef.uid = pod.metadata.uid;
  if (shouldSetHostname(pod, svc)) addr.hostname = pod.spec!.hostname!;
  return addr;
}

/** LessEndpointAddress as a comparator: IP (bytewise), then targetRef UID (no ref first). */
export function compareEndpointAddress(a: EndpointAddress, b: EndpointAddress): number {
  const c = cmpStr(a.ip, b.ip);
  if (c !== 0) return c;
  if (!a.targetRef && !b.targetRef) return 0;
  if (!a.targetRef) return -1;
  if (!b.targetRef) return 1;
  return cmpStr(a.targetRef.uid ?? "", b.targetRef.uid ?? "");
}

function portText(p: EndpointPort): string {
  return JSON.stringify([p.name ?? "", p.port, p.protocol ?? "TCP", p.appProtocol ?? null]);
}

function comparePorts(a: EndpointPort, b: EndpointPort): number {
  return cmpStr(a.name ?? "", b.name ?? "") || a.port - b.port || cmpStr(a.protocol ?? "TCP", b.protocol ?? "TCP") || cmpStr(a.appProtocol ?? "", b.appProtocol ?? "");
}

function addrKey(a: EndpointAddress): string {
  return `${a.ip}\u0000${a.targetRef?.uid ?? ""}`;
}

// ------------------------------------------------------------------ RepackSubsets

const NO_PORT = "\u0000none";

/**
 * RepackSubsets: expands subsets to (port → addresses with readiness), then regroups ports that
 * serve exactly the same addresses with the same readiness into one subset. An address that is
 * not ready for a port in any input subset stays not ready for it. Addresses are de-duplicated by
 * IP + targetRef UID and sorted; ports sorted by name, number, protocol; subsets by content.
 * Subsets without ports are kept (headless Services without ports).
 */
export function repackSubsets(subsets: readonly EndpointSubset[]): EndpointSubset[] {
  const allAddrs = new Map<string, EndpointAddress>();
  const portAddrs = new Map<string, { port: EndpointPort | null; addrs: Map<string, boolean> }>();
  const mapAddr = (addr: EndpointAddress, pk: string, port: EndpointPort | null, ready: boolean): void => {
    const k = addrKey(addr);
    if (!allAddrs.has(k)) allAddrs.set(k, structuredClone(addr));
    let entry = portAddrs.get(pk);
    if (!entry) {
      entry = { port, addrs: new Map() };
      portAddrs.set(pk, entry);
    }
    const was = entry.addrs.get(k);
    if (was === undefined || was) entry.addrs.set(k, ready);
  };
  for (const ss of subsets) {
    const ports: (EndpointPort | null)[] = ss.ports && ss.ports.length > 0 ? ss.ports : [null];
    for (const port of ports) {
      const pk = port ? portText(port) : NO_PORT;
      for (const a of ss.addresses ?? []) mapAddr(a, pk, port, true);
      for (const a of ss.notReadyAddresses ?? []) mapAddr(a, pk, port, false);
    }
  }

  const groups = new Map<string, { addrs: Map<string, boolean>; ports: EndpointPort[] }>();
  for (const { port, addrs } of portAddrs.values()) {
    const key = JSON.stringify([...addrs.entries()].sort((x, y) => cmpStr(x[0], y[0])));
    let g = groups.get(key);
    if (!g) {
      g = { addrs, ports: [] };
      groups.set(key, g);
    }
    if (port) g.ports.push(structuredClone(port));
  }

  const out: EndpointSubset[] = [];
  for (const g of groups.values()) {
    const ready: EndpointAddress[] = [];
    const notReady: EndpointAddress[] = [];
    for (const [k, r] of g.addrs) (r ? ready : notReady).push(structuredClone(allAddrs.get(k)!));
    ready.sort(compareEndpointAddress);
    notReady.sort(compareEndpointAddress);
    g.ports.sort(comparePorts);
    const ss: EndpointSubset = {};
    if (ready.length) ss.addresses = ready;
    if (notReady.length) ss.notReadyAddresses = notReady;
    if (g.ports.length) ss.ports = g.ports;
    out.push(ss);
  }
  const sortKey = (s: EndpointSubset): string =>
    JSON.stringify([(s.ports ?? []).map(portText), (s.addresses ?? []).map(addrKey), (s.notReadyAddresses ?? []).map(addrKey)]);
  return out.sort((a, b) => cmpStr(sortKey(a), sortKey(b)));
}

// ------------------------------------------------------------------ truncation

/**
 * truncateEndpoints: when ready + not-ready addresses exceed `max`, keeps ready ones first and
 * shares the remaining room among subsets in proportion to their size (rounded up, the last
 * subsets getting what is left). Returns the new subsets and whether anything was cut. Subsets
 * left with no address at all are dropped (upstream would leave an invalid empty subset).
 */
export function truncateSubsets(subsets: readonly EndpointSubset[], max = ENDPOINTS_MAX_CAPACITY): { subsets: EndpointSubset[]; truncated: boolean } {
  let totalReady = 0;
  let totalNotReady = 0;
  for (const ss of subsets) {
    totalReady += (ss.addresses ?? []).length;
    totalNotReady += (ss.notReadyAddresses ?? []).length;
  }
  if (totalReady + totalNotReady <= max) return { subsets: subsets.map((s) => structuredClone(s)), truncated: false };

  let truncateReady = false;
  let room = max - totalReady;
  let numTotal = totalNotReady;
  if (totalReady > max) {
    truncateReady = true;
    room = max;
    numTotal = totalReady;
  }
  let canBeAdded = room;
  const out: EndpointSubset[] = [];
  for (const orig of subsets) {
    const ss = structuredClone(orig);
    const numInSubset = truncateReady ? (ss.addresses ?? []).length : (ss.notReadyAddresses ?? []).length;
    let toBeAdded = numTotal === 0 ? 0 : Math.ceil((numInSubset / numTotal) * room);
    if (toBeAdded > canBeAdded) toBeAdded = canBeAdded;
    if (truncateReady) {
      ss.addresses = (ss.addresses ?? []).slice(0, toBeAdded);
      ss.notReadyAddresses = [];
      canBeAdded -= ss.addresses.length;
    } else {
      ss.notReadyAddresses = (ss.notReadyAddresses ?? []).slice(0, toBeAdded);
      canBeAdded -= ss.notReadyAddresses.length;
    }
    if (ss.addresses && ss.addresses.length === 0) delete ss.addresses;
    if (ss.notReadyAddresses && ss.notReadyAddresses.length === 0) delete ss.notReadyAddresses;
    if (ss.addresses || ss.notReadyAddresses) out.push(ss);
  }
  return { subsets: out, truncated: true };
}

// ------------------------------------------------------------------ comparison

function normAddr(a: EndpointAddress): unknown {
  const t = a.targetRef;
  return [
    a.ip,
    a.hostname ?? "",
    a.nodeName ?? "",
    t ? [t.kind ?? "", t.namespace ?? "", t.name ?? "", t.uid ?? "", t.apiVersion ?? "", t.fieldPath ?? ""] : null,
  ];
}

/** Subsets equal after repacking, ignoring targetRef.resourceVersion and defaulted fields. */
export function subsetsEqual(a: readonly EndpointSubset[] | undefined, b: readonly EndpointSubset[] | undefined): boolean {
  const canon = (s: readonly EndpointSubset[] | undefined): string =>
    JSON.stringify(
      repackSubsets(s ?? []).map((ss) => [
        (ss.addresses ?? []).map(normAddr),
        (ss.notReadyAddresses ?? []).map(normAddr),
        (ss.ports ?? []).map(portText),
      ]),
    );
  return canon(a) === canon(b);
}

// ------------------------------------------------------------------ the sync

/** The subsets the controller computes for the Service (repacked, not yet truncated). */
export function endpointSubsetsForService(svc: Service, pods: readonly Pod[]): EndpointSubset[] {
  const publishNotReady = !!svc.spec?.publishNotReadyAddresses;
  const raw: EndpointSubset[] = [];
  const add = (pod: Pod, addr: EndpointAddress, port: EndpointPort | null): void => {
    const ports = port ? [port] : [];
    if (publishNotReady || podIsReady(pod)) raw.push({ addresses: [addr], ports });
    else raw.push({ notReadyAddresses: [addr], ports });
  };
  const svcPorts = svc.spec?.ports ?? [];
  for (const pod of podsForService(svc, pods)) {
    if (!shouldPodBeInEndpoints(pod, publishNotReady)) continue;
    const addr = podToEndpointAddress(svc, pod);
    if (!addr) continue;
    if (svcPorts.length === 0) {
      if (!isServiceIPSet(svc) && (svc.spec?.clusterIP ?? svc.spec?.clusterIPs?.[0]) === "None") add(pod, addr, null);
      continue;
    }
    for (const sp of svcPorts) {
      if (!sp) continue;
      const num = findPort(pod, sp);
      if (num === null) continue;
      const epp: EndpointPort = { name: sp.name ?? "", port: num, protocol: sp.protocol ?? "TCP" };
      if (sp.appProtocol !== undefined && sp.appProtocol !== null) epp.appProtocol = sp.appProtocol;
      if (epp.name === "") delete epp.name;
      add(pod, addr, epp);
    }
  }
  return repackSubsets(raw);
}

/**
 * The Endpoints object the controller wants for `svc`, or null when no write is needed: the
 * Service takes no managed endpoints (no selector, or ExternalName), or `existing` already has
 * these subsets, the Service's labels and the right over-capacity annotation. With no `existing`
 * a new object (possibly with no subsets) is returned for creation; otherwise a copy of
 * `existing` (metadata kept: resourceVersion, uid, other annotations) with the new content.
 */
export function desiredEndpoints(
  svc: Service,
  pods: readonly Pod[],
  existing?: Endpoints | null,
  opts: EndpointsOptions = {},
): Endpoints | null {
  if (!controllerManagesService(svc)) return null;
  const max = opts.maxCapacity ?? ENDPOINTS_MAX_CAPACITY;
  const { subsets, truncated } = truncateSubsets(endpointSubsetsForService(svc, pods), max);

  const labels: Record<string, string> = { ...(svc.metadata?.labels ?? {}) };
  if (!isServiceIPSet(svc)) labels[LABEL_HEADLESS] = "";
  else delete labels[LABEL_HEADLESS];
  labels[LABEL_ENDPOINTS_MANAGED_BY] = ENDPOINTS_CONTROLLER_NAME;

  if (existing) {
    const hasAnnotation = Object.prototype.hasOwnProperty.call(existing.metadata?.annotations ?? {}, ANNOTATION_OVER_CAPACITY);
    if (subsetsEqual(existing.subsets, subsets) && labelsEqual(existing.metadata?.labels, labels) && hasAnnotation === truncated) {
      return null;
    }
  }

  const out: Endpoints = existing
    ? structuredClone(existing)
    : { apiVersion: "v1", kind: "Endpoints", metadata: { name: svc.metadata?.name ?? "", namespace: svc.metadata?.namespace ?? "" } };
  out.apiVersion = "v1";
  out.kind = "Endpoints";
  out.metadata ??= {};
  out.subsets = subsets;
  out.metadata.labels = labels;
  const ann: Record<string, string> = { ...(out.metadata.annotations ?? {}) };
  if (opts.triggerTime !== undefined) ann[ANNOTATION_LAST_CHANGE_TRIGGER_TIME] = timeText(opts.triggerTime);
  else delete ann[ANNOTATION_LAST_CHANGE_TRIGGER_TIME];
  if (truncated) ann[ANNOTATION_OVER_CAPACITY] = OVER_CAPACITY_TRUNCATED;
  else delete ann[ANNOTATION_OVER_CAPACITY];
  if (Object.keys(ann).length > 0) out.metadata.annotations = ann;
  else delete out.metadata.annotations;
  return out;
}
