// The agent's sync: informers → change tracker → bounded-frequency sync into the maps.

import { describe, it, expect } from "vitest";
import { MemorySource } from "../helpers/memsource.js";
import { node, CLIENT_POD } from "../helpers/node.js";
import { Proxier } from "../../src/agent/proxier.js";
import { ChangeTracker } from "../../src/agent/tracker.js";
import { buildFrame, decodeFrame } from "../../src/host/frames.js";
import type { StoredObject } from "../../src/store/db.js";

const service = (name: string, ip: string, extra: object = {}): StoredObject => ({
  apiVersion: "v1", kind: "Service", metadata: { name, namespace: "default" },
  spec: { clusterIP: ip, clusterIPs: [ip], type: "ClusterIP", ports: [{ name: "http", port: 80, protocol: "TCP", targetPort: 8080 }], ...extra },
});
const slice = (svc: string, ips: string[], name = `${svc}-abc`): StoredObject => ({
  apiVersion: "discovery.k8s.io/v1", kind: "EndpointSlice",
  metadata: { name, namespace: "default", labels: { "kubernetes.io/service-name": svc } },
  addressType: "IPv4",
  endpoints: ips.map((ip) => ({ addresses: [ip], conditions: { ready: true }, nodeName: "node-b" })),
  ports: [{ name: "http", port: 8080, protocol: "TCP" }],
});

const until = async (f: () => boolean, ms = 2000) => {
  const t0 = Date.now();
  while (!f()) {
    if (Date.now() - t0 > ms) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 5));
  }
};

function dst(dp: ReturnType<typeof node>["dp"], vip: string, sport: number): string {
  const [r] = dp.process([{ data: buildFrame({ src: CLIENT_POD, dst: vip, proto: "TCP", sport, dport: 80 }) }], 1000);
  return r!.verdict === "TX" ? decodeFrame(r!.data).dst! : `${r!.verdict} ${r!.reasonName}`;
}

describe("change tracker", () => {
  it("collapses a burst into one pending change, and drops a change that undid itself", () => {
    const t = new ChangeTracker();
    const s = service("a", "10.96.0.1");
    t.onService(undefined, { ...s, metadata: { ...s.metadata, resourceVersion: "1" } });
    t.onService(undefined, { ...s, metadata: { ...s.metadata, resourceVersion: "2" } });
    expect(t.pendingCount).toBe(1);
    t.take();
    const cur = { ...s, metadata: { ...s.metadata, resourceVersion: "2" } };
    t.onService(cur, { ...s, metadata: { ...s.metadata, resourceVersion: "3" } });
    t.onService(undefined, cur); // back to what was synced
    expect(t.pendingCount).toBe(0);
  });
});

