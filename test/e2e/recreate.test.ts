// End to end: a Service deleted and created again (same clusterIP and nodePort) keeps working,
// and after the agent is restarted (SIGTERM, then `tapvip run` again on the same --data) the
// stored services serve new connections again, with the node's networking set up once.
// (restart.test.ts covers an established connection kept across a restart.)
//
//   client pod 10.244.0.18 ─┐                        ┌─ pod1 10.244.0.10, pod2 10.244.0.14
//                           ├─ node (tapvip run, TAP) ┤
//   external 198.51.100.2 ──┘   node IP 198.51.100.1  ┘

import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { mkdtempSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { netnsUnavailable, nsIp, cleanupAll, sweepStale } from "../helpers/netns.js";
import {
  buildBox, startServer, waitForOutput, podYaml, curl, udpAsk, eventually, Agent, NODE_IP, type Box,
} from "../../src/demo/topology.js";

const skip = netnsUnavailable();
const CLUSTER_IP = "10.96.0.50";
const NODE_PORT = 30123;

const SERVICE = `
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  type: NodePort
  clusterIP: ${CLUSTER_IP}
  selector: {svc: web}
  ports:
    - {name: http, protocol: TCP, port: 80, targetPort: 8080, nodePort: ${NODE_PORT}}
    - {name: echo, protocol: UDP, port: 53, targetPort: 5353}
`;

describe.skipIf(skip !== null)(`services across recreation and agent restart (${skip ?? "root"})`, () => {
  let box: Box;
  let agent: Agent;
  const client = () => box.pods[2]!.ns;
  const distinct = (xs: string[]) => [...new Set(xs)].sort();
  const fromPod = (n: number) => distinct(Array.from({ length: n }, () => {
    const r = curl(client(), `http://${CLUSTER_IP}/`, { maxTime: 2 });
    return r.code === 0 ? r.body : `curl exit ${r.code}`;
  }));
  const fromOutside = (n: number) => distinct(Array.from({ length: n }, () => {
    const r = curl(box.ext, `http://${NODE_IP}:${NODE_PORT}/`, { maxTime: 2 });
    return r.code === 0 ? r.body : `curl exit ${r.code}`;
  }));
  const both = ["pod1 saw 10.244.0.18", "pod2 saw 10.244.0.18"];
  const bothMasq = ["pod1 saw 169.254.42.3", "pod2 saw 169.254.42.3"];
  /** The service works: ClusterIP TCP and UDP from a pod (both backends), NodePort from outside. */
  const works = async (what: string) => {
    expect(await eventually(() => fromPod(12).join() === both.join()), `${what}: ClusterIP\n${agent.log}`).toBe(true);
    // 12 random picks miss a backend with probability 1/2048: ask again before calling it a failure.
    let outside: string[] = [];
    expect(await eventually(() => (outside = fromOutside(12)).join() === bothMasq.join()), `${what}: NodePort ${outside.join()}`).toBe(true);
    expect(udpAsk(client(), CLUSTER_IP, 53), `${what}: UDP`).toMatch(/^pod[12]:hello$/);
  };

  beforeAll(async () => {
    sweepStale();
    box = buildBox(["pod1", "pod2", "client"]);
    for (const p of box.pods.slice(0, 2)) await waitForOutput(startServer(p, [8080], [5353]), "ready", 10_000);
    agent = new Agent(box, { tap: "tv4", apiPort: 16520, dataDir: join(mkdtempSync(join(tmpdir(), "tapvip-rec-")), "data"),
      extraArgs: ["--admin-address", "off", "--healthz-address", "off"] });
    await agent.start();
    agent.apply([SERVICE, ...box.pods.slice(0, 2).map((p) => podYaml(p.name, p.ip, { labels: { svc: "web" } }))].join("---"));
  }, 60_000);

  afterAll(() => {
    agent?.child?.kill("SIGKILL");
    cleanupAll();
  });

  it("a Service deleted and created again keeps working (same clusterIP and nodePort)", async () => {
    await works("created");
    agent.cli(["delete", "service", "web"]);
    // Gone: the NodePort is no longer redirected (nothing listens on the node: refused).
    expect(await eventually(() => fromOutside(1)[0] === "curl exit 7"), agent.log).toBe(true);
    agent.apply(SERVICE);
    expect(agent.get("service", "web").spec.clusterIP).toBe(CLUSTER_IP);
    await works("recreated");
  });

  it("after SIGTERM and a new `tapvip run` on the same --data, services serve new connections", async () => {
    expect(await agent.stop()).toBe(0);
    expect(nsIp(box.node, ["-o", "link", "show"])).not.toMatch(/tv4/);
    agent.log = "";
    await agent.start();
    await works("after restart");
    // Node networking set up exactly once again (nothing left over from the first run).
    const rules = nsIp(box.node, ["rule", "show"]);
    expect(rules.match(/^4241:/gm)).toHaveLength(1);
    expect(rules.match(/^4242:/gm)).toHaveLength(1);
  });
});
