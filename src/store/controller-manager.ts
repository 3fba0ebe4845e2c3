// The controller manager: runs the §4 endpoint controllers (and a little allocation bookkeeping)
// against any ObjectSource + writer — the in-process Registry inside `tapvip serve` / `tapvip run`,
// or the HTTP ApiClient against a remote API.
//
// - Informers (Reflector: list + watch, relist on 410) over Services, Pods, the EndpointSlices
//   this controller manages (label endpointslice.kubernetes.io/managed-by) and Endpoints.
// - Work is keyed by Service ("ns/name") and coalesced: every change marks the Services it
//   touches dirty (a pod → every Service in its namespace whose selector matches its old or new
//   labels), and a flush after `batchMs` reconciles each dirty Service once — a burst of pod
//   changes is one reconcile.
// - A reconcile computes the writes with the pure controller functions (desiredEndpointSlices,
//   desiredEndpoints) and performs them through the writer. Each write records the
//   resourceVersion it produced; the Service is not reconciled again until the informers have
//   seen it ("expectations", as upstream's endpointSliceTracker), so a stale cache never
//   creates a second set of slices. A 409 Conflict (or AlreadyExists) is retried with a fresh
//   read of the object; other failures back off and are recorded as Warning events.
// - A deleted Service's managed EndpointSlices and Endpoints are deleted (upstream: garbage
//   collection via ownerReferences, and the Endpoints controller's delete).
// - Events: core/v1 Event objects written through the writer (so `tapvip describe` and
//   `kubectl get events` see them): LoadBalancer IP allocation failures (pool missing or full,
//   requested IP taken or outside the pool; retried when a pool IP is released, with an
//   IPAllocated event when it succeeds), the start-up repair's duplicate / out-of-range
//   allocations, and endpoint write failures. Repeats of the same event bump count and
//   lastTimestamp; events expire after `eventTTLms` (default 1 h, as upstream).
//
// Pod graceful deletion (deletionTimestamp now + grace, removal when it ends) is the registry's:
// see Registry.delete and its grace timers. This controller only reflects it: a terminating pod's
// endpoints turn terminating (serving as before, ready false) and go when the pod is removed.

import { Reflector, type ObjectSource } from "./watch.js";
import type { StoredObject } from "./db.js";
import type { Endpoints, EndpointSlice, Pod, Service } from "./types.js";
import { controllerManagesService } from "./controllers/common.js";
import { selectorMatches } from "./controllers/selector.js";
import {
  desiredEndpointSlices,
  DEFAULT_MAX_ENDPOINTS_PER_SLICE,
  ENDPOINTSLICE_CONTROLLER_NAME,
  LABEL_MANAGED_BY,
  LABEL_SERVICE_NAME,
} from "./controllers/endpointslices.js";
import { desiredEndpoints, ENDPOINTS_CONTROLLER_NAME, LABEL_ENDPOINTS_MANAGED_BY } from "./controllers/endpoints.js";
import { cidrContains, parseCIDR, parseIP } from "./net.js";
import type { RepairReport } from "./registry.js";

/** The writes the controllers need; the Registry (sync) and the ApiClient (async) both fit. */
export interface ObjectWriter {
  get(kind: string, namespace: string | undefined, name: string): unknown;
  create(kind: string, obj: StoredObject, opts: { namespace?: string }): unknown;
  update(kind: string, obj: StoredObject, opts: { namespace?: string; name?: string }): unknown;
  delete(kind: string, namespace: string | undefined, name: string, opts?: { preconditions?: { uid?: string } }): unknown;
}

export interface ControllerManagerOptions {
  source: ObjectSource;
  writer: ObjectWriter;
  /** Coalescing window for changes, ms (default 10). */
  batchMs?: number;
  /** Endpoints per slice (default 100). */
  maxEndpointsPerSlice?: number;
  /** The LoadBalancer pool the store allocates from (for event messages); none = no pool. */
  lbPool?: string;
  /** The store's start-up repair report: duplicates and out-of-range values become events. */
  repairReport?: RepairReport;
  /** Attempts per reconcile before giving up until the next change (default 6). */
  maxRetries?: number;
  /** Events older than this are deleted (default 1 h); 0 = never. */
  eventTTLms?: number;
  clock?: () => Date;
  log?: (line: string) => void;
}

