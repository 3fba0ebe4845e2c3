// The WASM module's ABI: what the TypeScript host calls (src/maps/abi.ts declares the same
// surface as types). Lifecycle: optional mapSetMaxEntries(...) → init(maxBatch, frameCap) →
// write config and maps → processBatch(...) per batch of frames, ctSweep(...) now and then.
// Map layouts are exported as constants from maps/decl.ts (`<map>_<key|value>_<field>`).

import { declareMaps, config_id, config_value_hashSeed, lpm_v4_id, lpm_masks_id } from "./maps/decl";
import * as E from "./maps/engine";
import { crc32cInit, crc32cAttach } from "./wire/crc32c";
import { setFrameArea, DESC_SIZE } from "./pipeline";
import { REASON_MAX } from "./verdict";

export * from "./maps/decl";
export * from "./verdict";
export {
  mapSetMaxEntries, mapCount, mapMaxEntries, mapCapacity, mapBytes, mapEvictions, mapFullFailures,
  mapBase, mapSlotSize, hashFind, hashUpdate, hashDelete, hashNext, hashClear, hashLookup,
  KIND_ARRAY, KIND_HASH, KIND_LRU_HASH, KIND_LPM, UPDATE_ANY, UPDATE_NOEXIST, UPDATE_EXIST,
  E_OK, E_NOENT, E_EXIST, E_INVAL, E_FULL, MAX_MAPS,
} from "./maps/engine";
export { processBatch, processFrame, outLen, DESC_SIZE } from "./pipeline";
export { ctSweep, ctFlushBackend, ctDelete } from "./conntrack";
export { csumPartial, pseudoHeaderSum } from "./wire/checksum";
export { crc32c } from "./wire/crc32c";
export { ipv4SetChecksum } from "./wire/ipv4";
export { REASON_MAX };

let batchDescs: usize = 0;
let frameArea: usize = 0;
let scratch: usize = 0;
let maxBatch: u32 = 0;
let frameCapacity: u32 = 0;

export const SCRATCH_SIZE: u32 = 256;
export const MAX_QUEUES: u32 = 16;

/**
 * Lays out memory: every map (sizes from mapSetMaxEntries or the defaults), a CRC32c table,
 * a scratch area for the host's keys and values, and the batch area — `batchMax` descriptors
 * and as many frame buffers of `frameCap` bytes. Clears all state. Returns 0.
 */
export function init(batchMax: u32, frameCap: u32): i32 {
  return initShared(batchMax, frameCap, 1);
}

/**
 * init with `queues` batch areas instead of one: queue 0 is this instance's, the others are
 * for instances that attach(q) to the same (shared) memory. See "queues" below.
 */
export function initShared(batchMax: u32, frameCap: u32, queues: u32): i32 {
  if (batchMax == 0 || frameCap < 64 || queues == 0 || queues > MAX_QUEUES) return E.E_INVAL;
  declareMaps();
  maxBatch = batchMax;
  frameCapacity = (frameCap + 15) & ~15;
  const crcBytes: usize = 1024;
  const descBytes = (<usize>batchMax * DESC_SIZE + 15) & ~15;
  const frameBytes = <usize>batchMax * frameCapacity;
  const areaBytes = descBytes + frameBytes;
  const base = E.mapsInit(crcBytes + SCRATCH_SIZE + <usize>queues * areaBytes + 64);
  crc32cInit(base);
  scratch = base + crcBytes;
  const area0 = (scratch + SCRATCH_SIZE + 15) & ~15;
  store<u32>(shared, <u32>base, SH_CRC);
  store<u32>(shared, queues, SH_QUEUES);
  store<u32>(shared, batchMax, SH_BATCH);
  store<u32>(shared, frameCapacity, SH_CAP);
  store<u32>(shared, <u32>area0, SH_AREA0);
  store<u32>(shared, <u32>areaBytes, SH_AREA_SIZE);
  store<u32>(shared, <u32>scratch, SH_SCRATCH);
  store<u32>(shared, 1, SH_CLOCK);
  useArea(0);
  E.lruClock = 1;
  return 0;
}

function useArea(q: u32): void {
  const areaBytes = <usize>load<u32>(shared, SH_AREA_SIZE);
  batchDescs = <usize>load<u32>(shared, SH_AREA0) + <usize>q * areaBytes;
  frameArea = batchDescs + ((<usize>maxBatch * DESC_SIZE + 15) & ~15);
  setFrameArea(frameArea, frameArea + <usize>maxBatch * frameCapacity);
}

/** Seeds hashing and random selection (write config first; call after init). */
export function setSeed(seed: u32): void {
  E.hashSeed = seed | 1;
  const c = E.arrayElem(config_id, 0);
  store<u32>(c, seed, config_value_hashSeed);
}

