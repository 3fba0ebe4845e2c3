// A node in a box, made of network namespaces this process creates (and always removes):
// a node namespace where `tapvip run` holds its TAP, pods as namespaces on routed /30 veths
// (so pod-to-pod traffic crosses the node, as with a routed CNI), and an external client.
// Used by the end-to-end tests and by the demo. Addresses: pods 10.244.0.0/24, the external
// side 198.51.100.0/24 (documentation range); the node's address there is 198.51.100.1.
//
// addRemoteNode() adds a second "node" (node-b) behind the node: a namespace on a veth
// (node 10.240.0.1/30 ↔ node-b 10.240.0.2/30) whose pods are addresses 10.244.1.x on its
// loopback, reached by a route 10.244.1.0/24 via node-b in the node namespace (what a routed
// CNI installs). Endpoints there carry nodeName "node-b": non-local for the agent.

import { createNetns, vethPair, nsIp, nsSpawn, nsExec } from "../host/netns.js";
import type { ChildProcess } from "node:child_process";
import { join } from "node:path";
import { readFileSync, writeFileSync } from "node:fs";
import type { EnvPair } from "../discovery/env.js";

export const NODE_IP = "198.51.100.1";
export const EXTERNAL_IP = "198.51.100.2";
export const POD_CIDR = "10.244.0.0/24";

export interface Pod {
  ns: string;
  ip: string;
  name: string;
  /** Address the workload binds (default 0.0.0.0); set when pods share a namespace. */
  bind?: string;
  /**
   * The environment the pod's processes start with, fixed when the pod starts (podEnv): as with
   * the kubelet, a Service created later is not in it. Unset: processes get this process's
   * environment (the end-to-end tests' pods, which do not model it).
   */
  env?: Record<string, string>;
}

/**
 * A pod's environment: the node's PATH (the workloads are the node's own binaries), HOSTNAME =
 * the pod's name, and the Service variables of its namespace as they are when it starts (`tapvip
 * env -n NS`, kubelet's envvars.FromServices). Nothing else of the caller's environment leaks in.
 */
export function podEnv(pod: Pod, serviceVars: readonly EnvPair[]): Record<string, string> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", HOSTNAME: pod.name };
  for (const [k, v] of serviceVars) env[k] = v;
  return env;
}

/** Starts a pod whose only process idles (a client pod); its environment is podEnv's, now. */
export function startIdlePod(pod: Pod, serviceVars: readonly EnvPair[]): ChildProcess {
  pod.env = podEnv(pod, serviceVars);
  return nsSpawn(pod.ns, ["sleep", "infinity"], { env: pod.env });
}

/**
 * Runs a command inside a started pod with the pod's environment and nothing else (what
 * `kubectl exec` gives: the container's environment, not the caller's); stdout.
 */
export function podExec(pod: Pod, cmd: string[]): string {
  if (!pod.env) throw new Error(`pod ${pod.name} has not been started: it has no environment`);
  return nsExec(pod.ns, ["env", "-i", ...Object.entries(pod.env).map(([k, v]) => `${k}=${v}`), ...cmd]);
}

