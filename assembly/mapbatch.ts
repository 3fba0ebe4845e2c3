// Batched hash-map updates from the host (src/maps/direct.ts): records of (key, value) staged
// in one static area and applied in one call. A full sync writes ~100k svc_slots entries into
// a table of megabytes, one cache miss each when applied one by one; here a first pass
// computes every record's home slot and reads it — independent loads, so the misses overlap —
// and the second applies the records in order with hashUpdate (UPDATE_ANY), whose probes then
// mostly hit the cache.

import * as E from "./maps/engine";

export const HASH_BATCH_BYTES: u32 = 65536;
const area = memory.data(<i32>HASH_BATCH_BYTES, 16);
let failedCode: i32 = 0;
let touched: u32 = 0;

/** The staging area: records of keySize + valueSize bytes, back to back. */
export function hashBatchPtr(): usize { return area; }

/** The error of the record a short hashUpdateBatch stopped at. */
export function hashBatchError(): i32 { return failedCode; }

/**
 * Applies the first `n` staged records to hash map `id` (keys of `keySize`, values of
 * `valueSize` bytes, both multiples of 4, as declared for that map). Returns how many were
 * applied: n, or the index of the first that failed (see hashBatchError), which and what
 * follows it are not applied.
 */
export function hashUpdateBatch(id: u32, n: u32, keySize: u32, valueSize: u32): u32 {
  const stride = keySize + valueSize;
  if (stride == 0 || (keySize & 3) != 0 || (valueSize & 3) != 0 || <u64>n * <u64>stride > <u64>HASH_BATCH_BYTES) {
    failedCode = E.E_INVAL;
    return 0;
  }
  let acc: u32 = 0;
  for (let i: u32 = 0; i < n; i++) {
    const k = area + <usize>(i * stride);
    const tag = E.hashWords(k, keySize >> 2, E.hashSeed) | 1;
    acc += load<u32>(E.hashHomeSlot(id, tag));
  }
  touched = acc;
  for (let i: u32 = 0; i < n; i++) {
    const k = area + <usize>(i * stride);
    const r = E.hashUpdate(id, k, k + keySize, E.UPDATE_ANY);
    if (r != E.E_OK) {
      failedCode = r;
      return i;
    }
  }
  failedCode = E.E_OK;
  return n;
}
