// The EndpointSlice controller's reconciliation as a pure function (spec §4), following the
// upstream reconciler (k8s.io/endpointslice: reconciler.go, utils.go, util/):
// - per address type the Service supports, pods are grouped by the port list they resolve to
//   (named targetPorts resolve per pod, so pods with different numbers land in different slices);
// - existing slices keep the endpoints they hold (updated in place when an endpoint changed),
//   emptied slices are deleted, new endpoints first fill slices that are being updated anyway
//   (fullest first), then one unchanged slice that can take them all, then new slices;
// - when nothing would exist, one placeholder slice (no endpoints, no ports) stands in;
// - creates paired with deletes of the same address type become updates of those slices.
// Only slices labelled for this Service and managed by this controller are considered.

import { cmpStr, controllerManagesService, isServiceIPSet, podsForService, ANNOTATION_LAST_CHANGE_TRIGGER_TIME, LABEL_HEADLESS, labelsEqual, timeText } from "./common.js";
import { findPort, podIPsOfFamily, podIsReady, shouldPodBeInEndpoints, shouldSetHostname } from "./pods.js";
import { parseIP } from "../net.js";
import type {
  AddressType,
  Endpoint,
  EndpointSlice,
  EndpointSlicePort,
  ObjectReference,
  OwnerReference,
  Pod,
  Service,
} from "../types.js";

export const LABEL_SERVICE_NAME = "kubernetes.io/service-name";
export const LABEL_MANAGED_BY = "endpointslice.kubernetes.io/managed-by";
export const ENDPOINTSLICE_CONTROLLER_NAME = "endpointslice-controller.k8s.io";
export const LABEL_TOPOLOGY_ZONE = "topology.kubernetes.io/zone";
export const DEFAULT_MAX_ENDPOINTS_PER_SLICE = 100;

/** The parts of a Node the controller reads (a core/v1 Node object fits). */
export interface NodeInfo {
  metadata: { name?: string; labels?: Record<string, string> };
}

export interface EndpointSliceOptions {
  /** Endpoints per slice (controller flag --max-endpoints-per-slice), default 100. */
  maxEndpointsPerSlice?: number;
  /**
   * Names created slices: called with the generateName prefix (`<svc>-`). Without it created
   * slices carry only generateName and the store names them.
   */
  nameGenerator?: (generateName: string) => string;
  /** The managed-by label value this controller writes and owns; default endpointslice-controller.k8s.io. */
  controllerName?: string;
  /**
   * Known nodes. When given, a pod on a node not in the list is skipped (unless the Service
   * publishes not-ready addresses), and endpoints get `zone` from the node's
   * topology.kubernetes.io/zone label. When absent, every node is assumed to exist, without zone.
   */
  nodes?: readonly NodeInfo[];
  /** Written as endpoints.kubernetes.io/last-change-trigger-time on created/updated slices; cleared when absent. */
  triggerTime?: Date | string;
}

export interface EndpointSliceDelta {
  create: EndpointSlice[];
  update: EndpointSlice[];
  delete: EndpointSlice[];
}

// ------------------------------------------------------------------ small helpers

/** Address types of the Service: from spec.ipFamilies; else the clusterIP's family; else (headless) both. */
export function addressTypesForService(svc: Service): AddressType[] {
  const out: AddressType[] = [];
  for (const f of svc.spec?.ipFamilies ?? []) {
    if ((f === "IPv4" || f === "IPv6") && !out.includes(f)) out.push(f);
  }
  if (out.length > 0) return out;
  const ip = svc.spec?.clusterIP ?? svc.spec?.clusterIPs?.[0] ?? "";
  if (ip !== "" && ip !== "None") return [parseIP(ip)?.family === 6 ? "IPv6" : "IPv4"];
  return ["IPv4", "IPv6"];
}

