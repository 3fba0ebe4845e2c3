// PATCH bodies: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and the subset of
// Kubernetes strategic merge patch that kubectl apply/patch produce for the kinds tapvip serves:
// lists with a merge key are merged element by element (Service spec.ports by `port`, Pod
// containers by `name`, container ports by `containerPort`, conditions by `type`, …), other
// lists are replaced; `null` deletes a key; directives `$patch: replace|delete|merge`,
// `$setElementOrder/<list>`, `$retainKeys`, `$deleteFromPrimitiveList/<list>`.

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };

export class PatchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PatchError";
  }
}

const isObject = (v: unknown): v is JsonObject => v !== null && typeof v === "object" && !Array.isArray(v);

// ------------------------------------------------------------------ JSON merge patch

export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return structuredClone(patch);
  const out: JsonObject = isObject(target) ? structuredClone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v) as Json;
  }
  return out;
}

// ------------------------------------------------------------------ JSON patch

function unescapePointer(seg: string): string {
  return seg.replace(/~1/g, "/").replace(/~0/g, "~");
}

function parsePointer(p: string): string[] {
  if (p === "") return [];
  if (!p.startsWith("/")) throw new PatchError(`invalid JSON pointer ${JSON.stringify(p)}`);
  return p.slice(1).split("/").map(unescapePointer);
}

function getAt(doc: Json, path: string[]): Json | undefined {
  let cur: Json | undefined = doc;
  for (const seg of path) {
    if (Array.isArray(cur)) cur = cur[Number(seg)];
    else if (isObject(cur)) cur = Object.prototype.hasOwnProperty.call(cur, seg) ? cur[seg] : undefined;
    else return undefined;
  }
  return cur;
}

function parentOf(doc: Json, path: string[], op: string): { parent: Json; key: string } {
  if (path.length === 0) throw new PatchError(`${op}: cannot operate on the document root`);
  const parent = getAt(doc, path.slice(0, -1));
  if (parent === undefined || (parent !== null && typeof parent !== "object")) {
    throw new PatchError(`${op} operation does not apply: doc is missing path: "/${path.join("/")}"`);
  }
  return { parent, key: path[path.length - 1]! };
}

export function jsonPatch(target: unknown, ops: unknown): unknown {
  if (!Array.isArray(ops)) throw new PatchError("a JSON patch must be an array of operations");
  let doc = structuredClone(target) as Json;
  for (const raw of ops) {
    if (!isObject(raw)) throw new PatchError("a JSON patch operation must be an object");
    const op = String(raw.op);
    const path = parsePointer(String(raw.path ?? ""));
    const add = (p: string[], value: Json): void => {
      if (p.length === 0) {
        doc = value;
        return;
      }
      const { parent, key } = parentOf(doc, p, op);
      if (Array.isArray(parent)) {
        const i = key === "-" ? parent.length : Number(key);
        if (!Number.isInteger(i) || i < 0 || i > parent.length) throw new PatchError(`${op}: index ${key} out of range`);
        parent.splice(i, 0, value);
      } else (parent as JsonObject)[key] = value;
    };
    const remove = (p: string[]): Json => {
      const { parent, key } = parentOf(doc, p, op);
      const cur = getAt(doc, p);
      if (cur === undefined) throw new PatchError(`${op} operation does not apply: doc is missing path: "/${p.join("/")}"`);
      if (Array.isArray(parent)) parent.splice(Number(key), 1);
      else delete (parent as JsonObject)[key];
      return cur;
    };
    switch (op) {
      case "add":
        add(path, structuredClone(raw.value as Json));
        break;
      case "remove":
        remove(path);
        break;
      case "replace":
        remove(path);
        add(path, structuredClone(raw.value as Json));
        break;
      case "move": {
        const v = remove(parsePointer(String(raw.from ?? "")));
        add(path, v);
        break;
      }
      case "copy": {
        const v = getAt(doc, parsePointer(String(raw.from ?? "")));
        if (v === undefined) throw new PatchError(`copy: missing from path`);
        add(path, structuredClone(v));
        break;
      }
      case "test": {
        const v = getAt(doc, path);
        if (JSON.stringify(v) !== JSON.stringify(raw.value)) throw new PatchError(`testing value /${path.join("/")} failed`);
        break;
      }
      default:
        throw new PatchError(`unexpected kind: ${op}`);
    }
  }
  return doc;
}

// ------------------------------------------------------------------ strategic merge patch

/** Merge keys of lists, by kind, as dotted paths from the object root ("[]" = list element). */
const MERGE_KEYS: Record<string, Record<string, string>> = {
  "*": {
    "metadata.ownerReferences": "uid",
    "metadata.finalizers": "", // primitive list with merge strategy
    "status.conditions": "type",
  },
  Service: {
    "spec.ports": "port",
  },
  Pod: {
    "spec.containers": "name",
    "spec.initContainers": "name",
    "spec.containers[].ports": "containerPort",
    "spec.containers[].env": "name",
    "spec.containers[].volumeMounts": "mountPath",
    "spec.initContainers[].ports": "containerPort",
    "spec.volumes": "name",
    "status.podIPs": "ip",
  },
  Node: {
    "status.addresses": "type",
  },
};

/** Merge key for the list at `path`; undefined: replace the list (atomic). "" = merge primitives. */
function mergeKeyFor(kind: string, path: string): string | undefined {
  return MERGE_KEYS[kind]?.[path] ?? MERGE_KEYS["*"]![path];
}

const PRIMITIVE_MERGE: ReadonlySet<string> = new Set(["metadata.finalizers"]);

