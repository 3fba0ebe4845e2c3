// The side-by-side benchmark's report: the "side-by-side" section of bench/RESULTS.md
// (headings from "##") and one SVG plot per metric (bench/plots/<metric>.svg). Pure: takes
// the results, returns text.

import { lineChart, type Series } from "./svg.js";
import { KERNEL_MODES } from "./kernel.js";
import type { Cell, Mode, Report } from "./types.js";

const COLORS: Record<string, string> = {
  none: "#7f7f7f",
  "iptables-legacy": "#e6850e",
  "iptables-nft": "#a6513a",
  nftables: "#1f63b4",
  tapvip: "#1a9a3b",
  "tapvip-store": "#1a9a3b",
};

const LABEL: Record<Mode, string> = {
  none: "none (straight to a backend)",
  "iptables-legacy": "iptables-legacy",
  "iptables-nft": "iptables-nft",
  nftables: "nftables",
  tapvip: "tapvip",
};

export function median(xs: number[]): number {
  const a = xs.filter(Number.isFinite).sort((x, y) => x - y);
  if (!a.length) return NaN;
  return a.length % 2 ? a[(a.length - 1) / 2]! : (a[a.length / 2 - 1]! + a[a.length / 2]!) / 2;
}

/** Nearest-rank quantile, NaN entries (timeouts) counted as +∞. */
export function quantileOf(xs: number[], q: number): number {
  if (!xs.length) return NaN;
  const a = xs.map((x) => (Number.isFinite(x) ? x : Infinity)).sort((x, y) => x - y);
  return a[Math.min(a.length - 1, Math.max(0, Math.ceil(q * a.length) - 1))]!;
}

const int = (v: number) => (Number.isFinite(v) ? Math.round(v).toLocaleString("en-US") : "—");
const ms = (v: number) => (!Number.isFinite(v) ? (v === Infinity ? "timeout" : "—") : v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : int(v));
const us = (v: number) => (Number.isFinite(v) ? v.toFixed(1) : "—");
const gbps = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : "—");
const ratio = (v: number) =>
  !Number.isFinite(v) || v <= 0 ? "—" : v >= 10 ? `${v.toFixed(0)}×` : v >= 1 ? `${v.toFixed(2)}×` : v >= 0.01 ? `${v.toFixed(3)}×` : `1/${int(1 / v)}`;
const nLabel = (n: number) => (n >= 1000 && n % 1000 === 0 ? `${n / 1000}k` : String(n));

interface Row {
  key: string;
  label: string;
  /** Short name for the plot's legend. */
  legend: string;
  color: string;
  dash?: string;
  get: (c: Cell | undefined) => number;
  /** Text of a cell (defaults to the metric's format of get()). */
  text?: (c: Cell | undefined) => string;
}

interface Metric {
  id: string;
  title: string;
  /** Column unit for the table heading and the plot's y label. */
  unit: string;
  yLog: boolean;
  higherIsBetter: boolean;
  fmt: (v: number) => string;
  rows: (modes: Mode[]) => Row[];
  refs?: Array<{ y: number; label: string }>;
  explain: string;
}

function modeRows(modes: Mode[], get: (c: Cell | undefined) => number, text?: (c: Cell | undefined) => string): Row[] {
  return modes.map((m) => ({ key: m, label: LABEL[m], legend: m === "none" ? "none (floor)" : m, color: COLORS[m]!, dash: m === "none" ? "6 4" : undefined, get, text }));
}

