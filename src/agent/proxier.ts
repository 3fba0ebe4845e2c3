// The proxier: informers for Services, EndpointSlices and Endpoints feed the change tracker; a
// bounded-frequency runner applies only the changed services to the dataplane's maps. No
// traffic is served before the first full list of every kind has been synced, and a sync that
// fails part-way forces the next one to be full (like kube-proxy).

import type { ObjectSource } from "../store/watch.js";
import type { Service, Endpoints, EndpointSlice } from "../store/types.js";
import { Programmer, type ServicePortModel } from "../proxy/programmer.js";
import { buildModels } from "../proxy/model.js";
import { Informer, type Obj } from "./informer.js";
import { ChangeTracker, type ServiceState } from "./tracker.js";

export interface ProxierOptions {
  /** Minimum time between two syncs (kube-proxy's minSyncPeriod), ms. */
  minSyncIntervalMs?: number;
  log?: (line: string) => void;
  /** Called after every sync with its duration (ms) and whether it was full. */
  onSync?: (ms: number, full: boolean, ok: boolean) => void;
  /** A change arrived and waits for a sync. */
  onQueued?: () => void;
  /** A service's ports were (re)programmed from `service` (undefined: it is gone). */
  onServiceApplied?: (name: string, service: Service | undefined, models: ServicePortModel[]) => void;
}

export class Proxier {
  readonly tracker = new ChangeTracker();
  private readonly informers: Informer[];
  private readonly portsBySvc = new Map<string, Set<string>>();
  private synced = false;
  private needFull = true;
  private timer: NodeJS.Timeout | null = null;
  private lastSync = 0;
  private readonly minInterval: number;
  private readonly log: (l: string) => void;
  private readyResolve!: () => void;
  /** Resolves once the first full sync is in the maps. */
  readonly ready: Promise<void>;
  syncs = 0;
  failedSyncs = 0;

  constructor(source: ObjectSource, private readonly prog: Programmer, private readonly opts: ProxierOptions = {}) {
    this.minInterval = opts.minSyncIntervalMs ?? 50;
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
    this.timer = null;
  }

  get hasSynced(): boolean {
    return this.synced;
  }

  /** Schedules a sync no sooner than minSyncIntervalMs after the previous one. */
  private schedule(): void {
    this.opts.onQueued?.();
    if (this.timer) return;
    const wait = Math.max(0, this.lastSync + this.minInterval - Date.now());
    this.timer = setTimeout(() => {
      this.timer = null;
      this.syncNow();
    }, wait);
  }

  /** Applies pending changes (or everything, when a full sync is due). Returns true on success. */
  syncNow(): boolean {
    if (!this.informers.every((i) => i.hasSynced)) return false; // wait for the first full lists
    const full = this.needFull;
    const t0 = performance.now();
    const changes = full ? this.tracker.all() : this.tracker.take();
    let ok = true;
    if (full) {
      // Services that vanished while we were not looking.
      for (const name of [...this.portsBySvc.keys()]) if (!changes.has(name)) changes.set(name, { slices: new Map() });
    }
    for (const [name, st] of changes) {
      try {
        this.applyService(name, st);
      } catch (e) {
        ok = false;
        this.log(`sync of service ${name} failed: ${(e as Error).message}`);
      }
    }
    this.lastSync = Date.now();
    this.needFull = !ok;
    this.syncs++;
    if (!ok) this.failedSyncs++;
    const ms = performance.now() - t0;
    this.opts.onSync?.(ms, full, ok);
    if (!ok) this.schedule();
    if (ok && !this.synced) {
      this.synced = true;
      this.readyResolve();
    }
    return ok;
  }

  private applyService(name: string, st: ServiceState): void {
    const models: ServicePortModel[] = st.service
      ? buildModels({
        services: [st.service as unknown as Service],
        endpointSlices: [...st.slices.values()] as unknown as EndpointSlice[],
        endpoints: st.endpoints ? [st.endpoints as unknown as Endpoints] : [],
      })
      : [];
    const before = this.portsBySvc.get(name) ?? new Set<string>();
    const now = new Set(models.map((m) => m.key));
    for (const k of before) if (!now.has(k)) this.prog.remove(k);
    for (const m of models) this.prog.upsertIfChanged(m);
    if (now.size) this.portsBySvc.set(name, now);
    else this.portsBySvc.delete(name);
    this.opts.onServiceApplied?.(name, st.service as unknown as Service | undefined, models);
  }
}