describe("proxier", () => {
  it("serves nothing before the first full sync, then follows adds, endpoint changes and deletes", async () => {
    const src = new MemorySource();
    const { dp, prog } = node();
    src.put(service("web", "10.96.0.10"));
    src.put(slice("web", ["10.244.1.10"]));
    const p = new Proxier(src, prog, { minSyncIntervalMs: 10 });
    expect(dst(dp, "10.96.0.10", 1)).toBe("PASS not_service");
    await p.start();
    await p.ready;
    expect(dst(dp, "10.96.0.10", 2)).toBe("10.244.1.10");
    src.put(slice("web", ["10.244.1.11"]));
    await until(() => dst(dp, "10.96.0.10", 100 + Math.floor(Math.random() * 1000)) === "10.244.1.11");
    src.put(slice("web", []));
    await until(() => dst(dp, "10.96.0.10", 3000 + Math.floor(Math.random() * 1000)) === "REPLY no_endpoints");
    src.remove(service("web", "10.96.0.10"));
    await until(() => dst(dp, "10.96.0.10", 5000 + Math.floor(Math.random() * 1000)) === "PASS not_service");
    p.stop();
  });

  it("lists again after 410 Gone and applies what changed meanwhile", async () => {
    const src = new MemorySource();
    const { dp, prog } = node();
    src.put(service("web", "10.96.0.10"));
    src.put(slice("web", ["10.244.1.10"]));
    const p = new Proxier(src, prog, { minSyncIntervalMs: 10 });
    await p.start();
    await p.ready;
    const lists = src.lists;
    src.expire();
    src.put(service("api", "10.96.0.20"));
    src.put(slice("api", ["10.244.1.30"]));
    await until(() => src.lists > lists && dst(dp, "10.96.0.20", 7) === "10.244.1.30");
    p.stop();
  });

  it("syncs only changed services, at most once per interval for a burst", async () => {
    const src = new MemorySource();
    const { dp, prog } = node();
    for (let i = 0; i < 50; i++) src.put(service(`s${i}`, `10.96.1.${i + 1}`));
    const p = new Proxier(src, prog, { minSyncIntervalMs: 100 });
    await p.start();
    await p.ready;
    const syncs = p.syncs;
    for (let i = 0; i < 20; i++) src.put(slice("s7", [`10.244.2.${i + 1}`]));
    await until(() => dst(dp, "10.96.1.8", 9) === "10.244.2.20");
    expect(p.syncs - syncs).toBeLessThanOrEqual(2);
    p.stop();
  });
});

describe("proxier: latency and cleanup", () => {
  const udpService = (name: string, ip: string): StoredObject => ({
    apiVersion: "v1", kind: "Service", metadata: { name, namespace: "default" },
    spec: { clusterIP: ip, clusterIPs: [ip], type: "ClusterIP", ports: [{ name: "dns", port: 53, protocol: "UDP", targetPort: 5353 }] },
  });
  const udpSlice = (svc: string, ips: string[]): StoredObject => ({
    apiVersion: "discovery.k8s.io/v1", kind: "EndpointSlice",
    metadata: { name: `${svc}-abc`, namespace: "default", labels: { "kubernetes.io/service-name": svc } },
    addressType: "IPv4",
    endpoints: ips.map((ip) => ({ addresses: [ip], conditions: { ready: true }, nodeName: "node-b" })),
    ports: [{ name: "dns", port: 5353, protocol: "UDP" }],
  });
  const turn = () => new Promise<void>((r) => setImmediate(r));

  it("applies a change that meets an idle runner on the next event-loop turn, not after a timer", async () => {
    const src = new MemorySource();
    const { dp, prog } = node();
    src.put(service("web", "10.96.0.10"));
    src.put(slice("web", ["10.244.1.10"]));
    const p = new Proxier(src, prog, { minSyncIntervalMs: 200 });
    await p.start();
    await p.ready;
    await new Promise((r) => setTimeout(r, 250));
    src.put(slice("web", ["10.244.1.11"]));
    await turn();
    expect(dst(dp, "10.96.0.10", 11)).toBe("10.244.1.11");
    // Within the interval a change waits for it (and a burst goes together).
    src.put(slice("web", ["10.244.1.12"]));
    await turn();
    expect(dst(dp, "10.96.0.10", 12)).toBe("10.244.1.11");
    await until(() => dst(dp, "10.96.0.10", 13 + Math.floor(Math.random() * 1000)) === "10.244.1.12");
    p.stop();
  });

  it("removes a departed endpoint's UDP flows after the maps changed, in steps", async () => {
    const src = new MemorySource();
    const { dp, prog } = node();
    src.put(udpService("dns", "10.96.0.53"));
    src.put(udpSlice("dns", ["10.244.1.10", "10.244.1.11"]));
    const flushed: number[] = [];
    const p = new Proxier(src, prog, { minSyncIntervalMs: 0, flushBudget: 50_000, onFlushed: (n) => flushed.push(n) });
    await p.start();
    await p.ready;
    for (let i = 0; i < 40; i++) dp.process([{ data: buildFrame({ src: CLIENT_POD, dst: "10.96.0.53", proto: "UDP", sport: 20000 + i, dport: 53, payload: "q" }) }], 1000);
    const to = (ip: string) => dp.maps.conntrack.entries().filter(([, v]) => !(v.flags & 1) && v.peerAddrBe === ip).length;
    const gone = to("10.244.1.11");
    expect(gone).toBeGreaterThan(0);
    src.put(udpSlice("dns", ["10.244.1.10"]));
    await turn();
    // The maps first: new flows go to the remaining endpoint while the old entries still exist.
    expect(p.flushPending).toBe(true);
    expect(to("10.244.1.11")).toBe(gone);
    const [r] = dp.process([{ data: buildFrame({ src: CLIENT_POD, dst: "10.96.0.53", proto: "UDP", sport: 30000, dport: 53, payload: "q" }) }], 1001);
    expect(decodeFrame(r!.data).dst).toBe("10.244.1.10");
    await until(() => !p.flushPending);
    expect(to("10.244.1.11")).toBe(0);
    expect(to("10.244.1.10")).toBeGreaterThan(0);
    expect(flushed).toEqual([gone]);
    p.stop();
  });

  it("after a failed sync, the full sync retries the failed service, removes vanished ones and skips the unchanged", async () => {
    const src = new MemorySource();
    const { dp, prog } = node();
    for (let i = 0; i < 5; i++) {
      src.put(service(`s${i}`, `10.96.2.${i + 1}`));
      src.put(slice(`s${i}`, [`10.244.3.${i + 1}`]));
    }
    const applied: string[] = [];
    const p = new Proxier(src, prog, { minSyncIntervalMs: 0, onServiceApplied: (name) => applied.push(name) });
    await p.start();
    await p.ready;
    applied.length = 0;
    const bad = service("s1", "10.96.2.2");
    src.put({ ...bad, metadata: { ...bad.metadata, annotations: { "tapvip.io/lb-algorithm": "bogus" } } });
    await until(() => p.failedSyncs >= 1);
    expect(applied).toEqual([]);
    src.remove(service("s3", "10.96.2.4"));
    src.put(service("s1", "10.96.2.2"));
    await until(() => applied.length >= 2 && dst(dp, "10.96.2.4", 5) === "PASS not_service");
    expect(applied.sort()).toEqual(["default/s1", "default/s3"]);
    expect(dst(dp, "10.96.2.2", 6)).toBe("10.244.3.2");
    expect(dst(dp, "10.96.2.5", 7)).toBe("10.244.3.5");
    p.stop();
  });
});

