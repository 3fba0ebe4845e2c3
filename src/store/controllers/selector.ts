// Label and field selectors as the list APIs and the Service controllers use them.
// - Map selectors (Service.spec.selector): every key=value must match; {} matches everything.
// - The string labelSelector syntax of k8s.io/apimachinery/pkg/labels:
//     a=b, a==b, a!=b, a in (x,y), a notin (x,y), a, !a, a>5, a<5   (comma-separated, ANDed)
//   keys must be qualified names and values label values; errors name the offending part.
// - fieldSelector (k8s.io/apimachinery/pkg/fields): f=v, f==v, f!=v on supported fields
//   (metadata.name and metadata.namespace by default), with \, \= \\ escapes in values.

import { isQualifiedName, isValidLabelValue } from "../validation.js";

export type Labels = Readonly<Record<string, string>> | undefined | null;

/** True when every key=value of the map selector is in `labels` (an empty selector matches everything). */
export function selectorMatches(selector: Readonly<Record<string, string>>, labels: Labels): boolean {
  for (const [k, v] of Object.entries(selector)) {
    if (!labels || !Object.prototype.hasOwnProperty.call(labels, k) || labels[k] !== v) return false;
  }
  return true;
}

// ------------------------------------------------------------------ label selector strings

export type LabelOperator = "=" | "==" | "!=" | "in" | "notin" | "exists" | "!" | "gt" | "lt";

export interface LabelRequirement {
  key: string;
  operator: LabelOperator;
  /** Values for =, ==, != (one), in / notin (one or more), gt / lt (one integer); none for exists / !. */
  values: string[];
}

/** A parsed labelSelector: the AND of its requirements (empty = everything). */
export type LabelSelector = LabelRequirement[];

export class SelectorParseError extends Error {
  constructor(
    message: string,
    /** The part of the input that is wrong (a token, a key or a value). */
    readonly part: string,
    /** Character offset of that part in the input (-1 when not applicable). */
    readonly position: number,
    /** The whole selector text. */
    readonly selector: string,
  ) {
    super(message);
    this.name = "SelectorParseError";
  }
}

type TokKind = "ident" | "!" | "!=" | "=" | "==" | "," | "(" | ")" | ">" | "<" | "eos";

interface Token {
  kind: TokKind;
  text: string;
  pos: number;
}

const SPECIAL = new Set(["=", "!", "(", ")", ",", ">", "<"]);

function isWhitespace(c: string): boolean {
  return c === " " || c === "\t" || c === "\r" || c === "\n";
}

function lex(input: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < input.length) {
    const c = input[i]!;
    if (isWhitespace(c)) {
      i++;
      continue;
    }
    if (SPECIAL.has(c)) {
      const two = input.slice(i, i + 2);
      if (two === "!=" || two === "==") {
        out.push({ kind: two, text: two, pos: i });
        i += 2;
      } else {
        out.push({ kind: c as TokKind, text: c, pos: i });
        i++;
      }
      continue;
    }
    const start = i;
    while (i < input.length && !isWhitespace(input[i]!) && !SPECIAL.has(input[i]!)) i++;
    out.push({ kind: "ident", text: input.slice(start, i), pos: start });
  }
  out.push({ kind: "eos", text: "", pos: input.length });
  return out;
}

function describe(t: Token): string {
  return t.kind === "eos" ? "end of string" : t.text;
}

/**
 * Parses a labelSelector string. Throws SelectorParseError naming the bad part, e.g.
 * `found ')', expected: identifier` or `invalid label key "a b": ...`.
 */
