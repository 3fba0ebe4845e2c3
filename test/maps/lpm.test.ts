// The LPM tables as the host keeps them (Dataplane.lpmAdd / lpmDelete / lpmClear): lookups,
// the per-table prefix-length masks, and tables that do not disturb each other.

import { describe, it, expect } from "vitest";
import { Dataplane } from "../../src/maps/dataplane.js";

const small = () => new Dataplane({ seed: 1, maxEntries: { conntrack: 1024, lpm_v4: 256, lpm_masks: 64 } });

describe("LPM tables", () => {
  it("delete keeps a prefix length's mask bit while another prefix of that length remains; clear empties one table only", () => {
    const dp = small();
    dp.lpmAdd(5, "10.1.0.0/16");
    dp.lpmAdd(5, "10.2.0.0/16");
    dp.lpmAdd(5, "192.0.2.7/32");
    dp.lpmAdd(6, "10.1.0.0/16");
    dp.lpmAdd(5, "10.1.0.0/16"); // again: no change
    const mask = (t: number) => dp.maps.lpmMasks.get(t).lengths;
    expect(mask(5)).toBe((1n << 16n) | (1n << 32n));
    expect(dp.maps.lpmV4.count).toBe(4);

    expect(dp.lpmDelete(5, "10.1.0.0/16")).toBe(true);
    expect(dp.lpmDelete(5, "10.1.0.0/16")).toBe(false);
    expect(mask(5)).toBe((1n << 16n) | (1n << 32n)); // 10.2.0.0/16 still needs /16
    expect(dp.lpmMatch(5, "10.1.2.3")).toBe(false);
    expect(dp.lpmMatch(5, "10.2.2.3")).toBe(true);
    expect(dp.lpmDelete(5, "10.2.0.0/16")).toBe(true);
    expect(mask(5)).toBe(1n << 32n);

    dp.lpmClear(5);
    expect(mask(5)).toBe(0n);
    expect(dp.lpmMatch(5, "192.0.2.7")).toBe(false);
    expect(dp.lpmMatch(6, "10.1.9.9")).toBe(true); // table 6 untouched
    expect(mask(6)).toBe(1n << 16n);
    expect(dp.maps.lpmV4.count).toBe(1);

    dp.lpmAdd(5, "10.9.0.0/16"); // a cleared table takes new prefixes
    expect(dp.lpmMatch(5, "10.9.1.1")).toBe(true);
    expect(mask(5)).toBe(1n << 16n);
  });

  it("clearing one table among many touches only its own entries", () => {
    const dp = small();
    for (let t = 1; t <= 40; t++) for (let i = 0; i < 4; i++) dp.lpmAdd(t, `10.${t}.${i}.0/24`);
    expect(dp.maps.lpmV4.count).toBe(160);
    dp.lpmClear(17);
    expect(dp.maps.lpmV4.count).toBe(156);
    expect(dp.lpmMatch(17, "10.17.1.5")).toBe(false);
    expect(dp.lpmMatch(18, "10.18.1.5")).toBe(true);
  });
});