/** True when the slice is labelled for this Service and managed by `controllerName`. */
export function isManagedSlice(slice: EndpointSlice, svc: Service, controllerName = ENDPOINTSLICE_CONTROLLER_NAME): boolean {
  const l = slice.metadata?.labels ?? {};
  return (
    (slice.metadata?.namespace ?? "") === (svc.metadata?.namespace ?? "") &&
    l[LABEL_SERVICE_NAME] === (svc.metadata?.name ?? "") &&
    l[LABEL_MANAGED_BY] === controllerName
  );
}

function ownedBy(slice: EndpointSlice, svc: Service): boolean {
  const uid = svc.metadata?.uid ?? "";
  return (slice.metadata?.ownerReferences ?? []).some((o) => (o.uid ?? "") === uid && o.kind === "Service" && o.apiVersion === "v1");
}

export function serviceOwnerReference(svc: Service): OwnerReference {
  return {
    apiVersion: "v1",
    kind: "Service",
    name: svc.metadata?.name ?? "",
    uid: svc.metadata?.uid ?? "",
    controller: true,
    blockOwnerDeletion: true,
  };
}

const isReservedLabel = (k: string): boolean => k === LABEL_SERVICE_NAME || k === LABEL_MANAGED_BY || k === LABEL_HEADLESS;

/**
 * setEndpointSliceLabels: the Service's labels (minus the reserved ones), the headless label when
 * the Service has no cluster IP, service-name and managed-by. `changed` compares only the
 * non-reserved labels, as upstream does.
 */
export function endpointSliceLabels(
  current: Readonly<Record<string, string>> | undefined,
  svc: Service,
  controllerName = ENDPOINTSLICE_CONTROLLER_NAME,
): { labels: Record<string, string>; changed: boolean } {
  const cur: Record<string, string> = {};
  for (const [k, v] of Object.entries(current ?? {})) if (!isReservedLabel(k)) cur[k] = v;
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(svc.metadata?.labels ?? {})) if (!isReservedLabel(k)) labels[k] = v;
  const changed = !labelsEqual(cur, labels);
  if (!isServiceIPSet(svc)) labels[LABEL_HEADLESS] = "";
  labels[LABEL_SERVICE_NAME] = svc.metadata?.name ?? "";
  labels[LABEL_MANAGED_BY] = controllerName;
  return { labels, changed };
}

/** The ports a pod offers for the Service, in Service port order; ports the pod lacks are left out. */
export function endpointPortsForPod(svc: Service, pod: Pod): EndpointSlicePort[] {
  const out: EndpointSlicePort[] = [];
  for (const sp of svc.spec?.ports ?? []) {
    if (!sp) continue;
    const num = findPort(pod, sp);
    if (num === null) continue;
    const p: EndpointSlicePort = { name: sp.name ?? "", protocol: sp.protocol ?? "TCP", port: num };
    if (sp.appProtocol !== undefined && sp.appProtocol !== null) p.appProtocol = sp.appProtocol;
    out.push(p);
  }
  return out;
}

function portKeyOf(p: EndpointSlicePort): string {
  return JSON.stringify([p.name ?? "", p.protocol ?? "TCP", p.port ?? null, p.appProtocol ?? null]);
}

/** Identifies a port list regardless of order (upstream NewPortMapKey). */
export function portMapKey(ports: readonly EndpointSlicePort[] | undefined): string {
  return JSON.stringify((ports ?? []).map(portKeyOf).sort());
}

