// End to end, §5 traffic policies through real traffic: externalTrafficPolicy Local on a
// LoadBalancer (client address kept, never forwarded to another node's endpoint, the
// healthCheckNodePort answering 200/503), internalTrafficPolicy Local (dropped, not refused,
// without a local endpoint), loadBalancerSourceRanges (LB address filtered, NodePort not), and
// the terminating-endpoint fallback (traffic flows, health check 503).
//
//   client pod 10.244.0.18 ─┐                        ┌─ pod1 10.244.0.10, pod2 10.244.0.14 (node-a)
//                           ├─ node (tapvip run, TAP) ┤
//   external 198.51.100.2   │   node IP 198.51.100.1  └─ node-b 10.240.0.2 ── remote 10.244.1.10
//        and 198.51.100.3 ──┘   LB pool 203.0.113.0/28                          (nodeName node-b)

import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { mkdtempSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { netnsUnavailable, nsIp, cleanupAll, sweepStale } from "../helpers/netns.js";
import {
  buildBox, addRemoteNode, startServer, waitForOutput, podYaml, curl, eventually, Agent,
  NODE_IP, EXTERNAL_IP, REMOTE_POD_CIDR, type Box, type RemoteNode,
} from "../../src/demo/topology.js";

const skip = netnsUnavailable();
const EXTERNAL_IP_2 = "198.51.100.3"; // a second external client, outside the source ranges
const LB_POOL = "203.0.113.0/28";

const service = (name: string, spec: string) => `
apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: default}
spec:
  selector: {svc: ${name}}
  ports: [{name: http, port: 80, targetPort: 8080}]
${spec.trim().split("\n").map((l) => `  ${l.trim()}`).join("\n")}
`;

describe.skipIf(skip !== null)(`traffic policies on a running agent (${skip ?? "root"})`, () => {
  let box: Box;
  let nodeB: RemoteNode;
  let agent: Agent;
  const client = () => box.pods[2]!.ns;

  /** Who answers `n` requests from `ns` (pod names; "refused"/"timeout"/"error:<code>" otherwise). */
  const answers = (ns: string, url: string, n: number, o: { maxTime?: number; iface?: string } = {}) =>
    Array.from({ length: n }, () => {
      const r = curl(ns, url, o);
      return r.code === 0 ? r.body : r.code === 7 ? "refused" : r.code === 28 ? "timeout" : `error:${r.code}`;
    });
  const who = (bodies: string[]) => [...new Set(bodies.map((b) => b.split(" ")[0]!))].sort();

  /** A LoadBalancer service once the controller has given it an ingress address. */
  const lbService = async (name: string) => {
    const svc = await eventually(() => {
      const s = agent.get("service", name);
      return s.status?.loadBalancer?.ingress?.[0]?.ip ? s : null;
    });
    expect(svc, `no LoadBalancer ingress for ${name}\n${agent.log}`).toBeTruthy();
    return { clusterIP: svc.spec.clusterIP as string, lbIP: svc.status.loadBalancer.ingress[0].ip as string,
      nodePort: svc.spec.ports[0].nodePort as number, hcPort: svc.spec.healthCheckNodePort as number | undefined };
  };
  const health = (port: number) => curl(box.ext, `http://${NODE_IP}:${port}/`);

  beforeAll(async () => {
    sweepStale();
    box = buildBox(["pod1", "pod2", "client"]);
    nodeB = addRemoteNode(box, ["remote"]);
    nsIp(box.ext, ["addr", "add", `${EXTERNAL_IP_2}/24`, "dev", nsIp(box.ext, ["-o", "link", "show"]).match(/^\d+: (tvt-[^:@]+)/m)![1]!]);
    for (const p of [box.pods[0]!, box.pods[1]!, nodeB.pods[0]!]) await waitForOutput(startServer(p, [8080], [5353]), "ready", 10_000);
    agent = new Agent(box, { tap: "tv2", apiPort: 16500, dataDir: join(mkdtempSync(join(tmpdir(), "tapvip-pol-")), "data"),
      extraArgs: ["--lb-pool", LB_POOL, "--cluster-cidr", "10.244.0.0/16", "--admin-address", "off", "--healthz-address", "off"] });
    await agent.start();
  }, 60_000);

  afterAll(() => {
    agent?.child?.kill("SIGKILL");
    cleanupAll();
  });

  // Replies from endpoints on other nodes enter on the link to that node, outside --pod-cidr:
  // --cluster-cidr adds the policy rule that sends them through the TAP for reverse NAT.
  it("replies from a non-local endpoint come back through the TAP (--cluster-cidr)", async () => {
    agent.apply(service("remote-only", "type: NodePort") + "---" + podYaml("remote-ro", nodeB.pods[0]!.ip, { labels: { svc: "remote-only" }, nodeName: "node-b" }));
    const ip = agent.get("service", "remote-only").spec.clusterIP as string;
    // Programmed once a request is no longer refused; then it must be answered by node-b.
    const got = await eventually(() => { const a = answers(client(), `http://${ip}/`, 1, { maxTime: 1 })[0]!; return a === "refused" ? null : a; }, 3000);
    expect(got).toMatch(/^remote saw 10\.244\.0\.18$/);
  });

  it("external traffic (policy Cluster) reaches a non-local endpoint, masqueraded (replies come back to the TAP by destination)", () => {
    const np = agent.get("service", "remote-only").spec.ports[0].nodePort as number;
    expect(answers(box.ext, `http://${NODE_IP}:${np}/`, 4)).toEqual(Array(4).fill("remote saw 169.254.42.3"));
  });

  it("externalTrafficPolicy Local: client address kept, never a non-local endpoint; health check 200 → 503", async () => {
    agent.apply([
      service("etp", "type: LoadBalancer\nexternalTrafficPolicy: Local"),
      podYaml("pod1-etp", box.pods[0]!.ip, { labels: { svc: "etp" } }),
      podYaml("remote-etp", nodeB.pods[0]!.ip, { labels: { svc: "etp" }, nodeName: "node-b" }),
    ].join("---"));
    const s = await lbService("etp");
    expect(s.hcPort, "healthCheckNodePort allocated").toBeGreaterThanOrEqual(30000);
    // This node's pods use the cluster set: both endpoints answer (node-b is reachable).
    const internal = await eventually(() => { const w = who(answers(client(), `http://${s.clusterIP}/`, 16)); return w.length === 2 ? w : null; });
    expect(internal, agent.log).toEqual(["pod1", "remote"]);
    // External traffic: only the local endpoint, with the client's own address.
    expect(new Set(answers(box.ext, `http://${s.lbIP}/`, 16))).toEqual(new Set([`pod1 saw ${EXTERNAL_IP}`]));
    expect(new Set(answers(box.ext, `http://${NODE_IP}:${s.nodePort}/`, 8))).toEqual(new Set([`pod1 saw ${EXTERNAL_IP}`]));

    const ok = health(s.hcPort!);
    expect(ok.status).toBe(200);
    expect(ok.headers?.["content-type"]).toBe("application/json");
    expect(ok.headers?.["x-content-type-options"]).toBe("nosniff");
    expect(JSON.parse(ok.body)).toEqual({ service: { namespace: "default", name: "etp" }, localEndpoints: 1, serviceProxyHealthy: true });

    // Only the non-local endpoint left: 503, and external traffic is dropped (not forwarded).
    agent.cli(["delete", "pod", "pod1-etp", "--grace-period", "0"]);
    const gone = await eventually(() => health(s.hcPort!).status === 503);
    expect(gone, agent.log).toBe(true);
    expect(JSON.parse(health(s.hcPort!).body)).toMatchObject({ localEndpoints: 0 });
    expect(answers(box.ext, `http://${s.lbIP}/`, 1, { maxTime: 1 })).toEqual(["timeout"]);
    expect(answers(box.ext, `http://${NODE_IP}:${s.nodePort}/`, 1, { maxTime: 1 })).toEqual(["timeout"]);
    // … while this node's pods still reach it through the cluster set.
    expect(who(answers(client(), `http://${s.clusterIP}/`, 4))).toEqual(["remote"]);
  });

  it("internalTrafficPolicy Local: ClusterIP traffic only to local endpoints; none local → dropped, not refused", async () => {
    agent.apply([
      service("itp", "internalTrafficPolicy: Local"),
      podYaml("pod1-itp", box.pods[0]!.ip, { labels: { svc: "itp" } }),
      podYaml("remote-itp", nodeB.pods[0]!.ip, { labels: { svc: "itp" }, nodeName: "node-b" }),
    ].join("---"));
    const ip = agent.get("service", "itp").spec.clusterIP as string;
    const first = await eventually(() => { const a = answers(client(), `http://${ip}/`, 1); return a[0] === "refused" ? null : a; });
    expect(first, agent.log).toBeTruthy();
    expect(who(answers(client(), `http://${ip}/`, 16))).toEqual(["pod1"]);
    agent.cli(["delete", "pod", "pod1-itp", "--grace-period", "0"]);
    const dropped = await eventually(() => answers(client(), `http://${ip}/`, 1, { maxTime: 1 })[0] === "timeout");
    expect(dropped, agent.log).toBe(true);
    expect(answers(client(), `http://${ip}/`, 1, { maxTime: 1 })).toEqual(["timeout"]);
  });

  it("loadBalancerSourceRanges: a listed source is served, another dropped; the NodePort is not filtered", async () => {
    agent.apply([
      service("ranged", `type: LoadBalancer\nloadBalancerSourceRanges: ["${EXTERNAL_IP}/32"]`),
      podYaml("pod1-ranged", box.pods[0]!.ip, { labels: { svc: "ranged" } }),
    ].join("---"));
    const s = await lbService("ranged");
    const served = await eventually(() => answers(box.ext, `http://${s.lbIP}/`, 1, { maxTime: 1 })[0]!.startsWith("pod1 "));
    expect(served, agent.log).toBe(true);
    expect(new Set(answers(box.ext, `http://${s.lbIP}/`, 4))).toEqual(new Set(["pod1 saw 169.254.42.3"]));
    expect(answers(box.ext, `http://${s.lbIP}/`, 1, { maxTime: 1, iface: EXTERNAL_IP_2 })).toEqual(["timeout"]);
    expect(answers(box.ext, `http://${NODE_IP}:${s.nodePort}/`, 2, { iface: EXTERNAL_IP_2 })).toEqual(["pod1 saw 169.254.42.3", "pod1 saw 169.254.42.3"]);
  });

  it("terminating fallback: only a terminating (still serving) endpoint → traffic flows; health check 503", async () => {
    agent.apply([
      service("term", "type: LoadBalancer\nexternalTrafficPolicy: Local"),
      podYaml("pod2-term", box.pods[1]!.ip, { labels: { svc: "term" } }),
    ].join("---"));
    const s = await lbService("term");
    const up = await eventually(() => health(s.hcPort!).status === 200);
    expect(up, agent.log).toBe(true);
    agent.cli(["delete", "pod", "pod2-term", "--grace-period", "30"]);
    const conditions = () => JSON.parse(agent.cli(["get", "endpointslices", "-l", "kubernetes.io/service-name=term", "-o", "json"])).items[0]?.endpoints?.[0]?.conditions;
    const terminating = await eventually(() => conditions()?.terminating === true);
    expect(terminating).toBe(true);
    expect(conditions()).toEqual({ ready: false, serving: true, terminating: true });
    const unhealthy = await eventually(() => health(s.hcPort!).status === 503);
    expect(unhealthy, agent.log).toBe(true);
    expect(JSON.parse(health(s.hcPort!).body)).toMatchObject({ localEndpoints: 0 });
    // Internal (cluster set) and external (local set) traffic both fall back to it.
    expect(who(answers(client(), `http://${s.clusterIP}/`, 6))).toEqual(["pod2"]);
    expect(new Set(answers(box.ext, `http://${s.lbIP}/`, 6))).toEqual(new Set([`pod2 saw ${EXTERNAL_IP}`]));
    agent.cli(["delete", "pod", "pod2-term", "--grace-period", "0"]);
  });
});
