// The map engine: BPF-style maps in linear memory — array, hash, LRU hash and LPM — behind
// small descriptors. Every map's key and value layout is declared once in `decl.ts`; this
// file only knows sizes. Memory for all maps is carved out once at init (`mapsInit`); nothing
// is allocated afterwards, so pointers into maps stay valid until the next init.
//
// Hash slot layout (open addressing, linear probing, backward-shift deletion, no tombstones):
//
//   +0  tag    u32  0 = empty, else (hash(key) | 1)
//   +4  stamp  u32  LRU clock at last touch (LRU maps)
//   +8  key    keySize bytes (multiple of 4)
//   +8+keySize value  valueSize bytes (multiple of 4)
//
// Capacity = ceil(maxEntries / 0.8) + 1 slots, so a probe always meets an empty slot. The home
// slot is fastrange(tag, capacity), so capacity needs no power of two. An LRU map that is full
// evicts the least recently touched of the first LRU_WINDOW slots from the new key's home
// (approximate LRU, like the kernel's BPF LRU); the evicted entry is copied to `evictedKey` /
// `evictedValue` with `evictPending` set so its owner can release what it held.

export const KIND_ARRAY: u32 = 1;
export const KIND_HASH: u32 = 2;
export const KIND_LRU_HASH: u32 = 3;
export const KIND_LPM: u32 = 4;

export const MAX_MAPS: u32 = 32;
export const LRU_WINDOW: u32 = 8;
const SLOT_HDR: u32 = 8;

// Errors (negative, errno-like, stable).
export const E_OK: i32 = 0;
export const E_NOENT: i32 = -2;
export const E_EXIST: i32 = -17;
export const E_INVAL: i32 = -22;
export const E_FULL: i32 = -7; // E2BIG: the map holds maxEntries entries and cannot evict

export const UPDATE_ANY: u32 = 0;
export const UPDATE_NOEXIST: u32 = 1;
export const UPDATE_EXIST: u32 = 2;

// Descriptor: 16 x u32 per map in static memory.
const D_BASE: u32 = 0;
const D_CAP: u32 = 4; // slots (hash) or entries (array)
const D_SLOT: u32 = 8; // slot size (hash) or value size (array)
const D_KEY: u32 = 12;
const D_VAL: u32 = 16;
const D_MAX: u32 = 20;
const D_COUNT: u32 = 24;
const D_KIND: u32 = 28;
const D_EVICTIONS: u32 = 32;
const D_FULL: u32 = 36; // failed inserts because full
const D_BYTES: u32 = 40; // bytes of memory the map occupies
const DESC_SIZE: u32 = 64;

const descs = memory.data(<i32>(DESC_SIZE * MAX_MAPS));

/** Scratch for keys the dataplane builds (no allocation per packet). */
export const keyBuf = memory.data(64, 16);
export const keyBuf2 = memory.data(64, 16);
export const evictedKey = memory.data(64, 16);
export const evictedValue = memory.data(128, 16);
export let evictPending: bool = false;

export let lruClock: u32 = 1;
export let hashSeed: u32 = 0x9747b28c;

let heapTop: usize = 0;

// @ts-ignore: decorator
@inline function desc(id: u32): usize {
  return descs + <usize>(id * DESC_SIZE);
}

export function mapDeclare(id: u32, kind: u32, keySize: u32, valueSize: u32, maxEntries: u32): void {
  const d = desc(id);
  store<u32>(d, kind, D_KIND);
  store<u32>(d, keySize, D_KEY);
  store<u32>(d, valueSize, D_VAL);
  if (load<u32>(d, D_MAX) == 0) store<u32>(d, maxEntries, D_MAX);
}

/** Overrides a map's max entries; takes effect at the next `mapsInit`. */
export function mapSetMaxEntries(id: u32, n: u32): void {
  store<u32>(desc(id), n, D_MAX);
}

