// Endpoints controller (spec §4): ready / notReady, publishNotReadyAddresses, terminating pods,
// repacking, truncation with the over-capacity annotation, labels, no-op detection.
import { describe, it, expect } from "vitest";
import {
  ANNOTATION_OVER_CAPACITY,
  LABEL_ENDPOINTS_MANAGED_BY,
  desiredEndpoints,
  repackSubsets,
  truncateSubsets,
} from "../../../src/store/controllers/endpoints.js";
import { LABEL_HEADLESS, ANNOTATION_LAST_CHANGE_TRIGGER_TIME } from "../../../src/store/controllers/common.js";
import { defaultEndpoints } from "../../../src/store/defaults.js";
import type { EndpointAddress, EndpointSubset, Endpoints, Pod } from "../../../src/store/types.js";
import { expectValidEndpoints, manyPods, mkPod, mkSvc } from "./fixtures.js";

const ipsOf = (addrs: EndpointAddress[] | undefined): string[] => (addrs ?? []).map((a) => a.ip);
const total = (ep: Endpoints): [number, number] => [
  (ep.subsets ?? []).reduce((n, s) => n + (s.addresses ?? []).length, 0),
  (ep.subsets ?? []).reduce((n, s) => n + (s.notReadyAddresses ?? []).length, 0),
];

function sync(svc: ReturnType<typeof mkSvc>, pods: Pod[], existing?: Endpoints | null): Endpoints {
  const ep = desiredEndpoints(svc, pods, existing);
  expect(ep).not.toBeNull();
  expectValidEndpoints(ep!, existing);
  return ep!;
}

describe("addresses", () => {
  it("ready pods in addresses, others in notReadyAddresses; one subset; sorted by IP text", () => {
    const ep = sync(mkSvc("web"), [
      mkPod("a", { ip: "10.244.0.2" }),
      mkPod("b", { ip: "10.244.0.10" }),
      mkPod("c", { ip: "10.244.0.3", ready: false }),
      mkPod("other", { ip: "10.244.0.4", labels: { app: "x" } }),
    ]);
    expect(ep.metadata).toMatchObject({ name: "web", namespace: "default" });
    expect(ep.subsets).toHaveLength(1);
    const ss = ep.subsets![0]!;
    expect(ipsOf(ss.addresses)).toEqual(["10.244.0.10", "10.244.0.2"]);
    expect(ipsOf(ss.notReadyAddresses)).toEqual(["10.244.0.3"]);
    expect(ss.ports).toEqual([{ name: "http", port: 8080, protocol: "TCP" }]);
  });

  it("hostname (subdomain = service name), nodeName and targetRef", () => {
    const ep = sync(mkSvc("web"), [mkPod("a", { ip: "10.244.0.1", node: "n1", hostname: "h-a", subdomain: "web" }), mkPod("b", { ip: "10.244.0.2", hostname: "h-b", subdomain: "zzz" })]);
    expect(ep.subsets![0]!.addresses).toEqual([
      { ip: "10.244.0.1", hostname: "h-a", nodeName: "n1", targetRef: { kind: "Pod", namespace: "default", name: "a", uid: "uid-a" } },
      { ip: "10.244.0.2", nodeName: "node-1", targetRef: { kind: "Pod", namespace: "default", name: "b", uid: "uid-b" } },
    ]);
  });

  it("terminal pods and pods without an IP are left out", () => {
    const ep = sync(mkSvc("web"), [mkPod("a", { phase: "Succeeded" }), mkPod("b", { phase: "Failed", ip: "10.244.0.2" }), mkPod("c", { ip: null })]);
    expect(ep.subsets).toEqual([]);
  });

  it("terminating pods are left out (ready or not)", () => {
    const ep = sync(mkSvc("web"), [mkPod("a", { deleting: true }), mkPod("b", { deleting: true, ready: false, ip: "10.244.0.2" }), mkPod("c", { ip: "10.244.0.3" })]);
    expect(ipsOf(ep.subsets![0]!.addresses)).toEqual(["10.244.0.3"]);
    expect(ep.subsets![0]!.notReadyAddresses).toBeUndefined();
  });

  it("publishNotReadyAddresses: every pod, terminating ones too, in addresses", () => {
    const ep = sync(mkSvc("web", { publishNotReadyAddresses: true }), [
      mkPod("a", { ip: "10.244.0.1" }),
      mkPod("b", { ip: "10.244.0.2", ready: false }),
      mkPod("c", { ip: "10.244.0.3", deleting: true }),
    ]);
    expect(ipsOf(ep.subsets![0]!.addresses)).toEqual(["10.244.0.1", "10.244.0.2", "10.244.0.3"]);
    expect(ep.subsets![0]!.notReadyAddresses).toBeUndefined();
  });

  it("one address per pod, of the Service's primary family", () => {
    const v6 = mkSvc("v6", { ipFamilies: ["IPv6", "IPv4"], clusterIP: "fd00::10", clusterIPs: ["fd00::10", "10.96.0.10"] });
    const ep = sync(v6, [mkPod("a", { ips: ["10.244.0.1", "fd00::1"] }), mkPod("b", { ip: "10.244.0.2" })]);
    expect(ipsOf(ep.subsets![0]!.addresses)).toEqual(["fd00::1"]);
  });
});

