// Side by side (issue #6): tapvip and the kernel doing the same Service translation the way
// kube-proxy does it — iptables mode (legacy and nf_tables backends), nftables mode — and no
// translation at all (the floor), on one namespace topology, in one run, for 10 / 1k / 10k
// installed Services: TCP throughput (1 and 4 streams), small UDP datagrams/s, new TCP
// connections/s and connect latency to the last-installed Service, time to program all
// Services, time of one endpoint change. Writes the "side-by-side" section of bench/RESULTS.md
// and bench/plots/<metric>.svg. IPVS is not in this kernel.
//
//   npm run bench:side                                   # full run, as root
//   npm run bench:side -- --services 10,1000 --quick     # a quick one
//
// Options: --services N,N,…  --modes none,iptables-legacy,iptables-nft,nftables,tapvip  --quick
//          --tcp-seconds S  --udp-seconds S  --conn-seconds S  --changes K  --noflush-cap S  --udp-flows F
//          --udp-payload B  --connect-client c|node  --tapvip-args "…" (default: $TAPVIP_BENCH_ARGS)
//          --no-write
// Every namespace (tvsb-<pid>-*) and process it starts is removed at the end, also on failure
// and Ctrl-C. See bench/sidebyside/*.ts for each part.

import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir, loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { cpuJiffies, machine, progress } from "./node-sys.js";
import { benchDir, writeSection } from "./results-file.js";
import { cleanup, createNs, deleteNs, hasCommand, netnsUnavailable, run, sweepStale } from "./sidebyside/netns.js";
import { buildTopology, destroyTopology, startServers, BACKENDS, type Topology } from "./sidebyside/topology.js";
import { buildModel, probeOf, PROBE_PORTS } from "./sidebyside/model.js";
import { canConnect, connectTest, cTool, iperfTcp, udpBlast, udpBlaster } from "./sidebyside/traffic.js";
import { endpointChanges, kernelModeUnavailable, programAll, toolVersions, type KernelMode } from "./sidebyside/kernel.js";
import { agentSample, logTail, startAgent, stopAgent, storeSync, type Agent } from "./sidebyside/tapvip.js";
import { median, quantileOf, renderPlots, renderReport, evaluateTargets } from "./sidebyside/report.js";
import { ALL_MODES, type Cell, type Mode, type Report, type RunOptions } from "./sidebyside/types.js";

