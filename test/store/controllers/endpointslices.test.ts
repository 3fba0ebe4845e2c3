// EndpointSlice controller (spec §4): one case per rule, every produced slice validated.
import { describe, it, expect } from "vitest";
import {
  ENDPOINTSLICE_CONTROLLER_NAME,
  LABEL_MANAGED_BY,
  LABEL_SERVICE_NAME,
  addressTypesForService,
  desiredEndpointSlices,
  portMapKey,
} from "../../../src/store/controllers/endpointslices.js";
import { LABEL_HEADLESS, ANNOTATION_LAST_CHANGE_TRIGGER_TIME } from "../../../src/store/controllers/common.js";
import { defaultEndpointSlice } from "../../../src/store/defaults.js";
import type { EndpointSlice, Pod } from "../../../src/store/types.js";
import { counts, expectValidDelta, ips, manyPods, mkPod, mkSvc, podNames, reconcile, seqNames } from "./fixtures.js";

const only = (slices: EndpointSlice[]): EndpointSlice => {
  expect(slices).toHaveLength(1);
  return slices[0]!;
};

describe("which pods", () => {
  it("takes pods in the Service's namespace matching its selector, with an IP, not terminal", () => {
    const svc = mkSvc("web");
    const pods: Pod[] = [
      mkPod("a", { ip: "10.244.0.1" }),
      mkPod("b", { ip: "10.244.0.2" }),
      mkPod("other-label", { ip: "10.244.0.3", labels: { app: "db" } }),
      mkPod("no-labels", { ip: "10.244.0.4", labels: {} }),
      mkPod("other-ns", { ip: "10.244.0.5", ns: "kube-system" }),
      mkPod("no-ip", { ip: null }),
      mkPod("succeeded", { ip: "10.244.0.6", phase: "Succeeded" }),
      mkPod("failed", { ip: "10.244.0.7", phase: "Failed" }),
      mkPod("pending-with-ip", { ip: "10.244.0.8", phase: "Pending", ready: false }),
    ];
    const d = desiredEndpointSlices(svc, pods, [], { nameGenerator: seqNames() });
    expectValidDelta(d);
    const s = only(d.create);
    expect(podNames(s)).toEqual(["a", "b", "pending-with-ip"]);
    expect(counts(d)).toEqual([1, 0, 0]);
  });

  it("matches every selector key (AND)", () => {
    const svc = mkSvc("web", { selector: { app: "web", tier: "fe" } });
    const d = desiredEndpointSlices(svc, [mkPod("a", { labels: { app: "web", tier: "fe", x: "y" } }), mkPod("b", { labels: { app: "web" } })], []);
    expect(podNames(only(d.create))).toEqual(["a"]);
  });

  it.each([
    ["no selector", mkSvc("s", { selector: undefined })],
    ["an empty selector", mkSvc("s", { selector: {} })],
    ["ExternalName", mkSvc("s", { type: "ExternalName", externalName: "x.example.com", clusterIP: undefined, clusterIPs: undefined })],
  ])("Services with %s get no changes (users own their slices)", (_n, svc) => {
    const userSlice: EndpointSlice = {
      apiVersion: "discovery.k8s.io/v1",
      kind: "EndpointSlice",
      metadata: { name: "s-user", namespace: "default", labels: { [LABEL_SERVICE_NAME]: "s" } },
      addressType: "IPv4",
      endpoints: [{ addresses: ["10.1.2.3"] }],
    };
    expect(counts(desiredEndpointSlices(svc, manyPods(3), [userSlice]))).toEqual([0, 0, 0]);
  });
});

