// The durable store: embedded SQLite (better-sqlite3) in WAL mode inside a data directory.
//
// Tables
//   meta(key, value)                 the global resourceVersion counter and the compaction mark
//   objects(kind, namespace, name)   one JSON document per object, with its resourceVersion
//   events(rv, ...)                  the watch log: one row per write, bounded (older rows are
//                                    compacted; a watch from a compacted rv gets 410 Gone)
//   allocations(pool, value, owner)  ClusterIPs, NodePorts and LoadBalancer IPs in use, written in
//                                    the same transaction as the object that owns them
//
// Durability: `journal_mode=WAL` with `synchronous=FULL`. With WAL, NORMAL already survives a
// process crash (kill -9): a committed transaction is in the WAL file in the OS page cache and
// is replayed on the next open. It does not survive an OS crash or power loss, because NORMAL
// only fsyncs the WAL at checkpoints, so the last acknowledged writes could be lost. FULL fsyncs
// the WAL on every commit, so a write the API acknowledged is on disk before the answer leaves.
// `durability: "normal"` trades that for throughput where the caller accepts it.
//
// Every mutation goes through `Store.transaction(fn)`: the rv counter, the object rows, the
// event rows and the allocation rows of one API write commit together or not at all. Watch
// events are delivered to in-process subscribers only after the commit.

import Database from "better-sqlite3";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

export type EventType = "ADDED" | "MODIFIED" | "DELETED";

/** Any stored object: apiVersion/kind/metadata plus whatever else the kind carries. */
export interface StoredObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name?: string;
    namespace?: string;
    resourceVersion?: string;
    uid?: string;
    [k: string]: unknown;
  };
  [k: string]: unknown;
}

export interface StoreEvent {
  rv: number;
  type: EventType;
  kind: string;
  namespace: string;
  name: string;
  object: StoredObject;
  /** The object before a MODIFIED write (used for selector transitions). */
  old?: StoredObject;
}

export interface AllocationRow {
  pool: string;
  value: string;
  owner: string;
}

export interface StoreOptions {
  /** "full" (default): fsync the WAL on every commit. "normal": fsync at checkpoints only. */
  durability?: "full" | "normal";
  /** Events kept in the log for watch resumption; older ones are compacted. Default 10000. */
  eventLogLimit?: number;
}

export const DB_FILE = "tapvip.db";

/** Thrown by a watch or list asking for a resourceVersion older than the log keeps. */
export class GoneError extends Error {
  readonly code = 410;
  constructor(
    readonly requested: number,
    readonly oldest: number,
  ) {
    super(`too old resource version: ${requested} (${oldest})`);
    this.name = "GoneError";
  }
}

type Listener = (ev: StoreEvent) => void;

export class Store {
  readonly db: Database.Database;
  readonly path: string;
  private rv: number;
  private compactedRV: number;
  private readonly limit: number;
  private pending: StoreEvent[] = [];
  private inTx = false;
  private readonly listeners = new Set<Listener>();
  private writesSinceCompaction = 0;
  private closed = false;

  private readonly st: {
    get: Database.Statement;
    put: Database.Statement;
    del: Database.Statement;
    listKind: Database.Statement;
    listNs: Database.Statement;
    ev: Database.Statement;
    evSince: Database.Statement;
    setMeta: Database.Statement;
    allocAdd: Database.Statement;
    allocDel: Database.Statement;
    allocGet: Database.Statement;
    allocList: Database.Statement;
  };

