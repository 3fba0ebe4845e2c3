// The read side every consumer (node agent, DNS, tests) uses: list + watch per kind, optionally
// per namespace and filtered by label/field selectors, with Kubernetes semantics:
//   - list returns the items and the resourceVersion they were read at;
//   - watch from that resourceVersion delivers every later change in resourceVersion order as
//     ADDED / MODIFIED / DELETED (an object moving out of a selector arrives as DELETED, into
//     it as ADDED); BOOKMARK events may carry a newer resourceVersion with no change;
//   - a resourceVersion older than the server keeps gives a 410 Gone ERROR, after which the
//     consumer lists again (Reflector does this).
// `ObjectSource` is deliberately transport-neutral: the in-process registry implements it, and an
// HTTP client of tapvip's API (or of a real Kubernetes API server) can implement it the same way.

import type { StoredObject } from "./db.js";
import type { Status } from "./types.js";

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";

export interface WatchEvent<T = StoredObject> {
  type: WatchEventType;
  /** The object; for ERROR a Status; for BOOKMARK an object with only metadata.resourceVersion. */
  object: T;
}

export interface ListOptions {
  namespace?: string;
  /** Kubernetes label selector text, e.g. `app=web,tier!=db,env in (a,b),!legacy`. */
  labelSelector?: string;
  /** Field selector on metadata.name / metadata.namespace, e.g. `metadata.name=web`. */
  fieldSelector?: string;
}

export interface WatchOptions extends ListOptions {
  /**
   * Deliver changes after this resourceVersion. "" or "0": first an ADDED event for every current
   * object, then changes (Kubernetes "any" semantics).
   */
  resourceVersion?: string;
  /** Send a BOOKMARK with the current resourceVersion every this many ms (0/absent: never). */
  bookmarkIntervalMs?: number;
}

export interface ObjectList<T = StoredObject> {
  items: T[];
  resourceVersion: string;
}

export interface Watch {
  /** Stops delivery; no events are delivered after it returns. */
  stop(): void;
}

export interface WatchHandlers<T = StoredObject> {
  onEvent(ev: WatchEvent<T>): void;
  /**
   * The watch ended by itself (server gone, 410 Gone as `status.code === 410`, …). Not called
   * after stop().
   */
  onClose?(err?: Status): void;
}

/** The source of objects: implemented by the in-process registry and by remote clients. */
export interface ObjectSource {
  list(kind: string, opts?: ListOptions): Promise<ObjectList>;
  watch(kind: string, opts: WatchOptions, handlers: WatchHandlers): Watch;
}

// ------------------------------------------------------------------ selectors

export type Requirement =
  | { key: string; op: "=" | "!="; value: string }
  | { key: string; op: "in" | "notin"; values: string[] }
  | { key: string; op: "exists" | "!exists" };

export class SelectorError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SelectorError";
  }
}

/** Splits on commas that are not inside parentheses. */
function splitTop(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = "";
  for (const ch of s) {
    if (ch === "(") depth++;
    if (ch === ")") depth--;
    if (ch === "," && depth === 0) {
      out.push(cur);
      cur = "";
    } else cur += ch;
  }
  out.push(cur);
  return out.map((x) => x.trim()).filter((x) => x !== "");
}

const KEY_RE = /^([A-Za-z0-9][-A-Za-z0-9_./]*)?[A-Za-z0-9]$/;

function checkKey(k: string, text: string): string {
  if (!KEY_RE.test(k)) throw new SelectorError(`unable to parse requirement: invalid label key "${k}" in "${text}"`);
  return k;
}

export function parseLabelSelector(text: string | undefined): Requirement[] {
  if (!text || text.trim() === "") return [];
  const reqs: Requirement[] = [];
  for (const part of splitTop(text)) {
    let m: RegExpExecArray | null;
    if ((m = /^!\s*(\S+)$/.exec(part))) {
      reqs.push({ key: checkKey(m[1]!, text), op: "!exists" });
    } else if ((m = /^(\S+)\s+(in|notin)\s*\(([^)]*)\)$/.exec(part))) {
      const values = m[3]!.split(",").map((v) => v.trim()).filter((v) => v !== "");
      reqs.push({ key: checkKey(m[1]!, text), op: m[2] as "in" | "notin", values });
    } else if ((m = /^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(part))) {
      reqs.push({ key: checkKey(m[1]!, text), op: m[2] === "!=" ? "!=" : "=", value: m[3]! });
    } else if ((m = /^([^=!\s()]+)$/.exec(part))) {
      reqs.push({ key: checkKey(m[1]!, text), op: "exists" });
    } else {
      throw new SelectorError(`unable to parse requirement: "${part}"`);
    }
  }
  return reqs;
}

export function matchesLabels(reqs: readonly Requirement[], labels: Record<string, string> | undefined): boolean {
  const l = labels ?? {};
  for (const r of reqs) {
    const has = Object.prototype.hasOwnProperty.call(l, r.key);
    const v = l[r.key];
    switch (r.op) {
      case "=":
        if (!has || v !== r.value) return false;
        break;
      case "!=":
        if (has && v === r.value) return false;
        break;
      case "in":
        if (!has || !r.values.includes(v!)) return false;
        break;
      case "notin":
        if (has && r.values.includes(v!)) return false;
        break;
      case "exists":
        if (!has) return false;
        break;
      case "!exists":
        if (has) return false;
        break;
    }
  }
  return true;
}

