// The programmer's fast paths against the plain ones: slot order on number columns equals
// groupEndpoints, models that read their endpoints from EndpointSlices program the same maps
// as models that carry EndpointInfo objects, an incremental sync after a full sync leaves the
// same maps as a sync from scratch, field-by-field model comparison agrees with JSON, and the
// backend id table agrees with a Map. Maps are compared by what they mean (ids differ).

import { describe, it, expect } from "vitest";
import { Dataplane } from "../../src/maps/dataplane.js";
import { Programmer, sameModel, type ServicePortModel } from "../../src/proxy/programmer.js";
import { groupEndpoints, slotOrderV4, type EndpointInfo } from "../../src/proxy/endpoints.js";
import { buildModels, serviceModels } from "../../src/proxy/model.js";
import { BackendIds, portProto } from "../../src/proxy/backend-ids.js";
import type { EndpointSlice, Service } from "../../src/store/types.js";

const NODE = "node-a";

/** A seeded PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
const COND = [true, false, null, undefined] as const;

function randomEndpoints(r: () => number, n: number): EndpointInfo[] {
  const ips = ["10.0.0.1", "10.0.0.2", "10.0.0.10", "010.0.0.2", "9.255.255.255", "192.168.1.1", "fd00::1", "not-an-ip", "10.0.0.3"];
  return Array.from({ length: n }, () => ({
    ip: pick(r, ips), port: pick(r, [80, 81, 8080]), nodeName: pick(r, [NODE, "node-b", "", undefined]),
    ready: pick(r, COND), serving: pick(r, COND), terminating: pick(r, COND),
  }));
}

describe("slotOrderV4", () => {
  it("orders, de-duplicates and groups IPv4 endpoints exactly as groupEndpoints", () => {
    const r = rng(1);
    for (let round = 0; round < 2000; round++) {
      const eps = randomEndpoints(r, Math.floor(r() * 70));
      const g = groupEndpoints(eps, NODE);
      const v4 = (xs: EndpointInfo[]) => xs.filter((e) => /^\d{1,3}(\.\d{1,3}){3}$/.test(e.ip));
      const want = [...v4(g.readyLocal), ...v4(g.readyRemote), ...v4(g.terminatingLocal), ...v4(g.terminatingRemote)];
      const o = slotOrderV4(eps, NODE);
      const got = Array.from(o.index.subarray(0, o.count), (i) => eps[i]!);
      expect(got).toEqual(want);
      expect([o.readyLocal, o.readyRemote, o.terminatingLocal, o.terminatingRemote]).toEqual(
        [v4(g.readyLocal).length, v4(g.readyRemote).length, v4(g.terminatingLocal).length, v4(g.terminatingRemote).length]);
    }
  });
});

// ---- maps by meaning

function dump(dp: Dataplane): object {
  const out: Record<string, unknown> = {};
  for (const [k, v] of dp.maps.frontends.entries()) {
    const s = dp.maps.services.get(v.svcId);
    const n = s.readyLocal + s.readyRemote + s.terminatingLocal + s.terminatingRemote;
    const slots = [];
    for (let i = 0; i < n; i++) {
      const b = dp.maps.backends.get(dp.maps.svcSlots.lookup({ svcId: v.svcId, slot: i })!.backendId);
      slots.push(`${b.addrBe}:${b.portBe}/${b.proto} s${b.state} f${b.flags} w${b.weight}`);
    }
    const maglev = [];
    for (let i = 0; i < s.maglevClusterSize; i++) {
      const b = dp.maps.backends.get(dp.maps.maglev.get(s.maglevClusterOff + i).backendId);
      maglev.push(`${b.addrBe}:${b.portBe}`);
    }
    const rn = dp.maps.revNat.get(v.revNatId);
    out[`${k.addrBe}:${k.portBe}/${k.proto}`] = {
      kind: v.kind, revNat: `${rn.addrBe}:${rn.portBe}`,
      service: { ...s, maglevClusterOff: undefined, maglevLocalOff: undefined }, slots, maglev,
    };
  }
  const addrs = dp.maps.addrs.entries().map(([k, v]) => `${k.addrBe} ${v.flags}`).sort();
  // Slots past the groups must be gone: svc_slots holds exactly the slots the services use.
  let used = 0;
  for (const [, v] of dp.maps.frontends.entries()) {
    const s = dp.maps.services.get(v.svcId);
    used += s.readyLocal + s.readyRemote + s.terminatingLocal + s.terminatingRemote;
  }
  const svcIds = new Set(dp.maps.frontends.entries().map(([, v]) => v.svcId));
  return { frontends: out, addrs, slots: dp.maps.svcSlots.count, slotsUsedPerFrontend: used, services: svcIds.size };
}

function fresh(): { dp: Dataplane; prog: Programmer } {
  const dp = new Dataplane({ seed: 9 });
  const prog = new Programmer(dp, { nodeName: NODE });
  prog.setNodeAddresses(["192.0.2.10"]);
  return { dp, prog };
}

function randomObjects(r: () => number, n: number, version: number): Array<{ svc: Service; slices: EndpointSlice[] }> {
  const out = [];
  for (let i = 0; i < n; i++) {
    const name = `s${i}`;
    const type = pick(r, ["ClusterIP", "ClusterIP", "NodePort", "LoadBalancer"] as const);
    const ports: Array<{ name: string; protocol: "TCP" | "UDP"; port: number; nodePort?: number }> =
      [{ name: "http", protocol: "TCP", port: 80, nodePort: type === "ClusterIP" ? undefined : 30000 + i }];
    if (r() < 0.3) ports.push({ name: "dns", protocol: "UDP", port: 53, nodePort: type === "ClusterIP" ? undefined : 31000 + i });
    const svc = {
      apiVersion: "v1", kind: "Service",
      metadata: {
        name, namespace: "default", resourceVersion: `${version}-${i}`,
        annotations: r() < 0.15 ? { "tapvip.io/lb-algorithm": pick(r, ["maglev", "rr", "lc"]) } : undefined,
      },
      spec: {
        type, clusterIP: `10.96.${i >> 8}.${i & 255}`, clusterIPs: [`10.96.${i >> 8}.${i & 255}`], ports,
        externalIPs: r() < 0.2 ? [`198.51.100.${i % 250}`] : undefined,
        externalTrafficPolicy: r() < 0.3 ? "Local" : "Cluster",
        sessionAffinity: r() < 0.2 ? "ClientIP" : "None",
        loadBalancerSourceRanges: type === "LoadBalancer" && r() < 0.5 ? ["10.0.0.0/8", "192.168.0.0/16"] : undefined,
      },
      status: type === "LoadBalancer" ? { loadBalancer: { ingress: [{ ip: `203.0.113.${i % 250}` }] } } : {},
    } as unknown as Service;
    const nSlices = Math.floor(r() * 3);
    const slices = Array.from({ length: nSlices }, (_, k) => ({
      apiVersion: "discovery.k8s.io/v1", kind: "EndpointSlice",
      metadata: { name: `${name}-${k}`, namespace: "default", labels: { "kubernetes.io/service-name": name } },
      addressType: "IPv4",
      // A pod's node and conditions go with its address, whichever Service lists it (the
      // backend map entry is one per address, port and protocol).
      endpoints: Array.from({ length: Math.floor(r() * 6) }, () => {
        const a = Math.floor(r() * 60);
        return {
          addresses: [`10.244.${a % 3}.${1 + Math.floor(a / 3)}`],
          conditions: { ready: COND[a % 4], serving: COND[(a >> 2) % 4], terminating: COND[(a >> 1) % 4] },
          nodeName: a % 5 < 2 ? NODE : "node-b",
        };
      }),
      ports: [{ name: "http", protocol: "TCP", port: 8080 }, { name: "dns", protocol: "UDP", port: 5353 }],
    }) as unknown as EndpointSlice);
    out.push({ svc, slices });
  }
  return out;
}

const sourcedModels = (objs: ReturnType<typeof randomObjects>) =>
  objs.flatMap((o) => serviceModels(o.svc, o.slices, undefined, { sourced: true }));
const eagerModels = (objs: ReturnType<typeof randomObjects>) =>
  buildModels({ services: objs.map((o) => o.svc), endpointSlices: objs.flatMap((o) => o.slices), endpoints: [] });

describe("programmer", () => {
  it("models that read EndpointSlices directly program the same maps as models with EndpointInfo objects", () => {
    const objs = randomObjects(rng(2), 150, 1);
    const a = fresh();
    const b = fresh();
    a.prog.sync(eagerModels(objs));
    b.prog.sync(sourcedModels(objs));
    expect(dump(b.dp)).toEqual(dump(a.dp));
    // The sourced models still answer with their endpoints (views, health checks).
    expect(JSON.parse(JSON.stringify(sourcedModels(objs)))).toEqual(JSON.parse(JSON.stringify(eagerModels(objs))));
  });

  it("an incremental sync after a full sync leaves the maps a sync from scratch makes", () => {
    const r = rng(3);
    let objs = randomObjects(r, 120, 1);
    const inc = fresh();
    inc.prog.sync(sourcedModels(objs));
    for (let round = 2; round < 8; round++) {
      const next = randomObjects(r, 120, round);
      // Change some services, keep the others as they are (the same objects), drop a few.
      const byName = new Map(next.map((o) => [o.svc.metadata.name, o]));
      objs = objs.map((o) => (r() < 0.3 ? byName.get(o.svc.metadata.name)! : o)).filter(() => r() > 0.05);
      const names = new Set(objs.map((o) => o.svc.metadata.name));
      if (round === 4) objs.push(...next.filter((o) => !names.has(o.svc.metadata.name))); // the dropped come back
      if (round % 2 === 0) {
        inc.prog.sync(sourcedModels(objs));
      } else {
        // As the proxier applies changes: one port at a time, flows cleaned up afterwards.
        const want = new Map(sourcedModels(objs).map((m) => [m.key, m]));
        for (const p of inc.prog.programmed()) if (!want.has(p.model.key)) inc.prog.remove(p.model.key, { deferFlush: true });
        for (const m of want.values()) inc.prog.upsertIfChanged(m, { deferFlush: true });
        while (inc.prog.flushPending) inc.prog.flushStale();
      }
      const scratch = fresh();
      scratch.prog.sync(eagerModels(objs));
      expect(dump(inc.dp), `round ${round}`).toEqual(dump(scratch.dp));
    }
  });

  it("a sync with nothing changed writes nothing", () => {
    const objs = randomObjects(rng(4), 60, 1);
    const { prog } = fresh();
    prog.sync(sourcedModels(objs));
    const res = prog.sync(sourcedModels(objs));
    expect(res).toMatchObject({ added: 0, updated: 0, removed: 0 });
    expect(prog.sync(eagerModels(objs))).toMatchObject({ added: 0, updated: 0, removed: 0 });
  });
});

describe("sameModel", () => {
  it("agrees with JSON equality", () => {
    const r = rng(5);
    const base = eagerModels(randomObjects(r, 40, 1));
    const variants = (m: ServicePortModel): ServicePortModel[] => [
      { ...m },
      { ...m, port: m.port + 1 },
      { ...m, clusterIPs: [...m.clusterIPs] },
      { ...m, clusterIPs: [...m.clusterIPs, "10.96.9.9"] },
      { ...m, nodePort: undefined },
      { ...m, algorithm: "maglev" },
      { ...m, affinityTimeoutSeconds: m.affinityTimeoutSeconds === null ? 10 : null },
      { ...m, endpoints: m.endpoints.map((e) => ({ ...e })) },
      { ...m, endpoints: m.endpoints.map((e, i) => (i === 0 ? { ...e, ready: !e.ready } : e)) },
      { ...m, endpoints: [...m.endpoints].reverse() },
      { ...m, endpoints: m.endpoints.map((e) => ({ ...e, zone: undefined })) },
    ];
    for (const m of base) {
      for (const v of variants(m)) expect(sameModel(m, v), JSON.stringify(v)).toBe(JSON.stringify(m) === JSON.stringify(v));
    }
  });

  it("sees sourced models from the same objects as equal, from changed objects by content", () => {
    const objs = randomObjects(rng(6), 20, 1);
    const a = sourcedModels(objs);
    const b = sourcedModels(objs);
    a.forEach((m, i) => expect(sameModel(m, b[i]!)).toBe(true));
    const copy = objs.map((o) => ({ svc: o.svc, slices: structuredClone(o.slices) }));
    const c = sourcedModels(copy);
    a.forEach((m, i) => expect(sameModel(m, c[i]!)).toBe(true));
    const changed = objs.map((o) => ({ svc: o.svc, slices: o.slices.map((s) => ({ ...s, endpoints: [] })) }));
    const d = sourcedModels(changed);
    a.forEach((m, i) => expect(sameModel(m, d[i]!)).toBe(m.endpoints.length === 0));
  });
});

describe("BackendIds", () => {
  it("agrees with a Map under random adds and removes (growing, backward-shift deletion)", () => {
    const r = rng(7);
    const t = new BackendIds(5000);
    const ref = new Map<string, number>();
    const free: number[] = Array.from({ length: 4999 }, (_, i) => i + 1);
    for (let op = 0; op < 40_000; op++) {
      const addr = (0x0af40000 + Math.floor(r() * 3000)) >>> 0;
      const pp = portProto(pick(r, [53, 80, 8080]), pick(r, [6, 17, 132]));
      const k = `${addr}/${pp}`;
      const id = t.get(addr, pp);
      expect(id, k).toBe(ref.get(k) ?? 0);
      if (id === 0 && free.length > 0 && r() < 0.6) {
        const nid = free.pop()!;
        t.add(addr, pp, nid);
        ref.set(k, nid);
      } else if (id !== 0 && r() < 0.5) {
        t.remove(id);
        ref.delete(k);
        free.push(id);
      }
    }
    expect(t.count).toBe(ref.size);
    for (const [k, id] of ref) {
      const [a, pp] = k.split("/").map(Number);
      expect(t.get(a!, pp!)).toBe(id);
    }
  });
});
