// The main job: a Kubernetes node in a box. Builds namespaces (a node, three MyApp pods, a
// client pod, an external client), starts `tapvip run` on a TAP in the node with its embedded
// store, applies the seed's Service examples (examples/seed-services.yaml) and the pods through
// the API with `tapvip apply` (the endpoint controller turns the pods into EndpointSlices),
// drives real traffic at every Service type, prints how it was spread over the backends and
// the dataplane's view, and removes everything — also on Ctrl-C or failure. Pods start with the
// Service environment variables of their namespace at that moment (tapvip env): the MyApp pods
// before the Services exist (so without MY_SERVICE_*), the client pod after them.

import { mkdtempSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { stringify } from "yaml";
import { cleanupAll, nsExec, nsSpawn, netnsUnavailable, sweepStale } from "../host/netns.js";
import type { Pod as PodObject, Service } from "../store/types.js";
import { parseDotenv } from "../discovery/env.js";
import { buildBox, podEnv, podExec, processEnv, startIdlePod, startServer, waitForOutput, NODE_IP, type Pod } from "./topology.js";

const ROOT = new URL("../../..", import.meta.url).pathname;
const SERVICE_CIDR = "10.0.0.0/16"; // contains the seed's pinned 10.0.171.239
const LB_POOL = "192.0.2.112/28"; // LoadBalancer ingress addresses (documentation range)
const API = "http://127.0.0.1:16443"; // the embedded API, on the node namespace's loopback

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
  for (const p of box.pods) console.log(`   pod ${p.name.padEnd(8)} ${p.ip}`);

  console.log(`== starting tapvip run in the node (node IP ${NODE_IP}, service CIDR ${SERVICE_CIDR}, LB pool ${LB_POOL})`);
  const dir = mkdtempSync(join(tmpdir(), "tapvip-demo-"));
  const agent = nsSpawn(box.node, ["node", join(ROOT, "bin/tapvip.js"), "run", "--tap", "tapvip0", "--node-name", "node-a",
    "--node-ip", NODE_IP, "--pod-cidr", "10.244.0.0/24", "--service-cidr", SERVICE_CIDR, "--lb-pool", LB_POOL,
    "--data", join(dir, "data"), "--listen", "127.0.0.1:16443", "--nodeport-iface", box.nodeExtIf]);
  let agentLog = "";
  agent.stderr?.on("data", (d) => (agentLog += d.toString()));
  await waitForOutput(agent, "serving on TAP", 30_000);
  console.log(agentLog.trim().split("\n").map((l) => `   ${l}`).join("\n"));
  const tapvip = (...args: string[]) => nsExec(box.node, ["node", join(ROOT, "bin/tapvip.js"), ...args, "--server", API]);
  // What the kubelet puts in a pod's environment when the pod starts: the Service variables of
  // its namespace at that moment (tapvip env), fixed for the pod's life.
  const serviceVarsNow = () => parseDotenv(tapvip("env", "-n", "default"));

  // The MyApp pods start now, before the Services exist: only `kubernetes` is in their environment.
  const early = serviceVarsNow();
  const servers = new Map<string, number>();
  for (const p of backends) {
    p.env = podEnv(p, early);
    const child = startServer(p, [9376, 9377, 80], [9376]);
    await waitForOutput(child, "ready", 10_000);
    servers.set(p.name, child.pid!);
  }
  console.log(`   MyApp pods started with ${early.length} Service variables (${[...new Set(early.map(([k]) => k.split("_")[0]))].join(", ")}): the seed's Services do not exist yet`);

  console.log("\n== tapvip apply -f examples/seed-services.yaml, and the three MyApp pods");
  console.log(tapvip("apply", "-f", join(ROOT, "examples/seed-services.yaml")).trim().split("\n").map((l) => `   ${l}`).join("\n"));
  const podsFile = join(dir, "pods.yaml");
  writeFileSync(podsFile, backends.map((p) => stringify(podObject(p))).join("---\n"));
  console.log(tapvip("apply", "-f", podsFile).trim().split("\n").map((l) => `   ${l}`).join("\n"));
  console.log("\n== tapvip get services -A");
  console.log(tapvip("get", "services", "-A").trim().split("\n").map((l) => `   ${l}`).join("\n"));
  const svcs = JSON.parse(tapvip("get", "services", "-A", "-o", "json")).items as Service[];
  const svc = (name: string, ns = "default") => svcs.find((o) => o.metadata.name === name && (o.metadata.namespace ?? "default") === ns)!;
  const lbIP = svc("my-service-lb").status?.loadBalancer?.ingress?.[0]?.ip ?? "none";
  // The endpoint controller and the agent work asynchronously: wait until the first Service answers.
  const first = `http://${svc("my-service").spec!.clusterIP}/`;
  for (let i = 0; i < 100 && curl(client.ns, first).startsWith("error"); i++) await new Promise((r) => setTimeout(r, 100));
  // The client pod starts now, after the Services: its environment has them.
  const clientMain = startIdlePod(client, serviceVarsNow());

  const runs: Array<{ what: string; ns: string; url: string }> = [
    { what: `ClusterIP my-service ${svc("my-service").spec!.clusterIP}:80 (from the client pod)`, ns: client.ns, url: `http://${svc("my-service").spec!.clusterIP}/` },
    { what: `multi-port my-service-multiport :443 → 9377 (from the client pod)`, ns: client.ns, url: `http://${svc("my-service-multiport").spec!.clusterIP}:443/` },
    { what: `NodePort my-service-nodeport ${NODE_IP}:30007 (from outside)`, ns: box.ext, url: `http://${NODE_IP}:30007/` },
    { what: `LoadBalancer my-service-lb ${lbIP}:80 (from outside; the LB pool assigned it)`, ns: box.ext, url: `http://${lbIP}/` },
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

  // Discovery by environment variables: what each pod's process was started with
  // (/proc/PID/environ), and a request through the variables from inside the client pod.
  const backendEnv = processEnv(servers.get("myapp-1")!);
  const clientEnv = processEnv(clientMain.pid!);
  const svcVars = (e: Record<string, string>) => Object.keys(e).filter((k) => /_SERVICE_HOST$|_SERVICE_PORT|_PORT(_|$)/.test(k));
  console.log("\n== discovery by environment variables (tapvip env): a pod's variables are fixed when it starts");
  console.log(`   myapp-1, started before the Services: ${svcVars(backendEnv).length} Service variables (/proc/${servers.get("myapp-1")}/environ), MY_SERVICE_SERVICE_HOST ${backendEnv.MY_SERVICE_SERVICE_HOST ?? "absent"}`);
  console.log(`   client, started after them: ${svcVars(clientEnv).length} Service variables (/proc/${clientMain.pid}/environ), among them`);
  for (const k of svcVars(clientEnv).filter((x) => /^MY_SERVICE_(SERVICE_|PORT$)/.test(x))) console.log(`      ${k}=${clientEnv[k]}`);
  const inBackend = podExec(backends[0]!, ["sh", "-c", 'echo "${MY_SERVICE_SERVICE_HOST:-unset}"']).trim();
  console.log(`   in myapp-1: echo \${MY_SERVICE_SERVICE_HOST:-unset} → ${inBackend}`);
  let viaEnv: string;
  try {
    viaEnv = podExec(client, ["sh", "-c", 'curl -sS --max-time 3 "http://$MY_SERVICE_SERVICE_HOST:$MY_SERVICE_SERVICE_PORT/"']).trim();
  } catch (e) {
    viaEnv = `error: ${(e as Error).message.split("\n")[0]}`;
  }
  console.log(`   in client: curl http://$MY_SERVICE_SERVICE_HOST:$MY_SERVICE_SERVICE_PORT/ → ${viaEnv}`);
  if (backendEnv.ME !== "myapp-1" || backendEnv.MY_SERVICE_SERVICE_HOST !== undefined || inBackend !== "unset") failures++;
  if (clientEnv.MY_SERVICE_SERVICE_HOST !== svc("my-service").spec!.clusterIP || !viaEnv.startsWith("myapp-")) failures++;

  console.log("\n== the dataplane's view: tapvip lb list (admin endpoint of the agent)");
  console.log(nsExec(box.node, ["node", join(ROOT, "bin/tapvip.js"), "lb", "list"]).trim().split("\n").map((l) => `   ${l}`).join("\n"));
  const metrics = nsExec(box.node, ["curl", "-sS", "http://127.0.0.1:10249/metrics"]);
  console.log("\n== counters (from /metrics)");
  for (const l of metrics.split("\n")) {
    if (/^tapvip_(service_new_flows_total|frames_total\{[^}]*\} [1-9]|conntrack_entries |tap_rx_frames_total|tap_tx_frames_total)/.test(l)) console.log(`   ${l}`);
  }

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
