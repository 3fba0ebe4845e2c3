// Small helpers for bench/node.ts: the machine, CPU time of a process, counters read inside a
// namespace (UDP MIB from /proc/net/snmp, link statistics), and statistics over samples.

import { readFileSync } from "node:fs";
import { cpus, loadavg, release, totalmem } from "node:os";
import { nsExec, nsIp } from "../src/host/netns.js";

export interface Machine {
  cpu: string;
  cores: number;
  kernel: string;
  node: string;
  memGiB: number;
  loadStart: number[];
  date: string;
}

export function machine(): Machine {
  return {
    cpu: cpus()[0]?.model ?? "unknown",
    cores: cpus().length,
    kernel: release(),
    node: process.version,
    memGiB: totalmem() / 2 ** 30,
    loadStart: loadavg(),
    date: new Date().toISOString(),
  };
}

/** Busy and total jiffies of all CPUs (/proc/stat), for "how busy was the machine". */
export function cpuJiffies(): { busy: number; total: number } {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  const idle = f[3]! + f[4]!;
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

const HZ = 100; // USER_HZ: /proc/<pid>/stat times are in 1/100 s on Linux

/** User and system CPU seconds a process has used (all its threads). */
export function procCpu(pid: number): { user: number; sys: number } {
  const s = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = s.slice(s.lastIndexOf(")") + 2).split(" "); // fields from 3 (state) on
  return { user: Number(f[11]) / HZ, sys: Number(f[12]) / HZ };
}

/** The UDP MIB of a namespace (/proc/net/snmp, "Udp:" lines) as name → value. */
export function udpMib(ns: string): Record<string, number> {
  const lines = nsExec(ns, ["cat", "/proc/net/snmp"]).split("\n").filter((l) => l.startsWith("Udp:"));
  const names = lines[0]!.split(/\s+/).slice(1);
  const vals = lines[1]!.split(/\s+/).slice(1).map(Number);
  return Object.fromEntries(names.map((n, i) => [n, vals[i]!]));
}

export interface LinkStats {
  rxPackets: number;
  rxDropped: number;
  txPackets: number;
  txDropped: number;
}

/** Packet counters of a link in a namespace (`ip -s -j link`). */
export function linkStats(ns: string, dev: string): LinkStats {
  const j = JSON.parse(nsIp(ns, ["-s", "-j", "link", "show", "dev", dev])) as Array<{ stats64: { rx: Record<string, number>; tx: Record<string, number> } }>;
  const s = j[0]!.stats64;
  return { rxPackets: s.rx.packets!, rxDropped: s.rx.dropped!, txPackets: s.tx.packets!, txDropped: s.tx.dropped! };
}

/** The one non-loopback link of a pod namespace. */
export function podLink(ns: string): string {
  const j = JSON.parse(nsIp(ns, ["-j", "link", "show"])) as Array<{ ifname: string }>;
  const l = j.find((x) => x.ifname !== "lo");
  if (!l) throw new Error(`no link in ${ns}`);
  return l.ifname;
}

export function delta<T extends object>(a: T, b: T): T {
  const out: Record<string, number> = {};
  for (const k of Object.keys(a)) out[k] = (b as Record<string, number>)[k]! - (a as Record<string, number>)[k]!;
  return out as T;
}

/** q-quantile (0..1) of sorted values, nearest rank. */
export function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function fmtInt(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "—";
}

export function fmt(n: number, digits = 2): string {
  return Number.isFinite(n) ? n.toFixed(digits) : "—";
}

export function progress(line: string): void {
  const t = process.uptime().toFixed(1).padStart(6);
  console.log(`[${t} s] ${line}`);
}