function alloc(bytes: usize): usize {
  if (heapTop == 0) heapTop = (__heap_base + 15) & ~15;
  const p = heapTop;
  heapTop = (heapTop + bytes + 15) & ~15;
  const needPages = <i32>((heapTop + 0xffff) >> 16);
  const have = memory.size();
  if (needPages > have) {
    if (memory.grow(needPages - have) < 0) unreachable();
  }
  return p;
}

/** Allocates and zeroes memory for every declared map, then `extra` bytes for the caller. */
export function mapsInit(extra: usize): usize {
  heapTop = 0;
  for (let id: u32 = 0; id < MAX_MAPS; id++) {
    const d = desc(id);
    const kind = load<u32>(d, D_KIND);
    if (kind == 0) continue;
    const max = load<u32>(d, D_MAX);
    let bytes: usize;
    if (kind == KIND_ARRAY) {
      store<u32>(d, max, D_CAP);
      store<u32>(d, load<u32>(d, D_VAL), D_SLOT);
      bytes = <usize>max * load<u32>(d, D_VAL);
    } else {
      const cap = <u32>((<u64>max * 5 + 3) / 4) + 1;
      const slot = SLOT_HDR + load<u32>(d, D_KEY) + load<u32>(d, D_VAL);
      store<u32>(d, cap, D_CAP);
      store<u32>(d, slot, D_SLOT);
      bytes = <usize>cap * slot;
    }
    const base = alloc(bytes);
    memory.fill(base, 0, bytes);
    store<u32>(d, <u32>base, D_BASE);
    store<u32>(d, <u32>bytes, D_BYTES);
    store<u32>(d, 0, D_COUNT);
    store<u32>(d, 0, D_EVICTIONS);
    store<u32>(d, 0, D_FULL);
  }
  const p = alloc(extra);
  memory.fill(p, 0, extra);
  return p;
}

export function mapCount(id: u32): u32 {
  const d = desc(id);
  return load<u32>(d, D_KIND) == KIND_ARRAY ? load<u32>(d, D_MAX) : load<u32>(d, D_COUNT);
}
export function mapMaxEntries(id: u32): u32 { return load<u32>(desc(id), D_MAX); }
export function mapCapacity(id: u32): u32 { return load<u32>(desc(id), D_CAP); }
export function mapBytes(id: u32): u32 { return load<u32>(desc(id), D_BYTES); }
export function mapEvictions(id: u32): u32 { return load<u32>(desc(id), D_EVICTIONS); }
export function mapFullFailures(id: u32): u32 { return load<u32>(desc(id), D_FULL); }
export function mapBase(id: u32): u32 { return load<u32>(desc(id), D_BASE); }
export function mapSlotSize(id: u32): u32 { return load<u32>(desc(id), D_SLOT); }

// ---- arrays ---------------------------------------------------------------------------------

/** Pointer to element `idx` of an array map, or 0 when out of range. */
// @ts-ignore: decorator
@inline export function arrayElem(id: u32, idx: u32): usize {
  const d = desc(id);
  if (idx >= load<u32>(d, D_MAX)) return 0;
  return <usize>load<u32>(d, D_BASE) + <usize>idx * load<u32>(d, D_SLOT);
}

// ---- hashes ---------------------------------------------------------------------------------

// @ts-ignore: decorator
@inline function mix(h: u32, k: u32): u32 {
  k *= 0xcc9e2d51;
  k = rotl<u32>(k, 15);
  k *= 0x1b873593;
  h ^= k;
  h = rotl<u32>(h, 13);
  return h * 5 + 0xe6546b64;
}

// @ts-ignore: decorator
@inline function fmix(h: u32, bytes: u32): u32 {
  h ^= bytes;
  h ^= h >>> 16;
  h *= 0x85ebca6b;
  h ^= h >>> 13;
  h *= 0xc2b2ae35;
  h ^= h >>> 16;
  return h;
}