describe("slice content", () => {
  const svc = mkSvc("web", { ports: [{ name: "http", port: 80, protocol: "TCP", targetPort: 8080, appProtocol: "kubernetes.io/h2c" }] }, {
    labels: { team: "a", [LABEL_SERVICE_NAME]: "spoof", [LABEL_MANAGED_BY]: "me" },
  });
  const d = desiredEndpointSlices(svc, [mkPod("a", { ip: "10.244.0.1", node: "n1" })], [], { nameGenerator: seqNames() });
  const s = only(d.create);

  it("is valid", () => expectValidDelta(d));
  it("names: generateName <svc>- and the generator's name", () => {
    expect(s.metadata.generateName).toBe("web-");
    expect(s.metadata.name).toBe("web-000");
    expect(s.metadata.namespace).toBe("default");
  });
  it("labels: service-name, managed-by, plus the Service's own labels (reserved ones ignored)", () =>
    expect(s.metadata.labels).toEqual({ team: "a", [LABEL_SERVICE_NAME]: "web", [LABEL_MANAGED_BY]: ENDPOINTSLICE_CONTROLLER_NAME }));
  it("ownerReferences: controller ref to the Service", () =>
    expect(s.metadata.ownerReferences).toEqual([
      { apiVersion: "v1", kind: "Service", name: "web", uid: "uid-svc-web", controller: true, blockOwnerDeletion: true },
    ]));
  it("addressType IPv4", () => expect(s.addressType).toBe("IPv4"));
  it("ports carry name, protocol, port and appProtocol from the Service port", () =>
    expect(s.ports).toEqual([{ name: "http", protocol: "TCP", port: 8080, appProtocol: "kubernetes.io/h2c" }]));
  it("endpoint: addresses, conditions, nodeName, targetRef", () =>
    expect(s.endpoints).toEqual([
      {
        addresses: ["10.244.0.1"],
        conditions: { ready: true, serving: true, terminating: false },
        nodeName: "n1",
        targetRef: { kind: "Pod", namespace: "default", name: "a", uid: "uid-a" },
      },
    ]));
  it("an unnamed port gets name \"\"", () => {
    const s2 = only(desiredEndpointSlices(mkSvc("u", { ports: [{ port: 80, protocol: "TCP", targetPort: 80 }] }), [mkPod("a")], []).create);
    expect(s2.ports).toEqual([{ name: "", protocol: "TCP", port: 80 }]);
  });
  it("headless Services: label service.kubernetes.io/headless=\"\"", () => {
    const h = mkSvc("h", { clusterIP: "None", clusterIPs: ["None"] });
    const s3 = only(desiredEndpointSlices(h, [mkPod("a")], []).create);
    expect(s3.metadata.labels?.[LABEL_HEADLESS]).toBe("");
    expect(s.metadata.labels?.[LABEL_HEADLESS]).toBeUndefined();
  });
  it("headless Services without ports: endpoints with an empty port list", () => {
    const h = mkSvc("h", { clusterIP: "None", clusterIPs: ["None"], ports: [] });
    const dd = desiredEndpointSlices(h, [mkPod("a")], []);
    expectValidDelta(dd);
    const s4 = only(dd.create);
    expect(s4.ports).toEqual([]);
    expect(podNames(s4)).toEqual(["a"]);
  });
});

describe("conditions", () => {
  const cases: [string, Parameters<typeof mkPod>[1], boolean, { ready: boolean; serving: boolean; terminating: boolean }][] = [
    ["ready pod", { ready: true }, false, { ready: true, serving: true, terminating: false }],
    ["not-ready pod", { ready: false }, false, { ready: false, serving: false, terminating: false }],
    ["terminating ready pod", { ready: true, deleting: true }, false, { ready: false, serving: true, terminating: true }],
    ["terminating not-ready pod", { ready: false, deleting: true }, false, { ready: false, serving: false, terminating: true }],
    ["not-ready pod, publishNotReadyAddresses", { ready: false }, true, { ready: true, serving: false, terminating: false }],
    ["terminating pod, publishNotReadyAddresses", { ready: true, deleting: true }, true, { ready: true, serving: true, terminating: true }],
  ];
  it.each(cases)("%s", (_n, podOpts, publish, want) => {
    const svc = mkSvc("web", { publishNotReadyAddresses: publish });
    const d = desiredEndpointSlices(svc, [mkPod("a", podOpts)], []);
    expectValidDelta(d);
    expect(only(d.create).endpoints[0]!.conditions).toEqual(want);
  });
  it("a pod without a Ready condition is not serving", () => {
    const p = mkPod("a");
    p.status!.conditions = [];
    expect(only(desiredEndpointSlices(mkSvc("web"), [p], []).create).endpoints[0]!.conditions).toEqual({ ready: false, serving: false, terminating: false });
  });
});