describe("ports and repacking", () => {
  it("named targetPorts per pod: pods on different numbers land in different subsets", () => {
    const svc = mkSvc("web", { ports: [{ name: "http", port: 80, protocol: "TCP", targetPort: "web" }] });
    const ep = sync(svc, [
      mkPod("a", { ip: "10.244.0.1", ports: [{ name: "web", containerPort: 8080 }] }),
      mkPod("b", { ip: "10.244.0.2", ports: [{ name: "web", containerPort: 9090 }] }),
      mkPod("c", { ip: "10.244.0.3", ports: [{ name: "web", containerPort: 8080 }] }),
      mkPod("d", { ip: "10.244.0.4" }),
    ]);
    expect(ep.subsets!.map((s) => [s.ports![0]!.port, ipsOf(s.addresses)])).toEqual([
      [8080, ["10.244.0.1", "10.244.0.3"]],
      [9090, ["10.244.0.2"]],
    ]);
  });

  it("ports grouped by the pods serving them; a pod lacking one port only misses that port", () => {
    const svc = mkSvc("web", {
      ports: [
        { name: "http", port: 80, protocol: "TCP", targetPort: "web", appProtocol: "http" },
        { name: "dns", port: 53, protocol: "UDP", targetPort: 53 },
      ],
    });
    const ep = sync(svc, [
      mkPod("a", { ip: "10.244.0.1", ports: [{ name: "web", containerPort: 8080 }] }),
      mkPod("b", { ip: "10.244.0.2", ports: [{ name: "web", containerPort: 8080 }] }),
      mkPod("c", { ip: "10.244.0.3" }),
    ]);
    expect(ep.subsets!.map((s) => [s.ports, ipsOf(s.addresses)])).toEqual([
      [[{ name: "dns", port: 53, protocol: "UDP" }], ["10.244.0.1", "10.244.0.2", "10.244.0.3"]],
      [[{ name: "http", port: 8080, protocol: "TCP", appProtocol: "http" }], ["10.244.0.1", "10.244.0.2"]],
    ]);
    // once every pod serves both, the two ports share one subset
    const ep2 = sync(svc, [
      mkPod("a", { ip: "10.244.0.1", ports: [{ name: "web", containerPort: 8080 }] }),
      mkPod("b", { ip: "10.244.0.2", ports: [{ name: "web", containerPort: 8080 }] }),
    ]);
    expect(ep2.subsets!.map((s) => [s.ports!.map((p) => p.name), ipsOf(s.addresses)])).toEqual([[["dns", "http"], ["10.244.0.1", "10.244.0.2"]]]);
  });

  it("headless without ports: addresses without ports; label service.kubernetes.io/headless", () => {
    const h = mkSvc("h", { clusterIP: "None", clusterIPs: ["None"], ports: [] }, { labels: { team: "a" } });
    const ep = sync(h, [mkPod("a"), mkPod("b", { ip: "10.244.0.2", ready: false })]);
    expect(ep.subsets).toEqual([
      {
        addresses: [{ ip: "10.244.0.1", nodeName: "node-1", targetRef: { kind: "Pod", namespace: "default", name: "a", uid: "uid-a" } }],
        notReadyAddresses: [{ ip: "10.244.0.2", nodeName: "node-1", targetRef: { kind: "Pod", namespace: "default", name: "b", uid: "uid-b" } }],
      },
    ]);
    expect(ep.metadata.labels).toEqual({ team: "a", [LABEL_HEADLESS]: "", [LABEL_ENDPOINTS_MANAGED_BY]: "endpoint-controller" });
  });

  it("repackSubsets: merges equal port sets, de-duplicates, not-ready wins, keeps portless subsets", () => {
    const a = (ip: string, uid = `u-${ip}`): EndpointAddress => ({ ip, targetRef: { kind: "Pod", name: uid, uid } });
    const p80 = { name: "a", port: 80, protocol: "TCP" as const };
    const p81 = { name: "b", port: 81, protocol: "TCP" as const };
    const input: EndpointSubset[] = [
      { addresses: [a("10.0.0.2")], ports: [p80] },
      { addresses: [a("10.0.0.1")], ports: [p80] },
      { addresses: [a("10.0.0.1"), a("10.0.0.2")], ports: [p81] },
      { addresses: [a("10.0.0.1")], ports: [p80] }, // duplicate
      { notReadyAddresses: [a("10.0.0.3")], addresses: [a("10.0.0.3")], ports: [p80] }, // not ready wins
      { addresses: [a("10.0.0.9")] },
    ];
    const out = repackSubsets(input);
    expect(out).toEqual([
      { addresses: [a("10.0.0.1"), a("10.0.0.2")], notReadyAddresses: [a("10.0.0.3")], ports: [p80] },
      { addresses: [a("10.0.0.1"), a("10.0.0.2")], ports: [p81] },
      { addresses: [a("10.0.0.9")] },
    ]);
    expect(repackSubsets(out)).toEqual(out);
    // equal address sets (and readiness) → one subset with both ports
    expect(
      repackSubsets([
        { addresses: [a("10.0.0.2"), a("10.0.0.1")], ports: [p81] },
        { addresses: [a("10.0.0.1")], ports: [p80] },
        { addresses: [a("10.0.0.2")], ports: [p80] },
      ]),
    ).toEqual([{ addresses: [a("10.0.0.1"), a("10.0.0.2")], ports: [p80, p81] }]);
    // same IP, different pods: both kept (key is IP + UID)
    expect(repackSubsets([{ addresses: [a("10.0.0.1", "x"), a("10.0.0.1", "y")], ports: [p80] }])[0]!.addresses).toHaveLength(2);
  });
});