export function parseLabelSelector(input: string): LabelSelector {
  const toks = lex(input);
  let p = 0;
  const peek = (): Token => toks[p]!;
  const next = (): Token => toks[p++]!;
  const fail = (msg: string, t: Token): never => {
    throw new SelectorParseError(`unable to parse requirement: ${msg}`, t.text, t.kind === "eos" ? input.length : t.pos, input);
  };
  const reqs: LabelRequirement[] = [];
  if (peek().kind === "eos") return reqs;

  for (;;) {
    // key, possibly preceded by '!'
    let t = next();
    let negated = false;
    if (t.kind === "!") {
      negated = true;
      t = next();
      if (t.kind !== "ident") fail(`found '${describe(t)}', expected: identifier after '!'`, t);
    } else if (t.kind !== "ident") {
      fail(`found '${describe(t)}', expected: !, identifier, or 'end of string'`, t);
    }
    const keyTok = t;
    const keyErrs = isQualifiedName(keyTok.text);
    if (keyErrs.length) fail(`invalid label key "${keyTok.text}": ${keyErrs.join("; ")}`, keyTok);

    let req: LabelRequirement;
    const after = peek();
    if (negated) {
      if (after.kind !== "," && after.kind !== "eos") {
        fail(`found '${describe(after)}', expected: ',' or 'end of string'`, after);
      }
      req = { key: keyTok.text, operator: "!", values: [] };
    } else if (after.kind === "," || after.kind === "eos") {
      req = { key: keyTok.text, operator: "exists", values: [] };
    } else {
      const op = next();
      let operator: LabelOperator;
      if (op.kind === "=" || op.kind === "==" || op.kind === "!=" || op.kind === ">" || op.kind === "<") {
        operator = op.kind === ">" ? "gt" : op.kind === "<" ? "lt" : op.kind;
      } else if (op.kind === "ident" && (op.text === "in" || op.text === "notin")) {
        operator = op.text;
      } else {
        return fail(`found '${describe(op)}', expected: '=', '!=', '==', 'in', 'notin', '>', '<'`, op);
      }
      const values: string[] = [];
      const valueToks: Token[] = [];
      if (operator === "in" || operator === "notin") {
        const open = next();
        if (open.kind !== "(") fail(`found '${describe(open)}', expected: '('`, open);
        // identifiers separated by commas; empty entries stand for the empty value
        let expectValue = true;
        for (;;) {
          const v = next();
          if (v.kind === ")") {
            if (expectValue && values.length > 0) values.push("");
            break;
          }
          if (v.kind === ",") {
            if (expectValue) values.push("");
            expectValue = true;
            continue;
          }
          if (v.kind === "ident" && expectValue) {
            values.push(v.text);
            valueToks.push(v);
            expectValue = false;
            continue;
          }
          if (v.kind === "ident") fail(`found '${v.text}', expected: ',' or ')'`, v);
          fail(`found '${describe(v)}', expected: ',', ')' or identifier`, v);
        }
        if (values.length === 0) fail(`for 'in', 'notin' operators, values set can't be empty (key "${keyTok.text}")`, keyTok);
      } else {
        const v = peek();
        if (v.kind === "ident") {
          next();
          values.push(v.text);
          valueToks.push(v);
        } else if (v.kind === "," || v.kind === "eos") {
          if (operator === "gt" || operator === "lt") fail(`found '${describe(v)}', expected: an integer value`, v);
          values.push("");
        } else {
          fail(`found '${describe(v)}', expected: identifier`, v);
        }
      }
      values.forEach((val, i) => {
        const errs = isValidLabelValue(val);
        const vt = valueToks.find((x) => x.text === val) ?? valueToks[i] ?? keyTok;
        if (errs.length) fail(`invalid label value: "${val}": at key: "${keyTok.text}": ${errs.join("; ")}`, vt);
        if ((operator === "gt" || operator === "lt") && !/^[+-]?\d+$/.test(val)) {
          fail(`for 'Gt', 'Lt' operators, the value must be an integer (key "${keyTok.text}", value "${val}")`, vt);
        }
      });
      req = { key: keyTok.text, operator, values: operator === "in" || operator === "notin" ? [...new Set(values)] : values };
    }
    reqs.push(req);

    const sep = next();
    if (sep.kind === "eos") break;
    if (sep.kind !== ",") fail(`found '${describe(sep)}', expected: ',' or 'end of string'`, sep);
    if (peek().kind === "eos") fail(`found 'end of string', expected: !, identifier`, peek());
  }
  return reqs;
}

/** A map selector as requirements (key=value each, keys sorted). */
export function labelSelectorFromMap(selector: Readonly<Record<string, string>>): LabelSelector {
  return Object.keys(selector)
    .sort()
    .map((k) => ({ key: k, operator: "=" as const, values: [selector[k]!] }));
}

export function requirementMatches(req: LabelRequirement, labels: Labels): boolean {
  const has = !!labels && Object.prototype.hasOwnProperty.call(labels, req.key);
  const val = has ? labels![req.key]! : undefined;
  switch (req.operator) {
    case "=":
    case "==":
    case "in":
      return has && req.values.includes(val!);
    case "!=":
    case "notin":
      return !has || !req.values.includes(val!);
    case "exists":
      return has;
    case "!":
      return !has;
    case "gt":
    case "lt": {
      if (!has || !/^[+-]?\d+$/.test(val!)) return false;
      const l = BigInt(val!);
      const r = BigInt(req.values[0]!);
      return req.operator === "gt" ? l > r : l < r;
    }
  }
}

/** True when `labels` satisfies every requirement. */
export function labelSelectorMatches(selector: LabelSelector, labels: Labels): boolean {
  return selector.every((r) => requirementMatches(r, labels));
}

