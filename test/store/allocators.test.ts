// Tests for src/store/allocators.ts: §3 ClusterIP/NodePort bands, reserved first address, errors, release, snapshot/restore.
import { describe, it, expect } from "vitest";
import {
  AlreadyAllocatedError,
  IPAllocator,
  MismatchedRangeError,
  NotInRangeError,
  PortAllocator,
  RangeFullError,
  parsePortRange,
  seededRandom,
} from "../../src/store/allocators.js";

describe("IPAllocator", () => {
  it("computes size and static band for 10.96.0.0/12", () => {
    const a = new IPAllocator("10.96.0.0/12");
    expect(a.size).toBe(2 ** 20 - 2);
    expect(a.staticBand).toBe(256); // min(max(16, 2^20/16), 256)
    expect(a.firstAddress()).toBe("10.96.0.1");
    expect(a.free()).toBe(2 ** 20 - 2);
  });
  it.each([
    ["10.0.0.0/28", 14, 0],
    ["10.0.0.0/27", 30, 16],
    ["10.0.0.0/24", 254, 16],
    ["10.0.0.0/20", 4094, 256],
    ["10.0.0.0/22", 1022, 64],
  ])("band for %s: %i usable, %i static", (cidr, size, band) => {
    const a = new IPAllocator(cidr);
    expect(a.size).toBe(size);
    expect(a.staticBand).toBe(band);
  });
  it("never hands out the network or broadcast address", () => {
    const a = new IPAllocator("10.0.0.0/24");
    expect(() => a.allocate("10.0.0.0")).toThrow(NotInRangeError);
    expect(() => a.allocate("10.0.0.255")).toThrow(NotInRangeError);
    const got = new Set<string>();
    for (let i = 0; i < 253; i++) got.add(a.allocateNext());
    expect(got.has("10.0.0.0")).toBe(false);
    expect(got.has("10.0.0.255")).toBe(false);
    expect(got.has("10.0.0.1")).toBe(false); // reserved for the kubernetes service
    expect(got.size).toBe(253);
    expect(() => a.allocateNext()).toThrow(RangeFullError);
  });
  it("lets the kubernetes service take the first address explicitly", () => {
    const a = new IPAllocator("10.0.0.0/24");
    a.allocate("10.0.0.1");
    expect(a.has("10.0.0.1")).toBe(true);
  });
  it("can hand out the first address when not reserving it", () => {
    const a = new IPAllocator("10.0.0.0/29", { reserveFirst: false });
    const all = Array.from({ length: 6 }, () => a.allocateNext()).sort();
    expect(all).toEqual(["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"]);
  });
  it("prefers the upper band for dynamic picks", () => {
    const a = new IPAllocator("10.0.0.0/24", { random: seededRandom(1) });
    // 254 usable, 16 static (10.0.0.1-10.0.0.16): the first 238 picks all land above.
    for (let i = 0; i < 238; i++) {
      const ip = a.allocateNext();
      const last = Number(ip.split(".")[3]);
      expect(last).toBeGreaterThan(16);
    }
    // then the static band is used
    const next = Number(a.allocateNext().split(".")[3]);
    expect(next).toBeGreaterThanOrEqual(2);
    expect(next).toBeLessThanOrEqual(16);
  });
  it("static requests in the lower band succeed while dynamic ones go above", () => {
    const a = new IPAllocator("10.96.0.0/12", { random: seededRandom(7) });
    a.allocate("10.96.0.10");
    expect(() => a.allocate("10.96.0.10")).toThrow(AlreadyAllocatedError);
    for (let i = 0; i < 50; i++) {
      const ip = a.allocateNext();
      const [, , c, d] = ip.split(".").map(Number) as [number, number, number, number];
      expect(c * 256 + d).toBeGreaterThan(256);
    }
  });
  it("uses the error messages of the API", () => {
    const a = new IPAllocator("10.0.0.0/30");
    a.allocate("10.0.0.2");
    try {
      a.allocate("10.0.0.2");
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(AlreadyAllocatedError);
      expect((e as Error).message).toBe("provided IP is already allocated");
      expect((e as AlreadyAllocatedError).code).toBe(422);
    }
    expect(() => a.allocate("192.168.0.1")).toThrow("is not in the valid range. The range of valid IPs is 10.0.0.0/30");
    expect(() => a.allocateNext()).toThrow("failed to allocate a serviceIP: range is full");
    try {
      a.allocateNext();
    } catch (e) {
      expect((e as RangeFullError).code).toBe(500);
    }
  });
  it("rejects the wrong family and garbage", () => {
    const a = new IPAllocator("10.0.0.0/24");
    expect(() => a.allocate("fd00::1")).toThrow(NotInRangeError);
    expect(() => a.allocate("nope")).toThrow(NotInRangeError);
  });
  it("releases and re-allocates", () => {
    const a = new IPAllocator("10.0.0.0/29");
    a.allocate("10.0.0.3");
    expect(a.used()).toBe(1);
    a.release("10.0.0.3");
    expect(a.used()).toBe(0);
    expect(a.has("10.0.0.3")).toBe(false);
    a.release("10.0.0.3"); // no-op
    a.release("8.8.8.8"); // no-op
    a.allocate("10.0.0.3");
    expect(a.list()).toEqual(["10.0.0.3"]);
  });
  it("snapshots and restores", () => {
    const a = new IPAllocator("10.0.0.0/24", { random: seededRandom(3) });
    a.allocate("10.0.0.1");
    const picked = [a.allocateNext(), a.allocateNext()];
    const snap = a.snapshot();
    expect(snap.range).toBe("10.0.0.0/24");
    const b = new IPAllocator("10.0.0.0/24");
    b.restore(JSON.parse(JSON.stringify(snap)));
    expect(b.used()).toBe(3);
    expect(b.has("10.0.0.1")).toBe(true);
    for (const ip of picked) expect(b.has(ip)).toBe(true);
    expect(b.list()).toEqual(a.list());
    expect(() => new IPAllocator("10.0.1.0/24").restore(snap)).toThrow(MismatchedRangeError);
  });
  it("is deterministic with a seeded random source", () => {
    const run = () => {
      const a = new IPAllocator("10.96.0.0/12", { random: seededRandom(42) });
      return Array.from({ length: 5 }, () => a.allocateNext());
    };
    expect(run()).toEqual(run());
  });
  it("supports IPv6 (no broadcast; bitmap capped)", () => {
    const a = new IPAllocator("fd00:10:96::/112");
    expect(a.family).toBe("IPv6");
    expect(a.size).toBe(65535);
    expect(a.staticBand).toBe(256);
    expect(a.firstAddress()).toBe("fd00:10:96::1");
    a.allocate("fd00:10:96::ffff");
    expect(a.has("fd00:10:96:0::ffff")).toBe(true);
    expect(() => a.allocate("fd00:10:96::")).toThrow(NotInRangeError);
    const ip = a.allocateNext();
    expect(ip.startsWith("fd00:10:96::")).toBe(true);
    const big = new IPAllocator("fd00::/64");
    expect(big.size).toBe(65535);
    expect(big.contains("fd00::1:0")).toBe(false);
  });
  it("masks host bits in the CIDR", () => expect(new IPAllocator("10.96.3.4/12").cidr).toBe("10.96.0.0/12"));
});