/** podToEndpoint for one address type. */
export function podToEndpoint(pod: Pod, svc: Service, addressType: AddressType, node?: NodeInfo | null): Endpoint {
  const serving = podIsReady(pod);
  const terminating = !!pod.metadata?.deletionTimestamp;
  const ready = !!svc.spec?.publishNotReadyAddresses || (serving && !terminating);
  const targetRef: ObjectReference = { kind: "Pod", namespace: pod.metadata?.namespace ?? "", name: pod.metadata?.name ?? "" };
  if (pod.metadata?.uid) targetRef.uid = pod.metadata.uid;
  const ep: Endpoint = {
    addresses: addressType === "FQDN" ? [] : podIPsOfFamily(pod, addressType),
    conditions: { ready, serving, terminating },
    targetRef,
  };
  if (pod.spec?.nodeName) ep.nodeName = pod.spec.nodeName;
  const zone = node?.metadata?.labels?.[LABEL_TOPOLOGY_ZONE];
  if (zone) ep.zone = zone;
  if (shouldSetHostname(pod, svc)) ep.hostname = pod.spec!.hostname!;
  return ep;
}

/** Endpoint identity (upstream hashEndpoint): sorted addresses, hostname, targetRef namespace/name. */
function endpointHash(ep: Endpoint): string {
  return JSON.stringify([[...(ep.addresses ?? [])].sort(), ep.hostname ?? "", ep.targetRef?.namespace ?? "", ep.targetRef?.name ?? ""]);
}

function targetRefEqual(a: ObjectReference | undefined, b: ObjectReference | undefined): boolean {
  if (!a || !b) return !a && !b;
  return (
    (a.kind ?? "") === (b.kind ?? "") &&
    (a.namespace ?? "") === (b.namespace ?? "") &&
    (a.name ?? "") === (b.name ?? "") &&
    (a.uid ?? "") === (b.uid ?? "") &&
    (a.apiVersion ?? "") === (b.apiVersion ?? "") &&
    (a.fieldPath ?? "") === (b.fieldPath ?? "")
  );
}

/** EndpointsEqualBeyondHash: nodeName, zone, the three conditions and targetRef (ignoring its resourceVersion). */
function endpointsEqualBeyondHash(a: Endpoint, b: Endpoint): boolean {
  return (
    a.nodeName === b.nodeName &&
    a.zone === b.zone &&
    a.conditions?.ready === b.conditions?.ready &&
    a.conditions?.serving === b.conditions?.serving &&
    a.conditions?.terminating === b.conditions?.terminating &&
    targetRefEqual(a.targetRef, b.targetRef)
  );
}

function ownerRefsEqual(a: readonly OwnerReference[] | undefined, b: readonly OwnerReference[] | undefined): boolean {
  const x = a ?? [];
  const y = b ?? [];
  if (x.length !== y.length) return false;
  return x.every((o, i) => {
    const p = y[i]!;
    return (
      o.apiVersion === p.apiVersion &&
      o.kind === p.kind &&
      o.name === p.name &&
      (o.uid ?? "") === (p.uid ?? "") &&
      (o.controller ?? null) === (p.controller ?? null) &&
      (o.blockOwnerDeletion ?? null) === (p.blockOwnerDeletion ?? null)
    );
  });
}

/** placeholderSliceCompare: namespace, labels, ownerReferences, addressType, endpoints and ports. */
function isSamePlaceholder(existing: EndpointSlice, placeholder: EndpointSlice): boolean {
  return (
    (existing.metadata?.namespace ?? "") === (placeholder.metadata?.namespace ?? "") &&
    labelsEqual(existing.metadata?.labels, placeholder.metadata?.labels) &&
    ownerRefsEqual(existing.metadata?.ownerReferences, placeholder.metadata?.ownerReferences) &&
    existing.addressType === placeholder.addressType &&
    (existing.endpoints ?? []).length === 0 &&
    (existing.ports ?? []).length === 0
  );
}

// ------------------------------------------------------------------ the reconciler

interface Ctx {
  svc: Service;
  pods: Pod[];
  max: number;
  controllerName: string;
  nodes: Map<string, NodeInfo> | null;
}

