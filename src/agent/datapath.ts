// The TAP datapath: frames read from the TAP land straight in the dataplane's frame area (no
// copy), go through the WASM pipeline as one batch, and every frame that is not dropped is
// written back into the TAP — translated (TX), answered (REPLY) or unchanged (PASS) — with the
// TAP's MAC as destination so the kernel takes it. Conntrack is swept once a second.

import type { Dataplane } from "../maps/dataplane.js";
import { Tap, verdictMask, DESC_SIZE } from "../host/tap.js";
import type { CaptureTap } from "./capture.js";

export interface DatapathStats {
  rxFrames: number;
  txFrames: number;
  batches: number;
  writeErrors: number;
  /** Read batch sizes: index = frames in the batch. */
  batchSizes: number[];
  /** Write batch sizes: index = frames written from one batch. */
  writeBatchSizes: number[];
}

/** A link-local next hop "behind" the TAP: routes point at it, frames from the TAP carry its MAC. */
export const NEXT_HOP_MAC = "02:74:76:00:00:fe";

export class TapDatapath {
  readonly stats: DatapathStats = { rxFrames: 0, txFrames: 0, batches: 0, writeErrors: 0, batchSizes: [], writeBatchSizes: [] };
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
    for (;;) {
      const n = this.tap.readBatch(x.memory, descs, this.dp.batchMax, frames, this.dp.frameCap);
      if (n === 0) return;
      const cap = this.capture;
      if (cap?.active) cap.pre(x.memory, descs, n);
      x.processBatch(descs, n, this.now());
      this.fixMacs(descs, n);
      if (cap?.active) cap.post(x.memory, descs, n, this.mask);
      const w = this.tap.writeBatch(x.memory, descs, n, this.mask);
      this.stats.rxFrames += n;
      this.stats.txFrames += w.written;
      this.stats.writeErrors += w.errors + w.short;
      this.stats.batches++;
      this.stats.batchSizes[n]!++;
      this.stats.writeBatchSizes[w.written]!++;
      if (n < this.dp.batchMax) return;
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
