// ClusterIP and NodePort allocators (upstream ipallocator/portallocator semantics): bitmaps over a
// CIDR or port range with a static lower band (kept for explicit requests) and a dynamic upper
// band that random picks prefer, typed errors with upstream messages, and snapshot/restore.

import {
  bigIntToIP,
  formatCIDR,
  formatIP,
  ipToBigInt,
  parseCIDR,
  parseIP,
  type ParsedCIDR,
} from "./net.js";

// ------------------------------------------------------------------ errors

/** Base class: `code` is the HTTP status the API answers with (422 or 500). */
export class AllocationError extends Error {
  readonly code: number;
  constructor(message: string, code: number) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/** No free value left: `failed to allocate a serviceIP: range is full` (HTTP 500). */
export class RangeFullError extends AllocationError {
  constructor(readonly what: "serviceIP" | "nodePort") {
    super(`failed to allocate a ${what}: range is full`, 500);
  }
}

/** The requested value is taken: `provided IP is already allocated` (HTTP 422). */
export class AlreadyAllocatedError extends AllocationError {
  constructor(readonly what: "IP" | "port") {
    super(`provided ${what} is already allocated`, 422);
  }
}

/** The requested value is outside the range (HTTP 422). */
export class NotInRangeError extends AllocationError {
  constructor(
    readonly what: "IP" | "port",
    readonly value: string,
    readonly validRange: string,
  ) {
    super(
      what === "IP"
        ? `the provided IP (${value}) is not in the valid range. The range of valid IPs is ${validRange}`
        : `provided port is not in the valid range. The range of valid ports is ${validRange}`,
      422,
    );
  }
}

/** restore() was given a snapshot of another range. */
export class MismatchedRangeError extends AllocationError {
  constructor(what: "IP" | "port") {
    super(
      what === "IP"
        ? "the provided network does not match the current range"
        : "the provided port range does not match the current port range",
      500,
    );
  }
}

// ------------------------------------------------------------------ random source

/** A source of floats in [0, 1), like Math.random. */
export type RandomSource = () => number;

/** A small deterministic PRNG (mulberry32) for reproducible allocation in tests. */
export function seededRandom(seed: number): RandomSource {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface AllocatorOptions {
  /** Random source for dynamic picks (deterministic when seeded); Math.random by default. */
  random?: RandomSource;
}

export interface Snapshot {
  /** The range the snapshot belongs to (CIDR or "min-max"). */
  range: string;
  /** Base64 of the allocation bitmap. */
  data: string;
}

/** The common interface of both allocators; T is string (IP) or number (port). */
export interface Allocator<T> {
  allocate(x: T): void;
  allocateNext(): T;
  release(x: T): void;
  has(x: T): boolean;
  used(): number;
  free(): number;
  snapshot(): Snapshot;
  restore(s: Snapshot): void;
  /** Every allocated value, in range order. */
  list(): T[];
}

// ------------------------------------------------------------------ bitmap with offset strategy

/**
 * An allocation bitmap of `max` slots whose first `offset` slots form the static band: dynamic
 * picks scan the upper band from a random start and fall back to the lower band only when the
 * upper one is full (upstream randomScanStrategyWithOffset).
 */
class BandedBitmap {
  private bits: Uint8Array;
  private count = 0;

  constructor(
    readonly max: number,
    readonly offset: number,
    private readonly random: RandomSource,
  ) {
    this.bits = new Uint8Array(Math.ceil(max / 8));
  }

  has(i: number): boolean {
    return (this.bits[i >> 3]! & (1 << (i & 7))) !== 0;
  }

  /** True when newly set, false when it was already set. */
  set(i: number): boolean {
    if (this.has(i)) return false;
    this.bits[i >> 3]! |= 1 << (i & 7);
    this.count++;
    return true;
  }

  clear(i: number): void {
    if (!this.has(i)) return;
    this.bits[i >> 3]! &= ~(1 << (i & 7));
    this.count--;
  }

  used(): number {
    return this.count;
  }

  free(): number {
    return this.max - this.count;
  }

  private intn(n: number): number {
    return Math.min(n - 1, Math.floor(this.random() * n));
  }

  /** A free slot (skipping `skip`), or -1 when none. */
  next(skip: (i: number) => boolean): number {
    if (this.count >= this.max) return -1;
    const upper = this.max - this.offset;
    if (upper > 0) {
      const start = this.intn(upper);
      for (let k = 0; k < upper; k++) {
        const at = this.offset + ((start + k) % upper);
        if (!this.has(at) && !skip(at)) return at;
      }
    }
    if (this.offset > 0) {
      const start = this.intn(this.offset);
      for (let k = 0; k < this.offset; k++) {
        const at = (start + k) % this.offset;
        if (!this.has(at) && !skip(at)) return at;
      }
    }
    return -1;
  }

  forEach(fn: (i: number) => void): void {
    for (let byte = 0; byte < this.bits.length; byte++) {
      const b = this.bits[byte]!;
      if (b === 0) continue;
      for (let bit = 0; bit < 8; bit++) if (b & (1 << bit)) fn(byte * 8 + bit);
    }
  }

  dump(): string {
    return Buffer.from(this.bits).toString("base64");
  }

  load(data: string): void {
    const raw = Buffer.from(data, "base64");
    const bits = new Uint8Array(this.bits.length);
    bits.set(raw.subarray(0, bits.length));
    // Drop bits beyond max, if any.
    const extra = bits.length * 8 - this.max;
    if (extra > 0 && bits.length > 0) bits[bits.length - 1]! &= 0xff >> extra;
    this.bits = bits;
    let c = 0;
    for (const b of bits) {
      let x = b;
      while (x) {
        x &= x - 1;
        c++;
      }
    }
    this.count = c;
  }
}

/** min(max(min, size/step), max), 0 when size <= min: the static band size upstream uses. */
function bandOffset(size: bigint, min: number, max: number, step: number): number {
  if (size <= BigInt(min)) return 0;
  const off = size / BigInt(step);
  if (off < BigInt(min)) return min;
  if (off > BigInt(max)) return max;
  return Number(off);
}

// ------------------------------------------------------------------ IP allocator

export interface IPAllocatorOptions extends AllocatorOptions {
  /**
   * Keep the first usable address (the `kubernetes` service's in `default`) out of dynamic
   * picks; it can still be allocated explicitly. Default true.
   */
  reserveFirst?: boolean;
}

/** Upper bound of the bitmap for IPv6 ranges (upstream caps it the same way). */
const MAX_IPV6_SLOTS = 65536;

/**
 * Service IPs over a CIDR. The network address is never handed out, nor the IPv4 broadcast
 * address. The first `staticBand` usable addresses (min(max(16, size/16), 256), 0 when the
 * CIDR has ≤16 addresses) are only picked dynamically once the upper band is full.
 */
export class IPAllocator implements Allocator<string> {
  readonly cidr: string;
  readonly family: "IPv4" | "IPv6";
  /** Size of the static (lower) band. */
  readonly staticBand: number;
  /** Number of usable addresses. */
  readonly size: number;
  private readonly net: ParsedCIDR;
  private readonly base: bigint;
  private readonly bitmap: BandedBitmap;
  private readonly reserveFirst: boolean;

  constructor(cidr: string, opts: IPAllocatorOptions = {}) {
    const net = parseCIDR(cidr);
    if (!net) throw new Error(`invalid service CIDR ${JSON.stringify(cidr)}`);
    this.net = net;
    this.cidr = formatCIDR(net);
    this.family = net.family === 4 ? "IPv4" : "IPv6";
    const rangeSize = 1n << BigInt(net.bits - net.prefix);
    let max = rangeSize;
    if (net.family === 6) {
      if (max > BigInt(MAX_IPV6_SLOTS)) max = BigInt(MAX_IPV6_SLOTS);
    } else {
      max -= 1n; // broadcast
    }
    max -= 1n; // network address
    if (max < 0n) max = 0n;
    this.size = Number(max);
    this.base = net.network + 1n;
    this.staticBand = Math.min(bandOffset(rangeSize, 16, 256, 16), this.size);
    this.bitmap = new BandedBitmap(this.size, this.staticBand, opts.random ?? Math.random);
    this.reserveFirst = opts.reserveFirst ?? true;
  }

  /** The first usable address (the `kubernetes` service's). */
  firstAddress(): string {
    return formatIP(bigIntToIP(this.base, this.net.family));
  }

  private offsetOf(ip: string): number {
    const p = parseIP(ip);
    if (!p || p.family !== this.net.family) return -1;
    const off = ipToBigInt(p) - this.base;
    if (off < 0n || off >= BigInt(this.size)) return -1;
    return Number(off);
  }

  private ipAt(off: number): string {
    return formatIP(bigIntToIP(this.base + BigInt(off), this.net.family));
  }

  /** True when `ip` is an allocatable address of this range. */
  contains(ip: string): boolean {
    return this.offsetOf(ip) >= 0;
  }

  allocate(ip: string): void {
    const off = this.offsetOf(ip);
    if (off < 0) throw new NotInRangeError("IP", ip, this.cidr);
    if (!this.bitmap.set(off)) throw new AlreadyAllocatedError("IP");
  }

  allocateNext(): string {
    const off = this.bitmap.next((i) => this.reserveFirst && i === 0);
    if (off < 0) throw new RangeFullError("serviceIP");
    this.bitmap.set(off);
    return this.ipAt(off);
  }

  /** Releasing a free or out-of-range address is a no-op. */
  release(ip: string): void {
    const off = this.offsetOf(ip);
    if (off >= 0) this.bitmap.clear(off);
  }

  has(ip: string): boolean {
    const off = this.offsetOf(ip);
    return off >= 0 && this.bitmap.has(off);
  }

  used(): number {
    return this.bitmap.used();
  }

  free(): number {
    return this.bitmap.free();
  }

  list(): string[] {
    const out: string[] = [];
    this.bitmap.forEach((i) => out.push(this.ipAt(i)));
    return out;
  }

  snapshot(): Snapshot {
    return { range: this.cidr, data: this.bitmap.dump() };
  }

  restore(s: Snapshot): void {
    const net = parseCIDR(s.range);
    if (!net || formatCIDR(net) !== this.cidr) throw new MismatchedRangeError("IP");
    this.bitmap.load(s.data);
  }
}

// ------------------------------------------------------------------ port allocator

export const DEFAULT_NODE_PORT_RANGE = "30000-32767";

export interface PortRange {
  base: number;
  size: number;
}

/** Parses "30000-32767", "30000+2768" or a single port "30000" (upstream ParsePortRange forms). */
export function parsePortRange(s: string): PortRange {
  const t = s.trim();
  let m = /^(\d+)-(\d+)$/.exec(t);
  let base: number;
  let size: number;
  if (m) {
    base = Number(m[1]);
    const hi = Number(m[2]);
    size = hi - base + 1;
  } else if ((m = /^(\d+)\+(\d+)$/.exec(t))) {
    base = Number(m[1]);
    size = Number(m[2]) + 1;
  } else if ((m = /^(\d+)$/.exec(t))) {
    base = Number(m[1]);
    size = 1;
  } else {
    throw new Error(`unable to parse port range: ${s}`);
  }
  if (size < 1 || base < 0 || base + size - 1 > 65535) throw new Error(`unable to parse port range: ${s}`);
  return { base, size };
}

export function formatPortRange(r: PortRange): string {
  return `${r.base}-${r.base + r.size - 1}`;
}

/**
 * NodePorts over a range (default 30000-32767). The lower band of
 * min(max(16, size/32), 128) ports (0 when the range has ≤16 ports) is kept for explicit
 * requests; dynamic picks use it only once the upper band is full. For 30000-32767 that band
 * is 30000-30085.
 */
export class PortAllocator implements Allocator<number> {
  readonly range: PortRange;
  readonly rangeText: string;
  /** Size of the static (lower) band. */
  readonly staticBand: number;
  private readonly bitmap: BandedBitmap;

  constructor(range: string | PortRange = DEFAULT_NODE_PORT_RANGE, opts: AllocatorOptions = {}) {
    this.range = typeof range === "string" ? parsePortRange(range) : { ...range };
    this.rangeText = formatPortRange(this.range);
    this.staticBand = bandOffset(BigInt(this.range.size), 16, 128, 32);
    this.bitmap = new BandedBitmap(this.range.size, this.staticBand, opts.random ?? Math.random);
  }

  contains(port: number): boolean {
    return Number.isInteger(port) && port >= this.range.base && port < this.range.base + this.range.size;
  }

  allocate(port: number): void {
    if (!this.contains(port)) throw new NotInRangeError("port", String(port), this.rangeText);
    if (!this.bitmap.set(port - this.range.base)) throw new AlreadyAllocatedError("port");
  }

  allocateNext(): number {
    const off = this.bitmap.next(() => false);
    if (off < 0) throw new RangeFullError("nodePort");
    this.bitmap.set(off);
    return this.range.base + off;
  }

  /** Releasing a free or out-of-range port is a no-op. */
  release(port: number): void {
    if (this.contains(port)) this.bitmap.clear(port - this.range.base);
  }

  has(port: number): boolean {
    return this.contains(port) && this.bitmap.has(port - this.range.base);
  }

  used(): number {
    return this.bitmap.used();
  }

  free(): number {
    return this.bitmap.free();
  }

  list(): number[] {
    const out: number[] = [];
    this.bitmap.forEach((i) => out.push(this.range.base + i));
    return out;
  }

  snapshot(): Snapshot {
    return { range: this.rangeText, data: this.bitmap.dump() };
  }

  restore(s: Snapshot): void {
    let r: PortRange;
    try {
      r = parsePortRange(s.range);
    } catch {
      throw new MismatchedRangeError("port");
    }
    if (formatPortRange(r) !== this.rangeText) throw new MismatchedRangeError("port");
    this.bitmap.load(s.data);
  }
}
