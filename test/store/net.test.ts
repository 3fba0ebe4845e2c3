// Tests for src/store/net.ts: IP parsing/canonical form and CIDR parsing.
import { describe, it, expect } from "vitest";
import { canonicalIP, parseCIDR, parseIP, formatCIDR } from "../../src/store/net.js";

describe("net helpers", () => {
  it.each([
    ["10.0.0.1", "10.0.0.1"],
    ["2001:DB8:0:0:0:0:0:1", "2001:db8::1"],
    ["::", "::"],
    ["::1", "::1"],
    ["fe80::", "fe80::"],
    ["2001:db8:0:1:0:0:0:1", "2001:db8:0:1::1"],
    ["::ffff:10.0.0.1", "10.0.0.1"],
    ["64:ff9b::192.0.2.33", "64:ff9b::c000:221"],
  ])("canonicalises %s", (input, out) => expect(canonicalIP(input)).toBe(out));
  it.each(["", "1.2.3", "1.2.3.4.5", "256.0.0.1", "1::2::3", "12345::", "g::1", "1.2.3.4/32", "fe80::1%eth0"])("rejects %s", (s) =>
    expect(parseIP(s)).toBeNull());
  it("parses CIDRs and masks host bits", () => {
    expect(formatCIDR(parseCIDR("10.96.1.2/12")!)).toBe("10.96.0.0/12");
    expect(formatCIDR(parseCIDR("2001:db8::1/64")!)).toBe("2001:db8::/64");
    expect(parseCIDR("10.0.0.0/33")).toBeNull();
    expect(parseCIDR("10.0.0.0")).toBeNull();
  });
});
