// The module's checksum exports (csumPartial, pseudoHeaderSum, ipv4SetChecksum, crc32c)
// against the independent TypeScript implementations in src/host/frames.ts, on random buffers
// written into the module's 256-byte scratch area at every alignment, in both builds.

import { describe, it, expect } from "vitest";
import { instantiate, type Build, type DataplaneExports } from "../../src/maps/abi.js";
import { inetChecksum, crc32c } from "../../src/host/frames.js";
import { MAPS } from "../../src/maps/layout.js";
import * as F from "./fixtures.js";

const SCRATCH = 256;

function xorshift(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s;
  };
}

/** Folds the module's raw (little-endian word) sum and returns the wire-order checksum. */
function foldRaw(sum: bigint): number {
  let s = sum;
  while (s > 0xffffn) s = (s & 0xffffn) + (s >> 16n);
  const c = ~Number(s) & 0xffff;
  return ((c & 0xff) << 8) | (c >> 8); // raw → wire byte order
}

function setup(b: Build): { x: DataplaneExports; mem: () => Uint8Array; p: number } {
  const x = instantiate(b);
  // Tiny maps: only the scratch area and the CRC table matter here.
  for (const m of MAPS) x.mapSetMaxEntries(m.id, Math.min(m.defaultMaxEntries, 64));
  expect(x.init(1, 64)).toBe(0);
  return { x, mem: () => new Uint8Array(x.memory.buffer), p: x.scratchPtr() };
}

