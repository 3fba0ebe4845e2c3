// The TypeScript mirror of the module's ABI against the module itself: every map's id, kind,
// sizes, default max entries and field offsets (src/maps/layout.ts ↔ assembly/maps/decl.ts),
// the reason and verdict tables (src/maps/verdicts.ts ↔ assembly/verdict.ts), the flag and
// algorithm constants, the exported functions of both builds (src/maps/abi.ts), and the codecs'
// byte order. Both directions: nothing in TS without an export, no export without TS.

import { describe, it, expect } from "vitest";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { instantiate, exportedConst, type Build, type DataplaneExports } from "../../src/maps/abi.js";
import * as L from "../../src/maps/layout.js";
import { MapKind } from "../../src/maps/layout.js";
import { REASONS, VERDICTS, reasonName, verdictName } from "../../src/maps/verdicts.js";
import { struct, ipv4ToU32, u32ToIpv4, type FieldDecl, type FieldType } from "../../src/maps/codec.js";
import { Dataplane } from "../../src/maps/dataplane.js";

const BUILDS: Build[] = ["release", "debug"];
const x = instantiate("release");

/** All exported globals of an instance, by name (value as a number). */
function globals(inst: DataplaneExports): Map<string, number> {
  const out = new Map<string, number>();
  for (const [k, v] of Object.entries(inst)) if (v instanceof WebAssembly.Global) out.set(k, Number(v.value));
  return out;
}
const G = globals(x);

function must(name: string): number {
  const v = exportedConst(x, name);
  if (v === undefined) throw new Error(`module exports no global ${name}`);
  return v;
}

/** One instance initialised with every map at its default size (shared: init costs ~100 ms). */
let sized: DataplaneExports | undefined;
function defaultSized(): DataplaneExports {
  if (!sized) {
    sized = instantiate("release");
    expect(sized.init(1, 64)).toBe(0);
  }
  return sized;
}

const WIDTH: Record<FieldType, number> = { u8: 1, u16: 2, u32: 4, u64: 8, ipv4be: 4, portbe: 2 };