export const METRICS: Metric[] = [
  {
    id: "tcp-1-stream", title: "TCP throughput through a ClusterIP, 1 stream", unit: "Gbit/s", yLog: false, higherIsBetter: true, fmt: gbps,
    rows: (modes) => modeRows(modes, (c) => c?.tcp1?.gbps ?? NaN),
    refs: [{ y: 5, label: "target: tapvip ≥ 5 Gbit/s" }],
    explain: "iperf3, receiver's rate.",
  },
  {
    id: "tcp-4-streams", title: "TCP throughput through a ClusterIP, 4 streams", unit: "Gbit/s", yLog: false, higherIsBetter: true, fmt: gbps,
    rows: (modes) => modeRows(modes, (c) => c?.tcp4?.gbps ?? NaN),
    explain: "iperf3 -P 4, receiver's rate.",
  },
  {
    id: "udp-small-frames", title: "Small UDP datagrams received per second", unit: "datagrams/s", yLog: false, higherIsBetter: true, fmt: int,
    rows: (modes) => modeRows(modes, (c) => c?.udp?.receivedPerSec ?? NaN),
    refs: [{ y: 400_000, label: "target: tapvip ≥ 400k/s" }],
    explain: "received = the backend's UDP InDatagrams + RcvbufErrors per second (reached the sink's socket).",
  },
  {
    id: "connect-rate", title: "New TCP connections per second (sequential)", unit: "connections/s", yLog: false, higherIsBetter: true, fmt: int,
    rows: (modes) => modeRows(modes, (c) => c?.conn?.perSec ?? NaN),
    explain: "one client, connect() then close with an RST, one after another, to the last-installed Service.",
  },
  {
    id: "connect-p50", title: "New TCP connection latency, p50", unit: "µs", yLog: false, higherIsBetter: false, fmt: us,
    rows: (modes) => modeRows(modes, (c) => c?.conn?.p50 ?? NaN),
    explain: "each connect() from the call to its return (the handshake through the translation); client in the Setup paragraph.",
  },
  {
    id: "connect-p99", title: "New TCP connection latency, p99", unit: "µs", yLog: false, higherIsBetter: false, fmt: us,
    rows: (modes) => modeRows(modes, (c) => c?.conn?.p99 ?? NaN),
    explain: "as p50.",
  },
  {
    id: "program-all", title: "Programming all Services", unit: "ms", yLog: true, higherIsBetter: false, fmt: ms,
    rows: (modes) => [
      ...modeRows(modes.filter((m) => m !== "none"), (c) => c?.programMs ?? NaN).map((r) =>
        r.key === "tapvip" ? { ...r, label: "tapvip: agent's first full sync (cold)", legend: "tapvip agent, first sync" }
        : r.key.startsWith("iptables") ? { ...r, label: `${r.label}: iptables-restore, replacing the tables` } : r),
      ...modes.filter((m) => m.startsWith("iptables")).map((m): Row => ({
        key: `${m}-noflush`, label: `${m}: iptables-restore --noflush (kube-proxy's way)`, legend: `${m} --noflush`,
        color: COLORS[m]!, dash: "2 3", get: (c) => c?.programNoflushMs ?? NaN,
        text: (c) => (c?.programNoflushMs === Infinity ? "stopped at the cap" : ms(c?.programNoflushMs ?? NaN)),
      })),
      ...(modes.includes("tapvip")
        ? [
          { key: "tapvip-store", label: "tapvip: store → maps, start → ready (in process)", legend: "tapvip store → ready", color: COLORS["tapvip-store"]!, dash: "6 4", get: (c: Cell | undefined) => c?.store?.startToReadyMs ?? NaN },
          { key: "tapvip-store-sync", label: "tapvip: store → maps, the sync alone (in process)", legend: "tapvip store, sync alone", color: "#7fcf8f", dash: "2 3", get: (c: Cell | undefined) => c?.store?.syncMs ?? NaN },
        ]
        : []),
    ],
    refs: [{ y: 100, label: "target: tapvip ≤ 100 ms at 10k" }],
    explain: "kernel: wall time of one `iptables-restore` / `nft -f` of the whole set into the namespace (iptables also with `--noflush`, as kube-proxy calls it, capped); tapvip: the agent's first full sync (its own log), and in process from the SQLite store.",
  },
  {
    id: "endpoint-change", title: "One endpoint change until visible in the dataplane, median", unit: "ms", yLog: true, higherIsBetter: false, fmt: ms,
    rows: (modes) => modeRows(modes.filter((m) => m !== "none"), (c) => median(c?.changeMs ?? []),
      (c) => (c?.changeMs?.length ? `${ms(median(c.changeMs))} (p99 ${ms(quantileOf(c.changeMs, 0.99))})` : "—")),
    refs: [{ y: 1, label: "target: tapvip ≤ 1 ms" }],
    explain: "kernel: wall time of one partial `iptables-restore --noflush` / one `nft -f` transaction (rules are live when it returns); tapvip: store commit → new backend in the maps.",
  },
];

