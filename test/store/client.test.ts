// The HTTP client of our API: list + watch (resume after the server ends a stream, 410 Gone
// after compaction, Reflector relist), CRUD / apply with the API's Status errors; the client
// commands (apply, get, delete, describe) in-process against a running server; and
// @kubernetes/client-node informers seeing every change of Services.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { startServe, type ServeHandle } from "../../src/store/cli-serve.js";
import { ApiClient, ApiError } from "../../src/store/client.js";
import { Reflector, type WatchEvent } from "../../src/store/watch.js";
import type { StoredObject } from "../../src/store/db.js";
import type { Status } from "../../src/store/types.js";
import { applyMain, deleteMain, describeMain, getMain, type Io } from "../../src/cli/index.js";
import { tempDir, freePort } from "./fixtures/tmp.js";

const tmp = tempDir("tapvip-client-");
let h: ServeHandle;
let client: ApiClient;

beforeAll(async () => {
  h = await startServe({
    data: tmp.dir,
    listen: `127.0.0.1:${await freePort()}`,
    lbPool: "192.0.2.0/30",
    durability: "normal",
    controllerBatchMs: 5,
  });
  client = new ApiClient(h.url);
});

afterAll(async () => {
  client?.close();
  await h?.close();
  tmp.cleanup();
});

