// The WASM module's ABI: what the TypeScript host calls (src/maps/abi.ts declares the same
// surface as types). Lifecycle: optional mapSetMaxEntries(...) → init(maxBatch, frameCap) →
// write config and maps → processBatch(...) per batch of frames, ctSweep(...) now and then.
// Map layouts are exported as constants from maps/decl.ts (`<map>_<key|value>_<field>`).

import { declareMaps, config_id, config_value_hashSeed, lpm_v4_id, lpm_masks_id } from "./maps/decl";
import * as E from "./maps/engine";
import { crc32cInit } from "./wire/crc32c";
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

/**
 * Lays out memory: every map (sizes from mapSetMaxEntries or the defaults), a CRC32c table,
 * a scratch area for the host's keys and values, and the batch area — `batchMax` descriptors
 * and as many frame buffers of `frameCap` bytes. Clears all state. Returns 0.
 */
export function init(batchMax: u32, frameCap: u32): i32 {
  if (batchMax == 0 || frameCap < 64) return E.E_INVAL;
  declareMaps();
  maxBatch = batchMax;
  frameCapacity = (frameCap + 15) & ~15;
  const crcBytes: usize = 1024;
  const descBytes = <usize>batchMax * DESC_SIZE;
  const frameBytes = <usize>batchMax * frameCapacity;
  const base = E.mapsInit(crcBytes + SCRATCH_SIZE + descBytes + frameBytes + 64);
  crc32cInit(base);
  scratch = base + crcBytes;
  batchDescs = scratch + SCRATCH_SIZE;
  frameArea = (batchDescs + descBytes + 15) & ~15;
  setFrameArea(frameArea, frameArea + frameBytes);
  E.lruClock = 1;
  return 0;
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
