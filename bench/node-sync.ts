// Steps 2 and 3 of bench/node.ts, in process (no namespaces): the agent's own control path —
// an ObjectSource, the Proxier (informers → change tracker → bounded-frequency sync), the
// Programmer and a Dataplane — timed against what the maps hold (issue #6's two control-plane
// numbers).
//
// Step 2, one endpoint change visible in the dataplane after the store commits it: the
// embedded store (Registry over SQLite, fsync on every commit as `tapvip run` opens it) is the
// source. Each change replaces one endpoint address of a 10-endpoint EndpointSlice with a
// fresh one; the clock starts when registry.update() returns (the commit is in) and stops
// when svc_slots holds a backend with the new address — what the next packet's backend
// selection reads — polled on every event-loop turn (setImmediate). Changes are spaced past
// the proxier's minimum sync interval (50 ms, the agent's default), so each one meets an idle
// runner. Conntrack holds UDP flows of another Service meanwhile, so the cleanup of the
// departed backend's flows (after the maps are in, in bounded steps) scans a populated table;
// its work is reported beside the latency, not in it.
//
// Step 3, full sync of 10k Services × 10 endpoints: fully defaulted Service and EndpointSlice
// objects, through JSON as the store and the API hand them out, in a StaticSource (what
// `tapvip run --manifests` uses), a Dataplane with the maps sized for them. "Full sync" is the
// proxier's first full sync: from the informers' caches and the change tracker holding every
// object (all three lists delivered) to the maps holding every Service (the proxier's own
// measure); start → ready adds the lists themselves. Run twice: first in a fresh process state
// (cold JIT, what an agent start sees), then again with a second fresh Dataplane (warm JIT);
// with the main thread's own CPU time beside the wall time (the machine is shared). In the same
// run, the equivalent kube-proxy iptables rules (the side-by-side benchmark's generator) are
// loaded with iptables-restore into a throwaway namespace, per backend that is installed.

import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { Session } from "node:inspector";
import { Dataplane } from "../src/maps/dataplane.js";
import { MAPS, type MapName } from "../src/maps/layout.js";
import { Programmer } from "../src/proxy/programmer.js";
import { Proxier } from "../src/agent/proxier.js";
import { StaticSource } from "../src/agent/static-source.js";
import { Registry } from "../src/store/registry.js";
import type { EndpointSlice, Service } from "../src/store/types.js";
import { buildFrame } from "../src/host/frames.js";
import { progress, quantile, sleep } from "./node-sys.js";
import { createNs, deleteNs, netnsUnavailable } from "./sidebyside/netns.js";
import { kernelModeUnavailable, programAll, type KernelMode } from "./sidebyside/kernel.js";
import type { ServiceModel as RuleModel } from "./sidebyside/model.js";

export const NODE_NAME = "node-a";
const POD_CIDR = "10.244.0.0/24";

// ---------------------------------------------------------------- step 2

export interface LatencyResult {
  changes: number;
  /** ms from registry.update() returning to svc_slots holding the new backend, sorted. */
  latencies: number[];
  /** ms registry.update() took (validation + SQLite commit with fsync), sorted. */
  commits: number[];
  /** ms of each partial sync itself (the proxier's onSync measure), sorted. */
  syncs: number[];
  /**
   * The same for changes of the UDP Service whose backends hold the flows (each change replaces
   * one with ~1/10 of the flows), sorted; and the cleanup of the departed backend's flows after
   * each (the proxier's onFlushed): ms of work for a whole pass over conntrack (all its steps),
   * sorted; flows removed per pass; the steps (event-loop turns) of a pass; ms per step, sorted.
   */
  udpLatencies: number[];
  cleanups: number[];
  cleanupFlows: number[];
  cleanupSteps: number;
  cleanupStepMs: number[];
  /** ms of one whole-table flush at once (dp.flushBackend: what each change waited for before), sorted. */
  flushes: number[];
  conntrackCapacity: number;
  /** Conntrack entries before the changes: UDP flows (two entries each) to the UDP Service. */
  conntrackEntries: number;
  /** Services in the store besides the measured one and the UDP one. */
  otherServices: number;
  minSyncIntervalMs: number;
  spacingMs: number;
  timeouts: number;
}

