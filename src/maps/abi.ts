// The WASM module's ABI as TypeScript types (assembly/index.ts is the other side) and its
// instantiation. Each build flavour — release (-O3, no asserts), debug (asserted frame bounds)
// and shared (release over an imported shared memory, for one instance per TAP queue) — is a
// separate file in build/; a test instantiates them and checks the exports.

import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

export type Build = "release" | "debug" | "shared";

/** Pages (64 KiB) a shared memory may grow to: the shared build declares 4 GiB. */
export const SHARED_MAX_PAGES = 65536;

export interface DataplaneExports {
  readonly memory: WebAssembly.Memory;
  init(batchMax: number, frameCap: number): number;
  /** init with a batch area per queue, for instances that attach() over the same shared memory. */
  initShared(batchMax: number, frameCap: number, queues: number): number;
  /** Adopts another instance's layout (shared build), with queue q's batch area. */
  attach(q: number): number;
  queueCount(): number;
  /** The lock around every use of the maps when instances share the memory. */
  lockEnter(): void;
  lockLeave(): void;
  lockState(): number;
  lockStalls(): number;
  setSeed(seed: number): void;
  mapSetMaxEntries(id: number, n: number): void;
  mapCount(id: number): number;
  mapMaxEntries(id: number): number;
  mapCapacity(id: number): number;
  mapBytes(id: number): number;
  mapEvictions(id: number): number;
  mapFullFailures(id: number): number;
  hashFind(id: number, keyPtr: number): number;
  hashUpdate(id: number, keyPtr: number, valuePtr: number, flags: number): number;
  hashDelete(id: number, keyPtr: number): number;
  hashNext(id: number, from: number): number;
  hashClear(id: number): void;
  arrayPtr(id: number, idx: number): number;
  slotKeyPtr(id: number, idx: number): number;
  slotValuePtr(id: number, idx: number): number;
  lpmLookup(table: number, addrRaw: number): number;
  scratchPtr(): number;
  batchDescsPtr(): number;
  frameAreaPtr(): number;
  batchMax(): number;
  frameCap(): number;
  processBatch(descs: number, count: number, now: number): number;
  ctSweep(now: number, cursor: number, budget: number): number;
  ctFlushBackend(backendId: number, protoMask: number): number;
  ctDelete(keyPtr: number): number;
  /** One bounded step of the stale-flow cleanup (see assembly/conntrack.ts); returns the next cursor, 0 at the end. */
  ctFlushStale(protoMask: number, cursor: number, budget: number): number;
  ctFlushStaleRemoved(): number;
  /** The staging area of hashUpdateBatch (HASH_BATCH_BYTES long), its error code, and the call. */
  hashBatchPtr(): number;
  hashBatchError(): number;
  hashUpdateBatch(id: number, n: number, keySize: number, valueSize: number): number;
  /** A map's first byte in linear memory and its slot (hash) or element (array) size. */
  mapBase(id: number): number;
  mapSlotSize(id: number): number;
  csumPartial(ptr: number, len: number, sum: bigint): bigint;
  crc32c(ptr: number, len: number): number;
  /** Layout and reason constants are exported as globals. */
  readonly [name: string]: unknown;
}

const here = dirname(fileURLToPath(import.meta.url));

/** Finds build/<flavour>.wasm from src/maps (tests) or dist/src/maps (compiled CLI). */
export function wasmPath(build: Build): string {
  for (const up of ["../..", "../../.."]) {
    const p = join(here, up, "build", `${build}.wasm`);
    try {
      readFileSync(p, { flag: "r" }).byteLength;
      return p;
    } catch {
      /* try the next location */
    }
  }
  throw new Error(`build/${build}.wasm not found: run "npm run build:wasm" first`);
}

const modules = new Map<Build, WebAssembly.Module>();

export class WasmTrap extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WasmTrap";
  }
}

/**
 * Instantiates a fresh module instance: own memory and maps, or — the shared build — over
 * `memory` (a shared WebAssembly.Memory; a new one when omitted).
 */
export function instantiate(build: Build = "release", memory?: WebAssembly.Memory): DataplaneExports {
  let mod = modules.get(build);
  if (!mod) {
    mod = new WebAssembly.Module(readFileSync(wasmPath(build)));
    modules.set(build, mod);
  }
  let exportsRef: DataplaneExports | undefined;
  if (build === "shared") memory ??= new WebAssembly.Memory({ initial: 16, maximum: SHARED_MAX_PAGES, shared: true });
  else if (memory) throw new Error(`the ${build} build has its own memory; only the shared build imports one`);
  const imports = {
    env: {
      ...(memory ? { memory } : {}),
      abort(msgPtr: number, filePtr: number, line: number, col: number): never {
        const mem = exportsRef?.memory;
        const str = (p: number): string => {
          if (!mem || p === 0) return "?";
          const len = new DataView(mem.buffer).getUint32(p - 4, true);
          return Buffer.from(mem.buffer, p, len).toString("utf16le");
        };
        throw new WasmTrap(`WASM assertion: ${str(msgPtr)} at ${str(filePtr)}:${line}:${col}`);
      },
    },
  };
  const inst = new WebAssembly.Instance(mod, imports);
  exportsRef = inst.exports as unknown as DataplaneExports;
  return exportsRef;
}

/** Reads an exported u32 global (a layout or reason constant). */
export function exportedConst(x: DataplaneExports, name: string): number | undefined {
  const g = x[name];
  return g instanceof WebAssembly.Global ? Number(g.value) : undefined;
}
