// BPF-style map handles over the WASM module: lookup / update / delete / iterate / batch
// update for hash and LRU maps (keys by value), get / set for arrays (keys by index).
// Keys and values travel through the module's scratch area; errors name the map and limit.

import type { DataplaneExports } from "./abi.js";
import type { FieldDecl, StructOf } from "./codec.js";
import { MapKind, type ArrayMapDecl, type HashMapDecl } from "./layout.js";

export class MapError extends Error {
  constructor(readonly map: string, readonly code: number, message: string) {
    super(message);
    this.name = "MapError";
  }
}

const E_FULL = -7;
const E_EXIST = -17;
const E_NOENT = -2;

/** The error for a failed hashUpdate return code `r` of map `name`. */
export function updateError(name: string, maxEntries: number, r: number): MapError {
  if (r === E_FULL) return new MapError(name, r, `${name} is full: max entries ${maxEntries} reached (raise it with --max-${name.replace(/_/g, "-")})`);
  if (r === E_EXIST) return new MapError(name, r, `${name}: key exists`);
  if (r === E_NOENT) return new MapError(name, r, `${name}: no such key`);
  return new MapError(name, r, `${name}: update failed (${r})`);
}

export const enum UpdateFlags {
  Any = 0,
  NoExist = 1,
  Exist = 2,
}

/** Shared access to the module's memory, re-creating the view if memory was replaced. */
export class MemoryView {
  private view: DataView;
  constructor(private readonly x: DataplaneExports) {
    this.view = new DataView(x.memory.buffer);
  }
  get dv(): DataView {
    if (this.view.buffer !== this.x.memory.buffer) this.view = new DataView(this.x.memory.buffer);
    return this.view;
  }
  bytes(ptr: number, len: number): Uint8Array {
    return new Uint8Array(this.x.memory.buffer, ptr, len);
  }
}

abstract class MapBase {
  constructor(protected readonly x: DataplaneExports, protected readonly mem: MemoryView, readonly id: number, readonly name: string) {}
  get maxEntries(): number { return this.x.mapMaxEntries(this.id); }
  get count(): number { return this.x.mapCount(this.id); }
  /** Bytes of linear memory the map occupies (table overhead included). */
  get bytes(): number { return this.x.mapBytes(this.id); }
  get evictions(): number { return this.x.mapEvictions(this.id); }
}

/** An array map: elements 0..maxEntries-1, all present (zero = empty). */
export class ArrayMap<V extends readonly FieldDecl[]> extends MapBase {
  constructor(x: DataplaneExports, mem: MemoryView, private readonly decl: ArrayMapDecl<V>) {
    super(x, mem, decl.id, decl.name);
  }
  ptr(index: number): number {
    const p = this.x.arrayPtr(this.id, index);
    if (p === 0) throw new MapError(this.name, E_FULL, `${this.name}: index ${index} is outside 0..${this.maxEntries - 1} (max entries ${this.maxEntries})`);
    return p;
  }
  get(index: number): StructOf<V> {
    return this.decl.value.decode(this.mem.dv, this.ptr(index));
  }
  set(index: number, value: Partial<StructOf<V>>): void {
    this.decl.value.encode(this.mem.dv, this.ptr(index), value);
  }
  /** Read-modify-write that keeps the fields not given (e.g. dataplane-written counters). */
  patch(index: number, value: Partial<StructOf<V>>): void {
    this.set(index, { ...this.get(index), ...value });
  }
  clear(index: number): void {
    this.set(index, {});
  }
}

/** A hash, LRU hash or LPM-backing hash map. */
export class HashMap<K extends readonly FieldDecl[], V extends readonly FieldDecl[]> extends MapBase {
  constructor(x: DataplaneExports, mem: MemoryView, private readonly decl: HashMapDecl<K, V>) {
    super(x, mem, decl.id, decl.name);
    if (decl.kind === MapKind.Array) throw new Error(`${decl.name} is an array map`);
  }
  private get keyPtr(): number { return this.x.scratchPtr(); }
  private get valuePtr(): number { return this.x.scratchPtr() + 128; }

  private putKey(key: Partial<StructOf<K>>): number {
    this.decl.key.encode(this.mem.dv, this.keyPtr, key);
    return this.keyPtr;
  }

  lookup(key: Partial<StructOf<K>>): StructOf<V> | undefined {
    const i = this.x.hashFind(this.id, this.putKey(key));
    if (i < 0) return undefined;
    return this.decl.value.decode(this.mem.dv, this.x.slotValuePtr(this.id, i));
  }

  has(key: Partial<StructOf<K>>): boolean {
    return this.x.hashFind(this.id, this.putKey(key)) >= 0;
  }

  update(key: Partial<StructOf<K>>, value: Partial<StructOf<V>>, flags: UpdateFlags = UpdateFlags.Any): void {
    this.putKey(key);
    this.decl.value.encode(this.mem.dv, this.valuePtr, value);
    const r = this.x.hashUpdate(this.id, this.keyPtr, this.valuePtr, flags);
    if (r !== 0) throw updateError(this.name, this.maxEntries, r);
  }

  /** Applies many updates; stops at the first error, which names how many were applied. */
  updateBatch(entries: Iterable<readonly [Partial<StructOf<K>>, Partial<StructOf<V>>]>): number {
    let n = 0;
    for (const [k, v] of entries) {
      try {
        this.update(k, v);
      } catch (e) {
        if (e instanceof MapError) throw new MapError(this.name, e.code, `${e.message} (after ${n} updates of the batch)`);
        throw e;
      }
      n++;
    }
    return n;
  }

  delete(key: Partial<StructOf<K>>): boolean {
    return this.x.hashDelete(this.id, this.putKey(key)) !== 0;
  }

  /** A snapshot of all entries (safe to modify the map while using it). */
  entries(): Array<[StructOf<K>, StructOf<V>]> {
    const out: Array<[StructOf<K>, StructOf<V>]> = [];
    const dv = this.mem.dv;
    for (let i = this.x.hashNext(this.id, 0); i >= 0; i = this.x.hashNext(this.id, i + 1)) {
      out.push([this.decl.key.decode(dv, this.x.slotKeyPtr(this.id, i)), this.decl.value.decode(dv, this.x.slotValuePtr(this.id, i))]);
    }
    return out;
  }

  clear(): void {
    this.x.hashClear(this.id);
  }
}
