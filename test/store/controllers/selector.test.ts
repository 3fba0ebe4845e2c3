// Label selectors (map and string syntax) and field selectors.
import { describe, it, expect } from "vitest";
import {
  SelectorParseError,
  fieldSelectorMatches,
  formatLabelSelector,
  labelSelectorFromMap,
  labelSelectorMatches,
  parseFieldSelector,
  parseLabelSelector,
  selectorMatches,
} from "../../../src/store/controllers/selector.js";

describe("map selectors", () => {
  it.each([
    [{ app: "web" }, { app: "web", x: "y" }, true],
    [{ app: "web" }, { app: "db" }, false],
    [{ app: "web", tier: "fe" }, { app: "web" }, false],
    [{ app: "web" }, undefined, false],
    [{}, { anything: "x" }, true],
    [{}, undefined, true],
    [{ app: "" }, { app: "" }, true],
    [{ app: "" }, {}, false],
  ])("%j matches %j: %s", (sel, labels, want) => expect(selectorMatches(sel, labels)).toBe(want));
  it("labelSelectorFromMap gives the same answers", () =>
    expect(labelSelectorMatches(labelSelectorFromMap({ b: "2", a: "1" }), { a: "1", b: "2" })).toBe(true));
});

describe("labelSelector strings", () => {
  it("parses a=b,c!=d,e in (x,y),f notin (z),g,!h", () => {
    expect(parseLabelSelector("a=b,c!=d,e in (x,y),f notin (z),g,!h")).toEqual([
      { key: "a", operator: "=", values: ["b"] },
      { key: "c", operator: "!=", values: ["d"] },
      { key: "e", operator: "in", values: ["x", "y"] },
      { key: "f", operator: "notin", values: ["z"] },
      { key: "g", operator: "exists", values: [] },
      { key: "h", operator: "!", values: [] },
    ]);
  });
  it("accepts ==, spaces, qualified keys, empty values, > and <", () => {
    expect(parseLabelSelector("  app.kubernetes.io/name == web ,  x= ,n>5,m<10")).toEqual([
      { key: "app.kubernetes.io/name", operator: "==", values: ["web"] },
      { key: "x", operator: "=", values: [""] },
      { key: "n", operator: "gt", values: ["5"] },
      { key: "m", operator: "lt", values: ["10"] },
    ]);
    expect(parseLabelSelector("a in (x,)")).toEqual([{ key: "a", operator: "in", values: ["x", ""] }]);
    expect(parseLabelSelector("")).toEqual([]);
  });

  const sel = parseLabelSelector("a=b,c!=d,e in (x,y),f notin (z),g,!h");
  it.each([
    [{ a: "b", e: "x", g: "" }, true],
    [{ a: "b", c: "d", e: "x", g: "" }, false],
    [{ a: "b", e: "q", g: "" }, false],
    [{ a: "b", e: "y", f: "z", g: "" }, false],
    [{ a: "b", e: "y", f: "w", g: "1" }, true],
    [{ a: "b", e: "x" }, false],
    [{ a: "b", e: "x", g: "", h: "" }, false],
  ])("%j → %s", (labels, want) => expect(labelSelectorMatches(sel, labels)).toBe(want));
  it("gt / lt compare integers; non-integer labels never match", () => {
    const s = parseLabelSelector("n>5,m<10");
    expect(labelSelectorMatches(s, { n: "6", m: "9" })).toBe(true);
    expect(labelSelectorMatches(s, { n: "5", m: "9" })).toBe(false);
    expect(labelSelectorMatches(s, { n: "x", m: "9" })).toBe(false);
  });
  it("formats back", () => expect(formatLabelSelector(sel)).toBe("a=b,c!=d,e in (x,y),f notin (z),g,!h"));

  it.each([
    ["a in x", "x", "expected: '('"],
    ["a in ()", "a", "values set can't be empty"],
    ["=b", "=", "expected: !, identifier"],
    ["a b", "b", "expected: '=', '!=', '==', 'in', 'notin'"],
    ["a=b c", "c", "expected: ',' or 'end of string'"],
    ["a=b,", "", "found 'end of string'"],
    ["!", "", "identifier after '!'"],
    ["!a=b", "=", "expected: ',' or 'end of string'"],
    ["a=(b)", "(", "expected: identifier"],
    ["bad key!=x", "key", "expected: '=', '!=', '==', 'in', 'notin'"],
    ["Bad_Key-=x", "Bad_Key-", 'invalid label key "Bad_Key-"'],
    ["a=-bad-", "-bad-", 'invalid label value: "-bad-"'],
    ["a in (x y)", "y", "expected: ',' or ')'"],
    ["n>x", "x", "must be an integer"],
    ["n>", "", "expected: an integer value"],
  ])("%j is rejected naming %j", (input, part, fragment) => {
    let err: unknown;
    try {
      parseLabelSelector(input);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SelectorParseError);
    const e = err as SelectorParseError;
    expect(e.part).toBe(part);
    expect(e.message).toContain(fragment);
    expect(e.selector).toBe(input);
  });
});

describe("fieldSelector", () => {
  const obj = { metadata: { name: "web", namespace: "prod" } };
  it.each([
    ["metadata.name=web", true],
    ["metadata.name==web", true],
    ["metadata.name!=web", false],
    ["metadata.name=web,metadata.namespace=prod", true],
    ["metadata.name=web,metadata.namespace!=prod", false],
    ["metadata.namespace=default", false],
    ["", true],
  ])("%j → %s", (input, want) => expect(fieldSelectorMatches(parseFieldSelector(input), obj)).toBe(want));
  it("values may escape , = and \\", () => {
    expect(parseFieldSelector("metadata.name=a\\,b\\=c\\\\")).toEqual([{ field: "metadata.name", operator: "=", value: "a,b=c\\" }]);
  });
  it.each([
    ["spec.clusterIP=1.2.3.4", "spec.clusterIP", "field label not supported: spec.clusterIP"],
    ["metadata.name", "metadata.name", "can't understand 'metadata.name'"],
    ["metadata.name=a\\x", "\\x", "invalid escape sequence"],
  ])("%j is rejected naming %j", (input, part, fragment) => {
    try {
      parseFieldSelector(input);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(SelectorParseError);
      expect((e as SelectorParseError).part).toBe(part);
      expect((e as SelectorParseError).message).toContain(fragment);
    }
  });
  it("extra fields can be supplied per kind", () => {
    const getters = { "spec.nodeName": (o: unknown) => (o as { spec?: { nodeName?: string } }).spec?.nodeName ?? "" };
    const s = parseFieldSelector("spec.nodeName=n1", getters);
    expect(fieldSelectorMatches(s, { spec: { nodeName: "n1" } }, getters)).toBe(true);
  });
});