function join(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

function sameKey(a: Json, b: Json): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function smpList(kind: string, path: string, orig: Json[] | undefined, patch: Json[], order: Json[] | undefined): Json[] {
  const key = mergeKeyFor(kind, path);
  if (key === undefined) {
    // atomic list: replace, but still strip directives from elements
    return patch.filter((e) => !(isObject(e) && e.$patch === "delete")).map((e) => stripDirectives(e));
  }
  const base = (orig ?? []).map((x) => structuredClone(x));
  if (key === "" || PRIMITIVE_MERGE.has(path)) {
    const out = [...base];
    for (const e of patch) if (!out.some((x) => sameKey(x, e))) out.push(e);
    return applyOrder(out, order, undefined);
  }
  // replace directive on the list itself: [{$patch: replace}, ...items]
  if (patch.some((e) => isObject(e) && e.$patch === "replace")) {
    return patch.filter((e) => !(isObject(e) && e.$patch === "replace")).map((e) => stripDirectives(e));
  }
  let out = base;
  for (const e of patch) {
    if (!isObject(e)) throw new PatchError(`${path}: expected objects in a list merged by ${key}`);
    const kv = e[key];
    const idx = out.findIndex((x) => isObject(x) && sameKey(x[key] ?? null, kv ?? null));
    if (e.$patch === "delete") {
      if (idx >= 0) out.splice(idx, 1);
      continue;
    }
    if (idx >= 0) out[idx] = smpObject(kind, `${path}[]`, out[idx] as JsonObject, e);
    else out.push(smpObject(kind, `${path}[]`, {}, e));
  }
  out = applyOrder(out, order, key);
  return out;
}

function applyOrder(list: Json[], order: Json[] | undefined, key: string | undefined): Json[] {
  if (!order) return list;
  const val = (x: Json): string => JSON.stringify(key && isObject(x) ? (x[key] ?? null) : x);
  const pos = new Map<string, number>();
  order.forEach((o, i) => pos.set(JSON.stringify(key && isObject(o) ? (o[key] ?? null) : o), i));
  const inOrder = list.filter((x) => pos.has(val(x))).sort((a, b) => pos.get(val(a))! - pos.get(val(b))!);
  const rest = list.filter((x) => !pos.has(val(x)));
  return [...inOrder, ...rest];
}

function stripDirectives(v: Json): Json {
  if (Array.isArray(v)) return v.map(stripDirectives);
  if (!isObject(v)) return v;
  const out: JsonObject = {};
  for (const [k, x] of Object.entries(v)) {
    if (k.startsWith("$")) continue;
    if (x === null) continue;
    out[k] = stripDirectives(x);
  }
  return out;
}

function smpObject(kind: string, path: string, orig: JsonObject | undefined, patch: JsonObject): JsonObject {
  if (patch.$patch === "replace") {
    const p = { ...patch };
    delete p.$patch;
    return stripDirectives(p) as JsonObject;
  }
  if (patch.$patch === "delete") return {};
  let out: JsonObject = isObject(orig) ? structuredClone(orig) : {};
  const retain = patch.$retainKeys;
  for (const [k, v] of Object.entries(patch)) {
    if (k === "$patch" || k === "$retainKeys") continue;
    if (k.startsWith("$setElementOrder/")) continue;
    if (k.startsWith("$deleteFromPrimitiveList/")) {
      const f = k.slice("$deleteFromPrimitiveList/".length);
      const cur = out[f];
      if (Array.isArray(cur) && Array.isArray(v)) out[f] = cur.filter((x) => !v.some((d) => sameKey(d, x)));
      continue;
    }
    const p = join(path, k);
    if (v === null) {
      delete out[k];
    } else if (Array.isArray(v)) {
      const order = patch[`$setElementOrder/${k}`];
      const cur = out[k];
      out[k] = smpList(kind, p, Array.isArray(cur) ? cur : undefined, v, Array.isArray(order) ? order : undefined);
    } else if (isObject(v)) {
      const cur = out[k];
      out[k] = smpObject(kind, p, isObject(cur) ? cur : undefined, v);
    } else {
      out[k] = v;
    }
  }
  // $setElementOrder for lists the patch did not otherwise touch
  for (const [k, v] of Object.entries(patch)) {
    if (!k.startsWith("$setElementOrder/")) continue;
    const f = k.slice("$setElementOrder/".length);
    if (patch[f] === undefined && Array.isArray(out[f]) && Array.isArray(v)) {
      const key = mergeKeyFor(kind, join(path, f));
      out[f] = applyOrder(out[f] as Json[], v, key || undefined);
    }
  }
  if (Array.isArray(retain)) {
    const keep = new Set(retain.map(String));
    const next: JsonObject = {};
    for (const [k, v] of Object.entries(out)) if (keep.has(k)) next[k] = v;
    out = next;
  }
  return out;
}

/** Applies a strategic merge patch to an object of `kind`. */
export function strategicMergePatch(kind: string, target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) throw new PatchError("a strategic merge patch must be a JSON object");
  return smpObject(kind, "", isObject(target) ? target : {}, patch);
}

export type PatchType = "merge" | "strategic" | "json" | "apply";

export const PATCH_CONTENT_TYPES: Record<string, PatchType> = {
  "application/merge-patch+json": "merge",
  "application/strategic-merge-patch+json": "strategic",
  "application/json-patch+json": "json",
  "application/apply-patch+yaml": "apply",
};

/** Applies a patch of the given type (apply = strategic merge of the applied configuration). */
export function applyPatch(kind: string, type: PatchType, target: unknown, patch: unknown): unknown {
  switch (type) {
    case "merge":
      if (!isObject(patch)) throw new PatchError("a merge patch must be a JSON object");
      return mergePatch(target, patch);
    case "json":
      return jsonPatch(target, patch);
    case "strategic":
    case "apply":
      return strategicMergePatch(kind, target, patch);
  }
}
