// The TAP datapath: frames read from the TAP land straight in the dataplane's frame area (no
// copy), go through the WASM pipeline as one batch, and every frame that is not dropped is
// written back into the TAP — translated (TX), answered (REPLY) or unchanged (PASS) — with the
// TAP's MAC as destination so the kernel takes it. Conntrack is swept once a second.
//
// On a TAP opened with IFF_VNET_HDR (the fast path) every frame keeps its virtio-net header
// through the batch: with checksum and segmentation offloads the kernel hands over TCP/UDP
// super-frames of up to 64 KiB with partial checksums, the pipeline translates each once, and
// the kernel segments them after the write.
//
// BatchLoop is the read → pipeline → write loop of one TAP queue; TapDatapath runs one on the
// main thread, src/agent/multiqueue.ts one per queue in worker threads. Counters live in a
// Float64Array of "cells" (below), so a worker's can sit in shared memory the main thread reads.

import type { Dataplane } from "../maps/dataplane.js";
import { Tap, verdictMask, DESC_SIZE, type WriteBatchResult } from "../host/tap.js";
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

// ---- counter cells ---------------------------------------------------------------------------
const C_RX = 0, C_TX = 1, C_RX_BYTES = 2, C_BATCHES = 3, C_WRITE_ERRORS = 4, C_SUPER = 5;
const C_READ_NS = 6, C_PROC_NS = 7, C_WRITE_NS = 8, C_SIZES = 9;
const C_BATCH_SIZES = C_SIZES + FRAME_SIZE_BOUNDS.length + 1;

/** Cells one queue's counters take for batches of up to `batchMax` frames. */
export function statsCells(batchMax: number): number {
  return C_BATCH_SIZES + 2 * (batchMax + 1);
}

/** The counters of one or more queues, summed. */
export function statsFromCells(all: readonly Float64Array[], batchMax: number): DatapathStats {
  const sum = (i: number) => all.reduce((a, c) => a + c[i]!, 0);
  const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => sum(from + i));
  return {
    rxFrames: sum(C_RX), txFrames: sum(C_TX), rxBytes: sum(C_RX_BYTES), batches: sum(C_BATCHES),
    writeErrors: sum(C_WRITE_ERRORS), superFrames: sum(C_SUPER),
    frameSizes: range(C_SIZES, FRAME_SIZE_BOUNDS.length + 1),
    batchSizes: range(C_BATCH_SIZES, batchMax + 1),
    writeBatchSizes: range(C_BATCH_SIZES + batchMax + 1, batchMax + 1),
    stageNs: { read: sum(C_READ_NS), process: sum(C_PROC_NS), write: sum(C_WRITE_NS) },
  };
}

/** A link-local next hop "behind" the TAP: routes point at it, frames from the TAP carry its MAC. */
export const NEXT_HOP_MAC = "02:74:76:00:00:fe";
export const NEXT_HOP_MAC_BYTES = Uint8Array.from(NEXT_HOP_MAC.split(":").map((h) => parseInt(h, 16)));

export interface BatchLoopOptions {
  /** The instance's processBatch and memory (its own batch area: descs, frames). */
  processBatch(descs: number, count: number, now: number): number;
  memory: WebAssembly.Memory;
  descs: number;
  frames: number;
  batchMax: number;
  frameCap: number;
  tap: Tap;
  cells: Float64Array;
  now(): number;
  /** Taken around processBatch when the maps are shared with other queues. */
  lock?: { enter(): void; leave(): void };
  capture?: CaptureTap;
}

/** One TAP queue's loop: read a batch, run the pipeline over it, write back what is not dropped. */
export class BatchLoop {
  private readonly mask = verdictMask("PASS", "TX", "REPLY");
  private readonly tapMac: Uint8Array;

  constructor(private readonly o: BatchLoopOptions) {
    this.tapMac = o.tap.macBytes;
    if (o.frameCap <= o.tap.vnetHdrLen + 64) throw new Error(`frame buffers of ${o.frameCap} bytes are too small for TAP ${o.tap.name}`);
    if (o.cells.length < statsCells(o.batchMax)) throw new Error("counter cells too short for the batch size");
  }

