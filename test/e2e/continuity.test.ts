// While endpoints change, a client that keeps asking sees no failed request to a backend that
// stayed ready; externalIPs reach the dataplane from outside.

import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { mkdtempSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { netnsUnavailable, nsSpawn, cleanupAll, sweepStale } from "../helpers/netns.js";
import { buildBox, startServer, waitForOutput, Agent, podYaml, curl, eventually, type Box } from "../../src/demo/topology.js";

const skip = netnsUnavailable();

const SERVICE = `
apiVersion: v1
kind: Service
metadata: {name: steady, namespace: default}
spec:
  selector: {app: steady}
  externalIPs: [203.0.113.80]
  ports: [{name: http, port: 80, targetPort: 8080}]
`;

// Sequential GETs for `secs` seconds over new connections; prints "ok N fail M" and each failure.
const LOOP = `
const http = require("http");
const [url, secs] = process.argv.slice(1);
let ok = 0, fail = 0; const end = Date.now() + Number(secs) * 1000;
const one = () => {
  if (Date.now() > end) { console.log("ok " + ok + " fail " + fail); return; }
  const req = http.get(url, { agent: false, timeout: 2000 }, (res) => { res.resume(); res.on("end", () => { ok++; setImmediate(one); }); });
  req.on("timeout", () => req.destroy(new Error("timeout")));
  req.on("error", (e) => { fail++; console.log("FAIL " + e.message); setImmediate(one); });
};
one();
`;

describe.skipIf(skip !== null)(`continuity and externalIPs (${skip ?? "root"})`, () => {
  let box: Box;
  let agent: Agent;

  beforeAll(async () => {
    sweepStale();
    box = buildBox(["pod1", "pod2", "client"]);
    for (const p of box.pods.slice(0, 2)) await waitForOutput(startServer(p, [8080], [5353]), "ready", 10_000);
    agent = new Agent(box, { tap: "tv6", apiPort: 16540, dataDir: join(mkdtempSync(join(tmpdir(), "tapvip-cont-")), "data"),
      extraArgs: ["--admin-address", "off", "--healthz-address", "off"] });
    await agent.start();
    agent.apply([SERVICE, podYaml("pod1", box.pods[0]!.ip, { labels: { app: "steady" } })].join("---"));
  }, 60_000);

  afterAll(() => {
    agent?.child?.kill("SIGKILL");
    cleanupAll();
  });

  it("externalIPs: an external client reaches the Service at its external IP", async () => {
    const r = await eventually(() => { const x = curl(box.ext, "http://203.0.113.80/", { maxTime: 2 }); return x.code === 0 ? x : null; });
    expect(r!.body).toMatch(/^pod1 saw 169\.254\.42\.3$/); // policy Cluster: masqueraded
  });

  it("no failed request while endpoints go 1 → 2 → 1 (pod1 stays ready throughout)", async () => {
    const ip = agent.get("service", "steady").spec.clusterIP as string;
    await eventually(() => (curl(box.pods[2]!.ns, `http://${ip}/`).code === 0 ? true : null));
    const loop = nsSpawn(box.pods[2]!.ns, ["node", "-e", LOOP, `http://${ip}/`, "6"]);
    let out = "";
    loop.stdout?.on("data", (d) => (out += d.toString()));
    await new Promise((r) => setTimeout(r, 1000));
    agent.apply(podYaml("pod2", box.pods[1]!.ip, { labels: { app: "steady" } }));
    await new Promise((r) => setTimeout(r, 2000));
    // A graceful delete, as Kubernetes does it: pod2 turns terminating (no new flows), its
    // flows in progress finish; then nothing fails anywhere.
    agent.cli(["delete", "pod", "pod2", "--grace-period", "30"]);
    const done = await waitForOutput(loop, "fail ", 15_000).then(() => out);
    const m = /ok (\d+) fail (\d+)/.exec(done)!;
    expect(Number(m[1])).toBeGreaterThan(50);
    expect(done.match(/FAIL .*/g) ?? []).toEqual([]);
  }, 40_000);
});
