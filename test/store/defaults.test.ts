// Tests for src/store/defaults.ts: §2 defaulting and the update-time normalisation of Services.
import { describe, it, expect } from "vitest";
import { defaultEndpoints, defaultService, prepareServiceForUpdate } from "../../src/store/defaults.js";
import type { Service } from "../../src/store/types.js";
import { P80, svc } from "./helpers.js";

describe("defaultService", () => {
  it("returns a new object and leaves the input alone", () => {
    const input = svc({ ports: [{ port: 80 }] });
    const snapshot = structuredClone(input);
    const out = defaultService(input);
    expect(out).not.toBe(input);
    expect(input).toEqual(snapshot);
  });
  it("defaults type to ClusterIP", () => expect(defaultService(svc({ ports: P80 })).spec!.type).toBe("ClusterIP"));
  it("keeps an explicit type", () => expect(defaultService(svc({ type: "NodePort", ports: P80 })).spec!.type).toBe("NodePort"));
  it("defaults port protocol to TCP and keeps explicit ones", () => {
    const s = defaultService(svc({ ports: [{ name: "a", port: 80 }, { name: "b", port: 53, protocol: "UDP" }] }));
    expect(s.spec!.ports!.map((p) => p.protocol)).toEqual(["TCP", "UDP"]);
  });
  it("defaults targetPort to port (missing, 0 or empty string)", () => {
    const s = defaultService(svc({ ports: [{ name: "a", port: 80 }, { name: "b", port: 81, targetPort: 0 }, { name: "c", port: 82, targetPort: "" }, { name: "d", port: 83, targetPort: "http" }] }));
    expect(s.spec!.ports!.map((p) => p.targetPort)).toEqual([80, 81, 82, "http"]);
  });
  it("does not allocate a clusterIP or nodePorts", () => {
    const s = defaultService(svc({ type: "NodePort", ports: P80 }));
    expect(s.spec!.clusterIP).toBeUndefined();
    expect(s.spec!.clusterIPs).toBeUndefined();
    expect(s.spec!.ports![0]!.nodePort).toBeUndefined();
  });
  it("defaults sessionAffinity to None and drops a config with None", () => {
    expect(defaultService(svc({ ports: P80 })).spec!.sessionAffinity).toBe("None");
    const s = defaultService(svc({ ports: P80, sessionAffinity: "None", sessionAffinityConfig: { clientIP: { timeoutSeconds: 5 } } }));
    expect(s.spec!.sessionAffinityConfig).toBeUndefined();
  });
  it("gives ClientIP a 10800 s timeout when none is set", () => {
    expect(defaultService(svc({ ports: P80, sessionAffinity: "ClientIP" })).spec!.sessionAffinityConfig).toEqual({ clientIP: { timeoutSeconds: 10800 } });
    expect(defaultService(svc({ ports: P80, sessionAffinity: "ClientIP", sessionAffinityConfig: {} })).spec!.sessionAffinityConfig).toEqual({ clientIP: { timeoutSeconds: 10800 } });
    expect(defaultService(svc({ ports: P80, sessionAffinity: "ClientIP", sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } } })).spec!.sessionAffinityConfig!.clientIP!.timeoutSeconds).toBe(60);
  });
  it("defaults externalTrafficPolicy to Cluster only where externally accessible", () => {
    expect(defaultService(svc({ type: "NodePort", ports: P80 })).spec!.externalTrafficPolicy).toBe("Cluster");
    expect(defaultService(svc({ type: "LoadBalancer", ports: P80 })).spec!.externalTrafficPolicy).toBe("Cluster");
    expect(defaultService(svc({ ports: P80, externalIPs: ["80.11.12.10"] })).spec!.externalTrafficPolicy).toBe("Cluster");
    expect(defaultService(svc({ ports: P80 })).spec!.externalTrafficPolicy).toBeUndefined();
    expect(defaultService(svc({ type: "ExternalName", externalName: "a.com" })).spec!.externalTrafficPolicy).toBeUndefined();
    expect(defaultService(svc({ type: "LoadBalancer", ports: P80, externalTrafficPolicy: "Local" })).spec!.externalTrafficPolicy).toBe("Local");
  });
  it("defaults internalTrafficPolicy to Cluster except for ExternalName", () => {
    for (const type of ["ClusterIP", "NodePort", "LoadBalancer"] as const) {
      expect(defaultService(svc({ type, ports: P80 })).spec!.internalTrafficPolicy).toBe("Cluster");
    }
    expect(defaultService(svc({ type: "ExternalName", externalName: "a.com" })).spec!.internalTrafficPolicy).toBeUndefined();
    expect(defaultService(svc({ ports: P80, internalTrafficPolicy: "Local" })).spec!.internalTrafficPolicy).toBe("Local");
  });
  it("defaults allocateLoadBalancerNodePorts to true on LoadBalancer only", () => {
    expect(defaultService(svc({ type: "LoadBalancer", ports: P80 })).spec!.allocateLoadBalancerNodePorts).toBe(true);
    expect(defaultService(svc({ type: "LoadBalancer", ports: P80, allocateLoadBalancerNodePorts: false })).spec!.allocateLoadBalancerNodePorts).toBe(false);
    expect(defaultService(svc({ type: "NodePort", ports: P80 })).spec!.allocateLoadBalancerNodePorts).toBeUndefined();
  });
  it("defaults ipFamilyPolicy SingleStack and ipFamilies from the cluster's primary family", () => {
    const s = defaultService(svc({ ports: P80 }));
    expect(s.spec!.ipFamilyPolicy).toBe("SingleStack");
    expect(s.spec!.ipFamilies).toEqual(["IPv4"]);
    expect(defaultService(svc({ ports: P80 }), { primaryFamily: "IPv6" }).spec!.ipFamilies).toEqual(["IPv6"]);
  });
  it("takes ipFamilies from the clusterIP", () => {
    expect(defaultService(svc({ ports: P80, clusterIP: "fd00::5" })).spec!.ipFamilies).toEqual(["IPv6"]);
    expect(defaultService(svc({ ports: P80, clusterIP: "10.0.0.5" }), { primaryFamily: "IPv6" }).spec!.ipFamilies).toEqual(["IPv4"]);
  });
  it("keeps explicit ipFamilies", () =>
    expect(defaultService(svc({ ports: P80, ipFamilies: ["IPv6"] })).spec!.ipFamilies).toEqual(["IPv6"]));
  it("gives headless services the primary family", () =>
    expect(defaultService(svc({ clusterIP: "None" })).spec!.ipFamilies).toEqual(["IPv4"]));
  it("sets no ipFamilies/ipFamilyPolicy on ExternalName", () => {
    const s = defaultService(svc({ type: "ExternalName", externalName: "a.com" }));
    expect(s.spec!.ipFamilies).toBeUndefined();
    expect(s.spec!.ipFamilyPolicy).toBeUndefined();
  });
  it("initialises clusterIPs from a singular clusterIP", () => {
    expect(defaultService(svc({ ports: P80, clusterIP: "10.0.171.239" })).spec!.clusterIPs).toEqual(["10.0.171.239"]);
    expect(defaultService(svc({ clusterIP: "None" })).spec!.clusterIPs).toEqual(["None"]);
  });
});