function newEndpointSlice(ctx: Ctx, ports: EndpointSlicePort[], addressType: AddressType): EndpointSlice {
  const { svc } = ctx;
  return {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: {
      generateName: `${svc.metadata?.name ?? ""}-`,
      namespace: svc.metadata?.namespace ?? "",
      labels: endpointSliceLabels({}, svc, ctx.controllerName).labels,
      ownerReferences: [serviceOwnerReference(svc)],
    },
    addressType,
    endpoints: [],
    ports: ports.map((p) => ({ ...p })),
  };
}

/** An ordered set of desired endpoints keyed by endpointHash (PopAny takes the first). */
type EndpointSet = Map<string, Endpoint>;

function popAny(set: EndpointSet): Endpoint {
  const first = set.entries().next().value as [string, Endpoint];
  set.delete(first[0]);
  return first[1];
}

function sliceKey(s: EndpointSlice, i: number): string {
  return s.metadata?.name ?? `\u0000unnamed-${i}`;
}

function reconcileByPortMapping(
  ctx: Ctx,
  existingSlices: EndpointSlice[],
  desired: EndpointSet,
  ports: EndpointSlicePort[],
  addressType: AddressType,
): EndpointSliceDelta {
  const byName = new Map<string, EndpointSlice>();
  const unchanged: string[] = [];
  const toUpdate: string[] = [];
  const toDelete: string[] = [];

  // 1. keep desired endpoints where they are; drop the rest; refresh labels
  existingSlices.forEach((existing, i) => {
    const name = sliceKey(existing, i);
    byName.set(name, existing);
    const kept: Endpoint[] = [];
    let endpointUpdated = false;
    for (const ep of existing.endpoints ?? []) {
      const h = endpointHash(ep);
      const got = desired.get(h);
      if (!got) continue;
      kept.push(got);
      if (!endpointsEqualBeyondHash(got, ep)) endpointUpdated = true;
      desired.delete(h);
    }
    const { labels, changed } = endpointSliceLabels(existing.metadata?.labels, ctx.svc, ctx.controllerName);
    if (endpointUpdated || kept.length !== (existing.endpoints ?? []).length) {
      if (kept.length === 0) {
        toDelete.push(name);
      } else {
        const copy = structuredClone(existing);
        copy.endpoints = kept;
        copy.metadata.labels = labels;
        byName.set(name, copy);
        toUpdate.push(name);
      }
    } else if (changed) {
      const copy = structuredClone(existing);
      copy.endpoints ??= [];
      copy.metadata.labels = labels;
      byName.set(name, copy);
      toUpdate.push(name);
    } else {
      unchanged.push(name);
    }
  });

  // 2. fill the slices being updated anyway, fullest first
  if (desired.size > 0 && toUpdate.length > 0) {
    const slices = toUpdate.map((n) => byName.get(n)!).sort((a, b) => b.endpoints.length - a.endpoints.length);
    for (const s of slices) {
      while (desired.size > 0 && s.endpoints.length < ctx.max) s.endpoints.push(popAny(desired));
    }
  }

  // 3. the rest: one unchanged slice that can take them all, else new slices
  const create: EndpointSlice[] = [];
  while (desired.size > 0) {
    let fill: EndpointSlice | null = null;
    let fillName: string | null = null;
    if (desired.size < ctx.max && unchanged.length > 0) {
      // getSliceToFill: the slice closest to full once these are added
      let closest = ctx.max;
      for (const n of unchanged) {
        const s = byName.get(n)!;
        const diff = ctx.max - (desired.size + (s.endpoints ?? []).length);
        if (diff >= 0 && diff < closest) {
          closest = diff;
          fillName = n;
          if (diff === 0) break;
        }
      }
    }
    if (fillName !== null) {
      fill = structuredClone(byName.get(fillName)!);
      fill.endpoints ??= [];
      byName.set(fillName, fill);
    } else {
      fill = newEndpointSlice(ctx, ports, addressType);
    }
    while (desired.size > 0 && fill.endpoints.length < ctx.max) fill.endpoints.push(popAny(desired));
    if (fillName !== null) {
      toUpdate.push(fillName);
      unchanged.splice(unchanged.indexOf(fillName), 1);
    } else {
      create.push(fill);
    }
  }

  return { create, update: toUpdate.map((n) => byName.get(n)!), delete: toDelete.map((n) => byName.get(n)!) };
}

