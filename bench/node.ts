// tapvip on a node (issue #4, "Benchmarks (targets, not tests)"):
//   1. small UDP frames/s and TCP Gbit/s through a ClusterIP served by `tapvip run` on a TAP in the
//      node-in-a-box, and the same straight to the backend pod (the kernel floor) — bench/node-net.ts
//   2. endpoint change: store commit → visible in the maps (issue #6: ≤ 1 ms) — bench/node-sync.ts
//   3. full sync of 10k Services × 10 endpoints (issue #6: ≤ 100 ms and ≥ 5× faster than
//      iptables-restore of the same rules, measured in the same run) and map memory — bench/node-sync.ts
// and writes bench/NODE-RESULTS.md. Needs root, /dev/net/tun, iperf3 and curl for step 1 (skipped
// otherwise); every namespace it creates is removed, also on failure and Ctrl-C.
//
//   npm run build:ts && node dist/bench/node.js
//   node dist/bench/node.js --only sync       # steps 2 and 3 only, printed (the results file is left alone)
//   node dist/bench/node.js --only latency    # step 2 only; --only fullsync: step 3 only

import { writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { cpuJiffies, machine, progress } from "./node-sys.js";
import { runNet } from "./node-net.js";
import { latencySummary, runFullSync, runLatency } from "./node-sync.js";
import { renderLatency, renderReport, renderSync, type Report } from "./node-report.js";

// dist/bench/node.js or bench/node.ts: the repository's bench/ folder either way.
const here = dirname(fileURLToPath(import.meta.url));
const BENCH_DIR = here.endsWith("/dist/bench") ? join(here, "../../bench") : here;
const OUT = join(BENCH_DIR, "NODE-RESULTS.md");

/** `--only sync|latency|fullsync`: the control-plane steps alone, printed instead of written. */
async function only(what: string): Promise<void> {
  if (!["sync", "latency", "fullsync"].includes(what)) throw new Error(`--only ${what}: use sync, latency or fullsync`);
  const m = machine();
  progress(`tapvip node benchmarks, --only ${what} — ${m.cores} cores, kernel ${m.kernel}, node ${m.node}, load average ${m.loadStart.map((x) => x.toFixed(2)).join(" ")}`);
  const out: string[] = [];
  if (what !== "fullsync") {
    progress("step 2: endpoint change → visible in the maps (embedded store → proxier → maps, 100 changes)");
    const l = await runLatency({ changes: 100 });
    progress(`step 2: ${latencySummary(l)}`);
    out.push(...renderLatency(l));
  }
  if (what !== "latency") {
    progress("step 3: full sync of 10,000 Services × 10 endpoints, and iptables-restore of the same rules");
    out.push(...renderSync(await runFullSync({ services: 10_000, endpoints: 10 })));
  }
  out.push(`Load average at the end: ${loadavg().map((x) => x.toFixed(2)).join(" ")}.`);
  console.log(out.join("\n"));
}

async function main(): Promise<void> {
  const i = process.argv.indexOf("--only");
  if (i >= 0) return only(process.argv[i + 1] ?? "");
  const m = machine();
  const j0 = cpuJiffies();
  const t0 = performance.now();
  progress(`tapvip node benchmarks — ${m.cores} cores, kernel ${m.kernel}, node ${m.node}, load average ${m.loadStart.map((x) => x.toFixed(2)).join(" ")}; writing ${OUT}`);

  progress("step 1/4: throughput through a ClusterIP (UDP small frames, TCP 1 and 4 streams) and the kernel floor");
  const net = await runNet();

  const report: Report = { machine: m, busyShare: NaN, wallSeconds: 0, net };
  progress("step 2/4: endpoint change → visible in the maps (embedded store → proxier → maps, 100 changes)");
  try {
    report.latency = await runLatency({ changes: 100 });
    progress(`step 2: ${latencySummary(report.latency)}`);
  } catch (e) {
    report.latencyError = (e as Error).message;
    progress(`step 2 failed: ${report.latencyError}`);
  }

  progress("step 3/4: full sync of 10,000 Services × 10 endpoints, and iptables-restore of the same rules");
  try {
    report.sync = await runFullSync({ services: 10_000, endpoints: 10 });
  } catch (e) {
    report.syncError = (e as Error).message;
    progress(`step 3 failed: ${report.syncError}`);
  }

  const j1 = cpuJiffies();
  report.busyShare = (j1.busy - j0.busy) / Math.max(1, j1.total - j0.total);
  report.wallSeconds = (performance.now() - t0) / 1000;
  progress("step 4/4: writing the report");
  writeFileSync(OUT, renderReport(report));
  progress(`wrote ${OUT} (${report.wallSeconds.toFixed(0)} s)`);
}

main().then(
  () => process.exit(0),
  (e: Error) => {
    console.error(e.stack ?? e.message);
    process.exit(1);
  },
);
