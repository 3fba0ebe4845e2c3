// The main job: a Kubernetes node in a box. Builds namespaces (a node, three MyApp pods, a
// client pod, an external client), starts `tapvip run` on a TAP in the node with the seed's
// Service examples (examples/seed-services.yaml) and the EndpointSlices the endpoint
// controller derives from the pods, drives real traffic at every Service type, prints how
// it was spread over the backends, and removes everything — also on Ctrl-C or failure.

import { mkdtempSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { stringify } from "yaml";
import { cleanupAll, nsExec, nsSpawn, netnsUnavailable, sweepStale } from "../host/netns.js";
import { loadObjects } from "../host/objects.js";
import { desiredEndpointSlices } from "../store/controllers/endpointslices.js";
import type { Pod as PodObject, Service, KubeObject } from "../store/types.js";
import { buildBox, startServer, waitForOutput, NODE_IP, type Pod } from "./topology.js";

const ROOT = new URL("../../..", import.meta.url).pathname;
const SERVICE_CIDR = "10.0.0.0/16"; // contains the seed's pinned 10.0.171.239

function podObject(p: Pod): PodObject {
  return {
    apiVersion: "v1", kind: "Pod",
    metadata: { name: p.name, namespace: "default", uid: `uid-${p.name}`, labels: { app: "MyApp" } },
    spec: { nodeName: "node-a", containers: [{ name: "app", ports: [{ containerPort: 9376 }, { containerPort: 9377 }, { containerPort: 80 }] }] },
    status: { phase: "Running", podIP: p.ip, podIPs: [{ ip: p.ip }], conditions: [{ type: "Ready", status: "True" }] },
  } as PodObject;
}

function curl(ns: string, url: string): string {
  try {
    return nsExec(ns, ["curl", "-sS", "--max-time", "3", url]).split(" ")[0]!;
  } catch (e) {
    return `error: ${(e as Error).message.split(":").slice(-1)[0]!.trim()}`;
  }
}

async function main(): Promise<number> {
  const why = netnsUnavailable();
  if (why) {
    console.error(`node-in-a-box: ${why}`);
    return 1;
  }
  sweepStale();
  console.log("== building the node: namespaces for the node, 3 MyApp pods, a client pod, an external client");
  const box = buildBox(["myapp-1", "myapp-2", "myapp-3", "client"]);
  const backends = box.pods.slice(0, 3);
  const client = box.pods[3]!;
  for (const p of backends) await waitForOutput(startServer(p, [9376, 9377, 80], [9376]), "ready", 10_000);
  for (const p of box.pods) console.log(`   pod ${p.name.padEnd(8)} ${p.ip}`);

  // The Services as the API would store them (defaulted, validated, clusterIPs allocated), and
  // the EndpointSlices the endpoint controller derives from the pods.
  const dir = mkdtempSync(join(tmpdir(), "tapvip-demo-"));
  const objs = await loadObjects(join(ROOT, "examples/seed-services.yaml"), { serviceCIDR: SERVICE_CIDR, seed: 7 });
  const pods = backends.map(podObject);
  const slices: KubeObject[] = [];
  for (const o of objs) {
    if (o.kind !== "Service") continue;
    const d = desiredEndpointSlices(o, pods, [], { nameGenerator: (g) => `${g}demo` });
    slices.push(...d.create, ...d.update);
  }
  const file = join(dir, "objects.yaml");
  writeFileSync(file, [...objs, ...slices].map((o) => stringify(o)).join("---\n"));
  const svc = (name: string, ns = "default") => objs.find((o): o is Service => o.kind === "Service" && o.metadata.name === name && (o.metadata.namespace ?? "default") === ns)!;

  console.log(`== starting tapvip run in the node (node IP ${NODE_IP}, service CIDR ${SERVICE_CIDR})`);
  const agent = nsSpawn(box.node, ["node", join(ROOT, "bin/tapvip.js"), "run", "--tap", "tapvip0", "--node-name", "node-a",
    "--node-ip", NODE_IP, "--pod-cidr", "10.244.0.0/24", "--service-cidr", SERVICE_CIDR, "--manifests", file, "--nodeport-iface", box.nodeExtIf]);
  let agentLog = "";
  agent.stderr?.on("data", (d) => (agentLog += d.toString()));
  await waitForOutput(agent, "serving on TAP", 20_000);
  console.log(agentLog.trim().split("\n").map((l) => `   ${l}`).join("\n"));

  const runs: Array<{ what: string; ns: string; url: string }> = [
    { what: `ClusterIP my-service ${svc("my-service").spec!.clusterIP}:80 (from the client pod)`, ns: client.ns, url: `http://${svc("my-service").spec!.clusterIP}/` },
    { what: `multi-port my-service-multiport :443 → 9377 (from the client pod)`, ns: client.ns, url: `http://${svc("my-service-multiport").spec!.clusterIP}:443/` },
    { what: `NodePort my-service-nodeport ${NODE_IP}:30007 (from outside)`, ns: box.ext, url: `http://${NODE_IP}:30007/` },
    { what: `LoadBalancer my-service-lb 192.0.2.127:80 (from outside)`, ns: box.ext, url: "http://192.0.2.127/" },
    { what: `externalIPs my-service-externalip 203.0.113.80:80 (from outside)`, ns: box.ext, url: "http://203.0.113.80/" },
    { what: `hairpin: myapp-1 to my-service (itself among the backends)`, ns: backends[0]!.ns, url: `http://${svc("my-service").spec!.clusterIP}/` },
  ];
  const N = 30;
  console.log(`\n== ${N} requests per Service; answers per backend`);
  let failures = 0;
  for (const r of runs) {
    const count = new Map<string, number>();
    for (let i = 0; i < N; i++) {
      const who = curl(r.ns, r.url);
      if (who.startsWith("error")) failures++;
      count.set(who, (count.get(who) ?? 0) + 1);
    }
    const dist = [...count.entries()].sort().map(([k, v]) => `${k}=${v}`).join("  ");
    console.log(`   ${r.what}\n      ${dist}`);
  }
  console.log(`   not proxied: prod/my-service (ExternalName → ${svc("my-service", "prod").spec!.externalName})`);

  const exited = new Promise<number | null>((res) => agent.on("exit", (c) => res(c)));
  agent.kill("SIGTERM");
  const code = await exited;
  console.log(`\n== tapvip run stopped (exit ${code}): ${agentLog.trim().split("\n").slice(-1)[0]}`);
  console.log(failures === 0 ? "== every request answered" : `== ${failures} requests failed`);
  return failures === 0 && code === 0 ? 0 : 1;
}

main()
  .then((code) => {
    cleanupAll();
    process.exit(code);
  })
  .catch((e) => {
    console.error(`node-in-a-box: ${(e as Error).message}`);
    cleanupAll();
    process.exit(1);
  });