function cellOf(r: Report, mode: Mode, n: number): Cell | undefined {
  return r.cells.find((c) => c.mode === mode && c.services === n);
}

/** The cell a table or plot row reads: rows are modes, or a mode's variant ("tapvip-store", "iptables-nft-noflush"). */
function rowCell(r: Report, row: Row, n: number): Cell | undefined {
  const mode = row.key.startsWith("tapvip") ? "tapvip" : row.key.replace(/-noflush$/, "");
  return cellOf(r, mode as Mode, n);
}

function ranModes(r: Report): Mode[] {
  return r.options.modes.filter((m) => r.cells.some((c) => c.mode === m));
}

export function renderPlots(r: Report): Record<string, string> {
  const out: Record<string, string> = {};
  const modes = ranModes(r);
  for (const m of METRICS) {
    const series: Series[] = m.rows(modes).map((row) => ({
      name: row.legend,
      color: row.color, dash: row.dash,
      points: r.options.services.map((n): [number, number] => [n, row.get(rowCell(r, row, n))]),
    }));
    out[`${m.id}.svg`] = lineChart({ title: m.title, xLabel: "Services installed (log scale)", yLabel: `${m.unit}${m.yLog ? " (log scale)" : ""}`, yLog: m.yLog, series, refs: m.refs });
  }
  return out;
}

function table(r: Report, m: Metric): string {
  const ns = r.options.services;
  const lines = [`| ${m.unit} | ${ns.map((n) => `${nLabel(n)} Services`).join(" | ")} |`, `|---|${ns.map(() => "---:").join("|")}|`];
  for (const row of m.rows(ranModes(r))) {
    const cells = ns.map((n) => {
      const c = rowCell(r, row, n);
      return row.text ? row.text(c) : m.fmt(row.get(c));
    });
    lines.push(`| ${row.label} | ${cells.join(" | ")} |`);
  }
  return lines.join("\n");
}

/** tapvip ÷ mode for the headline metrics. */
function ratios(r: Report): string {
  const ns = r.options.services;
  const kernels = ranModes(r).filter((m) => m !== "tapvip");
  if (!ranModes(r).includes("tapvip") || !kernels.length) return "_(needs tapvip and at least one other mode)_";
  const lines = [`| tapvip ÷ … | ${ns.map((n) => nLabel(n)).join(" | ")} |`, `|---|${ns.map(() => "---:").join("|")}|`];
  const ids = ["tcp-1-stream", "tcp-4-streams", "udp-small-frames", "connect-rate", "connect-p50", "program-all", "endpoint-change"];
  for (const id of ids) {
    const m = METRICS.find((x) => x.id === id)!;
    const rows = m.rows(ranModes(r));
    const tv = rows.find((x) => x.key === "tapvip")!;
    for (const k of kernels) {
      const kr = rows.find((x) => x.key === k);
      if (!kr) continue;
      const vals = ns.map((n) => tv.get(cellOf(r, "tapvip", n)) / kr.get(cellOf(r, k, n)));
      lines.push(`| ${m.title.replace(/ through a ClusterIP/, "")}: ÷ ${k} | ${vals.map(ratio).join(" | ")} |`);
    }
  }
  return lines.join("\n") + "\n\nThroughput and rates: above 1× tapvip is faster; latencies and times: below 1× tapvip is faster.";
}

export interface TargetRow {
  target: string;
  measured: string;
  verdict: "met" | "not met" | "not measured";
}

