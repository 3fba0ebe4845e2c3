// The durable store and the watch interface: resourceVersions, persistence across reopen, the
// bounded event log (410 Gone), watch resume, selector transitions, the Reflector.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import Database from "better-sqlite3";
import { join } from "node:path";
import { Store, GoneError, DB_FILE } from "../../src/store/db.js";
import { Registry } from "../../src/store/registry.js";
import { Reflector, parseLabelSelector, matchesLabels, parseFieldSelector, type WatchEvent } from "../../src/store/watch.js";
import type { Service, Status } from "../../src/store/types.js";
import { tempDir } from "./fixtures/tmp.js";

let tmp: ReturnType<typeof tempDir>;
beforeEach(() => {
  tmp = tempDir();
});
afterEach(() => tmp.cleanup());

const tick = (ms = 0): Promise<void> => new Promise((r) => setTimeout(r, ms));

function svc(name: string, labels?: Record<string, string>): Service {
  return { apiVersion: "v1", kind: "Service", metadata: { name, namespace: "default", labels }, spec: { ports: [{ port: 80 }] } };
}

describe("Store", () => {
  it("uses WAL with synchronous=FULL by default and keeps rv monotonic across reopen", () => {
    const s = new Store(tmp.dir);
    expect(s.db.pragma("journal_mode", { simple: true })).toBe("wal");
    expect(s.db.pragma("synchronous", { simple: true })).toBe(2); // FULL
    const a = s.transaction(() => s.put({ apiVersion: "v1", kind: "X", metadata: { name: "a", namespace: "n" } }, "ADDED"));
    const b = s.transaction(() => s.put({ apiVersion: "v1", kind: "X", metadata: { name: "b", namespace: "n" } }, "ADDED"));
    expect(Number(b.metadata.resourceVersion)).toBe(Number(a.metadata.resourceVersion) + 1);
    s.close();
    const t = new Store(tmp.dir);
    expect(t.currentRV()).toBe(2);
    const c = t.transaction(() => t.put({ apiVersion: "v1", kind: "X", metadata: { name: "c", namespace: "n" } }, "ADDED"));
    expect(c.metadata.resourceVersion).toBe("3");
    expect(t.list("X").map((o) => o.metadata.name)).toEqual(["a", "b", "c"]);
    t.close();
  });

  it("rolls back the object, event and rv counter of a failed transaction", () => {
    const s = new Store(tmp.dir, { durability: "normal" });
    expect(() =>
      s.transaction(() => {
        s.put({ apiVersion: "v1", kind: "X", metadata: { name: "a", namespace: "n" } }, "ADDED");
        s.addAllocation("p", "1", "n/a");
        throw new Error("boom");
      }),
    ).toThrow("boom");
    expect(s.currentRV()).toBe(0);
    expect(s.list("X")).toEqual([]);
    expect(s.allocations()).toEqual([]);
    expect(s.eventsSince(0)).toEqual([]);
    s.close();
  });

  it("compacts the event log and answers 410 Gone for a compacted resourceVersion", () => {
    const s = new Store(tmp.dir, { durability: "normal", eventLogLimit: 5 });
    for (let i = 0; i < 40; i++) s.transaction(() => s.put({ apiVersion: "v1", kind: "X", metadata: { name: `o${i}`, namespace: "n" } }, "ADDED"));
    s.compact();
    expect(s.eventsSince(35).map((e) => e.rv)).toEqual([36, 37, 38, 39, 40]);
    expect(() => s.eventsSince(3)).toThrow(GoneError);
    s.close();
    const raw = new Database(join(tmp.dir, DB_FILE), { readonly: true });
    expect((raw.prepare("SELECT count(*) AS n FROM events").get() as { n: number }).n).toBe(5);
    raw.close();
  });
});

describe("selectors", () => {
  it("parses equality, set-based and existence requirements", () => {
    const r = parseLabelSelector("app=web, tier!=db,env in (a, b),!legacy,team");
    expect(matchesLabels(r, { app: "web", env: "a", team: "x" })).toBe(true);
    expect(matchesLabels(r, { app: "web", env: "c", team: "x" })).toBe(false);
    expect(matchesLabels(r, { app: "web", env: "a", team: "x", legacy: "1" })).toBe(false);
    expect(matchesLabels(r, { app: "web", env: "a", team: "x", tier: "db" })).toBe(false);
    expect(matchesLabels(parseLabelSelector("x notin (1)"), {})).toBe(true);
    expect(() => parseFieldSelector("spec.type=NodePort")).toThrow(/not supported/);
    expect(parseFieldSelector("metadata.name==a,metadata.namespace!=b")).toHaveLength(2);
  });
});