/** The environment a running process was started with (/proc/PID/environ). */
export function processEnv(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of readFileSync(`/proc/${pid}/environ`, "latin1").split("\0")) {
    const i = kv.indexOf("=");
    if (i > 0) out[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return out;
}

export interface Box {
  node: string;
  ext: string;
  nodeExtIf: string;
  pods: Pod[];
}

function linkPod(node: string, pod: string, i: number): string {
  const nodeAddr = `10.244.0.${4 * i + 9}`;
  const podAddr = `10.244.0.${4 * i + 10}`;
  const { a, b } = vethPair(node, pod);
  nsIp(node, ["addr", "add", `${nodeAddr}/30`, "dev", a]);
  nsIp(node, ["link", "set", a, "up"]);
  nsIp(pod, ["addr", "add", `${podAddr}/30`, "dev", b]);
  nsIp(pod, ["link", "set", b, "up"]);
  nsIp(pod, ["route", "add", "default", "via", nodeAddr]);
  return podAddr;
}

/** Builds the node, `podNames.length` pods (pod i gets 10.244.0.(4i+10)) and the external client. */
export function buildBox(podNames: string[]): Box {
  const node = createNetns();
  const pods = podNames.map((name, i) => {
    const ns = createNetns();
    return { ns, ip: linkPod(node, ns, i), name };
  });
  const ext = createNetns();
  const { a, b } = vethPair(node, ext);
  nsIp(node, ["addr", "add", `${NODE_IP}/24`, "dev", a]);
  nsIp(node, ["link", "set", a, "up"]);
  nsIp(ext, ["addr", "add", `${EXTERNAL_IP}/24`, "dev", b]);
  nsIp(ext, ["link", "set", b, "up"]);
  nsIp(ext, ["route", "add", "default", "via", NODE_IP]);
  return { node, ext, nodeExtIf: a, pods };
}

export const REMOTE_NODE_NAME = "node-b";
export const REMOTE_POD_CIDR = "10.244.1.0/24";
const REMOTE_LINK_NODE = "10.240.0.1";
const REMOTE_LINK_PEER = "10.240.0.2";

export interface RemoteNode {
  /** node-b's namespace (all its pods live in it, each bound to its own address). */
  ns: string;
  /** The node's end of the link to node-b. */
  nodeIf: string;
  /** Pod i gets 10.244.1.(4i+10). */
  pods: Pod[];
}

/**
 * Adds node-b behind the box's node (see the header). Replies from node-b's pods enter the
 * node on `nodeIf`, not from the pod CIDR: they reach the TAP only if the agent's reply rule
 * covers REMOTE_POD_CIDR as well (NodeNetworkOptions.replySourceCIDRs).
 */
export function addRemoteNode(box: Box, podNames: string[]): RemoteNode {
  const ns = createNetns();
  const { a, b } = vethPair(box.node, ns);
  nsIp(box.node, ["addr", "add", `${REMOTE_LINK_NODE}/30`, "dev", a]);
  nsIp(box.node, ["link", "set", a, "up"]);
  nsIp(ns, ["addr", "add", `${REMOTE_LINK_PEER}/30`, "dev", b]);
  nsIp(ns, ["link", "set", b, "up"]);
  nsIp(ns, ["route", "add", "default", "via", REMOTE_LINK_NODE]);
  nsIp(box.node, ["route", "add", REMOTE_POD_CIDR, "via", REMOTE_LINK_PEER, "dev", a]);
  const pods = podNames.map((name, i) => {
    const ip = `10.244.1.${4 * i + 10}`;
    nsIp(ns, ["addr", "add", `${ip}/32`, "dev", "lo"]);
    return { ns, ip, name, bind: ip };
  });
  return { ns, nodeIf: a, pods };
}

/**
 * A pod's workload: HTTP on each of `httpPorts` and UDP echo on each of `udpPorts`, answering
 * with the pod name (HTTP: "<name> saw <client address>", header X-Served-By: <name>:<port>;
 * UDP: "<name>:<payload>").
 */
export const SERVER_JS = `
const http = require("http"), dgram = require("dgram");
const split = (s) => (s ? s.split(",") : []);
const [httpPorts, udpPorts, host] = [split(process.env.HTTP_PORTS), split(process.env.UDP_PORTS), process.env.BIND || "0.0.0.0"];
for (const p of httpPorts) http.createServer((q, s) => {
  s.setHeader("X-Served-By", process.env.ME + ":" + p);
  s.end(process.env.ME + " saw " + q.socket.remoteAddress);
}).listen(Number(p), host);
for (const p of udpPorts) {
  const u = dgram.createSocket("udp4");
  u.on("message", (m, r) => u.send(Buffer.concat([Buffer.from(process.env.ME + ":"), m]), r.port, r.address));
  u.bind(Number(p), host);
}
setTimeout(() => console.log("ready"), 100);
`;

/** Starts a pod's workload (SERVER_JS) with the pod's environment (Pod.env) plus its own settings. */
export function startServer(pod: Pod, httpPorts: number[], udpPorts: number[]): ChildProcess {
  return nsSpawn(pod.ns, ["node", "-e", SERVER_JS], {
    env: { ...(pod.env ?? process.env), ME: pod.name, HTTP_PORTS: httpPorts.join(","), UDP_PORTS: udpPorts.join(","), BIND: pod.bind ?? "" },
  });
}

/** Resolves when `text` appears on the child's stdout/stderr; rejects on exit or timeout. */
export function waitForOutput(child: ChildProcess, text: string, ms: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = "";
    const t = setTimeout(() => reject(new Error(`timed out waiting for "${text}"; output so far:\n${buf}`)), ms);
    const on = (d: Buffer) => {
      buf += d.toString();
      if (buf.includes(text)) {
        clearTimeout(t);
        resolve(buf);
      }
    };
    child.stdout?.on("data", on);
    child.stderr?.on("data", on);
    child.on("exit", (code) => {
      clearTimeout(t);
      reject(new Error(`exited with ${code} before "${text}":\n${buf}`));
    });
  });
}

