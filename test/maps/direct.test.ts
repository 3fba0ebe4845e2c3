// The programmer's direct map writers (src/maps/direct.ts) against the generic map handles:
// the same bytes for every entry, batched svc_slots updates equal to one-by-one updates (also
// across staging-area refills and in failure), and the bounded stale-flow cleanup of
// assembly/conntrack.ts (ctFlushStale).

import { describe, it, expect } from "vitest";
import { Dataplane } from "../../src/maps/dataplane.js";
import { MapWriter } from "../../src/maps/direct.js";
import { MapError } from "../../src/maps/bpfmap.js";
import { ipv4ToU32 } from "../../src/maps/codec.js";
import { node, svc, CLIENT_POD, VIP } from "../helpers/node.js";
import { buildFrame } from "../../src/host/frames.js";

const sortEntries = <T>(e: T[]) => e.map((x) => JSON.stringify(x, (_k, v) => (typeof v === "bigint" ? String(v) : v))).sort();

for (const build of ["release", "debug"] as const) {
  describe(`${build}: MapWriter`, () => {
    it("writes the same entries as the generic handles", () => {
      const a = new Dataplane({ build, seed: 1 });
      const b = new Dataplane({ build, seed: 1 });
      const w = new MapWriter(b);
      a.maps.backends.set(7, { addrBe: "10.1.2.3", portBe: 8080, proto: 17, state: 2, flags: 1, weight: 1, activeConns: 0 });
      w.setBackend(7, ipv4ToU32("10.1.2.3"), 8080, 17, 2, 1, 1);
      expect(b.maps.backends.get(7)).toEqual(a.maps.backends.get(7));

      a.maps.services.patch(3, { flags: 5, algo: 2, affinityTimeoutSec: 10800, readyLocal: 1, readyRemote: 2, terminatingLocal: 3, terminatingRemote: 4, maglevClusterOff: 100, maglevClusterSize: 307, maglevLocalOff: 0, maglevLocalSize: 0 });
      w.patchService(3, 5, 2, 10800, 1, 2, 3, 4, 100, 307, 0, 0);
      expect(b.maps.services.get(3)).toEqual(a.maps.services.get(3));

      a.maps.revNat.set(9, { addrBe: "10.96.0.1", portBe: 443 });
      w.setRevNat(9, ipv4ToU32("10.96.0.1"), 443);
      expect(b.maps.revNat.get(9)).toEqual(a.maps.revNat.get(9));

      a.maps.frontends.update({ addrBe: "10.96.0.1", portBe: 443, proto: 6 }, { svcId: 3, revNatId: 9, kind: 1 });
      w.setFrontend(ipv4ToU32("10.96.0.1"), 443, 6, 3, 9, 1);
      a.maps.addrs.update({ addrBe: "10.96.0.1" }, { flags: 2 });
      w.setAddr(ipv4ToU32("10.96.0.1"), 2);
      expect(sortEntries(b.maps.frontends.entries())).toEqual(sortEntries(a.maps.frontends.entries()));
      expect(sortEntries(b.maps.addrs.entries())).toEqual(sortEntries(a.maps.addrs.entries()));
      expect(w.deleteFrontend(ipv4ToU32("10.96.0.1"), 443, 6)).toBe(true);
      expect(w.deleteAddr(ipv4ToU32("10.96.0.1"))).toBe(true);
      expect(b.maps.frontends.count + b.maps.addrs.count).toBe(0);

      w.setMaglev(1234, 7);
      expect(b.maps.maglev.get(1234).backendId).toBe(7);
      w.clearBackend(7);
      expect(b.maps.backends.get(7)).toEqual(new Dataplane({ build }).maps.backends.get(7));
    });

    it("keeps the dataplane's fields: activeConns for the same backend, rrCursor of a service", () => {
      const dp = new Dataplane({ build, seed: 1 });
      const w = new MapWriter(dp);
      w.setBackend(1, ipv4ToU32("10.0.0.1"), 80, 6, 1, 0, 1);
      dp.maps.backends.patch(1, { activeConns: 5 });
      w.setBackend(1, ipv4ToU32("10.0.0.1"), 80, 6, 2, 0, 1);
      expect(dp.maps.backends.get(1)).toMatchObject({ state: 2, activeConns: 5 });
      w.setBackend(1, ipv4ToU32("10.0.0.2"), 80, 6, 1, 0, 1);
      expect(dp.maps.backends.get(1).activeConns).toBe(0);
      dp.maps.services.patch(2, { rrCursor: 17 });
      w.patchService(2, 0, 3, 0, 0, 4, 0, 0, 0, 0, 0, 0);
      expect(dp.maps.services.get(2)).toMatchObject({ rrCursor: 17, algo: 3, readyRemote: 4 });
    });

    it("staged svc_slots updates land as one-by-one updates do, across refills of the staging area", () => {
      const a = new Dataplane({ build, seed: 3 });
      const b = new Dataplane({ build, seed: 3 });
      const w = new MapWriter(b);
      const n = 20_000; // more than one staging area (65,536 bytes / 12 per record)
      for (let i = 0; i < n; i++) {
        const svcId = 1 + (i % 997);
        const slot = Math.floor(i / 997);
        a.maps.svcSlots.update({ svcId, slot }, { backendId: i + 1 });
        w.setSlot(svcId, slot, i + 1);
      }
      // An overwrite and a delete after staged updates keep their order.
      a.maps.svcSlots.update({ svcId: 5, slot: 0 }, { backendId: 99 });
      w.setSlot(5, 0, 99);
      a.maps.svcSlots.delete({ svcId: 6, slot: 0 });
      expect(w.deleteSlot(6, 0)).toBe(true);
      w.flush();
      expect(b.maps.svcSlots.count).toBe(a.maps.svcSlots.count);
      expect(sortEntries(b.maps.svcSlots.entries())).toEqual(sortEntries(a.maps.svcSlots.entries()));
    });

    it("a batch that fills the map fails with the map's error and applies what fitted", () => {
      const dp = new Dataplane({ build, seed: 1, maxEntries: { svc_slots: 10 } });
      const w = new MapWriter(dp);
      for (let i = 0; i < 12; i++) w.setSlot(1, i, i + 1);
      expect(() => w.flush()).toThrow(MapError);
      expect(dp.maps.svcSlots.count).toBe(10);
      for (let i = 0; i < 12; i++) w.setSlot(2, i, i + 1);
      expect(() => w.flush()).toThrow(/svc_slots is full: max entries 10 reached.*12 of a batch of 12 not applied/);
      w.flush(); // nothing left staged
    });

    it("rejects writes outside an array map like the generic handles", () => {
      const dp = new Dataplane({ build, maxEntries: { backends: 16 } });
      const w = new MapWriter(dp);
      expect(() => w.setBackend(16, 1, 1, 6, 1, 0, 1)).toThrow(/backends: index 16 is outside 0..15/);
      expect(() => dp.maps.backends.set(16, {})).toThrow(/backends: index 16 is outside 0..15/);
    });
  });

  describe(`${build}: stale-flow cleanup (ctFlushStale)`, () => {
    const BE = ["10.244.1.10", "10.244.1.11", "10.244.1.12"];
    const ep = (ip: string) => ({ ip, port: 5353, nodeName: "node-b" });
    const dns = (ips: string[], proto: "UDP" | "TCP" = "UDP") =>
      svc({ key: `default/dns:dns/${proto}`, protocol: proto, port: 53, endpoints: ips.map(ep) });
    const flows = (dp: Dataplane, n: number, proto: "UDP" | "TCP" = "UDP") => {
      for (let i = 0; i < n; i++) dp.process([{ data: buildFrame({ src: CLIENT_POD, dst: VIP, proto, sport: 30000 + i, dport: 53, flags: "S", payload: proto === "UDP" ? "q" : undefined }) }], 1000);
    };
    const toBackend = (dp: Dataplane) => {
      const by = new Map<string, number>();
      for (const [, v] of dp.maps.conntrack.entries()) if (!(v.flags & 1)) by.set(v.peerAddrBe, (by.get(v.peerAddrBe) ?? 0) + 1);
      return by;
    };

    it("removes the UDP flows of departed backends only, in bounded steps, after the maps changed", () => {
      const { dp, prog } = node({ build });
      prog.sync([dns(BE)]);
      flows(dp, 60);
      const before = toBackend(dp);
      expect([...before.values()].reduce((a, b) => a + b, 0)).toBe(60);
      // Deferred: the maps change, the flows stay until the cleanup runs.
      prog.upsert(dns([BE[0]!]), { deferFlush: true });
      expect(prog.flushPending).toBe(true);
      expect(dp.maps.conntrack.count).toBe(120);
      let removed = 0;
      let steps = 0;
      while (prog.flushPending) {
        removed += prog.flushStale(4096);
        steps++;
      }
      const cap = dp.x.mapCapacity(dp.maps.conntrack.id);
      expect(steps).toBe(Math.ceil(cap / 4096));
      expect(removed).toBe(before.get(BE[1]!)! + before.get(BE[2]!)!);
      expect([...toBackend(dp).keys()]).toEqual([BE[0]]);
      expect(dp.maps.conntrack.count).toBe(2 * before.get(BE[0]!)!);
    });

    it("leaves TCP flows (re-selected by the dataplane) and needs no scan for a TCP backend", () => {
      const { dp, prog } = node({ build });
      prog.sync([dns(BE, "TCP")]);
      flows(dp, 30, "TCP");
      prog.upsert(dns([BE[0]!], "TCP"), { deferFlush: true });
      expect(prog.flushPending).toBe(false);
      expect(dp.maps.conntrack.count).toBe(60);
    });

    it("a backend that left one service but serves another keeps its flows", () => {
      const { dp, prog } = node({ build });
      const other = svc({ key: "default/other:dns/UDP", protocol: "UDP", port: 53, clusterIPs: ["10.96.0.11"], endpoints: BE.map(ep) });
      prog.sync([dns(BE), other]);
      flows(dp, 40);
      const res = prog.sync([dns([BE[0]!]), other]);
      expect(res.flushedFlows).toBe(0);
      expect(dp.maps.conntrack.count).toBe(80);
    });

    it("does not hand a departed backend's id to a new one before its flows are gone", () => {
      const { dp, prog } = node({ build, maxEntries: { backends: 4 } }); // ids 1..3
      prog.sync([dns([BE[0]!, BE[1]!, BE[2]!])]);
      flows(dp, 30);
      const gone = prog.backendId(BE[1]!, 5353, "UDP")!;
      prog.upsert(dns([BE[0]!, BE[2]!]), { deferFlush: true });
      // Every id is taken or waits for the cleanup: none for a new backend yet.
      expect(() => prog.upsert(dns([BE[0]!, BE[2]!, "10.244.1.20"]), { deferFlush: true })).toThrow(/no free backend id/);
      while (prog.flushPending) prog.flushStale();
      expect(toBackend(dp).has(BE[1]!)).toBe(false);
      prog.upsert(dns([BE[0]!, BE[2]!, "10.244.1.20"]), { deferFlush: true });
      expect(prog.backendId("10.244.1.20", 5353, "UDP")).toBe(gone);
    });
  });
}
