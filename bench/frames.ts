// Benchmark traffic: pools of pristine Ethernet/IPv4/TCP frames (54 bytes each, 20-byte TCP
// header, no payload) laid out at a fixed 64-byte stride, so one batch of 64 frames is one
// contiguous 4 KiB block that can be copied into a frame area with a single Uint8Array.set.
// Frames are crafted from a buildFrame() template with full checksum recomputation; the
// first frames of each pool are cross-checked byte for byte against buildFrame().

import { buildFrame } from "../src/host/frames.js";
import { seededRandom } from "../src/store/allocators.js";

export const STRIDE = 64; // bytes per frame slot (= the dataplane's frameCap in the benchmarks)
export const BATCH = 64; // frames per processBatch call
export const BATCH_BYTES = STRIDE * BATCH;
export const FRAME_LEN = 54; // 14 Ethernet + 20 IPv4 + 20 TCP

/** "a.b.c.d" → host-order u32. */
export function ip4(s: string): number {
  const p = s.split(".").map(Number);
  return ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0;
}

/** host-order u32 → "a.b.c.d". */
export function ip4s(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

/** One flow's first packet: client (src:sport) → frontend (dst:dport), TCP. */
export interface FlowTuple {
  src: number; // host-order
  dst: number; // host-order
  sport: number;
  dport: number;
}

function sum16(b: Uint8Array, off: number, len: number, init: number): number {
  let s = init;
  for (let i = 0; i < len; i += 2) s += (b[off + i]! << 8) | b[off + i + 1]!;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

/**
 * Writes the frame of `t` at byte `off` of `out` from a 54-byte template (MACs, TTL, id,
 * flags, window copied), recomputing the IPv4 and TCP checksums from scratch.
 */
export function writeFrame(out: Uint8Array, off: number, tmpl: Uint8Array, t: FlowTuple): void {
  out.set(tmpl, off);
  const ip = off + 14;
  const l4 = ip + 20;
  const put32 = (o: number, v: number) => {
    out[o] = v >>> 24; out[o + 1] = (v >>> 16) & 255; out[o + 2] = (v >>> 8) & 255; out[o + 3] = v & 255;
  };
  put32(ip + 12, t.src);
  put32(ip + 16, t.dst);
  out[l4] = t.sport >>> 8; out[l4 + 1] = t.sport & 255;
  out[l4 + 2] = t.dport >>> 8; out[l4 + 3] = t.dport & 255;
  out[ip + 10] = 0; out[ip + 11] = 0;
  const ic = ~sum16(out, ip, 20, 0) & 0xffff;
  out[ip + 10] = ic >>> 8; out[ip + 11] = ic & 255;
  out[l4 + 16] = 0; out[l4 + 17] = 0;
  const pseudo = (t.src >>> 16) + (t.src & 0xffff) + (t.dst >>> 16) + (t.dst & 0xffff) + 6 + 20;
  const tc = ~sum16(out, l4, 20, pseudo) & 0xffff;
  out[l4 + 16] = tc >>> 8; out[l4 + 17] = tc & 255;
}

/** The template every crafted frame starts from ("S" = SYN, "A" = ACK). */
export function template(flags: "S" | "A"): Uint8Array {
  return buildFrame({ src: "10.244.0.2", dst: "10.96.0.10", proto: "TCP", sport: 1024, dport: 80, flags, seq: 1000, ack: flags === "A" ? 1 : 0 });
}

/**
 * A pool of `n` frames (n a multiple of 64) at STRIDE spacing: frame i is `tuple(i)`.
 * The first 16 frames are compared with buildFrame() output (throws on a mismatch).
 */
export function makePool(n: number, tuple: (i: number) => FlowTuple, flags: "S" | "A"): Uint8Array {
  if (n % BATCH !== 0) throw new Error(`pool size ${n} is not a multiple of ${BATCH}`);
  const tmpl = template(flags);
  if (tmpl.length !== FRAME_LEN) throw new Error(`template is ${tmpl.length} bytes`);
  const pool = new Uint8Array(n * STRIDE);
  const t: FlowTuple = { src: 0, dst: 0, sport: 0, dport: 0 };
  for (let i = 0; i < n; i++) {
    const f = tuple(i);
    t.src = f.src; t.dst = f.dst; t.sport = f.sport; t.dport = f.dport;
    writeFrame(pool, i * STRIDE, tmpl, t);
  }
  for (let i = 0; i < Math.min(16, n); i++) {
    const f = tuple(i);
    const ref = buildFrame({ src: ip4s(f.src), dst: ip4s(f.dst), proto: "TCP", sport: f.sport, dport: f.dport, flags, seq: 1000, ack: flags === "A" ? 1 : 0 });
    const got = pool.subarray(i * STRIDE, i * STRIDE + FRAME_LEN);
    for (let j = 0; j < FRAME_LEN; j++) if (got[j] !== ref[j]) throw new Error(`crafted frame ${i} differs from buildFrame at byte ${j}`);
  }
  return pool;
}

/** Deterministic PRNG (the store's mulberry32) so every run uses the same traffic. */
export const rng = seededRandom;

/** A random permutation of 0..n-1 (Fisher–Yates). */
export function permutation(n: number, rand: () => number): Uint32Array {
  const p = new Uint32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = p[i]!; p[i] = p[j]!; p[j] = t;
  }
  return p;
}

/**
 * Client tuple number `i` (unique for i < 250 · 64512): source 10.244.0.(2 + i % 250) — a
 * pod on this node, so ClusterIP traffic is not masqueraded — and port 1024 + ⌊i / 250⌋.
 * `salt` shifts the port range so different pools (established vs new) never collide.
 */
export function client(i: number, salt = 0): { src: number; sport: number } {
  const j = i + salt;
  const port = 1024 + Math.floor(j / 250);
  if (port > 65535) throw new Error(`client tuple ${j} out of range`);
  return { src: ip4("10.244.0.2") + (j % 250), sport: port };
}
