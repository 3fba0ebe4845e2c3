// Traffic of the side-by-side benchmark, from the client namespace to a target address:
//   - TCP throughput: iperf3 -c, 1 or 4 streams, -J (receiver's bits/s);
//   - small UDP: udpblast.c (sendmmsg, compiled here at run time with the system C compiler),
//     or, without a compiler, a Node dgram sender; counted by the kernels: sent = the client's
//     UDP OutDatagrams, received = the backend's UDP InDatagrams + RcvbufErrors (datagrams that
//     reached the sink's socket: translation and checksums were right);
//   - new TCP connections: tcpconnect.c (compiled the same way), sequential blocking connect()
//     → close with an RST (no TIME_WAIT piles up) for a fixed time, each connect() timed with
//     CLOCK_MONOTONIC; connections/s and latency quantiles. A Node client doing the same is the
//     fallback (--connect-client node): on the development VM its event loop adds ~80–150 µs
//     to every connect (p50 ~110–180 µs against the C client's ~30 µs straight to a backend),
//     more than the differences between the modes, so it is not the default.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { benchDir } from "../results-file.js";
import { hasCommand, nsMust, nsRun, run } from "./netns.js";

export interface TcpResult {
  streams: number;
  seconds: number;
  gbps: number;
  retransmits: number;
  error?: string;
}

export function iperfTcp(clientNs: string, target: string, port: number, streams: number, seconds: number): TcpResult {
  const r = nsRun(clientNs, ["iperf3", "-c", target, "-p", String(port), "-t", String(seconds), "-P", String(streams), "-J"], { timeoutMs: (seconds + 30) * 1000 });
  try {
    const j = JSON.parse(r.stdout) as { error?: string; end: { sum_received: { bits_per_second: number; seconds: number }; sum_sent: { retransmits?: number } } };
    if (j.error) throw new Error(j.error);
    return { streams, seconds: j.end.sum_received.seconds, gbps: j.end.sum_received.bits_per_second / 1e9, retransmits: j.end.sum_sent.retransmits ?? 0 };
  } catch (e) {
    return { streams, seconds: 0, gbps: NaN, retransmits: 0, error: `iperf3 (${r.status}): ${(e as Error).message} ${r.stderr.trim().slice(0, 300)}` };
  }
}

/** The UDP MIB of a namespace (/proc/net/snmp, "Udp:" lines). */
export function udpMib(ns: string): Record<string, number> {
  const lines = nsMust(ns, ["cat", "/proc/net/snmp"]).split("\n").filter((l) => l.startsWith("Udp:"));
  const names = lines[0]!.split(/\s+/).slice(1);
  const vals = lines[1]!.split(/\s+/).slice(1).map(Number);
  return Object.fromEntries(names.map((n, i) => [n, vals[i]!]));
}

export type UdpSender = "udpblast (C, sendmmsg)" | "node dgram";

export interface UdpResult {
  sender: UdpSender;
  flows: number;
  payload: number;
  seconds: number;
  sentPerSec: number;
  receivedPerSec: number;
  sendErrors: number;
  error?: string;
}

const tools = new Map<string, string | null>();
let toolDir: string | null = null;

/**
 * Compiles bench/sidebyside/<name>.c once per process into a temporary directory (removed at
 * exit); the binary's path, or null when there is no C compiler or it fails.
 */
export function cTool(name: "udpblast" | "tcpconnect"): string | null {
  if (tools.has(name)) return tools.get(name)!;
  const cc = ["cc", "gcc", "clang"].find(hasCommand);
  if (!cc) {
    tools.set(name, null);
    return null;
  }
  if (!toolDir) {
    const dir = mkdtempSync(join(tmpdir(), "tvsb-tools-"));
    toolDir = dir;
    process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  }
  const out = join(toolDir, name);
  const r = run(cc, ["-O2", "-o", out, join(benchDir(), "sidebyside", `${name}.c`)]);
  if (r.status !== 0) process.stderr.write(`${name}.c did not compile (${r.stderr.trim().slice(0, 300)}); using the Node fallback\n`);
  tools.set(name, r.status === 0 ? out : null);
  return tools.get(name)!;
}

/** The UDP sender: true when udpblast.c compiled. */
export function udpBlaster(): string | null {
  return cTool("udpblast");
}

const NODE_SENDER = `
const dgram = require("dgram");
const [host, port, secs, len, flows] = process.argv.slice(1);
const buf = Buffer.alloc(Number(len), 0x61);
let errors = 0, ready = 0;
const socks = Array.from({ length: Number(flows) }, () => dgram.createSocket("udp4"));
const end = Date.now() + Number(secs) * 1000;
const t0 = process.hrtime.bigint();
function go() {
  if (Date.now() >= end) {
    console.log(JSON.stringify({ errors, seconds: Number(process.hrtime.bigint() - t0) / 1e9 }));
    socks.forEach((s) => s.close());
    return;
  }
  for (const s of socks) for (let i = 0; i < 64; i++) s.send(buf);
  setImmediate(go);
}
for (const s of socks) {
  s.on("error", () => errors++);
  s.connect(Number(port), host, () => { if (++ready === socks.length) go(); });
}`;

