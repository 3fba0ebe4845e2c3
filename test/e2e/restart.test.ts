// Graceful restart: an established TCP connection through a ClusterIP survives `tapvip run`
// being stopped (SIGTERM saves conntrack, affinity and SNAT) and started again (restored).

import { describe, it, expect, afterAll } from "vitest";
import { mkdtempSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { netnsUnavailable, nsSpawn, cleanupAll, sweepStale } from "../helpers/netns.js";
import { offloadArgs, buildBox, waitForOutput, NODE_IP } from "../../src/demo/topology.js";

const skip = netnsUnavailable();
const ROOT = new URL("../..", import.meta.url).pathname;

const MANIFESTS = `
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: default}
spec:
  clusterIP: 10.96.0.20
  ports: [{name: echo, protocol: TCP, port: 7000, targetPort: 7000}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: echo-1, namespace: default, labels: {kubernetes.io/service-name: echo}}
addressType: IPv4
endpoints: [{addresses: [10.244.0.10], conditions: {ready: true}, nodeName: node-a}]
ports: [{name: echo, protocol: TCP, port: 7000}]
`;

const ECHO = `require("net").createServer((s) => s.pipe(s)).listen(7000, "0.0.0.0", () => console.log("ready"));`;

// Sends a numbered line every 100 ms over ONE connection for 8 s; prints each echo.
const CLIENT = `
const s = require("net").connect(7000, "10.96.0.20");
let n = 0, got = 0;
s.setEncoding("utf8");
s.on("connect", () => { console.log("connected"); const t = setInterval(() => s.write((n++) + "\\n"), 100); setTimeout(() => { clearInterval(t); setTimeout(() => { console.log("done " + got); s.end(); }, 1500); }, 8000); });
s.on("data", (d) => { got += d.split("\\n").filter(Boolean).length; console.log("echo " + got); });
s.on("error", (e) => { console.log("ERROR " + e.message); process.exit(1); });
`;

describe.skipIf(skip !== null)(`graceful restart (${skip ?? "root"})`, () => {
  afterAll(() => cleanupAll());

  it("keeps an established TCP connection through a ClusterIP across an agent restart", async () => {
    sweepStale();
    const box = buildBox(["pod1", "client"]);
    const dir = mkdtempSync(join(tmpdir(), "tapvip-restart-"));
    const file = join(dir, "objects.yaml");
    writeFileSync(file, MANIFESTS);
    await waitForOutput(nsSpawn(box.pods[0]!.ns, ["node", "-e", ECHO]), "ready", 10_000);
    const args = ["node", join(ROOT, "bin/tapvip.js"), "run", "--tap", "tvr", "--node-name", "node-a", "--node-ip", NODE_IP,
      "--pod-cidr", "10.244.0.0/24", "--manifests", file, "--nodeport-iface", box.nodeExtIf, "--state-file", join(dir, "state.bin"),
      "--admin-address", "off", "--healthz-address", "off", ...offloadArgs()];
    const first = nsSpawn(box.node, args);
    await waitForOutput(first, "serving on TAP", 20_000);
    const client = nsSpawn(box.pods[1]!.ns, ["node", "-e", CLIENT]);
    let out = "";
    client.stdout?.on("data", (d) => (out += d.toString()));
    await waitForOutput(client, "echo 5", 10_000);
    const stopped = waitForOutput(first, "saved", 10_000);
    first.kill("SIGTERM");
    const saveLine = await stopped;
    expect(saveLine).toMatch(/saved [1-9]\d* conntrack/);
    const beforeRestart = Number(/echo (\d+)\s*$/.exec(out)?.[1] ?? 0);
    const second = nsSpawn(box.node, args);
    const log2 = await waitForOutput(second, "serving on TAP", 20_000);
    expect(log2).toMatch(/state: restored [1-9]\d* conntrack/);
    const done = await waitForOutput(client, "done", 20_000).then(() => out);
    const total = Number(/done (\d+)/.exec(done)?.[1] ?? 0);
    expect(done).not.toMatch(/ERROR/);
    expect(total, log2).toBeGreaterThan(beforeRestart + 10); // echoes kept coming on the same connection
    second.kill("SIGTERM");
  }, 60_000);
});
