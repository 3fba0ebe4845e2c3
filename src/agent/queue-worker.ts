// A worker thread serving one queue of a multi-queue TAP (tapvip run --queues N; started by
// src/agent/multiqueue.ts). It instantiates the shared WASM build over the dataplane's shared
// memory, attaches to its queue's batch area, and runs the same read → pipeline → write loop as
// the single-queue datapath, taking the maps' lock around each batch's pipeline run. Its
// counters are cells in shared memory that the main thread sums for /metrics.

import { parentPort, workerData } from "node:worker_threads";
import { instantiate } from "../maps/abi.js";
import { Tap } from "../host/tap.js";
import { BatchLoop, clockSince } from "./datapath.js";

export interface QueueWorkerData {
  memory: WebAssembly.Memory;
  queue: number;
  fd: number;
  tapName: string;
  tapMac: Uint8Array;
  vnetHdrLen: number;
  /** The dataplane clock's start (Date.now()), the same for every queue. */
  t0: number;
  cells: Float64Array;
}

const d = workerData as QueueWorkerData;
const x = instantiate("shared", d.memory);
const rc = x.attach(d.queue);
if (rc !== 0) throw new Error(`queue ${d.queue}: attach failed (${rc})`);
const tap = Tap.adopt(d.fd, d.tapName, d.tapMac, d.vnetHdrLen);
const loop = new BatchLoop({
  processBatch: (descs, n, now) => x.processBatch(descs, n, now), memory: d.memory, descs: x.batchDescsPtr(), frames: x.frameAreaPtr(),
  batchMax: x.batchMax(), frameCap: x.frameCap(), tap, cells: d.cells, now: clockSince(d.t0),
  lock: { enter: () => x.lockEnter(), leave: () => x.lockLeave() },
});
const stopRead = tap.onReadable(() => loop.drain());
parentPort!.on("message", (m: unknown) => {
  if (m !== "stop") return;
  stopRead();
  tap.pauseReadable();
  parentPort!.postMessage("stopped");
  parentPort!.close();
});
parentPort!.postMessage("ready");
