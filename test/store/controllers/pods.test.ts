// Pod helpers and the graceful-deletion rule.
import { describe, it, expect } from "vitest";
import {
  findPort,
  podDeletionPlan,
  podDueForRemoval,
  podIPs,
  podIsReady,
  podIsTerminal,
  podIsTerminating,
  shouldPodBeInEndpoints,
  shouldSetHostname,
} from "../../../src/store/controllers/pods.js";
import { desiredEndpointSlices } from "../../../src/store/controllers/endpointslices.js";
import type { Pod } from "../../../src/store/types.js";
import { expectValidDelta, mkPod, mkSvc } from "./fixtures.js";

const NOW = Date.UTC(2030, 0, 1, 12, 0, 0, 250);

describe("pod predicates", () => {
  it("podIsReady follows the Ready condition", () => {
    expect(podIsReady(mkPod("a"))).toBe(true);
    expect(podIsReady(mkPod("a", { ready: false }))).toBe(false);
    const p = mkPod("a");
    p.status!.conditions = [{ type: "ContainersReady", status: "True" }];
    expect(podIsReady(p)).toBe(false);
    p.status!.conditions = [{ type: "Ready", status: "Unknown" }];
    expect(podIsReady(p)).toBe(false);
  });
  it.each([
    ["Running", false],
    ["Pending", false],
    ["Unknown", false],
    ["Succeeded", true],
    ["Failed", true],
  ] as const)("podIsTerminal(%s) = %s", (phase, want) => expect(podIsTerminal(mkPod("a", { phase }))).toBe(want));
  it("podIsTerminating = deletionTimestamp set", () => {
    expect(podIsTerminating(mkPod("a"))).toBe(false);
    expect(podIsTerminating(mkPod("a", { deleting: true }))).toBe(true);
  });
  it("podIPs: podIPs in order, canonical, podIP as fallback", () => {
    expect(podIPs(mkPod("a", { ips: ["10.0.0.1", "FD00::0001"] }))).toEqual(["10.0.0.1", "fd00::1"]);
    const p = mkPod("a", { ip: null });
    p.status!.podIP = "10.0.0.7";
    expect(podIPs(p)).toEqual(["10.0.0.7"]);
    expect(podIPs(mkPod("a", { ip: null }))).toEqual([]);
  });
  it("shouldPodBeInEndpoints: not terminal, with an IP, terminating only when asked", () => {
    expect(shouldPodBeInEndpoints(mkPod("a"), false)).toBe(true);
    expect(shouldPodBeInEndpoints(mkPod("a", { ip: null }), true)).toBe(false);
    expect(shouldPodBeInEndpoints(mkPod("a", { phase: "Failed" }), true)).toBe(false);
    expect(shouldPodBeInEndpoints(mkPod("a", { deleting: true }), false)).toBe(false);
    expect(shouldPodBeInEndpoints(mkPod("a", { deleting: true }), true)).toBe(true);
  });
  it("shouldSetHostname: hostname, subdomain = service name, same namespace", () => {
    const svc = mkSvc("web");
    expect(shouldSetHostname(mkPod("a", { hostname: "h", subdomain: "web" }), svc)).toBe(true);
    expect(shouldSetHostname(mkPod("a", { hostname: "h", subdomain: "web", ns: "other" }), svc)).toBe(false);
    expect(shouldSetHostname(mkPod("a", { subdomain: "web" }), svc)).toBe(false);
    expect(shouldSetHostname(mkPod("a", { hostname: "h" }), svc)).toBe(false);
  });
  it("findPort: numbers as is, names by name + protocol, absent targetPort = port", () => {
    const p = mkPod("a", { ports: [{ name: "dns", containerPort: 5353, protocol: "UDP" }, { name: "web", containerPort: 8080 }] });
    expect(findPort(p, { port: 80, targetPort: 9000 })).toBe(9000);
    expect(findPort(p, { port: 80 })).toBe(80);
    expect(findPort(p, { port: 80, targetPort: "web" })).toBe(8080);
    expect(findPort(p, { port: 80, targetPort: "web", protocol: "UDP" })).toBeNull();
    expect(findPort(p, { port: 53, targetPort: "dns", protocol: "UDP" })).toBe(5353);
    expect(findPort(p, { port: 53, targetPort: "dns" })).toBeNull();
    expect(findPort(p, { port: 80, targetPort: "nope" })).toBeNull();
  });
});

