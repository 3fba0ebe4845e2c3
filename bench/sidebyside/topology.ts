// The side-by-side benchmark's topology, built afresh for every (mode, number of Services) so
// that no mode inherits another's netfilter hooks, conntrack entries or routes:
//
//   client ns                      node ns                                backend ns
//   tvsb-c 10.244.0.2/30 ──veth── tvsb-nc 10.244.0.1/30                   lo: 10.244.2.10/32, 10.244.2.11/32
//   default via 10.244.0.1         tvsb-nb 10.244.0.5/30 ──veth── tvsb-b 10.244.0.6/30, default via 10.244.0.5
//                                  route 10.244.2.0/24 via 10.244.0.6
//                                  lo: 192.0.2.1/32 (the node IP), ip_forward=1
//                                  the mode's translation: iptables / nftables rules, or
//                                  `tapvip run` with its TAP (tvsb-tap)
//
// The backend namespace serves both backend addresses with one set of wildcard-bound servers:
// iperf3 -s on 5201 (TCP; iperf3 matches its streams by cookie, so streams spread over both
// addresses still reach the same test), a UDP sink on 9000 that never reads (arrivals are
// counted by the kernel: InDatagrams + RcvbufErrors), and a TCP server on 8080 that accepts
// and closes. Namespaces: bench/sidebyside/netns.ts (`tvsb-<pid36>-{c,n,b}`).

import type { ChildProcess } from "node:child_process";
import { createNs, deleteNs, hasCommand, nsIp, nsSpawn, stopChild, sysctl, veth } from "./netns.js";
import { PROBE_PORTS } from "./model.js";

export const CLIENT_IP = "10.244.0.2";
export const NODE_IP = "192.0.2.1";
export const BACKENDS = ["10.244.2.10", "10.244.2.11"];
export const POD_CIDR = "10.244.0.0/16";
export const LINKS = { client: "tvsb-c", nodeClient: "tvsb-nc", nodeBackend: "tvsb-nb", backend: "tvsb-b" } as const;

export interface Topology {
  client: string;
  node: string;
  backend: string;
  servers: ChildProcess[];
}

/** Resolves when `text` appears on the child's output; rejects on exit or timeout. */
export function waitFor(child: ChildProcess, text: string, ms: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = "";
    const t = setTimeout(() => done(new Error(`timed out after ${ms} ms waiting for "${text}"; output so far:\n${buf.slice(-2000)}`)), ms);
    const on = (d: Buffer) => {
      buf += d.toString();
      if (buf.includes(text)) done(null);
    };
    const onExit = (code: number | null, sig: string | null) => done(new Error(`exited (${code ?? sig}) before "${text}":\n${buf.slice(-2000)}`));
    const done = (e: Error | null) => {
      clearTimeout(t);
      child.stdout?.off("data", on);
      child.stderr?.off("data", on);
      child.off("exit", onExit);
      if (e) reject(e);
      else resolve(buf);
    };
    child.stdout?.on("data", on);
    child.stderr?.on("data", on);
    child.on("exit", onExit);
  });
}

const PY_SINK = `import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
s.bind(("0.0.0.0", ${PROBE_PORTS.sink}))
print("ready", flush=True)
time.sleep(1e6)`;
// Without python3: a Node socket that reads (costs the backend more CPU).
const NODE_SINK = `const d = require("dgram").createSocket("udp4"); d.on("message", () => {}); d.bind(${PROBE_PORTS.sink}, () => console.log("ready"));`;
const ACCEPT_SERVER = `
const s = require("net").createServer((c) => { c.on("error", () => {}); c.destroy(); });
s.on("error", (e) => { console.error(e.message); process.exit(1); });
s.listen({ port: ${PROBE_PORTS.conn}, backlog: 4096 }, () => console.log("ready"));`;

export function buildTopology(): Topology {
  const node = createNs("n");
  const client = createNs("c");
  const backend = createNs("b");
  const t: Topology = { client, node, backend, servers: [] };
  veth(node, LINKS.nodeClient, client, LINKS.client);
  veth(node, LINKS.nodeBackend, backend, LINKS.backend);
  nsIp(node, ["addr", "add", "10.244.0.1/30", "dev", LINKS.nodeClient]);
  nsIp(node, ["addr", "add", "10.244.0.5/30", "dev", LINKS.nodeBackend]);
  nsIp(node, ["addr", "add", `${NODE_IP}/32`, "dev", "lo"]);
  nsIp(node, ["link", "set", LINKS.nodeClient, "up"]);
  nsIp(node, ["link", "set", LINKS.nodeBackend, "up"]);
  nsIp(client, ["addr", "add", `${CLIENT_IP}/30`, "dev", LINKS.client]);
  nsIp(client, ["link", "set", LINKS.client, "up"]);
  nsIp(client, ["route", "add", "default", "via", "10.244.0.1"]);
  nsIp(backend, ["addr", "add", "10.244.0.6/30", "dev", LINKS.backend]);
  for (const b of BACKENDS) nsIp(backend, ["addr", "add", `${b}/32`, "dev", "lo"]);
  nsIp(backend, ["link", "set", LINKS.backend, "up"]);
  nsIp(backend, ["route", "add", "default", "via", "10.244.0.5"]);
  nsIp(node, ["route", "add", "10.244.2.0/24", "via", "10.244.0.6"]);
  sysctl(node, "net.ipv4.ip_forward", "1");
  // Many short connections from one client address: the whole port range, and TIME_WAIT reuse.
  sysctl(client, "net.ipv4.ip_local_port_range", "1024 65535");
  sysctl(client, "net.ipv4.tcp_tw_reuse", "1");
  sysctl(backend, "net.core.somaxconn", "4096");
  return t;
}

export async function startServers(t: Topology): Promise<void> {
  const iperf = nsSpawn(t.backend, ["iperf3", "-s", "-p", String(PROBE_PORTS.iperf), "--forceflush"]);
  t.servers.push(iperf);
  const sink = hasCommand("python3") ? nsSpawn(t.backend, ["python3", "-c", PY_SINK]) : nsSpawn(t.backend, ["node", "-e", NODE_SINK]);
  t.servers.push(sink);
  const acc = nsSpawn(t.backend, ["node", "-e", ACCEPT_SERVER]);
  t.servers.push(acc);
  await Promise.all([waitFor(iperf, "listening", 10_000), waitFor(sink, "ready", 10_000), waitFor(acc, "ready", 10_000)]);
}

export async function destroyTopology(t: Topology): Promise<void> {
  await Promise.all(t.servers.map((c) => stopChild(c, 2000)));
  for (const ns of [t.client, t.node, t.backend]) deleteNs(ns);
}