export function evaluateTargets(r: Report): TargetRow[] {
  const ns = r.options.services;
  const tv = (n: number) => cellOf(r, "tapvip", n);
  const rows: TargetRow[] = [];
  const has = (n: number) => ns.includes(n);
  const verdict = (ok: boolean | null): TargetRow["verdict"] => (ok === null ? "not measured" : ok ? "met" : "not met");
  const all = (f: (n: number) => number) => ns.map((n) => ({ n, v: f(n) }));

  // 1. TCP single stream
  {
    const v = all((n) => tv(n)?.tcp1?.gbps ?? NaN);
    const kern = (n: number) => Math.max(...KERNEL_MODES.map((k) => cellOf(r, k, n)?.tcp1?.gbps ?? NaN).filter(Number.isFinite));
    const ok = v.every((x) => Number.isFinite(x.v)) ? v.every((x) => x.v >= 5) : null;
    rows.push({
      target: "≥ 5 Gbit/s single-stream TCP through a ClusterIP (about 0.3× the kernel path in the same run)",
      measured: v.map((x) => `${nLabel(x.n)}: ${gbps(x.v)} Gbit/s (${ratio(x.v / kern(x.n))} of the best kernel mode)`).join("; "),
      verdict: verdict(ok),
    });
  }
  // 2. UDP
  {
    const v = all((n) => tv(n)?.udp?.receivedPerSec ?? NaN);
    const ok = v.every((x) => Number.isFinite(x.v)) ? v.every((x) => x.v >= 400_000) : null;
    const floor = ns.map((n) => cellOf(r, "none", n)?.udp?.receivedPerSec ?? NaN).filter(Number.isFinite);
    const floorMax = floor.length ? Math.max(...floor) : NaN;
    const floorText = Number.isFinite(floorMax)
      ? `; the floor (no translation) received at most ${int(floorMax)}/s${floorMax < 400_000 ? " — below the target itself: the sender and the kernel's forwarding on this machine, not the translation, bound the offered load" : ""}`
      : "";
    rows.push({ target: "≥ 400k small UDP frames/s", measured: v.map((x) => `${nLabel(x.n)}: ${int(x.v)}/s`).join("; ") + floorText, verdict: verdict(ok) });
  }
  // 3. connect latency
  {
    const hi = Math.max(...ns);
    const lo = Math.min(...ns);
    const t10k = tv(10_000)?.conn?.p50 ?? NaN;
    const n10k = cellOf(r, "nftables", 10_000)?.conn?.p50 ?? NaN;
    const ok = has(10_000) && Number.isFinite(t10k) && Number.isFinite(n10k) ? t10k <= 1.5 * n10k : null;
    rows.push({
      target: "new-connection p50 at 10k Services within 1.5× of nftables mode in the same run",
      measured: has(10_000) ? `tapvip ${us(t10k)} µs, nftables ${us(n10k)} µs: ${ratio(t10k / n10k)}` : "10k not run",
      verdict: verdict(ok),
    });
    const a = tv(lo)?.conn?.p50 ?? NaN;
    const b = tv(hi)?.conn?.p50 ?? NaN;
    const flat = hi > lo && Number.isFinite(a) && Number.isFinite(b) ? b <= 1.25 * a : null;
    rows.push({
      target: `…and flat from 10 to 10k Services (here: p50 at ${nLabel(hi)} ≤ 1.25× p50 at ${nLabel(lo)})`,
      measured: ns.map((n) => `${nLabel(n)}: ${us(tv(n)?.conn?.p50 ?? NaN)} µs`).join("; ") + (hi > lo ? ` (${ratio(b / a)})` : ""),
      verdict: verdict(lo === 10 && hi === 10_000 ? flat : null),
    });
  }
  // 4. full sync
  {
    const t = tv(10_000);
    const agent = t?.programMs ?? NaN;
    const warm = t?.store?.startToReadyMs ?? NaN;
    const ok = has(10_000) && Number.isFinite(agent) ? agent <= 100 : null;
    rows.push({
      target: "full sync of 10k Services into the maps ≤ 100 ms",
      measured: has(10_000) ? `agent's first full sync ${ms(agent)} ms (in process from the store: ${ms(warm)} ms start → ready, ${ms(t?.store?.syncMs ?? NaN)} ms the sync alone)` : "10k not run",
      verdict: verdict(ok),
    });
    for (const k of ["iptables-legacy", "iptables-nft"] as const) {
      const ipt = cellOf(r, k, 10_000)?.programMs ?? NaN;
      const ok5 = has(10_000) && Number.isFinite(agent) && Number.isFinite(ipt) ? ipt / agent >= 5 : null;
      const nf = cellOf(r, k, 10_000)?.programNoflushMs ?? NaN;
      const nfText = nf === Infinity ? `; with --noflush, kube-proxy's way: stopped at the ${r.options.noflushCap} s cap` : Number.isFinite(nf) ? `; with --noflush, kube-proxy's way: ${ms(nf)} ms, ${ratio(nf / agent)}` : "";
      rows.push({
        target: `…≥ 5× faster than ${k}-restore of the equivalent rules in the same run`,
        measured: has(10_000) ? `${k}-restore replacing the tables ${ms(ipt)} ms ÷ tapvip ${ms(agent)} ms = ${ratio(ipt / agent)}${nfText}` : "10k not run",
        verdict: verdict(ok5),
      });
    }
  }
  // 5. endpoint change
  {
    const v = all((n) => median(tv(n)?.changeMs ?? []));
    const p99 = all((n) => quantileOf(tv(n)?.changeMs ?? [], 0.99));
    const ok = v.every((x) => Number.isFinite(x.v)) ? v.every((x) => x.v <= 1) : null;
    rows.push({
      target: "one endpoint change visible in the dataplane ≤ 1 ms after the store commits it (median)",
      measured: v.map((x, i) => `${nLabel(x.n)}: ${ms(x.v)} ms (p99 ${ms(p99[i]!.v)})`).join("; "),
      verdict: verdict(ok),
    });
  }
  return rows;
}

