// Backend identity → id, with reference counts: which backend map entry an endpoint
// (address, port, protocol) uses, shared by every service port that lists it. An open-
// addressing table over typed arrays (linear probing, backward-shift deletion): a full sync
// of 10k services looks up 100k endpoints, and a Map keyed by strings or by 50-bit numbers
// (heap-allocated doubles) cost a string or a number object per lookup and their GC.

const PROTO_INDEX: Record<number, number> = { 6: 1, 17: 2, 132: 3 };

/** Port and protocol as one u32 (never 0). */
export function portProto(port: number, proto: number): number {
  return port * 4 + (PROTO_INDEX[proto] ?? 0);
}

export class BackendIds {
  private mask: number;
  /** Per slot three words — address, port × protocol, id (0 = empty) — and one of padding: one cache line per probe. */
  private table: Int32Array;
  private size = 0;
  /** Per id: references and its key, to find its slot again. */
  readonly refs: Int32Array;
  private readonly idAddr: Int32Array;
  private readonly idPP: Int32Array;

  constructor(maxId: number) {
    this.refs = new Int32Array(maxId);
    this.idAddr = new Int32Array(maxId);
    this.idPP = new Int32Array(maxId);
    // Sized for every id at most half full from the start: growing by rehashing cost a full
    // sync of 100k backends more than the lookups themselves.
    let cap = 1024;
    while (cap < maxId * 2 && cap < 1 << 22) cap *= 2;
    this.mask = cap - 1;
    this.table = new Int32Array(cap * 4);
  }

  get count(): number {
    return this.size;
  }

  private home(addr: number, pp: number): number {
    let h = Math.imul(addr ^ Math.imul(pp, 0x9e3779b1), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    return h & this.mask;
  }

  /** The id of (addr, pp), or 0. */
  get(addr: number, pp: number): number {
    const t = this.table;
    const a = addr | 0;
    for (let i = this.home(a, pp); ; i = (i + 1) & this.mask) {
      const o = i << 2;
      const id = t[o + 2]!;
      if (id === 0) return 0;
      if (t[o] === a && t[o + 1] === pp) return id;
    }
  }

  /** Records (addr, pp) → id (not present) with one reference. */
  add(addr: number, pp: number, id: number): void {
    if ((this.size + 1) * 2 > this.mask + 1) this.grow();
    this.place(addr | 0, pp, id);
    this.size++;
    this.refs[id] = 1;
    this.idAddr[id] = addr | 0;
    this.idPP[id] = pp;
  }

  private place(a: number, pp: number, id: number): void {
    const t = this.table;
    let i = this.home(a, pp);
    while (t[(i << 2) + 2] !== 0) i = (i + 1) & this.mask;
    const o = i << 2;
    t[o] = a;
    t[o + 1] = pp;
    t[o + 2] = id;
  }

  private grow(): void {
    const old = this.table;
    const cap = (this.mask + 1) * 2;
    this.mask = cap - 1;
    this.table = new Int32Array(cap * 4);
    for (let o = 0; o < old.length; o += 4) if (old[o + 2] !== 0) this.place(old[o]!, old[o + 1]!, old[o + 2]!);
  }

  /** Forgets id (its references are the caller's business). */
  remove(id: number): void {
    const t = this.table;
    const a = this.idAddr[id]!;
    const pp = this.idPP[id]!;
    let i = this.home(a, pp);
    while (t[(i << 2) + 2] !== id) {
      if (t[(i << 2) + 2] === 0) return;
      i = (i + 1) & this.mask;
    }
    // Backward-shift deletion: move later entries of the probe chain into the hole.
    let j = i;
    for (;;) {
      j = (j + 1) & this.mask;
      const oj = j << 2;
      if (t[oj + 2] === 0) break;
      const k = this.home(t[oj]!, t[oj + 1]!);
      // The entry at j may fill the hole at i unless its home lies cyclically in (i, j].
      const stays = i <= j ? i < k && k <= j : i < k || k <= j;
      if (stays) continue;
      const oi = i << 2;
      t[oi] = t[oj]!;
      t[oi + 1] = t[oj + 1]!;
      t[oi + 2] = t[oj + 2]!;
      i = j;
    }
    t[(i << 2) + 2] = 0;
    this.size--;
    this.refs[id] = 0;
  }
}