// ---- the agent and clients, for end-to-end tests ---------------------------------------

// src/demo/topology.ts (tests) or dist/src/demo/topology.js (the demo): the repository root.
const ROOT = new URL(import.meta.url.includes("/dist/src/") ? "../../.." : "../..", import.meta.url).pathname;
export const TAPVIP = join(ROOT, "bin/tapvip.js");

/**
 * `--offload on|off` and `--queues N` for `tapvip run` from $TAPVIP_OFFLOAD and $TAPVIP_QUEUES,
 * or nothing (the agent's defaults). The end-to-end tests run once per datapath:
 * vitest.config.ts sets them per project.
 */
export function offloadArgs(): string[] {
  const v = process.env.TAPVIP_OFFLOAD;
  const q = process.env.TAPVIP_QUEUES;
  return [...(v ? ["--offload", v] : []), ...(q ? ["--queues", q] : [])];
}

export interface AgentOptions {
  tap: string;
  /** The embedded API's port on the node namespace's loopback. */
  apiPort: number;
  /** --data directory (kept across restarts). */
  dataDir: string;
  nodeName?: string;
  podCIDR?: string;
  extraArgs?: string[];
}

/** `tapvip run` with its embedded store in the box's node namespace, and a CLI against it. */
export class Agent {
  child: ChildProcess | null = null;
  log = "";
  readonly api: string;

  constructor(private readonly box: Box, readonly o: AgentOptions) {
    this.api = `http://127.0.0.1:${o.apiPort}`;
  }

  /** Starts (or restarts) the agent; resolves once it serves frames. */
  async start(): Promise<void> {
    const o = this.o;
    const child = nsSpawn(this.box.node, ["node", TAPVIP, "run", "--tap", o.tap, "--node-name", o.nodeName ?? "node-a",
      "--node-ip", NODE_IP, "--pod-cidr", o.podCIDR ?? POD_CIDR, "--data", o.dataDir, "--listen", `127.0.0.1:${o.apiPort}`,
      "--nodeport-iface", this.box.nodeExtIf, ...offloadArgs(), ...(o.extraArgs ?? [])]);
    this.child = child;
    child.stderr?.on("data", (d) => (this.log += d.toString()));
    child.stdout?.on("data", (d) => (this.log += d.toString()));
    // $TAPVIP_AGENT_LOG_DIR: keep each agent's log there (for looking into a failed test run).
    const dir = process.env.TAPVIP_AGENT_LOG_DIR;
    if (dir) child.once("exit", () => writeFileSync(join(dir, `agent-${o.tap}-${child.pid}.log`), this.log));
    await waitForOutput(child, "serving on TAP", 30_000);
  }