describe("change tracker: identity", () => {
  it("compares objects by resourceVersion, or by content without one; every change gives a new generation", () => {
    const t = new ChangeTracker();
    const s = slice("a", ["10.244.1.1"]);
    t.onService(undefined, service("a", "10.96.0.1"));
    t.onSlice(undefined, s);
    const g1 = t.take().get("default/a")!.gen;
    t.onSlice(s, structuredClone(s)); // same content, no resourceVersion: no change
    expect(t.pendingCount).toBe(0);
    t.onSlice(s, slice("a", ["10.244.1.2"]));
    expect(t.pendingCount).toBe(1);
    t.onSlice(undefined, structuredClone(s)); // back as it was synced
    expect(t.pendingCount).toBe(0);
    const withRv = (o: StoredObject, rv: string) => ({ ...o, metadata: { ...o.metadata, resourceVersion: rv } });
    t.onSlice(s, withRv(s, "7"));
    const st = t.take().get("default/a")!;
    expect(st.gen).toBeGreaterThan(g1!);
    t.onSlice(withRv(s, "7"), withRv(slice("a", ["10.244.9.9"]), "7")); // same resourceVersion: the same object
    expect(t.pendingCount).toBe(0);
    t.onSlice(withRv(s, "7"), undefined);
    t.onService(service("a", "10.96.0.1"), undefined);
    expect(t.take().get("default/a")).toEqual({ service: undefined, slices: new Map(), endpoints: undefined, gen: 0 });
  });
});
