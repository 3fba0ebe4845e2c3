// An ObjectSource over a fixed set of objects (manifests read at start): list returns them,
// watches stay open and quiet. Lets `tapvip run --manifests` drive the agent through the same
// list+watch interface as the store.

import type { ObjectSource, ObjectList, Watch } from "../store/watch.js";
import type { StoredObject } from "../store/db.js";

export class StaticSource implements ObjectSource {
  private readonly objs: StoredObject[];
  constructor(objs: readonly object[]) {
    this.objs = objs.map((o, i) => {
      const so = o as StoredObject;
      return { ...so, metadata: { ...so.metadata, resourceVersion: String(i + 1) } };
    });
  }
  async list(kind: string): Promise<ObjectList> {
    return { items: this.objs.filter((o) => o.kind === kind), resourceVersion: String(this.objs.length) };
  }
  watch(): Watch {
    return { stop() {} };
  }
}
