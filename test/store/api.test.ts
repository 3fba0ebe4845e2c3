// The HTTP API: discovery, CRUD with Status errors, selectors, cross-namespace lists, Table
// output, patches, /status, watch (resume and 410), deletecollection, listen restrictions.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { request } from "node:http";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { Registry } from "../../src/store/registry.js";
import { ApiServer } from "../../src/store/api/server.js";
import { seededRandom } from "../../src/store/allocators.js";
import { startServe } from "../../src/store/cli-serve.js";
import { tempDir, freePort } from "./fixtures/tmp.js";

const tmp = tempDir("tapvip-api-");
let reg: Registry;
let api: ApiServer;
let base: string;

beforeAll(async () => {
  reg = Registry.open(tmp.dir, {
    random: seededRandom(3),
    lbPool: "192.0.2.0/28",
    namespaceGraceMs: 0,
    store: { durability: "normal", eventLogLimit: 50 },
  });
  api = new ApiServer({ registry: reg, port: await freePort() });
  base = await api.listen();
});
afterAll(async () => {
  await api.close();
  reg.close();
  tmp.cleanup();
});

interface Res {
  status: number;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Res> {
  const res = await fetch(base + path, {
    method,
    headers: { "Content-Type": "application/json", ...headers },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

const SVC = "/api/v1/namespaces/default/services";

function svc(name: string, spec: object, labels?: Record<string, string>): object {
  return { apiVersion: "v1", kind: "Service", metadata: { name, labels }, spec };
}

/** Opens a watch and collects events until `n` arrived or the stream ended. */
function watch(path: string, n: number, timeoutMs = 3000): Promise<{ type: string; object: any }[]> {
  return new Promise((resolve, reject) => {
    const events: { type: string; object: any }[] = [];
    const req = request(base + path, (res) => {
      let buf = "";
      const done = (): void => {
        clearTimeout(timer);
        req.destroy();
        resolve(events);
      };
      const timer = setTimeout(done, timeoutMs);
      res.on("data", (d: Buffer) => {
        buf += d.toString();
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          events.push(JSON.parse(buf.slice(0, nl)));
          buf = buf.slice(nl + 1);
          if (events.length >= n) done();
        }
      });
      res.on("end", done);
    });
    req.on("error", (e) => (e.message.includes("socket hang up") ? resolve(events) : reject(e)));
    req.end();
  });
}

describe("discovery", () => {
  it("serves /api, /api/v1, /apis, the discovery group and /version", async () => {
    expect((await call("GET", "/api")).body.versions).toEqual(["v1"]);
    const v1 = (await call("GET", "/api/v1")).body;
    const services = v1.resources.find((r: any) => r.name === "services");
    expect(services).toMatchObject({ kind: "Service", namespaced: true, shortNames: ["svc"] });
    expect(services.verbs).toEqual(expect.arrayContaining(["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]));
    expect(v1.resources.some((r: any) => r.name === "services/status")).toBe(true);
    expect(v1.resources.find((r: any) => r.name === "namespaces").namespaced).toBe(false);
    expect((await call("GET", "/apis")).body.groups[0].name).toBe("discovery.k8s.io");
    const d = (await call("GET", "/apis/discovery.k8s.io/v1")).body;
    expect(d.resources[0]).toMatchObject({ name: "endpointslices", kind: "EndpointSlice", namespaced: true });
    expect((await call("GET", "/version")).body.major).toBe("1");
    expect((await call("GET", "/api/v1/nothings")).status).toBe(404);
  });
});

describe("CRUD", () => {
  it("creates, gets, updates with optimistic concurrency, deletes; errors are Status objects", async () => {
    const c = await call("POST", SVC, svc("web", { type: "NodePort", ports: [{ port: 80 }] }, { app: "web" }));
    expect(c.status).toBe(201);
    expect(c.body.spec.clusterIP).toBeTruthy();
    expect(c.body.spec.ports[0].nodePort).toBeGreaterThanOrEqual(30000);
    const g = await call("GET", `${SVC}/web`);
    expect(g.body.metadata.uid).toBe(c.body.metadata.uid);

    const upd = structuredClone(g.body);
    upd.spec.ports[0].targetPort = 8080;
    const u = await call("PUT", `${SVC}/web`, upd);
    expect(u.status).toBe(200);
    expect(u.body.metadata.generation).toBe(2);
    const stale = await call("PUT", `${SVC}/web`, upd);
    expect(stale.status).toBe(409);
    expect(stale.body).toMatchObject({ kind: "Status", status: "Failure", reason: "Conflict", code: 409 });

    const dup = await call("POST", SVC, svc("web", { ports: [{ port: 80 }] }));
    expect(dup.status).toBe(409);
    expect(dup.body.reason).toBe("AlreadyExists");

    const bad = await call("POST", SVC, svc("Bad_Name", { ports: [{ port: 70000 }] }));
    expect(bad.status).toBe(422);
    expect(bad.body.reason).toBe("Invalid");
    expect(bad.body.details.causes.map((x: any) => x.field)).toEqual(expect.arrayContaining(["metadata.name", "spec.ports[0].port"]));
    expect(bad.body.message).toContain('Service "Bad_Name" is invalid');

    const nf = await call("GET", `${SVC}/nope`);
    expect(nf.status).toBe(404);
    expect(nf.body).toMatchObject({ kind: "Status", reason: "NotFound", message: 'services "nope" not found' });
    expect((await call("POST", "/api/v1/namespaces/ghost/services", svc("x", { ports: [{ port: 80 }] }))).status).toBe(404);

    const d = await call("DELETE", `${SVC}/web`);
    expect(d.status).toBe(200);
    expect((await call("GET", `${SVC}/web`)).status).toBe(404);
    expect(reg.nodePorts.has(c.body.spec.ports[0].nodePort)).toBe(false);
  });

  it("lists with label and field selectors, across namespaces, and deletes collections", async () => {
    await call("POST", "/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name: "prod" } });
    await call("POST", SVC, svc("a", { ports: [{ port: 80 }] }, { tier: "fe" }));
    await call("POST", SVC, svc("b", { ports: [{ port: 80 }] }, { tier: "be" }));
    await call("POST", "/api/v1/namespaces/prod/services", svc("a", { ports: [{ port: 80 }] }, { tier: "fe" }));
    const fe = await call("GET", `${SVC}?labelSelector=${encodeURIComponent("tier=fe")}`);
    expect(fe.body.kind).toBe("ServiceList");
    expect(fe.body.items.map((i: any) => i.metadata.name)).toEqual(["a"]);
    const notFe = await call("GET", `${SVC}?labelSelector=${encodeURIComponent("tier!=fe,tier")}`);
    expect(notFe.body.items.map((i: any) => i.metadata.name)).toEqual(["b"]);
    const all = await call("GET", `/api/v1/services?fieldSelector=${encodeURIComponent("metadata.name=a")}`);
    expect(all.body.items.map((i: any) => `${i.metadata.namespace}/${i.metadata.name}`)).toEqual(["default/a", "prod/a"]);
    const ns = await call("GET", `/api/v1/services?fieldSelector=${encodeURIComponent("metadata.namespace=prod")}`);
    expect(ns.body.items).toHaveLength(1);
    expect((await call("GET", `${SVC}?fieldSelector=spec.type%3DNodePort`)).status).toBe(400);
    const dc = await call("DELETE", `${SVC}?labelSelector=tier`);
    expect(dc.status).toBe(200);
    expect(dc.body.items.map((i: any) => i.metadata.name).sort()).toEqual(["a", "b"]);
    expect((await call("GET", SVC)).body.items.map((i: any) => i.metadata.name)).toEqual(["kubernetes"]);
    expect((await call("DELETE", "/api/v1/namespaces/prod")).status).toBe(200);
    expect((await call("GET", "/api/v1/services")).body.items).toHaveLength(1);
  });

  it("serves EndpointSlices under discovery.k8s.io/v1 and validates Endpoints", async () => {
    const es = await call("POST", "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices", {
      apiVersion: "discovery.k8s.io/v1",
      kind: "EndpointSlice",
      metadata: { name: "m-1", labels: { "kubernetes.io/service-name": "m" } },
      addressType: "IPv4",
      endpoints: [{ addresses: ["192.0.2.42"], conditions: { ready: true } }],
      ports: [{ port: 9376 }],
    });
    expect(es.status).toBe(201);
    expect(es.body.ports[0]).toEqual({ port: 9376, name: "", protocol: "TCP" });
    const bad = await call("POST", "/api/v1/namespaces/default/endpoints", {
      apiVersion: "v1",
      kind: "Endpoints",
      metadata: { name: "x" },
      subsets: [{ addresses: [{ ip: "169.254.1.1" }], ports: [{ port: 80 }] }],
    });
    expect(bad.status).toBe(422);
    expect(bad.body.message).toContain("link-local");
  });
});

describe("Table output", () => {
  it("returns Tables with the service columns and wide columns at priority 1", async () => {
    await call("POST", SVC, svc("lb", { type: "LoadBalancer", selector: { app: "x", b: "y" }, ports: [{ name: "http", port: 80, nodePort: 30080 }, { name: "u", port: 53, protocol: "UDP" }] }));
    await call("POST", SVC, svc("ext", { type: "ExternalName", externalName: "db.example.com" }));
    const t = await call("GET", SVC, undefined, { Accept: "application/json;as=Table;v=v1;g=meta.k8s.io,application/json" });
    expect(t.body.kind).toBe("Table");
    expect(t.body.columnDefinitions.map((c: any) => c.name)).toEqual(["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age", "Selector"]);
    expect(t.body.columnDefinitions[6].priority).toBe(1);
    const row = (n: string): any[] => t.body.rows.find((r: any) => r.cells[0] === n).cells;
    const lb = row("lb");
    expect(lb[1]).toBe("LoadBalancer");
    expect(lb[3]).toMatch(/^192\.0\.2\.\d+$/);
    expect(lb[4]).toMatch(/^80:30080\/TCP,53:3\d{4}\/UDP$/);
    expect(lb[6]).toBe("app=x,b=y");
    expect(row("ext").slice(1, 5)).toEqual(["ExternalName", "<none>", "db.example.com", "<none>"]);
    expect(row("kubernetes").slice(1, 5)).toEqual(["ClusterIP", "10.96.0.1", "<none>", "443/TCP"]);
    expect(t.body.rows[0].object.kind).toBe("PartialObjectMetadata");
    const one = await call("GET", `${SVC}/lb`, undefined, { Accept: "application/json;as=Table;v=v1;g=meta.k8s.io" });
    expect(one.body.rows).toHaveLength(1);
    await call("DELETE", `${SVC}/lb`);
    await call("DELETE", `${SVC}/ext`);
  });
});

describe("PATCH and /status", () => {
  it("merge patch, strategic merge patch (ports by port), JSON patch", async () => {
    await call("POST", SVC, svc("p", { ports: [{ name: "http", port: 80 }, { name: "https", port: 443 }] }));
    const smp = await call("PATCH", `${SVC}/p`, { spec: { ports: [{ port: 443, targetPort: 8443 }] } }, { "Content-Type": "application/strategic-merge-patch+json" });
    expect(smp.status).toBe(200);
    expect(smp.body.spec.ports.map((p: any) => `${p.name}:${p.port}:${p.targetPort}`)).toEqual(["http:80:80", "https:443:8443"]);
    const order = await call(
      "PATCH",
      `${SVC}/p`,
      { spec: { $setElementOrder: undefined, "$setElementOrder/ports": [{ port: 443 }, { port: 80 }], ports: [{ port: 80, targetPort: 8080 }] } },
      { "Content-Type": "application/strategic-merge-patch+json" },
    );
    expect(order.body.spec.ports.map((p: any) => `${p.port}:${p.targetPort}`)).toEqual(["443:8443", "80:8080"]);
    const merge = await call("PATCH", `${SVC}/p`, { metadata: { labels: { x: "1" } }, spec: { ports: [{ port: 81 }] } }, { "Content-Type": "application/merge-patch+json" });
    expect(merge.body.metadata.labels).toEqual({ x: "1" });
    expect(merge.body.spec.ports.map((p: any) => p.port)).toEqual([81]);
    const jp = await call("PATCH", `${SVC}/p`, [{ op: "remove", path: "/metadata/labels/x" }], { "Content-Type": "application/json-patch+json" });
    expect(jp.body.metadata.labels).toEqual({});
    const bad = await call("PATCH", `${SVC}/p`, { spec: { type: "Weird" } }, { "Content-Type": "application/merge-patch+json" });
    expect(bad.status).toBe(422);
    expect((await call("PATCH", `${SVC}/p`, {}, { "Content-Type": "text/plain" })).status).toBe(415);
    expect((await call("PATCH", `${SVC}/missing`, {}, { "Content-Type": "application/merge-patch+json" })).status).toBe(404);
    await call("DELETE", `${SVC}/p`);
  });

  it("Endpoints subsets are replaced by strategic merge (no merge key)", async () => {
    await call("POST", "/api/v1/namespaces/default/endpoints", {
      apiVersion: "v1",
      kind: "Endpoints",
      metadata: { name: "e" },
      subsets: [{ addresses: [{ ip: "192.0.2.1" }], ports: [{ port: 80 }] }],
    });
    const p = await call(
      "PATCH",
      "/api/v1/namespaces/default/endpoints/e",
      { subsets: [{ addresses: [{ ip: "192.0.2.2" }], ports: [{ port: 81 }] }] },
      { "Content-Type": "application/strategic-merge-patch+json" },
    );
    expect(p.body.subsets).toEqual([{ addresses: [{ ip: "192.0.2.2" }], ports: [{ port: 81, protocol: "TCP" }] }]);
  });

  it("/status changes status.loadBalancer only, main resource ignores status", async () => {
    const c = await call("POST", SVC, svc("st", { type: "LoadBalancer", loadBalancerClass: "example.com/x", ports: [{ port: 80 }] }));
    expect(c.body.status).toEqual({ loadBalancer: {} });
    const s = await call(
      "PATCH",
      `${SVC}/st/status`,
      { status: { loadBalancer: { ingress: [{ ip: "203.0.113.9" }] } }, spec: { ports: [{ port: 99 }] } },
      { "Content-Type": "application/merge-patch+json" },
    );
    expect(s.status).toBe(200);
    expect(s.body.status.loadBalancer.ingress).toEqual([{ ip: "203.0.113.9" }]);
    expect(s.body.spec.ports[0].port).toBe(80);
    const getStatus = await call("GET", `${SVC}/st/status`);
    expect(getStatus.body.status.loadBalancer.ingress[0].ip).toBe("203.0.113.9");
    const main = await call("PATCH", `${SVC}/st`, { status: { loadBalancer: { ingress: [] } } }, { "Content-Type": "application/merge-patch+json" });
    expect(main.body.status.loadBalancer.ingress).toEqual([{ ip: "203.0.113.9" }]);
    const put = structuredClone(getStatus.body);
    put.status.loadBalancer.ingress = [{ hostname: "lb.example.com" }];
    const ps = await call("PUT", `${SVC}/st/status`, put);
    expect(ps.body.status.loadBalancer.ingress).toEqual([{ hostname: "lb.example.com" }]);
    expect((await call("PUT", "/api/v1/namespaces/default/endpoints/e/status", put)).status).toBe(404);
    await call("DELETE", `${SVC}/st`);
  });
});

describe("watch", () => {
  it("streams events from a resourceVersion, resumes, and answers 410 when too old", async () => {
    const rv = (await call("GET", SVC)).body.metadata.resourceVersion;
    const pending = watch(`${SVC}?watch=true&resourceVersion=${rv}`, 3);
    await new Promise((r) => setTimeout(r, 50));
    const a = await call("POST", SVC, svc("w1", { ports: [{ port: 80 }] }));
    await call("PATCH", `${SVC}/w1`, { metadata: { labels: { k: "v" } } }, { "Content-Type": "application/merge-patch+json" });
    await call("DELETE", `${SVC}/w1`);
    const evs = await pending;
    expect(evs.map((e) => `${e.type} ${e.object.metadata.name}`)).toEqual(["ADDED w1", "MODIFIED w1", "DELETED w1"]);

    const resumed = await watch(`${SVC}?watch=true&resourceVersion=${a.body.metadata.resourceVersion}`, 2);
    expect(resumed.map((e) => e.type)).toEqual(["MODIFIED", "DELETED"]);

    const all = await watch(`/api/v1/services?watch=1&resourceVersion=0&labelSelector=component%3Dapiserver`, 1);
    expect(all.map((e) => `${e.type} ${e.object.metadata.name}`)).toEqual(["ADDED kubernetes"]);

    for (let i = 0; i < 60; i++) reg.create("Namespace", { apiVersion: "v1", kind: "Namespace", metadata: { name: `n${i}` } });
    reg.store.compact();
    const gone = await watch(`${SVC}?watch=true&resourceVersion=${rv}`, 5);
    expect(gone).toHaveLength(1);
    expect(gone[0]!.type).toBe("ERROR");
    expect(gone[0]!.object).toMatchObject({ kind: "Status", code: 410, reason: "Expired" });

    const t = await watch(`${SVC}?watch=true&timeoutSeconds=1&resourceVersion=${reg.store.currentRV()}`, 10, 3000);
    expect(t).toEqual([]);
  });

  it("streams Table rows when kubectl asks for them", async () => {
    const p = new Promise<any[]>((resolve) => {
      const req = request(`${base}${SVC}?watch=true&resourceVersion=${reg.store.currentRV()}`, { headers: { Accept: "application/json;as=Table;v=v1;g=meta.k8s.io" } }, (res) => {
        let buf = "";
        res.on("data", (d: Buffer) => {
          buf += d.toString();
          if (buf.includes("\n")) {
            req.destroy();
            resolve([JSON.parse(buf.slice(0, buf.indexOf("\n")))]);
          }
        });
      });
      req.on("error", () => undefined);
      req.end();
    });
    await new Promise((r) => setTimeout(r, 50));
    await call("POST", SVC, svc("tw", { ports: [{ port: 80 }] }));
    const [ev] = await p;
    expect(ev.type).toBe("ADDED");
    expect(ev.object.kind).toBe("Table");
    expect(ev.object.rows[0].cells[0]).toBe("tw");
  });
});

describe("listening", () => {
  it("refuses non-loopback addresses without a token and TLS", () => {
    expect(() => new ApiServer({ registry: reg, host: "0.0.0.0" })).toThrow(/token and TLS/);
    expect(() => new ApiServer({ registry: reg, host: "192.0.2.1", token: "t" })).toThrow(/token and TLS/);
  });

  it("requires the bearer token when one is set", async () => {
    const s = new ApiServer({ registry: reg, token: "s3cret" });
    const url = await s.listen();
    try {
      expect((await fetch(`${url}/api/v1/services`)).status).toBe(401);
      expect((await fetch(`${url}/api/v1/services`, { headers: { Authorization: "Bearer s3cret" } })).status).toBe(200);
    } finally {
      await s.close();
    }
  });

  it("startServe opens the store in a data dir and closes cleanly", async () => {
    const t = tempDir("tapvip-serve-");
    try {
      const h = await startServe({ data: t.dir, listen: `127.0.0.1:${await freePort()}`, serviceCIDR: "10.0.0.0/16", durability: "normal" });
      const r = await fetch(`${h.url}/api/v1/namespaces/default/services/kubernetes`);
      expect(((await r.json()) as any).spec.clusterIP).toBe("10.0.0.1");
      await h.close();
    } finally {
      t.cleanup();
    }
  });

  it("serveMain prints the listen URL and exits 0 on SIGTERM and SIGINT", async () => {
    const here = fileURLToPath(new URL(".", import.meta.url));
    const t = tempDir("tapvip-serve-");
    try {
      for (const sig of ["SIGTERM", "SIGINT"] as const) {
        const port = await freePort();
        const child = spawn(
          process.execPath,
          ["--import", join(here, "fixtures/ts-register.mjs"), join(here, "fixtures/serve-child.ts"), "--data", t.dir, "--listen", `127.0.0.1:${port}`],
          { stdio: ["ignore", "pipe", "pipe"] },
        );
        let out = "";
        await new Promise<void>((resolve, reject) => {
          child.stdout.on("data", (d: Buffer) => {
            out += d.toString();
            if (out.includes("listening on")) resolve();
          });
          child.on("exit", () => reject(new Error(`exited early: ${out}`)));
        });
        expect(out).toContain(`listening on http://127.0.0.1:${port}`);
        const r = await fetch(`http://127.0.0.1:${port}/version`);
        expect(r.status).toBe(200);
        const code = await new Promise<number | null>((resolve) => {
          child.removeAllListeners("exit");
          child.on("exit", (c) => resolve(c));
          child.kill(sig);
        });
        expect(code).toBe(0);
      }
      const bad = spawn(process.execPath, ["--import", join(here, "fixtures/ts-register.mjs"), join(here, "fixtures/serve-child.ts"), "--data", t.dir, "--listen", "0.0.0.0:0"], {
        stdio: ["ignore", "pipe", "pipe"],
      });
      let err = "";
      bad.stderr.on("data", (d: Buffer) => (err += d.toString()));
      const code = await new Promise<number | null>((resolve) => bad.on("exit", (c) => resolve(c)));
      expect(code).toBe(1);
      expect(err).toContain("token and TLS");
    } finally {
      t.cleanup();
    }
  });
});
