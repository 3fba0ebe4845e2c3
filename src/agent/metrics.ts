// Prometheus metrics of the node agent (prom-client). Everything the dataplane counts lives in
// its maps, so those series are read from the maps at scrape time (collect()), never mirrored:
// per-service-port and per-backend packets / bytes / new flows, frames per verdict and reason,
// drops per reason, conntrack occupancy; plus the sync duration histogram the proxier feeds and
// the TAP datapath's frame counters and batch-size histograms.

import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Dataplane } from "../maps/dataplane.js";
import { REASONS, reasonName, type Verdict } from "../maps/verdicts.js";
import { FRAME_SIZE_BOUNDS, type DatapathStats } from "./datapath.js";
import type { ProgrammerView } from "./views.js";
import { listen } from "./healthcheck.js";

/** DatapathStats, optionally with write batch sizes (index = frames written by one writeBatch). */
export type DatapathStatsLike = Pick<DatapathStats, "rxFrames" | "txFrames" | "batches" | "writeErrors" | "batchSizes"> & Partial<DatapathStats>;

export interface MetricsOptions {
  dp: Dataplane;
  programmerView: ProgrammerView;
  /** The TAP datapath's counters; omit when there is no TAP (replay, tests). */
  datapathStats?: () => DatapathStatsLike;
  /** Metric name prefix (default "tapvip_"). */
  prefix?: string;
}

export interface Metrics {
  registry: Registry;
  /** Records one proxier sync (onSync's arguments). */
  observeSync(ms: number, full: boolean, ok: boolean): void;
}

/** Verdict of a reason code, from its constant's prefix (R_DROP_… → DROP). */
const REASON_VERDICT = new Map<number, Verdict>(
  Object.entries(REASONS).map(([k, v]) => [v, /^R_(PASS|TX|REPLY|DROP)_/.exec(k)![1] as Verdict]),
);

export const SYNC_BUCKETS_SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

const SVC_LABELS = ["namespace", "name", "port", "protocol", "port_name"] as const;
type SvcLabel = (typeof SVC_LABELS)[number];

/**
 * A histogram whose buckets come from an array of counts by value (index = observed value),
 * read at scrape time. prom-client's Histogram only takes single observations, so this
 * overrides its export with the array's cumulative counts.
 */
class ArrayHistogram extends Histogram<string> {
  private readonly bounds: number[];
  /**
   * `counts()[v]` is how many observations had value v; or, with `perBucket`, `counts()[i]` is
   * how many fell in bucket i (the last index: above every bound) and `perBucket()` gives their sum.
   */
  constructor(private readonly metricName: string, private readonly helpText: string, bounds: number[], private readonly counts: () => readonly number[] | undefined, registry: Registry,
    private readonly perBucket?: () => number) {
    super({ name: metricName, help: helpText, buckets: bounds, registers: [] });
    this.bounds = bounds;
    registry.registerMetric(this);
  }

  private snapshot() {
    const counts = this.counts() ?? [];
    const per = new Array<number>(this.bounds.length).fill(0);
    let count = 0;
    let sum = 0;
    if (this.perBucket) {
      counts.forEach((n, i) => {
        count += n;
        if (i < per.length) per[i] += n;
      });
      sum = this.perBucket();
    } else counts.forEach((n, v) => {
      if (!n) return;
      count += n;
      sum += n * v;
      const i = this.bounds.findIndex((b) => v <= b);
      if (i >= 0) per[i] += n;
    });
    const name = this.metricName;
    let acc = 0;
    const values: Array<{ labels: Record<string, string | number>; value: number; metricName: string }> =
      this.bounds.map((b, i) => ({ labels: { le: b }, value: (acc += per[i]!), metricName: `${name}_bucket` }));
    values.push({ labels: { le: "+Inf" }, value: count, metricName: `${name}_bucket` });
    values.push({ labels: {}, value: sum, metricName: `${name}_sum` });
    values.push({ labels: {}, value: count, metricName: `${name}_count` });
    return { name, help: this.helpText, type: "histogram", values, aggregator: "sum" };
  }

  override async get(): Promise<Awaited<ReturnType<Histogram<string>["get"]>>> {
    return this.snapshot() as unknown as Awaited<ReturnType<Histogram<string>["get"]>>;
  }

  /** What Registry.metrics() calls for the text format. */
  async getForPromString(): Promise<Awaited<ReturnType<Histogram<string>["get"]>>> {
    return this.get();
  }
}

function batchBounds(max: number): number[] {
  const b: number[] = [];
  for (let v = 1; v < max; v *= 2) b.push(v);
  b.push(max);
  return b;
}