function reconcileByAddressType(ctx: Ctx, existing: EndpointSlice[], addressType: AddressType): EndpointSliceDelta {
  const { svc } = ctx;
  const create: EndpointSlice[] = [];
  const update: EndpointSlice[] = [];
  let del: EndpointSlice[] = [];

  const existingByPorts = new Map<string, EndpointSlice[]>();
  for (const s of existing) {
    if (ownedBy(s, svc)) {
      const k = portMapKey(s.ports);
      if (!existingByPorts.has(k)) existingByPorts.set(k, []);
      existingByPorts.get(k)!.push(s);
    } else {
      del.push(s);
    }
  }

  const desiredByPorts = new Map<string, { ports: EndpointSlicePort[]; set: EndpointSet }>();
  for (const pod of ctx.pods) {
    if (!shouldPodBeInEndpoints(pod, true)) continue;
    const ports = endpointPortsForPod(svc, pod);
    const k = portMapKey(ports);
    if (!desiredByPorts.has(k)) desiredByPorts.set(k, { ports, set: new Map() });
    let node: NodeInfo | null = null;
    if (ctx.nodes) {
      node = ctx.nodes.get(pod.spec?.nodeName ?? "") ?? null;
      // a pod on an unknown node is left out, unless not-ready addresses are published anyway
      if (!node && !svc.spec?.publishNotReadyAddresses) continue;
    }
    const ep = podToEndpoint(pod, svc, addressType, node);
    if (ep.addresses.length > 0) desiredByPorts.get(k)!.set.set(endpointHash(ep), ep);
  }

  for (const [k, { ports, set }] of desiredByPorts) {
    const r = reconcileByPortMapping(ctx, existingByPorts.get(k) ?? [], set, ports, addressType);
    create.push(...r.create);
    update.push(...r.update);
    del.push(...r.delete);
  }
  for (const [k, slices] of existingByPorts) if (!desiredByPorts.has(k)) del.push(...slices);

  if (existing.length === del.length && create.length < 1) {
    const placeholder = newEndpointSlice(ctx, [], addressType);
    if (del.length === 1 && isSamePlaceholder(del[0]!, placeholder)) del = [];
    else create.push(placeholder);
  }

  return finalize(ctx, { create, update, delete: del });
}

/** Turns creates into updates of slices about to be deleted (same address type, owned by the Service). */
function finalize(ctx: Ctx, d: EndpointSliceDelta): EndpointSliceDelta {
  const create = [...d.create];
  const update = [...d.update];
  const del = [...d.delete];
  for (let i = 0; i < del.length; ) {
    if (create.length === 0) break;
    const old = del[i]!;
    const slice = create[create.length - 1]!;
    if (old.addressType === slice.addressType && ownedBy(old, ctx.svc)) {
      slice.metadata.name = old.metadata?.name;
      if (old.metadata?.uid) slice.metadata.uid = old.metadata.uid;
      if (old.metadata?.resourceVersion) slice.metadata.resourceVersion = old.metadata.resourceVersion;
      if (old.metadata?.creationTimestamp) slice.metadata.creationTimestamp = old.metadata.creationTimestamp;
      if (old.metadata?.generateName) slice.metadata.generateName = old.metadata.generateName;
      create.pop();
      update.push(slice);
      del.splice(i, 1);
    } else {
      i++;
    }
  }
  return { create: ctx.svc.metadata?.deletionTimestamp ? [] : create, update, delete: del };
}