export interface ControllerStats {
  /** Reconciles run (one per dirty Service per flush). */
  reconciles: number;
  /** Reconciles that wrote something. */
  reconcilesWithWrites: number;
  creates: number;
  updates: number;
  deletes: number;
  conflicts: number;
  errors: number;
  events: number;
}

const EVENT_COMPONENT = "tapvip-controller-manager";
const LB_COMPONENT = "tapvip-lb-ip-allocator";

const keyOf = (o: { metadata?: { namespace?: string; name?: string } }): string => `${o.metadata?.namespace ?? ""}/${o.metadata?.name ?? ""}`;
const rvNum = (o: StoredObject | undefined | null): number => Number(o?.metadata?.resourceVersion ?? NaN);

function errCode(e: unknown): number | undefined {
  const c = (e as { code?: unknown })?.code;
  return typeof c === "number" ? c : undefined;
}
function errReason(e: unknown): string | undefined {
  return (e as { status?: { reason?: string } })?.status?.reason;
}
function errMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function kubeTime(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, "Z");
}

class ConflictRetry extends Error {}

export class ControllerManager {
  readonly stats: ControllerStats = { reconciles: 0, reconcilesWithWrites: 0, creates: 0, updates: 0, deletes: 0, conflicts: 0, errors: 0, events: 0 };
  private readonly o: ControllerManagerOptions;
  private readonly services: Reflector;
  private readonly pods: Reflector;
  private readonly slices: Reflector;
  private readonly endpoints: Reflector;
  /** Pods by namespace, Services by namespace, managed slices by Service key. */
  private readonly podsByNs = new Map<string, Map<string, Pod>>();
  private readonly svcByNs = new Map<string, Set<string>>();
  private readonly slicesBySvc = new Map<string, Map<string, EndpointSlice>>();
  /** Objects read fresh after a conflict, newer than the informer's copy (kind/ns/name → object or null = gone). */
  private readonly fresh = new Map<string, StoredObject | null>();
  /** Per Service: the resourceVersions its last writes produced, per kind, and when. */
  private readonly expect = new Map<string, { slices: number; endpoints: number; at: number }>();
  private readonly dirty = new Set<string>();
  private readonly attempts = new Map<string, number>();
  private readonly retryTimers = new Map<string, NodeJS.Timeout>();
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private started = false;
  /** Every informer has its first list: reconciling before that could delete live objects. */
  private ready = false;
  private stopped = false;
  private idleWaiters: (() => void)[] = [];
  /** LoadBalancer Services without an ingress IP (key → message last recorded). */
  private readonly lbPending = new Map<string, string>();
  private readonly lbRetry = new Set<string>();
  private readonly recorder: EventRecorder;
  private sweepTimer: NodeJS.Timeout | undefined;

  constructor(opts: ControllerManagerOptions) {
    this.o = opts;
    this.recorder = new EventRecorder(opts.writer, () => this.now(), opts.log, () => this.stats.events++, () => this.wakeIdle());
    const src = opts.source;
    this.services = new Reflector(src, "Service", {}, {
      onSync: (items) => this.syncServices(items as unknown as Service[]),
      onAdd: (o) => this.serviceChanged(o as unknown as Service, undefined),
      onUpdate: (o, old) => this.serviceChanged(o as unknown as Service, old as unknown as Service | undefined),
      onDelete: (o) => this.serviceDeleted(o as unknown as Service),
      onError: (e) => this.log(`services informer: ${errMessage(e)}`),
    });
    this.pods = new Reflector(src, "Pod", {}, {
      onSync: (items) => this.syncPods(items as unknown as Pod[]),
      onAdd: (o) => this.podChanged(o as unknown as Pod, undefined),
      onUpdate: (o, old) => this.podChanged(o as unknown as Pod, old as unknown as Pod | undefined),
      onDelete: (o) => this.podDeleted(o as unknown as Pod),
      onError: (e) => this.log(`pods informer: ${errMessage(e)}`),
    });
    this.slices = new Reflector(src, "EndpointSlice", { labelSelector: `${LABEL_MANAGED_BY}=${ENDPOINTSLICE_CONTROLLER_NAME}` }, {
      onSync: (items) => this.syncSlices(items as unknown as EndpointSlice[]),
      onAdd: (o) => this.sliceChanged(o as unknown as EndpointSlice, false),
      onUpdate: (o) => this.sliceChanged(o as unknown as EndpointSlice, false),
      onDelete: (o) => this.sliceChanged(o as unknown as EndpointSlice, true),
      onError: (e) => this.log(`endpointslices informer: ${errMessage(e)}`),
    });
    this.endpoints = new Reflector(src, "Endpoints", {}, {
      onSync: (items) => {
        for (const ep of items) if (this.isManagedEndpoints(ep as unknown as Endpoints) || this.services.cache.has(keyOf(ep))) this.enqueue(keyOf(ep));
      },
      onAdd: (o) => this.enqueue(keyOf(o)),
      onUpdate: (o) => this.enqueue(keyOf(o)),
      onDelete: (o) => this.enqueue(keyOf(o)),
      onError: (e) => this.log(`endpoints informer: ${errMessage(e)}`),
    });
  }

