// An informer: list + watch of one kind through an ObjectSource (the only way the agent reads
// objects), a local cache, and change callbacks with the old and new object. On a 410 Gone or
// a closed watch it lists again and reports the difference as changes, so nothing is missed.

import type { ObjectSource, Watch } from "../store/watch.js";
import type { StoredObject } from "../store/db.js";

export type Obj = StoredObject;

export interface InformerHandlers {
  /** old undefined = added; cur undefined = deleted. */
  onChange(old: Obj | undefined, cur: Obj | undefined): void;
  /** The first complete list has been delivered. */
  onSynced?(): void;
  onError?(e: unknown): void;
}

export function objKey(o: Obj): string {
  return `${o.metadata.namespace ?? ""}/${o.metadata.name ?? ""}`;
}

export class Informer {
  readonly cache = new Map<string, Obj>();
  private watch: Watch | null = null;
  private stopped = false;
  private synced = false;
  private retryTimer: NodeJS.Timeout | null = null;

  constructor(private readonly source: ObjectSource, readonly kind: string, private readonly h: InformerHandlers, private readonly retryMs = 500) {}

  get hasSynced(): boolean {
    return this.synced;
  }

  async start(): Promise<void> {
    await this.relist();
  }

  stop(): void {
    this.stopped = true;
    this.watch?.stop();
    this.watch = null;
    if (this.retryTimer) clearTimeout(this.retryTimer);
  }

  private async relist(): Promise<void> {
    if (this.stopped) return;
    try {
      const list = await this.source.list(this.kind);
      const seen = new Set<string>();
      for (const o of list.items) {
        const k = objKey(o);
        seen.add(k);
        const old = this.cache.get(k);
        if (old?.metadata.resourceVersion === o.metadata.resourceVersion) continue;
        this.cache.set(k, o);
        this.h.onChange(old, o);
      }
      for (const [k, old] of [...this.cache]) {
        if (seen.has(k)) continue;
        this.cache.delete(k);
        this.h.onChange(old, undefined);
      }
      if (!this.synced) {
        this.synced = true;
        this.h.onSynced?.();
      }
      this.startWatch(list.resourceVersion);
    } catch (e) {
      this.h.onError?.(e);
      this.scheduleRelist();
    }
  }

  private scheduleRelist(): void {
    if (this.stopped || this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.relist();
    }, this.retryMs);
  }

  private startWatch(rv: string): void {
    if (this.stopped) return;
    this.watch = this.source.watch(this.kind, { resourceVersion: rv }, {
      onEvent: (ev) => {
        if (ev.type === "BOOKMARK") return;
        if (ev.type === "ERROR") {
          this.watch?.stop();
          this.watch = null;
          this.scheduleRelist();
          return;
        }
        const k = objKey(ev.object);
        const old = this.cache.get(k);
        if (ev.type === "DELETED") {
          this.cache.delete(k);
          this.h.onChange(old, undefined);
        } else {
          this.cache.set(k, ev.object);
          this.h.onChange(old, ev.object);
        }
      },
      onClose: () => {
        this.watch = null;
        this.scheduleRelist();
      },
    });
  }
}
