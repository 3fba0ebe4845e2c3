// kube-proxy's change tracker: Service, EndpointSlice and Endpoints events collapse into one
// pending entry per service name holding {previous, current} — the state last synced and the
// state now. A burst of events for one service costs one recomputation at the next sync; an
// entry whose current equals its previous is dropped (the change undid itself).
//
// States are compared by the objects' resourceVersions (an object without one by its JSON),
// never by serialising a whole state: a full list of 10k Services and their slices goes
// through here at every agent start. Every change of a service's state gives it a new `gen`,
// which lets the proxier skip a service whose state is the one it last applied.

import type { Obj } from "./informer.js";

export interface ServiceState {
  service?: Obj;
  slices: Map<string, Obj>;
  endpoints?: Obj;
  /** Changes with every event that touches this service (unique across services). */
  gen?: number;
}

/** What a state was at the last sync: each object's identity (resourceVersion, else JSON). */
interface Snapshot {
  service: string | null;
  endpoints: string | null;
  slices: Map<string, string>;
}

function emptyState(): ServiceState {
  return { service: undefined, slices: new Map(), endpoints: undefined, gen: 0 };
}

function ident(o: Obj | undefined): string | null {
  if (!o) return null;
  return o.metadata.resourceVersion ?? JSON.stringify(o);
}

function isEmpty(s: ServiceState): boolean {
  return !s.service && s.slices.size === 0 && !s.endpoints;
}

function snapshot(s: ServiceState): Snapshot | null {
  if (isEmpty(s)) return null;
  const slices = new Map<string, string>();
  for (const [k, o] of s.slices) slices.set(k, ident(o)!);
  return { service: ident(s.service), endpoints: ident(s.endpoints), slices };
}

function matches(s: ServiceState, snap: Snapshot | null): boolean {
  if (snap === null) return isEmpty(s);
  if (ident(s.service) !== snap.service || ident(s.endpoints) !== snap.endpoints || s.slices.size !== snap.slices.size) return false;
  for (const [k, o] of s.slices) if (snap.slices.get(k) !== ident(o)) return false;
  return true;
}

/** Which service a slice belongs to: its kubernetes.io/service-name label. */
export function sliceService(o: Obj): string | undefined {
  const labels = (o.metadata as { labels?: Record<string, string> }).labels;
  const name = labels?.["kubernetes.io/service-name"];
  return name ? `${o.metadata.namespace ?? "default"}/${name}` : undefined;
}

let generation = 0;

export class ChangeTracker {
  /** The full current state per service name (what the informers say now). */
  private readonly state = new Map<string, ServiceState>();
  /** Services changed since the last sync, with their state as of that sync (null: none). */
  private readonly pending = new Map<string, Snapshot | null>();

  private touch(name: string): ServiceState {
    let s = this.state.get(name);
    if (!s) {
      s = emptyState();
      this.state.set(name, s);
    }
    if (!this.pending.has(name)) this.pending.set(name, snapshot(s));
    s.gen = ++generation;
    return s;
  }

  private settle(name: string): void {
    const s = this.state.get(name)!;
    if (isEmpty(s)) this.state.delete(name);
    const snap = this.pending.get(name);
    // A state that came back to what was synced: drop the change (cheap first test: a
    // service absent at the last sync and present now has changed).
    if (snap === null ? isEmpty(s) : snap !== undefined && matches(s, snap)) this.pending.delete(name);
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

  /**
   * Every service's current state, live (not a copy: read it before the next event), for a
   * full sync; the pending changes are taken with it.
   */
  current(): ReadonlyMap<string, ServiceState> {
    this.pending.clear();
    return this.state;
  }
}
