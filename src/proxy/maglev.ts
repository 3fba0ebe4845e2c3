// Maglev consistent hashing for service backends: lookup-table sizing, deterministic
// (optionally weighted) table population from backend names, and slot-level deltas
// for incremental map updates. Pure functions, no I/O.

const MASK64 = (1n << 64n) - 1n;
const FNV64_OFFSET = 0xcbf29ce484222325n;
const FNV64_PRIME = 0x100000001b3n;
// Two distinct seeds make the offset hash and the skip hash independent.
const SEED_OFFSET = 0x9e3779b97f4a7c15n;
const SEED_SKIP = 0xd6e8feb86659fd93n;

const utf8 = new TextEncoder();

/** 64-bit string hash: seeded FNV-1a over UTF-8 bytes followed by an avalanche mixer. */
function hash64(s: string, seed: bigint): bigint {
  let h = (FNV64_OFFSET ^ seed) & MASK64;
  for (const b of utf8.encode(s)) {
    h ^= BigInt(b);
    h = (h * FNV64_PRIME) & MASK64;
  }
  // Final avalanche so that nearby names (10.0.0.1 vs 10.0.0.2) spread across the table.
  h ^= h >> 33n;
  h = (h * 0xff51afd7ed558ccdn) & MASK64;
  h ^= h >> 33n;
  h = (h * 0xc4ceb9fe1a85ec53n) & MASK64;
  h ^= h >> 33n;
  return h;
}

/** Deterministic primality test by trial division over 6k±1 (fine for table sizes). */
export function isPrime(x: number): boolean {
  if (!Number.isSafeInteger(x) || x < 2) return false;
  if (x < 4) return true;
  if (x % 2 === 0 || x % 3 === 0) return false;
  for (let d = 5; d * d <= x; d += 6) {
    if (x % d === 0 || x % (d + 2) === 0) return false;
  }
  return true;
}

/** Smallest prime M with M > 100·n; 0 for n = 0. */
export function maglevTableSize(n: number): number {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`maglevTableSize: invalid backend count ${n}`);
  if (n === 0) return 0;
  let m = 100 * n + 1;
  while (!isPrime(m)) m++;
  return m;
}

/**
 * Build a Maglev lookup table of size m. Each entry is an index into `names`.
 * The result depends only on the multiset of (name, weight) pairs, not on input order:
 * backends are ordered by name internally and mapped back to input indices.
 * Optional integer weights: a backend with weight w takes w turns per round (0 = none).
 * Entries are -1 only when names is empty, m = 0, or every weight is 0.
 * m must be prime (or 1) so that every per-backend permutation covers the whole table.
 */
export function buildMaglevTable(names: string[], m: number, weights?: number[]): Int32Array {
  if (!Number.isInteger(m) || m < 0) throw new RangeError(`buildMaglevTable: invalid table size ${m}`);
  const table = new Int32Array(m).fill(-1);
  const n = names.length;
  if (n === 0 || m === 0) return table;
  if (m !== 1 && !isPrime(m)) throw new RangeError(`buildMaglevTable: table size ${m} is not prime`);
  if (weights !== undefined) {
    if (weights.length !== n) throw new RangeError("buildMaglevTable: weights length differs from names length");
    for (const w of weights) {
      if (!Number.isInteger(w) || w < 0) throw new RangeError(`buildMaglevTable: invalid weight ${w}`);
    }
  }

  // Stable canonical order: by name (code-unit order), ties by input index.
  const order = Array.from({ length: n }, (_, i) => i);
  order.sort((a, b) => {
    const na = names[a]!;
    const nb = names[b]!;
    return na < nb ? -1 : na > nb ? 1 : a - b;
  });

  // Per-backend permutation state in canonical order: next slot and skip.
  const next = new Float64Array(n);
  const skip = new Float64Array(n);
  const turns = new Int32Array(n);
  const bigM = BigInt(m);
  const bigM1 = BigInt(m > 1 ? m - 1 : 1);
  let anyTurns = false;
  for (let k = 0; k < n; k++) {
    const idx = order[k]!;
    const name = names[idx]!;
    next[k] = Number(hash64(name, SEED_OFFSET) % bigM);
    skip[k] = m > 1 ? Number(hash64(name, SEED_SKIP) % bigM1) + 1 : 1;
    turns[k] = weights === undefined ? 1 : weights[idx]!;
    if (turns[k]! > 0) anyTurns = true;
  }
  if (!anyTurns) return table;

  let filled = 0;
  while (filled < m) {
    for (let k = 0; k < n && filled < m; k++) {
      const value = order[k]!;
      for (let t = turns[k]!; t > 0 && filled < m; t--) {
        // Walk this backend's permutation to its next preferred empty slot.
        let c = next[k]!;
        const s = skip[k]!;
        while (table[c] !== -1) {
          c += s;
          if (c >= m) c -= m;
        }
        table[c] = value;
        filled++;
        c += s;
        if (c >= m) c -= m;
        next[k] = c;
      }
    }
  }
  return table;
}

export interface MaglevSlotChange {
  slot: number;
  value: number;
}

/** Slots whose value differs between two tables; every slot when old is null or sizes differ. */
export function maglevDelta(oldTable: Int32Array | null, newTable: Int32Array): MaglevSlotChange[] {
  const out: MaglevSlotChange[] = [];
  const full = oldTable === null || oldTable.length !== newTable.length;
  for (let i = 0; i < newTable.length; i++) {
    const v = newTable[i]!;
    if (full || oldTable![i] !== v) out.push({ slot: i, value: v });
  }
  return out;
}