/** murmur3-style hash of `words` u32 words at p, seeded per dataplane instance. */
export function hashWords(p: usize, words: u32, seed: u32): u32 {
  let h = seed;
  for (let i: u32 = 0; i < words; i++) h = mix(h, load<u32>(p + (<usize>i << 2)));
  return fmix(h, words << 2);
}

/** hashWords of a 16-byte key given as its four words (unrolled, same value). */
// @ts-ignore: decorator
@inline export function hash16(w0: u32, w1: u32, w2: u32, w3: u32, seed: u32): u32 {
  return fmix(mix(mix(mix(mix(seed, w0), w1), w2), w3), 16);
}

/** hashWords(p, ks / 4, seed), unrolled for the key sizes the maps use. */
// @ts-ignore: decorator
@inline function hashKey(p: usize, ks: u32, seed: u32): u32 {
  if (ks == 16) return hash16(load<u32>(p), load<u32>(p, 4), load<u32>(p, 8), load<u32>(p, 12), seed);
  if (ks == 8) return fmix(mix(mix(seed, load<u32>(p)), load<u32>(p, 4)), 8);
  if (ks == 4) return fmix(mix(seed, load<u32>(p)), 4);
  if (ks == 12) return fmix(mix(mix(mix(seed, load<u32>(p)), load<u32>(p, 4)), load<u32>(p, 8)), 12);
  return hashWords(p, ks >> 2, seed);
}

// @ts-ignore: decorator
@inline function homeOf(tag: u32, cap: u32): u32 {
  return <u32>((<u64>tag * <u64>cap) >> 32);
}

// @ts-ignore: decorator
@inline function keyEq(a: usize, b: usize, ks: u32): bool {
  // Fixed sizes compare as whole u64/u32 words (a predictable branch, no loop).
  if (ks == 16) return load<u64>(a) == load<u64>(b) && load<u64>(a, 8) == load<u64>(b, 8);
  if (ks == 8) return load<u64>(a) == load<u64>(b);
  if (ks == 4) return load<u32>(a) == load<u32>(b);
  for (let o: u32 = 0; o < ks; o += 4) {
    if (load<u32>(a + o) != load<u32>(b + o)) return false;
  }
  return true;
}

// Keys and values are a few words long: word loops beat memory.copy / memory.fill, which the
// engine runs as out-of-line calls.
// @ts-ignore: decorator
@inline export function copyWords(dst: usize, src: usize, n: u32): void {
  if (n == 16) {
    store<u64>(dst, load<u64>(src));
    store<u64>(dst, load<u64>(src, 8), 8);
    return;
  }
  for (let o: usize = 0; o < <usize>n; o += 4) store<u32>(dst + o, load<u32>(src + o));
}

// @ts-ignore: decorator
@inline function zeroWords(dst: usize, n: u32): void {
  for (let o: usize = 0; o < <usize>n; o += 4) store<u32>(dst + o, 0);
}

/** Slot index holding `key`, or -1. */
export function hashFind(id: u32, key: usize): i32 {
  return hashFindInline(id, key);
}

/** hashFind, inlined into the per-packet conntrack lookup. */
// @ts-ignore: decorator
@inline export function hashFindInline(id: u32, key: usize): i32 {
  const d = desc(id);
  const ks = load<u32>(d, D_KEY);
  const cap = load<u32>(d, D_CAP);
  const ss = <usize>load<u32>(d, D_SLOT);
  const base = <usize>load<u32>(d, D_BASE);
  const tag = hashKey(key, ks, hashSeed) | 1;
  let i = homeOf(tag, cap);
  while (true) {
    const s = base + <usize>i * ss;
    const t = load<u32>(s);
    if (t == 0) return -1;
    if (t == tag && keyEq(s + SLOT_HDR, key, ks)) return <i32>i;
    i++;
    if (i == cap) i = 0;
  }
  return -1;
}

