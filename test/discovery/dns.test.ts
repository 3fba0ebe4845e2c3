// The cluster DNS server against the real `dig` (dnsutils) on 127.0.0.1 and a random port: every
// record type and rcode of spec §7, UDP and TCP, EDNS0 buffer sizes and truncation with TCP
// fallback, forwarding, live changes, and malformed packets sent with dgram / net.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFile } from "node:child_process";
import dgram from "node:dgram";
import net from "node:net";
import { promisify } from "node:util";
import * as dnsPacket from "dns-packet";
import { DnsServer, parseHostPort, parseUpstreams, reverseName } from "../../src/discovery/dns.js";
import { MemorySource } from "../helpers/memsource.js";
import type { StoredObject } from "../../src/store/db.js";
import type { ObjectSource, ObjectList, WatchHandlers, WatchOptions, Watch } from "../../src/store/watch.js";

const run = promisify(execFile);

interface DigResult {
  status: string;
  flags: string[];
  answers: string[][];
  additionals: string[][];
  raw: string;
}

function section(raw: string, title: string): string[][] {
  const i = raw.indexOf(`;; ${title} SECTION:`);
  if (i < 0) return [];
  const rest = raw.slice(i).split("\n").slice(1);
  const out: string[][] = [];
  for (const l of rest) {
    if (l.trim() === "" || l.startsWith(";;")) break;
    out.push(l.trim().split(/\s+/));
  }
  return out;
}

async function dig(port: number, ...args: string[]): Promise<DigResult> {
  const { stdout } = await run("dig", ["@127.0.0.1", "-p", String(port), "+tries=1", "+time=3", ...args]);
  const status = /status: (\w+)/.exec(stdout)?.[1] ?? "NONE";
  const flags = (/;; flags: ([^;]*);/.exec(stdout)?.[1] ?? "").trim().split(/\s+/);
  return { status, flags, answers: section(stdout, "ANSWER"), additionals: section(stdout, "ADDITIONAL"), raw: stdout };
}

const data = (r: DigResult): string[] => r.answers.map((a) => a.slice(4).join(" ")).sort();

const svc = (name: string, ns: string, spec: Record<string, unknown>): StoredObject => ({ apiVersion: "v1", kind: "Service", metadata: { name, namespace: ns }, spec } as StoredObject);

const slice = (svcName: string, ns: string, endpoints: unknown[], ports: unknown[], suffix = "abc"): StoredObject =>
  ({
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: { name: `${svcName}-${suffix}`, namespace: ns, labels: { "kubernetes.io/service-name": svcName } },
    addressType: "IPv4",
    endpoints,
    ports,
  }) as unknown as StoredObject;

const Z = "cluster.local";
const src = new MemorySource();
let server: DnsServer;
let upstream: DnsServer;
let forwarder: DnsServer;
let deadForwarder: DnsServer;
let port: number;

beforeAll(async () => {
  src.put(svc("my-service", "my-ns", { type: "ClusterIP", clusterIP: "10.96.0.10", ports: [{ name: "http", port: 80, protocol: "TCP" }, { name: "dns", port: 53, protocol: "UDP" }] }));
  src.put(svc("empty", "my-ns", { type: "ClusterIP", clusterIP: "10.96.0.11", selector: { app: "nothing" }, ports: [{ port: 80 }] }));
  src.put(svc("dual", "my-ns", { type: "ClusterIP", clusterIP: "10.96.0.20", clusterIPs: ["10.96.0.20", "fd00::20"], ports: [{ port: 80 }] }));
  src.put(svc("db", "my-ns", { type: "ClusterIP", clusterIP: "None", selector: { app: "db" }, ports: [{ name: "pg", port: 5432, protocol: "TCP" }] }));
  src.put(
    slice(
      "db",
      "my-ns",
      [
        { addresses: ["10.244.0.5"], hostname: "db-0", conditions: { ready: true } },
        { addresses: ["10.244.0.6"], conditions: { ready: true } },
        { addresses: ["10.244.0.7"], conditions: { ready: false } },
      ],
      [{ name: "pg", port: 15432, protocol: "TCP" }],
    ),
  );
  src.put(svc("none-ready", "my-ns", { type: "ClusterIP", clusterIP: "None", selector: { app: "x" }, ports: [{ port: 80 }] }));
  src.put(slice("none-ready", "my-ns", [{ addresses: ["10.244.1.1"], conditions: { ready: false } }], [{ port: 80, protocol: "TCP" }]));
  src.put(svc("big", "my-ns", { type: "ClusterIP", clusterIP: "None", selector: { app: "big" }, ports: [{ port: 80 }] }));
  src.put(slice("big", "my-ns", Array.from({ length: 60 }, (_, i) => ({ addresses: [`10.245.0.${i + 1}`], conditions: { ready: true } })), [{ port: 80, protocol: "TCP" }]));
  src.put(svc("ext", "my-ns", { type: "ExternalName", externalName: "example.com" }));
  src.put(svc("switch", "my-ns", { type: "ExternalName", externalName: "old.example.com" }));
  server = new DnsServer({ source: src, port: 0 });
  await server.start();
  port = server.port;

  const upSrc = new MemorySource();
  upSrc.put(svc("far", "up", { type: "ClusterIP", clusterIP: "10.100.0.1", ports: [{ port: 80 }] }));
  upstream = new DnsServer({ source: upSrc, port: 0, zone: "upstream.test" });
  await upstream.start();
  forwarder = new DnsServer({ source: src, port: 0, upstreams: [{ host: "127.0.0.1", port: upstream.port }] });
  await forwarder.start();
  // an upstream that never answers (a UDP port nobody reads from is closed → ICMP; use a bound silent socket)
  deadForwarder = new DnsServer({ source: src, port: 0, upstreams: [{ host: "127.0.0.1", port: 9 }], upstreamTimeoutMs: 300 });
  await deadForwarder.start();
});

