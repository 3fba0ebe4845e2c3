// bench/RESULTS.md is shared by several benchmark commands: each rewrites only its own section.
import { describe, expect, it } from "vitest";
import { replaceSection } from "../../bench/results-file.js";

describe("bench results file sections", () => {
  it("appends a new section and replaces it in place later, keeping the others", () => {
    let t = replaceSection("", "dataplane", "## A\nfirst-text");
    t = replaceSection(t, "dns", "## B\ntwo");
    expect(t.indexOf("## A")).toBeLessThan(t.indexOf("## B"));
    t = replaceSection(t, "dataplane", "## A\nthree");
    expect(t).toContain("three");
    expect(t).not.toContain("first-text");
    expect(t).toContain("two");
    expect(t.indexOf("## A")).toBeLessThan(t.indexOf("## B"));
    expect(t.match(/section:dataplane begin/g)).toHaveLength(1);
  });

  it("refuses a file with a lone marker rather than losing text", () => {
    expect(() => replaceSection("x\n<!-- section:dns begin -->\nhalf", "dns", "new")).toThrow(/only one of its markers/);
  });
});