describe("prepareServiceForUpdate", () => {
  const stored = (): Service =>
    defaultService(svc({ type: "NodePort", clusterIP: "10.0.0.5", ports: [{ name: "http", port: 80, nodePort: 30080 }] }));
  it("re-fills allocated clusterIP and nodePorts the client left out", () => {
    const old = stored();
    const next = defaultService(svc({ type: "NodePort", ports: [{ name: "http", port: 80 }] }), { old });
    expect(next.spec!.clusterIP).toBe("10.0.0.5");
    expect(next.spec!.clusterIPs).toEqual(["10.0.0.5"]);
    expect(next.spec!.ports![0]!.nodePort).toBe(30080);
  });
  it("drops nodePorts when leaving NodePort", () => {
    const old = stored();
    const next = prepareServiceForUpdate({ ...structuredClone(old), spec: { ...structuredClone(old.spec), type: "ClusterIP" } }, old);
    expect(next.spec!.ports![0]!.nodePort).toBeUndefined();
  });
  it("drops clusterIP(s), families and externalTrafficPolicy when moving to ExternalName", () => {
    const old = stored();
    const next = prepareServiceForUpdate({ ...structuredClone(old), spec: { ...structuredClone(old.spec), type: "ExternalName", externalName: "a.com" } }, old);
    expect(next.spec!.clusterIP).toBeUndefined();
    expect(next.spec!.clusterIPs).toBeUndefined();
    expect(next.spec!.ipFamilies).toBeUndefined();
    expect(next.spec!.ipFamilyPolicy).toBeUndefined();
    expect(next.spec!.externalTrafficPolicy).toBeUndefined();
  });
  it("drops healthCheckNodePort and LB status when leaving LoadBalancer+Local", () => {
    const old = defaultService(svc({ type: "LoadBalancer", externalTrafficPolicy: "Local", healthCheckNodePort: 30300, clusterIP: "10.0.0.5", ports: P80 }));
    old.status = { loadBalancer: { ingress: [{ ip: "192.0.2.127" }] } };
    const next = prepareServiceForUpdate({ ...structuredClone(old), spec: { ...structuredClone(old.spec), type: "NodePort" } }, old);
    expect(next.spec!.healthCheckNodePort).toBeUndefined();
    expect(next.spec!.allocateLoadBalancerNodePorts).toBeUndefined();
    expect(next.status!.loadBalancer).toEqual({});
  });
  it("clears clusterIPs when the client clears clusterIP alone", () => {
    const old = stored();
    const next = prepareServiceForUpdate({ ...structuredClone(old), spec: { ...structuredClone(old.spec), type: "ExternalName", externalName: "a.com", clusterIP: "" } }, old);
    expect(next.spec!.clusterIPs).toBeUndefined();
  });
});

describe("defaultEndpoints", () => {
  it("defaults subset port protocol to TCP and returns a new object", () => {
    const input = { apiVersion: "v1" as const, kind: "Endpoints" as const, metadata: { name: "a", namespace: "default" }, subsets: [{ addresses: [{ ip: "192.0.2.42" }], ports: [{ port: 9376 }, { port: 53, protocol: "UDP" as const }] }] };
    const out = defaultEndpoints(input);
    expect(out.subsets![0]!.ports!.map((p) => p.protocol)).toEqual(["TCP", "UDP"]);
    expect(input.subsets[0]!.ports[0]).toEqual({ port: 9376 });
  });
});