export function udpBlast(clientNs: string, backendNs: string, target: string, port: number, o: { seconds: number; payload: number; flows: number }): UdpResult {
  const b = udpBlaster();
  const sender: UdpSender = b ? "udpblast (C, sendmmsg)" : "node dgram";
  const c0 = udpMib(clientNs);
  const b0 = udpMib(backendNs);
  const args = [target, String(port), String(o.seconds), String(o.payload), String(o.flows)];
  const r = b
    ? nsRun(clientNs, [b, ...args], { timeoutMs: (o.seconds + 30) * 1000 })
    : nsRun(clientNs, ["node", "-e", NODE_SENDER, ...args], { timeoutMs: (o.seconds + 30) * 1000 });
  const c1 = udpMib(clientNs);
  const b1 = udpMib(backendNs);
  let seconds = o.seconds;
  let error: string | undefined;
  try {
    seconds = (JSON.parse(r.stdout.trim().split("\n").pop()!) as { seconds: number }).seconds;
  } catch {
    error = `sender failed (${r.status}): ${r.stderr.trim().slice(0, 300)}`;
  }
  const d = (a: Record<string, number>, z: Record<string, number>, k: string) => (z[k] ?? 0) - (a[k] ?? 0);
  return {
    sender, flows: o.flows, payload: o.payload, seconds,
    sentPerSec: d(c0, c1, "OutDatagrams") / seconds,
    receivedPerSec: (d(b0, b1, "InDatagrams") + d(b0, b1, "RcvbufErrors")) / seconds,
    sendErrors: d(c0, c1, "SndbufErrors"), error,
  };
}

export type ConnectClient = "tcpconnect (C)" | "node net";

export interface ConnectResult {
  client: ConnectClient;
  seconds: number;
  connects: number;
  failures: number;
  perSec: number;
  /** µs */
  p50: number;
  p90: number;
  p99: number;
  mean: number;
  error?: string;
}

const CONNECT_CLIENT = `
const net = require("net");
const [host, port, secs] = process.argv.slice(1);
const lat = [];
let failures = 0;
const t0 = process.hrtime.bigint();
const end = t0 + BigInt(Math.round(Number(secs) * 1e9));
function one() {
  const s0 = process.hrtime.bigint();
  if (s0 >= end) return report();
  const s = net.connect({ host, port: Number(port) });
  s.setTimeout(1000);
  let done = false;
  const next = (ok) => {
    if (done) return;
    done = true;
    if (ok) lat.push(Number(process.hrtime.bigint() - s0) / 1000);
    else failures++;
    if (ok) s.resetAndDestroy(); else s.destroy();
    setImmediate(one);
  };
  s.once("connect", () => next(true));
  s.once("error", () => next(false));
  s.once("timeout", () => next(false));
}
function report() {
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  lat.sort((a, b) => a - b);
  const q = (p) => lat.length ? lat[Math.min(lat.length - 1, Math.max(0, Math.ceil(p * lat.length) - 1))] : NaN;
  const mean = lat.reduce((a, b) => a + b, 0) / Math.max(1, lat.length);
  console.log(JSON.stringify({ seconds, connects: lat.length, failures, p50: q(0.5), p90: q(0.9), p99: q(0.99), mean }));
}
one();`;

/** Sequential new connections for `seconds`; the C client unless `node` is asked for (or there is no compiler). */
export function connectTest(clientNs: string, target: string, port: number, seconds: number, o: { node?: boolean } = {}): ConnectResult {
  const c = o.node ? null : cTool("tcpconnect");
  const client: ConnectClient = c ? "tcpconnect (C)" : "node net";
  const args = [target, String(port), String(seconds)];
  const r = c
    ? nsRun(clientNs, [c, ...args], { timeoutMs: (seconds + 60) * 1000 })
    : nsRun(clientNs, ["node", "-e", CONNECT_CLIENT, ...args], { timeoutMs: (seconds + 60) * 1000 });
  try {
    const j = JSON.parse(r.stdout.trim().split("\n").pop()!) as Omit<ConnectResult, "perSec" | "client">;
    const nan = (v: number) => (v < 0 ? NaN : v);
    return { ...j, client, p50: nan(j.p50), p90: nan(j.p90), p99: nan(j.p99), mean: nan(j.mean), perSec: j.connects / j.seconds };
  } catch {
    return { client, seconds: 0, connects: 0, failures: 0, perSec: NaN, p50: NaN, p90: NaN, p99: NaN, mean: NaN, error: `connect client failed (${r.status}): ${r.stderr.trim().slice(0, 300)}` };
  }
}

/** One connect to target:port from the client namespace within `ms`: true when it was accepted. */
export function canConnect(clientNs: string, target: string, port: number, ms = 2000): boolean {
  const js = `const s = require("net").connect({ host: "${target}", port: ${port} }); s.setTimeout(${ms});
s.on("connect", () => { console.log("ok"); s.destroy(); }); s.on("error", () => process.exit(1)); s.on("timeout", () => process.exit(1));`;
  return nsRun(clientNs, ["node", "-e", js], { timeoutMs: ms + 10_000 }).stdout.includes("ok");
}
