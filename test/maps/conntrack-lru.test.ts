// Conntrack under LRU pressure: a new flow is tracked in both directions or dropped (fail
// closed), evictions release what the evicted flow held (backend connection counts, SNAT
// ports), and after everything expires the counters are back to zero.

import { describe, it, expect } from "vitest";
import { node, svc, CLIENT_POD, EXTERNAL, VIP, NODE_IP } from "../helpers/node.js";
import { buildFrame } from "../../src/host/frames.js";
import type { Dataplane } from "../../src/maps/dataplane.js";

const BE = "10.244.1.10";
const SMALL = { snat: 256, affinity: 256, maglev: 1024, svc_slots: 256, frontends: 256, addrs: 256, services: 64, backends: 64, rev_nat: 64, lpm_v4: 64, lpm_masks: 64, stats_service: 64, stats_backend: 64 };

function setup(build: "release" | "debug", conntrack: number): Dataplane {
  const { dp, prog } = node({ build, maxEntries: { ...SMALL, conntrack } });
  prog.sync([
    svc({ algorithm: "lc", nodePort: 30080, endpoints: [{ ip: BE, port: 8080, nodeName: "node-b" }] }),
  ]);
  return dp;
}

function tuplesOf(dp: Dataplane): string[] {
  return dp.maps.conntrack.entries().map(([k, v]) => `${k.saddrBe}:${k.sportBe}>${k.daddrBe}:${k.dportBe}/${v.flags & 1 ? "reply" : "fwd"}`).sort();
}

for (const b of ["release", "debug"] as const) {
  describe(`${b}: conntrack LRU`, () => {
    for (const max of [2, 3, 4, 5, 8, 16]) {
      it(`max ${max}: every translated new flow holds both entries; counts return to 0 after expiry`, () => {
        const dp = setup(b, max);
        for (let i = 0; i < 60; i++) {
          // Alternate direct pod traffic (no SNAT) and external NodePort traffic (SNAT).
          const ext = i % 2 === 1;
          const f = buildFrame({ src: ext ? EXTERNAL : CLIENT_POD, dst: ext ? NODE_IP : VIP, proto: "TCP", sport: 20000 + i, dport: ext ? 30080 : 80, flags: "S" });
          const [r] = dp.process([{ data: f }], 1000 + i);
          expect(r!.verdict, `flow ${i}`).toBe("TX");
          const t = tuplesOf(dp);
          expect(t.filter((s) => s.includes(`:${20000 + i}>`)).length, `flow ${i} forward entry: ${t}`).toBe(1);
          expect(dp.maps.conntrack.count).toBeLessThanOrEqual(max);
          // Entries come in pairs: an evicted entry takes its peer along.
          expect(dp.maps.conntrack.count % 2).toBe(0);
          const active = dp.maps.backends.get(1).activeConns;
          expect(active, `activeConns = live forward entries`).toBe(t.filter((s) => s.endsWith("/fwd")).length);
          expect(dp.maps.snat.count).toBe(t.filter((s) => s.endsWith("/fwd") && s.startsWith(EXTERNAL)).length);
        }
        dp.sweepAll(1_000_000);
        expect(dp.maps.conntrack.count).toBe(0);
        expect(dp.maps.backends.get(1).activeConns).toBe(0);
        expect(dp.maps.snat.count).toBe(0);
      });
    }

    // BUG (assembly/pipeline.ts newFlow + assembly/conntrack.ts ctInsert): with conntrack max
    // entries 1 the reply-entry insert evicts the forward entry just created, and the flow is
    // still translated. Repro: Dataplane({maxEntries: {conntrack: 1}}), ClusterIP 10.96.0.10:80
    // → 10.244.1.10:8080 (lc), frame = buildFrame({src: "10.244.0.5", dst: "10.96.0.10",
    // proto: "TCP", sport: 40000, dport: 80, flags: "S"}) processed twice at t=1000.
    // Expected: fail closed — DROP ct_full (the table cannot hold both directions), or a TX
    // with both entries present; activeConns 0 once no flow exists.
    // Got: 1st SYN → TX new_flow with only the reply entry in conntrack (forward evicted,
    // its SNAT record released); 2nd identical SYN → DROP ct_full (the insert evicts the
    // orphan reply entry, whose peer removal deletes the new forward entry); backend
    // activeConns stays 1 after sweepAll with conntrack empty (leaked count, skews lc/sed/nq).
    // Dataplane accepts any maxEntries ≥ 1, so this configuration is reachable.
    it("max 1 is refused with an error naming the limit (a flow needs two entries)", () => {
      expect(() => setup(b, 1)).toThrow(/conntrack must be at least 2/);
    });
  });
}

