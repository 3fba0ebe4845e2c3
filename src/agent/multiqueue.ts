// The multi-queue datapath (tapvip run --queues N): one queue of an IFF_MULTI_QUEUE TAP per
// worker thread, each running the WASM pipeline (src/agent/queue-worker.ts) over the one shared
// memory of the Dataplane, so conntrack, affinity and SNAT are the same whichever queue a flow's
// packets land on (the kernel spreads flows over queues by hash, and a reply's NATed tuple
// hashes differently from its request's). The main thread keeps the control plane: it programs
// the maps and sweeps conntrack under the maps' lock (Dataplane takes it for each synchronous
// run), and sums the workers' counters, which they keep in shared memory.

import { Worker } from "node:worker_threads";
import type { Dataplane } from "../maps/dataplane.js";
import type { Tap } from "../host/tap.js";
import { clockSince, statsCells, statsFromCells, type DatapathStats } from "./datapath.js";
import type { QueueWorkerData } from "./queue-worker.js";

export class MultiQueueDatapath {
  readonly now: () => number;
  private readonly t0 = Date.now();
  private readonly cells: Float64Array[];
  private workers: Worker[] = [];
  private sweepTimer: NodeJS.Timeout | null = null;

  private stopping = false;
  private stallsSeen = 0;

  /**
   * `taps[i]` is queue i; the dataplane must have been made with `queues: taps.length`.
   * `onFatal` is called when a queue's worker dies while serving: its share of the traffic
   * would be lost, so the agent should stop (and be restarted) rather than limp on.
   */
  constructor(private readonly dp: Dataplane, private readonly taps: readonly Tap[], private readonly log: (l: string) => void = () => {},
    private readonly onFatal: (e: Error) => void = () => {}) {
    if (dp.queues !== taps.length) throw new Error(`the dataplane has ${dp.queues} queues, the TAP ${taps.length}`);
    this.now = clockSince(this.t0);
    const n = statsCells(dp.batchMax);
    const sab = new SharedArrayBuffer(n * 8 * taps.length);
    this.cells = taps.map((_, i) => new Float64Array(sab, i * n * 8, n));
  }

  get stats(): DatapathStats {
    return statsFromCells(this.cells, this.dp.batchMax);
  }

  /** Starts one worker per queue; resolves once every one serves its queue. */
  async start(): Promise<void> {
    const url = new URL("./queue-worker.js", import.meta.url);
    this.workers = this.taps.map((tap, queue) => {
      const data: QueueWorkerData = {
        memory: this.dp.x.memory, queue, fd: tap.fd, tapName: tap.name, tapMac: tap.macBytes, vnetHdrLen: tap.vnetHdrLen,
        t0: this.t0, cells: this.cells[queue]!,
      };
      const w = new Worker(url, { workerData: data, name: `tapvip-queue-${queue}` });
      w.on("error", (e) => this.log(`tapvip: queue ${queue} worker failed: ${e.stack ?? e.message}`));
      w.on("exit", (code) => {
        if (!this.stopping) this.onFatal(new Error(`queue ${queue} worker exited (${code}) while serving`));
      });
      return w;
    });
    await Promise.all(this.workers.map((w, q) => new Promise<void>((res, rej) => {
      const onExit = (code: number) => rej(new Error(`queue ${q} worker exited (${code}) before serving`));
      w.once("message", (m) => {
        w.off("exit", onExit);
        if (m === "ready") res();
        else rej(new Error(`queue ${q} worker: unexpected message ${String(m)}`));
      });
      w.once("error", rej);
      w.once("exit", onExit);
    })));
    this.sweepTimer = setInterval(() => {
      this.dp.sweep(this.now());
      const stalls = this.dp.x.lockStalls();
      if (stalls > this.stallsSeen) this.log(`tapvip: the maps' lock was waited on for over a second ${stalls - this.stallsSeen} time(s)`);
      this.stallsSeen = stalls;
    }, 1000);
    this.sweepTimer.unref();
  }

  /** Stops the workers (they stop reading; the TAP fds stay with their Tap objects). */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
    const ws = this.workers;
    this.workers = [];
    await Promise.all(ws.map(async (w) => {
      const stopped = new Promise<void>((res) => {
        w.once("message", () => res());
        w.once("exit", () => res());
        setTimeout(res, 1000).unref();
      });
      w.postMessage("stop");
      await stopped;
      await w.terminate();
    }));
  }
}