function options(argv: string[]): RunOptions & { fromJson?: string } {
  const { values } = parseArgs({
    args: argv,
    options: {
      services: { type: "string" }, modes: { type: "string" }, quick: { type: "boolean" },
      "tcp-seconds": { type: "string" }, "udp-seconds": { type: "string" }, "conn-seconds": { type: "string" },
      changes: { type: "string" }, "noflush-cap": { type: "string" }, "udp-flows": { type: "string" }, "udp-payload": { type: "string" },
      "tapvip-args": { type: "string" }, "from-json": { type: "string" }, "connect-client": { type: "string" }, "no-write": { type: "boolean" }, help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log("usage: node dist/bench/sidebyside.js [--services 10,1000,10000] [--modes " + ALL_MODES.join(",") + "] [--quick]\n" +
      "  [--tcp-seconds S] [--udp-seconds S] [--conn-seconds S] [--changes K] [--noflush-cap S] [--udp-flows F] [--udp-payload B] [--connect-client c|node]\n" +
      "  [--tapvip-args \"...\"  (default $TAPVIP_BENCH_ARGS)] [--no-write]\n" +
      "  [--from-json FILE]  (no measuring: render the report and plots again from a saved run, e.g. bench/sidebyside/last-run.json)");
    process.exit(0);
  }
  const quick = !!values.quick;
  const num = (v: string | undefined, d: number, name: string) => {
    if (v === undefined) return d;
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name}: ${v} is not a positive number`);
    return n;
  };
  const services = (values.services ?? "10,1000,10000").split(",").map((s) => Number(s.trim().replace(/k$/i, "000")));
  for (const n of services) if (!Number.isInteger(n) || n < 2 || n > 60_000) throw new Error(`--services: ${n} (each 2 … 60000)`);
  const modes = (values.modes ?? ALL_MODES.join(",")).split(",").map((s) => s.trim()) as Mode[];
  for (const m of modes) if (!ALL_MODES.includes(m)) throw new Error(`--modes: unknown mode ${m} (${ALL_MODES.join(", ")})`);
  const cc = values["connect-client"] ?? "c";
  if (cc !== "c" && cc !== "node") throw new Error(`--connect-client: c or node, not ${cc}`);
  const tapvipArgs = (values["tapvip-args"] ?? process.env.TAPVIP_BENCH_ARGS ?? "").split(/\s+/).filter(Boolean);
  return {
    services: [...new Set(services)].sort((a, b) => a - b),
    modes: ALL_MODES.filter((m) => modes.includes(m)),
    quick,
    tcpSeconds: num(values["tcp-seconds"], quick ? 2 : 4, "tcp-seconds"),
    udpSeconds: num(values["udp-seconds"], quick ? 2 : 4, "udp-seconds"),
    connSeconds: num(values["conn-seconds"], quick ? 1.5 : 3, "conn-seconds"),
    changes: Math.round(num(values.changes, quick ? 3 : 10, "changes")),
    noflushCap: num(values["noflush-cap"], quick ? 10 : 30, "noflush-cap"),
    udpFlows: Math.round(num(values["udp-flows"], 4, "udp-flows")),
    udpPayload: Math.round(num(values["udp-payload"], 64, "udp-payload")),
    connectNode: cc === "node",
    tapvipArgs,
    write: !values["no-write"],
    fromJson: values["from-json"],
  };
}

function tapvipUnavailable(): string | null {
  const root = join(benchDir(), "..");
  if (!existsSync(join(root, "build/release.wasm"))) return "build/release.wasm is missing (npm run build:wasm)";
  if (!existsSync(join(root, "native/build/Release/tapvip_tap.node"))) return "the native TAP addon is missing (npm run build:native)";
  if (!existsSync("/dev/net/tun")) return "/dev/net/tun is missing";
  return null;
}

/** The tapvip build being measured: the commit and how many files differ from it in the code folders. */
function buildInfo(): string {
  const root = join(benchDir(), "..");
  const head = run("git", ["-C", root, "rev-parse", "--short", "HEAD"]);
  if (head.status !== 0) return "not a git checkout";
  const dirty = run("git", ["-C", root, "status", "--porcelain", "--", "src", "assembly", "native", "bin"]).stdout.split("\n").filter(Boolean).length;
  return `commit ${head.stdout.trim()}${dirty ? ` with ${dirty} uncommitted change${dirty > 1 ? "s" : ""} in src/, assembly/, native/, bin/ (the working tree as built)` : ""}`;
}

/** The saved run (raw results), for --from-json. Non-finite numbers are kept as strings. */
export const LAST_RUN = join(benchDir(), "sidebyside", "last-run.json");
const toJson = (r: Report) => JSON.stringify(r, (_k, v: unknown) => (typeof v === "number" && !Number.isFinite(v) ? String(v) : v), 1) + "\n";
const fromJson = (t: string) => JSON.parse(t, (_k, v: unknown) => (v === "Infinity" || v === "NaN" || v === "-Infinity" ? Number(v) : v)) as Report;

function writeOutputs(report: Report): void {
  const plotsDir = join(benchDir(), "plots");
  mkdirSync(plotsDir, { recursive: true });
  const plots = renderPlots(report);
  for (const [file, svg] of Object.entries(plots)) writeFileSync(join(plotsDir, file), svg);
  writeSection("side-by-side", renderReport(report));
  progress(`wrote the side-by-side section of ${join(benchDir(), "RESULTS.md")} and ${Object.keys(plots).length} plots in ${plotsDir}`);
}

const fmtMs = (v: number) => (Number.isFinite(v) ? (v < 10 ? v.toFixed(2) : v.toFixed(0)) : "—");

async function runCell(mode: Mode, n: number, o: RunOptions, dir: string): Promise<Cell> {
  const t0 = performance.now();
  const model = buildModel(n, BACKENDS);
  const probe = probeOf(model);
  const target = mode === "none" ? BACKENDS[0]! : probe.clusterIP;
  const cell: Cell = { mode, services: n, target, errors: [], wallSeconds: 0 };
  const tag = `[${n} Services, ${mode}]`;
  let topo: Topology | null = null;
  let agent: Agent | null = null;
  try {
    topo = buildTopology();
    await startServers(topo);
    if (mode === "iptables-legacy" || mode === "iptables-nft" || mode === "nftables") {
      const p = programAll(mode, topo.node, model, dir);
      cell.programMs = p.ms;
      cell.rules = p.rules;
      cell.bytes = p.bytes;
      progress(`${tag} programmed ${p.rules.toLocaleString("en-US")} rules (${(p.bytes / 1024).toFixed(0)} KiB) in ${fmtMs(p.ms)} ms (${mode === "nftables" ? "nft -f" : `${mode}-restore, replacing the tables`})`);
    } else if (mode === "tapvip") {
      agent = await startAgent(topo, model, dir, o.tapvipArgs);
      cell.programMs = agent.firstSyncMs;
      cell.agent = { startMs: agent.startMs, firstSyncMs: agent.firstSyncMs, args: agent.args };
      progress(`${tag} tapvip run serving after ${fmtMs(agent.startMs)} ms; its first full sync took ${fmtMs(agent.firstSyncMs)} ms`);
    }
    if (!canConnect(topo.client, target, PROBE_PORTS.conn)) {
      throw new Error(`no TCP connection to ${target}:${PROBE_PORTS.conn} from the client${agent ? `; agent log:\n${logTail(agent)}` : ""}`);
    }

    cell.conn = connectTest(topo.client, target, PROBE_PORTS.conn, o.connSeconds, { node: o.connectNode });
    if (cell.conn.error) cell.errors.push(cell.conn.error);
    progress(`${tag} new connections: ${Math.round(cell.conn.perSec).toLocaleString("en-US")}/s, p50 ${cell.conn.p50.toFixed(1)} µs, p99 ${cell.conn.p99.toFixed(1)} µs (${cell.conn.failures} failed)`);

    for (const streams of [1, 4]) {
      const r = iperfTcp(topo.client, target, PROBE_PORTS.iperf, streams, o.tcpSeconds);
      if (streams === 1) cell.tcp1 = r;
      else cell.tcp4 = r;
      if (r.error) cell.errors.push(r.error);
      progress(`${tag} TCP ×${streams}: ${r.error ?? `${r.gbps.toFixed(2)} Gbit/s (${r.retransmits} retransmits)`}`);
    }

    const a0 = agent ? agentSample(topo, agent) : null;
    const u = udpBlast(topo.client, topo.backend, target, PROBE_PORTS.sink, { seconds: o.udpSeconds, payload: o.udpPayload, flows: o.udpFlows });
    const a1 = agent ? agentSample(topo, agent) : null;
    cell.udp = u;
    if (u.error) cell.errors.push(u.error);
    if (agent && a0 && a1) {
      cell.agent!.udpCpuShare = (a1.cpu - a0.cpu) / u.seconds;
      cell.agent!.udpTapDrops = a1.tapDrops - a0.tapDrops;
    }
    progress(`${tag} small UDP: ${u.error ?? `sent ${Math.round(u.sentPerSec).toLocaleString("en-US")}/s, received ${Math.round(u.receivedPerSec).toLocaleString("en-US")}/s`}` +
      (cell.agent?.udpCpuShare !== undefined ? ` (agent ${(cell.agent.udpCpuShare * 100).toFixed(0)} % of a core, ${cell.agent.udpTapDrops} TAP queue drops)` : ""));

    if (mode === "iptables-legacy" || mode === "iptables-nft" || mode === "nftables") {
      const ch = await endpointChanges(mode, topo.node, model, dir, o.changes);
      cell.changeMs = ch.ms;
      cell.changeBytes = ch.bytes;
      progress(`${tag} ${o.changes} endpoint changes: median ${fmtMs(median(ch.ms))} ms, max ${fmtMs(Math.max(...ch.ms))} ms (${(ch.bytes / 1024).toFixed(0)} KiB each)`);
    }
  } catch (e) {
    cell.errors.push((e as Error).message);
    progress(`${tag} failed: ${(e as Error).message.split("\n")[0]}`);
  } finally {
    await stopAgent(agent);
    if (topo) await destroyTopology(topo).catch((e: Error) => progress(`${tag} cleanup: ${e.message}`));
  }
  if (mode === "iptables-legacy" || mode === "iptables-nft") {
    // kube-proxy's way of loading the full set (--noflush), into a throwaway namespace, capped.
    let ns: string | null = null;
    try {
      ns = createNs("p");
      const p = programAll(mode, ns, model, dir, { noflush: true, capSeconds: o.noflushCap });
      cell.programNoflushMs = p.ms;
      progress(`${tag} the same full load with --noflush (kube-proxy's way): ${Number.isFinite(p.ms) ? `${fmtMs(p.ms)} ms` : `stopped at the ${o.noflushCap} s cap`}`);
    } catch (e) {
      cell.errors.push(`--noflush load: ${(e as Error).message}`);
      progress(`${tag} --noflush load failed: ${(e as Error).message}`);
    } finally {
      if (ns) deleteNs(ns);
    }
  }
  if (mode === "tapvip") {
    // In process, with the agent and the namespaces gone: store → maps, full and one endpoint change.
    try {
      const s = await storeSync(buildModel(n, BACKENDS), o.changes);
      cell.store = { loadMs: s.loadMs, startToReadyMs: s.startToReadyMs, syncMs: s.syncMs, commitMs: s.commitMs, timeouts: s.timeouts };
      cell.changeMs = s.changeMs;
      progress(`${tag} in process: store → maps start → ready ${fmtMs(s.startToReadyMs)} ms (sync ${fmtMs(s.syncMs)} ms); ` +
        `${o.changes} endpoint changes commit → maps: median ${fmtMs(median(s.changeMs))} ms, p99 ${fmtMs(quantileOf(s.changeMs, 0.99))} ms` +
        (s.timeouts ? ` (${s.timeouts} not seen within 2 s)` : ""));
    } catch (e) {
      cell.errors.push(`store → maps: ${(e as Error).message}`);
      progress(`${tag} store → maps failed: ${(e as Error).message}`);
    }
  }
  cell.wallSeconds = (performance.now() - t0) / 1000;
  return cell;
}

async function main(): Promise<void> {
  const o = options(process.argv.slice(2));
  if (o.fromJson) {
    writeOutputs(fromJson(readFileSync(o.fromJson, "utf8")));
    return;
  }
  const why = netnsUnavailable() ?? (hasCommand("iperf3") ? null : "iperf3 is not installed (apt package iperf3)");
  if (why) throw new Error(`side-by-side benchmark: ${why}`);
  const m = machine();
  const j0 = cpuJiffies();
  const t0 = performance.now();
  const cmdArgs = process.argv.slice(2);
  const command = `${o.tapvipArgs.length && !cmdArgs.includes("--tapvip-args") ? `TAPVIP_BENCH_ARGS='${o.tapvipArgs.join(" ")}' ` : ""}npm run bench:side${cmdArgs.length ? ` -- ${cmdArgs.map((a) => (/\s/.test(a) ? `'${a}'` : a)).join(" ")}` : ""}`;
  const tools = toolVersions();
  const skipped: Report["skipped"] = [];
  const modes = o.modes.filter((mode) => {
    const w = mode === "none" ? null : mode === "tapvip" ? tapvipUnavailable() : kernelModeUnavailable(mode as KernelMode);
    if (w) skipped.push({ mode, why: w });
    return !w;
  });
  progress(`side by side — ${m.cores} cores, kernel ${m.kernel}, node ${m.node}, load average ${m.loadStart.map((x) => x.toFixed(2)).join(" ")}`);
  progress(`services ${o.services.join(", ")}; modes ${modes.join(", ")}${skipped.length ? ` (not run: ${skipped.map((s) => `${s.mode}: ${s.why}`).join("; ")})` : ""}; ` +
    `iptables is ${tools.iptables}; IPVS: not in this kernel (no /proc/net/ip_vs), not measured`);
  progress(`UDP sender: ${udpBlaster() ? "udpblast (C, sendmmsg)" : "node dgram (no C compiler)"}, ${o.udpFlows} flows of ${o.udpPayload}-byte payloads; ` +
    `connect client: ${!o.connectNode && cTool("tcpconnect") ? "tcpconnect (C)" : "node net"}; tapvip args: ${o.tapvipArgs.length ? o.tapvipArgs.join(" ") : "(defaults)"}`);
  const stale = sweepStale();
  if (stale.length) progress(`removed stale namespaces of earlier runs: ${stale.join(", ")}`);

  const dir = mkdtempSync(join(tmpdir(), "tvsb-"));
  const cells: Cell[] = [];
  const steps = o.services.length * modes.length;
  let step = 0;
  try {
    for (const n of o.services) {
      for (const mode of modes) {
        step++;
        progress(`step ${step}/${steps}: ${n.toLocaleString("en-US")} Services, mode ${mode}`);
        cells.push(await runCell(mode, n, o, dir));
      }
    }
  } finally {
    cleanup();
    rmSync(dir, { recursive: true, force: true });
  }

  const j1 = cpuJiffies();
  const report: Report = {
    machine: m, loadEnd: loadavg(), busyShare: (j1.busy - j0.busy) / Math.max(1, j1.total - j0.total),
    wallSeconds: (performance.now() - t0) / 1000, command, options: { ...o, modes }, tools, build: buildInfo(), skipped, cells,
  };
  delete (report.options as { fromJson?: string }).fromJson;
  for (const t of evaluateTargets(report)) progress(`target: ${t.target} — ${t.measured} — ${t.verdict}`);
  if (!o.write) {
    progress(`--no-write: nothing written (${report.wallSeconds.toFixed(0)} s)`);
    return;
  }
  writeFileSync(LAST_RUN, toJson(report));
  writeOutputs(report);
  progress(`raw results in ${LAST_RUN} (${report.wallSeconds.toFixed(0)} s)`);
}

main().then(
  () => process.exit(0),
  (e: Error) => {
    cleanup();
    console.error(e.stack ?? e.message);
    process.exit(1);
  },
);
