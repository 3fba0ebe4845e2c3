// The tapvip mode of the side-by-side benchmark.
//
// Traffic: `tapvip run` in the node namespace on TAP tvsb-tap with the model's Services and
// EndpointSlices from a `--manifests` file (what bench/node-net.ts does), -v so that it logs
// the time of its first full sync, plus whatever extra arguments the caller passes
// (--tapvip-args / TAPVIP_BENCH_ARGS: fast-path flags under development).
//
// Programming and endpoint changes, in this process: the same objects in the embedded store
// (src/store Registry over SQLite, fsync on every commit as `tapvip run` opens it), read by the
// agent's Proxier (informers → change tracker → bounded-frequency sync, 50 ms minimum interval,
// the agent's default) into a Programmer and a Dataplane (the WASM maps). Program all =
// proxier.start() → proxier.ready (the first full sync is in the maps) and the sync's own time;
// one endpoint change = registry.update() returning (committed) → svc_slots holding the new
// backend, polled on every event-loop turn (the method of bench/node-sync.ts runLatency, with
// the model's two-endpoint Services so that 10k Services fit the agent's default map sizes).

import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TAPVIP } from "../../src/demo/topology.js";
import { Dataplane } from "../../src/maps/dataplane.js";
import { Programmer } from "../../src/proxy/programmer.js";
import { Proxier } from "../../src/agent/proxier.js";
import { Registry } from "../../src/store/registry.js";
import type { EndpointSlice } from "../../src/store/types.js";
import { procCpu } from "../node-sys.js";
import { nsIp, nsSpawn, stopChild } from "./netns.js";
import { LINKS, NODE_IP, POD_CIDR, waitFor, type Topology } from "./topology.js";
import { endpointChange, manifestList, serviceObject, sliceObject, type ServiceModel } from "./model.js";

export const TAP = "tvsb-tap";

export interface Agent {
  child: ChildProcess;
  log: string;
  /** Spawn → "serving on TAP", ms. */
  startMs: number;
  /** The agent's first full sync (its -v "sync full ok in X ms" line), ms. */
  firstSyncMs: number;
  args: string[];
}

export async function startAgent(t: Topology, model: ServiceModel[], dir: string, extraArgs: string[]): Promise<Agent> {
  const file = join(dir, "tapvip-manifests.json");
  writeFileSync(file, manifestList(model));
  const args = ["run", "--tap", TAP, "--node-name", "node-a", "--node-ip", NODE_IP, "--pod-cidr", POD_CIDR,
    "--manifests", file, "--nodeport-iface", LINKS.nodeClient, "--state-file", "off", "--healthz-address", "off", "-v", ...extraArgs];
  const t0 = performance.now();
  const child = nsSpawn(t.node, ["node", TAPVIP, ...args]);
  const a: Agent = { child, log: "", startMs: NaN, firstSyncMs: NaN, args };
  child.stdout?.on("data", (d) => (a.log += d.toString()));
  child.stderr?.on("data", (d) => (a.log += d.toString()));
  await waitFor(child, "serving on TAP", 180_000);
  a.startMs = performance.now() - t0;
  a.firstSyncMs = Number(/sync full ok in ([\d.]+) ms/.exec(a.log)?.[1] ?? NaN);
  return a;
}

export async function stopAgent(a: Agent | null): Promise<void> {
  if (a) await stopChild(a.child, 8000);
}

export function logTail(a: Agent, lines = 12): string {
  return a.log.split("\n").filter((l) => !/^\s*$/.test(l)).slice(-lines).join("\n");
}

export interface AgentSample {
  /** CPU seconds of the agent process (all threads). */
  cpu: number;
  /** Frames the kernel could not queue on the TAP for the agent (TAP tx_dropped). */
  tapDrops: number;
}

