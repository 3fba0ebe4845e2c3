// kube-proxy's change tracker: Service, EndpointSlice and Endpoints events collapse into one
// pending entry per service name holding {previous, current} — the state last synced and the
// state now. A burst of events for one service costs one recomputation at the next sync; an
// entry whose current equals its previous is dropped (the change undid itself).

import type { Obj } from "./informer.js";

export interface ServiceState {
  service?: Obj;
  slices: Map<string, Obj>;
  endpoints?: Obj;
}

export interface PendingChange {
  previous: string | null;
  current: ServiceState;
}

function emptyState(): ServiceState {
  return { slices: new Map() };
}

function stateJson(s: ServiceState): string | null {
  if (!s.service && s.slices.size === 0 && !s.endpoints) return null;
  const slices = [...s.slices.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([, o]) => o.metadata.resourceVersion ?? JSON.stringify(o));
  return JSON.stringify([s.service?.metadata.resourceVersion ?? s.service ?? null, slices, s.endpoints?.metadata.resourceVersion ?? s.endpoints ?? null]);
}

/** Which service a slice belongs to: its kubernetes.io/service-name label. */
export function sliceService(o: Obj): string | undefined {
  const labels = (o.metadata as { labels?: Record<string, string> }).labels;
  const name = labels?.["kubernetes.io/service-name"];
  return name ? `${o.metadata.namespace ?? "default"}/${name}` : undefined;
}

export class ChangeTracker {
  /** The full current state per service name (what the informers say now). */
  private readonly state = new Map<string, ServiceState>();
  /** Services changed since the last sync, with their state as of that sync. */
  private readonly pending = new Map<string, string | null>();

  private touch(name: string): ServiceState {
    let s = this.state.get(name);
    if (!s) {
      s = emptyState();
      this.state.set(name, s);
    }
    if (!this.pending.has(name)) this.pending.set(name, stateJson(s));
    return s;
  }

  private settle(name: string): void {
    const s = this.state.get(name)!;
    if (stateJson(s) === null) this.state.delete(name);
    if (this.pending.get(name) === stateJson(s)) this.pending.delete(name); // undone
  }

  onService(old: Obj | undefined, cur: Obj | undefined): void {
    const o = (cur ?? old)!;
    const name = `${o.metadata.namespace ?? "default"}/${o.metadata.name}`;
    this.touch(name).service = cur;
    this.settle(name);
  }

  onSlice(old: Obj | undefined, cur: Obj | undefined): void {
    const oldSvc = old ? sliceService(old) : undefined;
    const curSvc = cur ? sliceService(cur) : undefined;
    const sliceKey = `${(cur ?? old)!.metadata.namespace}/${(cur ?? old)!.metadata.name}`;
    if (oldSvc && oldSvc !== curSvc) {
      this.touch(oldSvc).slices.delete(sliceKey);
      this.settle(oldSvc);
    }
    if (curSvc) {
      this.touch(curSvc).slices.set(sliceKey, cur!);
      this.settle(curSvc);
    }
  }

  onEndpoints(old: Obj | undefined, cur: Obj | undefined): void {
    const o = (cur ?? old)!;
    const name = `${o.metadata.namespace ?? "default"}/${o.metadata.name}`;
    this.touch(name).endpoints = cur;
    this.settle(name);
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  /** Takes the pending changes (names → current state); the tracker starts a new round. */
  take(): Map<string, ServiceState> {
    const out = new Map<string, ServiceState>();
    for (const name of this.pending.keys()) out.set(name, this.state.get(name) ?? emptyState());
    this.pending.clear();
    return out;
  }

  /** Every service's current state (for a full sync). */
  all(): Map<string, ServiceState> {
    this.pending.clear();
    return new Map(this.state);
  }
}
