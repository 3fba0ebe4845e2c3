// The side-by-side benchmark's kube-proxy-style rule sets (bench/sidebyside/iptables.ts,
// nftables.ts) are loadable by the real tools: each is checked (iptables-restore --test,
// nft -c), loaded, and then changed by one endpoint as a partial sync would, inside a throwaway
// namespace `tvsb-<pid>-t…` that the test creates and removes. Skips, naming the reason, without
// root or without the iptables / nftables packages.
import { afterAll, describe, expect, it } from "vitest";
import { buildModel, endpointChange, manifestList, probeOf, type ServiceModel } from "../../bench/sidebyside/model.js";
import * as ipt from "../../bench/sidebyside/iptables.js";
import * as nft from "../../bench/sidebyside/nftables.js";
import { cleanup, createNs, deleteNs, hasCommand, netnsUnavailable, nsRun } from "../../bench/sidebyside/netns.js";

const BACKENDS = ["10.244.2.10", "10.244.2.11"];

afterAll(() => cleanup());

function changed(model: ServiceModel[], k: number): { model: ServiceModel[]; before: ServiceModel } {
  const before = model[0]!;
  const next = [...model];
  next[0] = endpointChange(before, k);
  return { model: next, before };
}

describe("side-by-side model", () => {
  it("puts the probe last with three ports on the backends, fillers with two endpoints, some with affinity", () => {
    const m = buildModel(30, BACKENDS);
    expect(m).toHaveLength(30);
    const p = probeOf(m);
    expect(p.name).toBe("probe");
    expect(p.ports.map((x) => `${x.protocol}/${x.port}`)).toEqual(["TCP/5201", "UDP/9000", "TCP/8080"]);
    expect(p.ports.every((x) => x.endpoints.join() === BACKENDS.join())).toBe(true);
    expect(m.filter((s) => s.affinity).map((s) => s.name)).toEqual(["svc-5", "svc-15", "svc-25"]);
    expect(new Set(m.map((s) => s.clusterIP)).size).toBe(30);
    expect(m[0]!.clusterIP).toBe("10.96.1.1");
    const c = endpointChange(m[0]!, 0);
    expect(c.ports[0]!.endpoints[0]).toBe(m[0]!.ports[0]!.endpoints[0]);
    expect(c.ports[0]!.endpoints[1]).not.toBe(m[0]!.ports[0]!.endpoints[1]);
    const list = JSON.parse(manifestList(m)) as { kind: string; items: Array<{ kind: string }> };
    expect(list.kind).toBe("List");
    expect(list.items.filter((o) => o.kind === "Service")).toHaveLength(30);
    expect(list.items.filter((o) => o.kind === "EndpointSlice")).toHaveLength(30);
  });

  it("names chains like kube-proxy: KUBE-SVC-/KUBE-SEP- + 16 base32 characters, stable", () => {
    const m = buildModel(3, BACKENDS);
    const c = ipt.svcChain(m[0]!, m[0]!.ports[0]!);
    expect(c).toMatch(/^KUBE-SVC-[A-Z2-7]{16}$/);
    expect(c).toBe(ipt.svcChain(buildModel(3, BACKENDS)[0]!, m[0]!.ports[0]!));
    expect(ipt.sepChain(m[0]!, m[0]!.ports[0]!, "10.1.1.1")).not.toBe(ipt.sepChain(m[0]!, m[0]!.ports[0]!, "10.1.1.2"));
    expect(nft.serviceChain(m[0]!, m[0]!.ports[0]!)).toMatch(/^service-[A-Z2-7]{8}-default\/svc-0\/tcp\/http$/);
  });

  it("iptables: one KUBE-SERVICES rule per service port, statistic for all but the last endpoint, recent for affinity", () => {
    const m = buildModel(20, BACKENDS);
    const t = ipt.fullRestore(m);
    expect(t.match(/^-A KUBE-SERVICES -d /gm)).toHaveLength(19 + 3);
    expect(t.match(/--mode random --probability 0\.5000000000/g)).toHaveLength(19 + 3);
    expect(t.match(/--rcheck --seconds 10800 --reap/g)).toHaveLength(2 * 2); // svc-5, svc-15
    expect(t.match(/-m recent --set/g)).toHaveLength(2 * 2);
    // The probe's connect port is the last service rule of KUBE-SERVICES, before the NodePort jump.
    const svcRules = t.split("\n").filter((l) => l.startsWith("-A KUBE-SERVICES"));
    expect(svcRules[svcRules.length - 2]).toContain("--dport 8080");
    expect(svcRules[svcRules.length - 1]).toContain("KUBE-NODEPORTS");
    const { model, before } = changed(m, 0);
    const ch = ipt.changeRestore(model, 0, before);
    expect(ch.match(/^-A KUBE-SERVICES -d /gm)).toHaveLength(22); // top-level chain in full
    expect(ch).toContain(`-X ${ipt.sepChain(before, before.ports[0]!, before.ports[0]!.endpoints[1]!)}`);
    expect(ch).toContain(ipt.sepChain(model[0]!, model[0]!.ports[0]!, model[0]!.ports[0]!.endpoints[1]!));
  });

  it("nftables: one service-ips element per service port, numgen vmap per service, affinity sets", () => {
    const m = buildModel(20, BACKENDS);
    const t = nft.fullRestore(m);
    expect(t.match(/ : goto service-/g)).toHaveLength(22);
    expect(t.match(/numgen random mod 2 vmap/g)).toHaveLength(22);
    expect(t.match(/flags dynamic,timeout/g)).toHaveLength(4);
  });
});