function details(r: Report): string {
  const out: string[] = [];
  for (const n of r.options.services) {
    for (const m of ranModes(r)) {
      const c = cellOf(r, m, n);
      if (!c) continue;
      const parts: string[] = [];
      if (c.rules !== undefined) parts.push(`${int(c.rules)} rules, ${int((c.bytes ?? 0) / 1024)} KiB loaded; one change ${int((c.changeBytes ?? 0) / 1024)} KiB`);
      if (c.udp) parts.push(`UDP sent ${int(c.udp.sentPerSec)}/s, received ${int(c.udp.receivedPerSec)}/s (${c.udp.sender}, ${c.udp.flows} flows)`);
      if (c.tcp1) parts.push(`TCP×1 retransmits ${int(c.tcp1.retransmits)}`);
      if (c.conn) parts.push(`connects ${int(c.conn.connects)} in ${c.conn.seconds.toFixed(1)} s, ${int(c.conn.failures)} failed, mean ${us(c.conn.mean)} µs, p90 ${us(c.conn.p90)} µs`);
      if (c.agent) {
        parts.push(`agent up in ${ms(c.agent.startMs)} ms, first full sync ${ms(c.agent.firstSyncMs)} ms`);
        if (c.agent.udpCpuShare !== undefined) parts.push(`agent CPU during UDP ${(c.agent.udpCpuShare * 100).toFixed(0)} % of a core, TAP queue drops ${int((c.agent.udpTapDrops ?? NaN) / Math.max(1e-9, c.udp?.seconds ?? 1))}/s`);
      }
      if (c.store) parts.push(`store: ${int(c.services * 2)} objects written in ${ms(c.store.loadMs)} ms, commit median ${ms(median(c.store.commitMs))} ms${c.store.timeouts ? `, ${c.store.timeouts} changes not seen within 2 s` : ""}`);
      for (const e of c.errors) parts.push(`**error**: ${e.replace(/\n/g, " ⏎ ")}`);
      out.push(`- ${nLabel(n)} Services, ${m} (${c.wallSeconds.toFixed(0)} s): ${parts.join("; ")}`);
    }
  }
  return out.join("\n");
}

