// `tapvip replay`: builds the maps from Kubernetes manifests, runs every frame of a capture
// through the same pipeline a node runs, writes the frames it would transmit or reply with
// (in order, with the input's timestamps) and one JSON line per input frame with its verdict.

import { createWriteStream } from "node:fs";
import { once } from "node:events";
import { Dataplane } from "../maps/dataplane.js";
import { Programmer } from "../proxy/programmer.js";
import { buildModels, splitObjects } from "../proxy/model.js";
import type { Algorithm } from "../maps/layout.js";
import { loadObjects } from "./objects.js";
import { readPcap } from "./pcap/reader.js";
import { PcapWriter } from "./pcap/writer.js";
import { describeFrame } from "./frames.js";

export interface ReplayOptions {
  manifests: string;
  input: string;
  output: string;
  verdicts?: string;
  nodeIP?: string;
  nodeName?: string;
  /** Sources that count as this node's own (its pods); the node IP always does. */
  podCIDR?: string;
  seed?: number;
  algorithm?: Algorithm;
  swapMacs?: boolean;
  serviceCIDR?: string;
  log?: (line: string) => void;
}

export interface ReplaySummary {
  frames: number;
  written: number;
  byVerdict: Record<string, number>;
  byReason: Record<string, number>;
  services: number;
}

export async function replay(o: ReplayOptions): Promise<ReplaySummary> {
  const log = o.log ?? (() => {});
  const nodeIP = o.nodeIP ?? "192.0.2.1";
  const objs = await loadObjects(o.manifests, { seed: o.seed, serviceCIDR: o.serviceCIDR, note: log });
  const models = buildModels(splitObjects(objs));
  const dp = new Dataplane({
    seed: o.seed ?? 1,
    config: { snatAddr: nodeIP, swapMacs: o.swapMacs ?? true, defaultAlgorithm: o.algorithm ?? "random" },
  });
  const prog = new Programmer(dp, { nodeName: o.nodeName ?? "replay-node" });
  prog.setNodeAddresses([nodeIP]);
  prog.setLocalSources([...(o.podCIDR ? [o.podCIDR] : []), `${nodeIP}/32`]);
  prog.sync(models);
  log(`programmed ${models.length} service ports from ${o.manifests}`);

  const cap = await readPcap(o.input);
  const writer = await PcapWriter.open(o.output);
  const jsonl = o.verdicts ? createWriteStream(o.verdicts) : null;
  const summary: ReplaySummary = { frames: 0, written: 0, byVerdict: {}, byReason: {}, services: models.length };
  let lastSweep = -1;
  // Frames are processed one capture-second at a time, each second as batches.
  for (let i = 0; i < cap.frames.length; ) {
    const t = cap.frames[i]!.tsSec;
    let j = i;
    while (j < cap.frames.length && cap.frames[j]!.tsSec === t) j++;
    const group = cap.frames.slice(i, j);
    if (t !== lastSweep) {
      dp.sweep(t);
      lastSweep = t;
    }
    const results = dp.process(group, t);
    results.forEach((r, k) => {
      const f = group[k]!;
      const n = i + k + 1;
      summary.frames++;
      summary.byVerdict[r.verdict] = (summary.byVerdict[r.verdict] ?? 0) + 1;
      summary.byReason[r.reasonName] = (summary.byReason[r.reasonName] ?? 0) + 1;
      const sent = r.verdict === "TX" || r.verdict === "REPLY";
      if (sent) {
        writer.write(r.data, f.tsSec, f.tsUsec);
        summary.written++;
      }
      if (jsonl) {
        const line: Record<string, unknown> = { frame: n, ts: `${f.tsSec}.${String(f.tsUsec).padStart(6, "0")}`, verdict: r.verdict, reason: r.reasonName, in: safeDescribe(f.data) };
        if (sent) line.out = safeDescribe(r.data);
        jsonl.write(JSON.stringify(line) + "\n");
      }
    });
    i = j;
  }
  await writer.close();
  if (jsonl) {
    jsonl.end();
    await once(jsonl, "finish");
  }
  return summary;
}

function safeDescribe(f: Uint8Array): string {
  try {
    return describeFrame(f);
  } catch (e) {
    return `unparseable (${(e as Error).message})`;
  }
}