describe("truncation at 1000", () => {
  it("1200 ready: 1000 kept and annotated over-capacity=truncated", () => {
    const ep = sync(mkSvc("web"), manyPods(1200));
    expect(total(ep)).toEqual([1000, 0]);
    expect(ep.metadata.annotations).toEqual({ [ANNOTATION_OVER_CAPACITY]: "truncated" });
  });
  it("ready first: 900 ready + 300 not ready → 900 + 100", () => {
    const pods = [...manyPods(900), ...manyPods(300, { ready: false }, "nr").map((p, i) => mkPod(p.metadata.name!, { ip: `10.250.${Math.floor(i / 250)}.${(i % 250) + 1}`, ready: false }))];
    const ep = sync(mkSvc("web"), pods);
    expect(total(ep)).toEqual([900, 100]);
    expect(ep.metadata.annotations?.[ANNOTATION_OVER_CAPACITY]).toBe("truncated");
  });
  it("shares the room among subsets in proportion", () => {
    const svc = mkSvc("web", { ports: [{ name: "http", port: 80, protocol: "TCP", targetPort: "web" }] });
    const pods = [
      ...manyPods(900, { ports: [{ name: "web", containerPort: 8080 }] }),
      ...manyPods(300, { ports: [{ name: "web", containerPort: 9090 }] }, "x").map((p, i) =>
        mkPod(p.metadata.name!, { ip: `10.250.${Math.floor(i / 250)}.${(i % 250) + 1}`, ports: [{ name: "web", containerPort: 9090 }] }),
      ),
    ];
    const ep = sync(svc, pods);
    const byPort = new Map(ep.subsets!.map((s) => [s.ports![0]!.port, (s.addresses ?? []).length]));
    expect(byPort.get(8080)).toBe(750);
    expect(byPort.get(9090)).toBe(250);
  });
  it("the annotation goes away once back under the cap", () => {
    const over = sync(mkSvc("web"), manyPods(1001));
    const stored = { ...over, metadata: { ...over.metadata, resourceVersion: "7", uid: "ep-uid", annotations: { ...over.metadata.annotations, keep: "me" } } };
    const under = sync(mkSvc("web"), manyPods(999), stored);
    expect(total(under)).toEqual([999, 0]);
    expect(under.metadata.annotations).toEqual({ keep: "me" });
    expect(under.metadata.resourceVersion).toBe("7");
  });
  it("an already-truncated object with the same pods needs no write", () => {
    const over = sync(mkSvc("web"), manyPods(1200));
    expect(desiredEndpoints(mkSvc("web"), manyPods(1200), over)).toBeNull();
  });
  it("exactly 1000 is not truncated", () => {
    const ep = sync(mkSvc("web"), manyPods(1000));
    expect(total(ep)).toEqual([1000, 0]);
    expect(ep.metadata.annotations).toBeUndefined();
  });
  it("truncateSubsets drops subsets left empty", () => {
    const many = Array.from({ length: 5 }, (_, i) => ({ ip: `10.0.0.${i + 1}` }));
    const r = truncateSubsets(
      [
        { addresses: many, ports: [{ port: 1, protocol: "TCP" }] },
        { notReadyAddresses: [{ ip: "10.0.1.1" }], ports: [{ port: 2, protocol: "TCP" }] },
      ],
      3,
    );
    expect(r.truncated).toBe(true);
    expect(r.subsets).toEqual([{ addresses: many.slice(0, 3), ports: [{ port: 1, protocol: "TCP" }] }]);
  });
});