function ip4(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}
const IP_10_128 = (10 << 24 | 128 << 16) >>> 0;
const IP_10_250 = (10 << 24 | 250 << 16) >>> 0;
const IP_10_251 = (10 << 24 | 251 << 16) >>> 0;
const IP_10_244 = (10 << 24 | 244 << 16) >>> 0;

/** Resolves with ms since t0 once pred() holds (checked on every event-loop turn), or NaN after timeoutMs. */
function pollUntil(pred: () => boolean, t0: number, timeoutMs: number): Promise<number> {
  return new Promise((resolve) => {
    const tick = (): void => {
      if (pred()) resolve(performance.now() - t0);
      else if (performance.now() - t0 > timeoutMs) resolve(NaN);
      else setImmediate(tick);
    };
    tick();
  });
}

export async function runLatency(o: { changes?: number; otherServices?: number; spacingMs?: number; udpFlows?: number } = {}): Promise<LatencyResult> {
  const changes = o.changes ?? 100;
  const others = o.otherServices ?? 0;
  const spacingMs = o.spacingMs ?? 60;
  const udpFlows = o.udpFlows ?? 50_000;
  const minSyncIntervalMs = 50;
  const dir = mkdtempSync(join(tmpdir(), "tapvip-bench-store-"));
  const reg = Registry.open(dir, { store: { durability: "full" }, podGraceTimers: false, namespaceGraceMs: 0 });
  let proxier: Proxier | null = null;
  try {
    const svcObj = (name: string, proto = "TCP", port = 80) => ({ metadata: { name, namespace: "default" }, spec: { ports: [{ name: "p", protocol: proto, port, targetPort: port }] } });
    const sliceObj = (name: string, base: number, proto = "TCP", port = 8080) => ({
      metadata: { name: `${name}-1`, namespace: "default", labels: { "kubernetes.io/service-name": name } },
      addressType: "IPv4",
      endpoints: Array.from({ length: 10 }, (_, j) => ({ addresses: [ip4(base + j)], conditions: { ready: true }, nodeName: NODE_NAME })),
      ports: [{ name: "p", protocol: proto, port }],
    });
    for (let i = 0; i < others; i++) {
      reg.create("Service", svcObj(`other-${i}`));
      reg.create("EndpointSlice", sliceObj(`other-${i}`, IP_10_128 + i * 16));
    }
    reg.create("Service", svcObj("udp", "UDP", 53));
    let udpSlice = reg.create("EndpointSlice", sliceObj("udp", IP_10_251, "UDP", 53)) as unknown as EndpointSlice;
    reg.create("Service", svcObj("lat"));
    let slice = reg.create("EndpointSlice", sliceObj("lat", IP_10_250)) as unknown as EndpointSlice;

    const dp = new Dataplane({ seed: 1 });
    const prog = new Programmer(dp, { nodeName: NODE_NAME });
    prog.setLocalSources([POD_CIDR]);
    const syncs: number[] = [];
    const cleanups: number[] = [];
    const cleanupFlows: number[] = [];
    const cleanupStepMs: number[] = [];
    let cleanupSteps = 0;
    let measuring = false;
    let cleaned = 0;
    proxier = new Proxier(reg, prog, {
      minSyncIntervalMs,
      onSync: (ms, full) => { if (measuring && !full) syncs.push(ms); },
      onFlushed: (flows, ms, steps) => {
        cleaned++;
        cleanups.push(ms);
        cleanupFlows.push(flows);
        cleanupStepMs.push(ms / steps);
        cleanupSteps = Math.max(cleanupSteps, steps);
      },
    });
    await proxier.start();
    await proxier.ready;
    const key = "default/lat:p/TCP";
    const svcId = prog.serviceId(key);
    if (svcId === undefined) throw new Error(`${key} was not programmed`);
    const holds = (id: number, ip: string): boolean => {
      for (let slot = 0; slot < 10; slot++) {
        const s = dp.maps.svcSlots.lookup({ svcId: id, slot });
        if (s && dp.maps.backends.get(s.backendId).addrBe === ip) return true;
      }
      return false;
    };
    // UDP flows from pods to the other Service: conntrack is not empty, as on a busy node.
    const udpVip = prog.programmed().find((p) => p.model.key === "default/udp:p/UDP")?.model.clusterIPs[0];
    if (!udpVip) throw new Error("default/udp was not programmed");
    for (let i = 0; i < udpFlows; i += 256) {
      const frames = [];
      for (let j = i; j < Math.min(udpFlows, i + 256); j++) {
        frames.push({ data: buildFrame({ src: ip4(IP_10_244 + 2 + (j >>> 14)), dst: udpVip, proto: "UDP", sport: 10000 + (j & 16383), dport: 53 }) });
      }
      dp.process(frames, 1000);
    }
    const conntrackEntries = dp.maps.conntrack.count;

    const latencies: number[] = [];
    const commits: number[] = [];
    let timeouts = 0;
    await sleep(spacingMs);
    measuring = true;
    for (let i = 0; i < changes; i++) {
      const ip = ip4(IP_10_250 + 256 + i);
      const next = structuredClone(slice);
      next.endpoints[i % 10]!.addresses = [ip];
      const c0 = performance.now();
      slice = reg.update("EndpointSlice", next);
      const t0 = performance.now();
      commits.push(t0 - c0);
      const ms = await pollUntil(() => holds(svcId, ip), t0, 2000);
      if (Number.isNaN(ms)) timeouts++;
      else latencies.push(ms);
      await sleep(spacingMs);
    }
    // Changes of the UDP Service: each departing backend has flows, removed after the maps are in.
    const udpId = prog.serviceId("default/udp:p/UDP")!;
    const udpLatencies: number[] = [];
    for (let i = 0; i < 10; i++) {
      const ip = ip4(IP_10_251 + 256 + i);
      const next = structuredClone(udpSlice);
      next.endpoints[i]!.addresses = [ip];
      const before = cleaned;
      udpSlice = reg.update("EndpointSlice", next);
      const t0 = performance.now();
      const ms = await pollUntil(() => holds(udpId, ip), t0, 2000);
      if (Number.isNaN(ms)) timeouts++;
      else udpLatencies.push(ms);
      await pollUntil(() => cleaned > before, performance.now(), 5000);
      await sleep(spacingMs);
    }
    measuring = false;
    for (const a of [latencies, commits, syncs, udpLatencies, cleanups, cleanupFlows, cleanupStepMs]) a.sort((x, y) => x - y);
    const flushes: number[] = [];
    for (let i = 0; i < 20; i++) {
      const f0 = performance.now();
      dp.flushBackend(0x7fffffff, { udp: true, sctp: true });
      flushes.push(performance.now() - f0);
    }
    flushes.sort((a, b) => a - b);
    const conntrackCapacity = dp.x.mapCapacity(dp.maps.conntrack.id);
    return {
      changes, latencies, commits, syncs, udpLatencies, cleanups, cleanupFlows, cleanupSteps, cleanupStepMs, flushes, conntrackCapacity, conntrackEntries,
      otherServices: others, minSyncIntervalMs, spacingMs, timeouts,
    };
  } finally {
    proxier?.stop();
    reg.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export function latencySummary(r: LatencyResult): string {
  const q = (a: number[], p: number) => quantile(a, p).toFixed(2);
  return `median ${q(r.latencies, 0.5)} ms, p99 ${q(r.latencies, 0.99)} ms, max ${q(r.latencies, 1)} ms over ${r.latencies.length} changes` +
    (r.timeouts ? ` (${r.timeouts} not seen within 2 s)` : "");
}

// ---------------------------------------------------------------- step 3

export const SYNC_MAP_SIZES: Partial<Record<MapName, number>> = {
  services: 16_384,
  frontends: 16_384,
  rev_nat: 16_384,
  addrs: 16_384,
  stats_service: 16_384,
  backends: 131_072,
  svc_slots: 131_072,
  stats_backend: 131_072,
};

export interface SyncRun {
  label: string;
  /** ms from proxier.start() to proxier.ready: the lists, the informers and the tracker, then the full sync. */
  startToReadyMs: number;
  /** ms from proxier.start() to the three lists delivered into the informers' caches and the tracker. */
  listMs: number;
  /** ms of the full sync itself (the proxier's onSync measure: tracker state → models → programmer → maps). */
  syncMs: number;
  /** The main thread's own CPU time (ms) in the sync and in start → ready (NaN where /proc/thread-self is missing). */
  syncCpuMs: number;
  startToReadyCpuMs: number;
  dataplaneCreateMs: number;
  entries: Record<string, number>;
}

/** One kernel mode loading the equivalent kube-proxy rules with iptables-restore (replacing the tables). */
export interface KernelLoad {
  mode: KernelMode;
  ms?: number;
  rules?: number;
  bytes?: number;
  error?: string;
}

export interface ProfileEntry {
  fn: string;
  file: string;
  selfMs: number;
  share: number;
}

export interface SyncResult {
  services: number;
  endpointsPerService: number;
  objectsBuildMs: number;
  runs: SyncRun[];
  /** Bytes per map (table overhead included) and the WASM memory of one Dataplane. */
  mapBytes: Array<{ name: string; maxEntries: number; bytes: number }>;
  wasmMemoryBytes: number;
  heapUsedBytes: number;
  /** iptables-restore of the equivalent rules in a throwaway namespace, per iptables backend, in the same run. */
  kernel: KernelLoad[];
  /** Self time by function in a third, profiled run (V8 sampling profiler, 100 µs). */
  profile?: { totalMs: number; startToReadyMs: number; top: ProfileEntry[]; byFile: Array<{ file: string; selfMs: number; share: number }> };
}

interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string } }>;
  samples: number[];
  timeDeltas: number[];
}

