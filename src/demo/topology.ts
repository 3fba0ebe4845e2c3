// A node in a box, made of network namespaces this process creates (and always removes):
// a node namespace where `tapvip run` holds its TAP, pods as namespaces on routed /30 veths
// (so pod-to-pod traffic crosses the node, as with a routed CNI), and an external client.
// Used by the end-to-end tests and by the demo. Addresses: pods 10.244.0.0/24, the external
// side 198.51.100.0/24 (documentation range); the node's address there is 198.51.100.1.

import { createNetns, vethPair, nsIp, nsSpawn } from "../host/netns.js";
import type { ChildProcess } from "node:child_process";

export const NODE_IP = "198.51.100.1";
export const EXTERNAL_IP = "198.51.100.2";
export const POD_CIDR = "10.244.0.0/24";

export interface Pod {
  ns: string;
  ip: string;
  name: string;
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

/** A pod's workload: HTTP on `httpPort` and UDP echo on `udpPort`, both answering with the pod name. */
export const SERVER_JS = `
const http = require("http"), dgram = require("dgram");
const [httpPorts, udpPorts] = [process.env.HTTP_PORTS.split(","), process.env.UDP_PORTS.split(",")];
for (const p of httpPorts) http.createServer((q, s) => s.end(process.env.ME + " saw " + q.socket.remoteAddress)).listen(Number(p), "0.0.0.0");
for (const p of udpPorts) {
  const u = dgram.createSocket("udp4");
  u.on("message", (m, r) => u.send(Buffer.concat([Buffer.from(process.env.ME + ":"), m]), r.port, r.address));
  u.bind(Number(p), "0.0.0.0");
}
setTimeout(() => console.log("ready"), 100);
`;

export function startServer(pod: Pod, httpPorts: number[], udpPorts: number[]): ChildProcess {
  return nsSpawn(pod.ns, ["node", "-e", SERVER_JS], {
    env: { ...process.env, ME: pod.name, HTTP_PORTS: httpPorts.join(","), UDP_PORTS: udpPorts.join(",") },
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
