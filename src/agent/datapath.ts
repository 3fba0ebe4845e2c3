// The TAP datapath: frames read from the TAP land straight in the dataplane's frame area (no
// copy), go through the WASM pipeline as one batch, and every frame that is not dropped is
// written back into the TAP — translated (TX), answered (REPLY) or unchanged (PASS) — with the
// TAP's MAC as destination so the kernel takes it. Conntrack is swept once a second.
//
// On a TAP opened with IFF_VNET_HDR (the fast path) every frame keeps its virtio-net header
// through the batch: with checksum and segmentation offloads the kernel hands over TCP/UDP
// super-frames of up to 64 KiB with partial checksums, the pipeline translates each once, and
// the kernel segments them after the write. Counters: frames, bytes, super-frames, a histogram
// of frame sizes and batch sizes, and time spent reading, in the pipeline and writing.

import type { Dataplane } from "../maps/dataplane.js";
import { Tap, verdictMask, DESC_SIZE } from "../host/tap.js";
import type { CaptureTap } from "./capture.js";

/** Upper bounds (bytes, inclusive) of the frame-size histogram buckets; the last is +Inf. */
export const FRAME_SIZE_BOUNDS = [64, 128, 256, 512, 1024, 1514, 4096, 16384, 32768, 65535] as const;

export interface DatapathStats {
  rxFrames: number;
  txFrames: number;
  rxBytes: number;
  batches: number;
  writeErrors: number;
  /** Frames read as GSO super-frames (virtio-net gso_type set): each becomes several on the wire. */
  superFrames: number;
  /** Read batch sizes: index = frames in the batch. */
  batchSizes: number[];
  /** Write batch sizes: index = frames written from one batch. */
  writeBatchSizes: number[];
  /** Frames read by size: index i counts frames ≤ FRAME_SIZE_BOUNDS[i]; the last index, larger ones. */
  frameSizes: number[];
  /** Nanoseconds spent in readBatch, in the pipeline (processBatch + MAC fix-up) and in writeBatch. */
  stageNs: { read: number; process: number; write: number };
}

/** A link-local next hop "behind" the TAP: routes point at it, frames from the TAP carry its MAC. */
export const NEXT_HOP_MAC = "02:74:76:00:00:fe";

export class TapDatapath {
  readonly stats: DatapathStats = {
    rxFrames: 0, txFrames: 0, rxBytes: 0, batches: 0, writeErrors: 0, superFrames: 0,
    batchSizes: [], writeBatchSizes: [], frameSizes: new Array(FRAME_SIZE_BOUNDS.length + 1).fill(0),
    stageNs: { read: 0, process: 0, write: 0 },
  };
  private stopRead: (() => void) | null = null;
  private sweepTimer: NodeJS.Timeout | null = null;
  private readonly mask = verdictMask("PASS", "TX", "REPLY");
  private readonly tapMac: Uint8Array;
  private readonly hopMac: Uint8Array;
  private readonly t0 = Date.now();

  constructor(private readonly dp: Dataplane, private readonly tap: Tap, private readonly capture?: CaptureTap) {
    this.tapMac = tap.macBytes;
    this.hopMac = Uint8Array.from(NEXT_HOP_MAC.split(":").map((h) => parseInt(h, 16)));
    this.stats.batchSizes = new Array(dp.batchMax + 1).fill(0);
    this.stats.writeBatchSizes = new Array(dp.batchMax + 1).fill(0);
    if (dp.frameCap <= tap.vnetHdrLen + 64) throw new Error(`frame buffers of ${dp.frameCap} bytes are too small for TAP ${tap.name}`);
  }

  /** Seconds on the dataplane's clock (monotonic since start, offset so it is never 0). */
  now(): number {
    return 1 + Math.floor((Date.now() - this.t0) / 1000);
  }

  start(): void {
    this.stopRead = this.tap.onReadable(() => this.drain());
    this.sweepTimer = setInterval(() => this.dp.sweep(this.now()), 1000);
    this.sweepTimer.unref();
  }

  stop(): void {
    this.stopRead?.();
    this.stopRead = null;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
  }

  /** Reads and processes until the TAP has nothing queued. */
  drain(): void {
    const x = this.dp.x;
    const descs = x.batchDescsPtr();
    const frames = x.frameAreaPtr();
    const st = this.stats;
    for (;;) {
      const t0 = process.hrtime.bigint();
      const n = this.tap.readBatch(x.memory, descs, this.dp.batchMax, frames, this.dp.frameCap);
      const t1 = process.hrtime.bigint();
      st.stageNs.read += Number(t1 - t0);
      if (n === 0) return;
      const cap = this.capture;
      if (cap?.active) cap.pre(x.memory, descs, n);
      this.account(descs, n);
      x.processBatch(descs, n, this.now());
      this.fixMacs(descs, n);
      const t2 = process.hrtime.bigint();
      if (cap?.active) cap.post(x.memory, descs, n, this.mask);
      const w = this.tap.writeBatch(x.memory, descs, n, this.mask);
      const t3 = process.hrtime.bigint();
      st.stageNs.process += Number(t2 - t1);
      st.stageNs.write += Number(t3 - t2);
      st.rxFrames += n;
      st.txFrames += w.written;
      st.writeErrors += w.errors + w.short;
      st.batches++;
      st.batchSizes[n]!++;
      st.writeBatchSizes[w.written]!++;
      if (n < this.dp.batchMax) return;
    }
  }

  /** Sizes, bytes and super-frames of a batch just read (before the pipeline rewrites it). */
  private account(descs: number, n: number): void {
    const dv = this.dp.mem.dv;
    const st = this.stats;
    const hl = this.tap.vnetHdrLen;
    const mem = hl ? new Uint8Array(this.dp.x.memory.buffer) : null;
    for (let i = 0; i < n; i++) {
      const d = descs + i * DESC_SIZE;
      const len = dv.getUint32(d + 4, true);
      st.rxBytes += len;
      let b = 0;
      while (b < FRAME_SIZE_BOUNDS.length && len > FRAME_SIZE_BOUNDS[b]!) b++;
      st.frameSizes[b]!++;
      if (mem && mem[dv.getUint32(d, true) - hl + 1] !== 0) st.superFrames++; // gso_type
    }
  }

  /** Frames going back into the TAP must be addressed to it: dst = TAP MAC, src = next hop. */
  private fixMacs(descs: number, n: number): void {
    const mem = new Uint8Array(this.dp.x.memory.buffer);
    const dv = this.dp.mem.dv;
    for (let i = 0; i < n; i++) {
      const d = descs + i * DESC_SIZE;
      if ((dv.getUint32(d + 12, true) & 0xff) === 3) continue; // DROP
      const off = dv.getUint32(d, true);
      mem.set(this.tapMac, off);
      mem.set(this.hopMac, off + 6);
    }
  }
}