/** Runs f under the in-process V8 CPU profiler (node:inspector); its self time by function and by file. */
async function profiled<T>(f: () => Promise<T>): Promise<{ value: T; profile: NonNullable<SyncResult["profile"]> & { startToReadyMs: number } }> {
  const session = new Session();
  session.connect();
  const post = (method: string, params?: object) =>
    new Promise<unknown>((resolve, reject) => session.post(method, params ?? {}, (e, r) => (e ? reject(e) : resolve(r))));
  try {
    await post("Profiler.enable");
    await post("Profiler.setSamplingInterval", { interval: 100 });
    await post("Profiler.start");
    const value = await f();
    const { profile } = (await post("Profiler.stop")) as { profile: CpuProfile };
    const byNode = new Map(profile.nodes.map((n) => [n.id, n]));
    const fnTime = new Map<string, number>();
    const fileTime = new Map<string, number>();
    let total = 0;
    profile.samples.forEach((id, i) => {
      const dt = (profile.timeDeltas[i] ?? 0) / 1000;
      const n = byNode.get(id);
      if (!n) return;
      const name = n.callFrame.functionName;
      if (name === "(idle)" || name === "(program)") return;
      // The inspector session's own native dispatch (Profiler.start/stop serialising the profile): not the sync.
      if (name === "dispatch" && !n.callFrame.url) return;
      total += dt;
      const file = prettyFile(n.callFrame.url);
      const k = `${name || "(anonymous)"}\u0000${file}`;
      fnTime.set(k, (fnTime.get(k) ?? 0) + dt);
      fileTime.set(file, (fileTime.get(file) ?? 0) + dt);
    });
    const top = [...fnTime].sort((a, b) => b[1] - a[1]).slice(0, 12).map(([k, ms]) => {
      const [fn, file] = k.split("\u0000");
      return { fn: fn!, file: file!, selfMs: ms, share: ms / total };
    });
    const byFile = [...fileTime].sort((a, b) => b[1] - a[1]).slice(0, 10).map(([file, ms]) => ({ file, selfMs: ms, share: ms / total }));
    return { value, profile: { totalMs: total, startToReadyMs: NaN, top, byFile } };
  } finally {
    await post("Profiler.disable").catch(() => undefined);
    session.disconnect();
  }
}