export interface FieldRequirement {
  field: string;
  op: "=" | "!=";
  value: string;
}

/** Fields a selector may name, with how to read them. */
const FIELD_GETTERS: Record<string, (o: StoredObject) => string> = {
  "metadata.name": (o) => o.metadata.name ?? "",
  "metadata.namespace": (o) => o.metadata.namespace ?? "",
};

export function parseFieldSelector(text: string | undefined): FieldRequirement[] {
  if (!text || text.trim() === "") return [];
  const out: FieldRequirement[] = [];
  for (const part of splitTop(text)) {
    const m = /^([^=!\s]+)\s*(==|=|!=)\s*(.*)$/.exec(part);
    if (!m) throw new SelectorError(`invalid selector: '${text}'; can't understand '${part}'`);
    const field = m[1]!;
    if (!FIELD_GETTERS[field]) throw new SelectorError(`field label not supported: ${field}`);
    out.push({ field, op: m[2] === "!=" ? "!=" : "=", value: m[3]!.trim() });
  }
  return out;
}

export function matchesFields(reqs: readonly FieldRequirement[], obj: StoredObject): boolean {
  for (const r of reqs) {
    const v = FIELD_GETTERS[r.field]!(obj);
    if (r.op === "=" ? v !== r.value : v === r.value) return false;
  }
  return true;
}

/** A compiled ListOptions filter. */
export interface Filter {
  namespace?: string;
  labels: Requirement[];
  fields: FieldRequirement[];
}

export function compileFilter(opts: ListOptions = {}): Filter {
  return {
    namespace: opts.namespace || undefined,
    labels: parseLabelSelector(opts.labelSelector),
    fields: parseFieldSelector(opts.fieldSelector),
  };
}

export function matchesFilter(f: Filter, obj: StoredObject | undefined): boolean {
  if (!obj) return false;
  if (f.namespace !== undefined && (obj.metadata.namespace ?? "") !== f.namespace) return false;
  if (!matchesLabels(f.labels, obj.metadata.labels as Record<string, string> | undefined)) return false;
  return matchesFields(f.fields, obj);
}

// ------------------------------------------------------------------ reflector

export interface ReflectorHandlers<T = StoredObject> {
  /** The full set after a (re)list: callers replace their state with it. */
  onSync?(items: T[], resourceVersion: string): void;
  onAdd?(obj: T): void;
  onUpdate?(obj: T, old: T | undefined): void;
  onDelete?(obj: T): void;
  onError?(err: unknown): void;
}

const keyOf = (o: StoredObject): string => `${o.metadata.namespace ?? ""}/${o.metadata.name ?? ""}`;

/**
 * List + watch with a local cache, relisting on 410 Gone or when the watch closes — the
 * informer pattern, written against ObjectSource so it works in-process and remotely.
 */
export class Reflector<T extends StoredObject = StoredObject> {
  readonly cache = new Map<string, T>();
  private w: Watch | undefined;
  private stopped = false;
  private lastRV = "";
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly source: ObjectSource,
    private readonly kind: string,
    private readonly opts: ListOptions,
    private readonly handlers: ReflectorHandlers<T>,
  ) {}

  /** Lists, delivers onSync, then watches; resolves after the first list. */
  async start(): Promise<void> {
    await this.relist();
  }

  get resourceVersion(): string {
    return this.lastRV;
  }

  private async relist(): Promise<void> {
    if (this.stopped) return;
    const res = await this.source.list(this.kind, this.opts);
    if (this.stopped) return;
    this.cache.clear();
    for (const it of res.items as T[]) this.cache.set(keyOf(it), it);
    this.lastRV = res.resourceVersion;
    this.handlers.onSync?.(res.items as T[], res.resourceVersion);
    this.startWatch();
  }

  private scheduleRelist(): void {
    if (this.stopped) return;
    this.retryTimer = setTimeout(() => {
      this.relist().catch((e) => {
        this.handlers.onError?.(e);
        this.scheduleRelist();
      });
    }, 100);
    this.retryTimer.unref?.();
  }

  private startWatch(): void {
    this.w = this.source.watch(
      this.kind,
      { ...this.opts, resourceVersion: this.lastRV },
      {
        onEvent: (ev) => {
          const obj = ev.object as T;
          if (ev.type === "ERROR") {
            this.w?.stop();
            this.scheduleRelist();
            return;
          }
          if (obj.metadata?.resourceVersion) this.lastRV = obj.metadata.resourceVersion;
          if (ev.type === "BOOKMARK") return;
          const k = keyOf(obj);
          if (ev.type === "DELETED") {
            this.cache.delete(k);
            this.handlers.onDelete?.(obj);
          } else if (ev.type === "ADDED") {
            this.cache.set(k, obj);
            this.handlers.onAdd?.(obj);
          } else {
            const old = this.cache.get(k);
            this.cache.set(k, obj);
            this.handlers.onUpdate?.(obj, old);
          }
        },
        onClose: (err) => {
          if (err) this.handlers.onError?.(err);
          if (err?.code === 410) this.scheduleRelist();
          else if (!this.stopped) {
            // resume from the last seen resourceVersion
            this.retryTimer = setTimeout(() => this.startWatch(), 100);
            this.retryTimer.unref?.();
          }
        },
      },
    );
  }

  stop(): void {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.w?.stop();
  }
}