describe("podDeletionPlan (graceful deletion)", () => {
  it("default grace 30 s: marked terminating, deletionTimestamp = now + 30 s", () => {
    const plan = podDeletionPlan(mkPod("a"), NOW);
    expect(plan.removeNow).toBe(false);
    expect(plan.gracePeriodSeconds).toBe(30);
    expect(plan.removeAt).toBe("2030-01-01T12:00:30Z");
    expect(plan.update?.metadata.deletionTimestamp).toBe("2030-01-01T12:00:30Z");
    expect(plan.update?.metadata.deletionGracePeriodSeconds).toBe(30);
  });
  it("spec.terminationGracePeriodSeconds", () => {
    const p = mkPod("a");
    p.spec!.terminationGracePeriodSeconds = 5;
    expect(podDeletionPlan(p, NOW).removeAt).toBe("2030-01-01T12:00:05Z");
  });
  it("DeleteOptions.gracePeriodSeconds wins; 0 removes at once", () => {
    expect(podDeletionPlan(mkPod("a"), NOW, { gracePeriodSeconds: 10 }).gracePeriodSeconds).toBe(10);
    const zero = podDeletionPlan(mkPod("a"), NOW, { gracePeriodSeconds: 0 });
    expect(zero).toMatchObject({ removeNow: true, update: null, gracePeriodSeconds: 0 });
  });
  it("negative grace becomes 1", () => expect(podDeletionPlan(mkPod("a"), NOW, { gracePeriodSeconds: -5 }).gracePeriodSeconds).toBe(1));
  it("unscheduled pods are removed at once", () => expect(podDeletionPlan(mkPod("a", { node: null }), NOW).removeNow).toBe(true));
  it("terminal pods are removed at once", () => expect(podDeletionPlan(mkPod("a", { phase: "Succeeded" }), NOW).removeNow).toBe(true));
  it("generation is bumped when set", () => {
    const p = mkPod("a");
    p.metadata.generation = 3;
    expect(podDeletionPlan(p, NOW).update?.metadata.generation).toBe(4);
  });
  it("does not modify its input", () => {
    const p = mkPod("a");
    const before = JSON.stringify(p);
    podDeletionPlan(p, NOW);
    expect(JSON.stringify(p)).toBe(before);
  });

  describe("an already-terminating pod", () => {
    const marked = (): Pod => podDeletionPlan(mkPod("a"), NOW).update!;
    it("a second delete leaves the pending deletion alone", () => {
      const plan = podDeletionPlan(marked(), NOW + 5000);
      expect(plan).toMatchObject({ removeNow: false, update: null, gracePeriodSeconds: 30, removeAt: "2030-01-01T12:00:30Z" });
    });
    it("only a shorter grace period is accepted: the deletion time moves earlier", () => {
      const plan = podDeletionPlan(marked(), NOW + 5000, { gracePeriodSeconds: 10 });
      expect(plan.update?.metadata.deletionTimestamp).toBe("2030-01-01T12:00:10Z");
      expect(plan.update?.metadata.deletionGracePeriodSeconds).toBe(10);
      expect(podDeletionPlan(marked(), NOW, { gracePeriodSeconds: 60 }).update).toBeNull();
    });
    it("shortening to 0 removes it", () => expect(podDeletionPlan(marked(), NOW, { gracePeriodSeconds: 0 }).removeNow).toBe(true));
    it("removed once the grace period has run out", () => {
      expect(podDeletionPlan(marked(), NOW + 29_000).removeNow).toBe(false);
      expect(podDeletionPlan(marked(), NOW + 30_000).removeNow).toBe(true);
      expect(podDueForRemoval(marked(), NOW + 29_000)).toBe(false);
      expect(podDueForRemoval(marked(), NOW + 30_000)).toBe(true);
      expect(podDueForRemoval(mkPod("a"), NOW + 1e9)).toBe(false);
    });
    it("finalizers hold the object", () => {
      const p = marked();
      p.metadata.finalizers = ["example.com/hold"];
      expect(podDeletionPlan(p, NOW + 60_000).blockedByFinalizers).toBe(true);
      expect(podDueForRemoval(p, NOW + 60_000)).toBe(false);
    });
  });

  it("its endpoints become terminating while the grace period runs", () => {
    const plan = podDeletionPlan(mkPod("a"), NOW);
    const d = desiredEndpointSlices(mkSvc("web"), [plan.update!], []);
    expectValidDelta(d);
    expect(d.create[0]!.endpoints[0]!.conditions).toEqual({ ready: false, serving: true, terminating: true });
  });
});
