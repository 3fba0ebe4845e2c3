// Prometheus metrics read from the maps at scrape time, after real frames through the pipeline.

import { describe, it, expect } from "vitest";
import { request } from "node:http";
import { node, svc, CLIENT_POD, VIP } from "../helpers/node.js";
import { buildFrame, type FrameSpec } from "../../src/host/frames.js";
import type { ServicePortModel } from "../../src/proxy/programmer.js";
import { FRAME_SIZE_BOUNDS, type DatapathStats } from "../../src/agent/datapath.js";
import { createMetrics, serveMetrics } from "../../src/agent/metrics.js";
import { portView } from "../../src/agent/views.js";

const BE1 = "10.244.1.10";
const ep = (ip: string, port = 8080, extra: object = {}) => ({ ip, port, nodeName: "node-b", ...extra });
const WEB = '{namespace="default",name="web",port="80",protocol="TCP",port_name="http"}';
const DNS = '{namespace="default",name="dns",port="53",protocol="UDP",port_name="dns"}';

function setup() {
  const { dp, prog } = node();
  let models: ServicePortModel[] = [
    svc({ endpoints: [ep(BE1)] }),
    svc({ key: "default/dns:dns/UDP", protocol: "UDP", port: 53, clusterIPs: ["10.96.0.11"], internalTrafficPolicyLocal: true, endpoints: [ep(BE1, 5353)] }),
  ];
  prog.sync(models);
  const stats: DatapathStats = {
    rxFrames: 0, txFrames: 0, rxBytes: 0, batches: 0, writeErrors: 0, superFrames: 0,
    batchSizes: new Array(dp.batchMax + 1).fill(0), writeBatchSizes: new Array(dp.batchMax + 1).fill(0),
    frameSizes: new Array(FRAME_SIZE_BOUNDS.length + 1).fill(0), stageNs: { read: 0, process: 0, write: 0 },
  };
  const m = createMetrics({
    dp,
    programmerView: () => models.filter((x) => prog.serviceId(x.key) !== undefined).map((x) => portView(x, prog.serviceId(x.key)!)),
    datapathStats: () => stats,
  });
  const frames: FrameSpec[] = [];
  const send = (specs: FrameSpec[], t = 1000) => {
    frames.push(...specs);
    const res = dp.process(specs.map((s) => ({ data: buildFrame(s) })), t);
    // What the TAP datapath would count for this batch.
    stats.rxFrames += specs.length;
    stats.txFrames += res.filter((r) => r.verdict !== "DROP").length;
    stats.batches++;
    stats.batchSizes[specs.length]!++;
    for (const s of specs) {
      const len = buildFrame(s).length;
      stats.rxBytes += len;
      stats.frameSizes[FRAME_SIZE_BOUNDS.findIndex((b) => len <= b)]!++;
    }
    stats.stageNs.process += 1500;
    return res;
  };
  const setModels = (ms: ServicePortModel[]) => {
    models = ms;
    prog.sync(ms);
  };
  return { dp, prog, m, send, setModels, stats };
}

