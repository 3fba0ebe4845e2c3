// DNS benchmark (issue #5, a target, not a test): queries per second on loopback for a mix of
// A/SRV/PTR/NXDOMAIN with 10k Services loaded (target ≥ 50k qps), p50/p99 latency, and the
// cost of one Service/EndpointSlice change applied to the index at that size. The server runs
// in its own process (bench/dns-server.ts); the load generator is dnsperf (installed with
// apt-get when missing and this runs as root), or, without it, bench/dns-load.ts. Writes the
// "dns" section of bench/RESULTS.md.
//
//   npm run bench:dns            (builds the TypeScript first)
//   node dist/bench/dns.js [--services 10000] [--duration 20] [--generator dnsperf|builtin]

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, createReadStream } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { ZoneIndex } from "../src/discovery/dns.js";
import type { StoredObject } from "../src/store/db.js";
import { buildZone, MIX, queryLines, ZONE, type Zone } from "./dns-zone.js";
import { cpuJiffies, fmt, fmtInt, machine, procCpu, progress, quantile, sleep } from "./node-sys.js";
import { writeSection } from "./results-file.js";

const here = dirname(fileURLToPath(import.meta.url)); // dist/bench
const SERVER_JS = join(here, "dns-server.js");
const LOAD_JS = join(here, "dns-load.js");

const { values: args } = parseArgs({
  options: {
    services: { type: "string", default: "10000" },
    duration: { type: "string", default: "20" },
    generator: { type: "string" },
    outstanding: { type: "string", default: "200" },
    clients: { type: "string", default: "4" },
    rate: { type: "string", default: "10000" },
  },
});
const SERVICES = Number(args.services);
const DURATION = Number(args.duration);
const OUTSTANDING = Number(args.outstanding);
const CLIENTS = Number(args.clients);
const RATE = Number(args.rate);

// ------------------------------------------------------------------ the server process

interface Server {
  child: ChildProcess;
  port: number;
  startMs: number;
  stop(): Promise<Record<string, unknown>>;
}

const children = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of children) c.kill("SIGKILL");
});

async function startServer(extra: string[] = []): Promise<Server> {
  const child = spawn(process.execPath, [SERVER_JS, "--services", String(SERVICES), ...extra], { stdio: ["ignore", "pipe", "inherit"] });
  children.add(child);
  child.on("exit", () => children.delete(child));
  let out = "";
  const ready = await new Promise<string>((resolve, reject) => {
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /ready (\d+) ([\d.]+)/.exec(out);
      if (m) resolve(m[0]);
    });
    child.on("exit", (c) => reject(new Error(`DNS server exited (${c}) before it was ready: ${out}`)));
  });
  const [, port, ms] = ready.split(" ");
  return {
    child,
    port: Number(port),
    startMs: Number(ms),
    stop: () =>
      new Promise((resolve) => {
        child.removeAllListeners("exit");
        child.on("exit", () => {
          const m = /metrics (.*)/.exec(out);
          resolve(m ? (JSON.parse(m[1]!) as Record<string, unknown>) : {});
        });
        child.kill("SIGTERM");
      }),
  };
}

// ------------------------------------------------------------------ generators

interface LoadResult {
  label: string;
  command: string;
  sent: number;
  completed: number;
  lost: number;
  seconds: number;
  qps: number;
  rcodes: Record<string, number>;
  avgMs?: number;
  /** Per-query latencies in ms, when the generator reports them. */
  latencies?: Float64Array;
  serverCpu: number;
  /** CPU seconds of the generator (sampled every 100 ms while it ran: a lower bound). */
  genCpu: number;
  busyShare: number;
  /** CPU seconds used by the whole machine during the run (all cores). */
  busyCpu: number;
  /** Wall-clock seconds the generator process ran (the window of the CPU figures). */
  wall: number;
}

function haveDnsperf(): boolean {
  return spawnSync("sh", ["-c", "command -v dnsperf"]).status === 0;
}

