// The proxier: informers for Services, EndpointSlices and Endpoints feed the change tracker; a
// bounded-frequency runner applies only the changed services to the dataplane's maps. No
// traffic is served before the first full list of every kind has been synced, and a sync that
// fails part-way forces the next one to be full (like kube-proxy); a full sync skips the
// services whose state is the one it last applied (the tracker's generation).
//
// A change that meets an idle runner is applied on the next event-loop turn (no timer); within
// minSyncIntervalMs of the last sync it waits, with whatever else arrives, for the interval.
// After a sync in which backends left, their UDP/SCTP flows are removed from conntrack a
// bounded number of slots per turn: the maps change first, the cleanup follows.

import type { ObjectSource } from "../store/watch.js";
import type { Service, Endpoints, EndpointSlice } from "../store/types.js";
import { Programmer, type ServicePortModel } from "../proxy/programmer.js";
import { serviceModels } from "../proxy/model.js";
import { Informer, type Obj } from "./informer.js";
import { ChangeTracker, type ServiceState } from "./tracker.js";

export interface ProxierOptions {
  /**
   * Minimum time between two syncs (kube-proxy's minSyncPeriod), ms. A change that arrives
   * when the last sync is at least this old is applied at once (on the next event-loop turn,
   * which also gathers the other events of the same turn); within it, changes wait and go
   * together.
   */
  minSyncIntervalMs?: number;
  /** Conntrack slots the stale-flow cleanup examines per event-loop turn (default 32768). */
  flushBudget?: number;
  log?: (line: string) => void;
  /** Called after every sync with its duration (ms) and whether it was full. */
  onSync?: (ms: number, full: boolean, ok: boolean) => void;
  /** A change arrived and waits for a sync. */
  onQueued?: () => void;
  /** A service's ports were (re)programmed from `service` (undefined: it is gone). */
  onServiceApplied?: (name: string, service: Service | undefined, models: ServicePortModel[]) => void;
  /**
   * The cleanup of flows whose backend left finished a pass over conntrack: flows removed, ms
   * of work (the sum of its steps) and the steps (event-loop turns) it took.
   */
  onFlushed?: (flows: number, ms: number, steps: number) => void;
}

const NO_MODELS: ServicePortModel[] = [];
const SOURCED = { sourced: true };

export class Proxier {
  readonly tracker = new ChangeTracker();
  private readonly informers: Informer[];
  /** Per service name: its programmed port keys and the tracker generation they came from. */
  /** (gen -1: not applied from any state, e.g. after a failure part-way) */
  private readonly applied = new Map<string, { ports: string[]; gen: number }>();
  private synced = false;
  private needFull = true;
  private timer: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;
  private flushing: NodeJS.Immediate | null = null;
  private flushRemoved = 0;
  private flushMs = 0;
  private flushSteps = 0;
  private lastSync = -Infinity;
  private readonly minInterval: number;
  private readonly flushBudget: number;
  private readonly log: (l: string) => void;
  private readyResolve!: () => void;
  /** Resolves once the first full sync is in the maps. */
  readonly ready: Promise<void>;
  syncs = 0;
  failedSyncs = 0;

  constructor(source: ObjectSource, private readonly prog: Programmer, private readonly opts: ProxierOptions = {}) {
    this.minInterval = opts.minSyncIntervalMs ?? 50;
    this.flushBudget = opts.flushBudget ?? 32768;
    this.log = opts.log ?? (() => {});
    this.ready = new Promise((r) => (this.readyResolve = r));
    const h = (f: (o: Obj | undefined, c: Obj | undefined) => void) => ({
      onChange: (o: Obj | undefined, c: Obj | undefined) => {
        f(o, c);
        this.schedule();
      },
      onSynced: () => this.schedule(),
      onError: (e: unknown) => this.log(`watch error: ${(e as Error).message ?? e}`),
    });
    this.informers = [
      new Informer(source, "Service", h((o, c) => this.tracker.onService(o, c))),
      new Informer(source, "EndpointSlice", h((o, c) => this.tracker.onSlice(o, c))),
      new Informer(source, "Endpoints", h((o, c) => this.tracker.onEndpoints(o, c))),
    ];
  }

  async start(): Promise<void> {
    await Promise.all(this.informers.map((i) => i.start()));
  }

  stop(): void {
    for (const i of this.informers) i.stop();
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    if (this.flushing) clearImmediate(this.flushing);
    this.timer = null;
    this.immediate = null;
    this.flushing = null;
  }

