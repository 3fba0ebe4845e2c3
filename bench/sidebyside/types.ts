// Results of the side-by-side benchmark, shared by the runner (bench/sidebyside.ts) and the
// report (report.ts).

import type { Machine } from "../node-sys.js";
import type { KernelMode } from "./kernel.js";
import type { ConnectResult, TcpResult, UdpResult } from "./traffic.js";

export type Mode = "none" | KernelMode | "tapvip";
export const ALL_MODES: Mode[] = ["none", "iptables-legacy", "iptables-nft", "nftables", "tapvip"];

export interface Cell {
  mode: Mode;
  services: number;
  /** Address the traffic went to (a backend for none, else the probe's ClusterIP). */
  target: string;
  /** Full programming: restore / nft -f wall time; tapvip: the agent's first full sync. ms */
  programMs?: number;
  /** iptables modes: the same full load with --noflush (kube-proxy's way), in a throwaway namespace; Infinity past the cap. ms */
  programNoflushMs?: number;
  /** Kernel modes: rules and bytes loaded. */
  rules?: number;
  bytes?: number;
  /** Endpoint changes, ms each (kernel: one partial restore each; tapvip: commit → maps). */
  changeMs?: number[];
  changeBytes?: number;
  tcp1?: TcpResult;
  tcp4?: TcpResult;
  udp?: UdpResult;
  conn?: ConnectResult;
  /** tapvip: the live agent. */
  agent?: {
    startMs: number;
    firstSyncMs: number;
    /** CPU of the agent during the UDP run, share of one core; TAP queue drops during it. */
    udpCpuShare?: number;
    udpTapDrops?: number;
    args: string[];
  };
  /** tapvip: the in-process store → maps measurement. */
  store?: {
    loadMs: number;
    startToReadyMs: number;
    syncMs: number;
    commitMs: number[];
    timeouts: number;
  };
  errors: string[];
  wallSeconds: number;
}

export interface RunOptions {
  services: number[];
  modes: Mode[];
  quick: boolean;
  tcpSeconds: number;
  udpSeconds: number;
  connSeconds: number;
  changes: number;
  /** Cap on the --noflush full iptables load, s. */
  noflushCap: number;
  udpFlows: number;
  udpPayload: number;
  /** Use the Node connect client instead of tcpconnect.c. */
  connectNode: boolean;
  tapvipArgs: string[];
  write: boolean;
}

export interface Report {
  machine: Machine;
  loadEnd: number[];
  busyShare: number;
  wallSeconds: number;
  command: string;
  options: RunOptions;
  tools: Record<string, string>;
  /** The tapvip build measured: commit and uncommitted changes. */
  build?: string;
  /** Modes asked for but not run, with the reason. */
  skipped: Array<{ mode: Mode; why: string }>;
  cells: Cell[];
}
