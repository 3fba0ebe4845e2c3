// Discovery from a pod: a pod namespace whose resolver points at tapvip's DNS (with the cluster
// search path) resolves a Service by its short name, name.namespace and FQDN, and reaches it by
// name with curl.

import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { netnsUnavailable, nsExec, cleanupAll, sweepStale } from "../helpers/netns.js";
import { buildBox, startServer, waitForOutput, Agent, podYaml, eventually, type Box } from "../../src/demo/topology.js";

const skip = netnsUnavailable();

describe.skipIf(skip !== null)(`cluster DNS from a pod (${skip ?? "root"})`, () => {
  let box: Box;
  let agent: Agent;
  let resolvDir = "";

  beforeAll(async () => {
    sweepStale();
    box = buildBox(["web1", "client"]);
    await waitForOutput(startServer(box.pods[0]!, [8080], [5353]), "ready", 10_000);
    // The client pod's resolver: tapvip's DNS on the node end of its veth (10.244.0.13), the
    // cluster search path. `ip netns exec` mounts /etc/netns/<ns>/resolv.conf over /etc/resolv.conf.
    resolvDir = join("/etc/netns", box.pods[1]!.ns);
    mkdirSync(resolvDir, { recursive: true });
    writeFileSync(join(resolvDir, "resolv.conf"), "nameserver 10.244.0.13\nsearch my-ns.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5 timeout:1 attempts:2\n");
    agent = new Agent(box, { tap: "tv7", apiPort: 16550, dataDir: join(mkdtempSync(join(tmpdir(), "tapvip-dns-")), "data"),
      extraArgs: ["--admin-address", "off", "--healthz-address", "off", "--dns", "0.0.0.0:53"] });
    await agent.start();
  }, 60_000);

  afterAll(() => {
    agent?.child?.kill("SIGKILL");
    cleanupAll();
    if (resolvDir) rmSync(resolvDir, { recursive: true, force: true });
  });

  it("resolves my-service, my-service.my-ns and the FQDN, and curl reaches it by name", async () => {
    agent.apply(`
apiVersion: v1
kind: Namespace
metadata: {name: my-ns}
---
apiVersion: v1
kind: Service
metadata: {name: my-service, namespace: my-ns}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
${podYaml("web1", box.pods[0]!.ip, { labels: { app: "web" } }).replace("namespace: default", "namespace: my-ns")}`);
    const vip = JSON.parse(agent.cli(["get", "service", "my-service", "-n", "my-ns", "-o", "json"])).spec.clusterIP as string;
    const lookup = (name: string) => nsExec(box.pods[1]!.ns, ["getent", "hosts", name]).trim().split(/\s+/)[0];
    expect(await eventually(() => { try { return lookup("my-service"); } catch { return null; } }, 10_000)).toBe(vip);
    expect(lookup("my-service.my-ns")).toBe(vip);
    expect(lookup("my-service.my-ns.svc.cluster.local")).toBe(vip);
    const body = await eventually(() => { try { return nsExec(box.pods[1]!.ns, ["curl", "-sS", "--max-time", "2", "http://my-service/"]); } catch { return null; } }, 10_000);
    expect(body).toMatch(/^web1 saw /);
  }, 40_000);
});
