// End to end, per-service behaviour through real traffic on a running agent (embedded store,
// objects through `tapvip apply`): session affinity ClientIP (sticky over new connections,
// switched off and on, refreshed on use, expiring after timeoutSeconds), multi-port services
// with named targetPorts resolved per pod, UDP through a NodePort, and TCP + UDP on one port
// number sharing one nodePort.
//
//   client pod 10.244.0.22 ─┐                        ┌─ pod1 10.244.0.10, pod2 10.244.0.14,
//                           ├─ node (tapvip run, TAP) ┤  pod3 10.244.0.18 (node-a)
//   external 198.51.100.2 ──┘   node IP 198.51.100.1  ┘

import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { mkdtempSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { netnsUnavailable, cleanupAll, sweepStale } from "../helpers/netns.js";
import {
  buildBox, startServer, waitForOutput, podYaml, curl, udpAsk, eventually, Agent, NODE_IP, type Box,
} from "../../src/demo/topology.js";

const skip = netnsUnavailable();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const sticky = (affinity: string) => `
apiVersion: v1
kind: Service
metadata: {name: sticky, namespace: default}
spec:
  type: NodePort
  selector: {svc: sticky}
  ports: [{name: http, port: 80, targetPort: 8080}]
  ${affinity}
`;

describe.skipIf(skip !== null)(`services on a running agent (${skip ?? "root"})`, () => {
  let box: Box;
  let agent: Agent;
  const client = () => box.pods[3]!.ns;
  /** Pod names answering `n` new connections from the client pod. */
  const ask = (url: string, n: number) => Array.from({ length: n }, () => {
    const r = curl(client(), url, { maxTime: 2 });
    return r.code === 0 ? r.body.split(" ")[0]! : `curl exit ${r.code}`;
  });
  const distinct = (xs: string[]) => [...new Set(xs)].sort();

  beforeAll(async () => {
    sweepStale();
    box = buildBox(["pod1", "pod2", "pod3", "client"]);
    const [p1, p2, p3] = box.pods;
    await Promise.all([
      waitForOutput(startServer(p1!, [8080, 9090], [5353]), "ready", 10_000),
      waitForOutput(startServer(p2!, [8080, 8081, 9091], [5353]), "ready", 10_000),
      waitForOutput(startServer(p3!, [8080], [5353]), "ready", 10_000),
    ]);
    agent = new Agent(box, { tap: "tv3", apiPort: 16510, dataDir: join(mkdtempSync(join(tmpdir(), "tapvip-svc-")), "data"),
      extraArgs: ["--admin-address", "off", "--healthz-address", "off"] });
    await agent.start();
  }, 60_000);

  afterAll(() => {
    agent?.child?.kill("SIGKILL");
    cleanupAll();
  });

  it("session affinity ClientIP: sticky, switchable, refreshed on use, expiring after timeoutSeconds", async () => {
    agent.apply([
      sticky("sessionAffinity: None"),
      ...box.pods.slice(0, 3).map((p) => podYaml(`${p.name}-sticky`, p.ip, { labels: { svc: "sticky" } })),
    ].join("---"));
    const url = `http://${agent.get("service", "sticky").spec.clusterIP}/`;
    const all = ["pod1", "pod2", "pod3"];
    // None: spread over the three.
    expect(await eventually(() => distinct(ask(url, 12)).length === 3), agent.log).toBe(true);

    // ClientIP: every new connection of this client goes to one backend.
    agent.apply(sticky("sessionAffinity: ClientIP"));
    expect(await eventually(() => distinct(ask(url, 10)).length === 1), agent.log).toBe(true);
    const pinned = distinct(ask(url, 20));
    expect(pinned).toHaveLength(1);
    expect(all).toContain(pinned[0]);
    // Through the NodePort too: the external client (its own address, before masquerading) is pinned.
    const np = agent.get("service", "sticky").spec.ports[0].nodePort as number;
    const outside = distinct(Array.from({ length: 12 }, () => curl(box.ext, `http://${NODE_IP}:${np}/`, { maxTime: 2 }).body.split(" ")[0]!));
    expect(outside).toHaveLength(1);
    expect(all).toContain(outside[0]);

    // Switched off: spread again.
    agent.apply(sticky("sessionAffinity: None\n  sessionAffinityConfig: null"));
    expect(await eventually(() => distinct(ask(url, 12)).length === 3), agent.log).toBe(true);

    // timeoutSeconds 2: used every second for 4 s (refreshed on use) it stays pinned …
    agent.apply(sticky("sessionAffinity: ClientIP\n  sessionAffinityConfig: {clientIP: {timeoutSeconds: 2}}"));
    expect(agent.get("service", "sticky").spec.sessionAffinityConfig).toEqual({ clientIP: { timeoutSeconds: 2 } });
    expect(await eventually(() => distinct(ask(url, 10)).length === 1), agent.log).toBe(true);
    const refreshed: string[] = [];
    for (let i = 0; i < 5; i++) {
      refreshed.push(...ask(url, 1));
      await sleep(1000);
    }
    expect(distinct(refreshed)).toHaveLength(1);
    // … and idle for longer than the timeout, a new choice is made: over several expiries more
    // than one backend shows up (each round itself sticky). P(false failure) = 3^-7.
    const rounds: string[] = [refreshed[0]!];
    for (let i = 0; i < 7 && distinct(rounds).length < 2; i++) {
      await sleep(3200);
      const r = distinct(ask(url, 3));
      expect(r, "sticky within one round").toHaveLength(1);
      rounds.push(r[0]!);
    }
    expect(distinct(rounds).length, `rounds: ${rounds.join(" ")}`).toBeGreaterThan(1);
  }, 60_000);

  it("multi-port with named targetPorts resolved per pod (same name, different numbers)", async () => {
    agent.apply([`
apiVersion: v1
kind: Service
metadata: {name: multi, namespace: default}
spec:
  selector: {svc: multi}
  ports:
    - {name: http, port: 80, targetPort: web}
    - {name: metrics, port: 81, targetPort: mon}
`,
    podYaml("pod1-multi", box.pods[0]!.ip, { labels: { svc: "multi" }, ports: { web: 8080, mon: 9090 } }),
    podYaml("pod2-multi", box.pods[1]!.ip, { labels: { svc: "multi" }, ports: { web: 8081, mon: 9091 } }),
    ].join("---"));
    const ip = agent.get("service", "multi").spec.clusterIP as string;
    const served = (port: number) => distinct(Array.from({ length: 12 }, () => curl(client(), `http://${ip}:${port}/`, { maxTime: 2 }).servedBy ?? "none"));
    // Checked on the sample that saw both backends (a fresh sample of 12 random picks misses one
    // with probability 1/2048).
    let s80: string[] = [];
    let s81: string[] = [];
    expect(await eventually(() => (s80 = served(80)).length === 2), agent.log).toBe(true);
    expect(s80).toEqual(["pod1:8080", "pod2:8081"]);
    expect(await eventually(() => (s81 = served(81)).length === 2), agent.log).toBe(true);
    expect(s81).toEqual(["pod1:9090", "pod2:9091"]);
  });

  it("UDP through a NodePort; TCP and UDP on one port number share one nodePort", async () => {
    agent.apply([`
apiVersion: v1
kind: Service
metadata: {name: dns, namespace: default}
spec:
  type: NodePort
  selector: {svc: dns}
  ports:
    - {name: dns-tcp, protocol: TCP, port: 53, targetPort: 8080}
    - {name: dns-udp, protocol: UDP, port: 53, targetPort: 5353}
`,
    podYaml("pod1-dns", box.pods[0]!.ip, { labels: { svc: "dns" } }),
    podYaml("pod3-dns", box.pods[2]!.ip, { labels: { svc: "dns" } }),
    ].join("---"));
    const svc = agent.get("service", "dns");
    const [tcp, udp] = svc.spec.ports as Array<{ nodePort: number }>;
    expect(tcp!.nodePort).toBeGreaterThanOrEqual(30000);
    expect(udp!.nodePort).toBe(tcp!.nodePort);
    const np = tcp!.nodePort;
    // UDP from outside, through the NodePort: an echo from one of the two pods.
    const first = await eventually(() => { const a = udpAsk(box.ext, NODE_IP, np); return a === "TIMEOUT" ? null : a; });
    expect(first, agent.log).toMatch(/^pod[13]:hello$/);
    // Random selection: ask until two different answers came (at most 40; 10 tries missed a
    // backend with probability 1/512, and a clean-clone CI run hit it).
    const untilTwo = (ask: (i: number) => string): string[] => {
      const seen = new Set<string>();
      for (let i = 0; i < 40 && seen.size < 2; i++) seen.add(ask(i));
      return [...seen].sort();
    };
    expect(untilTwo((i) => udpAsk(box.ext, NODE_IP, np, `hi${i}`).split(":")[0]!)).toEqual(["pod1", "pod3"]);
    // TCP on the same nodePort.
    expect(untilTwo(() => curl(box.ext, `http://${NODE_IP}:${np}/`).body)).toEqual(["pod1 saw 169.254.42.3", "pod3 saw 169.254.42.3"]);
    // And both protocols on the ClusterIP's port 53 from a pod.
    expect(udpAsk(client(), svc.spec.clusterIP, 53)).toMatch(/^pod[13]:hello$/);
    expect(curl(client(), `http://${svc.spec.clusterIP}:53/`).body).toMatch(/^pod[13] saw 10\.244\.0\.22$/);
  });
});