afterAll(async () => {
  await server?.stop();
  await upstream?.stop();
  await forwarder?.stop();
  await deadForwarder?.stop();
});

describe("helpers", () => {
  it("reverse names and address parsing", () => {
    expect(reverseName("10.96.0.10")).toBe("10.0.96.10.in-addr.arpa");
    expect(reverseName("fd00::20")).toBe(`0.2.0.0.${"0.".repeat(24)}0.0.d.f.ip6.arpa`);
    expect(parseHostPort("10.0.0.1:5353")).toEqual({ host: "10.0.0.1", port: 5353 });
    expect(parseHostPort("[::1]:53")).toEqual({ host: "::1", port: 53 });
    expect(parseUpstreams("1.1.1.1,8.8.8.8:5353")).toEqual([{ host: "1.1.1.1", port: 53 }, { host: "8.8.8.8", port: 5353 }]);
  });
});

describe("dns over dig", () => {
  it("A → clusterIP, case-insensitive, TTL 5, authoritative, UDP and TCP", async () => {
    const r = await dig(port, `my-service.my-ns.svc.${Z}`, "A");
    expect(r.status).toBe("NOERROR");
    expect(r.flags).toContain("aa");
    expect(r.answers).toEqual([[`my-service.my-ns.svc.${Z}.`, "5", "IN", "A", "10.96.0.10"]]);
    const up = await dig(port, `MY-Service.My-NS.SVC.Cluster.Local`, "A", "+tcp");
    expect(data(up)).toEqual(["10.96.0.10"]);
    expect((await dig(port, `empty.my-ns.svc.${Z}`, "A")).answers.map((a) => a[4])).toEqual(["10.96.0.11"]);
  });

  it("AAAA for an IPv6 clusterIP; NODATA when the name has no record of that type", async () => {
    expect(data(await dig(port, `dual.my-ns.svc.${Z}`, "AAAA"))).toEqual(["fd00::20"]);
    expect(data(await dig(port, `dual.my-ns.svc.${Z}`, "A"))).toEqual(["10.96.0.20"]);
    const nodata = await dig(port, `my-service.my-ns.svc.${Z}`, "AAAA");
    expect(nodata.status).toBe("NOERROR");
    expect(nodata.answers).toEqual([]);
    expect(nodata.raw).toMatch(/AUTHORITY SECTION:\n\S+\s+5\s+IN\s+SOA/);
    const txt = await dig(port, `my-service.my-ns.svc.${Z}`, "TXT");
    expect([txt.status, txt.answers.length]).toEqual(["NOERROR", 0]);
    // a namespace with Services is an existing (empty) name
    expect((await dig(port, `my-ns.svc.${Z}`, "A")).status).toBe("NOERROR");
  });

  it("headless: one A per ready endpoint, endpoint names, NXDOMAIN when none ready", async () => {
    expect(data(await dig(port, `db.my-ns.svc.${Z}`, "A"))).toEqual(["10.244.0.5", "10.244.0.6"]);
    expect(data(await dig(port, `db-0.db.my-ns.svc.${Z}`, "A"))).toEqual(["10.244.0.5"]);
    expect(data(await dig(port, `10-244-0-6.db.my-ns.svc.${Z}`, "A"))).toEqual(["10.244.0.6"]);
    expect((await dig(port, `10-244-0-7.db.my-ns.svc.${Z}`, "A")).status).toBe("NXDOMAIN");
    expect((await dig(port, `none-ready.my-ns.svc.${Z}`, "A")).status).toBe("NXDOMAIN");
  });

  it("SRV for named ports: service FQDN target; headless per endpoint with weight floor(100/N)", async () => {
    const http = await dig(port, `_http._tcp.my-service.my-ns.svc.${Z}`, "SRV");
    expect(data(http)).toEqual([`0 100 80 my-service.my-ns.svc.${Z}.`]);
    expect(http.additionals.some((a) => a[3] === "A" && a[4] === "10.96.0.10")).toBe(true);
    expect(data(await dig(port, `_dns._udp.my-service.my-ns.svc.${Z}`, "SRV", "+tcp"))).toEqual([`0 100 53 my-service.my-ns.svc.${Z}.`]);
    expect(data(await dig(port, `_pg._tcp.db.my-ns.svc.${Z}`, "SRV"))).toEqual([`0 50 15432 10-244-0-6.db.my-ns.svc.${Z}.`, `0 50 15432 db-0.db.my-ns.svc.${Z}.`]);
    expect((await dig(port, `_nope._tcp.my-service.my-ns.svc.${Z}`, "SRV")).status).toBe("NXDOMAIN");
    // the intermediate _tcp name exists
    expect((await dig(port, `_tcp.my-service.my-ns.svc.${Z}`, "SRV")).status).toBe("NOERROR");
  });

  it("ExternalName → CNAME, and a type switch changes the answer at once", async () => {
    const c = await dig(port, `ext.my-ns.svc.${Z}`, "CNAME");
    expect(c.answers).toEqual([[`ext.my-ns.svc.${Z}.`, "5", "IN", "CNAME", "example.com."]]);
    expect((await dig(port, `ext.my-ns.svc.${Z}`, "A")).answers.map((a) => a[3])).toEqual(["CNAME"]);
    expect(data(await dig(port, `switch.my-ns.svc.${Z}`, "A"))).toEqual(["old.example.com."]);
    src.put(svc("switch", "my-ns", { type: "ClusterIP", clusterIP: "10.96.0.30", ports: [{ port: 80 }] }));
    expect(data(await dig(port, `switch.my-ns.svc.${Z}`, "A"))).toEqual(["10.96.0.30"]);
    src.put(svc("switch", "my-ns", { type: "ExternalName", externalName: "new.example.com" }));
    expect(data(await dig(port, `switch.my-ns.svc.${Z}`, "A"))).toEqual(["new.example.com."]);
    expect((await dig(port, "-x", "10.96.0.30")).status).toBe("REFUSED"); // PTR gone with the clusterIP
  });

  it("PTR for clusterIPs (v4 and v6) and headless endpoint IPs", async () => {
    expect(data(await dig(port, "-x", "10.96.0.10"))).toEqual([`my-service.my-ns.svc.${Z}.`]);
    expect(data(await dig(port, "-x", "fd00::20"))).toEqual([`dual.my-ns.svc.${Z}.`]);
    expect(data(await dig(port, "-x", "10.244.0.5", "+tcp"))).toEqual([`db-0.db.my-ns.svc.${Z}.`]);
    expect(data(await dig(port, "-x", "10.245.0.3"))).toEqual([`10-245-0-3.big.my-ns.svc.${Z}.`]);
  });

  it("dns-version TXT, apex SOA, NXDOMAIN for unknown service and namespace", async () => {
    expect(data(await dig(port, `dns-version.${Z}`, "TXT"))).toEqual(['"1.1.0"']);
    expect((await dig(port, Z, "SOA")).answers[0]?.[3]).toBe("SOA");
    const nx = await dig(port, `nope.my-ns.svc.${Z}`, "A");
    expect(nx.status).toBe("NXDOMAIN");
    expect(nx.flags).toContain("aa");
    expect(nx.raw).toMatch(/AUTHORITY SECTION:\n\S+\s+5\s+IN\s+SOA/);
    expect((await dig(port, `my-service.other-ns.svc.${Z}`, "A")).status).toBe("NXDOMAIN");
  });

  it("outside the zone: REFUSED without upstreams, forwarded with (UDP and TCP), SERVFAIL when none answers", async () => {
    const refused = await dig(port, "example.org", "A");
    expect(refused.status).toBe("REFUSED");
    expect(refused.flags).not.toContain("ra");
    const fwd = await dig(forwarder.port, "far.up.svc.upstream.test", "A");
    expect(fwd.status).toBe("NOERROR");
    expect(data(fwd)).toEqual(["10.100.0.1"]);
    expect(data(await dig(forwarder.port, "far.up.svc.upstream.test", "A", "+tcp"))).toEqual(["10.100.0.1"]);
    expect((await dig(forwarder.port, "nope.upstream.test", "A")).status).toBe("NXDOMAIN");
    // the forwarder still answers its own zone, with RA set
    const own = await dig(forwarder.port, `my-service.my-ns.svc.${Z}`, "A");
    expect(data(own)).toEqual(["10.96.0.10"]);
    expect(own.flags).toContain("ra");
    expect(forwarder.metrics().forwarded).toBe(3);
    expect((await dig(deadForwarder.port, "example.org", "A")).status).toBe("SERVFAIL");
  });

  it("EDNS0 buffer sizes: truncation over UDP with TCP fallback", async () => {
    const before = server.metrics().truncated;
    const small = await dig(port, `big.my-ns.svc.${Z}`, "A", "+bufsize=512");
    expect(small.raw).toMatch(/Truncated, retrying in TCP mode/);
    expect(small.answers).toHaveLength(60);
    const tc = await dig(port, `big.my-ns.svc.${Z}`, "A", "+bufsize=512", "+ignore");
    expect(tc.flags).toContain("tc");
    expect(tc.answers).toHaveLength(0);
    const noedns = await dig(port, `big.my-ns.svc.${Z}`, "A", "+noedns", "+ignore");
    expect(noedns.flags).toContain("tc");
    const large = await dig(port, `big.my-ns.svc.${Z}`, "A", "+bufsize=4096");
    expect(large.raw).not.toMatch(/Truncated/);
    expect(large.flags).not.toContain("tc");
    expect(large.answers).toHaveLength(60);
    expect(large.raw).toMatch(/udp: 1232/); // our OPT record
    expect(server.metrics().truncated).toBe(before + 3);
  });

  it("+norecurse: RD echoed off, still authoritative", async () => {
    const r = await dig(port, `my-service.my-ns.svc.${Z}`, "A", "+norecurse");
    expect(r.flags).not.toContain("rd");
    expect(r.flags).toContain("aa");
    expect(data(r)).toEqual(["10.96.0.10"]);
  });

  it("counts queries per type and responses per rcode", () => {
    const m = server.metrics();
    expect(m.queries.A).toBeGreaterThan(5);
    expect(m.queries.SRV).toBeGreaterThan(0);
    expect(m.queries.PTR).toBeGreaterThan(0);
    expect(m.responses.NOERROR).toBeGreaterThan(0);
    expect(m.responses.NXDOMAIN).toBeGreaterThan(0);
    expect(m.responses.REFUSED).toBeGreaterThan(0);
    expect(m.tcp).toBeGreaterThan(0);
    expect(m.udp).toBeGreaterThan(0);
  });
});