/** Pointer to the home slot of a key whose tag (hash | 1) is `tag`: where its probe starts. */
// @ts-ignore: decorator
@inline export function hashHomeSlot(id: u32, tag: u32): usize {
  const d = desc(id);
  return <usize>load<u32>(d, D_BASE) + <usize>homeOf(tag, load<u32>(d, D_CAP)) * load<u32>(d, D_SLOT);
}

/** Pointer to the slot `idx` of a hash map (its tag word). */
// @ts-ignore: decorator
@inline export function hashSlot(id: u32, idx: u32): usize {
  const d = desc(id);
  return <usize>load<u32>(d, D_BASE) + <usize>idx * load<u32>(d, D_SLOT);
}

// @ts-ignore: decorator
@inline export function slotKey(slot: usize): usize {
  return slot + SLOT_HDR;
}

// @ts-ignore: decorator
@inline export function slotValue(id: u32, slot: usize): usize {
  return slot + SLOT_HDR + load<u32>(desc(id), D_KEY);
}

/** Value pointer for `key`, or 0. Refreshes the LRU stamp (LRU maps only: reads stay reads). */
export function hashLookup(id: u32, key: usize): usize {
  const i = hashFind(id, key);
  if (i < 0) return 0;
  const s = hashSlot(id, <u32>i);
  if (load<u32>(desc(id), D_KIND) == KIND_LRU_HASH) store<u32>(s, lruClock, 4);
  return slotValue(id, s);
}

/** Removes the entry in slot `i` (backward-shift deletion keeps every probe chain intact). */
export function hashRemoveAt(id: u32, idx: u32): void {
  const d = desc(id);
  const cap = load<u32>(d, D_CAP);
  const ss = load<u32>(d, D_SLOT);
  const base = <usize>load<u32>(d, D_BASE);
  let i = idx;
  let j = idx;
  while (true) {
    j++;
    if (j == cap) j = 0;
    const sj = base + <usize>j * ss;
    const t = load<u32>(sj);
    if (t == 0) break;
    const k = homeOf(t, cap);
    // The entry at j may fill the hole at i unless its home lies cyclically in (i, j].
    const move = i <= j ? (k <= i || k > j) : (k <= i && k > j);
    if (move) {
      copyWords(base + <usize>i * ss, sj, ss);
      i = j;
    }
  }
  store<u32>(base + <usize>i * ss, 0);
  store<u32>(d, load<u32>(d, D_COUNT) - 1, D_COUNT);
}

export function hashDelete(id: u32, key: usize): bool {
  const i = hashFind(id, key);
  if (i < 0) return false;
  hashRemoveAt(id, <u32>i);
  return true;
}

/**
 * Inserts `key` (which must not be present) and returns its zeroed value pointer, or 0 when
 * the map is full and not LRU. An LRU eviction sets `evictPending` and fills evictedKey/Value.
 */
export function hashInsert(id: u32, key: usize): usize {
  const d = desc(id);
  const ks = load<u32>(d, D_KEY);
  const vs = load<u32>(d, D_VAL);
  const cap = load<u32>(d, D_CAP);
  const ss = load<u32>(d, D_SLOT);
  const base = <usize>load<u32>(d, D_BASE);
  const tag = hashKey(key, ks, hashSeed) | 1;
  if (load<u32>(d, D_COUNT) >= load<u32>(d, D_MAX)) {
    if (load<u32>(d, D_KIND) != KIND_LRU_HASH || load<u32>(d, D_MAX) == 0) {
      store<u32>(d, load<u32>(d, D_FULL) + 1, D_FULL);
      return 0;
    }
    // Approximate LRU: the stalest of the first LRU_WINDOW occupied slots from home.
    let i = homeOf(tag, cap);
    let victim: u32 = i;
    let oldest: u32 = 0;
    let seen: u32 = 0;
    while (seen < LRU_WINDOW) {
      const s = base + <usize>i * ss;
      if (load<u32>(s) != 0) {
        const age = lruClock - load<u32>(s, 4);
        if (seen == 0 || age > oldest) {
          oldest = age;
          victim = i;
        }
        seen++;
      }
      i++;
      if (i == cap) i = 0;
    }
    const vsAt = base + <usize>victim * ss;
    copyWords(evictedKey, vsAt + SLOT_HDR, ks);
    copyWords(evictedValue, vsAt + SLOT_HDR + ks, vs);
    evictPending = true;
    hashRemoveAt(id, victim);
    store<u32>(d, load<u32>(d, D_EVICTIONS) + 1, D_EVICTIONS);
  }
  let i = homeOf(tag, cap);
  while (true) {
    const s = base + <usize>i * ss;
    if (load<u32>(s) == 0) {
      store<u32>(s, tag);
      store<u32>(s, lruClock, 4);
      copyWords(s + SLOT_HDR, key, ks);
      zeroWords(s + SLOT_HDR + ks, vs);
      store<u32>(d, load<u32>(d, D_COUNT) + 1, D_COUNT);
      return s + SLOT_HDR + ks;
    }
    i++;
    if (i == cap) i = 0;
  }
  return 0;
}