  private now(): Date {
    return this.o.clock ? this.o.clock() : new Date();
  }

  private log(line: string): void {
    this.o.log?.(`controller-manager: ${line}`);
  }

  /** Starts the informers; resolves once every first list is in and the first reconciles are queued. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.recorder.load(this.o.source).catch((e) => this.log(`events: ${errMessage(e)}`));
    await Promise.all([this.slices.start(), this.endpoints.start(), this.pods.start()]);
    await this.services.start();
    this.ready = true;
    this.schedule();
    this.repairEvents();
    const ttl = this.o.eventTTLms ?? 3_600_000;
    if (ttl > 0) {
      this.sweepTimer = setInterval(() => void this.recorder.expire(ttl).catch(() => undefined), Math.min(ttl, 60_000));
      this.sweepTimer.unref?.();
    }
  }

  stop(): void {
    this.stopped = true;
    for (const r of [this.services, this.pods, this.slices, this.endpoints]) r.stop();
    if (this.timer) clearTimeout(this.timer);
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    for (const t of this.retryTimers.values()) clearTimeout(t);
    this.retryTimers.clear();
    this.timer = undefined;
    this.wakeIdle();
  }

  /** Resolves when nothing is queued, running or waiting for a retry (tests). */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private isIdle(): boolean {
    return this.stopped || (this.ready && !this.running && !this.timer && this.dirty.size === 0 && this.retryTimers.size === 0 && this.recorder.pending === 0);
  }