describe("map layouts: layout.ts MAPS = the module's exported constants", () => {
  it("MAPS lists MAP_COUNT maps with ids 0..n-1, unique names", () => {
    expect(L.MAPS.length).toBe(must("MAP_COUNT"));
    expect(L.MAPS.map((m) => m.id)).toEqual(L.MAPS.map((_, i) => i));
    expect(new Set(L.MAPS.map((m) => m.name)).size).toBe(L.MAPS.length);
  });

  it("MapKind values are the module's KIND_* constants", () => {
    expect(MapKind.Array).toBe(must("KIND_ARRAY"));
    expect(MapKind.Hash).toBe(must("KIND_HASH"));
    expect(MapKind.LruHash).toBe(must("KIND_LRU_HASH"));
    expect(MapKind.Lpm).toBe(must("KIND_LPM"));
  });

  for (const m of L.MAPS) {
    describe(m.name, () => {
      it("id, kind, key size, value size, default max entries", () => {
        expect(m.id, `${m.name}_id`).toBe(must(`${m.name}_id`));
        expect(m.kind, `${m.name}_kind`).toBe(must(`${m.name}_kind`));
        expect(m.defaultMaxEntries, `${m.name}_default_max`).toBe(must(`${m.name}_default_max`));
        expect(m.value.size, `${m.name}_value_size`).toBe(must(`${m.name}_value_size`));
        if (m.key === null) {
          // Array maps are keyed by a u32 index.
          expect(m.kind).toBe(MapKind.Array);
          expect(must(`${m.name}_key_size`)).toBe(4);
        } else {
          expect(m.kind).not.toBe(MapKind.Array);
          expect(m.key.size, `${m.name}_key_size`).toBe(must(`${m.name}_key_size`));
        }
      });

      it("every field offset equals <map>_<key|value>_<field>", () => {
        const parts: Array<["key" | "value", readonly FieldDecl[]]> = [["value", m.value.fields]];
        if (m.key) parts.push(["key", m.key.fields]);
        for (const [part, fields] of parts) {
          for (const f of fields) {
            const name = `${m.name}_${part}_${f.name}`;
            expect(exportedConst(x, name), `${name} is exported`).toBeDefined();
            expect(f.offset, name).toBe(must(name));
          }
        }
      });

      it("fields fit, do not overlap, are naturally aligned, sizes are multiples of 4", () => {
        for (const s of m.key ? [m.key, m.value] : [m.value]) {
          expect(s.size % 4).toBe(0);
          const sorted = [...s.fields].sort((a, b) => a.offset - b.offset);
          for (let i = 0; i < sorted.length; i++) {
            const f = sorted[i]!;
            const w = WIDTH[f.type];
            expect(f.offset + w, `${f.name} fits`).toBeLessThanOrEqual(s.size);
            expect(f.offset % w, `${f.name} aligned`).toBe(0);
            if (i + 1 < sorted.length) expect(f.offset + w, `${f.name} before ${sorted[i + 1]!.name}`).toBeLessThanOrEqual(sorted[i + 1]!.offset);
          }
        }
      });

      it("the module allocates it with the declared sizes and default max entries", () => {
        const y = defaultSized();
        expect(y.mapMaxEntries(m.id)).toBe(m.defaultMaxEntries);
        if (m.kind === MapKind.Array) {
          expect((y.mapSlotSize as unknown as (id: number) => number)(m.id)).toBe(m.value.size);
          expect(y.mapCount(m.id)).toBe(m.defaultMaxEntries);
          expect(y.mapBytes(m.id)).toBe(m.defaultMaxEntries * m.value.size);
        } else {
          const slot = (y.mapSlotSize as unknown as (id: number) => number)(m.id);
          expect(slot).toBe(8 + m.key!.size + m.value.size);
          expect(y.mapCount(m.id)).toBe(0);
          expect(y.mapCapacity(m.id)).toBeGreaterThan(m.defaultMaxEntries);
        }
      });
    });
  }

  it("reverse: every exported <map>_<key|value>_<field> global is a codec field", () => {
    const byName = new Map(L.MAPS.map((m) => [m.name, m]));
    // `[a-z0-9_]` rather than `[a-z_]`: the map lpm_v4 has a digit in its name.
    const re = /^([a-z0-9_]+)_(key|value)_([A-Za-z]+)$/;
    const seen: string[] = [];
    for (const name of G.keys()) {
      const mm = re.exec(name);
      if (!mm) continue;
      const [, mapName, part, field] = mm;
      if (field === "size") continue; // <map>_key_size / <map>_value_size: checked above
      seen.push(name);
      const m = byName.get(mapName!);
      expect(m, `${name}: no map ${mapName} in layout.ts`).toBeDefined();
      const s = part === "key" ? m!.key : m!.value;
      expect(s, `${name}: ${mapName} has no ${part} codec`).not.toBeNull();
      const f = s!.fields.find((ff) => ff.name === field);
      expect(f, `${name}: no field ${field} in the ${mapName} ${part} codec`).toBeDefined();
      expect(f!.offset, name).toBe(G.get(name));
    }
    const total = L.MAPS.reduce((n, m) => n + m.value.fields.length + (m.key?.fields.length ?? 0), 0);
    expect(seen.length).toBe(total);
  });

  it("reverse: every exported <map>_id names a map in MAPS, with all five constants", () => {
    const names = [...G.keys()].filter((k) => k.endsWith("_id") && G.has(k.replace(/_id$/, "_kind")));
    expect(names.map((k) => k.replace(/_id$/, "")).sort()).toEqual(L.MAPS.map((m) => m.name).sort());
    for (const m of L.MAPS) {
      for (const suffix of ["id", "kind", "key_size", "value_size", "default_max"]) {
        expect(G.has(`${m.name}_${suffix}`), `${m.name}_${suffix}`).toBe(true);
      }
    }
  });

  it("field widths match the layout documented in assembly/maps/decl.ts", () => {
    // decl.ts documents each map as `| name type |` cells (types u8/u16/u32/u64); the codec's
    // widths must agree (ipv4be = 4 bytes, portbe = 2 bytes).
    const src = readFileSync(fileURLToPath(new URL("../../assembly/maps/decl.ts", import.meta.url)), "utf8");
    const blocks = src.split(/\/\/ ---- /).slice(1);
    let checked = 0;
    for (const m of L.MAPS) {
      // A block starts with its header, e.g. "config: ARRAY[1] — …" or "stats_service / stats_backend: ARRAY …".
      const block = blocks.find((b) => b.split(":")[0]!.split("/").map((n) => n.trim()).includes(m.name));
      if (!block) continue;
      const cells = new Map<string, number>();
      for (const c of block.matchAll(/\|\s*([A-Za-z]+)\s+(u8|u16|u32|u64)\b/g)) {
        if (c[1] === "pad") continue;
        cells.set(c[1]!, { u8: 1, u16: 2, u32: 4, u64: 8 }[c[2] as "u8"]!);
      }
      for (const f of [...m.value.fields, ...(m.key?.fields ?? [])]) {
        const w = cells.get(f.name);
        if (w === undefined) continue;
        expect(WIDTH[f.type], `${m.name}.${f.name}: decl.ts says ${w} bytes`).toBe(w);
        checked++;
      }
    }
    // Most fields are documented; make sure the parser did find them.
    expect(checked).toBeGreaterThan(60);
  });
});