describe("PortAllocator", () => {
  it("defaults to 30000-32767 with an 86-port static band", () => {
    const a = new PortAllocator();
    expect(a.range).toEqual({ base: 30000, size: 2768 });
    expect(a.staticBand).toBe(86); // min(max(16, 2768/32), 128)
    expect(a.free()).toBe(2768);
  });
  it.each([
    ["30000-30015", 0],
    ["30000-30016", 16],
    ["30000-30999", 31],
    ["30000-39999", 128],
  ])("band for %s is %i", (range, band) => expect(new PortAllocator(range).staticBand).toBe(band));
  it("parses the upstream range forms", () => {
    expect(parsePortRange("30000-32767")).toEqual({ base: 30000, size: 2768 });
    expect(parsePortRange("30000+2767")).toEqual({ base: 30000, size: 2768 });
    expect(parsePortRange("30000")).toEqual({ base: 30000, size: 1 });
    expect(() => parsePortRange("a-b")).toThrow();
  });
  it("prefers the upper band for dynamic picks", () => {
    const a = new PortAllocator("30000-30999", { random: seededRandom(5) });
    for (let i = 0; i < 1000 - 31; i++) expect(a.allocateNext()).toBeGreaterThanOrEqual(30031);
    const p = a.allocateNext();
    expect(p).toBeGreaterThanOrEqual(30000);
    expect(p).toBeLessThan(30031);
  });
  it("honours explicit ports in either band", () => {
    const a = new PortAllocator();
    a.allocate(30007);
    a.allocate(32767);
    expect(a.has(30007)).toBe(true);
    expect(a.used()).toBe(2);
  });
  it("uses the error messages of the API", () => {
    const a = new PortAllocator();
    a.allocate(30007);
    expect(() => a.allocate(30007)).toThrow(new AlreadyAllocatedError("port").message);
    expect(() => a.allocate(30007)).toThrow("provided port is already allocated");
    expect(() => a.allocate(80)).toThrow("provided port is not in the valid range. The range of valid ports is 30000-32767");
    expect(() => a.allocate(32768)).toThrow(NotInRangeError);
    const small = new PortAllocator("30000-30001");
    small.allocateNext();
    small.allocateNext();
    expect(() => small.allocateNext()).toThrow("failed to allocate a nodePort: range is full");
  });
  it("releases", () => {
    const a = new PortAllocator("30000-30003");
    const all = [a.allocateNext(), a.allocateNext(), a.allocateNext(), a.allocateNext()].sort();
    expect(all).toEqual([30000, 30001, 30002, 30003]);
    expect(() => a.allocateNext()).toThrow(RangeFullError);
    a.release(30002);
    expect(a.free()).toBe(1);
    expect(a.allocateNext()).toBe(30002);
    a.release(12345); // out of range: no-op
  });
  it("snapshots and restores", () => {
    const a = new PortAllocator(undefined, { random: seededRandom(9) });
    a.allocate(30007);
    const p = a.allocateNext();
    const b = new PortAllocator();
    b.restore(a.snapshot());
    expect(b.list()).toEqual([30007, p].sort((x, y) => x - y));
    expect(() => new PortAllocator("30000-30100").restore(a.snapshot())).toThrow(MismatchedRangeError);
  });
  it("is deterministic with a seeded random source", () => {
    const run = () => {
      const a = new PortAllocator(undefined, { random: seededRandom(11) });
      return Array.from({ length: 5 }, () => a.allocateNext());
    };
    expect(run()).toEqual(run());
  });
});