describe("reply-tuple clash: two frontends, one backend, one client address:port, no SNAT", () => {
  const BE2 = { ip: "10.244.1.10", port: 8080, nodeName: "node-b" };
  function twoServices(b: "release" | "debug"): Dataplane {
    const { dp, prog } = node({ build: b, maxEntries: { ...SMALL, conntrack: 256 } });
    prog.sync([
      svc({ key: "a", clusterIPs: ["10.96.0.10"], endpoints: [BE2] }),
      svc({ key: "b", clusterIPs: ["10.96.0.20"], endpoints: [BE2] }),
    ]);
    return dp;
  }
  const synA = buildFrame({ src: CLIENT_POD, dst: "10.96.0.10", proto: "TCP", sport: 40000, dport: 80, flags: "S" });
  const synB = buildFrame({ src: CLIENT_POD, dst: "10.96.0.20", proto: "TCP", sport: 40000, dport: 80, flags: "S" });

  for (const b of ["release", "debug"] as const) {
    // BUG (assembly/pipeline.ts newFlow, step 8): the reply entry is inserted with hashInsert
    // without checking that the reply tuple is free. Repro: ClusterIP services 10.96.0.10:80
    // and 10.96.0.20:80 with the same endpoint 10.244.1.10:8080 (remote); from 10.244.0.5 (a
    // local pod: no SNAT) SYN sport 40000 to 10.96.0.10:80, then SYN sport 40000 to
    // 10.96.0.20:80, t=1000. Expected: the conntrack table never holds two entries with one
    // key — the second flow is dropped, or masqueraded to a free port (Linux NAT resolves
    // such clashes by remapping the source port). Got: both TX new_flow, translated to the
    // identical packet 10.244.0.5:40000 > 10.244.1.10:8080; conntrack holds two entries keyed
    // 10.244.1.10:8080>10.244.0.5:40000/6 (reply → 10.96.0.10:80 and → 10.96.0.20:80); the
    // backend's SYN-ACK is reverse-NATed to 10.96.0.10 only. Under load the shadowed entry is
    // orphaned and its LRU eviction deletes an unrelated new flow (spurious DROP ct_full).
    it(`${b}: no duplicate conntrack keys (regression)`, () => {
      const dp = twoServices(b);
      const [ra, rb] = dp.process([{ data: synA }, { data: synB }], 1000);
      expect(ra!.verdict).toBe("TX");
      const keys = tuplesOf(dp);
      expect(new Set(keys).size, keys.join(" ")).toBe(keys.length);
      if (rb!.verdict === "TX") expect(rb!.data).not.toEqual(ra!.data);
    });

  }
});

