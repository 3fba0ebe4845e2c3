// The DNS index kept up to date one object at a time must always equal a fresh full build from
// the same objects. Random sequences of Service and EndpointSlice events over a small universe
// (so names collide on purpose: one IP as a clusterIP of one Service and an endpoint of another,
// one endpoint hostname in several slices of a Service, slices moving between Services) are
// applied to the incremental index; after every step its whole content is compared with a full
// build (from the objects in two different orders), and, through a running DnsServer, every
// answer (served from the answer cache) with the answer computed from the full build.
import { describe, expect, it } from "vitest";
import * as dnsPacket from "dns-packet";
import type { Answer, Question } from "dns-packet";
import { DnsServer, ZoneIndex, parseSimpleQuery, reverseName, type LocalAnswer } from "../../src/discovery/dns.js";
import { seededRandom, type RandomSource } from "../../src/store/allocators.js";
import { objKey } from "../../src/agent/informer.js";
import type { StoredObject } from "../../src/store/db.js";
import { MemorySource } from "../helpers/memsource.js";

const Z = "cluster.local";

class World {
  readonly services = new Map<string, StoredObject>();
  readonly slices = new Map<string, StoredObject>();
  constructor(private readonly r: RandomSource) {}

  private pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.r() * xs.length)]!;
  }
  private chance(p: number): boolean {
    return this.r() < p;
  }

  // a small pool, shared by clusterIPs and endpoints, so reverse names collide
  private ip(): string {
    return this.chance(0.1) ? this.pick(["fd00::1", "fd00::2", "fd00::a"]) : `10.0.0.${1 + Math.floor(this.r() * 12)}`;
  }

  service(): StoredObject {
    const name = this.pick(["a", "b", "c", "web", "db"]);
    // a missing namespace means "default", like an explicit one: two objects, one name
    const ns = this.pick(["ns1", "ns2", "default", undefined]);
    const ports = Array.from({ length: Math.floor(this.r() * 3) }, (_, i) => ({
      ...(this.chance(0.7) ? { name: this.pick(["http", "grpc", "dns"]) } : {}),
      port: 80 + i,
      ...(this.chance(0.3) ? { protocol: this.pick(["TCP", "UDP", "SCTP"]) } : {}),
    }));
    const kind = this.r();
    let spec: Record<string, unknown>;
    if (kind < 0.2) spec = { type: "ExternalName", externalName: this.pick(["x.example.com", "y.example.com.", "Z.Example.COM", ""]) };
    else if (kind < 0.55) spec = { type: "ClusterIP", clusterIP: "None", ports, ...(this.chance(0.3) ? { publishNotReadyAddresses: true } : {}) };
    else if (kind < 0.6) spec = { type: "ClusterIP", ports }; // not allocated yet
    else {
      const ip = this.ip();
      spec = { type: this.pick(["ClusterIP", "NodePort"]), clusterIP: ip, ...(this.chance(0.3) ? { clusterIPs: [ip, this.ip()] } : {}), ports };
    }
    return { apiVersion: "v1", kind: "Service", metadata: { name, ...(ns ? { namespace: ns } : {}) }, spec } as StoredObject;
  }

  slice(): StoredObject {
    const svc = this.pick(["a", "b", "c", "web", "db"]);
    const ns = this.pick(["ns1", "ns2", "default"]);
    const endpoints = Array.from({ length: Math.floor(this.r() * 4) }, () => ({
      addresses: this.chance(0.1) ? ["not-an-ip", this.ip()] : [this.ip()],
      ...(this.chance(0.5) ? { hostname: this.pick(["h0", "h1", "H2"]) } : {}),
      ...(this.chance(0.8) ? { conditions: { ready: this.chance(0.75) } } : {}),
    }));
    const ports = Array.from({ length: Math.floor(this.r() * 3) }, () => ({
      ...(this.chance(0.8) ? { name: this.pick(["http", "grpc", "dns", ""]) } : {}),
      ...(this.chance(0.95) ? { port: 8000 + Math.floor(this.r() * 3) } : {}),
      ...(this.chance(0.3) ? { protocol: this.pick(["TCP", "UDP"]) } : {}),
    }));
    return {
      apiVersion: "discovery.k8s.io/v1",
      kind: "EndpointSlice",
      metadata: {
        // the slice's name does not follow its Service: a relabelled slice moves endpoints between Services
        name: `s${Math.floor(this.r() * 6)}`,
        namespace: ns,
        ...(this.chance(0.92) ? { labels: { "kubernetes.io/service-name": svc } } : {}),
      },
      addressType: this.chance(0.9) ? "IPv4" : "FQDN",
      endpoints,
      ports,
    } as unknown as StoredObject;
  }

  /** One random event: [kind, old, cur]. */
  step(): ["Service" | "EndpointSlice", StoredObject | undefined, StoredObject | undefined] {
    const isSvc = this.chance(0.45);
    const map = isSvc ? this.services : this.slices;
    if (map.size > 0 && this.chance(0.25)) {
      const key = this.pick([...map.keys()]);
      const old = map.get(key)!;
      map.delete(key);
      return [isSvc ? "Service" : "EndpointSlice", old, undefined];
    }
    const cur = isSvc ? this.service() : this.slice();
    const key = objKey(cur);
    const old = map.get(key);
    map.set(key, cur);
    return [isSvc ? "Service" : "EndpointSlice", old, cur];
  }
}

