// Programming the kernel modes of the side-by-side benchmark in the node namespace, timed:
// the full rule set with one `iptables-restore` / `nft -f`, and one endpoint change as
// kube-proxy's partial sync writes it (`iptables-restore --noflush` / one `nft -f` transaction).
// The time is the wall time of the tool's process (start to exit, so process start-up and the
// kernel commit are in it, as they are for kube-proxy), taken by bash's $EPOCHREALTIME around
// it inside the namespace — `ip netns exec` itself is not counted. When the tool exits the rules
// are in the kernel: that is when a change is visible in the dataplane.
//
// The full iptables load is measured twice: replacing the tables (`iptables-restore`, the
// fastest way the tool loads a set into an empty namespace: the main figure), and the way
// kube-proxy always calls it, `--noflush`, in a throwaway namespace with a time cap — with
// iptables-nft 1.8.9 a --noflush load of thousands of new chains takes time that grows about
// quadratically with their number (user time in iptables-nft-restore; 10k Services did not
// finish within 5 minutes on the development VM), while the legacy backend does not care.

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { hasCommand, nsRun, run } from "./netns.js";
import * as ipt from "./iptables.js";
import * as nft from "./nftables.js";
import { endpointChange, type ServiceModel } from "./model.js";

export type KernelMode = "iptables-legacy" | "iptables-nft" | "nftables";
export const KERNEL_MODES: KernelMode[] = ["iptables-legacy", "iptables-nft", "nftables"];

/** The command that loads a file, per mode (iptables: --noflush keeps what the file does not name). */
function loader(mode: KernelMode, file: string, noflush = true): string[] {
  if (mode === "nftables") return ["nft", "-f", file];
  // "-w 60": wait for the xtables lock (a bare -w would take the file name as its argument).
  return [`${mode}-restore`, "-w", "60", ...(noflush ? ["--noflush"] : []), file];
}

/** Why a kernel mode cannot run here, or null. */
export function kernelModeUnavailable(mode: KernelMode): string | null {
  if (mode === "nftables") return hasCommand("nft") ? null : "nft is not installed (apt package nftables)";
  return hasCommand(`${mode}-restore`) ? null : `${mode}-restore is not installed (apt package iptables)`;
}

const TIMED = `s=$EPOCHREALTIME; "$@"; rc=$?; e=$EPOCHREALTIME; echo "tvsb-time $s $e"; exit $rc`;

/**
 * Runs cmd in ns, timed inside the namespace; ms, or throws with the tool's error. With
 * `capSeconds` the tool is killed (SIGKILL, by coreutils timeout) at the cap and Infinity returned.
 */
export function timed(ns: string, cmd: string[], capSeconds?: number): number {
  const full = capSeconds ? ["timeout", "-s", "KILL", String(capSeconds), ...cmd] : cmd;
  const r = nsRun(ns, ["env", "LC_ALL=C", "bash", "-c", TIMED, "bash", ...full], { timeoutMs: ((capSeconds ?? 600) + 60) * 1000 });
  const m = /tvsb-time (\d+\.\d+) (\d+\.\d+)/.exec(r.stdout);
  if (capSeconds && r.status === 137) return Infinity;
  if (r.status !== 0 || !m) throw new Error(`${cmd.join(" ")} failed (${r.status}): ${r.stderr.trim().slice(0, 500)}`);
  return (Number(m[2]) - Number(m[1])) * 1000;
}

export interface ProgramResult {
  ms: number;
  rules: number;
  bytes: number;
}

export function fullText(mode: KernelMode, model: ServiceModel[]): string {
  return mode === "nftables" ? nft.fullRestore(model) : ipt.fullRestore(model);
}

/**
 * Loads the whole set into `ns` (which has none of it). iptables: replacing the tables unless
 * `noflush`; with `capSeconds`, Infinity when the load did not finish in time.
 */
export function programAll(mode: KernelMode, ns: string, model: ServiceModel[], dir: string, o: { noflush?: boolean; capSeconds?: number } = {}): ProgramResult {
  const text = fullText(mode, model);
  const file = join(dir, `${mode}-full.rules`);
  writeFileSync(file, text);
  const ms = timed(ns, loader(mode, file, o.noflush ?? false), o.capSeconds);
  return { ms, rules: mode === "nftables" ? nft.ruleCount(text) : ipt.ruleCount(text), bytes: Buffer.byteLength(text) };
}

export interface ChangeResult {
  /** ms per change, in order. */
  ms: number[];
  /** Size of one change's input. */
  bytes: number;
}

/**
 * `count` endpoint changes of svc-0 (its second endpoint replaced by a fresh address each time),
 * each written and loaded as kube-proxy's partial sync would; mutates `model` to the last state.
 */
export async function endpointChanges(mode: KernelMode, ns: string, model: ServiceModel[], dir: string, count: number, spacingMs = 50): Promise<ChangeResult> {
  const ms: number[] = [];
  let bytes = 0;
  for (let k = 0; k < count; k++) {
    const before = model[0]!;
    model[0] = endpointChange(before, k);
    const text = mode === "nftables" ? nft.changeRestore(model, 0, before) : ipt.changeRestore(model, 0, before);
    bytes = Buffer.byteLength(text);
    const file = join(dir, `${mode}-change-${k}.rules`);
    writeFileSync(file, text);
    ms.push(timed(ns, loader(mode, file)));
    await new Promise((r) => setTimeout(r, spacingMs));
  }
  return { ms, bytes };
}

/** What is installed: versions and which backend the plain `iptables` command uses. */
export function toolVersions(): Record<string, string> {
  const v = (cmd: string, args: string[]) => {
    if (!hasCommand(cmd)) return "not installed";
    const r = run(cmd, args);
    return (r.stdout + r.stderr).trim().split("\n")[0] ?? "?";
  };
  return {
    iptables: v("iptables", ["-V"]),
    "iptables-legacy": v("iptables-legacy", ["-V"]),
    "iptables-nft": v("iptables-nft", ["-V"]),
    nft: v("nft", ["-v"]),
    iperf3: v("iperf3", ["-v"]),
  };
}
