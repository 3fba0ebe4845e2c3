// Registry semantics: §3 allocation rules, transactional writes, repair, optimistic concurrency,
// Status errors, /status, patches, pod grace periods, namespaces.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Registry, StatusError, serviceAllocations } from "../../src/store/registry.js";
import { seededRandom } from "../../src/store/allocators.js";
import type { Service, ServiceSpec, Status } from "../../src/store/types.js";
import { tempDir } from "./fixtures/tmp.js";

let tmp: ReturnType<typeof tempDir>;
let reg: Registry;

function open(opts: Parameters<typeof Registry.open>[1] = {}): Registry {
  return Registry.open(tmp.dir, { random: seededRandom(7), lbPool: "192.0.2.0/28", store: { durability: "normal" }, ...opts });
}

beforeEach(() => {
  tmp = tempDir();
  reg = open();
});
afterEach(() => {
  reg.close();
  tmp.cleanup();
});

function svc(name: string, spec: ServiceSpec, ns = "default"): Service {
  return { apiVersion: "v1", kind: "Service", metadata: { name, namespace: ns }, spec };
}

function create(name: string, spec: ServiceSpec): Service {
  return reg.create("Service", svc(name, spec));
}

function statusOf(fn: () => unknown): Status {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(StatusError);
    return (e as StatusError).status;
  }
  throw new Error("expected a StatusError");
}

/** The allocation table as sorted "pool:value" strings. */
function table(r = reg): string[] {
  return r.store
    .allocations()
    .map((a) => `${a.pool}:${a.value}`)
    .sort();
}

/** The allocations derived from stored Services, same format. */
function derived(r = reg): string[] {
  return r
    .derivedAllocations()
    .rows.map((a) => `${a.pool}:${a.value}`)
    .sort();
}

function used(r = reg): { ips: number; ports: number; lb: number } {
  return { ips: r.serviceIPs.used(), ports: r.nodePorts.used(), lb: r.lbIPs?.used() ?? 0 };
}

describe("bootstrap", () => {
  it("creates default namespaces and default/kubernetes with the first address", () => {
    const k = reg.get<Service>("Service", "default", "kubernetes");
    expect(k.spec?.clusterIP).toBe("10.96.0.1");
    expect(reg.get("Namespace", undefined, "default").metadata.uid).toBeTruthy();
    expect(table()).toEqual(["serviceIP:10.96.0.1"]);
  });
});

