// Readiness probes on the node: a backend whose server dies leaves the Service within its probe
// thresholds (periodSeconds × failureThreshold), with no failed request to the backend that
// stayed ready, and comes back when it answers again.

import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { mkdtempSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import type { ChildProcess } from "node:child_process";
import { netnsUnavailable, cleanupAll, sweepStale } from "../helpers/netns.js";
import { buildBox, startServer, waitForOutput, Agent, curl, eventually, type Box } from "../../src/demo/topology.js";

const skip = netnsUnavailable();

const pod = (name: string, ip: string) => `
apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: default, labels: {app: probed}}
spec:
  nodeName: node-a
  containers:
    - name: app
      ports: [{name: http, containerPort: 8080}]
      readinessProbe: {httpGet: {path: /, port: http}, periodSeconds: 1, timeoutSeconds: 1, failureThreshold: 2, successThreshold: 1}
status: {phase: Running, podIP: ${ip}, podIPs: [{ip: ${ip}}], conditions: [{type: Ready, status: "True"}]}
`;

const SERVICE = `
apiVersion: v1
kind: Service
metadata: {name: probed, namespace: default}
spec:
  selector: {app: probed}
  ports: [{name: http, port: 80, targetPort: http}]
`;

describe.skipIf(skip !== null)(`readiness probes (${skip ?? "root"})`, () => {
  let box: Box;
  let agent: Agent;
  let server1: ChildProcess;

  beforeAll(async () => {
    sweepStale();
    box = buildBox(["pod1", "pod2", "client"]);
    server1 = startServer(box.pods[0]!, [8080], [5353]);
    await waitForOutput(server1, "ready", 10_000);
    await waitForOutput(startServer(box.pods[1]!, [8080], [5353]), "ready", 10_000);
    agent = new Agent(box, { tap: "tv5", apiPort: 16530, dataDir: join(mkdtempSync(join(tmpdir(), "tapvip-probe-")), "data"),
      extraArgs: ["--admin-address", "off", "--healthz-address", "off"] });
    await agent.start();
  }, 60_000);

  afterAll(() => {
    agent?.child?.kill("SIGKILL");
    cleanupAll();
  });

  it("a killed backend leaves within periodSeconds × failureThreshold; the other keeps answering", async () => {
    agent.apply([SERVICE, pod("pod1", box.pods[0]!.ip), pod("pod2", box.pods[1]!.ip)].join("---"));
    const ip = agent.get("service", "probed").spec.clusterIP as string;
    const ask = () => curl(box.pods[2]!.ns, `http://${ip}/`, { maxTime: 2 });
    await eventually(() => {
      const seen = new Set(Array.from({ length: 10 }, () => ask().body.split(" ")[0]));
      return seen.has("pod1") && seen.has("pod2") ? true : null;
    }, 15_000);
    const killedAt = Date.now();
    server1.kill("SIGKILL");
    // The probe marks pod1 not ready after 2 failed periods; the controller and the agent follow.
    const readyOf = () => agent.get("pod", "pod1").status.conditions.find((c: { type: string }) => c.type === "Ready").status;
    await eventually(() => (readyOf() === "False" ? true : null), 15_000, 100);
    // Then no request picks pod1 any more (20 in a row all answered by pod2).
    await eventually(() => {
      const r = Array.from({ length: 20 }, () => ask());
      return r.every((x) => x.code === 0 && x.body.startsWith("pod2")) ? true : null;
    }, 15_000, 100);
    const tookMs = Date.now() - killedAt;
    // 2 failures × 1 s period, plus the probe in flight, the status write, the controller and the sync.
    expect(tookMs).toBeLessThan(6_000);
    // pod2 never failed meanwhile.
    for (let i = 0; i < 10; i++) {
      const r = ask();
      expect(r.code).toBe(0);
      expect(r.body).toMatch(/^pod2 /);
    }
  }, 60_000);
});