/** file:///…/dist/src/proxy/endpoints.js → src/proxy/endpoints.ts; V8 internals and WASM keep a short name. */
function prettyFile(url: string): string {
  if (!url) return "(V8: GC, builtins, native)";
  if (url.startsWith("wasm://")) return "WASM dataplane (build/release.wasm)";
  const m = /\/dist\/((?:src|bench)\/.*)\.js$/.exec(url) ?? /\/((?:src|bench)\/.*)\.ts$/.exec(url);
  if (m) return `${m[1]}.ts`;
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return `node_modules/${nm[1]}`;
  return url.replace(/^node:/, "node:");
}

/** 10k fully defaulted Services (ClusterIP, one TCP port) and one EndpointSlice each. */
export function buildSyncObjects(nSvc: number, nEp: number): object[] {
  const objs: object[] = [];
  const ts = new Date().toISOString();
  let rv = 1;
  for (let i = 0; i < nSvc; i++) {
    const name = `svc-${i}`;
    const ip = ip4(((10 << 24 | 96 << 16) >>> 0) + 1 + i);
    const svc: Service = {
      apiVersion: "v1", kind: "Service",
      metadata: { name, namespace: "default", uid: randomUUID(), resourceVersion: String(rv++), creationTimestamp: ts },
      spec: {
        type: "ClusterIP", clusterIP: ip, clusterIPs: [ip], ipFamilies: ["IPv4"], ipFamilyPolicy: "SingleStack",
        sessionAffinity: "None", internalTrafficPolicy: "Cluster", selector: { app: name },
        ports: [{ name: "http", protocol: "TCP", port: 80, targetPort: 8080 }],
      },
      status: { loadBalancer: {} },
    };
    const slice: EndpointSlice = {
      apiVersion: "discovery.k8s.io/v1", kind: "EndpointSlice",
      metadata: {
        name: `${name}-abcde`, namespace: "default", uid: randomUUID(), resourceVersion: String(rv++), creationTimestamp: ts,
        labels: { "kubernetes.io/service-name": name, "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io" },
      },
      addressType: "IPv4",
      endpoints: Array.from({ length: nEp }, (_, j) => ({
        addresses: [ip4(IP_10_128 + i * nEp + j + 1)],
        conditions: { ready: true, serving: true, terminating: false },
        nodeName: j % 2 === 0 ? NODE_NAME : "node-b",
        targetRef: { kind: "Pod", namespace: "default", name: `${name}-${j}` },
      })),
      ports: [{ name: "http", protocol: "TCP", port: 8080 }],
    };
    objs.push(svc, slice);
  }
  // Through JSON, as the store and the API hand objects out (flat strings, no shared parts).
  return JSON.parse(JSON.stringify(objs)) as object[];
}