describe("hostname", () => {
  it.each([
    ["hostname + subdomain = service name", { hostname: "h0", subdomain: "web" }, "h0"],
    ["subdomain names another service", { hostname: "h0", subdomain: "other" }, undefined],
    ["no hostname", { subdomain: "web" }, undefined],
  ])("%s", (_n, o, want) => {
    const d = desiredEndpointSlices(mkSvc("web"), [mkPod("a", o)], []);
    expectValidDelta(d);
    expect(only(d.create).endpoints[0]!.hostname).toBe(want);
  });
});

describe("named targetPorts resolve per pod", () => {
  const svc = mkSvc("web", { ports: [{ name: "http", port: 80, protocol: "TCP", targetPort: "web" }] });
  const pods = [
    mkPod("a", { ip: "10.244.0.1", ports: [{ name: "web", containerPort: 8080 }] }),
    mkPod("b", { ip: "10.244.0.2", ports: [{ name: "web", containerPort: 8080, protocol: "TCP" }] }),
    mkPod("c", { ip: "10.244.0.3", ports: [{ name: "web", containerPort: 9090 }] }),
    mkPod("udp-only", { ip: "10.244.0.4", ports: [{ name: "web", containerPort: 7070, protocol: "UDP" }] }),
    mkPod("none", { ip: "10.244.0.5", ports: [{ name: "admin", containerPort: 7000 }] }),
  ];
  const d = desiredEndpointSlices(svc, pods, [], { nameGenerator: seqNames() });
  it("is valid", () => expectValidDelta(d));
  it("pods resolving to different numbers go to different slices", () => {
    const byPort = new Map(d.create.map((s) => [s.ports?.[0]?.port ?? 0, podNames(s)]));
    expect(byPort.get(8080)).toEqual(["a", "b"]);
    expect(byPort.get(9090)).toEqual(["c"]);
  });
  it("a pod without the port (or with it under another protocol) is left out for that port", () => {
    // upstream keeps such pods in a slice whose port list is empty
    const portless = d.create.filter((s) => (s.ports ?? []).length === 0);
    expect(portless.map(podNames)).toEqual([["none", "udp-only"]]);
    expect(d.create).toHaveLength(3);
  });
  it("multi-port: the pod keeps the ports it has", () => {
    const mp = mkSvc("mp", {
      ports: [
        { name: "http", port: 80, protocol: "TCP", targetPort: "web" },
        { name: "metrics", port: 9100, protocol: "TCP", targetPort: 9100 },
      ],
    });
    const dd = desiredEndpointSlices(mp, [mkPod("a", { ports: [{ name: "web", containerPort: 8080 }] }), mkPod("b", { ip: "10.244.0.9" })], []);
    expectValidDelta(dd);
    const withHttp = dd.create.find((s) => s.ports?.length === 2)!;
    const metricsOnly = dd.create.find((s) => s.ports?.length === 1)!;
    expect(podNames(withHttp)).toEqual(["a"]);
    expect(withHttp.ports).toEqual([
      { name: "http", protocol: "TCP", port: 8080 },
      { name: "metrics", protocol: "TCP", port: 9100 },
    ]);
    expect(podNames(metricsOnly)).toEqual(["b"]);
    expect(metricsOnly.ports).toEqual([{ name: "metrics", protocol: "TCP", port: 9100 }]);
  });
  it("sidecar init containers (restartPolicy Always) count, plain init containers do not", () => {
    const p = mkPod("side");
    p.spec!.initContainers = [{ name: "proxy", restartPolicy: "Always", ports: [{ name: "web", containerPort: 15001 }] }];
    const q = mkPod("init", { ip: "10.244.0.77" });
    q.spec!.initContainers = [{ name: "setup", ports: [{ name: "web", containerPort: 15002 }] }];
    const dd = desiredEndpointSlices(svc, [p, q], []);
    expect(dd.create.find((s) => s.ports?.[0]?.port === 15001)).toBeDefined();
    expect(dd.create.find((s) => s.ports?.[0]?.port === 15002)).toBeUndefined();
  });
  it("the port map key ignores port order", () =>
    expect(portMapKey([{ name: "a", port: 1, protocol: "TCP" }, { name: "b", port: 2, protocol: "TCP" }])).toBe(
      portMapKey([{ name: "b", port: 2, protocol: "TCP" }, { name: "a", port: 1, protocol: "TCP" }]),
    ));
});

