// Readiness probes against a local HTTP/TCP server standing in for the pod (podIP 127.0.0.1),
// with the Pod in a real Registry (list+watch in, status writes out). timeScale 0.1 makes
// periodSeconds 1 last 100 ms.

import { describe, it, expect, beforeAll, afterAll, afterEach } from "vitest";
import { createServer, type Server } from "node:http";
import { createServer as createTcpServer, type Server as TcpServer } from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import { Registry } from "../../src/store/registry.js";
import type { Pod } from "../../src/store/types.js";
import { ReadinessProber, podStatusWriter, podReadyCondition, runProbe, resolvePort, type Probe } from "../../src/agent/probes.js";

const NODE = "node-a";

function listen<S extends Server | TcpServer>(s: S, port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    s.once("error", reject);
    s.listen(port, "127.0.0.1", () => resolve((s.address() as AddressInfo).port));
  });
}
function close(s: Server | TcpServer): Promise<void> {
  return new Promise((r) => {
    s.close(() => r());
    (s as Server).closeAllConnections?.();
  });
}

async function until(what: string, f: () => boolean, ms = 4000): Promise<void> {
  const t0 = Date.now();
  while (!f()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("readiness probes", () => {
  let dir: string;
  let reg: Registry;
  const probers: ReadinessProber[] = [];
  const servers: Array<Server | TcpServer> = [];
  let healthy = true;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "tapvip-probes-"));
    reg = Registry.open(dir, { podGraceTimers: false, store: { durability: "normal" } });
  });
  afterEach(async () => {
    for (const p of probers.splice(0)) p.stop();
    for (const s of servers.splice(0)) await close(s);
    healthy = true;
  });
  afterAll(() => {
    reg.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function httpServer(): Server {
    const s = createServer((req, res) => {
      if (req.url === "/slow") return void setTimeout(() => res.writeHead(200).end("late"), 1000);
      res.writeHead(healthy && req.url === "/ready" ? 200 : 503).end();
    });
    servers.push(s);
    return s;
  }

  function makePod(name: string, container: Record<string, unknown>, opts: { ready?: boolean; nodeName?: string } = {}): Pod {
    const pod = reg.create("Pod", {
      apiVersion: "v1", kind: "Pod",
      metadata: { name, namespace: "default", labels: { app: "x" } },
      spec: { nodeName: opts.nodeName ?? NODE, containers: [{ name: "app", image: "x", ...container }] },
    }) as Pod;
    pod.status = { phase: "Running", podIP: "127.0.0.1", conditions: opts.ready === undefined ? [] : [{ type: "Ready", status: opts.ready ? "True" : "False" }] };
    return reg.update("Pod", pod, { subresource: "status" }) as Pod;
  }
  const ready = (name: string) => podReadyCondition(reg.get<Pod>("Pod", "default", name));

  async function prober(): Promise<ReadinessProber> {
    const p = new ReadinessProber({ nodeName: NODE, source: reg, writer: podStatusWriter(reg), timeScale: 0.1, log: () => {} });
    probers.push(p);
    await p.start();
    return p;
  }

  it("httpGet: Ready True on success, False after failureThreshold periods, True again after successThreshold", async () => {
    const s = httpServer();
    const port = await listen(s);
    makePod("web", {
      ports: [{ name: "http", containerPort: port }],
      readinessProbe: { httpGet: { path: "/ready", port: "http" }, periodSeconds: 1, failureThreshold: 3, successThreshold: 2 },
    }, { ready: false });
    const p = await prober();
    const t0 = Date.now();
    await until("Ready True", () => ready("web") === true);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(90); // two successes, 100 ms apart
    const pod = reg.get<Pod>("Pod", "default", "web");
    expect(pod.status!.conditions!.find((c) => c.type === "ContainersReady")?.status).toBe("True");
    const writesAfterReady = p.writes;

    // Server stops: not ready only after 3 failures (~300 ms), not at the first one.
    await close(s);
    const t1 = Date.now();
    await until("Ready False", () => ready("web") === false);
    expect(Date.now() - t1).toBeGreaterThanOrEqual(200);
    expect(reg.get<Pod>("Pod", "default", "web").status!.conditions!.find((c) => c.type === "Ready")!.reason).toBe("ContainersNotReady");

    // Back on the same port: True after 2 successes.
    const s2 = httpServer();
    await listen(s2, port);
    await until("Ready True again", () => ready("web") === true);
    expect(p.writes).toBe(writesAfterReady + 2); // only transitions were written

    // Steady state: no further writes.
    const w = p.writes;
    await new Promise((r) => setTimeout(r, 350));
    expect(p.writes).toBe(w);
  });

  it("httpGet answering 503 makes a Ready pod not ready; tcpSocket probes connect", async () => {
    const s = httpServer();
    const port = await listen(s);
    healthy = false;
    makePod("sick", { readinessProbe: { httpGet: { path: "/ready", port }, periodSeconds: 1, failureThreshold: 2 } }, { ready: true });
    const tcp = createTcpServer((c) => c.destroy());
    servers.push(tcp);
    const tport = await listen(tcp);
    makePod("db", { readinessProbe: { tcpSocket: { port: tport }, periodSeconds: 1 } });
    await prober();
    await until("sick not ready", () => ready("sick") === false);
    await until("db ready", () => ready("db") === true);
    await close(tcp);
    await until("db not ready", () => ready("db") === false);
  });

  it("leaves pods alone: no probe, other node; follows probe changes and deletions", async () => {
    const s = httpServer();
    const port = await listen(s);
    makePod("noprobe", {}, { ready: true });
    makePod("elsewhere", { readinessProbe: { tcpSocket: { port: 1 }, periodSeconds: 1, failureThreshold: 1 } }, { ready: true, nodeName: "node-b" });
    const p = await prober();
    await new Promise((r) => setTimeout(r, 300));
    expect(ready("noprobe")).toBe(true);
    expect(ready("elsewhere")).toBe(true);
    expect(p.writes).toBe(0);

    // A probe added to a running pod starts probing.
    const pod = reg.get<Pod>("Pod", "default", "noprobe");
    pod.spec!.containers[0]!.readinessProbe = { tcpSocket: { port: 1 }, periodSeconds: 1, failureThreshold: 1 };
    reg.update("Pod", pod);
    await until("noprobe not ready", () => ready("noprobe") === false);
    // Changed to a working probe: back to ready.
    const pod2 = reg.get<Pod>("Pod", "default", "noprobe");
    pod2.spec!.containers[0]!.readinessProbe = { httpGet: { path: "/ready", port }, periodSeconds: 1 };
    reg.update("Pod", pod2);
    await until("noprobe ready", () => ready("noprobe") === true);
    reg.delete("Pod", "default", "noprobe", { gracePeriodSeconds: 0 });
    await until("workers gone", () => p.status().every((x) => !x.pod.endsWith("/noprobe")));
  });

  it("timeouts count as failures; initialDelaySeconds delays the first probe", async () => {
    const s = httpServer();
    const port = await listen(s);
    makePod("slow", { readinessProbe: { httpGet: { path: "/slow", port }, periodSeconds: 1, timeoutSeconds: 1, failureThreshold: 1 } }, { ready: true });
    makePod("late", { readinessProbe: { httpGet: { path: "/ready", port }, periodSeconds: 1, initialDelaySeconds: 5 } }, { ready: false });
    const p = await prober();
    await until("slow not ready", () => ready("slow") === false);
    expect(p.status().find((x) => x.pod === "default/slow")!.message).toMatch(/timeout after 100 ms/);
    const t0 = Date.now();
    await until("late ready", () => ready("late") === true);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(350);
  });

  it("runProbe and resolvePort on their own", async () => {
    const c = { name: "app", ports: [{ name: "http", containerPort: 8080 }, { name: "metrics", containerPort: 9090 }] };
    expect(resolvePort("metrics", c)).toBe(9090);
    expect(resolvePort(80, c)).toBe(80);
    expect(resolvePort("8081", c)).toBe(8081);
    expect(resolvePort("nope", c)).toBeUndefined();
    const bad: Probe = { httpGet: { path: "/", port: "nope" } };
    expect((await runProbe(bad, c, "127.0.0.1", 100)).message).toMatch(/does not name a port/);
    const closed = await runProbe({ tcpSocket: { port: 1 } }, c, "127.0.0.1", 200);
    expect(closed).toMatchObject({ ok: false });
    expect(closed.message).toMatch(/ECONNREFUSED/);
  });
});
