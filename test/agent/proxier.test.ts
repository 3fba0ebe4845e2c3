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