export function renderReport(r: Report): string {
  const m = r.machine;
  const load = (l: number[]) => l.map((x) => x.toFixed(2)).join(" ");
  const o = r.options;
  const md: string[] = [];
  md.push(`## Side by side: tapvip and the kernel doing kube-proxy's translation (issue #6)`);
  md.push("");
  md.push(`Written by \`bench/sidebyside.ts\`. Command (as root):`);
  md.push("");
  md.push("```sh");
  md.push(r.command);
  md.push("```");
  md.push("");
  md.push(`### Machine`);
  md.push("");
  md.push(`- ${m.date}; ${m.cpu}, ${m.cores} cores, ${m.memGiB.toFixed(1)} GiB; kernel ${m.kernel}; Node ${m.node}`);
  md.push(`- ${Object.entries(r.tools).map(([k, v]) => `${k}: \`${v}\``).join("; ")}`);
  md.push(`- \`iptables\` here is the ${/nf_tables/.test(r.tools.iptables ?? "") ? "nf_tables backend (iptables-nft)" : /legacy/.test(r.tools.iptables ?? "") ? "legacy backend (iptables-legacy)" : "—"}; both backends were measured as separate modes when installed.`);
  md.push(`- Load average at start ${load(m.loadStart)}, at end ${load(r.loadEnd)}; all CPUs ${(r.busyShare * 100).toFixed(0)} % busy over the ${r.wallSeconds.toFixed(0)} s run (everything on the machine, this benchmark included).`);
  if (r.build) md.push(`- tapvip: ${r.build}`);
  md.push(`- IPVS mode: not measured — this kernel has no IPVS (\`/proc/net/ip_vs\` is absent and modules cannot be loaded).`);
  if (r.skipped.length) md.push(`- Modes not run: ${r.skipped.map((s) => `${s.mode} (${s.why})`).join("; ")}`);
  if (m.loadStart[0]! > 0.5 || r.loadEnd[0]! > 1.5) {
    md.push("");
    md.push(`> Other work was running on this ${m.cores}-core machine during the run: absolute numbers are lower and noisier than on an idle machine; the ratios between modes, measured one after another in the same run, are the steadier figures.`);
  }
  md.push("");
  md.push(`### Setup`);
  md.push("");
  md.push(`One topology, built afresh for every mode and number of Services (so no mode inherits another's netfilter hooks or conntrack): client namespace → node namespace (forwarding; the mode's translation) → backend namespace with two backend addresses (10.244.2.10, .11) serving iperf3, a UDP sink that never reads and a TCP accept-and-close server. For each N, N Services are installed: N−1 fillers (one TCP port, two endpoints each, every tenth with ClientIP affinity) and, last, the probed Service (three ports, both backends). All traffic goes to the probed (last-installed) Service's ClusterIP.`);
  md.push("");
  md.push(`- **none**: straight to a backend address, no translation (the floor).`);
  md.push(`- **iptables-legacy / iptables-nft**: kube-proxy's iptables-mode structure (KUBE-SERVICES → KUBE-SVC-… with \`statistic --mode random\` → KUBE-SEP-… DNAT, \`recent\` for affinity, KUBE-MARK-MASQ / KUBE-POSTROUTING, KUBE-FORWARD), loaded with \`iptables-restore\` replacing the tables and, in a separate namespace, with \`--noflush\` as kube-proxy calls it (stopped after ${o.noflushCap} s); an endpoint change is kube-proxy's partial sync (top-level chains in full, the changed Service's chains, the departed endpoint's chain deleted).`);
  md.push(`- **nftables**: kube-proxy's nftables-mode structure (table \`ip kube-proxy\`: \`ip daddr . meta l4proto . th dport vmap @service-ips\` → service chains with \`numgen random mod N vmap\` → endpoint chains with \`dnat\`, affinity sets), loaded with \`nft -f\`; an endpoint change is one transaction.`);
  md.push(`- **tapvip**: \`tapvip run\` on a TAP in the node namespace with the same Services from \`--manifests\` (defaults${o.tapvipArgs.length ? `, plus \`${o.tapvipArgs.join(" ")}\`` : ""}); programming and endpoint changes are also measured in this process from the embedded SQLite store (commit with fsync) through the agent's proxier into the WASM maps.`);
  md.push("");
  const first = r.cells.find((c) => c.udp && c.conn);
  md.push(`Clients: small UDP from ${first?.udp?.sender ?? "—"}; new connections from ${first?.conn?.client ?? "—"}` +
    `${first?.conn?.client === "tcpconnect (C)" ? " (a blocking connect() timed with CLOCK_MONOTONIC, then close with SO_LINGER 0)" : " (Node: its event loop adds ~100 µs to every connect on the development VM)"}.`);
  md.push("");
  md.push(`Per measurement: TCP ${o.tcpSeconds} s per iperf3 run; UDP ${o.udpSeconds} s of ${o.udpPayload}-byte payloads over ${o.udpFlows} flows; new connections for ${o.connSeconds} s; ${o.changes} endpoint changes per mode and N. ${o.quick ? "**Quick run** (shorter durations)." : ""}`);
  md.push("");
  md.push(`### Targets (tapvip)`);
  md.push("");
  md.push(`| Target | Measured | |`);
  md.push(`|---|---|---|`);
  for (const t of evaluateTargets(r)) md.push(`| ${t.target} | ${t.measured} | ${t.verdict === "met" ? "met" : `**${t.verdict}**`} |`);
  md.push("");
  md.push(`### Results`);
  md.push("");
  for (const x of METRICS) {
    md.push(`#### ${x.title}`);
    md.push("");
    md.push(`${x.explain} Plot: [plots/${x.id}.svg](plots/${x.id}.svg)`);
    md.push("");
    md.push(table(r, x));
    md.push("");
  }
  md.push(`### Ratios`);
  md.push("");
  md.push(ratios(r));
  md.push("");
  md.push(`### Plots`);
  md.push("");
  for (const x of METRICS) md.push(`![${x.title}](plots/${x.id}.svg)`);
  md.push("");
  md.push(`### Notes`);
  md.push("");
  md.push(`- What each programming time covers. Kernel modes: the tool's process from start to exit with a ready rule file (kube-proxy's own work — watching, diffing, writing the text — is not in it). tapvip: the proxier's sync from its object caches into the maps (the agent's first full sync, from its \`-v\` log), and in this process from the SQLite store: \`proxier.start()\` → ready (list + sync). One endpoint change for tapvip runs from the store's commit returning to the new backend being in the maps: watch delivery, the proxier's bounded-frequency timer (50 ms minimum interval; each change meets an idle timer) and the partial sync.`);
  const big = r.cells.filter((c) => c.mode === "tapvip" && c.agent).map((c) => `${nLabel(c.services)}: ${(c.agent!.startMs / 1000).toFixed(1)} s`);
  if (big.length) md.push(`- \`tapvip run --manifests\` from spawn to serving (reading, defaulting and validating the objects, opening the TAP, node networking, the first sync): ${big.join(", ")}.`);
  md.push(`- nftables programming time grows faster than linearly with the number of Services and is spent in the kernel: measured separately on the development VM, loading this rule set for 4,000 Services took 13 s of system time with the per-service anonymous \`numgen random mod N vmap { … }\` sets and 0.7 s with a plain \`goto\` in their place — the cost is in adding thousands of anonymous sets in one transaction.`);
  md.push(`- iptables: every new connection walks KUBE-SERVICES rule by rule (the probed Service is the last), so connect latency grows with N; an endpoint change rewrites all of KUBE-SERVICES (kube-proxy's partial sync), so its cost grows with N too.`);
  md.push("");
  md.push(`### Details per run`);
  md.push("");
  md.push(details(r));
  md.push("");
  return md.join("\n");
}