/** Builds the registry. Series read from the maps are computed at every scrape. */
export function createMetrics(opts: MetricsOptions): Metrics {
  const { dp } = opts;
  const p = opts.prefix ?? "tapvip_";
  const registry = new Registry();
  const registers = [registry];

  const svcLabels = (): Array<{ svcId: number; labels: Record<SvcLabel, string> }> =>
    opts.programmerView().map((v) => ({
      svcId: v.svcId,
      labels: { namespace: v.namespace, name: v.name, port: String(v.port), protocol: v.protocol, port_name: v.portName ?? "" },
    }));

  // ---- per service port, from stats_service
  const svcCounter = (field: "packets" | "bytes" | "flows", name: string, help: string) =>
    new Counter({
      name: `${p}${name}`, help, labelNames: SVC_LABELS, registers,
      collect() {
        this.reset();
        for (const s of svcLabels()) this.inc(s.labels, Number(dp.maps.statsService.get(s.svcId)[field]));
      },
    });
  svcCounter("packets", "service_packets_total", "Packets of flows to a service port (both directions).");
  svcCounter("bytes", "service_bytes_total", "Bytes of flows to a service port (both directions, whole frames).");
  svcCounter("flows", "service_new_flows_total", "New flows to a service port.");

  new Gauge({
    name: `${p}service_endpoints`, help: "Backends programmed for a service port, by slot group.",
    labelNames: [...SVC_LABELS, "group"], registers,
    collect() {
      this.reset();
      for (const s of svcLabels()) {
        const v = dp.maps.services.get(s.svcId);
        this.set({ ...s.labels, group: "ready-local" }, v.readyLocal);
        this.set({ ...s.labels, group: "ready-remote" }, v.readyRemote);
        this.set({ ...s.labels, group: "terminating-local" }, v.terminatingLocal);
        this.set({ ...s.labels, group: "terminating-remote" }, v.terminatingRemote);
      }
    },
  });

  // ---- per backend, from stats_backend (backends reachable through some service's slots)
  const backendRows = () => {
    const ids = new Set<number>();
    for (const [, v] of dp.maps.svcSlots.entries()) ids.add(v.backendId);
    const rows: Array<{ id: number; labels: { backend: string; protocol: string } }> = [];
    for (const id of ids) {
      if (!id) continue;
      const b = dp.maps.backends.get(id);
      rows.push({ id, labels: { backend: `${b.addrBe}:${b.portBe}`, protocol: b.proto === 6 ? "TCP" : b.proto === 17 ? "UDP" : b.proto === 132 ? "SCTP" : String(b.proto) } });
    }
    return rows;
  };
  const beCounter = (field: "packets" | "bytes" | "flows", name: string, help: string) =>
    new Counter({
      name: `${p}${name}`, help, labelNames: ["backend", "protocol"], registers,
      collect() {
        this.reset();
        for (const r of backendRows()) this.inc(r.labels, Number(dp.maps.statsBackend.get(r.id)[field]));
      },
    });
  beCounter("packets", "backend_packets_total", "Packets of flows to a backend (both directions).");
  beCounter("bytes", "backend_bytes_total", "Bytes of flows to a backend (both directions).");
  beCounter("flows", "backend_new_flows_total", "New flows sent to a backend.");

  // ---- frames by verdict and reason, drops by reason (every reason, zeros included)
  const reasonRows = () => {
    const seen = new Map(dp.reasonStats().map((r) => [r.code, r]));
    return Object.values(REASONS).map((code) => ({
      code, name: reasonName(code), verdict: REASON_VERDICT.get(code)!,
      packets: Number(seen.get(code)?.packets ?? 0n), bytes: Number(seen.get(code)?.bytes ?? 0n),
    }));
  };
  new Counter({
    name: `${p}frames_total`, help: "Frames through the pipeline by verdict and reason.", labelNames: ["verdict", "reason"], registers,
    collect() {
      this.reset();
      for (const r of reasonRows()) this.inc({ verdict: r.verdict, reason: r.name }, r.packets);
    },
  });
  new Counter({
    name: `${p}frame_bytes_total`, help: "Bytes of frames through the pipeline by verdict and reason.", labelNames: ["verdict", "reason"], registers,
    collect() {
      this.reset();
      for (const r of reasonRows()) this.inc({ verdict: r.verdict, reason: r.name }, r.bytes);
    },
  });
  new Counter({
    name: `${p}drops_total`, help: "Frames dropped, by reason.", labelNames: ["reason"], registers,
    collect() {
      this.reset();
      for (const r of reasonRows()) if (r.verdict === "DROP") this.inc({ reason: r.name }, r.packets);
    },
  });

  // ---- conntrack
  new Gauge({
    name: `${p}conntrack_entries`, help: "Conntrack map entries (two per flow).", registers,
    collect() { this.set(dp.maps.conntrack.count); },
  });
  new Gauge({
    name: `${p}conntrack_max_entries`, help: "Conntrack map capacity.", registers,
    collect() { this.set(dp.maps.conntrack.maxEntries); },
  });
  new Counter({
    name: `${p}conntrack_evictions_total`, help: "Conntrack entries evicted because the map was full (LRU).", registers,
    collect() { this.reset(); this.inc(dp.maps.conntrack.evictions); },
  });
  new Gauge({
    name: `${p}map_entries`, help: "Entries in each hash map.", labelNames: ["map"], registers,
    collect() {
      this.reset();
      for (const m of [dp.maps.frontends, dp.maps.addrs, dp.maps.svcSlots, dp.maps.conntrack, dp.maps.affinity, dp.maps.snat, dp.maps.lpmV4]) this.set({ map: m.name }, m.count);
    },
  });

  // ---- sync
  const syncHist = new Histogram({
    name: `${p}sync_duration_seconds`, help: "Time to apply a sync to the maps.", labelNames: ["full"], buckets: SYNC_BUCKETS_SECONDS, registers,
  });
  const syncs = new Counter({ name: `${p}syncs_total`, help: "Syncs by kind and result.", labelNames: ["full", "result"], registers });
  const lastSync = new Gauge({ name: `${p}last_sync_timestamp_seconds`, help: "When the last successful sync finished (Unix time).", registers });
  syncHist.zero({ full: "true" });
  syncHist.zero({ full: "false" });
  for (const full of ["true", "false"]) for (const result of ["ok", "failed"]) syncs.inc({ full, result }, 0);

  // ---- TAP datapath
  const ds = opts.datapathStats;
  if (ds) {
    const tapCounter = (name: string, help: string, read: (s: DatapathStatsLike) => number) =>
      new Counter({ name: `${p}${name}`, help, registers, collect() { this.reset(); this.inc(read(ds())); } });
    tapCounter("tap_rx_frames_total", "Frames read from the TAP.", (s) => s.rxFrames);
    tapCounter("tap_tx_frames_total", "Frames written back into the TAP.", (s) => s.txFrames);
    tapCounter("tap_read_batches_total", "Batches read from the TAP (one WASM call each).", (s) => s.batches);
    tapCounter("tap_write_errors_total", "Frames the TAP refused or took short.", (s) => s.writeErrors);
    tapCounter("tap_rx_bytes_total", "Bytes of frames read from the TAP.", (s) => s.rxBytes ?? 0);
    tapCounter("tap_rx_super_frames_total", "Frames read as GSO super-frames (offloads on): the kernel segments them after the write.", (s) => s.superFrames ?? 0);
    new Counter({
      name: `${p}tap_stage_seconds_total`, help: "Time the datapath spent per stage: read (readBatch), process (WASM pipeline and MAC fix-up), write (writeBatch).",
      labelNames: ["stage"], registers,
      collect() {
        this.reset();
        const t = ds().stageNs;
        if (t) for (const [stage, ns] of Object.entries(t)) this.inc({ stage }, ns / 1e9);
      },
    });
    if (ds().frameSizes) {
      new ArrayHistogram(`${p}tap_rx_frame_bytes`, "Sizes of frames read from the TAP (super-frames up to 64 KiB with offloads).",
        [...FRAME_SIZE_BOUNDS], () => ds().frameSizes, registry, () => ds().rxBytes ?? 0);
    }
    const bounds = batchBounds(dp.batchMax);
    new ArrayHistogram(`${p}tap_read_batch_size`, "Frames per TAP read batch.", bounds, () => ds().batchSizes, registry);
    // Only when the datapath counts write batches (DatapathStats.writeBatchSizes).
    if (ds().writeBatchSizes) new ArrayHistogram(`${p}tap_write_batch_size`, "Frames per TAP write batch.", bounds, () => ds().writeBatchSizes, registry);
  }

  return {
    registry,
    observeSync(ms: number, full: boolean, ok: boolean) {
      const f = full ? "true" : "false";
      syncs.inc({ full: f, result: ok ? "ok" : "failed" });
      syncHist.observe({ full: f }, ms / 1000);
      if (ok) lastSync.setToCurrentTime();
    },
  };
}

/** Serves the registry on http://host:port/metrics (Prometheus text format). */
export async function serveMetrics(registry: Registry, host = "127.0.0.1", port = 10249): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path !== "/metrics") {
      res.writeHead(404, { "Content-Type": "text/plain; charset=utf-8" }).end("404 page not found\n");
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { "Content-Type": registry.contentType }).end(text),
      (e: Error) => res.writeHead(500, { "Content-Type": "text/plain; charset=utf-8" }).end(`${e.message}\n`),
    );
  });
  await listen(server, host, port);
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((r) => { server.close(() => r()); server.closeAllConnections(); }),
  };
}
