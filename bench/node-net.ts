// Step 1 of bench/node.ts: traffic through a ClusterIP served by `tapvip run` on the
// node-in-a-box (src/demo/topology.ts), with the agent's per-frame TAP I/O path, and the same
// traffic straight to the backend pod before the agent starts (the kernel floor).
//
//   client pod 10.244.0.14 ── node (ip_forward; later tapvip run + TAP) ── backend pod 10.244.0.10
//                                                                         iperf3 -s :5201 (TCP+UDP)
//                                                                         UDP sink :5202 (never reads)
//
// Small UDP: a sender in the client pod blasts 64-byte-payload datagrams for UDP_SECONDS; the
// sender is whichever of two C-free senders reaches the higher rate in a short calibration
// against the floor: a Node dgram sender (256 send() calls per event-loop turn) or
// `iperf3 -u -b 0 -l 64`. Counting uses the kernel's own counters in each namespace: sent = the
// client's UDP OutDatagrams, arrived = packets received on the backend's interface, to-socket =
// the backend's UDP InDatagrams + RcvbufErrors (the UDP layer matched a socket: DNAT and
// checksums were right). The agent side: its CPU time (/proc/<pid>/stat, all threads), its
// TAP counters (/metrics) and the TAP's kernel queue drops (`ip -s link`: tx_dropped = frames
// the kernel could not queue for the agent).
//
// The floor runs before the agent starts: once it runs, its policy rule sends every reply
// from the pod CIDR through the TAP, so "direct to the pod IP" would no longer be the kernel alone.

import { spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildBox, waitForOutput, NODE_IP, POD_CIDR, TAPVIP, type Box } from "../src/demo/topology.js";
import { cleanupAll, netnsUnavailable, nsSpawn, nsSysctl, sweepStale } from "../src/host/netns.js";
import { delta, linkStats, podLink, procCpu, progress, sleep, udpMib } from "./node-sys.js";

export const VIP = "10.96.0.10";
export const UDP_PAYLOAD = 64;
/** Ethernet + IPv4 + UDP headers + payload (no FCS). */
export const UDP_FRAME = 14 + 20 + 8 + UDP_PAYLOAD;
export const UDP_SECONDS = 5;
export const CAL_SECONDS = 2;
export const TCP_SECONDS = 10;
const TAP = "tvb0";
const IPERF_PORT = 5201;
const SINK_PORT = 5202;

export type Sender = "node-dgram" | "iperf3";

/** Extra `tapvip run` arguments from $TAPVIP_BENCH_ARGS (e.g. "--queues 2" or "--offload off"). */
export function agentArgs(): string[] {
  return (process.env.TAPVIP_BENCH_ARGS ?? "").split(/\s+/).filter(Boolean);
}

export interface AgentSample {
  /** CPU seconds of the agent process (all threads). */
  user: number;
  sys: number;
  /** Frames read from the TAP / written back / read batches (one WASM call each). */
  rxFrames: number;
  txFrames: number;
  batches: number;
  writeErrors: number;
  /** Frames the kernel could not queue on the TAP for the agent (TAP tx_dropped). */
  tapQueueDrops: number;
}

export interface UdpRun {
  path: "floor" | "vip";
  sender: Sender;
  seconds: number;
  /** Datagrams the client's UDP layer sent (OutDatagrams), and send errors (SndbufErrors). */
  sent: number;
  sendErrors: number;
  /** Packets received on the backend's interface. */
  arrived: number;
  /** Datagrams the backend's UDP layer matched to the socket (InDatagrams + RcvbufErrors). */
  toSocket: number;
  /** Datagrams the receiving application read, when it reports it (iperf3). */
  readByApp?: number;
  agent?: AgentSample;
  error?: string;
}

export interface TcpRun {
  path: "floor" | "vip";
  streams: number;
  seconds: number;
  gbps: number;
  retransmits: number;
  agent?: AgentSample;
  error?: string;
}

export interface NetResult {
  skipped?: string;
  calibration: Partial<Record<Sender, number>>;
  sender?: Sender;
  udp: UdpRun[];
  tcp: TcpRun[];
  notes: string[];
}