  /** Reads and processes until the TAP has nothing queued. */
  drain(): void {
    const { memory, descs, frames, batchMax, frameCap, tap, cells: c, lock } = this.o;
    for (;;) {
      const t0 = process.hrtime.bigint();
      const n = tap.readBatch(memory, descs, batchMax, frames, frameCap);
      const t1 = process.hrtime.bigint();
      c[C_READ_NS] += Number(t1 - t0);
      if (n === 0) return;
      const cap = this.o.capture;
      if (cap?.active) cap.pre(memory, descs, n);
      this.account(n);
      if (lock) {
        lock.enter();
        try {
          this.o.processBatch(descs, n, this.o.now());
        } finally {
          lock.leave();
        }
      } else this.o.processBatch(descs, n, this.o.now());
      this.fixMacs(n);
      const t2 = process.hrtime.bigint();
      if (cap?.active) cap.post(memory, descs, n, this.mask);
      const w: WriteBatchResult = tap.writeBatch(memory, descs, n, this.mask);
      const t3 = process.hrtime.bigint();
      c[C_PROC_NS] += Number(t2 - t1);
      c[C_WRITE_NS] += Number(t3 - t2);
      c[C_RX] += n;
      c[C_TX] += w.written;
      c[C_WRITE_ERRORS] += w.errors + w.short;
      c[C_BATCHES]++;
      c[C_BATCH_SIZES + n]++;
      c[C_BATCH_SIZES + batchMax + 1 + w.written]++;
      if (n < batchMax) return;
    }
  }

  /** Sizes, bytes and super-frames of a batch just read (before the pipeline rewrites it). */
  private account(n: number): void {
    const { memory, descs, cells: c } = this.o;
    const dv = new DataView(memory.buffer);
    const hl = this.o.tap.vnetHdrLen;
    const mem = hl ? new Uint8Array(memory.buffer) : null;
    for (let i = 0; i < n; i++) {
      const d = descs + i * DESC_SIZE;
      const len = dv.getUint32(d + 4, true);
      c[C_RX_BYTES] += len;
      let b = 0;
      while (b < FRAME_SIZE_BOUNDS.length && len > FRAME_SIZE_BOUNDS[b]!) b++;
      c[C_SIZES + b]++;
      if (mem && mem[dv.getUint32(d, true) - hl + 1] !== 0) c[C_SUPER]++; // gso_type
    }
  }

  /** Frames going back into the TAP must be addressed to it: dst = TAP MAC, src = next hop. */
  private fixMacs(n: number): void {
    const { memory, descs } = this.o;
    const mem = new Uint8Array(memory.buffer);
    const dv = new DataView(memory.buffer);
    for (let i = 0; i < n; i++) {
      const d = descs + i * DESC_SIZE;
      if ((dv.getUint32(d + 12, true) & 0xff) === 3) continue; // DROP
      const off = dv.getUint32(d, true);
      mem.set(this.tapMac, off);
      mem.set(NEXT_HOP_MAC_BYTES, off + 6);
    }
  }
}

/** Seconds on the dataplane's clock from a start time: monotonic since start, never 0. */
export function clockSince(t0: number): () => number {
  return () => 1 + Math.floor((Date.now() - t0) / 1000);
}

/** The single-queue datapath on the main thread. */
export class TapDatapath {
  private stopRead: (() => void) | null = null;
  private sweepTimer: NodeJS.Timeout | null = null;
  private readonly cells: Float64Array;
  private readonly loop: BatchLoop;
  readonly now: () => number;

  constructor(private readonly dp: Dataplane, private readonly tap: Tap, capture?: CaptureTap) {
    this.cells = new Float64Array(statsCells(dp.batchMax));
    this.now = clockSince(Date.now());
    const x = dp.x;
    this.loop = new BatchLoop({
      processBatch: (d, n, now) => x.processBatch(d, n, now), memory: x.memory, descs: x.batchDescsPtr(), frames: x.frameAreaPtr(),
      batchMax: dp.batchMax, frameCap: dp.frameCap, tap, cells: this.cells, now: this.now, capture,
    });
  }

  get stats(): DatapathStats {
    return statsFromCells([this.cells], this.dp.batchMax);
  }

  start(): void {
    this.stopRead = this.tap.onReadable(() => this.loop.drain());
    this.sweepTimer = setInterval(() => this.dp.sweep(this.now()), 1000);
    this.sweepTimer.unref();
  }

  stop(): void {
    this.stopRead?.();
    this.stopRead = null;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
  }

  drain(): void {
    this.loop.drain();
  }
}