describe("reasons and verdicts: verdicts.ts = the module's R_* and VERDICT_* constants", () => {
  it("every REASONS entry equals the exported global of the same name", () => {
    for (const [k, v] of Object.entries(REASONS)) expect(v, k).toBe(must(k));
  });

  it("every exported R_* global is in REASONS", () => {
    const exported = [...G.keys()].filter((k) => k.startsWith("R_"));
    expect(exported.sort()).toEqual(Object.keys(REASONS).sort());
  });

  it("codes are unique, below REASON_MAX, and grouped by verdict (PASS <16, TX 16-23, REPLY 24-31, DROP 32+)", () => {
    const codes = Object.values(REASONS) as number[];
    expect(new Set(codes).size).toBe(codes.length);
    const max = must("REASON_MAX");
    const range: Record<string, [number, number]> = { PASS: [1, 15], TX: [16, 23], REPLY: [24, 31], DROP: [32, max - 1] };
    for (const [k, v] of Object.entries(REASONS)) {
      const fam = /^R_(PASS|TX|REPLY|DROP)_/.exec(k)![1]!;
      expect(v, k).toBeGreaterThanOrEqual(range[fam]![0]);
      expect(v, k).toBeLessThanOrEqual(range[fam]![1]);
    }
    expect(L.statsReason.defaultMaxEntries).toBe(max);
  });

  it("reasonName strips the family prefix and lower-cases; unknown codes are named", () => {
    expect(reasonName(REASONS.R_DROP_SOURCE_RANGE)).toBe("source_range");
    expect(reasonName(REASONS.R_TX_NEW_FLOW)).toBe("new_flow");
    expect(reasonName(63)).toBe("reason_63");
    // Names are unique within a verdict family ("fragment" is both a PASS and a DROP reason).
    const names = Object.entries(REASONS).map(([k, v]) => `${k.split("_")[1]}/${reasonName(v)}`);
    expect(new Set(names).size).toBe(names.length);
    expect(reasonName(REASONS.R_PASS_FRAGMENT)).toBe("fragment");
    expect(reasonName(REASONS.R_DROP_FRAGMENT)).toBe("fragment");
  });

  it("VERDICT_* globals match VERDICTS order, and no other VERDICT_* exists", () => {
    VERDICTS.forEach((v, i) => expect(must(`VERDICT_${v}`), v).toBe(i));
    expect([...G.keys()].filter((k) => k.startsWith("VERDICT_")).sort()).toEqual(VERDICTS.map((v) => `VERDICT_${v}`).sort());
    VERDICTS.forEach((v, i) => expect(verdictName(i)).toBe(v));
  });
});