  private wakeIdle(): void {
    if (!this.isIdle()) return;
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const f of w) f();
  }

  // ---------------------------------------------------------------- informer handlers

  private syncServices(items: Service[]): void {
    this.svcByNs.clear();
    for (const s of items) this.indexService(s, true);
    for (const s of items) this.enqueue(keyOf(s));
    // orphans: managed slices / Endpoints of Services that no longer exist
    for (const k of this.slicesBySvc.keys()) this.enqueue(k);
    for (const ep of this.endpoints.cache.values()) if (this.isManagedEndpoints(ep as unknown as Endpoints)) this.enqueue(keyOf(ep));
  }

  private indexService(s: Service, add: boolean): void {
    const ns = s.metadata?.namespace ?? "";
    let set = this.svcByNs.get(ns);
    if (add) {
      if (!set) this.svcByNs.set(ns, (set = new Set()));
      set.add(keyOf(s));
    } else set?.delete(keyOf(s));
  }

  private serviceChanged(s: Service, old: Service | undefined): void {
    this.indexService(s, true);
    this.enqueue(keyOf(s));
    if (old && this.heldLBIPs(old).length > this.heldLBIPs(s).length) this.retryPendingLB();
  }

  private serviceDeleted(s: Service): void {
    this.indexService(s, false);
    this.enqueue(keyOf(s));
    if (this.heldLBIPs(s).length > 0) this.retryPendingLB();
  }

  private syncPods(items: Pod[]): void {
    this.podsByNs.clear();
    for (const p of items) this.indexPod(p, true);
    // every service may have changed: the sync of services (or the first start) enqueues them
    if (this.services.cache.size > 0) for (const k of this.services.cache.keys()) this.enqueue(k);
  }

  private indexPod(p: Pod, add: boolean): void {
    const ns = p.metadata?.namespace ?? "";
    let m = this.podsByNs.get(ns);
    if (add) {
      if (!m) this.podsByNs.set(ns, (m = new Map()));
      m.set(p.metadata?.name ?? "", p);
    } else {
      m?.delete(p.metadata?.name ?? "");
      if (m && m.size === 0) this.podsByNs.delete(ns);
    }
  }

  /** Services in the pod's namespace whose selector matches any of the given label sets. */
  private enqueueServicesFor(ns: string, labelSets: (Record<string, string> | undefined)[]): void {
    for (const key of this.svcByNs.get(ns) ?? []) {
      const svc = this.services.cache.get(key) as unknown as Service | undefined;
      const sel = svc?.spec?.selector;
      if (!svc || !sel || Object.keys(sel).length === 0) continue;
      if (labelSets.some((l) => selectorMatches(sel, l))) this.enqueue(key);
    }
  }

  private podChanged(p: Pod, old: Pod | undefined): void {
    this.indexPod(p, true);
    this.enqueueServicesFor(p.metadata?.namespace ?? "", [p.metadata?.labels, old?.metadata?.labels]);
  }

  private podDeleted(p: Pod): void {
    this.indexPod(p, false);
    this.enqueueServicesFor(p.metadata?.namespace ?? "", [p.metadata?.labels]);
  }

  private syncSlices(items: EndpointSlice[]): void {
    this.slicesBySvc.clear();
    for (const s of items) this.indexSlice(s, false);
    for (const k of this.slicesBySvc.keys()) this.enqueue(k);
  }

  private sliceSvcKey(s: EndpointSlice): string | undefined {
    const svc = s.metadata?.labels?.[LABEL_SERVICE_NAME];
    return svc ? `${s.metadata?.namespace ?? ""}/${svc}` : undefined;
  }

  private indexSlice(s: EndpointSlice, removed: boolean): void {
    const k = this.sliceSvcKey(s);
    if (!k) return;
    let m = this.slicesBySvc.get(k);
    if (removed) {
      m?.delete(s.metadata?.name ?? "");
      if (m && m.size === 0) this.slicesBySvc.delete(k);
      return;
    }
    if (!m) this.slicesBySvc.set(k, (m = new Map()));
    m.set(s.metadata?.name ?? "", s);
  }

  private sliceChanged(s: EndpointSlice, removed: boolean): void {
    // a slice relabelled to another service arrives as MODIFIED: drop it from every other index
    for (const [k, m] of this.slicesBySvc) {
      if (k !== this.sliceSvcKey(s) && m.has(s.metadata?.name ?? "") && k.startsWith(`${s.metadata?.namespace ?? ""}/`)) {
        m.delete(s.metadata?.name ?? "");
        this.enqueue(k);
      }
    }
    this.indexSlice(s, removed);
    const k = this.sliceSvcKey(s);
    if (k) this.enqueue(k);
  }

  private isManagedEndpoints(ep: Endpoints): boolean {
    return ep.metadata?.labels?.[LABEL_ENDPOINTS_MANAGED_BY] === ENDPOINTS_CONTROLLER_NAME;
  }

  // ---------------------------------------------------------------- the queue

  private enqueue(key: string): void {
    if (this.stopped) return;
    this.dirty.add(key);
    this.schedule();
  }

  private schedule(delay = this.o.batchMs ?? 10): void {
    if (this.timer || this.running || this.stopped || !this.ready || this.dirty.size === 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, delay);
    this.timer.unref?.();
  }

  private expectationsMet(key: string): boolean {
    const e = this.expect.get(key);
    if (!e) return true;
    const sRV = Number(this.slices.resourceVersion);
    const eRV = Number(this.endpoints.resourceVersion);
    const ok = (!(e.slices > 0) || !(sRV < e.slices)) && (!(e.endpoints > 0) || !(eRV < e.endpoints));
    if (ok || Date.now() - e.at > 5000) {
      this.expect.delete(key);
      return true;
    }
    return false;
  }

  private async flush(): Promise<void> {
    if (this.running || this.stopped) return;
    this.running = true;
    try {
      while (this.dirty.size > 0 && !this.stopped) {
        const keys = [...this.dirty];
        this.dirty.clear();
        let waiting = false;
        for (const key of keys) {
          if (this.stopped) break;
          if (!this.expectationsMet(key)) {
            // our last writes are not in the informers yet: their events re-enqueue the key
            waiting = true;
            this.retryLater(key, 100, false);
            continue;
          }
          await this.reconcileKey(key);
        }
        if (waiting && this.dirty.size === 0) break;
      }
    } finally {
      this.running = false;
      if (this.dirty.size > 0 && !this.stopped) this.schedule();
      this.wakeIdle();
    }
  }

  private retryLater(key: string, ms: number, count = true): void {
    if (this.stopped || this.retryTimers.has(key)) return;
    if (count) this.attempts.set(key, (this.attempts.get(key) ?? 0) + 1);
    const t = setTimeout(() => {
      this.retryTimers.delete(key);
      this.enqueue(key);
      this.wakeIdle();
    }, ms);
    t.unref?.();
    this.retryTimers.set(key, t);
  }

  private async reconcileKey(key: string): Promise<void> {
    const max = this.o.maxRetries ?? 6;
    try {
      await this.reconcile(key);
      this.attempts.delete(key);
    } catch (e) {
      const n = (this.attempts.get(key) ?? 0) + 1;
      if (e instanceof ConflictRetry) {
        this.stats.conflicts++;
        if (n < max) {
          this.attempts.set(key, n);
          this.dirty.add(key); // retried in this flush, with the fresh copy
          return;
        }
      }
      this.stats.errors++;
      this.log(`sync ${key}: ${errMessage(e)}`);
      if (n < max) this.retryLater(key, Math.min(5000, 50 * 2 ** n));
      else {
        this.attempts.delete(key);
        const svc = this.services.cache.get(key);
        if (svc) this.recorder.record(svc, "Warning", "FailedToUpdateEndpointSlices", `Error updating Endpoint Slices for Service ${key}: ${errMessage(e)}`, EVENT_COMPONENT);
      }
    }
  }

  // ---------------------------------------------------------------- reconcile

  private freshKey(kind: string, ns: string, name: string): string {
    return `${kind}/${ns}/${name}`;
  }

  /** The newer of the informer's copy and a copy read after a conflict (null = known gone). */
  private current<T extends StoredObject>(kind: string, ns: string, name: string, cached: T | undefined): T | undefined {
    const fk = this.freshKey(kind, ns, name);
    if (!this.fresh.has(fk)) return cached;
    const f = this.fresh.get(fk);
    if (f === null) {
      if (!cached) this.fresh.delete(fk);
      return undefined;
    }
    if (cached && !(rvNum(cached) < rvNum(f))) {
      this.fresh.delete(fk);
      return cached;
    }
    return f as T;
  }

  /** After a 409: read the object again; the retry uses it. */
  private async refresh(kind: string, ns: string, name: string): Promise<never> {
    const fk = this.freshKey(kind, ns, name);
    try {
      const o = (await this.o.writer.get(kind, ns, name)) as StoredObject;
      this.fresh.set(fk, o);
    } catch (e) {
      if (errCode(e) === 404) this.fresh.set(fk, null);
      else throw e;
    }
    throw new ConflictRetry(`conflict on ${fk}`);
  }

  private expectRV(key: string, kind: "slices" | "endpoints", o: unknown): void {
    const rv = rvNum(o as StoredObject);
    if (!Number.isFinite(rv)) return;
    const e = this.expect.get(key) ?? { slices: 0, endpoints: 0, at: 0 };
    e[kind] = Math.max(e[kind], rv);
    e.at = Date.now();
    this.expect.set(key, e);
  }

  private managedSlices(key: string, ns: string): EndpointSlice[] {
    const out: EndpointSlice[] = [];
    const seen = new Set<string>();
    for (const [name, s] of this.slicesBySvc.get(key) ?? []) {
      seen.add(name);
      const c = this.current("EndpointSlice", ns, name, s as unknown as StoredObject);
      if (c) out.push(c as unknown as EndpointSlice);
    }
    // slices read fresh that the informer has not delivered yet
    const prefix = `EndpointSlice/${ns}/`;
    for (const [fk, f] of this.fresh) {
      if (!f || !fk.startsWith(prefix) || seen.has(fk.slice(prefix.length))) continue;
      const s = f as unknown as EndpointSlice;
      if (this.sliceSvcKey(s) === key && s.metadata?.labels?.[LABEL_MANAGED_BY] === ENDPOINTSLICE_CONTROLLER_NAME) out.push(s);
    }
    return out;
  }

  private async reconcile(key: string): Promise<void> {
    this.stats.reconciles++;
    const i = key.indexOf("/");
    const ns = key.slice(0, i);
    const name = key.slice(i + 1);
    const w = this.o.writer;
    let wrote = false;
    const svc = this.services.cache.get(key) as unknown as Service | undefined;

    if (!svc) {
      // the Service is gone: its managed slices and Endpoints go too
      this.lbPending.delete(key);
      this.lbRetry.delete(key);
      for (const s of this.managedSlices(key, ns)) {
        await this.deleteObject(key, "EndpointSlice", ns, s.metadata?.name ?? "", s.metadata?.uid);
        wrote = true;
      }
      const ep = this.current("Endpoints", ns, name, this.endpoints.cache.get(key));
      if (ep && this.isManagedEndpoints(ep as unknown as Endpoints)) {
        await this.deleteObject(key, "Endpoints", ns, name, ep.metadata.uid);
        wrote = true;
      }
      if (wrote) this.stats.reconcilesWithWrites++;
      return;
    }

    await this.checkLoadBalancer(key, svc);
    if (!controllerManagesService(svc)) return;
    const pods = [...(this.podsByNs.get(ns)?.values() ?? [])];

    const delta = desiredEndpointSlices(svc, pods, this.managedSlices(key, ns), {
      maxEndpointsPerSlice: this.o.maxEndpointsPerSlice ?? DEFAULT_MAX_ENDPOINTS_PER_SLICE,
    });
    for (const s of delta.create) {
      const out = await w.create("EndpointSlice", s as unknown as StoredObject, { namespace: ns });
      this.stats.creates++;
      this.expectRV(key, "slices", out);
      wrote = true;
    }
    for (const s of delta.update) {
      const sname = s.metadata?.name ?? "";
      try {
        const out = await w.update("EndpointSlice", s as unknown as StoredObject, { namespace: ns, name: sname });
        this.stats.updates++;
        this.expectRV(key, "slices", out);
        wrote = true;
      } catch (e) {
        if (errCode(e) === 409 || errCode(e) === 404) await this.refresh("EndpointSlice", ns, sname);
        throw e;
      }
    }
    for (const s of delta.delete) {
      await this.deleteObject(key, "EndpointSlice", ns, s.metadata?.name ?? "", s.metadata?.uid);
      wrote = true;
    }

    const existing = this.current("Endpoints", ns, name, this.endpoints.cache.get(key)) as unknown as Endpoints | undefined;
    const ep = desiredEndpoints(svc, pods, existing ?? null);
    if (ep) {
      try {
        const out = existing
          ? await w.update("Endpoints", ep as unknown as StoredObject, { namespace: ns, name })
          : await w.create("Endpoints", ep as unknown as StoredObject, { namespace: ns });
        if (existing) this.stats.updates++;
        else this.stats.creates++;
        this.expectRV(key, "endpoints", out);
        wrote = true;
      } catch (e) {
        if (errCode(e) === 409 || (errCode(e) === 404 && existing)) await this.refresh("Endpoints", ns, name);
        throw e;
      }
    }
    if (wrote) this.stats.reconcilesWithWrites++;
  }

  private async deleteObject(key: string, kind: "EndpointSlice" | "Endpoints", ns: string, name: string, uid: string | undefined): Promise<void> {
    try {
      const out = await this.o.writer.delete(kind, ns, name, uid ? { preconditions: { uid } } : undefined);
      this.stats.deletes++;
      this.expectRV(key, kind === "EndpointSlice" ? "slices" : "endpoints", out);
    } catch (e) {
      if (errCode(e) === 404) {
        this.fresh.set(this.freshKey(kind, ns, name), null);
        return;
      }
      if (errCode(e) === 409) await this.refresh(kind, ns, name);
      throw e;
    }
  }

  // ---------------------------------------------------------------- LoadBalancer IPs

  private inPool(ip: string | undefined): boolean {
    if (!ip || !this.o.lbPool) return false;
    const c = parseCIDR(this.o.lbPool);
    const p = parseIP(ip);
    return !!c && !!p && cidrContains(c, p);
  }

  private heldLBIPs(s: Service): string[] {
    if (s.spec?.type !== "LoadBalancer" || s.spec?.loadBalancerClass) return [];
    return (s.status?.loadBalancer?.ingress ?? []).map((g) => g.ip ?? "").filter((ip) => this.inPool(ip));
  }

  /** A pool IP was released: pending LoadBalancer Services try again (a rewrite allocates). */
  private retryPendingLB(): void {
    for (const k of this.lbPending.keys()) {
      this.lbRetry.add(k);
      this.enqueue(k);
    }
  }

  private async checkLoadBalancer(key: string, svc: Service): Promise<void> {
    const spec = svc.spec ?? {};
    const wantsIP = spec.type === "LoadBalancer" && !spec.loadBalancerClass;
    const ingress = (svc.status?.loadBalancer?.ingress ?? []).map((g) => g.ip || g.hostname || "").filter((x) => x);
    if (!wantsIP || ingress.length > 0) {
      if (this.lbPending.has(key) && wantsIP) {
        this.recorder.record(svc as unknown as StoredObject, "Normal", "IPAllocated", `Assigned IP ${JSON.stringify(ingress)}`, LB_COMPONENT);
      }
      this.lbPending.delete(key);
      this.lbRetry.delete(key);
      return;
    }
    if (this.lbRetry.delete(key) && this.o.lbPool) {
      try {
        // a no-op rewrite: the store allocates a pool IP on every spec write of a pending service
        await this.o.writer.update("Service", svc as unknown as StoredObject, { namespace: svc.metadata.namespace, name: svc.metadata.name });
      } catch (e) {
        if (errCode(e) !== 409 && errCode(e) !== 404) this.log(`retrying LoadBalancer IP for ${key}: ${errMessage(e)}`);
      }
    }
    let msg: string;
    const pool = this.o.lbPool;
    if (!pool) msg = "no LoadBalancer IP pool is configured (tapvip serve --lb-pool CIDR); the service stays pending";
    else if (spec.loadBalancerIP && !this.inPool(spec.loadBalancerIP)) {
      msg = `spec.loadBalancerIP ${spec.loadBalancerIP} is not in the LoadBalancer pool ${pool}; the service stays pending`;
    } else if (spec.loadBalancerIP) {
      msg = `failed to allocate LoadBalancer IP ${spec.loadBalancerIP}: provided IP is already allocated; the service stays pending`;
    } else msg = `failed to allocate a LoadBalancer IP: no free address in the pool ${pool}; the service stays pending`;
    if (this.lbPending.get(key) !== msg) {
      this.lbPending.set(key, msg);
      this.recorder.record(svc as unknown as StoredObject, "Warning", "AllocationFailed", msg, LB_COMPONENT);
    }
  }

  // ---------------------------------------------------------------- repair events

  private repairEvents(): void {
    const rep = this.o.repairReport;
    if (!rep) return;
    const svcFor = (owner: string): StoredObject | undefined => this.services.cache.get(owner);
    for (const d of rep.duplicates) {
      for (const owner of d.owners.slice(1)) {
        const s = svcFor(owner);
        if (!s) continue;
        if (d.pool === "serviceIP") this.recorder.record(s, "Warning", "ClusterIPAlreadyAllocated", `Cluster IP [${d.value}] was assigned to multiple services; please recreate service`, EVENT_COMPONENT);
        else if (d.pool === "nodePort") this.recorder.record(s, "Warning", "PortAlreadyAllocated", `Port ${d.value} was assigned to multiple services; please recreate service`, EVENT_COMPONENT);
        else this.recorder.record(s, "Warning", "IPAlreadyAllocated", `LoadBalancer IP ${d.value} was assigned to multiple services; please recreate service`, EVENT_COMPONENT);
      }
    }
    for (const r of rep.outOfRange) {
      const s = svcFor(r.owner);
      if (!s) continue;
      if (r.pool === "serviceIP") this.recorder.record(s, "Warning", "ClusterIPOutOfRange", `Cluster IP [${r.value}] is not within the configured Service CIDR; please recreate service`, EVENT_COMPONENT);
      else if (r.pool === "nodePort") this.recorder.record(s, "Warning", "PortOutOfRange", `Port ${r.value} is not within the port range; please recreate service`, EVENT_COMPONENT);
    }
  }

  /** Records an event about `obj` (used by the controllers; exposed for the node agent). */
  recordEvent(obj: StoredObject, type: "Normal" | "Warning", reason: string, message: string, component = EVENT_COMPONENT): void {
    this.recorder.record(obj, type, reason, message, component);
  }

  /** Resolves when every recorded event is written. */
  flushEvents(): Promise<void> {
    return this.recorder.flushed();
  }
}

