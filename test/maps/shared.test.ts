// The shared build: one Dataplane laid out for several queues over a shared memory, further
// instances attached to it (as the per-queue worker threads do), conntrack seen by all of them,
// and the maps' lock giving mutual exclusion between threads.

import { describe, it, expect } from "vitest";
import { Worker } from "node:worker_threads";
import { readFileSync } from "node:fs";
import { node, svc, VIP, CLIENT_POD } from "../helpers/node.js";
import { instantiate, wasmPath, type DataplaneExports } from "../../src/maps/abi.js";
import { buildFrame, decodeFrame } from "../../src/host/frames.js";

const SMALL = { conntrack: 4096, snat: 1024, affinity: 1024, maglev: 4096, svc_slots: 1024, frontends: 1024, addrs: 1024 } as const;
const BACKEND = "10.244.1.10";

/** Runs one frame through an attached instance's own batch area, under the lock. */
function viaQueue(x: DataplaneExports, frame: Uint8Array, now: number): { result: number; data: Uint8Array } {
  const descs = x.batchDescsPtr();
  const off = x.frameAreaPtr();
  new Uint8Array(x.memory.buffer).set(frame, off);
  const dv = new DataView(x.memory.buffer);
  dv.setUint32(descs, off, true);
  dv.setUint32(descs + 4, frame.length, true);
  dv.setUint32(descs + 8, x.frameCap(), true);
  dv.setUint32(descs + 12, 0, true);
  x.lockEnter();
  try {
    x.processBatch(descs, 1, now);
  } finally {
    x.lockLeave();
  }
  const len = dv.getUint32(descs + 4, true);
  return { result: dv.getUint32(descs + 12, true), data: new Uint8Array(x.memory.buffer, off, len).slice() };
}

describe("shared dataplane (queues over one memory)", () => {
  it("an attached instance gets its own batch area and sees the same maps: a flow made on queue 1 is reverse-NATed on queue 0", async () => {
    const { dp, prog } = node({ queues: 2, maxEntries: SMALL });
    expect(dp.x.memory.buffer).toBeInstanceOf(SharedArrayBuffer);
    prog.sync([svc({ endpoints: [{ ip: BACKEND, port: 8080, nodeName: "node-b" }] })]);
    await new Promise((r) => setImmediate(r)); // the control plane's lock is let go after its synchronous run
    expect(dp.x.lockState()).toBe(0);

    const q1 = instantiate("shared", dp.x.memory);
    expect(q1.attach(2)).toBe(-22); // only queues 0 and 1 exist
    expect(q1.attach(1)).toBe(0);
    expect(q1.queueCount()).toBe(2);
    expect(q1.batchDescsPtr()).not.toBe(dp.x.batchDescsPtr());
    expect(q1.frameAreaPtr()).toBeGreaterThanOrEqual(dp.x.frameAreaPtr() + dp.batchMax * dp.frameCap);
    // That call took the lock for this thread's synchronous run; q1 is on this thread too, so
    // let it go before q1 takes it (a thread waiting on a lock it holds would never wake).
    await new Promise((r) => setImmediate(r));

    const syn = viaQueue(q1, buildFrame({ src: CLIENT_POD, dst: VIP, proto: "TCP", sport: 41000, dport: 80, flags: "S" }), 100);
    expect(syn.result >>> 8).toBe(16); // new_flow
    expect(decodeFrame(syn.data)).toMatchObject({ dst: BACKEND, dport: 8080, badChecksums: [] });
    expect(dp.maps.conntrack.count).toBe(2);
    const reply = dp.process([{ data: buildFrame({ src: BACKEND, dst: CLIENT_POD, proto: "TCP", sport: 8080, dport: 41000, flags: "SA" }) }], 100)[0]!;
    expect(reply.reasonName).toBe("reply");
    expect(decodeFrame(reply.data)).toMatchObject({ src: VIP, sport: 80, badChecksums: [] });
    expect(dp.x.lockState()).not.toBe(0); // held by this thread until its synchronous run ends
    await new Promise((r) => setImmediate(r));
    expect(dp.x.lockState()).toBe(0);
  });

  it("the lock excludes: a worker thread and this thread each add 1 to a shared word 200k times under it", async () => {
    const { dp } = node({ queues: 2, maxEntries: SMALL });
    await new Promise((r) => setImmediate(r));
    const raw = instantiate("shared", dp.x.memory); // this thread, without the auto-locking wrapper
    expect(raw.attach(0)).toBe(0);
    const word = raw.scratchPtr() + 252; // the scratch area's last word, zeroed here
    new DataView(dp.x.memory.buffer).setUint32(word, 0, true);
    const N = 200_000;
    // Plain (non-atomic) read-modify-write between lockEnter and lockLeave: only mutual exclusion keeps every increment.
    const src = `
const { workerData, parentPort } = require("node:worker_threads");
const mod = new WebAssembly.Module(workerData.bytes);
const x = new WebAssembly.Instance(mod, { env: { memory: workerData.memory, abort() { throw new Error("abort"); } } }).exports;
if (x.attach(1) !== 0) throw new Error("attach failed");
const dv = new DataView(workerData.memory.buffer);
parentPort.postMessage("go");
for (let i = 0; i < workerData.n; i++) { x.lockEnter(); dv.setUint32(workerData.word, dv.getUint32(workerData.word, true) + 1, true); x.lockLeave(); }
parentPort.postMessage("done");`;
    const w = new Worker(src, { eval: true, workerData: { bytes: readFileSync(wasmPath("shared")), memory: dp.x.memory, word, n: N } });
    const done = new Promise<void>((res, rej) => {
      w.on("message", (m) => m === "done" && res());
      w.on("error", rej);
    });
    await new Promise<void>((res) => w.once("message", () => res()));
    const dv = new DataView(dp.x.memory.buffer);
    for (let i = 0; i < N; i++) {
      raw.lockEnter();
      dv.setUint32(word, dv.getUint32(word, true) + 1, true);
      raw.lockLeave();
    }
    await done;
    await w.terminate();
    expect(dv.getUint32(word, true)).toBe(2 * N);
    expect(raw.lockState()).toBe(0);
  }, 60_000);
});