describe("slice size", () => {
  it("250 pods → 3 slices of ≤ 100", () => {
    const d = desiredEndpointSlices(mkSvc("web"), manyPods(250), [], { nameGenerator: seqNames() });
    expectValidDelta(d);
    expect(d.create.map((s) => s.endpoints.length)).toEqual([100, 100, 50]);
    expect(new Set(d.create.flatMap(ips)).size).toBe(250);
  });
  it("maxEndpointsPerSlice option", () => {
    const d = desiredEndpointSlices(mkSvc("web"), manyPods(25), [], { maxEndpointsPerSlice: 10 });
    expect(d.create.map((s) => s.endpoints.length)).toEqual([10, 10, 5]);
    expect(d.create.every((s) => !s.metadata.name && s.metadata.generateName === "web-")).toBe(true);
  });
});

describe("placeholder", () => {
  const svc = mkSvc("web", {}, { labels: { team: "a" } });
  it("a Service selecting nothing gets one slice with no endpoints and no ports", () => {
    const { delta } = reconcile(svc, [mkPod("x", { labels: { app: "db" } })], [], { nameGenerator: seqNames() });
    const s = only(delta.create);
    expect(s.endpoints).toEqual([]);
    expect(s.ports).toEqual([]);
    expect(s.addressType).toBe("IPv4");
    expect(s.metadata.labels).toEqual({ team: "a", [LABEL_SERVICE_NAME]: "web", [LABEL_MANAGED_BY]: ENDPOINTSLICE_CONTROLLER_NAME });
    expect(s.metadata.ownerReferences?.[0]?.uid).toBe("uid-svc-web");
  });
  it("an existing placeholder is kept as is", () => {
    const first = reconcile(svc, [], [], { nameGenerator: seqNames() });
    expect(counts(desiredEndpointSlices(svc, [], first.state))).toEqual([0, 0, 0]);
  });
  it("a label change on the Service rewrites the placeholder in place", () => {
    const first = reconcile(svc, [], [], { nameGenerator: seqNames() });
    const svc2 = mkSvc("web", {}, { labels: { team: "b" } });
    const { delta } = reconcile(svc2, [], first.state);
    expect(counts(delta)).toEqual([0, 1, 0]);
    expect(delta.update[0]!.metadata.name).toBe(first.state[0]!.metadata.name);
    expect(delta.update[0]!.metadata.labels?.team).toBe("b");
  });
  it("the first pod turns the placeholder into a real slice (an update, no create)", () => {
    const first = reconcile(svc, [], [], { nameGenerator: seqNames() });
    const { delta, state } = reconcile(svc, [mkPod("a")], first.state, { nameGenerator: seqNames() });
    expect(counts(delta)).toEqual([0, 1, 0]);
    expect(state).toHaveLength(1);
    expect(podNames(state[0]!)).toEqual(["a"]);
    expect(state[0]!.ports).toEqual([{ name: "http", protocol: "TCP", port: 8080 }]);
  });
  it("removing all pods leaves the placeholder", () => {
    let st = reconcile(svc, manyPods(150), [], { nameGenerator: seqNames() }).state;
    expect(st).toHaveLength(2);
    const r = reconcile(svc, [], st, { nameGenerator: seqNames() });
    expect(counts(r.delta)).toEqual([0, 1, 1]);
    st = r.state;
    expect(st).toHaveLength(1);
    expect(st[0]!.endpoints).toEqual([]);
    expect(st[0]!.ports).toEqual([]);
    expect(counts(desiredEndpointSlices(svc, [], st))).toEqual([0, 0, 0]);
  });
  it("dual-stack Services get one placeholder per address type", () => {
    const ds = mkSvc("ds", { ipFamilies: ["IPv4", "IPv6"], ipFamilyPolicy: "RequireDualStack", clusterIPs: ["10.96.0.10", "fd00::10"] });
    const d = desiredEndpointSlices(ds, [], []);
    expectValidDelta(d);
    expect(d.create.map((s) => s.addressType)).toEqual(["IPv4", "IPv6"]);
  });
});