describe("flag and algorithm constants: layout.ts = the module's exports", () => {
  const TABLES: Array<[string, Record<string, number>, Record<string, string>, RegExp]> = [
    ["FE", L.FE, { ClusterIP: "FE_CLUSTER_IP", NodePort: "FE_NODE_PORT", ExternalIP: "FE_EXTERNAL_IP", LoadBalancer: "FE_LOAD_BALANCER" }, /^FE_/],
    ["ADDR", L.ADDR, { NodePort: "ADDR_NODEPORT", Vip: "ADDR_VIP" }, /^ADDR_/],
    ["SVC", L.SVC, { Affinity: "SVC_AFFINITY", ExtLocal: "SVC_EXT_LOCAL", IntLocal: "SVC_INT_LOCAL", SourceRanges: "SVC_SOURCE_RANGES" }, /^SVC_/],
    ["BE_STATE", L.BE_STATE, { None: "BE_STATE_NONE", Active: "BE_STATE_ACTIVE", Terminating: "BE_STATE_TERMINATING" }, /^BE_STATE_/],
    ["BE_FLAG", L.BE_FLAG, { Local: "BE_LOCAL" }, /^BE_(?!STATE_)/],
    ["CT_STATE", L.CT_STATE, { None: "CT_STATE_NONE", SynSent: "CT_STATE_SYN_SENT", Established: "CT_STATE_ESTABLISHED", Closing: "CT_STATE_CLOSING", Reset: "CT_STATE_RESET" }, /^CT_STATE_/],
    ["CT_FLAG", L.CT_FLAG, { Reply: "CT_REPLY", Snat: "CT_SNAT", SeenReply: "CT_SEEN_REPLY", Counted: "CT_COUNTED" }, /^CT_(?!STATE_)/],
    ["CFG", L.CFG, { SwapMacs: "CFG_SWAP_MACS", MasqOffNode: "CFG_MASQ_OFF_NODE" }, /^CFG_/],
    ["ALGORITHMS", L.ALGORITHMS, { default: "ALG_DEFAULT", random: "ALG_RANDOM", maglev: "ALG_MAGLEV", rr: "ALG_RR", lc: "ALG_LC", dh: "ALG_DH", sh: "ALG_SH", sed: "ALG_SED", nq: "ALG_NQ" }, /^ALG_/],
  ];
  for (const [table, obj, names, re] of TABLES) {
    it(`${table}: each entry equals its export, and every ${re.source} export is mirrored`, () => {
      expect(Object.keys(obj).sort()).toEqual(Object.keys(names).sort());
      for (const [k, exp] of Object.entries(names)) expect(obj[k], `${table}.${k} = ${exp}`).toBe(must(exp));
      const exported = [...G.keys()].filter((k) => re.test(k));
      expect(exported.sort()).toEqual(Object.values(names).sort());
    });
  }

  it("flag sets are distinct single bits", () => {
    for (const t of [L.ADDR, L.SVC, L.CT_FLAG, L.CFG, L.BE_FLAG]) {
      const v = Object.values(t) as number[];
      for (const b of v) expect(b & (b - 1), `${b} is one bit`).toBe(0);
      expect(v.reduce((a, b) => a | b, 0)).toBe(v.reduce((a, b) => a + b, 0));
    }
  });
});

describe("builds: both instantiate and export the DataplaneExports functions", () => {
  // The interface body in src/maps/abi.ts, parsed: method name → parameter count.
  const abiSrc = readFileSync(fileURLToPath(new URL("../../src/maps/abi.ts", import.meta.url)), "utf8");
  const body = /export interface DataplaneExports \{([\s\S]*?)\n\}/.exec(abiSrc)![1]!;
  const methods = [...body.matchAll(/^\s+(\w+)\(([^)]*)\)\s*:/gm)].map((m) => ({
    name: m[1]!,
    params: m[2]!.trim() === "" ? 0 : m[2]!.split(",").length,
  }));

  it("the interface parse found the methods", () => {
    expect(methods.length).toBeGreaterThan(25);
    expect(methods.map((m) => m.name)).toContain("processBatch");
  });

  for (const b of BUILDS) {
    it(`${b}: every interface method is an exported function with that many parameters`, () => {
      const y = instantiate(b);
      expect(y.memory).toBeInstanceOf(WebAssembly.Memory);
      for (const m of methods) {
        const f = (y as unknown as Record<string, unknown>)[m.name];
        expect(typeof f, `${b}: ${m.name}`).toBe("function");
        expect((f as (...a: unknown[]) => unknown).length, `${b}: ${m.name} arity`).toBe(m.params);
      }
      expect(y.init(4, 256)).toBe(0);
      expect(y.batchMax()).toBe(4);
      expect(y.frameCap()).toBe(256);
      expect(y.scratchPtr()).toBeGreaterThan(0);
      expect(y.frameAreaPtr() % 16).toBe(0);
      expect(y.frameAreaPtr()).toBeGreaterThanOrEqual(y.batchDescsPtr() + 4 * 16);
      expect(y.frameAreaPtr() + 4 * 256).toBeLessThanOrEqual(y.memory.buffer.byteLength);
    });

    it(`${b}: exports the same globals with the same values as the release build`, () => {
      const g = globals(instantiate(b));
      for (const [k, v] of G) if (k !== "outLen") expect(g.get(k), `${b}: ${k}`).toBe(v);
      expect([...g.keys()].sort()).toEqual([...G.keys()].sort());
    });
  }

  it("release has no imports (asserts compiled out); debug imports env.abort for its assertions", () => {
    const file = (b: Build) => readFileSync(fileURLToPath(new URL(`../../build/${b}.wasm`, import.meta.url)));
    expect(WebAssembly.Module.imports(new WebAssembly.Module(file("release")))).toEqual([]);
    expect(WebAssembly.Module.imports(new WebAssembly.Module(file("debug")))).toEqual([{ module: "env", name: "abort", kind: "function" }]);
  });

  it("init rejects batchMax 0 and frameCap < 64, rounds frameCap up to 16", () => {
    const y = instantiate("release");
    expect(y.init(0, 2048)).toBe(must("E_INVAL"));
    expect(y.init(1, 63)).toBe(must("E_INVAL"));
    expect(y.init(1, 100)).toBe(0);
    expect(y.frameCap()).toBe(112);
  });
});