describe("reply-tuple clash: a node-originated connection from a port in the masquerade range", () => {
  for (const b of ["release", "debug"] as const) {
    // BUG (same root cause as above: assembly/pipeline.ts newFlow inserts the reply entry
    // without a clash check). With the default SNAT range 32768-65535 (overlapping Linux's
    // ephemeral ports 32768-60999) a connection from the node itself can use a port that is
    // already a masquerade port toward the same backend. Repro: ClusterIP 10.96.0.10:80 +
    // NodePort 30080 → 10.244.1.10:8080; SYN 203.0.113.7:40000 > 192.0.2.10:30080 (masqueraded
    // to 192.0.2.10:P); then SYN 192.0.2.10:P > 10.96.0.10:80 (the node is a local source: no
    // SNAT). Expected: no duplicate conntrack key. Got: TX new_flow for both with the identical
    // translated packet 192.0.2.10:P > 10.244.1.10:8080, and two entries keyed
    // 10.244.1.10:8080>192.0.2.10:P.
    it(`${b}: no duplicate conntrack keys (regression)`, () => {
      const { dp, prog } = node({ build: b, maxEntries: { ...SMALL, conntrack: 256 } });
      prog.sync([svc({ nodePort: 30080, endpoints: [{ ip: BE, port: 8080, nodeName: "node-b" }] })]);
      const [r1] = dp.process([{ data: buildFrame({ src: EXTERNAL, dst: NODE_IP, proto: "TCP", sport: 40000, dport: 30080, flags: "S" }) }], 1000);
      expect(r1!.verdict).toBe("TX");
      const natPort = (r1!.data[34]! << 8) | r1!.data[35]!;
      const [r2] = dp.process([{ data: buildFrame({ src: NODE_IP, dst: VIP, proto: "TCP", sport: natPort, dport: 80, flags: "S" }) }], 1000);
      const keys = tuplesOf(dp);
      expect(new Set(keys).size, keys.join(" ")).toBe(keys.length);
      if (r2!.verdict === "TX") expect(r2!.data.subarray(26, 38)).not.toEqual(r1!.data.subarray(26, 38));
    });
  }
});

describe("an eviction in the snat map must not disturb conntrack", () => {
  // Four SYNs from 203.0.113.7 to the NodePort (masqueraded), conntrack max 4, snat map max
  // 1, masquerade ports 50000-50007, dataplane seed 42:
  //   t=1000 sport 1001 S, t=1001 sport 1002 S, t=1002 sport 1003 S (conntrack full: flow 1001
  //   is evicted), t=1003 sport 1002 R; sweepAll(1020) (flow 1002 expires: conntrack 2 of 4);
  //   t=1021 sport 1001 S again.
  function run(b: "release" | "debug", snatMax: number): string[] {
    const { dp, prog } = node({ build: b, seed: 42, maxEntries: { ...SMALL, conntrack: 4, snat: snatMax }, config: { snatPortMin: 50000, snatPortMax: 50007 } });
    prog.sync([svc({ nodePort: 30080, endpoints: [{ ip: BE, port: 8080, nodeName: "node-b" }] })]);
    const out: string[] = [];
    const send = (sport: number, flags: string, t: number) => {
      const [r] = dp.process([{ data: buildFrame({ src: EXTERNAL, dst: NODE_IP, proto: "TCP", sport, dport: 30080, flags }) }], t);
      out.push(`${sport}${flags} ${r!.verdict} ${r!.reasonName}`);
    };
    send(1001, "S", 1000);
    send(1002, "S", 1001);
    send(1003, "S", 1002);
    send(1002, "R", 1003);
    dp.sweepAll(1020);
    expect(dp.maps.conntrack.count).toBe(2);
    send(1001, "S", 1021);
    return out;
  }

  for (const b of ["release", "debug"] as const) {
    it(`${b}: control — with a snat map that never fills, the reconnect is a new flow`, () => {
      expect(run(b, 64).at(-1)).toBe("1001S TX new_flow");
    });

    // BUG (assembly/nat/snat.ts snatAllocate → engine hashInsert on the LRU snat map sets the
    // global evictPending and fills evictedKey/evictedValue with the evicted SNAT record; it is
    // never cleared (unlike the affinity insert in pipeline.ts). The following ctInsert(ctk)
    // does not evict, sees evictPending, and ctAfterInsert() treats the SNAT record (its value
    // bytes 12..31 still those of the conntrack entry evicted at t=1002, here the reply entry
    // of flow 1001) as an evicted conntrack entry: its "peer" is 203.0.113.7:1001 >
    // 192.0.2.10:30080 — the forward entry just inserted — which is removed, so ctInsert fails.
    // Expected: the t=1021 SYN → TX new_flow (conntrack holds 2 of 4). Got: DROP ct_full.
    // With other seeds the stale "peer" is a live flow's reply entry instead, silently deleted
    // (fuzz: forward entries without reply entries; their replies are then not translated).
    it(`${b}: with a snat map of 1 entry, the reconnect is a new flow (regression: stale evictPending)`, () => {
      expect(run(b, 1).at(-1)).toBe("1001S TX new_flow");
    });

  }
});