const NODE_SENDER = `
const d = require("dgram").createSocket("udp4");
const [host, port, secs, len] = process.argv.slice(1);
const buf = Buffer.alloc(Number(len), 0x61);
let calls = 0, errors = 0;
d.on("error", () => errors++);
const end = Date.now() + Number(secs) * 1000;
const t0 = process.hrtime.bigint();
function go() {
  if (Date.now() >= end) {
    console.log(JSON.stringify({ calls, errors, seconds: Number(process.hrtime.bigint() - t0) / 1e9 }));
    d.close();
    return;
  }
  for (let i = 0; i < 256; i++) d.send(buf);
  calls += 256;
  setImmediate(go);
}
d.connect(Number(port), host, go);
`;

// A UDP socket that is bound and never read: the cheapest receiver (arrivals are counted by
// the kernel as RcvbufErrors once its buffer is full). python3 when present, else a Node one that reads.
const PY_SINK = `import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", ${SINK_PORT}))
print("ready", flush=True)
time.sleep(1e6)`;
const NODE_SINK = `const d = require("dgram").createSocket("udp4"); let n = 0; d.on("message", () => n++); d.bind(${SINK_PORT}, () => console.log("ready"));`;

function manifests(backendIP: string): string {
  return `
apiVersion: v1
kind: Service
metadata: {name: bench, namespace: default}
spec:
  clusterIP: ${VIP}
  ports:
    - {name: iperf-tcp, protocol: TCP, port: ${IPERF_PORT}, targetPort: ${IPERF_PORT}}
    - {name: iperf-udp, protocol: UDP, port: ${IPERF_PORT}, targetPort: ${IPERF_PORT}}
    - {name: sink, protocol: UDP, port: ${SINK_PORT}, targetPort: ${SINK_PORT}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: bench-1, namespace: default, labels: {kubernetes.io/service-name: bench}}
addressType: IPv4
endpoints:
  - {addresses: [${backendIP}], conditions: {ready: true}, nodeName: node-a}
ports:
  - {name: iperf-tcp, protocol: TCP, port: ${IPERF_PORT}}
  - {name: iperf-udp, protocol: UDP, port: ${IPERF_PORT}}
  - {name: sink, protocol: UDP, port: ${SINK_PORT}}
`;
}

/** Runs a command in a namespace; status, stdout and stderr (never throws on exit status). */
function nsRun(ns: string, cmd: string[], timeoutMs: number): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync("ip", ["netns", "exec", ns, ...cmd], { encoding: "utf8", timeout: timeoutMs, maxBuffer: 64 << 20 });
  return { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? String(r.error ?? "") };
}

function hasCommand(cmd: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" }).status === 0;
}

class Rig {
  agent: ChildProcess | null = null;
  agentLog = "";
  readonly backend;
  readonly client;
  readonly backendIf: string;
  private readonly dir = mkdtempSync(join(tmpdir(), "tapvip-nodebench-"));

  constructor(readonly box: Box) {
    this.backend = box.pods[0]!;
    this.client = box.pods[1]!;
    this.backendIf = podLink(this.backend.ns);
  }

  async startServers(): Promise<void> {
    const iperf = nsSpawn(this.backend.ns, ["iperf3", "-s", "-p", String(IPERF_PORT), "--forceflush"]);
    await waitForOutput(iperf, "listening", 10_000);
    const sink = hasCommand("python3")
      ? nsSpawn(this.backend.ns, ["python3", "-c", PY_SINK])
      : nsSpawn(this.backend.ns, ["node", "-e", NODE_SINK]);
    await waitForOutput(sink, "ready", 10_000);
  }

  async startAgent(): Promise<void> {
    const file = join(this.dir, "bench.yaml");
    writeFileSync(file, manifests(this.backend.ip));
    const child = nsSpawn(this.box.node, ["node", TAPVIP, "run", "--tap", TAP, "--node-name", "node-a", "--node-ip", NODE_IP,
      "--pod-cidr", POD_CIDR, "--manifests", file, "--nodeport-iface", this.box.nodeExtIf,
      "--state-file", "off", "--healthz-address", "off", ...agentArgs()]);
    this.agent = child;
    child.stdout?.on("data", (d) => (this.agentLog += d.toString()));
    child.stderr?.on("data", (d) => (this.agentLog += d.toString()));
    await waitForOutput(child, "serving on TAP", 30_000);
    await waitForOutput(child, "admin on", 5_000).catch(() => undefined);
  }

  async stopAgent(): Promise<void> {
    const c = this.agent;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((r) => c.once("exit", () => r()));
    c.kill("SIGTERM");
    await Promise.race([exited, sleep(5000)]);
  }