describe("minimal delta against existing slices", () => {
  const svc = mkSvc("web");
  const opts = { nameGenerator: seqNames() };
  const base = reconcile(svc, manyPods(150), [], opts);

  it("steady state: no changes", () => {
    expect(base.state.map((s) => s.endpoints.length)).toEqual([100, 50]);
    expect(counts(desiredEndpointSlices(svc, manyPods(150), base.state))).toEqual([0, 0, 0]);
  });
  it("adding one pod updates one slice only (the one with room)", () => {
    const pods = [...manyPods(150), mkPod("extra", { ip: "10.244.9.9" })];
    const { delta } = reconcile(svc, pods, base.state);
    expect(counts(delta)).toEqual([0, 1, 0]);
    expect(delta.update[0]!.metadata.name).toBe("web-001");
    expect(delta.update[0]!.endpoints).toHaveLength(51);
  });
  it("removing one pod updates only its slice; other endpoints stay where they were", () => {
    const victim = podNames(base.state.find((s) => s.metadata.name === "web-000")!)[7]!;
    const pods = manyPods(150).filter((p) => p.metadata.name !== victim);
    const { delta, state } = reconcile(svc, pods, base.state);
    expect(counts(delta)).toEqual([0, 1, 0]);
    expect(delta.update[0]!.metadata.name).toBe("web-000");
    expect(podNames(delta.update[0]!)).not.toContain(victim);
    expect(state.find((s) => s.metadata.name === "web-001")).toEqual(base.state.find((s) => s.metadata.name === "web-001"));
  });
  it("a readiness change updates only that endpoint's slice", () => {
    const pods = manyPods(150);
    pods[120] = mkPod("web-120", { ip: pods[120]!.status!.podIP!, ready: false });
    const { delta } = reconcile(svc, pods, base.state);
    expect(counts(delta)).toEqual([0, 1, 0]);
    const ep = delta.update[0]!.endpoints.find((e) => e.targetRef?.name === "web-120")!;
    expect(ep.conditions).toEqual({ ready: false, serving: false, terminating: false });
  });
  it("a pod going terminating: one update, ready=false, serving kept, terminating=true", () => {
    const pods = manyPods(150);
    pods[3] = mkPod("web-3", { ip: pods[3]!.status!.podIP!, deleting: true });
    const { delta } = reconcile(svc, pods, base.state);
    expect(counts(delta)).toEqual([0, 1, 0]);
    expect(delta.update[0]!.endpoints.find((e) => e.targetRef?.name === "web-3")!.conditions).toEqual({ ready: false, serving: true, terminating: true });
  });
  it("a pod IP change replaces the endpoint within one slice", () => {
    const pods = manyPods(150);
    pods[5] = mkPod("web-5", { ip: "10.244.200.5" });
    const { delta } = reconcile(svc, pods, base.state);
    expect(counts(delta)).toEqual([0, 1, 0]);
    expect(ips(delta.update[0]!)).toContain("10.244.200.5");
    expect(delta.update[0]!.endpoints).toHaveLength(100);
  });
  it("emptied slices are deleted", () => {
    const second = new Set(podNames(base.state.find((s) => s.metadata.name === "web-001")!));
    const pods = manyPods(150).filter((p) => !second.has(p.metadata.name!));
    const { delta, state } = reconcile(svc, pods, base.state);
    expect(counts(delta)).toEqual([0, 0, 1]);
    expect(delta.delete[0]!.metadata.name).toBe("web-001");
    expect(state).toHaveLength(1);
  });
  it("overflow beyond the free room creates new slices", () => {
    const { delta, state } = reconcile(svc, manyPods(260), base.state, { nameGenerator: seqNames() });
    expect(state.map((s) => s.endpoints.length).sort((a, b) => b - a)).toEqual([100, 100, 60]);
    expect(counts(delta)[1]).toBeGreaterThanOrEqual(1);
    expect(new Set(state.flatMap(ips)).size).toBe(260);
  });
  it("a Service port change rewrites the slices in place (creates become updates)", () => {
    const svc2 = mkSvc("web", { ports: [{ name: "http", port: 80, protocol: "TCP", targetPort: 9999 }] });
    const { delta, state } = reconcile(svc2, manyPods(150), base.state, { nameGenerator: seqNames() });
    expect(counts(delta)).toEqual([0, 2, 0]);
    expect(state.map((s) => s.metadata.name).sort()).toEqual(["web-000", "web-001"]);
    expect(state.every((s) => s.ports?.[0]?.port === 9999)).toBe(true);
    expect(delta.update.every((s) => s.metadata.resourceVersion)).toBe(true);
  });
  it("a Service label change updates every slice's labels", () => {
    const svc2 = mkSvc("web", {}, { labels: { env: "prod" } });
    const { delta } = reconcile(svc2, manyPods(150), base.state);
    expect(counts(delta)).toEqual([0, 2, 0]);
    expect(delta.update.every((s) => s.metadata.labels?.env === "prod")).toBe(true);
  });
  it("slices as the store keeps them (defaulted, endpoints: null on placeholders) reconcile to no changes", () => {
    const stored = base.state.map((x) => defaultEndpointSlice(x));
    expect(counts(desiredEndpointSlices(svc, manyPods(150), stored))).toEqual([0, 0, 0]);
    const ph = reconcile(svc, [], [], { nameGenerator: seqNames() }).state.map((x) => ({ ...defaultEndpointSlice(x), endpoints: null as unknown as [], ports: null as unknown as [] }));
    expect(counts(desiredEndpointSlices(svc, [], ph))).toEqual([0, 0, 0]);
    const { delta } = reconcile(svc, [mkPod("a")], ph);
    expect(counts(delta)).toEqual([0, 1, 0]);
    expect(podNames(delta.update[0]!)).toEqual(["a"]);
  });
  it("inputs are not modified", () => {
    const before = JSON.stringify(base.state);
    const pods = manyPods(180);
    const podsBefore = JSON.stringify(pods);
    reconcile(mkSvc("web", {}, { labels: { x: "y" } }), pods, base.state);
    expect(JSON.stringify(base.state)).toBe(before);
    expect(JSON.stringify(pods)).toBe(podsBefore);
  });
});