/** An ObjectSource whose first list waits for `release()`. */
class GatedSource implements ObjectSource {
  private open!: () => void;
  private readonly gate = new Promise<void>((r) => (this.open = r));
  constructor(private readonly inner: MemorySource) {}
  release(): void {
    this.open();
  }
  async list(kind: string): Promise<ObjectList> {
    await this.gate;
    return this.inner.list(kind);
  }
  watch(kind: string, opts: WatchOptions, h: WatchHandlers): Watch {
    return this.inner.watch(kind, opts, h);
  }
}

describe("before the first sync", () => {
  it("SERVFAIL in the zone until Services and EndpointSlices are listed", async () => {
    const inner = new MemorySource();
    inner.put(svc("a", "b", { type: "ClusterIP", clusterIP: "10.96.1.1", ports: [{ port: 80 }] }));
    const gated = new GatedSource(inner);
    const s = new DnsServer({ source: gated, port: 0 });
    await s.listen();
    const started = s.start();
    try {
      expect((await dig(s.port, `a.b.svc.${Z}`, "A")).status).toBe("SERVFAIL");
      expect(s.synced).toBe(false);
      gated.release();
      await started;
      expect(data(await dig(s.port, `a.b.svc.${Z}`, "A"))).toEqual(["10.96.1.1"]);
    } finally {
      gated.release();
      await started;
      await s.stop();
    }
  });
});