/** The whole content of an index, in a canonical order. */
function dump(idx: ZoneIndex): unknown {
  const names = [...idx.names].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const ptr = [...idx.ptr].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return { names: names.map(([n, node]) => [n, { ...node }]), ptr };
}

function shuffled<T>(xs: T[], r: RandomSource): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

describe("incremental DNS index", () => {
  it("equals a full build after every step of random Service/EndpointSlice sequences", () => {
    const kinds = { nodes: 0, ptr: 0, cname: 0, srv: 0, headlessHost: 0 };
    for (let seed = 1; seed <= 10; seed++) {
      const r = seededRandom(seed);
      const w = new World(r);
      const idx = new ZoneIndex(Z);
      for (let step = 0; step < 300; step++) {
        const [kind, old, cur] = w.step();
        if (kind === "Service") idx.applyService(old, cur);
        else idx.applySlice(old, cur);
        const full = new ZoneIndex(Z, w.services.values(), w.slices.values());
        const other = new ZoneIndex(Z, shuffled([...w.services.values()], r), shuffled([...w.slices.values()], r));
        const got = dump(idx);
        expect(got, `seed ${seed} step ${step}`).toEqual(dump(full));
        expect(got, `seed ${seed} step ${step} (other order)`).toEqual(dump(other));
        kinds.nodes += idx.names.size;
        kinds.ptr += idx.ptr.size;
        for (const [n, node] of idx.names) {
          if (node.cname) kinds.cname++;
          if (node.srv.length > 0) kinds.srv++;
          if (/^h[0-9]\./.test(n)) kinds.headlessHost++;
        }
      }
      // everything removed: back to the apex and dns-version
      for (const o of [...w.services.values()]) idx.applyService(o, undefined);
      for (const o of [...w.slices.values()]) idx.applySlice(o, undefined);
      expect([...idx.names.keys()].sort()).toEqual([Z, `dns-version.${Z}`]);
      expect(idx.ptr.size).toBe(0);
    }
    // the random universe did exercise every kind of record
    expect(kinds.ptr).toBeGreaterThan(1000);
    expect(kinds.cname).toBeGreaterThan(100);
    expect(kinds.srv).toBeGreaterThan(100);
    expect(kinds.headlessHost).toBeGreaterThan(100);
  });

  it("a reverse name claimed by several owners: the clusterIP wins, then the smallest name, whatever the order", () => {
    const svc = (name: string, ip: string): StoredObject => ({ apiVersion: "v1", kind: "Service", metadata: { name, namespace: "n" }, spec: { clusterIP: ip, ports: [] } }) as StoredObject;
    const hl = (name: string): StoredObject => ({ apiVersion: "v1", kind: "Service", metadata: { name, namespace: "n" }, spec: { clusterIP: "None", ports: [] } }) as StoredObject;
    const sl = (name: string, svcName: string, ip: string, hostname?: string): StoredObject =>
      ({ apiVersion: "discovery.k8s.io/v1", kind: "EndpointSlice", metadata: { name, namespace: "n", labels: { "kubernetes.io/service-name": svcName } }, addressType: "IPv4", endpoints: [{ addresses: [ip], ...(hostname ? { hostname } : {}) }] }) as unknown as StoredObject;
    const rev = reverseName("10.1.1.1");
    const idx = new ZoneIndex(Z, [hl("zz")], [sl("zz-1", "zz", "10.1.1.1", "p")]);
    expect(idx.ptr.get(rev)).toBe(`p.zz.n.svc.${Z}`);
    idx.applyService(undefined, svc("yy", "10.1.1.1"));
    expect(idx.ptr.get(rev)).toBe(`yy.n.svc.${Z}`);
    idx.applyService(undefined, hl("aa"));
    idx.applySlice(undefined, sl("aa-1", "aa", "10.1.1.1"));
    expect(idx.ptr.get(rev)).toBe(`yy.n.svc.${Z}`);
    idx.applyService(svc("yy", "10.1.1.1"), undefined);
    expect(idx.ptr.get(rev)).toBe(`10-1-1-1.aa.n.svc.${Z}`);
    // one hostname in two slices of one Service: one name with both addresses
    idx.applySlice(undefined, sl("zz-2", "zz", "10.1.1.2", "p"));
    expect(idx.names.get(`p.zz.n.svc.${Z}`)?.a).toEqual(["10.1.1.1", "10.1.1.2"]);
    idx.applySlice(sl("zz-1", "zz", "10.1.1.1", "p"), undefined);
    expect(idx.names.get(`p.zz.n.svc.${Z}`)?.a).toEqual(["10.1.1.2"]);
    expect(idx.ptr.get(rev)).toBe(`10-1-1-1.aa.n.svc.${Z}`);
  });
});