async function waitFor<T>(fn: () => T | undefined | false | Promise<T | undefined | false>, what: string, timeoutMs = 3000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const svc = (name: string, ns = "default", extra: Record<string, unknown> = {}): StoredObject => ({
  apiVersion: "v1",
  kind: "Service",
  metadata: { name, namespace: ns },
  spec: { ports: [{ port: 80 }], ...extra },
});

describe("ApiClient", () => {
  it("CRUD and apply, with the API's Status errors", async () => {
    const created = await client.create("Service", svc("crud"));
    expect(created.metadata.uid).toBeDefined();
    const got = await client.get<StoredObject & { spec: { clusterIP: string } }>("svc", "default", "crud");
    expect(got.spec.clusterIP).toMatch(/^10\./);
    await expect(client.create("Service", svc("crud"))).rejects.toMatchObject({ code: 409, status: { reason: "AlreadyExists" } });

    // stale resourceVersion → 409 Conflict
    const stale = structuredClone(got);
    got.metadata.labels = { a: "1" };
    await client.update("Service", got);
    await expect(client.update("Service", stale)).rejects.toMatchObject({ code: 409, status: { reason: "Conflict" } });

    // invalid → 422 with field and rule
    let err: ApiError | undefined;
    try {
      await client.create("Service", svc("bad", "default", { ports: [{ port: 0 }] }));
    } catch (e) {
      err = e as ApiError;
    }
    expect(err).toBeInstanceOf(ApiError);
    expect(err!.code).toBe(422);
    expect(err!.status.details?.causes?.[0]?.field).toBe("spec.ports[0].port");
    expect(err!.message).toContain("spec.ports[0].port");

    // apply: created, unchanged, configured
    const a1 = await client.apply(svc("applied"));
    expect(a1.action).toBe("created");
    expect((await client.apply(svc("applied"))).action).toBe("unchanged");
    const a3 = await client.apply({ ...svc("applied"), metadata: { name: "applied", namespace: "default", labels: { x: "y" } } });
    expect(a3.action).toBe("configured");
    expect(a3.object.metadata.labels).toEqual({ x: "y" });

    await client.delete("Service", "default", "crud");
    expect(await client.find("Service", "default", "crud")).toBeUndefined();
    await expect(client.get("Service", "default", "crud")).rejects.toMatchObject({ code: 404 });

    const down = new ApiClient(`http://127.0.0.1:${await freePort()}`);
    await expect(down.list("Service")).rejects.toMatchObject({ code: 503 });
    down.close();
  });

  it("list + watch: every change in order, resumed after the server ends the stream", async () => {
    const list = await client.list("Service", { namespace: "default" });
    expect(list.items.some((s) => s.metadata.name === "kubernetes")).toBe(true);
    const events: WatchEvent[] = [];
    let closed: Status | undefined | null = null;
    const w = client.watch("Service", { namespace: "default", resourceVersion: list.resourceVersion }, {
      onEvent: (e) => events.push(e),
      onClose: (e) => (closed = e),
    });
    await client.create("Service", svc("w1"));
    await waitFor(() => events.length >= 1, "ADDED");
    // the server ends every open watch stream (as a timeoutSeconds expiry would) — the client resumes
    const ends = (h.server as unknown as { watches: Set<() => void> }).watches;
    for (const f of [...ends]) f();
    await client.patch("Service", "default", "w1", "merge", { metadata: { labels: { v: "2" } } });
    await client.delete("Service", "default", "w1");
    await waitFor(() => events.length >= 3, "MODIFIED + DELETED after resume");
    expect(events.map((e) => `${e.type} ${e.object.metadata.name}`)).toEqual(["ADDED w1", "MODIFIED w1", "DELETED w1"]);
    const rvs = events.map((e) => Number(e.object.metadata.resourceVersion));
    expect([...rvs].sort((a, b) => a - b)).toEqual(rvs);
    expect(closed).toBeNull();
    w.stop();
  });

  it("410 Gone for a compacted resourceVersion; a Reflector over the client relists", async () => {
    for (let i = 0; i < 5; i++) await client.create("Service", svc(`gone-${i}`));
    h.registry.store.compact(1);
    const closed = await new Promise<Status | undefined>((resolve) => {
      client.watch("Service", { resourceVersion: "1" }, { onEvent: () => undefined, onClose: resolve });
    });
    expect(closed?.code).toBe(410);

    // a Reflector resumes from its resourceVersion, and relists after a 410
    const r = new Reflector(client, "Service", { namespace: "default" }, {});
    await r.start();
    expect(r.cache.has("default/gone-4")).toBe(true);
    await client.create("Service", svc("after"));
    await waitFor(() => r.cache.has("default/after"), "reflector sees the new service");
    r.stop();
  });
});

describe("client commands", () => {
  function io(): Io & { stdout: string; stderr: string } {
    const o = {
      stdout: "",
      stderr: "",
      out(t: string) {
        o.stdout += t;
      },
      err(t: string) {
        o.stderr += t;
      },
    };
    return o;
  }

  it("apply, get (tables, wide, -A, yaml/json), describe with endpoints and events, delete", async () => {
    const file = join(tmp.dir, "app.yaml");
    writeFileSync(
      file,
      `apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: shop, labels: {app: web}}
spec: {nodeName: n1, containers: [{name: c, ports: [{name: http, containerPort: 8080}]}]}
status: {phase: Running, podIP: 10.244.1.7, conditions: [{type: Ready, status: "True"}]}
---
apiVersion: v1
kind: Service
metadata: {name: lb-1, namespace: shop}
spec: {type: LoadBalancer, ports: [{port: 443}]}
---
apiVersion: v1
kind: Service
metadata: {name: lb-2, namespace: shop}
spec: {type: LoadBalancer, ports: [{port: 443}]}
---
apiVersion: v1
kind: Service
metadata: {name: lb-3, namespace: shop}
spec: {type: LoadBalancer, ports: [{port: 443}]}
`,
    );
    const s = ["--server", h.url];
    let o = io();
    expect(await applyMain(["-f", file, ...s], o)).toBe(0);
    expect(o.stdout).toContain("namespace/shop created");
    expect(o.stdout).toContain("service/web created");
    expect(o.stdout).toContain("pod/web-1 created");
    o = io();
    expect(await applyMain(["-f", file, ...s], o)).toBe(0);
    expect(o.stdout).toContain("service/web unchanged");

    o = io();
    expect(await getMain(["svc", "-n", "shop", ...s], o)).toBe(0);
    const lines = o.stdout.trim().split("\n");
    expect(lines[0]!.split(/\s{2,}/)).toEqual(["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]);
    const lbRows = lines.filter((l) => l.startsWith("lb-"));
    expect(lbRows.filter((l) => l.includes("<pending>"))).toHaveLength(1);
    expect(lines.find((l) => l.startsWith("web"))!.split(/\s+/).slice(1, 3)[0]).toBe("ClusterIP");

    o = io();
    expect(await getMain(["services", "-A", "-o", "wide", ...s], o)).toBe(0);
    expect(o.stdout.split("\n")[0]!.split(/\s{2,}/)).toEqual(["NAMESPACE", "NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE", "SELECTOR"]);
    expect(o.stdout).toMatch(/shop\s+web\s+ClusterIP\s+10\.\S+\s+<none>\s+80\/TCP\s+\S+\s+app=web/);

    await waitFor(async () => {
      const g = io();
      await getMain(["endpoints", "web", "-n", "shop", ...s], g);
      return g.stdout.includes("10.244.1.7:8080");
    }, "Endpoints of web");
    o = io();
    expect(await getMain(["endpointslices", "-n", "shop", ...s], o)).toBe(0);
    expect(o.stdout).toMatch(/web-\S+\s+IPv4\s+8080\s+10\.244\.1\.7/);
    o = io();
    expect(await getMain(["pods", "-n", "shop", ...s], o)).toBe(0);
    expect(o.stdout).toMatch(/web-1\s+1\/1\s+Running/);
    o = io();
    expect(await getMain(["ns", ...s], o)).toBe(0);
    expect(o.stdout).toMatch(/shop\s+Active/);

    o = io();
    expect(await getMain(["svc", "web", "-n", "shop", "-o", "json", ...s], o)).toBe(0);
    expect(JSON.parse(o.stdout).spec.selector).toEqual({ app: "web" });
    o = io();
    expect(await getMain(["svc", "-n", "shop", "-o", "yaml", ...s], o)).toBe(0);
    expect(o.stdout).toMatch(/^apiVersion: v1\nkind: List/);

    o = io();
    expect(await describeMain(["service", "web", "-n", "shop", ...s], o)).toBe(0);
    expect(o.stdout).toMatch(/Selector:\s+app=web/);
    expect(o.stdout).toMatch(/TargetPort:\s+http\/TCP/);
    expect(o.stdout).toMatch(/Endpoints:\s+10\.244\.1\.7:8080/);

    // the pending LoadBalancer service has an AllocationFailed event
    const pending = lbRows.find((l) => l.includes("<pending>"))!.split(/\s+/)[0]!;
    const d = await waitFor(async () => {
      const x = io();
      await describeMain(["svc", pending, "-n", "shop", ...s], x);
      return x.stdout.includes("AllocationFailed") ? x.stdout : undefined;
    }, "AllocationFailed in describe");
    expect(d).toMatch(/Warning\s+AllocationFailed\s+\S+\s+tapvip-lb-ip-allocator\s+failed to allocate a LoadBalancer IP: no free address in the pool 192\.0\.2\.0\/30/);
    o = io();
    expect(await getMain(["events", "-n", "shop", ...s], o)).toBe(0);
    expect(o.stdout).toMatch(/Warning\s+AllocationFailed\s+service\//);

    // errors: field and rule, non-zero exit
    const bad = join(tmp.dir, "bad.yaml");
    writeFileSync(bad, "apiVersion: v1\nkind: Service\nmetadata: {name: bad}\nspec: {ports: [{port: 70000}]}\n");
    o = io();
    expect(await applyMain(["-f", bad, ...s], o)).toBe(1);
    expect(o.stderr).toMatch(/^Error from server \(Invalid\): Service "bad" is invalid: .*spec\.ports\[0\]\.port: Invalid value: 70000: must be between 1 and 65535, inclusive/);
    o = io();
    expect(await getMain(["svc", "nope", ...s], o)).toBe(1);
    expect(o.stderr).toContain('Error from server (NotFound): services "nope" not found');
    o = io();
    expect(await getMain(["widgets", ...s], o)).toBe(1);
    expect(o.stderr).toContain('the server doesn\'t have a resource type "widgets"');
    o = io();
    expect(await getMain([], o)).toBe(2);

    // delete by name (pods gracefully) and by file
    o = io();
    expect(await deleteMain(["pod", "web-1", "-n", "shop", "--grace-period", "0", ...s], o)).toBe(0);
    expect(o.stdout).toBe('pod "web-1" deleted\n');
    o = io();
    expect(await deleteMain(["-f", file, "--ignore-not-found", ...s], o)).toBe(0);
    expect(o.stdout).toContain('service "web" deleted');
    o = io();
    expect(await deleteMain(["svc", "web", "-n", "shop", ...s], o)).toBe(1);
    expect(o.stderr).toContain("NotFound");
  });

  it("the built CLI: tapvip get/apply through bin/tapvip.js", async () => {
    const { execFile } = await import("node:child_process");
    const { existsSync } = await import("node:fs");
    if (!existsSync(new URL("../../dist/src/cli/get.js", import.meta.url))) return; // needs npm run build:ts
    const run = (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
      new Promise((resolve) =>
        execFile(process.execPath, ["bin/tapvip.js", ...args, "--server", h.url], { timeout: 15_000 }, (err, stdout, stderr) =>
          resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        ),
      );
    const g = await run("get", "svc", "kubernetes");
    expect(g.code).toBe(0);
    expect(g.stdout).toMatch(/kubernetes\s+ClusterIP\s+10\.96\.0\.1\s+<none>\s+443\/TCP/);
    const bad = await run("delete", "svc", "does-not-exist");
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("NotFound");
  });
});

describe("@kubernetes/client-node", () => {
  it("list+watch informers see every change of Services (create / update / delete)", async () => {
    const kc = new k8s.KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: "tapvip", server: h.url, skipTLSVerify: true }],
      users: [{ name: "u" }],
      contexts: [{ name: "tapvip", cluster: "tapvip", user: "u" }],
      currentContext: "tapvip",
    });
    const api = kc.makeApiClient(k8s.CoreV1Api);
    const seen: string[] = [];
    const inf = k8s.makeInformer(kc, "/api/v1/namespaces/default/services", () => api.listNamespacedService({ namespace: "default" }));
    inf.on("add", (o) => seen.push(`add ${o.metadata?.name}`));
    inf.on("update", (o) => seen.push(`update ${o.metadata?.name} ${JSON.stringify(o.metadata?.labels ?? {})}`));
    inf.on("delete", (o) => seen.push(`delete ${o.metadata?.name}`));
    inf.on("error", () => undefined);
    await inf.start();
    try {
      await waitFor(() => seen.includes("add kubernetes"), "initial list");
      await api.createNamespacedService({ namespace: "default", body: { metadata: { name: "cn" }, spec: { ports: [{ port: 80 }] } } });
      await waitFor(() => seen.includes("add cn"), "add");
      await api.patchNamespacedService(
        { namespace: "default", name: "cn", body: { metadata: { labels: { v: "1" } } } },
        k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
      );
      await waitFor(() => seen.some((s) => s.startsWith("update cn") && s.includes('"v":"1"')), "update 1");
      await client.patch("Service", "default", "cn", "merge", { metadata: { labels: { v: "2" } } });
      await waitFor(() => seen.some((s) => s.startsWith("update cn") && s.includes('"v":"2"')), "update 2 (through our client)");
      await api.deleteNamespacedService({ namespace: "default", name: "cn" });
      await waitFor(() => seen.includes("delete cn"), "delete");
      const cnEvents = seen.filter((s) => s.includes(" cn"));
      expect(cnEvents[0]).toBe("add cn");
      expect(cnEvents.at(-1)).toBe("delete cn");
      expect(inf.list().some((s) => s.metadata?.name === "cn")).toBe(false);
    } finally {
      await inf.stop();
    }
  });
});