/** The value of one series in the exposition text, or undefined. */
function value(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(series + " "));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe("createMetrics", () => {
  it("exposes per-service, per-backend, reason, drop, conntrack, sync and TAP series with their values", async () => {
    const { m, send } = setup();
    const syn = buildFrame({ src: CLIENT_POD, dst: VIP, proto: "TCP", sport: 40000, dport: 80, flags: "S" });
    const synack = buildFrame({ src: BE1, dst: CLIENT_POD, proto: "TCP", sport: 8080, dport: 40000, flags: "SA" });
    const res = send([
      { src: CLIENT_POD, dst: VIP, proto: "TCP", sport: 40000, dport: 80, flags: "S" },
      { src: BE1, dst: CLIENT_POD, proto: "TCP", sport: 8080, dport: 40000, flags: "SA" },
      { src: CLIENT_POD, dst: "10.96.0.11", proto: "UDP", sport: 41000, dport: 53, payload: "q" }, // no local endpoint: DROP
      { src: CLIENT_POD, dst: "10.1.2.3", proto: "TCP", sport: 1, dport: 2 }, // not a service: PASS
    ]);
    expect(res.map((r) => `${r.verdict} ${r.reasonName}`)).toEqual(["TX new_flow", "TX reply", "DROP no_local_endpoint", "PASS not_service"]);
    m.observeSync(12, true, true);
    m.observeSync(0.3, false, true);
    m.observeSync(3, false, false);

    const text = await m.registry.metrics();
    expect(text).toContain("# TYPE tapvip_service_packets_total counter");
    expect(value(text, `tapvip_service_packets_total${WEB}`)).toBe(2);
    expect(value(text, `tapvip_service_bytes_total${WEB}`)).toBe(syn.length + synack.length);
    expect(value(text, `tapvip_service_new_flows_total${WEB}`)).toBe(1);
    expect(value(text, `tapvip_service_packets_total${DNS}`)).toBe(0);
    expect(value(text, `tapvip_service_endpoints{namespace="default",name="web",port="80",protocol="TCP",port_name="http",group="ready-remote"}`)).toBe(1);
    expect(value(text, `tapvip_backend_packets_total{backend="${BE1}:8080",protocol="TCP"}`)).toBe(2);
    expect(value(text, `tapvip_backend_new_flows_total{backend="${BE1}:8080",protocol="TCP"}`)).toBe(1);

    // Every reason is present, with its verdict; zeros included.
    expect(value(text, 'tapvip_frames_total{verdict="TX",reason="new_flow"}')).toBe(1);
    expect(value(text, 'tapvip_frames_total{verdict="TX",reason="reply"}')).toBe(1);
    expect(value(text, 'tapvip_frames_total{verdict="PASS",reason="not_service"}')).toBe(1);
    expect(value(text, 'tapvip_frames_total{verdict="DROP",reason="source_range"}')).toBe(0);
    expect(value(text, 'tapvip_frame_bytes_total{verdict="TX",reason="new_flow"}')).toBe(syn.length);
    expect(value(text, 'tapvip_drops_total{reason="no_local_endpoint"}')).toBe(1);
    expect(value(text, 'tapvip_drops_total{reason="ct_full"}')).toBe(0);
    expect(text).not.toContain('tapvip_drops_total{reason="new_flow"}');

    expect(value(text, "tapvip_conntrack_entries")).toBe(2);
    expect(value(text, "tapvip_conntrack_max_entries")).toBe(262144);
    expect(value(text, 'tapvip_map_entries{map="conntrack"}')).toBe(2);

    expect(text).toContain("# TYPE tapvip_sync_duration_seconds histogram");
    expect(value(text, 'tapvip_sync_duration_seconds_count{full="true"}')).toBe(1);
    expect(value(text, 'tapvip_sync_duration_seconds_sum{full="true"}')).toBeCloseTo(0.012);
    expect(value(text, 'tapvip_sync_duration_seconds_bucket{le="0.01",full="true"}')).toBe(0);
    expect(value(text, 'tapvip_sync_duration_seconds_bucket{le="0.025",full="true"}')).toBe(1);
    expect(value(text, 'tapvip_sync_duration_seconds_count{full="false"}')).toBe(2);
    expect(value(text, 'tapvip_sync_duration_seconds_bucket{le="0.0005",full="false"}')).toBe(1);
    expect(value(text, 'tapvip_syncs_total{full="false",result="failed"}')).toBe(1);
    expect(value(text, 'tapvip_syncs_total{full="true",result="ok"}')).toBe(1);
    expect(value(text, "tapvip_last_sync_timestamp_seconds")).toBeGreaterThan(1.7e9);

    expect(value(text, "tapvip_tap_rx_frames_total")).toBe(4);
    expect(value(text, "tapvip_tap_tx_frames_total")).toBe(3);
    expect(value(text, "tapvip_tap_read_batches_total")).toBe(1);
    expect(text).toContain("# TYPE tapvip_tap_read_batch_size histogram");
    expect(value(text, 'tapvip_tap_read_batch_size_bucket{le="2"}')).toBe(0);
    expect(value(text, 'tapvip_tap_read_batch_size_bucket{le="4"}')).toBe(1);
    expect(value(text, 'tapvip_tap_read_batch_size_bucket{le="64"}')).toBe(1);
    expect(value(text, 'tapvip_tap_read_batch_size_bucket{le="+Inf"}')).toBe(1);
    expect(value(text, "tapvip_tap_read_batch_size_sum")).toBe(4);
    expect(value(text, "tapvip_tap_read_batch_size_count")).toBe(1);
    expect(value(text, 'tapvip_tap_rx_frame_bytes_bucket{le="64"}')).toBe(4); // 54-56 byte frames
    expect(value(text, 'tapvip_tap_rx_frame_bytes_bucket{le="+Inf"}')).toBe(4);
    expect(value(text, "tapvip_tap_rx_frame_bytes_sum")).toBe(value(text, "tapvip_tap_rx_bytes_total"));
    expect(value(text, 'tapvip_tap_stage_seconds_total{stage="process"}')).toBeCloseTo(1.5e-6, 12);
    expect(value(text, "tapvip_tap_rx_super_frames_total")).toBe(0);
    expect(value(text, "tapvip_tap_write_batch_size_count")).toBe(0); // no write batch counted yet
  });

  it("values come from the maps at each scrape; a removed service leaves the series", async () => {
    const { m, send, setModels } = setup();
    send([{ src: CLIENT_POD, dst: VIP, proto: "TCP", sport: 40000, dport: 80, flags: "S" }]);
    expect(value(await m.registry.metrics(), `tapvip_service_new_flows_total${WEB}`)).toBe(1);
    send([
      { src: CLIENT_POD, dst: VIP, proto: "TCP", sport: 40001, dport: 80, flags: "S" },
      { src: CLIENT_POD, dst: VIP, proto: "TCP", sport: 40002, dport: 80, flags: "S" },
    ]);
    let text = await m.registry.metrics();
    expect(value(text, `tapvip_service_new_flows_total${WEB}`)).toBe(3);
    expect(value(text, "tapvip_conntrack_entries")).toBe(6);
    expect(value(text, 'tapvip_tap_read_batch_size_bucket{le="1"}')).toBe(1);
    expect(value(text, 'tapvip_tap_read_batch_size_bucket{le="2"}')).toBe(2);

    setModels([svc({ endpoints: [ep(BE1)] })]);
    text = await m.registry.metrics();
    expect(value(text, `tapvip_service_packets_total${DNS}`)).toBeUndefined();
    expect(value(text, `tapvip_service_packets_total${WEB}`)).toBe(3);
  });

  it("a write batch histogram when the datapath counts write batches", async () => {
    const { dp } = node();
    const m = createMetrics({
      dp, programmerView: () => [],
      datapathStats: () => ({ rxFrames: 3, txFrames: 3, batches: 2, writeErrors: 0, batchSizes: [0, 1, 1], writeBatchSizes: [0, 1, 1] }),
    });
    const text = await m.registry.metrics();
    expect(value(text, 'tapvip_tap_write_batch_size_bucket{le="1"}')).toBe(1);
    expect(value(text, "tapvip_tap_write_batch_size_sum")).toBe(3);
  });

  it("serveMetrics answers /metrics over HTTP", async () => {
    const { m, send } = setup();
    send([{ src: CLIENT_POD, dst: VIP, proto: "TCP", sport: 40000, dport: 80, flags: "S" }]);
    const srv = await serveMetrics(m.registry, "127.0.0.1", 0);
    try {
      const get = (path: string) => new Promise<{ status: number; type?: string; body: string }>((resolve, reject) => {
        request({ host: "127.0.0.1", port: srv.port, path, agent: false }, (res) => {
          let body = "";
          res.on("data", (c) => (body += c));
          res.on("end", () => resolve({ status: res.statusCode!, type: res.headers["content-type"], body }));
        }).on("error", reject).end();
      });
      const r = await get("/metrics");
      expect(r.status).toBe(200);
      expect(r.type).toBe("text/plain; version=0.0.4; charset=utf-8");
      expect(value(r.body, "tapvip_conntrack_entries")).toBe(2);
      expect((await get("/")).status).toBe(404);
    } finally {
      await srv.close();
    }
  });
});
