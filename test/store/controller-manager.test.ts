// The controller manager end to end through the registry: Pods + Service → EndpointSlices and
// Endpoints; readiness and graceful deletion change conditions; the grace period's end removes
// the pod's endpoints; deleting the Service removes what the controllers manage; 250 pods → 3
// slices in one coalesced reconcile; 409 conflicts retried with a fresh read; LoadBalancer
// allocation failures recorded as Events.
import { afterEach, describe, expect, it } from "vitest";
import { Registry } from "../../src/store/registry.js";
import { ControllerManager, type ObjectWriter } from "../../src/store/controller-manager.js";
import type { StoredObject } from "../../src/store/db.js";
import type { EndpointSlice, Endpoints, Pod, Service } from "../../src/store/types.js";
import { tempDir } from "./fixtures/tmp.js";

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function setup(opts: { lbPool?: string; writer?: (reg: Registry) => ObjectWriter } = {}): Promise<{ reg: Registry; cm: ControllerManager }> {
  const t = tempDir("tapvip-cm-");
  const reg = Registry.open(t.dir, { namespaceGraceMs: 0, lbPool: opts.lbPool, store: { durability: "normal" } });
  const cm = new ControllerManager({ source: reg, writer: opts.writer ? opts.writer(reg) : reg, batchMs: 5, lbPool: opts.lbPool });
  await cm.start();
  cleanups.push(() => {
    cm.stop();
    reg.close();
    t.cleanup();
  });
  return { reg, cm };
}

async function waitFor<T>(fn: () => T | undefined | false, what: string, timeoutMs = 3000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    let v: T | undefined | false;
    let err: unknown;
    try {
      v = fn();
    } catch (e) {
      err = e;
    }
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${err ? `: ${String(err)}` : ""}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function pod(name: string, ip: string, opts: { ready?: boolean; labels?: Record<string, string>; grace?: number } = {}): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "default", labels: opts.labels ?? { app: "web" } },
    spec: {
      nodeName: "node-1",
      terminationGracePeriodSeconds: opts.grace ?? 30,
      containers: [{ name: "c", ports: [{ name: "http", containerPort: 8080, protocol: "TCP" }] }],
    },
    status: { phase: "Running", podIP: ip, conditions: [{ type: "Ready", status: opts.ready === false ? "False" : "True" }] },
  };
}

function webService(name = "web", extra: Partial<Service["spec"]> = {}): Service {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name, namespace: "default", labels: { tier: "front" } },
    spec: { selector: { app: "web" }, ports: [{ name: "http", port: 80, targetPort: "http", appProtocol: "http" }], ...extra },
  };
}

const slicesOf = (reg: Registry, svc = "web"): EndpointSlice[] =>
  reg.listSync("EndpointSlice", { namespace: "default", labelSelector: `kubernetes.io/service-name=${svc}` }).items as unknown as EndpointSlice[];
const endpointsOf = (reg: Registry, svc = "web"): Endpoints | undefined => reg.find<Endpoints>("Endpoints", "default", svc);
const allEndpoints = (reg: Registry, svc = "web") => slicesOf(reg, svc).flatMap((s) => s.endpoints ?? []);