function ensureDnsperf(): boolean {
  if (haveDnsperf()) return true;
  if (process.getuid?.() !== 0 || spawnSync("sh", ["-c", "command -v apt-get"]).status !== 0) return false;
  progress("installing dnsperf (apt-get install -y dnsperf)");
  spawnSync("apt-get", ["install", "-y", "dnsperf"], { stdio: "ignore" });
  return haveDnsperf();
}

function dnsperfVersion(): string {
  const r = spawnSync("dnsperf", ["-h"], { encoding: "utf8" });
  return /Version (\S+)/.exec(`${r.stdout}${r.stderr}`)?.[1] ?? "?";
}

/** Runs a child to completion, sampling the server's CPU and the machine's around it. */
interface Measured {
  stdout: string;
  serverCpu: number;
  genCpu: number;
  busyShare: number;
  busyCpu: number;
  wall: number;
  code: number | null;
}

async function measured(server: Server, cmd: string, argv: string[], outFile?: string): Promise<Measured> {
  const c0 = procCpu(server.child.pid!);
  const j0 = cpuJiffies();
  const w0 = performance.now();
  const child = spawn(cmd, argv, { stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  child.on("exit", () => children.delete(child));
  let stdout = "";
  const chunks: Buffer[] = [];
  child.stdout!.on("data", (d: Buffer) => (outFile ? chunks.push(d) : (stdout += d.toString())));
  child.stderr!.on("data", (d: Buffer) => (stdout += d.toString()));
  let genCpu = 0;
  const sampler = setInterval(() => {
    try {
      const c = procCpu(child.pid!);
      genCpu = c.user + c.sys;
    } catch {
      /* exited */
    }
  }, 100);
  const code = await new Promise<number | null>((r) => child.on("exit", (c) => r(c)));
  clearInterval(sampler);
  await sleep(50);
  const c1 = procCpu(server.child.pid!);
  const j1 = cpuJiffies();
  if (outFile) {
    // per-query lines ("> RCODE name TYPE seconds") to the file, the summary kept as text
    const all = Buffer.concat(chunks);
    writeFileSync(outFile, all);
    stdout += all.toString().split("\n").filter((l) => !l.startsWith("> ")).join("\n");
  }
  const busyShare = (j1.busy - j0.busy) / Math.max(1, j1.total - j0.total);
  const busyCpu = (j1.busy - j0.busy) / 100; // /proc/stat's first line: 1/100 s summed over the cores
  return { stdout, serverCpu: c1.user + c1.sys - c0.user - c0.sys, genCpu, busyShare, busyCpu, wall: (performance.now() - w0) / 1000, code };
}

async function verboseLatencies(file: string): Promise<{ lat: Float64Array; rcodes: Record<string, number> }> {
  const lat: number[] = [];
  const rcodes: Record<string, number> = {};
  const rl = createInterface({ input: createReadStream(file) });
  for await (const line of rl) {
    if (!line.startsWith("> ")) continue;
    const parts = line.split(" ");
    const ms = Number(parts[parts.length - 1]) * 1000;
    if (!Number.isFinite(ms)) continue;
    lat.push(ms);
    rcodes[parts[1]!] = (rcodes[parts[1]!] ?? 0) + 1;
  }
  return { lat: Float64Array.from(lat).sort(), rcodes };
}

async function runDnsperf(server: Server, label: string, queryFile: string, seconds: number, o: { rate?: number; verbose?: boolean; once?: boolean }, dir: string): Promise<LoadResult> {
  const argv = ["-s", "127.0.0.1", "-p", String(server.port), "-d", queryFile, ...(o.once ? ["-n", "1"] : ["-l", String(seconds)]), "-c", String(CLIENTS), "-q", String(OUTSTANDING), "-t", "2"];
  if (o.rate) argv.push("-Q", String(o.rate));
  if (o.verbose) argv.push("-v");
  const outFile = o.verbose ? join(dir, `dnsperf-${label.replace(/\W+/g, "-")}.txt`) : undefined;
  const r = await measured(server, "dnsperf", argv, outFile);
  const s = r.stdout;
  const num = (re: RegExp): number => Number(re.exec(s)?.[1] ?? NaN);
  const rcodes: Record<string, number> = {};
  const rc = /Response codes:\s+(.*)/.exec(s)?.[1] ?? "";
  for (const m of rc.matchAll(/([A-Z]+) (\d+)/g)) rcodes[m[1]!] = Number(m[2]);
  const res: LoadResult = {
    label,
    command: `dnsperf ${argv.join(" ").replace(String(server.port), "$PORT").replace(queryFile, "queries.txt")}`,
    sent: num(/Queries sent:\s+(\d+)/),
    completed: num(/Queries completed:\s+(\d+)/),
    lost: num(/Queries lost:\s+(\d+)/),
    seconds: num(/Run time \(s\):\s+([\d.]+)/),
    qps: num(/Queries per second:\s+([\d.]+)/),
    avgMs: num(/Average Latency \(s\):\s+([\d.]+)/) * 1000,
    rcodes,
    serverCpu: r.serverCpu,
    genCpu: r.genCpu,
    busyShare: r.busyShare,
    busyCpu: r.busyCpu,
    wall: r.wall,
  };
  if (r.code !== 0 || !Number.isFinite(res.qps)) throw new Error(`dnsperf failed (${r.code}):\n${s}`);
  if (outFile) {
    res.latencies = (await verboseLatencies(outFile)).lat;
    rmSync(outFile, { force: true });
  }
  return res;
}

async function runBuiltin(server: Server, label: string, queryFile: string, seconds: number, o: { rate?: number }): Promise<LoadResult> {
  const latFile = join(dirname(queryFile), "latencies.bin");
  const argv = [LOAD_JS, "--port", String(server.port), "--queries", queryFile, "--duration", String(seconds), "--sockets", String(CLIENTS), "--outstanding", String(OUTSTANDING), "--latencies", latFile];
  if (o.rate) argv.push("--rate", String(o.rate));
  const r = await measured(server, process.execPath, argv);
  const j = JSON.parse(/result (.*)/.exec(r.stdout)?.[1] ?? "null") as Omit<LoadResult, "label" | "command" | "serverCpu" | "genCpu" | "busyShare" | "busyCpu" | "wall" | "latencies"> | null;
  if (!j) throw new Error(`dns-load failed:\n${r.stdout}`);
  const buf = readFileSync(latFile);
  const lat = new Float64Array(buf.buffer, buf.byteOffset, buf.byteLength / 8).slice().sort();
  rmSync(latFile, { force: true });
  return { ...j, label, latencies: lat, command: `node dist/bench/dns-load.js ${argv.slice(1).join(" ").replace(String(server.port), "$PORT").replace(queryFile, "queries.txt").replace(latFile, "latencies.bin")}`, serverCpu: r.serverCpu, genCpu: r.genCpu, busyShare: r.busyShare, busyCpu: r.busyCpu, wall: r.wall };
}

// ------------------------------------------------------------------ index update cost (in this process)

interface UpdateCost {
  fullBuildMs: number[];
  cases: Array<{ what: string; n: number; medianUs: number; p99Us: number; touched: number }>;
}

function measureUpdates(z: Zone): UpdateCost {
  const fullBuildMs: number[] = [];
  let idx!: ZoneIndex;
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    idx = new ZoneIndex(ZONE, z.services, z.slices);
    fullBuildMs.push(performance.now() - t);
  }
  let touched = 0;
  idx.onTouch = () => touched++;
  const svcs = z.services as unknown as Array<StoredObject & { spec: Record<string, unknown> }>;
  const clusterIP = svcs.filter((s) => s.spec.clusterIP && s.spec.clusterIP !== "None");
  const headless = svcs.filter((s) => s.spec.clusterIP === "None");
  const sliceOf = new Map(z.slices.map((s) => [`${s.metadata.namespace}/${(s.metadata.labels as Record<string, string>)["kubernetes.io/service-name"]}`, s]));
  const cases: UpdateCost["cases"] = [];
  const run = (what: string, n: number, f: (i: number) => void): void => {
    const us: number[] = [];
    touched = 0;
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      f(i);
      us.push((performance.now() - t) * 1000);
    }
    us.sort((a, b) => a - b);
    cases.push({ what, n, medianUs: quantile(us, 0.5), p99Us: quantile(us, 0.99), touched: touched / n });
  };
  run("ClusterIP Service: clusterIP changed", 2000, (i) => {
    const s = clusterIP[i % clusterIP.length]!;
    const next = { ...s, spec: { ...s.spec, clusterIP: `10.97.${(i >> 8) & 255}.${i & 255}`, clusterIPs: [`10.97.${(i >> 8) & 255}.${i & 255}`] } };
    idx.applyService(s, next as unknown as StoredObject);
    clusterIP[i % clusterIP.length] = next;
  });
  run("ClusterIP Service: status-only update (no DNS change)", 2000, (i) => {
    const s = clusterIP[i % clusterIP.length]!;
    idx.applyService(s, { ...s, metadata: { ...s.metadata, resourceVersion: String(i + 2) } } as StoredObject);
  });
  run("headless Service: an endpoint's readiness flips (EndpointSlice update)", 2000, (i) => {
    const s = headless[i % headless.length]!;
    const key = `${s.metadata.namespace}/${s.metadata.name}`;
    const old = sliceOf.get(key)! as unknown as { endpoints: Array<{ conditions: { ready: boolean } }> } & StoredObject;
    const eps = old.endpoints.map((e, k) => (k === i % 3 ? { ...e, conditions: { ready: !e.conditions.ready } } : e));
    const next = { ...old, endpoints: eps } as StoredObject;
    idx.applySlice(old, next);
    sliceOf.set(key, next);
  });
  run("ClusterIP Service deleted and created again (two events)", 1000, (i) => {
    const s = clusterIP[(i * 7) % clusterIP.length]!;
    idx.applyService(s, undefined);
    idx.applyService(undefined, s);
  });
  run("ClusterIP → ExternalName → ClusterIP (two events)", 1000, (i) => {
    const s = clusterIP[(i * 13) % clusterIP.length]!;
    const ext = { ...s, spec: { type: "ExternalName", externalName: "elsewhere.example.com" } } as unknown as StoredObject;
    idx.applyService(s, ext);
    idx.applyService(ext, s);
  });
  return { fullBuildMs, cases };
}