describe("create", () => {
  it("defaults, allocates a ClusterIP from the upper band and sets metadata", () => {
    const s = create("web", { ports: [{ port: 80 }] });
    expect(s.spec?.clusterIP).toMatch(/^10\.(9[6-9]|1[01][0-9])\./);
    expect(s.spec?.clusterIPs).toEqual([s.spec?.clusterIP]);
    expect(reg.serviceIPs.contains(s.spec!.clusterIP!)).toBe(true);
    // upper band: not among the first 256 addresses
    expect(s.spec!.clusterIP!.startsWith("10.96.0.")).toBe(false);
    expect(s.metadata.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(s.metadata.generation).toBe(1);
    expect(Number(s.metadata.resourceVersion)).toBeGreaterThan(0);
    expect(s.spec?.ports?.[0]).toMatchObject({ protocol: "TCP", targetPort: 80 });
    expect(s.status).toEqual({ loadBalancer: {} });
  });

  it("honours a requested ClusterIP; taken → 422 already allocated; outside the range → 422", () => {
    create("a", { clusterIP: "10.96.0.20", ports: [{ port: 80 }] });
    const taken = statusOf(() => create("b", { clusterIP: "10.96.0.20", ports: [{ port: 80 }] }));
    expect(taken.code).toBe(422);
    expect(taken.reason).toBe("Invalid");
    expect(taken.details?.causes?.[0]).toMatchObject({ field: "spec.clusterIPs" });
    expect(taken.message).toContain("provided IP is already allocated");
    const out = statusOf(() => create("c", { clusterIP: "10.0.171.239", ports: [{ port: 80 }] }));
    expect(out.code).toBe(422);
    expect(out.message).toContain("is not in the valid range");
    expect(() => reg.get("Service", "default", "b")).toThrow(StatusError);
  });

  it("a failed create allocates nothing (invalid, conflicting nodePort, range full)", () => {
    const before = { t: table(), u: used() };
    // invalid object: nothing allocated, nothing stored
    const inv = statusOf(() => create("bad", { type: "NodePort", ports: [{ port: 0 }] }));
    expect(inv.code).toBe(422);
    expect(inv.details?.causes?.some((c) => c.field === "spec.ports[0].port")).toBe(true);
    // second port conflicts after the ClusterIP and first nodePort were allocated
    create("holder", { type: "NodePort", ports: [{ port: 80, nodePort: 30100 }] });
    const mid = { t: table(), u: used() };
    const conflict = statusOf(() =>
      create("np", {
        type: "NodePort",
        ports: [
          { name: "a", port: 80, nodePort: 30101 },
          { name: "b", port: 81, nodePort: 30100 },
        ],
      }),
    );
    expect(conflict.code).toBe(422);
    expect(conflict.message).toContain("spec.ports[1].nodePort: Invalid value: 30100: provided port is already allocated");
    expect(table()).toEqual(mid.t);
    expect(used()).toEqual(mid.u);
    expect(before.u.ips + 1).toBe(mid.u.ips);
    expect(reg.find("Service", "default", "np")).toBeUndefined();
  });

  it("nodePort outside the range → 422 with the range", () => {
    const s = statusOf(() => create("np", { type: "NodePort", ports: [{ port: 80, nodePort: 8080 }] }));
    expect(s.message).toContain("provided port is not in the valid range. The range of valid ports is 30000-32767");
  });

  it("range full → 500 and nothing leaked", () => {
    reg.close();
    reg = open({ serviceCIDR: "10.1.0.0/30", nodePortRange: "30000-30001" }); // 2 usable IPs, first is kubernetes'
    create("one", { ports: [{ port: 80 }] });
    const full = statusOf(() => create("two", { ports: [{ port: 80 }] }));
    expect(full.code).toBe(500);
    expect(full.reason).toBe("InternalError");
    expect(full.message).toContain("failed to allocate a serviceIP: range is full");
    reg.delete("Service", "default", "one");
    create("np1", { type: "NodePort", ports: [{ name: "a", port: 80 }, { name: "b", port: 81 }] });
    const before = table();
    reg.delete("Service", "default", "np1");
    create("np2", { type: "NodePort", ports: [{ port: 80, nodePort: 30000 }] });
    const ports = statusOf(() => create("np3", { type: "NodePort", ports: [{ name: "a", port: 80 }, { name: "b", port: 81 }] }));
    expect(ports.code).toBe(500);
    expect(ports.message).toContain("range is full");
    expect(before.length).toBe(3);
    expect(table()).toEqual(derived());
  });

  it("TCP and UDP on the same port share one auto-allocated nodePort", () => {
    const s = create("dns", {
      type: "NodePort",
      ports: [
        { name: "dns-tcp", port: 53, protocol: "TCP" },
        { name: "dns-udp", port: 53, protocol: "UDP" },
      ],
    });
    const [a, b] = s.spec!.ports!;
    expect(a!.nodePort).toBeGreaterThanOrEqual(30000);
    expect(a!.nodePort).toBe(b!.nodePort);
    expect(serviceAllocations(s).nodePort).toEqual([a!.nodePort]);
    expect(table().filter((x) => x.startsWith("nodePort:"))).toEqual([`nodePort:${a!.nodePort}`]);
  });

  it("allocateLoadBalancerNodePorts=false allocates none but honours explicit ones", () => {
    const s = create("lb", {
      type: "LoadBalancer",
      allocateLoadBalancerNodePorts: false,
      ports: [
        { name: "a", port: 80 },
        { name: "b", port: 81, nodePort: 30555 },
      ],
    });
    expect(s.spec!.ports![0]!.nodePort).toBeUndefined();
    expect(s.spec!.ports![1]!.nodePort).toBe(30555);
    expect(reg.nodePorts.list()).toEqual([30555]);
  });

  it("LoadBalancer+Local gets a healthCheckNodePort; explicit one honoured", () => {
    const s = create("lb", { type: "LoadBalancer", externalTrafficPolicy: "Local", ports: [{ port: 80 }] });
    expect(s.spec!.healthCheckNodePort).toBeGreaterThanOrEqual(30000);
    expect(s.spec!.healthCheckNodePort).not.toBe(s.spec!.ports![0]!.nodePort);
    expect(reg.nodePorts.used()).toBe(2);
    const t = create("lb2", { type: "LoadBalancer", externalTrafficPolicy: "Local", healthCheckNodePort: 30999, ports: [{ port: 80 }] });
    expect(t.spec!.healthCheckNodePort).toBe(30999);
    expect(reg.nodePorts.has(30999)).toBe(true);
  });

  it("LoadBalancer ingress from the pool, loadBalancerIP inside the pool honoured, loadBalancerClass skipped", () => {
    const a = create("a", { type: "LoadBalancer", ports: [{ port: 80 }] });
    const ipA = a.status?.loadBalancer?.ingress?.[0]?.ip;
    expect(ipA).toMatch(/^192\.0\.2\./);
    const b = create("b", { type: "LoadBalancer", loadBalancerIP: "192.0.2.9", ports: [{ port: 80 }] });
    expect(b.status?.loadBalancer?.ingress).toEqual([{ ip: "192.0.2.9", ipMode: "VIP" }]);
    const c = create("c", { type: "LoadBalancer", loadBalancerClass: "example.com/lb", ports: [{ port: 80 }] });
    expect(c.status?.loadBalancer?.ingress).toBeUndefined();
    // requested IP taken: stays pending, nothing allocated for it
    const d = create("d", { type: "LoadBalancer", loadBalancerIP: "192.0.2.9", ports: [{ port: 80 }] });
    expect(d.status?.loadBalancer?.ingress).toBeUndefined();
    expect(reg.lbIPs!.list().sort()).toEqual([ipA, "192.0.2.9"].sort());
    // status given on create is ignored
    const e = reg.create("Service", { ...svc("e", { type: "LoadBalancer", loadBalancerClass: "x.io/y", ports: [{ port: 80 }] }), status: { loadBalancer: { ingress: [{ ip: "192.0.2.127" }] } } });
    expect(e.status?.loadBalancer?.ingress).toBeUndefined();
  });

  it("namespace must exist; duplicate → 409 AlreadyExists", () => {
    const nf = statusOf(() => reg.create("Service", svc("x", { ports: [{ port: 80 }] }, "nope")));
    expect(nf.code).toBe(404);
    expect(nf.message).toBe('namespaces "nope" not found');
    create("x", { ports: [{ port: 80 }] });
    const dup = statusOf(() => create("x", { ports: [{ port: 80 }] }));
    expect(dup.code).toBe(409);
    expect(dup.reason).toBe("AlreadyExists");
    expect(dup.message).toBe('services "x" already exists');
  });

  it("dry run validates and allocates, then rolls back", () => {
    const before = { t: table(), u: used(), rv: reg.store.currentRV() };
    const s = reg.create("Service", svc("dry", { type: "NodePort", ports: [{ port: 80 }] }), { dryRun: true });
    expect(s.spec?.clusterIP).toBeTruthy();
    expect(reg.find("Service", "default", "dry")).toBeUndefined();
    expect({ t: table(), u: used(), rv: reg.store.currentRV() }).toEqual(before);
  });
});

describe("update and delete", () => {
  it("stale resourceVersion → 409 Conflict; generation bumps on spec change only", () => {
    const s = create("web", { ports: [{ port: 80 }] });
    const upd = structuredClone(s);
    upd.spec!.ports![0]!.port = 81;
    const s2 = reg.update("Service", upd);
    expect(s2.metadata.generation).toBe(2);
    expect(Number(s2.metadata.resourceVersion)).toBeGreaterThan(Number(s.metadata.resourceVersion));
    const stale = structuredClone(s);
    stale.metadata.labels = { a: "b" };
    const c = statusOf(() => reg.update("Service", stale));
    expect(c.code).toBe(409);
    expect(c.reason).toBe("Conflict");
    expect(c.message).toContain('Operation cannot be fulfilled on services "web": the object has been modified');
    const lbl = reg.update("Service", { ...structuredClone(s2), metadata: { ...s2.metadata, labels: { a: "b" } } });
    expect(lbl.metadata.generation).toBe(2);
    // no-op update: same resourceVersion
    const same = reg.update("Service", structuredClone(lbl));
    expect(same.metadata.resourceVersion).toBe(lbl.metadata.resourceVersion);
  });

  it("clusterIP may not change; ClusterIP allocation kept when omitted on update", () => {
    const s = create("web", { ports: [{ port: 80 }] });
    const u = structuredClone(s);
    delete u.spec!.clusterIP;
    delete u.spec!.clusterIPs;
    expect(reg.update("Service", u).spec?.clusterIP).toBe(s.spec?.clusterIP);
    const v = structuredClone(reg.get<Service>("Service", "default", "web"));
    v.spec!.clusterIP = "10.96.0.99";
    v.spec!.clusterIPs = ["10.96.0.99"];
    const st = statusOf(() => reg.update("Service", v));
    expect(st.code).toBe(422);
    expect(st.message).toContain("may not change once set");
    expect(reg.serviceIPs.has("10.96.0.99")).toBe(false);
  });

  it("NodePort → ClusterIP frees nodePorts; → ExternalName frees the clusterIP; back allocates again", () => {
    const s = create("web", { type: "NodePort", ports: [{ port: 80 }] });
    const np = s.spec!.ports![0]!.nodePort!;
    const ip = s.spec!.clusterIP!;
    const c = reg.patch<Service>("Service", "default", "web", "merge", { spec: { type: "ClusterIP" } });
    expect(c.spec!.ports![0]!.nodePort).toBeUndefined();
    expect(reg.nodePorts.has(np)).toBe(false);
    const e = reg.patch<Service>("Service", "default", "web", "merge", {
      spec: { type: "ExternalName", externalName: "db.example.com", clusterIP: null, clusterIPs: null },
    });
    expect(e.spec?.clusterIP).toBeUndefined();
    expect(reg.serviceIPs.has(ip)).toBe(false);
    const back = reg.patch<Service>("Service", "default", "web", "merge", { spec: { type: "ClusterIP", externalName: null } });
    expect(back.spec?.clusterIP).toBeTruthy();
    expect(reg.serviceIPs.has(back.spec!.clusterIP!)).toBe(true);
    expect(table()).toEqual(derived());
  });

  it("leaving LoadBalancer+Local frees healthCheckNodePort and the ingress IP, clears status", () => {
    const s = create("lb", { type: "LoadBalancer", externalTrafficPolicy: "Local", ports: [{ port: 80 }] });
    const hc = s.spec!.healthCheckNodePort!;
    const ing = s.status!.loadBalancer!.ingress![0]!.ip!;
    const cl = reg.patch<Service>("Service", "default", "lb", "merge", { spec: { externalTrafficPolicy: "Cluster" } });
    expect(cl.spec?.healthCheckNodePort).toBeUndefined();
    expect(reg.nodePorts.has(hc)).toBe(false);
    expect(cl.status?.loadBalancer?.ingress?.[0]?.ip).toBe(ing);
    const np = reg.patch<Service>("Service", "default", "lb", "merge", { spec: { type: "NodePort" } });
    expect(np.status?.loadBalancer).toEqual({});
    expect(reg.lbIPs!.has(ing)).toBe(false);
    expect(np.spec!.ports![0]!.nodePort).toBe(s.spec!.ports![0]!.nodePort);
    expect(table()).toEqual(derived());
  });

  it("delete releases IPs and ports; a new Service can take them", () => {
    const s = create("web", { type: "LoadBalancer", externalTrafficPolicy: "Local", clusterIP: "10.96.0.50", ports: [{ port: 80, nodePort: 30080 }] });
    expect(table().length).toBe(5);
    const d = reg.delete<Service>("Service", "default", "web");
    expect(Number(d.metadata.resourceVersion)).toBeGreaterThan(Number(s.metadata.resourceVersion));
    expect(table()).toEqual(["serviceIP:10.96.0.1"]);
    expect(used()).toEqual({ ips: 1, ports: 0, lb: 0 });
    create("again", { type: "NodePort", clusterIP: "10.96.0.50", ports: [{ port: 80, nodePort: 30080 }] });
    const nf = statusOf(() => reg.delete("Service", "default", "web"));
    expect(nf.code).toBe(404);
    expect(nf.message).toBe('services "web" not found');
  });

  it("/status updates status.loadBalancer only; pool IPs are tracked", () => {
    const s = create("lb", { type: "LoadBalancer", loadBalancerClass: "example.com/lb", ports: [{ port: 80 }] });
    const upd = structuredClone(s);
    upd.spec!.ports![0]!.port = 9999;
    upd.status = { loadBalancer: { ingress: [{ ip: "203.0.113.5" }] } };
    const out = reg.update<Service>("Service", upd, { subresource: "status" });
    expect(out.spec!.ports![0]!.port).toBe(80);
    expect(out.status?.loadBalancer?.ingress).toEqual([{ ip: "203.0.113.5" }]);
    const main = structuredClone(out);
    main.status = {};
    expect(reg.update<Service>("Service", main).status?.loadBalancer?.ingress).toEqual([{ ip: "203.0.113.5" }]);
    // managed service: a pool IP written through /status is allocated; another service's is refused
    const a = create("a", { type: "LoadBalancer", ports: [{ port: 80 }] });
    const b = create("b", { type: "LoadBalancer", loadBalancerIP: "192.0.2.1", ports: [{ port: 80 }] });
    const taken = structuredClone(b);
    taken.status = { loadBalancer: { ingress: [{ ip: a.status!.loadBalancer!.ingress![0]!.ip! }] } };
    expect(statusOf(() => reg.update("Service", taken, { subresource: "status" })).code).toBe(422);
    expect(table()).toEqual(derived());
  });

  it("strategic merge patch merges ports by port number; $patch delete removes one", () => {
    create("web", { ports: [{ name: "http", port: 80 }, { name: "https", port: 443, targetPort: 8443 }] });
    const p = reg.patch<Service>("Service", "default", "web", "strategic", { spec: { ports: [{ port: 443, targetPort: 9443 }, { name: "m", port: 9090 }] } });
    expect(p.spec!.ports!.map((x) => [x.name, x.port, x.targetPort])).toEqual([
      ["http", 80, 80],
      ["https", 443, 9443],
      ["m", 9090, 9090],
    ]);
    const q = reg.patch<Service>("Service", "default", "web", "strategic", { spec: { ports: [{ port: 80, $patch: "delete" }] } });
    expect(q.spec!.ports!.map((x) => x.port)).toEqual([443, 9090]);
    const m = reg.patch<Service>("Service", "default", "web", "merge", { spec: { ports: [{ port: 81 }] } });
    expect(m.spec!.ports!.map((x) => x.port)).toEqual([81]);
    const j = reg.patch<Service>("Service", "default", "web", "json", [{ op: "replace", path: "/spec/ports/0/port", value: 82 }]);
    expect(j.spec!.ports![0]!.port).toBe(82);
  });

  it("deleteCollection by label selector", () => {
    reg.create("Service", { ...svc("a", { ports: [{ port: 80 }] }), metadata: { name: "a", labels: { app: "x" } } });
    reg.create("Service", { ...svc("b", { ports: [{ port: 80 }] }), metadata: { name: "b", labels: { app: "y" } } });
    const del = reg.deleteCollection("Service", "default", { labelSelector: "app=x" });
    expect(del.items.map((i) => i.metadata.name)).toEqual(["a"]);
    expect(reg.listSync("Service", { namespace: "default" }).items.map((i) => i.metadata.name).sort()).toEqual(["b", "kubernetes"]);
    expect(table()).toEqual(derived());
  });

  it("deleting a namespace deletes its objects and their allocations", () => {
    reg.create("Namespace", { apiVersion: "v1", kind: "Namespace", metadata: { name: "prod" } });
    reg.create("Service", svc("x", { type: "NodePort", ports: [{ port: 80 }] }, "prod"));
    reg.create("Service", svc("w", { type: "NodePort", ports: [{ port: 80 }] }, "prod"));
    expect(table().length).toBe(5);
    const term = reg.delete<{ status: { phase: string } }>("Namespace", undefined, "prod");
    expect(term.status.phase).toBe("Terminating");
    const refused = statusOf(() => reg.create("Service", svc("y", { ports: [{ port: 80 }] }, "prod")));
    expect(refused.code).toBe(403);
    expect(refused.message).toContain("because it is being terminated");
    reg.delete("Service", "prod", "x"); // still deletable while terminating (kubectl delete -f order)
    reg.create("Service", svc("z", { type: "NodePort", ports: [{ port: 80 }] }, "default"));
    reg.finishNamespaceDeletion("prod");
    expect(reg.find("Namespace", undefined, "prod")).toBeUndefined();
    expect(reg.listSync("Service", { namespace: "prod" }).items).toEqual([]);
    reg.delete("Service", "default", "z");
    expect(table()).toEqual(["serviceIP:10.96.0.1"]);
    expect(statusOf(() => reg.delete("Namespace", undefined, "default")).code).toBe(403);
  });
});

describe("repair", () => {
  it("rebuilds allocations from stored Services at start-up (leaks released, missing added)", () => {
    const s = create("web", { type: "NodePort", ports: [{ port: 80 }] });
    const snapshot = table();
    // corrupt the table behind the registry's back: a leaked row and a missing one
    reg.store.db.prepare("INSERT INTO allocations (pool, value, owner) VALUES ('nodePort', '31111', 'gone/ghost')").run();
    reg.store.db.prepare("DELETE FROM allocations WHERE pool = 'serviceIP' AND value = ?").run(s.spec!.clusterIP!);
    reg.close();
    reg = open();
    expect(reg.repairReport.leaked.map((r) => r.value)).toEqual(["31111"]);
    expect(reg.repairReport.missing.map((r) => r.value)).toEqual([s.spec!.clusterIP]);
    expect(table()).toEqual(snapshot);
    expect(reg.nodePorts.has(31111)).toBe(false);
    expect(reg.serviceIPs.has(s.spec!.clusterIP!)).toBe(true);
    // a restarted registry never hands out a live VIP again
    for (let i = 0; i < 20; i++) expect(create(`n${i}`, { ports: [{ port: 80 }] }).spec!.clusterIP).not.toBe(s.spec!.clusterIP);
  });

  it("reports a value held by two Services", () => {
    const a = create("a", { type: "NodePort", ports: [{ port: 80 }] });
    const b = structuredClone(reg.get<Service>("Service", "default", "kubernetes"));
    const raw = { ...b, metadata: { ...b.metadata, name: "dup" } } as Service;
    raw.spec = { ...a.spec! };
    reg.store.transaction(() => reg.store.put(raw as never, "ADDED"));
    reg.close();
    reg = open();
    expect(reg.repairReport.duplicates.length).toBe(2);
    expect(table()).toEqual(derived());
  });
});

describe("other kinds", () => {
  it("Endpoints: validated (no loopback, no cluster IPs), protocol defaulted", () => {
    const ep = reg.create("Endpoints", {
      apiVersion: "v1",
      kind: "Endpoints",
      metadata: { name: "m" },
      subsets: [{ addresses: [{ ip: "192.0.2.42" }], ports: [{ port: 9376 }] }],
    });
    expect((ep.subsets[0].ports[0] as { protocol?: string }).protocol).toBe("TCP");
    const bad = statusOf(() =>
      reg.create("Endpoints", {
        apiVersion: "v1",
        kind: "Endpoints",
        metadata: { name: "n" },
        subsets: [{ addresses: [{ ip: "127.0.0.1" }, { ip: "10.96.0.10" }], ports: [{ port: 1 }] }],
      }),
    );
    expect(bad.code).toBe(422);
    expect(bad.message).toContain("loopback");
    expect(bad.message).toContain("service CIDR");
  });

  it("Pod deletion honours the grace period (terminating first, removed later)", () => {
    let t = Date.parse("2025-01-01T00:00:00Z");
    reg.close();
    reg = open({ clock: () => new Date(t), podGraceTimers: false });
    reg.create("Pod", {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "p", labels: { app: "a" } },
      spec: { nodeName: "n1", terminationGracePeriodSeconds: 5, containers: [{ name: "c", ports: [{ name: "http", containerPort: 80 }] }] },
      status: { phase: "Running", podIP: "10.244.0.5", conditions: [{ type: "Ready", status: "True" }] },
    });
    const d = reg.delete<{ metadata: { deletionTimestamp?: string } }>("Pod", "default", "p");
    expect(d.metadata.deletionTimestamp).toBe("2025-01-01T00:00:05Z");
    expect(reg.find("Pod", "default", "p")).toBeDefined();
    t += 4000;
    expect(reg.sweepTerminatingPods()).toBe(0);
    t += 1000;
    expect(reg.sweepTerminatingPods()).toBe(1);
    expect(reg.find("Pod", "default", "p")).toBeUndefined();
  });
});