describe("watch", () => {
  let reg: Registry;
  beforeEach(() => {
    reg = Registry.open(tmp.dir, { store: { durability: "normal", eventLogLimit: 20 } });
  });
  afterEach(() => reg.close());

  function collect(kind: string, opts: Parameters<Registry["watch"]>[1]): { events: WatchEvent[]; closed: (Status | undefined)[]; stop: () => void } {
    const events: WatchEvent[] = [];
    const closed: (Status | undefined)[] = [];
    const w = reg.watch(kind, opts, { onEvent: (e) => events.push(e), onClose: (e) => closed.push(e) });
    return { events, closed, stop: () => w.stop() };
  }

  it("delivers ADDED/MODIFIED/DELETED in resourceVersion order and resumes from a resourceVersion", async () => {
    const list = await reg.list("Service", { namespace: "default" });
    const w = collect("Service", { namespace: "default", resourceVersion: list.resourceVersion });
    const a = reg.create("Service", svc("a"));
    reg.patch("Service", "default", "a", "merge", { metadata: { labels: { x: "1" } } });
    reg.delete("Service", "default", "a");
    await tick();
    expect(w.events.map((e) => e.type)).toEqual(["ADDED", "MODIFIED", "DELETED"]);
    const rvs = w.events.map((e) => Number(e.object.metadata.resourceVersion));
    expect([...rvs].sort((x, y) => x - y)).toEqual(rvs);
    w.stop();
    // resume after the first event: the two later ones again
    const r = collect("Service", { namespace: "default", resourceVersion: a.metadata.resourceVersion });
    await tick();
    expect(r.events.map((e) => e.type)).toEqual(["MODIFIED", "DELETED"]);
    r.stop();
  });

  it("resourceVersion 0 starts with ADDED for every object; other kinds and namespaces are filtered", async () => {
    reg.create("Service", svc("a"));
    const w = collect("Service", { namespace: "default", resourceVersion: "0" });
    reg.create("Namespace", { apiVersion: "v1", kind: "Namespace", metadata: { name: "other" } });
    reg.create("Service", { ...svc("b"), metadata: { name: "b", namespace: "other" } });
    reg.create("Service", svc("c"));
    await tick();
    expect(w.events.map((e) => `${e.type} ${e.object.metadata.name}`)).toEqual(["ADDED a", "ADDED kubernetes", "ADDED c"]);
    w.stop();
  });

  it("label selector transitions become ADDED / DELETED", async () => {
    reg.create("Service", svc("a", { app: "x" }));
    const w = collect("Service", { labelSelector: "app=x", resourceVersion: String(reg.store.currentRV()) });
    reg.patch("Service", "default", "a", "merge", { metadata: { labels: { app: "y" } } });
    reg.patch("Service", "default", "a", "merge", { metadata: { labels: { app: "x" } } });
    reg.patch("Service", "default", "a", "merge", { metadata: { annotations: { n: "1" } } });
    await tick();
    expect(w.events.map((e) => e.type)).toEqual(["DELETED", "ADDED", "MODIFIED"]);
    w.stop();
  });

  it("a compacted resourceVersion closes the watch with 410; the Reflector relists", async () => {
    for (let i = 0; i < 60; i++) reg.create("Service", svc(`s${i}`));
    reg.store.compact();
    const w = collect("Service", { resourceVersion: "2" });
    await tick();
    expect(w.events).toEqual([]);
    expect(w.closed[0]?.code).toBe(410);
    expect(w.closed[0]?.reason).toBe("Expired");

    const seen: string[] = [];
    const refl = new Reflector(reg, "Service", { namespace: "default" }, { onAdd: (o) => seen.push(`+${o.metadata.name}`), onDelete: (o) => seen.push(`-${o.metadata.name}`) });
    await refl.start();
    expect(refl.cache.size).toBe(61);
    reg.delete("Service", "default", "s0");
    reg.create("Service", svc("new"));
    await tick();
    expect(seen).toEqual(["-s0", "+new"]);
    expect(refl.cache.has("default/new")).toBe(true);
    refl.stop();
  });

  it("bookmarks carry the current resourceVersion", async () => {
    const w = collect("Service", { resourceVersion: String(reg.store.currentRV()), bookmarkIntervalMs: 10 });
    await tick(40);
    w.stop();
    const b = w.events.find((e) => e.type === "BOOKMARK");
    expect(b?.object.metadata.resourceVersion).toBe(String(reg.store.currentRV()));
  });
});