/** BPF-style update: copy `value` under `key` honouring UPDATE_ANY / NOEXIST / EXIST. */
export function hashUpdate(id: u32, key: usize, value: usize, flags: u32): i32 {
  const vs = load<u32>(desc(id), D_VAL);
  const i = hashFind(id, key);
  if (i >= 0) {
    if (flags == UPDATE_NOEXIST) return E_EXIST;
    const s = hashSlot(id, <u32>i);
    store<u32>(s, lruClock, 4);
    memory.copy(slotValue(id, s), value, vs);
    return E_OK;
  }
  if (flags == UPDATE_EXIST) return E_NOENT;
  const v = hashInsert(id, key);
  if (v == 0) return E_FULL;
  memory.copy(v, value, vs);
  return E_OK;
}

/** Next occupied slot index at or after `from`, or -1 (iteration; see the TS side for rules). */
export function hashNext(id: u32, from: u32): i32 {
  const d = desc(id);
  const cap = load<u32>(d, D_CAP);
  const ss = <usize>load<u32>(d, D_SLOT);
  const base = <usize>load<u32>(d, D_BASE);
  for (let i = from; i < cap; i++) {
    if (load<u32>(base + <usize>i * ss) != 0) return <i32>i;
  }
  return -1;
}

/** Removes every entry of a hash map. */
export function hashClear(id: u32): void {
  const d = desc(id);
  memory.fill(<usize>load<u32>(d, D_BASE), 0, <usize>load<u32>(d, D_CAP) * load<u32>(d, D_SLOT));
  store<u32>(d, 0, D_COUNT);
}

// ---- LPM ------------------------------------------------------------------------------------
// An LPM map is a hash keyed {tableId, prefixLen, addrBe & mask} plus, per table, a 64-bit
// mask of the prefix lengths present (kept in a companion array map). A lookup probes the
// present lengths from longest to shortest: at most 33 probes, usually one or two.

/** Raw (network-order) netmask for a prefix length. */
// @ts-ignore: decorator
@inline export function netmaskRaw(len: u32): u32 {
  return len == 0 ? 0 : bswap<u32>(0xffffffff << (32 - len));
}

/** Value pointer of the longest prefix in `table` containing `addrRaw`, or 0. */
export function lpmLookup(lpmId: u32, masksId: u32, table: u32, addrRaw: u32): usize {
  const m = arrayElem(masksId, table);
  if (m == 0) return 0;
  let mask = load<u64>(m);
  if (mask == 0) return 0;
  const k = keyBuf2;
  store<u32>(k, table, 0);
  while (mask != 0) {
    const len = <u32>(63 - clz<u64>(mask));
    mask &= ~(<u64>1 << len);
    store<u32>(k, len, 4);
    store<u32>(k, addrRaw & netmaskRaw(len), 8);
    const i = hashFind(lpmId, k);
    if (i >= 0) return slotValue(lpmId, hashSlot(lpmId, <u32>i));
  }
  return 0;
}