  /** SIGTERM and wait for the exit; resolves with the exit code. */
  async stop(): Promise<number | null> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return c?.exitCode ?? null;
    const exited = new Promise<number | null>((r) => c.once("exit", (code) => r(code)));
    c.kill("SIGTERM");
    return exited;
  }

  /** `tapvip ARGS --server API` in the node namespace; stdout. */
  cli(args: string[], input?: string): string {
    return nsExec(this.box.node, ["node", TAPVIP, ...args, "--server", this.api], { input });
  }

  apply(yaml: string): string {
    return this.cli(["apply", "-f", "-"], yaml);
  }

  get<T = any>(kind: string, name: string): T { // eslint-disable-line @typescript-eslint/no-explicit-any
    return JSON.parse(this.cli(["get", kind, name, "-o", "json"])) as T;
  }
}

export interface PodObjectOptions {
  labels: Record<string, string>;
  nodeName?: string;
  /** Named container ports, e.g. {web: 8080}. */
  ports?: Record<string, number>;
}

/** A Running, Ready Pod object (YAML) for a pod served by startServer(). */
export function podYaml(name: string, ip: string, o: PodObjectOptions): string {
  const ports = Object.entries(o.ports ?? {}).map(([n, p]) => `{name: ${n}, containerPort: ${p}}`).join(", ");
  return `
apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: default, labels: ${JSON.stringify(o.labels)}}
spec: {nodeName: ${o.nodeName ?? "node-a"}, containers: [{name: app, ports: [${ports}]}]}
status: {phase: Running, podIP: ${ip}, podIPs: [{ip: ${ip}}], conditions: [{type: Ready, status: "True"}]}
`;
}

export interface CurlResult {
  /** curl's exit code: 0 ok, 7 refused, 28 timed out. */
  code: number;
  /** HTTP status when answered. */
  status?: number;
  /** Response headers, lower-cased names. */
  headers?: Record<string, string>;
  body: string;
  /** The X-Served-By header ("<pod>:<port>"), when answered. */
  servedBy?: string;
}

/** One HTTP GET from a namespace (a new connection each time). */
export function curl(ns: string, url: string, o: { maxTime?: number; iface?: string } = {}): CurlResult {
  const args = ["curl", "-sS", "--max-time", String(o.maxTime ?? 3), "-D", "-", ...(o.iface ? ["--interface", o.iface] : []), url];
  try {
    const out = nsExec(ns, args);
    const [head, ...rest] = out.split("\r\n\r\n");
    const lines = (head ?? "").split("\r\n");
    const headers: Record<string, string> = {};
    for (const l of lines.slice(1)) {
      const i = l.indexOf(":");
      if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
    }
    const status = Number(/^HTTP\/[\d.]+ (\d+)/.exec(lines[0] ?? "")?.[1]);
    return { code: 0, status, headers, body: rest.join("\r\n\r\n"), servedBy: headers["x-served-by"] };
  } catch (e) {
    const msg = (e as Error).message; // "ip netns exec … failed (<exit code>): <stderr>"
    return { code: Number(/failed \((\d+)\)/.exec(msg)?.[1] ?? -1), body: msg };
  }
}

/** One UDP datagram to host:port from a namespace; the answer, or "TIMEOUT". */
export function udpAsk(ns: string, host: string, port: number, payload = "hello", ms = 1500): string {
  const js = `
const d = require("dgram").createSocket("udp4");
const t = setTimeout(() => { console.log("TIMEOUT"); process.exit(0); }, ${ms});
d.on("message", (m) => { console.log(m.toString()); clearTimeout(t); d.close(); });
d.send(${JSON.stringify(payload)}, ${port}, ${JSON.stringify(host)});`;
  return nsExec(ns, ["node", "-e", js]).trim();
}

/** Polls `f` until it returns a truthy value or `ms` pass; returns the last value. */
export async function eventually<T>(f: () => T, ms = 10_000, every = 200): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = f();
    if (v || Date.now() - t0 > ms) return v;
    await new Promise((r) => setTimeout(r, every));
  }
}