export function scratchPtr(): usize { return scratch; }
export function batchDescsPtr(): usize { return batchDescs; }
export function frameAreaPtr(): usize { return frameArea; }
export function batchMax(): u32 { return maxBatch; }
export function frameCap(): u32 { return frameCapacity; }
/** Pointer to element idx of an array map (0 if out of range). */
export function arrayPtr(id: u32, idx: u32): usize { return E.arrayElem(id, idx); }
/** Pointer to the key of hash slot idx. */
export function slotKeyPtr(id: u32, idx: u32): usize { return E.slotKey(E.hashSlot(id, idx)); }
/** Pointer to the value of hash slot idx. */
export function slotValuePtr(id: u32, idx: u32): usize { return E.slotValue(id, E.hashSlot(id, idx)); }
/** LPM lookup for the host (returns the value pointer or 0). */
export function lpmLookup(table: u32, addrRaw: u32): usize {
  return E.lpmLookup(lpm_v4_id, lpm_masks_id, table, addrRaw);
}

// ---- control-plane sync (src/proxy/programmer.ts, src/maps/direct.ts) -------------------------
// Bounded-work cleanup of flows whose backend left, run by the host after the maps changed;
// hash-map updates staged by the host and applied in one call.
export { ctFlushStale, ctFlushStaleRemoved } from "./conntrack";
export { hashBatchPtr, hashBatchError, hashUpdateBatch, HASH_BATCH_BYTES } from "./mapbatch";

// ---- queues: several instances over one shared memory (tapvip run --queues N) ---------------
// The "shared" build imports a shared memory. The first instance lays everything out with
// initShared(batchMax, frameCap, queues): the maps once, and a batch area per queue. Each worker
// thread (one per TAP queue) instantiates the same module over the same memory and calls
// attach(queue): it adopts the layout, with that queue's batch area, and touches nothing else.
// The layout lives in `shared`, a static block (with --zeroFilledMemory no data segment is
// emitted for it, so a new instance does not clear it). Every use of the maps — a worker's
// processBatch, the control plane's updates and sweeps — runs under one lock (lockEnter /
// lockLeave, a futex-style mutex on memory.atomic.wait/notify): the pipeline is ~1% of a frame's
// TAP syscall cost, so workers seldom wait, and the maps need no per-entry synchronisation.
// The LRU clock travels with the lock; per-frame state lives in each instance's own globals.

const shared = memory.data(64, 64);
const SH_LOCK: u32 = 0; // 0 free, 1 held, 2 held with waiters
const SH_CLOCK: u32 = 4;
const SH_CRC: u32 = 8;
const SH_QUEUES: u32 = 12;
const SH_BATCH: u32 = 16;
const SH_CAP: u32 = 20;
const SH_AREA0: u32 = 24;
const SH_AREA_SIZE: u32 = 28;
const SH_SCRATCH: u32 = 32;
const SH_STALLS: u32 = 36; // waits for the lock that lasted over a second

/** Adopts the layout made by initShared in another instance over this memory, with queue q's batch area. */
export function attach(q: u32): i32 {
  const queues = load<u32>(shared, SH_QUEUES);
  if (queues == 0 || q >= queues) return E.E_INVAL;
  maxBatch = load<u32>(shared, SH_BATCH);
  frameCapacity = load<u32>(shared, SH_CAP);
  scratch = <usize>load<u32>(shared, SH_SCRATCH);
  crc32cAttach(<usize>load<u32>(shared, SH_CRC));
  useArea(q);
  E.hashSeed = load<u32>(E.arrayElem(config_id, 0), config_value_hashSeed) | 1;
  return 0;
}

export function queueCount(): u32 { return load<u32>(shared, SH_QUEUES); }

export function lockEnter(): void {
  const lock = shared + SH_LOCK;
  let c = atomic.cmpxchg<u32>(lock, 0, 1);
  if (c != 0) {
    for (let spin = 0; spin < 200 && c != 0; spin++) c = atomic.cmpxchg<u32>(lock, 0, 1);
    if (c != 0) {
      if (c != 2) c = atomic.xchg<u32>(lock, 2);
      while (c != 0) {
        // 1 s at a time: a wait that long means a holder is stuck, which the host reports.
        if (atomic.wait<u32>(lock, 2, 1_000_000_000) == AtomicWaitResult.TIMED_OUT) atomic.add<u32>(shared + SH_STALLS, 1);
        c = atomic.xchg<u32>(lock, 2);
      }
    }
  }
  E.lruClock = load<u32>(shared, SH_CLOCK);
}

export function lockLeave(): void {
  store<u32>(shared, E.lruClock, SH_CLOCK);
  const lock = shared + SH_LOCK;
  if (atomic.sub<u32>(lock, 1) != 1) {
    atomic.store<u32>(lock, 0);
    atomic.notify(lock, 1);
  }
}

/** Waits for the lock that lasted over a second (each second counted once). */
export function lockStalls(): u32 { return atomic.load<u32>(shared + SH_STALLS); }

/** The lock word, for tests: 0 free, 1 held, 2 held with waiters. */
export function lockState(): u32 { return atomic.load<u32>(shared + SH_LOCK); }
