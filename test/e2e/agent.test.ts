// End to end: `tapvip run` serving real traffic on a TAP in a node namespace built by the test,
// with pods as namespaces running real HTTP and UDP echo servers and an external client.
// Everything lives in the test's own namespaces and is removed afterwards, also on failure.
//
//   client pod 10.244.0.18 ─┐                       ┌─ backend pod 10.244.0.10 (:8080 http, :5353 udp)
//                           ├─ node (tapvip run, TAP)┤
//   external 198.51.100.2 ──┘   node IP 198.51.100.1 └─ backend pod 10.244.0.14

import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { execFileSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { netnsUnavailable, nsIp, nsExec, nsSpawn, cleanupAll, sweepStale } from "../helpers/netns.js";
import { offloadArgs, buildBox, startServer, waitForOutput, NODE_IP, type Box } from "../../src/demo/topology.js";

const skip = netnsUnavailable();
const ROOT = new URL("../..", import.meta.url).pathname;

const MANIFESTS = `
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  type: NodePort
  clusterIP: 10.96.0.10
  selector: {app: web}
  ports:
    - {name: http, protocol: TCP, port: 80, targetPort: 8080, nodePort: 30007}
    - {name: echo, protocol: UDP, port: 53, targetPort: 5353, nodePort: 30053}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: default, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints:
  - {addresses: [10.244.0.10], conditions: {ready: true}, nodeName: node-a}
  - {addresses: [10.244.0.14], conditions: {ready: true}, nodeName: node-a}
ports:
  - {name: http, protocol: TCP, port: 8080}
  - {name: echo, protocol: UDP, port: 5353}
---
apiVersion: v1
kind: Service
metadata: {name: empty, namespace: default}
spec:
  clusterIP: 10.96.0.11
  selector: {app: nothing}
  ports: [{name: http, protocol: TCP, port: 80, targetPort: 8080}]
`;

const UDP_CLIENT = `
const d = require("dgram").createSocket("udp4");
const [host, port] = process.argv.slice(1);
const t = setTimeout(() => { console.log("TIMEOUT"); process.exit(1); }, 2000);
d.on("message", (m) => { console.log(m.toString()); clearTimeout(t); d.close(); });
d.send("hello", Number(port), host);
`;

function curl(ns: string, url: string): { code: number; body: string } {
  try {
    return { code: 0, body: nsExec(ns, ["curl", "-sS", "--max-time", "3", url]) };
  } catch (e) {
    const msg = (e as Error).message; // "ip netns exec … failed (<exit code>): <stderr>"
    return { code: Number(/failed \((\d+)\)/.exec(msg)?.[1] ?? -1), body: msg };
  }
}

describe.skipIf(skip !== null)(`tapvip run on a TAP (${skip ?? "root"})`, () => {
  let box: Box;
  let agent: ChildProcess;
  let agentLog = "";

  beforeAll(async () => {
    sweepStale();
    box = buildBox(["pod1", "pod2", "client"]);
    const dir = mkdtempSync(join(tmpdir(), "tapvip-e2e-"));
    const file = join(dir, "services.yaml");
    writeFileSync(file, MANIFESTS);
    for (const pod of box.pods.slice(0, 2)) await waitForOutput(startServer(pod, [8080], [5353]), "ready", 10_000);
    agent = nsSpawn(box.node, ["node", join(ROOT, "bin/tapvip.js"), "run", "--tap", "tv0", "--node-name", "node-a",
      "--node-ip", NODE_IP, "--pod-cidr", "10.244.0.0/24", "--manifests", file, "--nodeport-iface", box.nodeExtIf, ...offloadArgs()]);
    agent.stderr?.on("data", (d) => (agentLog += d.toString()));
    await waitForOutput(agent, "serving on TAP", 20_000);
  }, 60_000);

  afterAll(() => {
    agent?.kill("SIGKILL");
    cleanupAll();
  });

  it("ClusterIP TCP from a pod reaches both backends, with the client's own address", () => {
    // Random selection: 12 connections all land on one backend with probability 1/2048, so ask
    // until both answered (at most 40: a miss then has probability 2^-39).
    const seen = new Set<string>();
    for (let i = 0; i < 40 && seen.size < 2; i++) {
      const r = curl(box.pods[2]!.ns, "http://10.96.0.10/");
      expect(r.code, agentLog).toBe(0);
      seen.add(r.body);
    }
    expect([...seen].sort()).toEqual(["pod1 saw 10.244.0.18", "pod2 saw 10.244.0.18"]);
  });

  it("ClusterIP UDP from a pod gets its echo back from the VIP", () => {
    const out = nsExec(box.pods[2]!.ns, ["node", "-e", UDP_CLIENT, "10.96.0.10", "53"]);
    expect(out).toMatch(/^pod[12]:hello/);
  });

  it("NodePort from an external client works (masqueraded, policy Cluster)", () => {
    const r = curl(box.ext, "http://198.51.100.1:30007/");
    expect(r.code, agentLog).toBe(0);
    expect(r.body).toMatch(/^pod[12] saw 169\.254\.42\.3$/);
  });

  it("a Service without endpoints refuses the connection (ICMP port unreachable)", () => {
    const r = curl(box.pods[2]!.ns, "http://10.96.0.11/");
    expect(r.code).toBe(7); // curl: "Failed to connect" — connection refused
  });

  it("an unallocated address in the service CIDR is unreachable at once, not looped", () => {
    const t0 = Date.now();
    const r = curl(box.pods[2]!.ns, "http://10.96.5.5/");
    expect(r.code).toBe(7); // no route to host: the kernel's answer for the service CIDR
    expect(Date.now() - t0).toBeLessThan(2500);
  });

  it("a pod reaching itself through its Service (hairpin) works", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 8; i++) {
      const r = curl(box.pods[0]!.ns, "http://10.96.0.10/");
      expect(r.code, agentLog).toBe(0);
      seen.add(r.body.split(" ")[0]!);
    }
    expect(seen.has("pod1")).toBe(true);
  });

  it("tapvip ct list, lb list and /metrics show the flows and services as programmed", () => {
    curl(box.pods[2]!.ns, "http://10.96.0.10/");
    const ct = nsExec(box.node, ["node", join(ROOT, "bin/tapvip.js"), "ct", "list"]);
    expect(ct).toMatch(/tcp +6 .*src=10\.244\.0\.18 dst=10\.96\.0\.10 sport=\d+ dport=80 src=10\.244\.0\.(10|14) dst=10\.244\.0\.18 sport=8080/);
    const lb = nsExec(box.node, ["node", join(ROOT, "bin/tapvip.js"), "lb", "list"]);
    expect(lb).toContain("default/web:http/TCP");
    expect(lb).toContain("10.244.0.10:8080");
    const metrics = nsExec(box.node, ["curl", "-sS", "http://127.0.0.1:10249/metrics"]);
    expect(metrics).toMatch(/tapvip_service_new_flows_total\{[^}]*name="web"[^}]*\} [1-9]/);
    expect(metrics).toMatch(/tapvip_tap_rx_frames_total [1-9]/);
  });

  it("stops cleanly on SIGTERM and removes what it configured", async () => {
    const exited = new Promise<number | null>((r) => agent.on("exit", (c) => r(c)));
    agent.kill("SIGTERM");
    expect(await exited).toBe(0);
    const links = nsIp(box.node, ["-o", "link", "show"]);
    expect(links).not.toMatch(/tv0/);
    expect(nsIp(box.node, ["rule", "show"])).not.toMatch(/4242/);
    expect(nsIp(box.node, ["route", "show"])).not.toMatch(/10\.96\.0\.0/);
    expect(execFileSync("tc", ["-n", box.node, "filter", "show", "dev", box.nodeExtIf, "ingress"]).toString()).toBe("");
  });
});