for (const b of ["release", "debug"] as const) {
  describe(`${b}: checksum exports agree with src/host/frames.ts`, () => {
    const seed = 0xc5c5 + (b === "debug" ? 1 : 0);
    it(`csumPartial = inetChecksum on random buffers, every length 0..256 and alignment (seed ${seed})`, () => {
      const { x, mem, p } = setup(b);
      const r = xorshift(seed);
      let n = 0;
      for (let len = 0; len <= SCRATCH; len++) {
        for (let align = 0; align < 8 && align + len <= SCRATCH; align++) {
          const buf = Uint8Array.from({ length: len }, () => r() & 0xff);
          // Bias some buffers to extremes (all 0xff / all 0x00) where folding matters.
          if (len % 17 === 3) buf.fill(0xff);
          if (len % 17 === 5) buf.fill(0);
          mem().set(buf, p + align);
          const sum = x.csumPartial(p + align, len, 0n);
          expect(foldRaw(sum), `len ${len} align ${align}`).toBe(inetChecksum(buf));
          n++;
        }
      }
      expect(n).toBeGreaterThan(2000);
    });

    it("csumPartial chains: the sum of [0,a) fed into [a,len) equals the sum of [0,len) for even a", () => {
      const { x, mem, p } = setup(b);
      const r = xorshift(seed ^ 0x1234);
      for (let i = 0; i < 500; i++) {
        const len = r() % (SCRATCH + 1);
        const a = Math.min(len, (r() % (len + 1)) & ~1);
        const buf = Uint8Array.from({ length: len }, () => r() & 0xff);
        mem().set(buf, p);
        const whole = x.csumPartial(p, len, 0n);
        const chained = x.csumPartial(p + a, len - a, x.csumPartial(p, a, 0n));
        expect(foldRaw(chained)).toBe(foldRaw(whole));
        // An initial sum is added as is (not folded first): big initial sums still fold right.
        const init = BigInt(r()) * 65536n;
        expect(foldRaw(x.csumPartial(p, len, init))).toBe(foldRaw(whole + init));
      }
    });

    it("csumPartial reads only [p, p+len): bytes after the range do not matter", () => {
      const { x, mem, p } = setup(b);
      const r = xorshift(seed ^ 0x777);
      for (let i = 0; i < 300; i++) {
        const len = r() % 200;
        const buf = Uint8Array.from({ length: len }, () => r() & 0xff);
        mem().set(buf, p);
        mem().fill(0x00, p + len, p + len + 16);
        const a = x.csumPartial(p, len, 0n);
        mem().fill(0xff, p + len, p + len + 16);
        expect(x.csumPartial(p, len, 0n), `len ${len}`).toBe(a);
      }
    });

    it("crc32c export = TS crc32c on random buffers, every length 0..256, several alignments", () => {
      const { x, mem, p } = setup(b);
      const r = xorshift(seed ^ 0xcc);
      for (let len = 0; len <= SCRATCH; len++) {
        for (const align of [0, 1, 3]) {
          if (align + len > SCRATCH) continue;
          const buf = Uint8Array.from({ length: len }, () => r() & 0xff);
          mem().set(buf, p + align);
          expect(x.crc32c(p + align, len) >>> 0, `len ${len}`).toBe(crc32c(buf));
        }
      }
    });

    it("crc32c export: RFC 3720 B.4 test vectors", () => {
      const { x, mem, p } = setup(b);
      const vectors: Array<[Uint8Array, number]> = [
        [new TextEncoder().encode("123456789"), 0xe3069283],
        [new Uint8Array(32), 0x8a9136aa],
        [new Uint8Array(32).fill(0xff), 0x62a8ab43],
        [Uint8Array.from({ length: 32 }, (_, i) => i), 0x46dd794e],
        [Uint8Array.from({ length: 32 }, (_, i) => 31 - i), 0x113fdb5c],
        [new Uint8Array(0), 0],
      ];
      for (const [buf, want] of vectors) {
        mem().set(buf, p);
        expect(x.crc32c(p, buf.length) >>> 0).toBe(want);
      }
    });

    it("pseudoHeaderSum + csumPartial verify the captured TCP, UDP segments", () => {
      const { x, mem, p } = setup(b);
      const pseudo = x.pseudoHeaderSum as unknown as (s: number, d: number, proto: number, len: number) => bigint;
      for (const f of [F.TCP_SYN, F.UDP_QUERY, F.TCP_RST, F.SYN_IHL15]) {
        const ihl = (f[14]! & 15) * 4;
        const tot = (f[16]! << 8) | f[17]!;
        const l4 = f.subarray(14 + ihl, 14 + tot);
        const dv = new DataView(f.buffer, f.byteOffset);
        const sRaw = dv.getUint32(14 + 12, true);
        const dRaw = dv.getUint32(14 + 16, true);
        mem().set(l4, p);
        const sum = x.csumPartial(p, l4.length, pseudo(sRaw, dRaw, f[14 + 9]!, l4.length));
        expect(foldRaw(sum)).toBe(0); // a valid checksum sums to 0xffff: complement 0
      }
    });

    it("ipv4SetChecksum writes the checksum TS computes, options included", () => {
      const { x, mem, p } = setup(b);
      const set = x.ipv4SetChecksum as unknown as (ip: number) => void;
      const r = xorshift(seed ^ 0x99);
      for (let i = 0; i < 300; i++) {
        const ihl = 20 + 4 * (r() % 11);
        const h = Uint8Array.from({ length: ihl }, () => r() & 0xff);
        h[0] = 0x40 | (ihl / 4);
        mem().set(h, p);
        set(p);
        const out = mem().slice(p, p + ihl);
        expect(inetChecksum(out), `ihl ${ihl}`).toBe(0);
        const z = h.slice();
        z[10] = 0;
        z[11] = 0;
        const c = inetChecksum(z);
        expect([out[10], out[11]]).toEqual([c >> 8, c & 0xff]);
        // Only the checksum field changed.
        out[10] = h[10]!;
        out[11] = h[11]!;
        expect(out).toEqual(h);
      }
    });
  });
}

describe("csumPartial / crc32c still agree after heavy pipeline use (no table corruption)", () => {
  it("the CRC table in linear memory is intact after init and re-init", () => {
    const x = instantiate("release");
    for (let k = 0; k < 3; k++) {
      expect(x.init(2 + k, 128)).toBe(0);
      const p = x.scratchPtr();
      const buf = Uint8Array.from({ length: 200 }, (_, i) => (i * 37 + k) & 0xff);
      new Uint8Array(x.memory.buffer).set(buf, p);
      expect(x.crc32c(p, 200) >>> 0).toBe(crc32c(buf));
    }
  });
});