/** The main thread's CPU time so far, ms (scheduler statistics: on-CPU nanoseconds), or NaN. */
function threadCpuMs(): number {
  try {
    return Number(readFileSync("/proc/thread-self/schedstat", "utf8").split(" ")[0]) / 1e6;
  } catch {
    return NaN;
  }
}

/** A Dataplane sized for the set, and how long making it took (not part of any sync). */
function makeDataplane(): { dp: Dataplane; ms: number } {
  const d0 = performance.now();
  const dp = new Dataplane({ seed: 1, maxEntries: SYNC_MAP_SIZES });
  return { dp, ms: performance.now() - d0 };
}

async function syncOnce(label: string, source: StaticSource, count = true, made = makeDataplane()): Promise<{ run: SyncRun; dp: Dataplane }> {
  const { dp, ms: dataplaneCreateMs } = made;
  const prog = new Programmer(dp, { nodeName: NODE_NAME });
  prog.setLocalSources([POD_CIDR]);
  let syncMs = NaN;
  let syncCpuMs = NaN;
  let c1 = NaN;
  const proxier = new Proxier(source, prog, {
    onSync: (ms, full) => {
      if (!full || !Number.isNaN(syncMs)) return;
      syncMs = ms;
      syncCpuMs = threadCpuMs() - c1;
    },
  });
  const c0 = threadCpuMs();
  const t0 = performance.now();
  await proxier.start();
  // The lists are in the caches and the tracker; the sync runs on the next turn.
  const listMs = performance.now() - t0;
  c1 = threadCpuMs();
  await proxier.ready;
  const startToReadyMs = performance.now() - t0;
  const startToReadyCpuMs = threadCpuMs() - c0;
  proxier.stop();
  const m = dp.maps;
  const entries: Record<string, number> = { services: prog.programmed().length, frontends: m.frontends.count, backends: NaN, svc_slots: m.svcSlots.count, rev_nat: m.frontends.count };
  if (count) {
    // Array maps have no count: count the backends the slots point at.
    const ids = new Set<number>();
    for (const [, v] of m.svcSlots.entries()) ids.add(v.backendId);
    entries.backends = ids.size;
  }
  return { run: { label, startToReadyMs, listMs, syncMs, syncCpuMs, startToReadyCpuMs, dataplaneCreateMs, entries }, dp };
}