  get hasSynced(): boolean {
    return this.synced;
  }

  /**
   * Schedules a sync: on the next event-loop turn when the last one is at least
   * minSyncIntervalMs old (no timer between a change and the maps), else when it will be.
   */
  private schedule(): void {
    this.opts.onQueued?.();
    if (this.timer || this.immediate) return;
    const wait = this.lastSync + this.minInterval - performance.now();
    const run = () => {
      this.timer = null;
      this.immediate = null;
      this.syncNow();
    };
    if (wait <= 0) this.immediate = setImmediate(run);
    else this.timer = setTimeout(run, Math.ceil(wait));
  }

  /** Applies pending changes (or everything, when a full sync is due). Returns true on success. */
  syncNow(): boolean {
    if (!this.informers.every((i) => i.hasSynced)) return false; // wait for the first full lists
    const full = this.needFull;
    const t0 = performance.now();
    const changes = full ? this.tracker.current() : this.tracker.take();
    let ok = true;
    const apply = (st: ServiceState, name: string): void => {
      try {
        this.applyService(name, st);
      } catch (e) {
        ok = false;
        this.log(`sync of service ${name} failed: ${(e as Error).message}`);
      }
    };
    if (full) {
      // Services that vanished while we were not looking.
      const gone: string[] = [];
      this.applied.forEach((_, name) => {
        if (!changes.has(name)) gone.push(name);
      });
      for (const name of gone) apply({ slices: new Map() }, name);
    }
    changes.forEach(apply);
    const ms = performance.now() - t0;
    this.lastSync = performance.now();
    this.needFull = !ok;
    this.syncs++;
    if (!ok) this.failedSyncs++;
    this.opts.onSync?.(ms, full, ok);
    if (!ok) this.schedule();
    if (ok && !this.synced) {
      this.synced = true;
      this.readyResolve();
    }
    this.scheduleFlush();
    return ok;
  }

  /**
   * The cleanup of flows whose backend left runs after the maps are in, a bounded number of
   * conntrack slots per event-loop turn, so neither the next change nor the frames wait for a
   * scan of the whole table.
   */
  private scheduleFlush(): void {
    if (this.flushing || !this.prog.flushPending) return;
    const step = () => {
      this.flushing = null;
      const t0 = performance.now();
      this.flushRemoved += this.prog.flushStale(this.flushBudget);
      this.flushMs += performance.now() - t0;
      this.flushSteps++;
      if (this.prog.flushPending) {
        this.flushing = setImmediate(step);
        return;
      }
      this.opts.onFlushed?.(this.flushRemoved, this.flushMs, this.flushSteps);
      this.flushRemoved = 0;
      this.flushMs = 0;
      this.flushSteps = 0;
    };
    this.flushing = setImmediate(step);
  }

  /** True while the cleanup of departed backends' flows has work left. */
  get flushPending(): boolean {
    return this.prog.flushPending;
  }

  private applyService(name: string, st: ServiceState): void {
    const prev = this.applied.get(name);
    // Applied from exactly this state already (a full sync after a failure, a relist).
    if (prev && st.gen !== undefined && st.gen > 0 && prev.gen === st.gen) return;
    let models: ServicePortModel[] = NO_MODELS;
    if (st.service) {
      const slices: EndpointSlice[] = new Array<EndpointSlice>(st.slices.size);
      let i = 0;
      for (const o of st.slices.values()) slices[i++] = o as unknown as EndpointSlice;
      models = serviceModels(st.service as unknown as Service, slices, st.endpoints as unknown as Endpoints | undefined, SOURCED);
    }
    const keys = models.length === 1 ? [models[0]!.key] : models.map((m) => m.key);
    // Until this succeeds, the service holds the ports of both states and is applied from none.
    if (prev) {
      for (const k of keys) if (!prev.ports.includes(k)) prev.ports = [...prev.ports, k];
      prev.gen = -1;
    } else this.applied.set(name, { ports: keys, gen: -1 });
    if (prev) for (const k of prev.ports) if (!keys.includes(k)) this.prog.remove(k, { deferFlush: true });
    for (const m of models) this.prog.upsertIfChanged(m, { deferFlush: true });
    if (st.service) {
      const a = this.applied.get(name)!;
      a.ports = keys;
      a.gen = st.gen ?? -1;
    } else this.applied.delete(name);
    this.opts.onServiceApplied?.(name, st.service as unknown as Service | undefined, models);
  }
}