/** The canonical string form (requirements in the given order). */
export function formatLabelSelector(selector: LabelSelector): string {
  return selector
    .map((r) => {
      switch (r.operator) {
        case "exists":
          return r.key;
        case "!":
          return `!${r.key}`;
        case "in":
        case "notin":
          return `${r.key} ${r.operator} (${[...r.values].sort().join(",")})`;
        case "gt":
          return `${r.key}>${r.values[0]}`;
        case "lt":
          return `${r.key}<${r.values[0]}`;
        default:
          return `${r.key}${r.operator}${r.values[0] ?? ""}`;
      }
    })
    .join(",");
}

// ------------------------------------------------------------------ field selectors

export interface FieldRequirement {
  field: string;
  operator: "=" | "==" | "!=";
  value: string;
}

export type FieldSelector = FieldRequirement[];

/** Reads a field's value from an object (undefined when absent). */
export type FieldGetter = (obj: unknown) => string | undefined;

function metaField(name: "name" | "namespace"): FieldGetter {
  return (obj) => {
    const m = (obj as { metadata?: Record<string, unknown> } | null)?.metadata;
    const v = m?.[name];
    return typeof v === "string" ? v : "";
  };
}

/** The fields every kind supports. */
export const DEFAULT_FIELD_GETTERS: Readonly<Record<string, FieldGetter>> = {
  "metadata.name": metaField("name"),
  "metadata.namespace": metaField("namespace"),
};

function splitUnescaped(s: string, sep: string): string[] {
  const out: string[] = [];
  let cur = "";
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === "\\" && i + 1 < s.length) {
      cur += c + s[i + 1]!;
      i++;
    } else if (c === sep) {
      out.push(cur);
      cur = "";
    } else {
      cur += c;
    }
  }
  out.push(cur);
  return out;
}

function indexUnescaped(s: string, op: string): number {
  for (let i = 0; i < s.length; i++) {
    if (s[i] === "\\") {
      i++;
      continue;
    }
    if (s.startsWith(op, i)) return i;
  }
  return -1;
}

function unescapeValue(v: string, whole: string, pos: number): string {
  let out = "";
  for (let i = 0; i < v.length; i++) {
    const c = v[i]!;
    if (c !== "\\") {
      out += c;
      continue;
    }
    const n = v[i + 1];
    if (n === "\\" || n === "," || n === "=") {
      out += n;
      i++;
      continue;
    }
    const bad = n === undefined ? "\\" : `\\${n}`;
    throw new SelectorParseError(`invalid field selector: invalid escape sequence: ${bad}`, bad, pos + i, whole);
  }
  return out;
}

/**
 * Parses a fieldSelector (`metadata.name=foo,metadata.namespace!=bar`). Fields outside
 * `getters` (default: metadata.name, metadata.namespace) are rejected with
 * `field label not supported: <field>`.
 */
export function parseFieldSelector(
  input: string,
  getters: Readonly<Record<string, FieldGetter>> = DEFAULT_FIELD_GETTERS,
): FieldSelector {
  const reqs: FieldRequirement[] = [];
  if (input.trim() === "") return reqs;
  let offset = 0;
  for (const term of splitUnescaped(input, ",")) {
    const termPos = offset;
    offset += term.length + 1;
    if (term === "") {
      throw new SelectorParseError(`invalid field selector: empty term in '${input}'`, "", termPos, input);
    }
    let found: { op: "!=" | "==" | "="; idx: number } | null = null;
    for (const op of ["!=", "==", "="] as const) {
      const idx = indexUnescaped(term, op);
      if (idx >= 0) {
        found = { op, idx };
        break;
      }
    }
    if (!found) {
      throw new SelectorParseError(`invalid selector: '${input}'; can't understand '${term}'`, term, termPos, input);
    }
    const field = term.slice(0, found.idx).trim();
    const rawValue = term.slice(found.idx + found.op.length);
    if (!Object.prototype.hasOwnProperty.call(getters, field)) {
      throw new SelectorParseError(`field label not supported: ${field}`, field, termPos, input);
    }
    const value = unescapeValue(rawValue, input, termPos + found.idx + found.op.length);
    reqs.push({ field, operator: found.op, value });
  }
  return reqs;
}

/** True when the object satisfies every field requirement. */
export function fieldSelectorMatches(
  selector: FieldSelector,
  obj: unknown,
  getters: Readonly<Record<string, FieldGetter>> = DEFAULT_FIELD_GETTERS,
): boolean {
  return selector.every((r) => {
    const g = getters[r.field];
    const v = g ? (g(obj) ?? "") : "";
    return r.operator === "!=" ? v !== r.value : v === r.value;
  });
}