function stampTriggerTime(slice: EndpointSlice, triggerTime: Date | string | undefined): void {
  const ann = { ...(slice.metadata.annotations ?? {}) };
  if (triggerTime !== undefined) ann[ANNOTATION_LAST_CHANGE_TRIGGER_TIME] = timeText(triggerTime);
  else delete ann[ANNOTATION_LAST_CHANGE_TRIGGER_TIME];
  if (Object.keys(ann).length > 0) slice.metadata.annotations = ann;
  else delete slice.metadata.annotations;
}

/**
 * The writes that bring the Service's managed EndpointSlices to the desired state (§4).
 * `pods` may be all pods: those outside the Service's namespace or selector are ignored.
 * `existingSlices` may hold any slices: only those labelled for this Service and managed by this
 * controller are considered (others are never touched). Services without a selector, and
 * ExternalName Services, get no changes. Returned objects are fresh copies; inputs are not modified.
 */
export function desiredEndpointSlices(
  svc: Service,
  pods: readonly Pod[],
  existingSlices: readonly EndpointSlice[],
  opts: EndpointSliceOptions = {},
): EndpointSliceDelta {
  const out: EndpointSliceDelta = { create: [], update: [], delete: [] };
  if (!controllerManagesService(svc)) return out;
  const controllerName = opts.controllerName ?? ENDPOINTSLICE_CONTROLLER_NAME;
  const max = Math.max(1, Math.floor(opts.maxEndpointsPerSlice ?? DEFAULT_MAX_ENDPOINTS_PER_SLICE));
  let nodes: Map<string, NodeInfo> | null = null;
  if (opts.nodes) {
    nodes = new Map();
    for (const n of opts.nodes) if (n?.metadata?.name) nodes.set(n.metadata.name, n);
  }
  const ctx: Ctx = { svc, pods: podsForService(svc, pods), max, controllerName, nodes };

  const managed = existingSlices
    .filter((s) => isManagedSlice(s, svc, controllerName))
    .sort((a, b) => cmpStr(a.metadata?.name ?? "", b.metadata?.name ?? ""));
  const types = addressTypesForService(svc);
  const byType = new Map<AddressType, EndpointSlice[]>();
  const unsupported: EndpointSlice[] = [];
  for (const s of managed) {
    if (!types.includes(s.addressType)) {
      unsupported.push(s);
      continue;
    }
    if (!byType.has(s.addressType)) byType.set(s.addressType, []);
    byType.get(s.addressType)!.push(s);
  }
  for (const t of types) {
    const d = reconcileByAddressType(ctx, byType.get(t) ?? [], t);
    out.create.push(...d.create);
    out.update.push(...d.update);
    out.delete.push(...d.delete);
  }
  out.delete.push(...unsupported);

  for (const s of out.create) {
    stampTriggerTime(s, opts.triggerTime);
    if (opts.nameGenerator && !s.metadata.name) s.metadata.name = opts.nameGenerator(s.metadata.generateName ?? "");
  }
  for (const s of out.update) stampTriggerTime(s, opts.triggerTime);
  // deletes are the stored objects themselves; hand back copies so callers cannot alias inputs
  out.delete = out.delete.map((s) => structuredClone(s));
  return out;
}

/**
 * Applies a delta to a list of slices (by name) — handy for tests and for a store that wants the
 * resulting state. Created slices without a name are given `<generateName><n>` names.
 */
export function applyEndpointSliceDelta(slices: readonly EndpointSlice[], delta: EndpointSliceDelta): EndpointSlice[] {
  const byName = new Map<string, EndpointSlice>();
  for (const s of slices) byName.set(s.metadata?.name ?? "", s);
  for (const s of delta.delete) byName.delete(s.metadata?.name ?? "");
  for (const s of delta.update) byName.set(s.metadata?.name ?? "", s);
  let n = 0;
  for (const s of delta.create) {
    let name = s.metadata.name;
    while (!name || byName.has(name)) name = `${s.metadata.generateName ?? "slice-"}${n++}`;
    byName.set(name, { ...s, metadata: { ...s.metadata, name } });
  }
  return [...byName.values()];
}