describe("ownership", () => {
  const svc = mkSvc("web");
  const base = reconcile(svc, manyPods(3), [], { nameGenerator: seqNames() });
  it("slices managed by another controller or labelled for another Service are never touched", () => {
    const foreign: EndpointSlice[] = [
      { ...structuredClone(base.state[0]!), metadata: { ...structuredClone(base.state[0]!.metadata), name: "mine-not", labels: { [LABEL_SERVICE_NAME]: "web", [LABEL_MANAGED_BY]: "someone-else" } } },
      { ...structuredClone(base.state[0]!), metadata: { ...structuredClone(base.state[0]!.metadata), name: "other-svc", labels: { [LABEL_SERVICE_NAME]: "other", [LABEL_MANAGED_BY]: ENDPOINTSLICE_CONTROLLER_NAME } } },
      { ...structuredClone(base.state[0]!), metadata: { ...structuredClone(base.state[0]!.metadata), name: "other-ns", namespace: "x" } },
    ];
    const d = desiredEndpointSlices(svc, manyPods(3), [...base.state, ...foreign]);
    expect(counts(d)).toEqual([0, 0, 0]);
    const d2 = desiredEndpointSlices(svc, [], [...base.state, ...foreign]);
    const touched = [...d2.create, ...d2.update, ...d2.delete].map((s) => s.metadata.name);
    expect(touched).not.toContain("mine-not");
    expect(touched).not.toContain("other-svc");
    expect(touched).not.toContain("other-ns");
  });
  it("a managed slice owned by an older Service of the same name is deleted, not reused", () => {
    const svcNew = mkSvc("web", {}, { uid: "uid-new" });
    const d = desiredEndpointSlices(svcNew, manyPods(3), base.state, { nameGenerator: seqNames() });
    expectValidDelta(d);
    expect(counts(d)).toEqual([1, 0, 1]);
    expect(d.create[0]!.metadata.ownerReferences?.[0]?.uid).toBe("uid-new");
  });
  it("a Service being deleted gets no new slices", () => {
    const dying = mkSvc("web", {}, { deletionTimestamp: "2030-01-01T00:00:00Z" });
    expect(desiredEndpointSlices(dying, manyPods(3), []).create).toEqual([]);
  });
});

