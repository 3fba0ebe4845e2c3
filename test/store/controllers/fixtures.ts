// Builders and assertions shared by the controller tests.
import { expect } from "vitest";
import { validateEndpointSlice, validateEndpoints } from "../../../src/store/validation.js";
import { applyEndpointSliceDelta, desiredEndpointSlices } from "../../../src/store/controllers/endpointslices.js";
import type { EndpointSliceDelta, EndpointSliceOptions } from "../../../src/store/controllers/endpointslices.js";
import type { ContainerPort, EndpointSlice, Endpoints, Pod, Service, ServiceSpec } from "../../../src/store/types.js";

export function mkSvc(name: string, spec: ServiceSpec = {}, meta: Partial<Service["metadata"]> = {}): Service {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name, namespace: "default", uid: `uid-svc-${name}`, ...meta },
    spec: {
      type: "ClusterIP",
      clusterIP: "10.96.0.10",
      clusterIPs: ["10.96.0.10"],
      ipFamilies: ["IPv4"],
      ipFamilyPolicy: "SingleStack",
      selector: { app: "web" },
      ports: [{ name: "http", port: 80, protocol: "TCP", targetPort: 8080 }],
      ...spec,
    },
  };
}

export interface PodOpts {
  ip?: string | null;
  ips?: string[];
  labels?: Record<string, string>;
  ready?: boolean;
  node?: string | null;
  ports?: ContainerPort[];
  phase?: NonNullable<Pod["status"]>["phase"];
  deleting?: boolean;
  hostname?: string;
  subdomain?: string;
  ns?: string;
  uid?: string;
}

export function mkPod(name: string, o: PodOpts = {}): Pod {
  const pod: Pod = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: o.ns ?? "default", uid: o.uid ?? `uid-${name}`, labels: o.labels ?? { app: "web" } },
    spec: { containers: [{ name: "c", ports: o.ports ?? [] }] },
    status: {
      phase: o.phase ?? "Running",
      conditions: [{ type: "Ready", status: o.ready === false ? "False" : "True" }],
    },
  };
  if (o.node !== null) pod.spec!.nodeName = o.node ?? "node-1";
  if (o.hostname) pod.spec!.hostname = o.hostname;
  if (o.subdomain) pod.spec!.subdomain = o.subdomain;
  if (o.ips) {
    pod.status!.podIP = o.ips[0];
    pod.status!.podIPs = o.ips.map((ip) => ({ ip }));
  } else if (o.ip !== null) {
    const ip = o.ip ?? "10.244.0.1";
    pod.status!.podIP = ip;
    pod.status!.podIPs = [{ ip }];
  }
  if (o.deleting) {
    pod.metadata.deletionTimestamp = "2030-01-01T00:00:30Z";
    pod.metadata.deletionGracePeriodSeconds = 30;
  }
  return pod;
}

/** n ready pods web-0..web-(n-1) with IPs 10.244.x.y. */
export function manyPods(n: number, o: PodOpts = {}, prefix = "web"): Pod[] {
  return Array.from({ length: n }, (_, i) => mkPod(`${prefix}-${i}`, { ip: `10.244.${Math.floor(i / 250) + 1}.${(i % 250) + 1}`, ...o }));
}

/** Deterministic slice names: <generateName>0, 1, 2 … */
export function seqNames(): (prefix: string) => string {
  let n = 0;
  return (prefix) => `${prefix}${String(n++).padStart(3, "0")}`;
}

export function expectValidSlice(s: EndpointSlice, old?: EndpointSlice): void {
  expect(validateEndpointSlice(s).map((e) => e.message)).toEqual([]);
  if (old) expect(validateEndpointSlice(s, old).map((e) => e.message)).toEqual([]);
}

/** Every created/updated slice passes validation (updates also against the slice they replace). */
export function expectValidDelta(delta: EndpointSliceDelta, existing: readonly EndpointSlice[] = []): void {
  for (const s of delta.create) expectValidSlice(s);
  for (const s of delta.update) expectValidSlice(s, existing.find((e) => e.metadata.name === s.metadata.name));
}

export function expectValidEndpoints(ep: Endpoints, old?: Endpoints | null): void {
  expect(validateEndpoints(ep).map((e) => e.message)).toEqual([]);
  if (old) expect(validateEndpoints(ep, old).map((e) => e.message)).toEqual([]);
}

/** A little store: reconciles, validates and applies the delta; returns the delta and the new state. */
export function reconcile(
  svc: Service,
  pods: readonly Pod[],
  state: readonly EndpointSlice[],
  opts: EndpointSliceOptions = {},
): { delta: EndpointSliceDelta; state: EndpointSlice[] } {
  const delta = desiredEndpointSlices(svc, pods, state, opts);
  expectValidDelta(delta, state);
  let rv = 1000;
  const next = applyEndpointSliceDelta(state, delta).map((s) => ({ ...s, metadata: { ...s.metadata, resourceVersion: String(rv++) } }));
  return { delta, state: next };
}

export function counts(d: EndpointSliceDelta): [number, number, number] {
  return [d.create.length, d.update.length, d.delete.length];
}

export function ips(s: EndpointSlice): string[] {
  return s.endpoints.flatMap((e) => e.addresses).sort();
}

export function podNames(s: EndpointSlice): string[] {
  return s.endpoints.map((e) => e.targetRef?.name ?? "").sort();
}
