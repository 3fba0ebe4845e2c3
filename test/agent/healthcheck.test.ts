// healthCheckNodePort servers (spec §5) and the proxier's healthz, over real HTTP on 127.0.0.1.

import { describe, it, expect, afterEach } from "vitest";
import { request } from "node:http";
import { createServer, type Server } from "node:net";
import {
  HealthCheckServers, HealthCheckTargets, ProxyHealth, healthCheckTarget, startHealthz, type HealthCheckPortError,
} from "../../src/agent/healthcheck.js";
import { buildModels } from "../../src/proxy/model.js";
import type { Service, EndpointSlice } from "../../src/store/types.js";

interface Got { status: number; headers: Record<string, string | string[] | undefined>; body: string }

function get(port: number, path = "/"): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

/** A port nobody listens on right now. */
function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

function occupy(port: number): Promise<Server> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(port, "127.0.0.1", () => resolve(s));
  });
}

const body = (ns: string, name: string, n: number, healthy = true) =>
  `{\n\t"service": {\n\t\t"namespace": "${ns}",\n\t\t"name": "${name}"\n\t},\n\t"localEndpoints": ${n},\n\t"serviceProxyHealthy": ${healthy}\n}`;

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
function servers(opts: ConstructorParameters<typeof HealthCheckServers>[0] = {}): HealthCheckServers {
  const s = new HealthCheckServers({ host: "127.0.0.1", ...opts });
  cleanups.push(() => s.close());
  return s;
}

describe("HealthCheckServers", () => {
  it("answers any path 200 with local endpoints and 503 without, exact body and headers", async () => {
    const hc = servers();
    const port = await freePort();
    await hc.sync([{ namespace: "default", name: "lb", port, localReadyEndpoints: 2 }]);
    expect(hc.listening()).toEqual([port]);

    const ok = await get(port, "/healthz");
    expect(ok.status).toBe(200);
    expect(ok.body).toBe(body("default", "lb", 2));
    expect(ok.headers["content-type"]).toBe("application/json");
    expect(ok.headers["x-content-type-options"]).toBe("nosniff");
    expect(ok.headers["x-load-balancing-endpoint-weight"]).toBe("2");
    expect((await get(port, "/any/other/path?x=1")).status).toBe(200);

    // The count changes in place: same server, now 503.
    await hc.sync([{ namespace: "default", name: "lb", port, localReadyEndpoints: 0 }]);
    const bad = await get(port, "/");
    expect(bad.status).toBe(503);
    expect(bad.body).toBe(body("default", "lb", 0));
    expect(bad.headers["content-type"]).toBe("application/json");

    await hc.sync([{ namespace: "default", name: "lb", port, localReadyEndpoints: 1 }]);
    expect((await get(port)).status).toBe(200);

    // Gone from the sync: the port closes.
    await hc.sync([]);
    expect(hc.listening()).toEqual([]);
    await expect(get(port)).rejects.toThrow(/ECONNREFUSED/);
  });

  it("answers 503 while the proxier is unhealthy", async () => {
    let healthy = false;
    const hc = servers({ proxyHealthy: () => healthy });
    const port = await freePort();
    await hc.sync([{ namespace: "ns1", name: "svc", port, localReadyEndpoints: 1 }]);
    const r = await get(port);
    expect(r.status).toBe(503);
    expect(r.body).toBe(body("ns1", "svc", 1, false));
    healthy = true;
    expect((await get(port)).status).toBe(200);
  });

  it("a port in use is reported by number; the other services keep working; a later sync retries", async () => {
    const errors: HealthCheckPortError[] = [];
    const hc = servers({ onError: (e) => errors.push(e), retryAfterMs: 0 });
    const [busy, free] = [await freePort(), await freePort()];
    const blocker = await occupy(busy);
    await hc.sync([
      { namespace: "default", name: "a", port: busy, localReadyEndpoints: 1 },
      { namespace: "default", name: "b", port: free, localReadyEndpoints: 1 },
    ]);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.port).toBe(busy);
    expect(errors[0]!.message).toContain(`healthCheckNodePort ${busy} of service default/a`);
    expect(errors[0]!.message).toMatch(/EADDRINUSE/);
    expect(hc.listening()).toEqual([free]);
    expect(hc.failed()).toEqual([busy]);
    expect((await get(free)).status).toBe(200);

    await new Promise<void>((r) => blocker.close(() => r()));
    await hc.sync([
      { namespace: "default", name: "a", port: busy, localReadyEndpoints: 1 },
      { namespace: "default", name: "b", port: free, localReadyEndpoints: 1 },
    ]);
    expect(errors).toHaveLength(1);
    expect(hc.listening()).toEqual([busy, free].sort((x, y) => x - y));
    expect((await get(busy)).body).toBe(body("default", "a", 1));
  });

  it("two services on one port: the first is served, the second reported", async () => {
    const errors: HealthCheckPortError[] = [];
    const hc = servers({ onError: (e) => errors.push(e) });
    const port = await freePort();
    await hc.sync([
      { namespace: "default", name: "a", port, localReadyEndpoints: 1 },
      { namespace: "default", name: "b", port, localReadyEndpoints: 0 },
    ]);
    expect(errors.map((e) => e.message)).toEqual([`healthCheckNodePort ${port} of service default/b: port already used by the health check of service default/a`]);
    expect((await get(port)).body).toBe(body("default", "a", 1));
  });
});