const why = netnsUnavailable();

const iptVariants = ["iptables-legacy", "iptables-nft"].filter((v) => hasCommand(`${v}-restore`));
if (iptVariants.length === 0 && hasCommand("iptables-restore")) iptVariants.push("iptables");

describe("iptables-restore loads the rule sets", () => {
  const skip = why ?? (iptVariants.length ? null : "iptables is not installed (apt package iptables)");
  if (skip) {
    it.skip(`skipped: ${skip}`, () => undefined);
    return;
  }
  for (const v of iptVariants) {
    it(`${v}: full set checks and loads, one endpoint change applies as a partial sync`, () => {
      const ns = createNs(v === "iptables-legacy" ? "tipl" : v === "iptables-nft" ? "tipn" : "tipt");
      try {
        const m = buildModel(50, BACKENDS);
        const full = ipt.fullRestore(m);
        const test = nsRun(ns, [`${v}-restore`, "-w", "--noflush", "--test"], { input: full });
        expect(test.stderr).toBe("");
        expect(test.status).toBe(0);
        const load = nsRun(ns, [`${v}-restore`, "-w", "--noflush"], { input: full });
        expect(load.stderr).toBe("");
        expect(load.status).toBe(0);
        const saved = nsRun(ns, [`${v}-save`, "-t", "nat"]).stdout;
        expect(saved.match(/^-A KUBE-SERVICES -d /gm)).toHaveLength(49 + 3);
        expect(saved.match(/^:KUBE-SEP-/gm)).toHaveLength(49 * 2 + 3 * 2);

        let cur = m;
        for (let k = 0; k < 2; k++) {
          const { model, before } = changed(cur, k);
          const r = nsRun(ns, [`${v}-restore`, "-w", "--noflush"], { input: ipt.changeRestore(model, 0, before) });
          expect(r.stderr).toBe("");
          expect(r.status).toBe(0);
          const after = nsRun(ns, [`${v}-save`, "-t", "nat"]).stdout;
          const p = model[0]!.ports[0]!;
          expect(after).toContain(`-j DNAT --to-destination ${p.endpoints[1]}:8080`);
          expect(after).not.toContain(`--to-destination ${before.ports[0]!.endpoints[1]}:8080`);
          expect(after).not.toContain(`:${ipt.sepChain(before, before.ports[0]!, before.ports[0]!.endpoints[1]!)} `);
          expect(after.match(/^:KUBE-SEP-/gm)).toHaveLength(49 * 2 + 3 * 2);
          expect(after.match(/^-A KUBE-SERVICES -d /gm)).toHaveLength(52);
          cur = model;
        }
        // An affinity Service changes too (its recent rules follow the new endpoint).
        const i5 = cur.findIndex((s) => s.name === "svc-5");
        const b5 = cur[i5]!;
        const next = [...cur];
        next[i5] = endpointChange(b5, 7);
        const r = nsRun(ns, [`${v}-restore`, "-w", "--noflush"], { input: ipt.changeRestore(next, i5, b5) });
        expect(r.stderr).toBe("");
        expect(r.status).toBe(0);
      } finally {
        deleteNs(ns);
      }
    });
  }
});

describe("nft loads the rule sets", () => {
  const skip = why ?? (hasCommand("nft") ? null : "nft is not installed (apt package nftables)");
  if (skip) {
    it.skip(`skipped: ${skip}`, () => undefined);
    return;
  }
  it("full set checks (nft -c) and loads, one endpoint change applies as one transaction", () => {
    const ns = createNs("tnft");
    try {
      const m = buildModel(50, BACKENDS);
      const full = nft.fullRestore(m);
      const check = nsRun(ns, ["nft", "-c", "-f", "-"], { input: full });
      expect(check.stderr).toBe("");
      expect(check.status).toBe(0);
      const load = nsRun(ns, ["nft", "-f", "-"], { input: full });
      expect(load.stderr).toBe("");
      expect(load.status).toBe(0);
      const listed = nsRun(ns, ["nft", "list", "map", "ip", "kube-proxy", "service-ips"]).stdout;
      expect(listed.match(/: goto service-/g)).toHaveLength(52);

      let cur = m;
      let k = 0;
      for (const idx of [0, 5, 0]) { // svc-5 has affinity
        const before = cur[idx]!;
        const next = [...cur];
        next[idx] = endpointChange(before, k++);
        const r = nsRun(ns, ["nft", "-f", "-"], { input: nft.changeRestore(next, idx, before) });
        expect(r.stderr).toBe("");
        expect(r.status).toBe(0);
        const p = next[idx]!.ports[0]!;
        const table = nsRun(ns, ["nft", "list", "table", "ip", "kube-proxy"]).stdout;
        expect(table).toContain(`chain ${nft.endpointChain(next[idx]!, p, p.endpoints[1]!)} {`);
        expect(table).not.toContain(`chain ${nft.endpointChain(before, before.ports[0]!, before.ports[0]!.endpoints[1]!)} {`);
        expect(table).toContain(`dnat to ${p.endpoints[1]}:8080`);
        cur = next;
      }
    } finally {
      deleteNs(ns);
    }
  });
});