describe("labels, annotations and no-op detection", () => {
  const svc = mkSvc("web", {}, { labels: { team: "a" } });
  const pods = [mkPod("a"), mkPod("b", { ip: "10.244.0.2", ready: false })];

  it("a new object (create) even with no pods", () => {
    const ep = sync(svc, []);
    expect(ep).toEqual({ apiVersion: "v1", kind: "Endpoints", metadata: { name: "web", namespace: "default", labels: { team: "a", [LABEL_ENDPOINTS_MANAGED_BY]: "endpoint-controller" } }, subsets: [] });
  });
  it("labels are the Service's labels plus managed-by; no headless label with a cluster IP", () => {
    const ep = sync(svc, pods);
    expect(ep.metadata.labels).toEqual({ team: "a", [LABEL_ENDPOINTS_MANAGED_BY]: "endpoint-controller" });
  });
  it("null when the existing object is already equal", () => {
    const ep = sync(svc, pods);
    expect(desiredEndpoints(svc, pods, { ...ep, metadata: { ...ep.metadata, resourceVersion: "3" } })).toBeNull();
  });
  it("an object as the store keeps it (defaulted) needs no write", () => {
    const ep = sync(svc, pods);
    expect(desiredEndpoints(svc, pods, defaultEndpoints(ep))).toBeNull();
  });
  it("equality ignores subset order and targetRef.resourceVersion", () => {
    const ep = sync(svc, pods);
    const shuffled = structuredClone(ep);
    shuffled.subsets![0]!.addresses![0]!.targetRef!.resourceVersion = "99";
    expect(desiredEndpoints(svc, pods, shuffled)).toBeNull();
  });
  it("a write when a pod changes readiness", () => {
    const ep = sync(svc, pods);
    const next = sync(svc, [mkPod("a"), mkPod("b", { ip: "10.244.0.2" })], ep);
    expect(ipsOf(next.subsets![0]!.addresses)).toEqual(["10.244.0.1", "10.244.0.2"]);
  });
  it("a write when the Service's labels change", () => {
    const ep = sync(svc, pods);
    const next = sync(mkSvc("web", {}, { labels: { team: "b" } }), pods, ep);
    expect(next.metadata.labels).toEqual({ team: "b", [LABEL_ENDPOINTS_MANAGED_BY]: "endpoint-controller" });
  });
  it("triggerTime sets endpoints.kubernetes.io/last-change-trigger-time", () => {
    const ep = desiredEndpoints(svc, pods, null, { triggerTime: new Date(Date.UTC(2030, 0, 1)) })!;
    expectValidEndpoints(ep);
    expect(ep.metadata.annotations?.[ANNOTATION_LAST_CHANGE_TRIGGER_TIME]).toBe("2030-01-01T00:00:00.000Z");
  });
  it.each([
    ["no selector", mkSvc("s", { selector: undefined })],
    ["an empty selector", mkSvc("s", { selector: {} })],
    ["ExternalName", mkSvc("s", { type: "ExternalName", externalName: "x.example.com", clusterIP: undefined, clusterIPs: undefined })],
  ])("Services with %s: null (users write their own Endpoints)", (_n, s) => {
    expect(desiredEndpoints(s, pods, null)).toBeNull();
  });
});