export function agentSample(t: Topology, a: Agent): AgentSample {
  const c = a.child.pid ? procCpu(a.child.pid) : { user: NaN, sys: NaN };
  let tapDrops = NaN;
  try {
    const j = JSON.parse(nsIp(t.node, ["-s", "-j", "link", "show", "dev", TAP])) as Array<{ stats64: { tx: { dropped: number } } }>;
    tapDrops = j[0]!.stats64.tx.dropped;
  } catch {
    /* no TAP */
  }
  return { cpu: c.user + c.sys, tapDrops };
}

// ---------------------------------------------------------------- in process: store → maps

export interface StoreSyncResult {
  services: number;
  /** Objects written into the store before the measurement (durability normal), ms. */
  loadMs: number;
  /** proxier.start() → ready: list from the store + first full sync, ms. */
  startToReadyMs: number;
  /** The first full sync itself (tracker → programmer → maps), ms. */
  syncMs: number;
  /** Commit → visible in svc_slots, ms, in order of the changes. */
  changeMs: number[];
  /** registry.update() (validation + SQLite commit with fsync), ms. */
  commitMs: number[];
  timeouts: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

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

export async function storeSync(model: ServiceModel[], changes: number, spacingMs = 60): Promise<StoreSyncResult> {
  const dir = mkdtempSync(join(tmpdir(), "tvsb-store-"));
  let reg: Registry | null = null;
  let proxier: Proxier | null = null;
  try {
    // Load fast (no fsync per object), then reopen as the agent does (fsync on every commit).
    const l0 = performance.now();
    reg = Registry.open(dir, { store: { durability: "normal" }, podGraceTimers: false, namespaceGraceMs: 0 });
    const slices: EndpointSlice[] = [];
    for (const s of model) {
      reg.create("Service", serviceObject(s));
      slices.push(reg.create("EndpointSlice", sliceObject(s)) as unknown as EndpointSlice);
    }
    reg.close();
    reg = Registry.open(dir, { store: { durability: "full" }, podGraceTimers: false, namespaceGraceMs: 0 });
    const loadMs = performance.now() - l0;

    const dp = new Dataplane({ seed: 1 });
    const prog = new Programmer(dp, { nodeName: "node-a" });
    prog.setLocalSources([POD_CIDR, `${NODE_IP}/32`]);
    let syncMs = NaN;
    proxier = new Proxier(reg, prog, { minSyncIntervalMs: 50, onSync: (ms, full) => { if (full && Number.isNaN(syncMs)) syncMs = ms; } });
    const t0 = performance.now();
    await proxier.start();
    await proxier.ready;
    const startToReadyMs = performance.now() - t0;

    const target = model[0]!;
    const key = `${target.namespace}/${target.name}:${target.ports[0]!.name}/${target.ports[0]!.protocol}`;
    const svcId = prog.serviceId(key);
    if (svcId === undefined) throw new Error(`${key} was not programmed`);
    const holds = (ip: string): boolean => {
      for (let slot = 0; slot < 4; slot++) {
        const s = dp.maps.svcSlots.lookup({ svcId, slot });
        if (s && dp.maps.backends.get(s.backendId).addrBe === ip) return true;
      }
      return false;
    };
    const changeMs: number[] = [];
    const commitMs: number[] = [];
    let timeouts = 0;
    let cur = target;
    let slice = slices[0]!;
    await sleep(spacingMs);
    for (let k = 0; k < changes; k++) {
      cur = endpointChange(cur, k);
      const ip = cur.ports[0]!.endpoints[1]!;
      const next = structuredClone(slice);
      next.endpoints[1]!.addresses = [ip];
      const c0 = performance.now();
      slice = reg.update("EndpointSlice", next);
      const c1 = performance.now();
      commitMs.push(c1 - c0);
      const ms = await pollUntil(() => holds(ip), c1, 2000);
      if (Number.isNaN(ms)) timeouts++;
      changeMs.push(ms);
      await sleep(spacingMs);
    }
    return { services: model.length, loadMs, startToReadyMs, syncMs, changeMs, commitMs, timeouts };
  } finally {
    proxier?.stop();
    reg?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