// ------------------------------------------------------------------ events

interface CoreEvent extends StoredObject {
  involvedObject: { kind?: string; namespace?: string; name?: string; uid?: string; apiVersion?: string; resourceVersion?: string };
  reason?: string;
  message?: string;
  type?: string;
  count?: number;
  firstTimestamp?: string;
  lastTimestamp?: string;
  source?: { component?: string };
}

/**
 * Writes core/v1 Events (serialized, failures logged). The same (object, type, reason, message)
 * again bumps count and lastTimestamp of the existing Event.
 */
class EventRecorder {
  private chain: Promise<void> = Promise.resolve();
  pending = 0;
  private readonly known = new Map<string, { namespace: string; name: string }>();
  private seq = 0;

  constructor(
    private readonly writer: ObjectWriter,
    private readonly now: () => Date,
    private readonly log: ((l: string) => void) | undefined,
    private readonly onWrite: () => void,
    private readonly onSettled: () => void,
  ) {}

  private static dedupKey(inv: CoreEvent["involvedObject"], type: string, reason: string, message: string): string {
    return [inv.kind, inv.namespace ?? "", inv.name, inv.uid ?? "", type, reason, message].join("\u0000");
  }

  /** Learns the events already stored, so restarts bump counts instead of duplicating. */
  async load(source: ObjectSource): Promise<void> {
    const list = await source.list("Event");
    for (const e of list.items as CoreEvent[]) {
      if (!e.involvedObject) continue;
      this.known.set(EventRecorder.dedupKey(e.involvedObject, e.type ?? "", e.reason ?? "", e.message ?? ""), {
        namespace: e.metadata.namespace ?? "",
        name: e.metadata.name ?? "",
      });
    }
  }

