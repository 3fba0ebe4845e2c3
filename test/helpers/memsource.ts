// An in-memory ObjectSource for agent tests: put/remove objects, watchers get events in order,
// and `expire()` makes the next watch resume fail with 410 Gone so relisting is exercised.

import type { ObjectSource, ObjectList, WatchHandlers, Watch, WatchOptions } from "../../src/store/watch.js";
import type { StoredObject } from "../../src/store/db.js";

export class MemorySource implements ObjectSource {
  private rv = 0;
  private readonly objs = new Map<string, StoredObject>();
  private readonly watchers = new Set<{ kind: string; h: WatchHandlers }>();
  lists = 0;

  private key(o: StoredObject): string {
    return `${o.kind}/${o.metadata.namespace ?? ""}/${o.metadata.name}`;
  }

  put(o: StoredObject): void {
    const k = this.key(o);
    const type = this.objs.has(k) ? "MODIFIED" : "ADDED";
    const stored = { ...o, metadata: { ...o.metadata, resourceVersion: String(++this.rv) } };
    this.objs.set(k, stored);
    for (const w of this.watchers) if (w.kind === o.kind) w.h.onEvent({ type, object: stored });
  }

  remove(o: StoredObject): void {
    const k = this.key(o);
    const cur = this.objs.get(k);
    if (!cur) return;
    this.objs.delete(k);
    ++this.rv;
    for (const w of this.watchers) if (w.kind === o.kind) w.h.onEvent({ type: "DELETED", object: cur });
  }

  /** Ends every watch with 410 Gone (the consumer must list again). */
  expire(): void {
    for (const w of [...this.watchers]) {
      this.watchers.delete(w);
      w.h.onEvent({ type: "ERROR", object: { apiVersion: "v1", kind: "Status", metadata: {}, code: 410, reason: "Expired" } as unknown as StoredObject });
    }
  }

  async list(kind: string): Promise<ObjectList> {
    this.lists++;
    return { items: [...this.objs.values()].filter((o) => o.kind === kind), resourceVersion: String(this.rv) };
  }

  watch(kind: string, _opts: WatchOptions, h: WatchHandlers): Watch {
    const w = { kind, h };
    this.watchers.add(w);
    return { stop: () => this.watchers.delete(w) };
  }
}