describe("codecs: encode/decode round trip and byte order", () => {
  function rnd(seed: number): () => number {
    let s = seed >>> 0 || 1;
    return () => {
      s ^= s << 13; s >>>= 0;
      s ^= s >>> 17;
      s ^= s << 5; s >>>= 0;
      return s;
    };
  }
  const r = rnd(0x5eed1);
  function randomValue(t: FieldType): number | bigint | string {
    switch (t) {
      case "u8": return r() & 0xff;
      case "u16": return r() & 0xffff;
      case "u32": return r() >>> 0;
      case "u64": return (BigInt(r()) << 32n) | BigInt(r());
      case "ipv4be": return u32ToIpv4(r());
      case "portbe": return r() & 0xffff;
    }
  }

  for (const m of L.MAPS) {
    for (const [part, s] of [["key", m.key], ["value", m.value]] as const) {
      if (!s) continue;
      it(`${m.name} ${part}: round trip; padding zeroed; nothing written outside the struct`, () => {
        for (let iter = 0; iter < 50; iter++) {
          const at = 8 + (iter % 3) * 4;
          const buf = new Uint8Array(s.size + 24).fill(0xa5);
          const dv = new DataView(buf.buffer);
          const v: Record<string, unknown> = {};
          for (const f of s.fields) v[f.name] = randomValue(f.type);
          s.encode(dv, at, v as never);
          expect(s.decode(dv, at)).toEqual(v);
          // bytes outside [at, at+size) untouched
          for (let i = 0; i < buf.length; i++) if (i < at || i >= at + s.size) expect(buf[i], `byte ${i}`).toBe(0xa5);
          // bytes not covered by a field (padding) are zero
          const covered = new Set<number>();
          for (const f of s.fields) for (let k = 0; k < WIDTH[f.type]; k++) covered.add(f.offset + k);
          for (let o = 0; o < s.size; o++) if (!covered.has(o)) expect(buf[at + o], `pad ${o}`).toBe(0);
        }
        // Missing fields encode as zero.
        const dv = new DataView(new Uint8Array(s.size).fill(0xff).buffer);
        s.encode(dv, 0, {});
        for (const f of s.fields) {
          const d = s.decode(dv, 0) as Record<string, unknown>;
          expect(d[f.name]).toEqual(f.type === "u64" ? 0n : f.type === "ipv4be" ? "0.0.0.0" : 0);
        }
      });
    }
  }

  it("raw bytes: ipv4be and portbe in network order, u16/u32/u64 little-endian", () => {
    const s = struct(24, [
      { name: "a", type: "ipv4be", offset: 0 },
      { name: "p", type: "portbe", offset: 4 },
      { name: "h", type: "u16", offset: 6 },
      { name: "w", type: "u32", offset: 8 },
      { name: "b", type: "u8", offset: 12 },
      { name: "q", type: "u64", offset: 16 },
    ]);
    const buf = new Uint8Array(24);
    s.encode(new DataView(buf.buffer), 0, { a: "10.96.0.10", p: 8080, h: 0x1234, w: 0xdeadbeef, b: 0x7f, q: 0x0102030405060708n });
    expect(Array.from(buf)).toEqual([
      10, 96, 0, 10, 0x1f, 0x90, 0x34, 0x12, 0xef, 0xbe, 0xad, 0xde, 0x7f, 0, 0, 0,
      8, 7, 6, 5, 4, 3, 2, 1,
    ]);
    // An ipv4be given as a host-order number lands in the same bytes.
    const buf2 = new Uint8Array(24);
    s.encode(new DataView(buf2.buffer), 0, { a: 0x0a60000a as unknown as string });
    expect(Array.from(buf2.subarray(0, 4))).toEqual([10, 96, 0, 10]);
    expect(s.decode(new DataView(buf2.buffer), 0).a).toBe("10.96.0.10");
  });

  it("the conntrack key codec matches the wire: raw address/port bytes as in a packet", () => {
    const buf = new Uint8Array(16);
    L.conntrack.key.encode(new DataView(buf.buffer), 0, { saddrBe: "10.244.0.5", daddrBe: "10.96.0.10", sportBe: 40000, dportBe: 80, proto: 6 });
    expect(Array.from(buf)).toEqual([10, 244, 0, 5, 10, 96, 0, 10, 0x9c, 0x40, 0, 80, 6, 0, 0, 0]);
  });

  it("ipv4ToU32 / u32ToIpv4", () => {
    expect(ipv4ToU32("10.96.0.10")).toBe(0x0a60000a);
    expect(ipv4ToU32("255.255.255.255")).toBe(0xffffffff);
    expect(u32ToIpv4(0xc000020a)).toBe("192.0.2.10");
    for (let i = 0; i < 1000; i++) {
      const v = r() >>> 0;
      expect(ipv4ToU32(u32ToIpv4(v))).toBe(v);
    }
    for (const bad of ["1.2.3", "1.2.3.256", "a.b.c.d", "1.2.3.4.5", " 1.2.3.4", ""]) expect(() => ipv4ToU32(bad), bad).toThrow(TypeError);
  });

  it("a struct whose field overruns its size is refused", () => {
    expect(() => struct(4, [{ name: "x", type: "u64", offset: 0 }])).toThrow(/overruns/);
  });

  it("through the module: hash maps store and find what the codecs encode (both builds)", () => {
    for (const b of BUILDS) {
      const dp = new Dataplane({ build: b, seed: 7, maxEntries: { conntrack: 64, svc_slots: 64, snat: 64, affinity: 64, frontends: 64, addrs: 64, lpm_v4: 64 } });
      const hashMaps = [dp.maps.frontends, dp.maps.addrs, dp.maps.svcSlots, dp.maps.affinity, dp.maps.snat, dp.maps.lpmV4, dp.maps.conntrack] as const;
      for (const hm of hashMaps) {
        const decl = L.MAPS.find((m) => m.id === hm.id)!;
        const entries: Array<[Record<string, unknown>, Record<string, unknown>]> = [];
        for (let i = 0; i < 20; i++) {
          const k: Record<string, unknown> = {};
          const v: Record<string, unknown> = {};
          for (const f of decl.key!.fields) k[f.name] = randomValue(f.type);
          for (const f of decl.value.fields) v[f.name] = randomValue(f.type);
          (hm as unknown as { update(k: unknown, v: unknown): void }).update(k, v);
          entries.push([k, v]);
        }
        expect(hm.count, `${decl.name} count`).toBe(20);
        for (const [k, v] of entries) {
          expect((hm as unknown as { lookup(k: unknown): unknown }).lookup(k), `${b} ${decl.name}`).toEqual(v);
        }
        // The key bytes in the slot are the codec's bytes.
        const dumped = hm.entries();
        expect(dumped.length).toBe(20);
        for (const [k] of dumped) expect(entries.some(([ek]) => JSON.stringify(ek) === JSON.stringify(k))).toBe(true);
      }
      // Array maps: set/get by index, the element pointer spaced by the value size.
      for (const am of [dp.maps.services, dp.maps.backends, dp.maps.revNat, dp.maps.statsService, dp.maps.maglev, dp.maps.lpmMasks]) {
        const decl = L.MAPS.find((m) => m.id === am.id)!;
        expect(am.ptr(5) - am.ptr(4)).toBe(decl.value.size);
        const v: Record<string, unknown> = {};
        for (const f of decl.value.fields) v[f.name] = randomValue(f.type);
        (am as unknown as { set(i: number, v: unknown): void }).set(3, v);
        expect((am as unknown as { get(i: number): unknown }).get(3)).toEqual(v);
        expect(() => am.ptr(am.maxEntries)).toThrow(/outside/);
      }
    }
  });
});