  record(obj: StoredObject, type: "Normal" | "Warning", reason: string, message: string, component: string): void {
    const inv = {
      kind: obj.kind,
      namespace: obj.metadata.namespace,
      name: obj.metadata.name,
      uid: obj.metadata.uid,
      apiVersion: obj.apiVersion,
      resourceVersion: obj.metadata.resourceVersion,
    };
    this.pending++;
    this.chain = this.chain
      .then(() => this.write(inv, type, reason, message, component))
      .catch((e) => this.log?.(`controller-manager: recording event ${reason} for ${inv.kind} ${inv.namespace}/${inv.name}: ${errMessage(e)}`))
      .finally(() => {
        this.pending--;
        if (this.pending === 0) this.onSettled();
      });
  }

  flushed(): Promise<void> {
    return this.chain;
  }

  private async write(inv: CoreEvent["involvedObject"], type: string, reason: string, message: string, component: string): Promise<void> {
    const ns = inv.namespace || "default";
    const dk = EventRecorder.dedupKey(inv, type, reason, message);
    const t = kubeTime(this.now());
    const prev = this.known.get(dk);
    if (prev) {
      try {
        const cur = (await this.writer.get("Event", prev.namespace, prev.name)) as CoreEvent;
        cur.count = (cur.count ?? 1) + 1;
        cur.lastTimestamp = t;
        await this.writer.update("Event", cur, { namespace: prev.namespace, name: prev.name });
        this.onWrite();
        return;
      } catch {
        this.known.delete(dk); // gone (expired) or raced: write a new one
      }
    }
    const name = `${inv.name ?? "event"}.${(Date.now() * 1000 + (this.seq++ % 1000)).toString(16)}`;
    const ev: CoreEvent = {
      apiVersion: "v1",
      kind: "Event",
      metadata: { name, namespace: ns },
      involvedObject: inv,
      reason,
      message,
      type,
      count: 1,
      firstTimestamp: t,
      lastTimestamp: t,
      source: { component },
      reportingComponent: component,
      reportingInstance: "tapvip",
    };
    await this.writer.create("Event", ev, { namespace: ns });
    this.known.set(dk, { namespace: ns, name });
    this.onWrite();
  }

  /** Deletes events whose lastTimestamp is older than `ttlMs`. */
  async expire(ttlMs: number): Promise<void> {
    const cutoff = this.now().getTime() - ttlMs;
    for (const [dk, ref] of [...this.known]) {
      try {
        const e = (await this.writer.get("Event", ref.namespace, ref.name)) as CoreEvent;
        if (Date.parse(e.lastTimestamp ?? "") < cutoff) {
          await this.writer.delete("Event", ref.namespace, ref.name);
          this.known.delete(dk);
        }
      } catch (e) {
        if (errCode(e) === 404) this.known.delete(dk);
      }
    }
  }
}