/** The kube-proxy rules equivalent to buildSyncObjects(nSvc, nEp), as the side-by-side benchmark writes them. */
function ruleModel(nSvc: number, nEp: number): RuleModel[] {
  const out: RuleModel[] = [];
  for (let i = 0; i < nSvc; i++) {
    out.push({
      namespace: "default", name: `svc-${i}`, clusterIP: ip4(((10 << 24 | 96 << 16) >>> 0) + 1 + i), affinity: false,
      ports: [{ name: "http", protocol: "TCP", port: 80, targetPort: 8080, endpoints: Array.from({ length: nEp }, (_, j) => ip4(IP_10_128 + i * nEp + j + 1)) }],
    });
  }
  return out;
}

/** iptables-restore of those rules into a fresh namespace, per installed iptables backend (root only). */
function runKernelLoads(nSvc: number, nEp: number): KernelLoad[] {
  const modes: KernelMode[] = ["iptables-legacy", "iptables-nft"];
  const why = netnsUnavailable();
  if (why) return modes.map((mode) => ({ mode, error: why }));
  const model = ruleModel(nSvc, nEp);
  const dir = mkdtempSync(join(tmpdir(), "tapvip-bench-rules-"));
  try {
    return modes.map((mode): KernelLoad => {
      const missing = kernelModeUnavailable(mode);
      if (missing) return { mode, error: missing };
      const ns = createNs("sync");
      try {
        const r = programAll(mode, ns, model, dir, { capSeconds: 600 });
        progress(`step 3: ${mode}-restore of the equivalent ${r.rules.toLocaleString("en-US")} rules: ${r.ms.toFixed(0)} ms`);
        return { mode, ms: r.ms, rules: r.rules, bytes: r.bytes };
      } catch (e) {
        return { mode, error: (e as Error).message };
      } finally {
        deleteNs(ns);
      }
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function runFullSync(o: { services?: number; endpoints?: number; kernel?: boolean } = {}): Promise<SyncResult> {
  const nSvc = o.services ?? 10_000;
  const nEp = o.endpoints ?? 10;
  const b0 = performance.now();
  const source = new StaticSource(buildSyncObjects(nSvc, nEp));
  const objectsBuildMs = performance.now() - b0;
  const runs: SyncRun[] = [];
  const line = (r: SyncRun) => `full sync ${r.syncMs.toFixed(1)} ms (main thread on CPU ${r.syncCpuMs.toFixed(1)} ms); start → ready ${r.startToReadyMs.toFixed(0)} ms`;
  const first = await syncOnce("first (cold JIT, as at agent start)", source);
  runs.push(first.run);
  progress(`step 3: ${first.run.label}: ${line(first.run)}`);
  const dp = first.dp;
  const mapBytes = MAPS.map((d) => ({ name: d.name, maxEntries: dp.x.mapMaxEntries(d.id), bytes: dp.x.mapBytes(d.id) }));
  const wasmMemoryBytes = dp.x.memory.buffer.byteLength;
  const heapUsedBytes = process.memoryUsage().heapUsed;
  for (let i = 0; i < 3; i++) {
    const r = await syncOnce(`warm JIT, fresh Dataplane (${i + 1})`, source, false);
    runs.push(r.run);
    progress(`step 3: ${r.run.label}: ${line(r.run)}`);
  }
  let profile: SyncResult["profile"];
  try {
    const made = makeDataplane(); // outside the profile: zeroing the maps' memory is not sync work
    const p = await profiled(() => syncOnce("profiled", source, false, made));
    profile = { ...p.profile, startToReadyMs: p.value.run.startToReadyMs };
    progress(`step 3: a run under the CPU profiler: start → ready ${p.value.run.startToReadyMs.toFixed(0)} ms; top: ` +
      profile.top.slice(0, 3).map((t) => `${t.fn} (${t.file}) ${(t.share * 100).toFixed(0)}%`).join(", "));
  } catch (e) {
    progress(`step 3: profiling failed: ${(e as Error).message}`);
  }
  const kernel = o.kernel === false ? [] : runKernelLoads(nSvc, nEp);
  return { services: nSvc, endpointsPerService: nEp, objectsBuildMs, runs, mapBytes, wasmMemoryBytes, heapUsedBytes, kernel, profile };
}