describe("address types", () => {
  it("from ipFamilies; else the clusterIP's family; headless without families: both", () => {
    expect(addressTypesForService(mkSvc("a", { ipFamilies: ["IPv6", "IPv4"] }))).toEqual(["IPv6", "IPv4"]);
    expect(addressTypesForService(mkSvc("a", { ipFamilies: undefined, clusterIP: "fd00::1" }))).toEqual(["IPv6"]);
    expect(addressTypesForService(mkSvc("a", { ipFamilies: undefined, clusterIP: "10.0.0.1" }))).toEqual(["IPv4"]);
    expect(addressTypesForService(mkSvc("a", { ipFamilies: undefined, clusterIP: "None", clusterIPs: ["None"] }))).toEqual(["IPv4", "IPv6"]);
  });
  it("dual-stack: one slice per family with that family's pod IP (canonical form)", () => {
    const ds = mkSvc("ds", { ipFamilies: ["IPv4", "IPv6"], ipFamilyPolicy: "RequireDualStack" });
    const d = desiredEndpointSlices(ds, [mkPod("a", { ips: ["10.244.0.1", "FD00:0:0::0A"] })], []);
    expectValidDelta(d);
    expect(d.create.map((s) => [s.addressType, ips(s)])).toEqual([
      ["IPv4", ["10.244.0.1"]],
      ["IPv6", ["fd00::a"]],
    ]);
  });
  it("an IPv6 single-stack Service ignores the pods' IPv4 addresses", () => {
    const v6 = mkSvc("v6", { ipFamilies: ["IPv6"], clusterIP: "fd00::10", clusterIPs: ["fd00::10"] });
    const d = desiredEndpointSlices(v6, [mkPod("a", { ips: ["10.244.0.1", "fd00::a"] }), mkPod("b", { ip: "10.244.0.2" })], []);
    expect(d.create.map((s) => [s.addressType, ips(s)])).toEqual([["IPv6", ["fd00::a"]]]);
  });
  it("slices of an address type the Service no longer has are deleted", () => {
    const ds = mkSvc("ds", { ipFamilies: ["IPv4", "IPv6"], ipFamilyPolicy: "PreferDualStack" });
    const st = reconcile(ds, [mkPod("a", { ips: ["10.244.0.1", "fd00::a"] })], [], { nameGenerator: seqNames() }).state;
    const single = mkSvc("ds", { ipFamilies: ["IPv4"] });
    const d = desiredEndpointSlices(single, [mkPod("a", { ips: ["10.244.0.1", "fd00::a"] })], st);
    expect(counts(d)).toEqual([0, 0, 1]);
    expect(d.delete[0]!.addressType).toBe("IPv6");
  });
});

describe("nodes and annotations", () => {
  it("with a node list: pods on unknown nodes are skipped, zones come from node labels", () => {
    const nodes = [{ metadata: { name: "n1", labels: { "topology.kubernetes.io/zone": "z1" } } }];
    const d = desiredEndpointSlices(mkSvc("web"), [mkPod("a", { node: "n1" }), mkPod("b", { node: "gone", ip: "10.244.0.2" })], [], { nodes });
    expectValidDelta(d);
    const s = only(d.create);
    expect(podNames(s)).toEqual(["a"]);
    expect(s.endpoints[0]!.zone).toBe("z1");
  });
  it("publishNotReadyAddresses keeps pods on unknown nodes", () => {
    const d = desiredEndpointSlices(mkSvc("web", { publishNotReadyAddresses: true }), [mkPod("b", { node: "gone" })], [], { nodes: [] });
    expect(podNames(only(d.create))).toEqual(["b"]);
  });
  it("triggerTime → endpoints.kubernetes.io/last-change-trigger-time on written slices", () => {
    const d = desiredEndpointSlices(mkSvc("web"), [mkPod("a")], [], { triggerTime: "2030-01-01T00:00:00.5Z" });
    expect(only(d.create).metadata.annotations).toEqual({ [ANNOTATION_LAST_CHANGE_TRIGGER_TIME]: "2030-01-01T00:00:00.5Z" });
    expectValidDelta(d);
  });
});