  constructor(dir: string, opts: StoreOptions = {}) {
    mkdirSync(dir, { recursive: true });
    this.path = join(dir, DB_FILE);
    this.db = new Database(this.path);
    this.db.pragma("journal_mode = WAL");
    this.db.pragma(`synchronous = ${opts.durability === "normal" ? "NORMAL" : "FULL"}`);
    this.db.pragma("foreign_keys = OFF");
    this.db.pragma("busy_timeout = 5000");
    this.limit = Math.max(1, opts.eventLogLimit ?? 10000);
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS objects (
        kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
        rv INTEGER NOT NULL, data TEXT NOT NULL,
        PRIMARY KEY (kind, namespace, name)
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS events (
        rv INTEGER PRIMARY KEY, type TEXT NOT NULL, kind TEXT NOT NULL,
        namespace TEXT NOT NULL, name TEXT NOT NULL, data TEXT NOT NULL, old TEXT
      );
      CREATE TABLE IF NOT EXISTS allocations (
        pool TEXT NOT NULL, value TEXT NOT NULL, owner TEXT NOT NULL,
        PRIMARY KEY (pool, value)
      ) WITHOUT ROWID;
      INSERT OR IGNORE INTO meta (key, value) VALUES ('rv', '0'), ('compacted', '0');
    `);
    this.st = {
      get: this.db.prepare("SELECT data FROM objects WHERE kind = ? AND namespace = ? AND name = ?"),
      put: this.db.prepare(
        "INSERT INTO objects (kind, namespace, name, rv, data) VALUES (?, ?, ?, ?, ?) " +
          "ON CONFLICT (kind, namespace, name) DO UPDATE SET rv = excluded.rv, data = excluded.data",
      ),
      del: this.db.prepare("DELETE FROM objects WHERE kind = ? AND namespace = ? AND name = ?"),
      listKind: this.db.prepare("SELECT data FROM objects WHERE kind = ? ORDER BY namespace, name"),
      listNs: this.db.prepare("SELECT data FROM objects WHERE kind = ? AND namespace = ? ORDER BY name"),
      ev: this.db.prepare("INSERT INTO events (rv, type, kind, namespace, name, data, old) VALUES (?, ?, ?, ?, ?, ?, ?)"),
      evSince: this.db.prepare("SELECT rv, type, kind, namespace, name, data, old FROM events WHERE rv > ? ORDER BY rv"),
      setMeta: this.db.prepare("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"),
      allocAdd: this.db.prepare("INSERT INTO allocations (pool, value, owner) VALUES (?, ?, ?)"),
      allocDel: this.db.prepare("DELETE FROM allocations WHERE pool = ? AND value = ?"),
      allocGet: this.db.prepare("SELECT owner FROM allocations WHERE pool = ? AND value = ?"),
      allocList: this.db.prepare("SELECT pool, value, owner FROM allocations ORDER BY pool, value"),
    };
    this.rv = this.readMeta("rv");
    this.compactedRV = this.readMeta("compacted");
  }

  private readMeta(key: string): number {
    const row = this.db.prepare("SELECT value FROM meta WHERE key = ?").get(key) as { value: string } | undefined;
    return row ? Number(row.value) : 0;
  }

  /** The newest resourceVersion handed out (committed). */
  currentRV(): number {
    return this.rv;
  }

  /** Events up to and including this rv have been compacted away. */
  compactedThrough(): number {
    return this.compactedRV;
  }

  /**
   * Runs `fn` in one SQLite transaction (BEGIN IMMEDIATE). On a throw everything written is
   * rolled back (including the rv counter) and the error is rethrown; on success the events
   * are delivered to subscribers after the commit. Nested calls join the outer transaction.
   */
  transaction<T>(fn: () => T): T {
    if (this.closed) throw new Error("store is closed");
    if (this.inTx) return fn();
    const startRV = this.rv;
    this.inTx = true;
    let result: T;
    try {
      result = this.db.transaction(() => {
        const r = fn();
        if (this.rv !== startRV) this.st.setMeta.run("rv", String(this.rv));
        return r;
      }).immediate();
    } catch (e) {
      this.rv = startRV;
      this.pending = [];
      throw e;
    } finally {
      this.inTx = false;
    }
    const events = this.pending;
    this.pending = [];
    if (events.length > 0) {
      this.writesSinceCompaction += events.length;
      if (this.writesSinceCompaction >= Math.max(16, Math.floor(this.limit / 10))) this.compact();
      for (const ev of events) for (const l of [...this.listeners]) l(ev);
    }
    return result;
  }

  private requireTx(): void {
    if (!this.inTx) throw new Error("store writes must run inside Store.transaction");
  }

  get(kind: string, namespace: string, name: string): StoredObject | undefined {
    const row = this.st.get.get(kind, namespace, name) as { data: string } | undefined;
    return row ? (JSON.parse(row.data) as StoredObject) : undefined;
  }

  /** Every object of a kind (in one namespace when given), sorted by namespace and name. */
  list(kind: string, namespace?: string): StoredObject[] {
    const rows = (namespace === undefined ? this.st.listKind.all(kind) : this.st.listNs.all(kind, namespace)) as { data: string }[];
    return rows.map((r) => JSON.parse(r.data) as StoredObject);
  }

  /** Distinct kinds stored (for namespace cascades). */
  kinds(): string[] {
    return (this.db.prepare("SELECT DISTINCT kind FROM objects").all() as { kind: string }[]).map((r) => r.kind);
  }

  /**
   * Writes an object with the next resourceVersion (set into its metadata) and logs the event.
   * Returns the stored object.
   */
  put(obj: StoredObject, type: "ADDED" | "MODIFIED", old?: StoredObject): StoredObject {
    this.requireTx();
    const rv = ++this.rv;
    obj.metadata.resourceVersion = String(rv);
    const ns = obj.metadata.namespace ?? "";
    const name = obj.metadata.name ?? "";
    const data = JSON.stringify(obj);
    this.st.put.run(obj.kind, ns, name, rv, data);
    this.st.ev.run(rv, type, obj.kind, ns, name, data, old ? JSON.stringify(old) : null);
    this.pending.push({ rv, type, kind: obj.kind, namespace: ns, name, object: obj, old });
    return obj;
  }

  /** Deletes an object; the DELETED event carries the object with a new resourceVersion. */
  remove(obj: StoredObject): StoredObject {
    this.requireTx();
    const rv = ++this.rv;
    const out = structuredClone(obj);
    out.metadata.resourceVersion = String(rv);
    const ns = out.metadata.namespace ?? "";
    const name = out.metadata.name ?? "";
    this.st.del.run(out.kind, ns, name);
    this.st.ev.run(rv, "DELETED", out.kind, ns, name, JSON.stringify(out), null);
    this.pending.push({ rv, type: "DELETED", kind: out.kind, namespace: ns, name, object: out });
    return out;
  }

  /**
   * Logged events with rv > `since`, oldest first. Throws GoneError when events after `since`
   * may have been compacted (since < the compaction mark).
   */
  eventsSince(since: number): StoreEvent[] {
    if (since < this.compactedRV) throw new GoneError(since, this.compactedRV + 1);
    const rows = this.st.evSince.all(since) as {
      rv: number;
      type: EventType;
      kind: string;
      namespace: string;
      name: string;
      data: string;
      old: string | null;
    }[];
    return rows.map((r) => ({
      rv: r.rv,
      type: r.type,
      kind: r.kind,
      namespace: r.namespace,
      name: r.name,
      object: JSON.parse(r.data) as StoredObject,
      old: r.old ? (JSON.parse(r.old) as StoredObject) : undefined,
    }));
  }

  /** Keeps the newest `eventLogLimit` events; records the newest compacted rv. */
  compact(keep = this.limit): void {
    this.writesSinceCompaction = 0;
    const row = this.db.prepare("SELECT rv FROM events ORDER BY rv DESC LIMIT 1 OFFSET ?").get(keep) as { rv: number } | undefined;
    if (!row) return;
    const cut = row.rv;
    this.db.transaction(() => {
      this.db.prepare("DELETE FROM events WHERE rv <= ?").run(cut);
      if (cut > this.compactedRV) this.st.setMeta.run("compacted", String(cut));
    }).immediate();
    if (cut > this.compactedRV) this.compactedRV = cut;
  }

  /** Subscribes to committed events; returns the unsubscribe function. */
  subscribe(l: Listener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  // ---------------------------------------------------------------- allocations

  allocationOwner(pool: string, value: string): string | undefined {
    const row = this.st.allocGet.get(pool, value) as { owner: string } | undefined;
    return row?.owner;
  }

  addAllocation(pool: string, value: string, owner: string): void {
    this.requireTx();
    this.st.allocAdd.run(pool, value, owner);
  }

  removeAllocation(pool: string, value: string): void {
    this.requireTx();
    this.st.allocDel.run(pool, value);
  }

  allocations(): AllocationRow[] {
    return this.st.allocList.all() as AllocationRow[];
  }

  /** Replaces the whole allocation table (repair). */
  replaceAllocations(rows: readonly AllocationRow[]): void {
    this.requireTx();
    this.db.prepare("DELETE FROM allocations").run();
    for (const r of rows) this.st.allocAdd.run(r.pool, r.value, r.owner);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.listeners.clear();
    this.db.close();
  }
}