// ------------------------------------------------------------------ through the server and its cache

type Norm = { rcode: string; answers: string[]; authorities: string[]; additionals: string[] };

const rr = (a: Answer): string => {
  const d = (a as { data?: unknown }).data;
  // TXT strings come back from the wire as Buffers
  return `${a.name} ${a.type} ${JSON.stringify(Array.isArray(d) ? d.map((x) => String(x)) : d)}`;
};

function normLocal(l: LocalAnswer): Norm {
  return { rcode: l.rcode, answers: l.answers.map(rr), authorities: l.authorities.map(rr), additionals: l.additionals.map(rr) };
}

function normWire(b: Buffer): Norm {
  const p = dnsPacket.decode(b);
  const strip = (xs: Answer[] | undefined) => (xs ?? []).filter((a) => a.type !== "OPT").map(rr);
  return { rcode: (p as { rcode?: string }).rcode ?? "", answers: strip(p.answers), authorities: strip(p.authorities), additionals: strip(p.additionals) };
}

describe("DnsServer answers (through the answer cache) follow every change", () => {
  it.each([
    ["the default cache", undefined, 150, 10_000],
    ["a cache of 7 answers (evictions all the time)", 7, 60, 0],
  ])("equal the answers of a full build after every random step, with %s", async (_what, answerCache, steps, minHits) => {
    const src = new MemorySource();
    const server = new DnsServer({ source: src, port: 0, address: "127.0.0.1", ...(answerCache !== undefined ? { answerCache } : {}) });
    await server.start();
    try {
      const r = seededRandom(99);
      const w = new World(r);
      let id = 1;
      let hits = 0;
      const asked = new Set<string>();
      for (let step = 0; step < steps; step++) {
        const [, old, cur] = w.step();
        if (cur) src.put(cur);
        else src.remove(old!);
        const full = new ZoneIndex(Z, w.services.values(), w.slices.values());
        // every name that exists now or existed before, a few that never do, every reverse name
        for (const n of full.names.keys()) asked.add(n);
        for (const n of full.ptr.keys()) asked.add(n);
        const questions: Question[] = [];
        for (const n of [...asked, `nope.ns1.svc.${Z}`, `h9.a.ns1.svc.${Z}`]) {
          if (n.endsWith(".arpa")) questions.push({ type: "PTR", name: n, class: "IN" });
          else for (const type of ["A", "AAAA", "SRV", "CNAME", "TXT"] as const) questions.push({ type, name: n, class: "IN" });
        }
        // a mixed-case spelling is its own cache entry with its own echo of the name
        questions.push({ type: "A", name: `A.NS1.svc.${Z}`, class: "IN" });
        for (const q of questions) {
          const want = server.answer(q, full);
          const msg = dnsPacket.encode({ type: "query", id: id++ & 0xffff, flags: dnsPacket.RECURSION_DESIRED, questions: [q] });
          if (want === "forward") continue;
          const before = server.cachedAnswers;
          expect(parseSimpleQuery(msg)).not.toBeNull();
          const resp = (await server.handle(msg, "tcp"))!;
          if (server.cachedAnswers === before) hits++;
          expect(resp.readUInt16BE(0), `id ${q.name}`).toBe(msg.readUInt16BE(0));
          expect(normWire(resp), `step ${step}: ${q.type} ${q.name}`).toEqual(normLocal(want));
        }
      }
      expect(hits).toBeGreaterThanOrEqual(minHits); // with the default cache, most questions came from it
      if (answerCache !== undefined) expect(server.cachedAnswers).toBeLessThanOrEqual(answerCache);
    } finally {
      await server.stop();
    }
  });

  it("a cached answer keeps RD, EDNS, case and truncation per query", async () => {
    const src = new MemorySource();
    src.put({ apiVersion: "v1", kind: "Service", metadata: { name: "big", namespace: "n" }, spec: { clusterIP: "None", ports: [] } } as StoredObject);
    src.put({
      apiVersion: "discovery.k8s.io/v1",
      kind: "EndpointSlice",
      metadata: { name: "big-1", namespace: "n", labels: { "kubernetes.io/service-name": "big" } },
      addressType: "IPv4",
      endpoints: Array.from({ length: 60 }, (_, i) => ({ addresses: [`10.9.0.${i + 1}`] })),
    } as unknown as StoredObject);
    const server = new DnsServer({ source: src, port: 0 });
    await server.start();
    try {
      const q = (name: string, flags: number, udpPayloadSize?: number): Buffer =>
        dnsPacket.encode({
          type: "query",
          id: 0x1234,
          flags,
          questions: [{ type: "A", name }],
          additionals: udpPayloadSize ? [{ type: "OPT", name: ".", udpPayloadSize, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }] : [],
        } as dnsPacket.Packet);
      for (let round = 0; round < 2; round++) {
        const plain = dnsPacket.decode((await server.handle(q(`big.n.svc.${Z}`, 0), "udp"))!);
        expect([plain.flag_tc, plain.flag_rd, plain.answers?.length, plain.additionals?.length]).toEqual([true, false, 0, 0]);
        const edns = dnsPacket.decode((await server.handle(q(`big.n.svc.${Z}`, dnsPacket.RECURSION_DESIRED, 4096), "udp"))!);
        expect([edns.flag_tc, edns.flag_rd, edns.answers?.length, edns.additionals?.[0]?.type]).toEqual([false, true, 60, "OPT"]);
        const tcp = dnsPacket.decode((await server.handle(q(`big.n.svc.${Z}`, 0), "tcp"))!);
        expect([tcp.flag_tc, tcp.answers?.length]).toEqual([false, 60]);
        const upper = dnsPacket.decode((await server.handle(q(`BIG.n.svc.${Z}`, 0, 4096), "udp"))!);
        expect([upper.questions?.[0]?.name, upper.answers?.[0]?.name]).toEqual([`BIG.n.svc.${Z}`, `BIG.n.svc.${Z}`]);
      }
      expect(server.cachedAnswers).toBe(3); // plain (udp and tcp share it), with EDNS and RD, upper case
      expect(server.metrics().truncated).toBe(2);
    } finally {
      await server.stop();
    }
  });
});