function udpAsk(p: number, msg: Buffer, waitMs = 300): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const sock = dgram.createSocket("udp4");
    const t = setTimeout(() => {
      sock.close();
      resolve(null);
    }, waitMs);
    sock.on("message", (m) => {
      clearTimeout(t);
      sock.close();
      resolve(m);
    });
    sock.send(msg, p, "127.0.0.1");
  });
}

function header(id: number, flags: number, qd: number, an = 0, ns = 0, ar = 0): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(id, 0);
  b.writeUInt16BE(flags, 2);
  b.writeUInt16BE(qd, 4);
  b.writeUInt16BE(an, 6);
  b.writeUInt16BE(ns, 8);
  b.writeUInt16BE(ar, 10);
  return b;
}

describe("malformed queries", () => {
  it("FORMERR when a header can be read, dropped otherwise, counted, never a crash", async () => {
    const m0 = server.metrics();
    // too short for a header: dropped
    expect(await udpAsk(port, Buffer.from([1, 2, 3, 4, 5]))).toBeNull();
    // a response packet: dropped (no reflection)
    expect(await udpAsk(port, header(7, 0x8000, 0))).toBeNull();
    // qdcount 1 but no question: FORMERR with the same id
    const r1 = await udpAsk(port, header(0x1234, 0x0100, 1));
    expect(r1).not.toBeNull();
    expect(r1!.readUInt16BE(0)).toBe(0x1234);
    expect(r1!.readUInt16BE(2) & 0x8000).toBe(0x8000);
    expect(r1!.readUInt16BE(2) & 0xf).toBe(1);
    // no question at all: FORMERR
    expect((await udpAsk(port, header(0x55, 0, 0)))!.readUInt16BE(2) & 0xf).toBe(1);
    // two questions: FORMERR
    const two = dnsPacket.encode({ type: "query", id: 9, questions: [{ type: "A", name: "a.b" }, { type: "A", name: "c.d" }] });
    expect((await udpAsk(port, two))!.readUInt16BE(2) & 0xf).toBe(1);
    // a label pointer loop / garbage after a valid header
    const garbage = Buffer.concat([header(0x77, 0, 1), Buffer.from([0xc0, 0x0c, 0, 1, 0, 1])]);
    const g = await udpAsk(port, garbage);
    if (g) expect(g.readUInt16BE(2) & 0xf).toBe(1);
    // an unknown opcode (STATUS = 2): NOTIMP
    const status = dnsPacket.encode({ type: "query", id: 10, questions: [{ type: "A", name: "a.b" }] });
    status.writeUInt16BE(2 << 11, 2);
    expect((await udpAsk(port, status))!.readUInt16BE(2) & 0xf).toBe(4);
    // random junk
    for (let i = 0; i < 200; i++) {
      const junk = Buffer.alloc(12 + (i % 40));
      for (let j = 0; j < junk.length; j++) junk[j] = (i * 131 + j * 17) & 0xff;
      junk[2]! &= 0x7f; // a query
      await udpAsk(port, junk, 20);
    }
    // malformed over TCP: FORMERR back on the same connection, which stays usable
    const tcpReplies = await new Promise<Buffer[]>((resolve, reject) => {
      const sock = net.connect(port, "127.0.0.1");
      const bad = header(0x4242, 0x0100, 1);
      const good = dnsPacket.streamEncode({ type: "query", id: 0x4343, questions: [{ type: "A", name: `my-service.my-ns.svc.${Z}` }] });
      let buf = Buffer.alloc(0);
      const out: Buffer[] = [];
      sock.on("error", reject);
      sock.on("connect", () => {
        const len = Buffer.alloc(2);
        len.writeUInt16BE(bad.length);
        sock.write(Buffer.concat([len, bad, good]));
      });
      sock.on("data", (c: Buffer) => {
        buf = Buffer.concat([buf, c]);
        while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          out.push(buf.subarray(2, 2 + buf.readUInt16BE(0)));
          buf = buf.subarray(2 + buf.readUInt16BE(0));
        }
        if (out.length === 2) {
          sock.destroy();
          resolve(out);
        }
      });
    });
    const byId = new Map(tcpReplies.map((b) => [b.readUInt16BE(0), b]));
    expect(byId.get(0x4242)!.readUInt16BE(2) & 0xf).toBe(1);
    const ok = dnsPacket.decode(byId.get(0x4343)!);
    expect(ok.answers?.map((a) => (a as { data: string }).data)).toEqual(["10.96.0.10"]);
    const m1 = server.metrics();
    expect(m1.malformed).toBeGreaterThanOrEqual(m0.malformed + 4);
    expect(m1.dropped).toBeGreaterThanOrEqual(m0.dropped + 2);
    expect(m1.responses.FORMERR ?? 0).toBeGreaterThanOrEqual((m0.responses.FORMERR ?? 0) + 4);
    // still serving
    expect(data(await dig(port, `my-service.my-ns.svc.${Z}`, "A"))).toEqual(["10.96.0.10"]);
  });
});