  removeFiles(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  agentSample(): AgentSample | undefined {
    const c = this.agent;
    if (!c?.pid) return undefined;
    const cpu = procCpu(c.pid);
    const m = nsRun(this.box.node, ["curl", "-sS", "--max-time", "3", "http://127.0.0.1:10249/metrics"], 5000).stdout;
    const val = (name: string) => Number(new RegExp(`^tapvip_${name} (\\S+)$`, "m").exec(m)?.[1] ?? NaN);
    return {
      user: cpu.user, sys: cpu.sys,
      rxFrames: val("tap_rx_frames_total"), txFrames: val("tap_tx_frames_total"),
      batches: val("tap_read_batches_total"), writeErrors: val("tap_write_errors_total"),
      tapQueueDrops: linkStats(this.box.node, TAP).txDropped,
    };
  }

  /** One UDP blast from the client pod at target; counted by the kernels at both ends. */
  udp(path: "floor" | "vip", sender: Sender, target: string, seconds: number): UdpRun {
    const c0 = udpMib(this.client.ns);
    const b0 = udpMib(this.backend.ns);
    const l0 = linkStats(this.backend.ns, this.backendIf);
    const a0 = path === "vip" ? this.agentSample() : undefined;
    let secs = seconds;
    let readByApp: number | undefined;
    let error: string | undefined;
    if (sender === "node-dgram") {
      const r = nsRun(this.client.ns, ["node", "-e", NODE_SENDER, target, String(SINK_PORT), String(seconds), String(UDP_PAYLOAD)], (seconds + 30) * 1000);
      try {
        secs = (JSON.parse(r.stdout.trim().split("\n").pop()!) as { seconds: number }).seconds;
      } catch {
        error = `sender failed (${r.status}): ${r.stderr.trim().slice(0, 300)}`;
      }
    } else {
      const r = nsRun(this.client.ns, ["iperf3", "-c", target, "-p", String(IPERF_PORT), "-u", "-b", "0", "-l", String(UDP_PAYLOAD),
        "-t", String(seconds), "-J"], (seconds + 30) * 1000);
      try {
        type Sum = { packets: number; lost_packets: number };
        const j = JSON.parse(r.stdout) as { error?: string; end: { sum_sent?: { seconds: number }; sum_received?: Sum; sum: Sum } };
        if (j.error) throw new Error(j.error);
        secs = j.end.sum_sent?.seconds ?? seconds;
        // iperf3's "packets" is the highest sequence number seen; what the server read is that minus the gaps.
        const rcv = j.end.sum_received ?? j.end.sum;
        readByApp = rcv.packets - rcv.lost_packets;
      } catch (e) {
        error = `iperf3 failed (${r.status}): ${(e as Error).message} ${r.stderr.trim().slice(0, 300)}`;
      }
    }
    const a1 = path === "vip" ? this.agentSample() : undefined;
    const dc = delta(c0, udpMib(this.client.ns));
    const db = delta(b0, udpMib(this.backend.ns));
    const dl = delta(l0, linkStats(this.backend.ns, this.backendIf));
    return {
      path, sender, seconds: secs, sent: dc.OutDatagrams!, sendErrors: dc.SndbufErrors ?? 0,
      arrived: dl.rxPackets, toSocket: db.InDatagrams! + (db.RcvbufErrors ?? 0), readByApp,
      agent: a0 && a1 ? delta(a0, a1) : undefined, error,
    };
  }

  tcp(path: "floor" | "vip", target: string, streams: number): TcpRun {
    const a0 = path === "vip" ? this.agentSample() : undefined;
    const r = nsRun(this.client.ns, ["iperf3", "-c", target, "-p", String(IPERF_PORT), "-t", String(TCP_SECONDS), "-P", String(streams), "-J"],
      (TCP_SECONDS + 30) * 1000);
    const a1 = path === "vip" ? this.agentSample() : undefined;
    const agent = a0 && a1 ? delta(a0, a1) : undefined;
    try {
      const j = JSON.parse(r.stdout) as { error?: string; end: { sum_received: { bits_per_second: number; seconds: number }; sum_sent: { retransmits?: number } } };
      if (j.error) throw new Error(j.error);
      return { path, streams, seconds: j.end.sum_received.seconds, gbps: j.end.sum_received.bits_per_second / 1e9, retransmits: j.end.sum_sent.retransmits ?? 0, agent };
    } catch (e) {
      return { path, streams, seconds: 0, gbps: NaN, retransmits: 0, agent, error: `iperf3 failed (${r.status}): ${(e as Error).message} ${r.stderr.trim().slice(0, 300)}` };
    }
  }
}

const pps = (r: UdpRun, n: number) => n / r.seconds;

/** 1 − received / sent, received = datagrams that reached the backend's UDP layer. */
export function udpLoss(r: UdpRun): number {
  return r.sent > 0 ? Math.max(0, 1 - r.toSocket / r.sent) : NaN;
}

function udpLine(r: UdpRun): string {
  if (r.error) return `${r.path} UDP (${r.sender}): ${r.error}`;
  return `${r.path} UDP (${r.sender}): sent ${Math.round(pps(r, r.sent)).toLocaleString("en-US")}/s, received ${Math.round(pps(r, r.toSocket)).toLocaleString("en-US")}/s, loss ${(udpLoss(r) * 100).toFixed(1)}%` +
    (r.agent ? `; agent read ${Math.round(pps(r, r.agent.rxFrames)).toLocaleString("en-US")} frames/s, TAP queue drops ${r.agent.tapQueueDrops.toLocaleString("en-US")}` : "");
}

function tcpLine(r: TcpRun): string {
  return r.error ? `${r.path} TCP ×${r.streams}: ${r.error}` : `${r.path} TCP ×${r.streams}: ${r.gbps.toFixed(2)} Gbit/s (${r.retransmits} retransmits)`;
}

export async function runNet(): Promise<NetResult> {
  const res: NetResult = { calibration: {}, udp: [], tcp: [], notes: [] };
  const why = netnsUnavailable() ?? (hasCommand("iperf3") ? null : "iperf3 is not installed") ?? (hasCommand("curl") ? null : "curl is not installed");
  if (why) {
    res.skipped = why;
    progress(`step 1 skipped: ${why}`);
    return res;
  }
  sweepStale();
  let rig: Rig | null = null;
  try {
    const box = buildBox(["backend", "client"]);
    nsSysctl(box.node, "net.ipv4.ip_forward", "1"); // what the agent sets too; the floor needs it
    rig = new Rig(box);
    await rig.startServers();
    const be = rig.backend.ip;
    progress(`step 1: node-in-a-box up (client ${rig.client.ip} → node → backend ${be}); floor first, without tapvip`);

    // Which sender reaches the higher rate (against the floor, no agent yet).
    for (const s of ["node-dgram", "iperf3"] as const) {
      const r = rig.udp("floor", s, be, CAL_SECONDS);
      res.calibration[s] = r.error ? NaN : pps(r, r.sent);
      progress(`step 1: sender calibration ${s}: ${r.error ?? `${Math.round(res.calibration[s]!).toLocaleString("en-US")} datagrams/s sent`}`);
    }
    const sender: Sender = (res.calibration.iperf3 ?? 0) > (res.calibration["node-dgram"] ?? 0) ? "iperf3" : "node-dgram";
    res.sender = sender;

    const fu = rig.udp("floor", sender, be, UDP_SECONDS);
    res.udp.push(fu);
    progress(`step 1: ${udpLine(fu)}`);
    for (const k of [1, 4]) {
      const t = rig.tcp("floor", be, k);
      res.tcp.push(t);
      progress(`step 1: ${tcpLine(t)}`);
    }

    await rig.startAgent();
    progress(`step 1: tapvip run serving on TAP ${TAP}; ClusterIP ${VIP} → ${be}`);
    const vu = rig.udp("vip", sender, VIP, UDP_SECONDS);
    res.udp.push(vu);
    progress(`step 1: ${udpLine(vu)}`);
    for (const k of [1, 4]) {
      const t = rig.tcp("vip", VIP, k);
      res.tcp.push(t);
      progress(`step 1: ${tcpLine(t)}`);
    }
    if ([...res.udp, ...res.tcp].some((r) => r.error)) res.notes.push(`agent log tail:\n${rig.agentLog.split("\n").slice(-15).join("\n")}`);
  } catch (e) {
    res.notes.push(`step 1 failed: ${(e as Error).message}${rig ? `\nagent log tail:\n${rig.agentLog.split("\n").slice(-15).join("\n")}` : ""}`);
    progress(`step 1 failed: ${(e as Error).message}`);
  } finally {
    await rig?.stopAgent();
    rig?.removeFiles();
    cleanupAll();
  }
  return res;
}