describe("controller manager", () => {
  it("creates EndpointSlices and Endpoints for a selector Service and follows readiness", async () => {
    const { reg } = await setup();
    reg.create("Pod", pod("web-1", "10.244.0.11"));
    reg.create("Pod", pod("web-2", "10.244.0.12", { ready: false }));
    reg.create("Pod", pod("other", "10.244.0.13", { labels: { app: "db" } }));
    reg.create("Service", webService());

    const eps = await waitFor(() => (allEndpoints(reg).length === 2 ? allEndpoints(reg) : undefined), "two endpoints");
    const s = slicesOf(reg)[0]!;
    expect(s.metadata.labels).toMatchObject({
      "kubernetes.io/service-name": "web",
      "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
      tier: "front",
    });
    expect(s.ports).toEqual([{ name: "http", port: 8080, protocol: "TCP", appProtocol: "http" }]);
    const byIP = Object.fromEntries(eps.map((e) => [e.addresses[0], e.conditions]));
    expect(byIP["10.244.0.11"]).toEqual({ ready: true, serving: true, terminating: false });
    expect(byIP["10.244.0.12"]).toEqual({ ready: false, serving: false, terminating: false });

    const ep = await waitFor(() => endpointsOf(reg), "Endpoints");
    expect(ep.subsets?.[0]?.addresses?.map((a) => a.ip)).toEqual(["10.244.0.11"]);
    expect(ep.subsets?.[0]?.notReadyAddresses?.map((a) => a.ip)).toEqual(["10.244.0.12"]);
    expect(ep.subsets?.[0]?.ports).toEqual([{ name: "http", port: 8080, protocol: "TCP", appProtocol: "http" }]);

    // web-1 turns unready, web-2 ready
    const p1 = reg.get<Pod>("Pod", "default", "web-1");
    p1.status!.conditions = [{ type: "Ready", status: "False" }];
    reg.update("Pod", p1);
    const p2 = reg.get<Pod>("Pod", "default", "web-2");
    p2.status!.conditions = [{ type: "Ready", status: "True" }];
    reg.update("Pod", p2);
    await waitFor(() => {
      const m = Object.fromEntries(allEndpoints(reg).map((e) => [e.addresses[0], e.conditions?.ready]));
      return m["10.244.0.11"] === false && m["10.244.0.12"] === true;
    }, "readiness flip");
    await waitFor(() => endpointsOf(reg)?.subsets?.[0]?.addresses?.[0]?.ip === "10.244.0.12", "Endpoints flip");

    // labels moving a pod out of the selector remove it
    const p3 = reg.get<Pod>("Pod", "default", "web-1");
    p3.metadata.labels = { app: "gone" };
    reg.update("Pod", p3);
    await waitFor(() => allEndpoints(reg).length === 1, "pod relabelled away");
  });

  it("graceful pod deletion: endpoints turn terminating, then go when the grace period ends", async () => {
    const { reg } = await setup();
    reg.create("Service", webService());
    reg.create("Pod", pod("web-1", "10.244.0.11", { grace: 1 }));
    reg.create("Pod", pod("web-2", "10.244.0.12"));
    await waitFor(() => allEndpoints(reg).length === 2, "two endpoints");

    const marked = reg.delete<Pod>("Pod", "default", "web-1");
    expect(marked.metadata.deletionTimestamp).toBeDefined();
    expect(marked.metadata.deletionGracePeriodSeconds).toBe(1);
    expect(reg.find("Pod", "default", "web-1")).toBeDefined();
    await waitFor(() => {
      const e = allEndpoints(reg).find((x) => x.addresses[0] === "10.244.0.11");
      return e?.conditions?.terminating === true && e.conditions.serving === true && e.conditions.ready === false;
    }, "terminating conditions");
    // the legacy Endpoints leave terminating pods out
    await waitFor(() => endpointsOf(reg)?.subsets?.[0]?.addresses?.length === 1, "Endpoints without the terminating pod");

    // the grace period (≤ 1 s) ends: the pod is removed, and with it its endpoint
    await waitFor(() => !reg.find("Pod", "default", "web-1"), "pod removal", 3000);
    await waitFor(() => allEndpoints(reg).length === 1, "endpoint removal");

    // grace 0 removes at once
    reg.delete("Pod", "default", "web-2", { gracePeriodSeconds: 0 });
    expect(reg.find("Pod", "default", "web-2")).toBeUndefined();
    await waitFor(() => slicesOf(reg).length === 1 && allEndpoints(reg).length === 0, "placeholder slice");
  });

  it("a shorter grace period moves the deadline; finalizers hold the pod", () => {
    let t = Date.parse("2025-01-01T00:00:00Z");
    const tmp = tempDir("tapvip-cm-");
    const reg = Registry.open(tmp.dir, { clock: () => new Date(t), podGraceTimers: false, store: { durability: "normal" } });
    cleanups.push(() => {
      reg.close();
      tmp.cleanup();
    });
    reg.create("Pod", pod("a", "10.244.0.1", { grace: 30 }));
    const m1 = reg.delete<Pod>("Pod", "default", "a");
    expect(m1.metadata.deletionTimestamp).toBe("2025-01-01T00:00:30Z");
    t += 5000;
    expect(reg.delete<Pod>("Pod", "default", "a").metadata.deletionTimestamp).toBe("2025-01-01T00:00:30Z"); // longer/equal: stands
    const m2 = reg.delete<Pod>("Pod", "default", "a", { gracePeriodSeconds: 10 });
    expect(m2.metadata.deletionTimestamp).toBe("2025-01-01T00:00:10Z"); // 30 - 30 + 10 from the first request
    t += 5000;
    expect(reg.sweepTerminatingPods()).toBe(1);
    expect(reg.find("Pod", "default", "a")).toBeUndefined();

    const withFin = pod("b", "10.244.0.2", { grace: 1 });
    withFin.metadata.finalizers = ["example.com/hold"];
    reg.create("Pod", withFin);
    reg.delete("Pod", "default", "b");
    t += 2000;
    expect(reg.sweepTerminatingPods()).toBe(0);
    expect(reg.find("Pod", "default", "b")).toBeDefined();
    const cur = reg.get<Pod>("Pod", "default", "b");
    cur.metadata.finalizers = [];
    reg.update("Pod", cur);
    expect(reg.find("Pod", "default", "b")).toBeUndefined(); // past its deadline, last finalizer gone
  });

  it("deleting the Service removes its managed slices and Endpoints; selector-less Services are left alone", async () => {
    const { reg, cm } = await setup();
    reg.create("Pod", pod("web-1", "10.244.0.11"));
    reg.create("Service", webService());
    await waitFor(() => allEndpoints(reg).length === 1 && endpointsOf(reg), "managed objects");

    // a selector-less Service with user-written Endpoints
    reg.create("Service", { apiVersion: "v1", kind: "Service", metadata: { name: "ext", namespace: "default" }, spec: { ports: [{ port: 80 }] } });
    reg.create("Endpoints", {
      apiVersion: "v1",
      kind: "Endpoints",
      metadata: { name: "ext", namespace: "default" },
      subsets: [{ addresses: [{ ip: "192.0.2.10" }], ports: [{ port: 80 }] }],
    });

    reg.delete("Service", "default", "web");
    await waitFor(() => slicesOf(reg).length === 0 && !endpointsOf(reg), "managed objects gone");
    await cm.idle();
    expect(slicesOf(reg, "ext")).toEqual([]);
    expect(endpointsOf(reg, "ext")?.subsets?.[0]?.addresses?.[0]?.ip).toBe("192.0.2.10");
    reg.delete("Service", "default", "ext");
    await cm.idle();
    expect(endpointsOf(reg, "ext")).toBeDefined(); // not managed: stays
  });

  it("250 pods → 3 slices (100/100/50) and 250 addresses, from one coalesced reconcile", async () => {
    const { reg, cm } = await setup();
    reg.create("Service", webService());
    await waitFor(() => slicesOf(reg).length === 1 && endpointsOf(reg), "placeholder");
    await cm.idle();
    const before = { ...cm.stats };
    for (let i = 0; i < 250; i++) reg.create("Pod", pod(`web-${i}`, `10.244.${Math.floor(i / 200)}.${(i % 200) + 1}`));
    await waitFor(() => allEndpoints(reg).length === 250 && endpointsOf(reg)?.subsets?.[0]?.addresses?.length === 250, "250 endpoints");
    await cm.idle();
    const sizes = slicesOf(reg).map((s) => s.endpoints?.length ?? 0).sort((a, b) => b - a);
    expect(sizes).toEqual([100, 100, 50]);
    expect(cm.stats.reconcilesWithWrites - before.reconcilesWithWrites).toBe(1);
    // placeholder updated + 2 created, Endpoints updated once
    expect(cm.stats.creates - before.creates).toBe(2);
    expect(cm.stats.updates - before.updates).toBe(2);
    expect(new Set(allEndpoints(reg).map((e) => e.addresses[0])).size).toBe(250);
  });

  it("retries a 409 conflict with a fresh read", async () => {
    let inject = 0;
    const { reg, cm } = await setup({
      writer: (r) => ({
        get: (k, ns, n) => r.get(k, ns, n),
        create: (k, o, opts) => r.create(k, o, opts),
        delete: (k, ns, n, opts) => r.delete(k, ns, n, opts),
        update: (k, o: StoredObject, opts) => {
          if (k === "EndpointSlice" && inject > 0) {
            inject--;
            // someone else wrote the slice in between: our copy is stale now
            const cur = r.get<StoredObject>(k, opts.namespace, opts.name ?? "");
            cur.metadata.annotations = { touched: "yes" };
            r.update(k, cur);
          }
          return r.update(k, o, opts);
        },
      }),
    });
    reg.create("Service", webService());
    await waitFor(() => slicesOf(reg).length === 1, "placeholder");
    await cm.idle();
    inject = 1;
    reg.create("Pod", pod("web-1", "10.244.0.11"));
    await waitFor(() => allEndpoints(reg).length === 1, "endpoint after conflict");
    expect(cm.stats.conflicts).toBeGreaterThanOrEqual(1);
    expect(slicesOf(reg)).toHaveLength(1);
  });

  it("records LoadBalancer allocation failures as Events and retries when a pool IP is released", async () => {
    const { reg, cm } = await setup({ lbPool: "192.0.2.0/30" });
    const lb = (name: string): Service => ({
      apiVersion: "v1",
      kind: "Service",
      metadata: { name, namespace: "default" },
      spec: { type: "LoadBalancer", ports: [{ port: 80 }] },
    });
    reg.create("Service", lb("lb-a"));
    reg.create("Service", lb("lb-b"));
    const c = reg.create<Service>("Service", lb("lb-c"));
    expect(c.status?.loadBalancer?.ingress).toBeUndefined(); // pool of 2 is full
    const events = () => reg.listSync("Event", { namespace: "default" }).items as unknown as { reason: string; type: string; message: string; involvedObject: { name: string } }[];
    const failed = await waitFor(() => events().find((e) => e.reason === "AllocationFailed" && e.involvedObject.name === "lb-c"), "AllocationFailed event");
    expect(failed.type).toBe("Warning");
    expect(failed.message).toContain("no free address in the pool 192.0.2.0/30");

    reg.delete("Service", "default", "lb-a");
    await waitFor(() => (reg.get<Service>("Service", "default", "lb-c").status?.loadBalancer?.ingress?.length ?? 0) > 0, "lb-c gets the freed IP");
    await waitFor(() => events().find((e) => e.reason === "IPAllocated" && e.involvedObject.name === "lb-c"), "IPAllocated event");
    await cm.idle();
  });
});
