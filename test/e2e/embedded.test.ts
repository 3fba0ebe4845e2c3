// End to end with the embedded store: `tapvip run` (store + API + controllers + dataplane in
// one process) in a node namespace; objects go in with `tapvip apply` through the API; the
// endpoint controller turns Pods into EndpointSlices and the agent follows them: endpoints
// 0 → 1 → 2 → 1 → 0 while a client keeps asking.

import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { netnsUnavailable, nsExec, nsSpawn, cleanupAll, sweepStale } from "../helpers/netns.js";
import { offloadArgs, buildBox, startServer, waitForOutput, NODE_IP, type Box } from "../../src/demo/topology.js";

const skip = netnsUnavailable();
const ROOT = new URL("../..", import.meta.url).pathname;
const API = "http://127.0.0.1:16443";

const pod = (name: string, ip: string) => `
apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: default, labels: {app: web}}
spec: {nodeName: node-a, containers: [{name: app, ports: [{name: http, containerPort: 8080}]}]}
status: {phase: Running, podIP: ${ip}, podIPs: [{ip: ${ip}}], conditions: [{type: Ready, status: "True"}]}
`;

const SERVICE = `
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
`;

describe.skipIf(skip !== null)(`tapvip run with the embedded store (${skip ?? "root"})`, () => {
  let box: Box;
  let agent: ChildProcess;
  let log = "";
  let dir: string;
  const tapvip = (...args: string[]) => nsExec(box.node, ["node", join(ROOT, "bin/tapvip.js"), ...args, "--server", API]);
  const apply = (yaml: string) => {
    const f = join(dir, `o-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(f, yaml);
    return tapvip("apply", "-f", f);
  };
  const ask = (url: string) => {
    try {
      return nsExec(box.pods[2]!.ns, ["curl", "-sS", "--max-time", "2", url]).split(" ")[0]!;
    } catch (e) {
      return /failed \((\d+)\)/.exec((e as Error).message)?.[1] === "7" ? "refused" : "error";
    }
  };
  /** Asks until the set of answers over `n` requests equals `want` (the agent syncs asynchronously). */
  const until = async (url: string, want: string[], n = 10, ms = 10_000) => {
    const t0 = Date.now();
    let got: string[] = [];
    while (Date.now() - t0 < ms) {
      got = [...new Set(Array.from({ length: n }, () => ask(url)))].sort();
      if (JSON.stringify(got) === JSON.stringify(want)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`answers ${JSON.stringify(got)}, wanted ${JSON.stringify(want)}\n${log}`);
  };

  beforeAll(async () => {
    sweepStale();
    box = buildBox(["pod1", "pod2", "client"]);
    dir = mkdtempSync(join(tmpdir(), "tapvip-emb-"));
    for (const p of box.pods.slice(0, 2)) await waitForOutput(startServer(p, [8080], [5353]), "ready", 10_000);
    agent = nsSpawn(box.node, ["node", join(ROOT, "bin/tapvip.js"), "run", "--tap", "tv1", "--node-name", "node-a",
      "--node-ip", NODE_IP, "--pod-cidr", "10.244.0.0/24", "--data", join(dir, "data"), "--listen", "127.0.0.1:16443",
      "--nodeport-iface", box.nodeExtIf, "--admin-address", "off", "--healthz-address", "off", ...offloadArgs()]);
    agent.stderr?.on("data", (d) => (log += d.toString()));
    await waitForOutput(agent, "serving on TAP", 30_000);
  }, 60_000);

  afterAll(() => {
    agent?.kill("SIGKILL");
    cleanupAll();
  });

  it("follows endpoints 0 → 1 → 2 → 1 → 0 through the API and the endpoint controller", async () => {
    expect(apply(SERVICE)).toMatch(/service\/web created/);
    const svc = JSON.parse(tapvip("get", "service", "web", "-o", "json"));
    const url = `http://${svc.spec.clusterIP}/`;
    expect(svc.spec.clusterIP).toMatch(/^10\.9[6-9]\.|^10\.1[01][0-9]\./);
    await until(url, ["refused"]); // 0 endpoints: connection refused
    apply(pod("pod1", "10.244.0.10"));
    await until(url, ["pod1"]);
    apply(pod("pod2", "10.244.0.14"));
    await until(url, ["pod1", "pod2"], 16);
    // The NodePort the API allocated works from outside too.
    const np = svc.spec.ports[0].nodePort;
    expect(nsExec(box.ext, ["curl", "-sS", "--max-time", "2", `http://${NODE_IP}:${np}/`])).toMatch(/^pod[12] /);
    tapvip("delete", "pod", "pod2", "--grace-period", "0");
    await until(url, ["pod1"]);
    tapvip("delete", "pod", "pod1", "--grace-period", "0");
    await until(url, ["refused"]);
  }, 90_000);

  it("rejects an invalid Service with the field and rule, and stores nothing", () => {
    let msg = "";
    try {
      apply(SERVICE.replace("name: web", "name: Bad_Name"));
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toMatch(/metadata\.name: Invalid value: "Bad_Name"/);
  });
});