// ------------------------------------------------------------------ report

function pct(lat: Float64Array | undefined, q: number): string {
  return lat && lat.length > 0 ? fmt(quantile(Array.from(lat), q), 3) : "—";
}

function rcodeMix(r: Record<string, number>): string {
  const total = Object.values(r).reduce((a, b) => a + b, 0);
  return Object.entries(r)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${(100 * v / Math.max(1, total)).toFixed(1)} %`)
    .join(", ");
}

async function main(): Promise<void> {
  const m = machine();
  const t0 = performance.now();
  progress(`DNS benchmark — ${SERVICES} Services, ${m.cores} cores, kernel ${m.kernel}, node ${m.node}, load average ${m.loadStart.map((x) => x.toFixed(2)).join(" ")}`);
  const dir = mkdtempSync(join(tmpdir(), "tapvip-dnsbench-"));
  const z = buildZone(SERVICES);
  const queryFile = join(dir, "queries.txt");
  const lines = queryLines(z, 200_000);
  writeFileSync(queryFile, `${lines.join("\n")}\n`);
  const distinct = new Set(lines).size;

  const wanted = args.generator ?? "dnsperf";
  const generator = wanted === "dnsperf" && ensureDnsperf() ? "dnsperf" : "builtin";
  if (wanted === "dnsperf" && generator !== "dnsperf") progress("dnsperf unavailable: using the built-in generator (bench/dns-load.ts)");
  const genName = generator === "dnsperf" ? `dnsperf ${dnsperfVersion()} (DNS-OARC, Debian package dnsperf)` : "bench/dns-load.ts (node, this repository)";
  const load = (s: Server, label: string, secs: number, o: { rate?: number; verbose?: boolean; once?: boolean }) =>
    generator === "dnsperf" ? runDnsperf(s, label, queryFile, secs, o, dir) : runBuiltin(s, label, queryFile, o.once ? 15 : secs, o);
  // warm-up: once through the query file (every distinct question asked, the answer cache full)
  const warmUp = (s: Server) => load(s, "warm-up", 0, { once: true });

  progress("index update cost at this size (in this process)");
  const upd = measureUpdates(z);

  const results: LoadResult[] = [];
  progress(`starting the server (${SERVICES} Services) in its own process`);
  let server = await startServer();
  const startMs = server.startMs;
  progress(`server ready on 127.0.0.1:${server.port} after ${startMs.toFixed(0)} ms; warm-up: once through the query file`);
  await warmUp(server);
  progress(`run 1/5: maximum throughput, ${DURATION} s, ${OUTSTANDING} outstanding over ${CLIENTS} sockets`);
  results.push(await load(server, "max throughput", DURATION, {}));
  progress(`  ${fmtInt(results.at(-1)!.qps)} qps`);
  progress(`run 2/5: the same with per-query latencies (${generator === "dnsperf" ? "dnsperf -v" : "hrtime per query"})`);
  results.push(await load(server, "max throughput, per-query latency", DURATION, { verbose: true }));
  progress(`  ${fmtInt(results.at(-1)!.qps)} qps, p50 ${pct(results.at(-1)!.latencies, 0.5)} ms, p99 ${pct(results.at(-1)!.latencies, 0.99)} ms`);
  progress(`run 3/5: fixed rate ${fmtInt(RATE)} qps, per-query latencies`);
  results.push(await load(server, `fixed ${fmtInt(RATE)} qps`, DURATION, { rate: RATE, verbose: true }));
  progress(`  p50 ${pct(results.at(-1)!.latencies, 0.5)} ms, p99 ${pct(results.at(-1)!.latencies, 0.99)} ms`);
  const metrics = await server.stop();

  progress("run 4/5: answer cache off (every query decoded, answered and encoded)");
  server = await startServer(["--answer-cache", "0"]);
  await warmUp(server);
  results.push(await load(server, "max throughput, answer cache off", DURATION, {}));
  progress(`  ${fmtInt(results.at(-1)!.qps)} qps`);
  const metricsNoCache = await server.stop();

  progress("run 5/5: a bare Node UDP echo server instead of DNS (the ceiling of one Node process here)");
  server = await startServer(["--echo"]);
  await warmUp(server);
  results.push(await load(server, "ceiling: Node UDP echo, no DNS", DURATION, {}));
  progress(`  ${fmtInt(results.at(-1)!.qps)} qps`);
  await server.stop();
  rmSync(dir, { recursive: true, force: true });

  const loadEnd = loadavg();
  const head = results[0]!;
  const echo = results.at(-1)!;
  const target = 50_000;
  const met = head.qps >= target;
  const perQ = (cpu: number, r: LoadResult): string => fmt((cpu / Math.max(1, r.completed)) * 1e6, 1);
  const others = (r: LoadResult): string => fmt(Math.max(0, r.busyCpu - r.serverCpu - r.genCpu) / Math.max(0.001, r.wall), 2);
  const md: string[] = [];
  md.push("## DNS: queries per second on loopback, 10k Services");
  md.push("");
  md.push("Generated by `bench/dns.ts` (`npm run bench:dns`) — do not edit by hand; re-run to refresh.");
  md.push("");
  md.push(
    `**Target (issue #5): ≥ 50,000 qps for a mix of A/SRV/PTR/NXDOMAIN with 10k Services loaded. Measured: ${fmtInt(head.qps)} qps — ${met ? "met" : "not met"} on this machine.** ` +
      `The server (one Node process, one UDP socket) and the load generator share the machine's ${m.cores} cores with whatever else runs (see the last columns). ` +
      `For scale: a Node UDP server that does nothing but send each query back (run 5, same generator, same conditions) reached ${fmtInt(echo.qps)} qps; ` +
      `tapvip's server spends ${perQ(head.serverCpu, head)} µs of CPU per answered query against ${perQ(echo.serverCpu, echo)} µs for the bare echo.`,
  );
  md.push("");
  md.push("### Machine");
  md.push("");
  md.push(`- CPU: ${m.cpu}; cores: ${m.cores} — the server process and the load generator share them (nothing is pinned), and the machine was not otherwise idle`);
  md.push(`- Kernel: Linux ${m.kernel}; Node: ${m.node}; memory ${m.memGiB.toFixed(1)} GiB`);
  md.push(`- Date: ${m.date}`);
  md.push(`- Load average at start: ${m.loadStart.map((x) => x.toFixed(2)).join(" ")}; at end: ${loadEnd.map((x) => x.toFixed(2)).join(" ")}`);
  md.push("");
  md.push("### Command");
  md.push("");
  md.push("```");
  md.push(`npm run bench:dns   # = npm run build:ts && node dist/bench/dns.js${process.argv.slice(2).length ? " " + process.argv.slice(2).join(" ") : ""}`);
  md.push("```");
  md.push("");
  md.push(`Load generator: **${genName}**, in its own process; its exact invocation per run is in the table (\`$PORT\` is the server's port, \`queries.txt\` the query file below). This run took ${((performance.now() - t0) / 1000).toFixed(0)} s.`);
  md.push("");
  md.push("### Setup");
  md.push("");
  md.push(`- Server: \`node dist/bench/dns-server.js --services ${SERVICES}\` — tapvip's \`DnsServer\` (src/discovery/dns.ts) on 127.0.0.1 (UDP), zone \`${ZONE}\`, no upstreams, fed by a fixed ObjectSource; listing and building the index took ${startMs.toFixed(0)} ms from the start of \`DnsServer.start()\`.`);
  md.push(`- Objects (bench/dns-zone.ts, seeded): ${fmtInt(SERVICES)} Services in ${z.counts.namespaces} namespaces — ${fmtInt(z.counts.clusterIP)} ClusterIP with 1–3 named ports (TCP and UDP), ${fmtInt(z.counts.headless)} headless (3 endpoints each, half with hostnames, 1 in 10 not ready), ${fmtInt(z.counts.externalName)} ExternalName — and ${fmtInt(z.slices.length)} EndpointSlices (${fmtInt(z.counts.endpoints)} endpoints).`);
  md.push(`- Queries: 200,000 lines (${fmtInt(distinct)} distinct questions), drawn ${Math.round(MIX.a * 100)} % A (ClusterIP, headless and endpoint names, ExternalName → CNAME), ${Math.round(MIX.srv * 100)} % SRV (named ports), ${Math.round(MIX.ptr * 100)} % PTR (clusterIPs and headless endpoint IPs), ${Math.round(MIX.nx * 100)} % names that do not exist (search-path expansions of Service FQDNs and external names, unknown Services); no EDNS, RD set; the generator cycles through the file.`);
  md.push(`- Before each server's runs, one pass through the whole query file (every distinct question asked once, so runs 1–3 answer from a full answer cache). Each run then lasts ${DURATION} s with at most ${OUTSTANDING} queries outstanding over ${CLIENTS} UDP sockets; a query unanswered after 2 s counts as lost.`);
  md.push("");
  md.push("### Results");
  md.push("");
  md.push("| run | qps | completed / sent | lost | p50 ms | p99 ms | p99.9 ms | mean ms | rcodes | server CPU µs/query | generator CPU µs/query | other processes, cores busy | command |");
  md.push("|---|--:|--:|--:|--:|--:|--:|--:|---|--:|--:|--:|---|");
  results.forEach((r, i) => {
    const lat = r.latencies;
    md.push(`| ${i + 1}. ${r.label} | **${fmtInt(r.qps)}** | ${fmtInt(r.completed)} / ${fmtInt(r.sent)} | ${fmtInt(r.lost)} | ${pct(lat, 0.5)} | ${pct(lat, 0.99)} | ${pct(lat, 0.999)} | ${r.avgMs !== undefined ? fmt(r.avgMs, 3) : "—"} | ${rcodeMix(r.rcodes)} | ${perQ(r.serverCpu, r)} | ${perQ(r.genCpu, r)} | ${others(r)} | \`${r.command}\` |`);
  });
  md.push("");
  md.push(`- Runs 1 and 2 keep ${OUTSTANDING} queries in flight, so their latency is mostly queueing (≈ outstanding ÷ qps); run 3 (a fixed rate below saturation) shows the latency of a query that does not wait behind others. Per-query latencies come from \`dnsperf -v\` (a line per answer, which costs the generator CPU: compare the qps of runs 1 and 2).`);
  md.push(`- "server CPU" is the server process's user+system time over the run (/proc/PID/stat) divided by the answered queries — on loopback the kernel's receive path into the generator's socket runs in the sender's context, so the server's system time includes part of the delivery. "other processes" is the machine's busy time (/proc/stat) minus server and generator, in cores.`);
  md.push(`- Server counters after runs 1–3: ${JSON.stringify({ responses: metrics.responses, truncated: metrics.truncated, malformed: metrics.malformed, dropped: metrics.dropped, cachedAnswers: metrics.cachedAnswers })}; run 4 (answer cache off): ${JSON.stringify({ responses: metricsNoCache.responses, dropped: metricsNoCache.dropped })}.`);
  const answered = Object.values((metrics.responses ?? {}) as Record<string, number>).reduce((a, b) => a + b, 0);
  md.push(`- ${fmt((100 * Number(metrics.truncated ?? 0)) / Math.max(1, answered), 1)} % of the answers in runs 1–3 went out empty with TC set: SRV answers of headless Services (3 targets with their addresses) are longer than 512 bytes, the limit without EDNS, because dns-packet does not compress names. dnsperf counts them as answered (NOERROR); a real resolver would ask again over TCP.`);
  md.push("- Answer cache: encoded answers per question (the name's bytes as sent, type, class, RD, EDNS), filled on a question's first query and dropped for the names an index update touches; a hit copies the response and patches the ID. Run 4 turns it off (`--answer-cache 0`): every query is decoded, answered from the index and encoded with dns-packet, as every query was before the cache.");
  md.push(`- Where a cached answer's time goes (\`node --cpu-prof\` of the server under the same load, taken while writing this benchmark, not in this run): about half of the server's busy time is \`send\` (the sendmsg system call, with the loopback delivery into the generator's socket), about a fifth the cache lookup and copy, the rest Node's per-datagram receive and event dispatch. Node 20's dgram has one system call per datagram in each direction and no SO_REUSEPORT, so one process cannot batch or spread the socket over cores.`);
  md.push("");
  md.push(`### Index updates at ${fmtInt(SERVICES)} Services`);
  md.push("");
  md.push(`Measured in the benchmark's own process on the same objects (\`ZoneIndex.applyService\` / \`applySlice\`, what the server's informers call per event; dropping the cached answers of the touched names comes on top, one map lookup per name). The p99 column catches garbage collection of the process's ~100 MB heap and the machine's other load; the median is the cost of the work. A full build of the index takes ${upd.fullBuildMs.map((x) => x.toFixed(0)).join(", ")} ms (5 builds; the first is cold). Before this change every event dropped the index and the next query rebuilt it in full.`);
  md.push("");
  md.push("| change | events | median µs | p99 µs | names touched per event |");
  md.push("|---|--:|--:|--:|--:|");
  for (const c of upd.cases) md.push(`| ${c.what} | ${fmtInt(c.n)} | ${fmt(c.medianUs, 1)} | ${fmt(c.p99Us, 1)} | ${fmt(c.touched, 1)} |`);
  md.push("");
  writeSection("dns", md.join("\n"));
  progress(`wrote the dns section of bench/RESULTS.md: ${fmtInt(head.qps)} qps (target ${fmtInt(target)}: ${met ? "met" : "not met"})`);
}

main().then(
  () => process.exit(0),
  (e: Error) => {
    console.error(e.stack ?? e.message);
    process.exit(1);
  },
);