describe("healthCheckTarget", () => {
  const NODE = "node-a";
  const lb = (extra: Partial<NonNullable<Service["spec"]>> = {}, meta: Partial<Service["metadata"]> = {}): Service => ({
    apiVersion: "v1", kind: "Service", metadata: { name: "lb", namespace: "default", ...meta },
    spec: {
      type: "LoadBalancer", clusterIP: "10.96.0.20", externalTrafficPolicy: "Local", healthCheckNodePort: 32000,
      ports: [{ name: "http", port: 80, protocol: "TCP", nodePort: 30080 }, { name: "https", port: 443, protocol: "TCP", nodePort: 30443 }],
      ...extra,
    },
  } as Service);
  const slice = (eps: Array<{ ip: string; node: string; ready?: boolean; serving?: boolean; terminating?: boolean }>): EndpointSlice => ({
    apiVersion: "discovery.k8s.io/v1", kind: "EndpointSlice",
    metadata: { name: "lb-1", namespace: "default", labels: { "kubernetes.io/service-name": "lb" } },
    addressType: "IPv4",
    endpoints: eps.map((e) => ({ addresses: [e.ip], nodeName: e.node, conditions: { ready: e.ready ?? true, serving: e.serving ?? true, terminating: e.terminating ?? false } })),
    ports: [{ name: "http", port: 8080, protocol: "TCP" }, { name: "https", port: 8443, protocol: "TCP" }],
  } as EndpointSlice);
  const target = (svc: Service, s: EndpointSlice) => healthCheckTarget(svc, buildModels({ services: [svc], endpoints: [], endpointSlices: [s] }), NODE);

  it("counts distinct local ready IPs across ports; remote and terminating never count", () => {
    const t = target(lb(), slice([
      { ip: "10.244.0.10", node: NODE }, { ip: "10.244.0.11", node: NODE }, { ip: "10.244.1.10", node: "node-b" },
      { ip: "10.244.0.12", node: NODE, ready: false, serving: true, terminating: true },
    ]));
    expect(t).toEqual({ namespace: "default", name: "lb", port: 32000, localReadyEndpoints: 2 });
  });

  it("terminating-only local endpoints → 0 (the server answers 503 while traffic still flows)", async () => {
    const t = target(lb(), slice([{ ip: "10.244.0.12", node: NODE, ready: false, serving: true, terminating: true }]))!;
    expect(t.localReadyEndpoints).toBe(0);
    const hc = servers();
    const port = await freePort();
    await hc.sync([{ ...t, port }]);
    const r = await get(port);
    expect(r.status).toBe(503);
    expect(r.body).toBe(body("default", "lb", 0));
  });

  it("only LoadBalancer + externalTrafficPolicy Local + healthCheckNodePort, and only proxied services", () => {
    const s = slice([{ ip: "10.244.0.10", node: NODE }]);
    expect(target(lb({ externalTrafficPolicy: "Cluster" }), s)).toBeNull();
    expect(target(lb({ type: "NodePort" }), s)).toBeNull();
    expect(target(lb({ healthCheckNodePort: undefined }), s)).toBeNull();
    expect(target(lb({}, { labels: { "service.kubernetes.io/service-proxy-name": "other" } }), s)).toBeNull();
  });

  it("HealthCheckTargets keeps one target per service name", () => {
    const t = new HealthCheckTargets();
    t.set("default/b", { namespace: "default", name: "b", port: 32001, localReadyEndpoints: 1 });
    t.set("default/a", { namespace: "default", name: "a", port: 32000, localReadyEndpoints: 0 });
    expect(t.list().map((x) => x.name)).toEqual(["a", "b"]);
    t.set("default/a", null);
    expect(t.list().map((x) => x.name)).toEqual(["b"]);
  });
});

describe("ProxyHealth and /healthz", () => {
  it("unhealthy only while a change has waited longer than the timeout", () => {
    let now = 1_000_000;
    const h = new ProxyHealth({ timeoutMs: 1000, now: () => now });
    expect(h.isHealthy()).toBe(true);
    h.queued();
    now += 999;
    expect(h.isHealthy()).toBe(true);
    h.queued(); // the oldest pending change counts
    now += 1;
    expect(h.isHealthy()).toBe(false);
    h.updated();
    expect(h.isHealthy()).toBe(true);
    expect(h.status()).toEqual({ healthy: true, lastUpdated: new Date(now).toISOString(), currentTime: new Date(now).toISOString(), nodeEligible: true });
  });

  it("serves kube-proxy's JSON on /healthz", async () => {
    let now = Date.parse("2025-01-01T00:00:00Z");
    const h = new ProxyHealth({ timeoutMs: 1000, now: () => now });
    h.updated();
    const srv = await startHealthz(h, "127.0.0.1", 0);
    cleanups.push(() => srv.close());
    const ok = await get(srv.port, "/healthz");
    expect(ok.status).toBe(200);
    expect(ok.headers["content-type"]).toBe("application/json");
    expect(JSON.parse(ok.body)).toEqual({ lastUpdated: "2025-01-01T00:00:00.000Z", currentTime: "2025-01-01T00:00:00.000Z", nodeEligible: true });
    h.queued();
    now += 5000;
    expect((await get(srv.port, "/healthz")).status).toBe(503);
    expect((await get(srv.port, "/nope")).status).toBe(404);
  });
});
