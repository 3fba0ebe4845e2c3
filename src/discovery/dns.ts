// The cluster DNS server (spec §7): UDP and TCP on one address:port, DNS wire format with
// dns-packet, answering from the live Services and EndpointSlices (two informers on an
// ObjectSource), forwarding names outside the zone to upstream servers.
//
//   <svc>.<ns>.svc.<zone>           A/AAAA → clusterIP(s), also with zero endpoints;
//                                   headless: one record per ready endpoint (NXDOMAIN when none);
//                                   ExternalName: CNAME → externalName
//   <host>.<svc>.<ns>.svc.<zone>    headless endpoint (hostname, else the IP with . / : → -)
//   _<port>._<proto>.<svc>...       SRV for named ports: priority 0, weight floor(100/N) ≥ 1,
//                                   target the service FQDN (headless: each endpoint's FQDN)
//   reverse names                   PTR for clusterIPs and headless endpoint IPs
//   dns-version.<zone>              TXT "1.1.0"
//   unknown name in the zone → NXDOMAIN; known name without that type → NODATA (both with the
//   zone's SOA in the authority section); before the first sync → SERVFAIL; outside the zone →
//   the upstreams in order (SERVFAIL when none answers), REFUSED when none are configured.
// Names are case-insensitive. Over UDP the answer must fit the client's EDNS0 buffer (512 without
// EDNS); otherwise it is sent empty with TC set and the client retries over TCP. Malformed
// queries get FORMERR when a header can be read, otherwise they are dropped; both are counted.
// The index is rebuilt lazily on the first query after a change, so a Service switching between
// ExternalName and ClusterIP changes the answer at once.

import dgram from "node:dgram";
import net from "node:net";
import * as dnsPacket from "dns-packet";
import type { Answer, DecodedPacket, OptAnswer, Packet, Question, SrvData } from "dns-packet";
import type { ObjectSource } from "../store/watch.js";
import type { EndpointSlice, Service } from "../store/types.js";
import { Informer, type Obj } from "../agent/informer.js";
import { Counter, type Registry } from "prom-client";

export const DNS_VERSION = "1.1.0";
export const DEFAULT_ZONE = "cluster.local";
export const DEFAULT_TTL = 5;
/** The UDP payload size tapvip advertises in its own OPT record. */
export const SERVER_UDP_SIZE = 1232;
const SERVICE_NAME_LABEL = "kubernetes.io/service-name";

const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
type RcodeName = keyof typeof RCODE;
const RCODE_NAMES = Object.keys(RCODE) as RcodeName[];

export interface Upstream {
  host: string;
  port: number;
}

export interface DnsServerOptions {
  source: ObjectSource;
  /** Listen address (default 127.0.0.1). */
  address?: string;
  /** Listen port; 0 picks a free port usable for both UDP and TCP (default 53). */
  port?: number;
  zone?: string;
  ttl?: number;
  upstreams?: Upstream[];
  /** Per-upstream timeout (default 2000 ms). */
  upstreamTimeoutMs?: number;
}

export interface DnsCounters {
  queries: Record<string, number>;
  responses: Record<string, number>;
  udp: number;
  tcp: number;
  truncated: number;
  forwarded: number;
  malformed: number;
  dropped: number;
}

/** "ADDR:PORT" (IPv6 as [ADDR]:PORT); a bare address gets `defPort`. */
export function parseHostPort(s: string, defPort = 53): Upstream {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(s) ?? /^([^:]+)(?::(\d+))?$/.exec(s);
  if (m) return { host: m[1]!, port: m[2] ? Number(m[2]) : defPort };
  if (net.isIPv6(s)) return { host: s, port: defPort };
  throw new Error(`invalid address "${s}" (ADDR:PORT)`);
}

/** Comma-separated upstream list for --dns-upstream. */
export function parseUpstreams(s: string | undefined): Upstream[] {
  if (!s) return [];
  return s.split(",").map((x) => x.trim()).filter((x) => x !== "").map((x) => parseHostPort(x, 53));
}

function expandIPv6(ip: string): string[] {
  const [head, tail] = ip.includes("::") ? (ip.split("::") as [string, string]) : [ip, undefined];
  const h = head ? head.split(":") : [];
  const t = tail !== undefined && tail !== "" ? tail.split(":") : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill("0"), ...t];
  return groups.map((g) => g.padStart(4, "0").toLowerCase());
}

/** The reverse (PTR) name of an IPv4 or IPv6 address, lower case, without a trailing dot. */
export function reverseName(ip: string): string {
  if (net.isIPv4(ip)) return `${ip.split(".").reverse().join(".")}.in-addr.arpa`;
  const nibbles = expandIPv6(ip).join("").split("");
  return `${nibbles.reverse().join(".")}.ip6.arpa`;
}

interface Node {
  a: string[];
  aaaa: string[];
  cname?: string;
  srv: SrvData[];
  txt?: string[];
  apex?: boolean;
}

const newNode = (): Node => ({ a: [], aaaa: [], srv: [] });

/** The zone's records, built from the current Services and EndpointSlices. */
export class ZoneIndex {
  readonly names = new Map<string, Node>();
  readonly ptr = new Map<string, string>();

  constructor(readonly zone: string, services: Iterable<Obj>, slices: Iterable<Obj>) {
    this.node(zone).apex = true;
    this.node(`dns-version.${zone}`).txt = [DNS_VERSION];
    const byService = new Map<string, EndpointSlice[]>();
    for (const o of slices) {
      const s = o as unknown as EndpointSlice;
      const svc = s.metadata.labels?.[SERVICE_NAME_LABEL];
      if (!svc) continue;
      const k = `${s.metadata.namespace ?? "default"}/${svc}`;
      const list = byService.get(k) ?? [];
      list.push(s);
      byService.set(k, list);
    }
    for (const o of services) this.addService(o as unknown as Service, byService);
  }

  private node(name: string): Node {
    let n = this.names.get(name);
    if (!n) {
      n = newNode();
      this.names.set(name, n);
      // empty non-terminals up to the zone exist (NODATA, not NXDOMAIN)
      let p = name;
      while (p !== this.zone && p.endsWith(`.${this.zone}`)) {
        p = p.slice(p.indexOf(".") + 1);
        if (this.names.has(p)) break;
        this.names.set(p, newNode());
      }
    }
    return n;
  }

  private addIP(n: Node, ip: string): void {
    const list = net.isIPv6(ip) ? n.aaaa : n.a;
    if (!list.includes(ip)) list.push(ip);
  }

  private addService(svc: Service, slices: Map<string, EndpointSlice[]>): void {
    const name = (svc.metadata.name ?? "").toLowerCase();
    const ns = (svc.metadata.namespace ?? "default").toLowerCase();
    if (!name || !svc.spec) return;
    const base = `${name}.${ns}.svc.${this.zone}`;
    const spec = svc.spec;
    if (spec.type === "ExternalName") {
      if (spec.externalName) this.node(base).cname = spec.externalName.replace(/\.$/, "").toLowerCase();
      return;
    }
    const ports = (spec.ports ?? []).filter((p) => p.name);
    if (spec.clusterIP && spec.clusterIP !== "None") {
      const n = this.node(base);
      const ips = spec.clusterIPs && spec.clusterIPs.length > 0 ? spec.clusterIPs : [spec.clusterIP];
      for (const ip of ips) {
        this.addIP(n, ip);
        this.ptr.set(reverseName(ip), base);
      }
      for (const p of ports) {
        this.node(`_${p.name!.toLowerCase()}._${(p.protocol ?? "TCP").toLowerCase()}.${base}`).srv.push({ priority: 0, weight: 100, port: p.port, target: base });
      }
      return;
    }
    if (spec.clusterIP !== "None") return;
    // headless: the ready (or, with publishNotReadyAddresses, all) endpoints
    const srv = new Map<string, SrvData[]>();
    let any = false;
    for (const s of slices.get(`${ns}/${name}`) ?? []) {
      if (s.addressType === "FQDN") continue;
      for (const ep of s.endpoints ?? []) {
        if (!spec.publishNotReadyAddresses && ep.conditions?.ready === false) continue;
        for (const ip of ep.addresses ?? []) {
          if (!net.isIP(ip)) continue;
          any = true;
          const host = (ep.hostname ?? ip.replace(/[.:]/g, "-")).toLowerCase();
          const fqdn = `${host}.${base}`;
          this.addIP(this.node(base), ip);
          this.addIP(this.node(fqdn), ip);
          this.ptr.set(reverseName(ip), fqdn);
          for (const p of ports) {
            const proto = p.protocol ?? "TCP";
            const sp = (s.ports ?? []).find((x) => (x.name ?? "") === p.name && (x.protocol ?? "TCP") === proto);
            if (!sp || sp.port === undefined) continue;
            const owner = `_${p.name!.toLowerCase()}._${proto.toLowerCase()}.${base}`;
            const list = srv.get(owner) ?? [];
            if (!list.some((r) => r.target === fqdn && r.port === sp.port)) list.push({ priority: 0, weight: 0, port: sp.port, target: fqdn });
            srv.set(owner, list);
          }
          break; // one address per endpoint (upstream allows exactly one)
        }
      }
    }
    if (!any) return;
    for (const [owner, list] of srv) {
      const w = Math.max(1, Math.floor(100 / list.length));
      this.node(owner).srv.push(...list.map((r) => ({ ...r, weight: w })));
    }
  }
}

export class DnsServer {
  readonly zone: string;
  readonly ttl: number;
  readonly upstreams: Upstream[];
  private readonly address: string;
  private wantPort: number;
  private udp: dgram.Socket | null = null;
  private tcp: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  private readonly services: Informer;
  private readonly slices: Informer;
  private syncedKinds = 0;
  private index: ZoneIndex | null = null;
  private readonly counters: DnsCounters = { queries: {}, responses: {}, udp: 0, tcp: 0, truncated: 0, forwarded: 0, malformed: 0, dropped: 0 };

  constructor(private readonly opts: DnsServerOptions) {
    this.zone = (opts.zone ?? DEFAULT_ZONE).replace(/\.$/, "").toLowerCase();
    this.ttl = opts.ttl ?? DEFAULT_TTL;
    this.upstreams = opts.upstreams ?? [];
    this.address = opts.address ?? "127.0.0.1";
    this.wantPort = opts.port ?? 53;
    const h = {
      onChange: () => {
        this.index = null;
      },
      onSynced: () => {
        this.syncedKinds++;
        this.index = null;
      },
    };
    this.services = new Informer(opts.source, "Service", h);
    this.slices = new Informer(opts.source, "EndpointSlice", h);
  }

  /** Both informers delivered their first list. */
  get synced(): boolean {
    return this.syncedKinds >= 2;
  }

  get port(): number {
    return this.wantPort;
  }

  /** Counters as a plain object (a copy): per query type, per rcode, transports, errors. */
  metrics(): DnsCounters {
    return { ...this.counters, queries: { ...this.counters.queries }, responses: { ...this.counters.responses } };
  }

  /** Binds UDP and TCP, then starts the informers (queries before the first sync get SERVFAIL). */
  async start(): Promise<void> {
    await this.listen();
    await Promise.all([this.services.start(), this.slices.start()]);
  }

  /** Binds UDP and TCP only (start() does it too); queries get SERVFAIL until start() syncs. */
  async listen(): Promise<void> {
    if (this.udp) return;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.bind();
        break;
      } catch (e) {
        this.closeSockets();
        if (this.opts.port !== 0 || attempt >= 20) throw e;
        this.wantPort = 0;
      }
    }
  }

  private async bind(): Promise<void> {
    const family = net.isIPv6(this.address) ? "udp6" : "udp4";
    const udp = dgram.createSocket({ type: family });
    this.udp = udp;
    udp.on("error", () => {
      /* counted per message; never fatal */
    });
    udp.on("message", (msg, rinfo) => {
      this.counters.udp++;
      this.handle(msg, "udp")
        .then((resp) => {
          if (resp) udp.send(resp, rinfo.port, rinfo.address);
        })
        .catch(() => {
          this.counters.dropped++;
        });
    });
    await new Promise<void>((resolve, reject) => {
      udp.once("error", reject);
      udp.bind(this.wantPort, this.address, () => {
        udp.off("error", reject);
        resolve();
      });
    });
    this.wantPort = udp.address().port;
    const tcp = net.createServer((sock) => this.onTcp(sock));
    this.tcp = tcp;
    await new Promise<void>((resolve, reject) => {
      tcp.once("error", reject);
      tcp.listen(this.wantPort, this.address, () => {
        tcp.off("error", reject);
        resolve();
      });
    });
    tcp.on("error", () => {});
  }

  private closeSockets(): void {
    try {
      this.udp?.close();
    } catch {
      /* already closed */
    }
    this.udp = null;
    this.tcp?.close();
    this.tcp = null;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  async stop(): Promise<void> {
    this.services.stop();
    this.slices.stop();
    const tcp = this.tcp;
    this.closeSockets();
    if (tcp) await new Promise<void>((r) => tcp.close(() => r()));
  }

  private onTcp(sock: net.Socket): void {
    this.sockets.add(sock);
    sock.setTimeout(30_000, () => sock.destroy());
    sock.on("error", () => sock.destroy());
    sock.on("close", () => this.sockets.delete(sock));
    let buf = Buffer.alloc(0);
    sock.on("data", (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2) {
        const len = buf.readUInt16BE(0);
        if (buf.length < 2 + len) break;
        const msg = buf.subarray(2, 2 + len);
        buf = buf.subarray(2 + len);
        this.counters.tcp++;
        this.handle(msg, "tcp")
          .then((resp) => {
            if (!resp || sock.destroyed) return;
            const hdr = Buffer.alloc(2);
            hdr.writeUInt16BE(resp.length);
            sock.write(Buffer.concat([hdr, resp]));
          })
          .catch(() => {
            this.counters.dropped++;
          });
      }
    });
  }

  private count(map: Record<string, number>, key: string): void {
    map[key] = (map[key] ?? 0) + 1;
  }

  /** One query in wire format → the response in wire format, or null to drop it. */
  async handle(msg: Buffer, transport: "udp" | "tcp"): Promise<Buffer | null> {
    if (msg.length < 12) {
      this.counters.malformed++;
      this.counters.dropped++;
      return null;
    }
    const id = msg.readUInt16BE(0);
    const hflags = msg.readUInt16BE(2);
    if (hflags & 0x8000) {
      // a response: never answer one (no reflection loops)
      this.counters.dropped++;
      return null;
    }
    let q: DecodedPacket;
    try {
      q = dnsPacket.decode(msg);
    } catch {
      this.counters.malformed++;
      return this.bare(id, hflags, RCODE.FORMERR);
    }
    const opcode = (hflags >> 11) & 0xf;
    if (opcode !== 0) return this.bare(id, hflags, RCODE.NOTIMP);
    const questions = q.questions ?? [];
    if (questions.length !== 1 || !questions[0] || typeof questions[0].name !== "string") {
      this.counters.malformed++;
      return this.bare(id, hflags, RCODE.FORMERR);
    }
    const question = questions[0];
    this.count(this.counters.queries, String(question.type));
    const opt = (q.additionals ?? []).find((a): a is OptAnswer => a.type === "OPT");
    const limit = transport === "tcp" ? 65535 : opt ? Math.max(512, opt.udpPayloadSize || 512) : 512;

    const local = this.answer(question);
    if (local === "forward") {
      if (this.upstreams.length === 0) return this.encode(q, question, { rcode: "REFUSED", answers: [], authorities: [], additionals: [], aa: false }, opt, limit);
      this.counters.forwarded++;
      const resp = await this.forward(msg, transport);
      if (resp) {
        this.count(this.counters.responses, RCODE_NAMES[resp.readUInt16BE(2) & 0xf] ?? `RCODE_${resp.readUInt16BE(2) & 0xf}`);
        return resp;
      }
      return this.encode(q, question, { rcode: "SERVFAIL", answers: [], authorities: [], additionals: [], aa: false }, opt, limit);
    }
    return this.encode(q, question, local, opt, limit);
  }

  /** A header-only response (FORMERR, NOTIMP) for a query that could not be (fully) read. */
  private bare(id: number, hflags: number, rcode: number): Buffer {
    this.count(this.counters.responses, RCODE_NAMES[rcode]!);
    const b = Buffer.alloc(12);
    b.writeUInt16BE(id, 0);
    b.writeUInt16BE(0x8000 | (hflags & 0x7800) | (hflags & 0x0100) | rcode, 2);
    return b;
  }

  private encode(q: DecodedPacket, question: Question, r: LocalAnswer, opt: OptAnswer | undefined, limit: number): Buffer {
    const rd = (q.flags ?? 0) & dnsPacket.RECURSION_DESIRED;
    let flags = rd | (r.aa ? dnsPacket.AUTHORITATIVE_ANSWER : 0) | (this.upstreams.length > 0 ? dnsPacket.RECURSION_AVAILABLE : 0) | RCODE[r.rcode];
    const optRR: OptAnswer[] = opt ? [{ type: "OPT", name: ".", udpPayloadSize: SERVER_UDP_SIZE, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }] : [];
    const packet: Packet = { type: "response", id: q.id, flags, questions: [question], answers: r.answers, authorities: r.authorities, additionals: [...r.additionals, ...optRR] };
    let out: Buffer;
    try {
      out = dnsPacket.encode(packet);
    } catch {
      this.counters.malformed++;
      return this.bare(q.id ?? 0, (q.flags ?? 0) & 0x7fff, RCODE.FORMERR);
    }
    if (out.length > limit) {
      // answer does not fit: empty it, set TC; the client retries over TCP
      this.counters.truncated++;
      flags |= dnsPacket.TRUNCATED_RESPONSE;
      out = dnsPacket.encode({ ...packet, flags, answers: [], authorities: [], additionals: optRR });
    }
    this.count(this.counters.responses, r.rcode);
    return out;
  }

  private currentIndex(): ZoneIndex {
    if (!this.index) this.index = new ZoneIndex(this.zone, this.services.cache.values(), this.slices.cache.values());
    return this.index;
  }

  private soa(): Answer {
    return {
      type: "SOA",
      name: this.zone,
      ttl: this.ttl,
      class: "IN",
      data: { mname: `ns.dns.${this.zone}`, rname: `hostmaster.${this.zone}`, serial: 1, refresh: 7200, retry: 1800, expire: 86400, minimum: this.ttl },
    };
  }

  /** The local answer for a question, or "forward" for names tapvip is not authoritative for. */
  answer(question: Question): LocalAnswer | "forward" {
    const asked = question.name;
    const name = asked.replace(/\.$/, "").toLowerCase();
    const type: string = question.type;
    const cls = question.class ?? "IN";
    const inZone = name === this.zone || name.endsWith(`.${this.zone}`);
    const isReverse = name.endsWith(".in-addr.arpa") || name.endsWith(".ip6.arpa");
    if (!inZone && !isReverse) return "forward";
    if (cls !== "IN" && cls !== "ANY") return inZone ? { rcode: "REFUSED", answers: [], authorities: [], additionals: [], aa: false } : "forward";
    if (!this.synced) return inZone ? { rcode: "SERVFAIL", answers: [], authorities: [], additionals: [], aa: false } : "forward";
    const idx = this.currentIndex();
    const ttl = this.ttl;
    if (isReverse) {
      const target = idx.ptr.get(name);
      if (!target) return "forward";
      const answers: Answer[] = type === "PTR" || type === "ANY" ? [{ type: "PTR", name: asked, ttl, class: "IN", data: target }] : [];
      return { rcode: "NOERROR", answers, authorities: [], additionals: [], aa: true };
    }
    const node = idx.names.get(name);
    if (!node) return { rcode: "NXDOMAIN", answers: [], authorities: [this.soa()], additionals: [], aa: true };
    const answers: Answer[] = [];
    const additionals: Answer[] = [];
    const want = (t: string): boolean => type === t || type === "ANY";
    if (node.cname) {
      answers.push({ type: "CNAME", name: asked, ttl, class: "IN", data: node.cname });
    } else {
      if (want("A")) for (const ip of node.a) answers.push({ type: "A", name: asked, ttl, class: "IN", data: ip });
      if (want("AAAA")) for (const ip of node.aaaa) answers.push({ type: "AAAA", name: asked, ttl, class: "IN", data: ip });
      if (want("SRV")) {
        const extra = new Set<string>();
        for (const s of node.srv) {
          answers.push({ type: "SRV", name: asked, ttl, class: "IN", data: s });
          const t = idx.names.get(s.target);
          if (!t || extra.has(s.target)) continue;
          extra.add(s.target);
          for (const ip of t.a) additionals.push({ type: "A", name: s.target, ttl, class: "IN", data: ip });
          for (const ip of t.aaaa) additionals.push({ type: "AAAA", name: s.target, ttl, class: "IN", data: ip });
        }
      }
      if (want("TXT") && node.txt) answers.push({ type: "TXT", name: asked, ttl, class: "IN", data: node.txt });
      if (node.apex && want("SOA")) answers.push(this.soa());
      if (node.apex && want("NS")) answers.push({ type: "NS", name: asked, ttl, class: "IN", data: `ns.dns.${this.zone}` });
    }
    return { rcode: "NOERROR", answers, authorities: answers.length === 0 ? [this.soa()] : [], additionals, aa: true };
  }

  private async forward(msg: Buffer, transport: "udp" | "tcp"): Promise<Buffer | null> {
    const timeout = this.opts.upstreamTimeoutMs ?? 2000;
    for (const up of this.upstreams) {
      try {
        const resp = transport === "tcp" ? await tcpExchange(up, msg, timeout) : await udpExchange(up, msg, timeout);
        if (resp && resp.length >= 12 && resp.readUInt16BE(0) === msg.readUInt16BE(0)) return resp;
      } catch {
        /* next upstream */
      }
    }
    return null;
  }
}

export interface LocalAnswer {
  rcode: RcodeName;
  answers: Answer[];
  authorities: Answer[];
  additionals: Answer[];
  aa: boolean;
}

function udpExchange(up: Upstream, msg: Buffer, timeoutMs: number): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const sock = dgram.createSocket(net.isIPv6(up.host) ? "udp6" : "udp4");
    const done = (b: Buffer | null): void => {
      clearTimeout(t);
      try {
        sock.close();
      } catch {
        /* closed */
      }
      resolve(b);
    };
    const t = setTimeout(() => done(null), timeoutMs);
    sock.on("error", () => done(null));
    sock.on("message", (m) => {
      if (m.length >= 12 && m.readUInt16BE(0) === msg.readUInt16BE(0)) done(m);
    });
    sock.send(msg, up.port, up.host);
  });
}

function tcpExchange(up: Upstream, msg: Buffer, timeoutMs: number): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const sock = net.connect(up.port, up.host);
    let buf = Buffer.alloc(0);
    const done = (b: Buffer | null): void => {
      clearTimeout(t);
      sock.destroy();
      resolve(b);
    };
    const t = setTimeout(() => done(null), timeoutMs);
    sock.on("error", () => done(null));
    sock.on("connect", () => {
      const hdr = Buffer.alloc(2);
      hdr.writeUInt16BE(msg.length);
      sock.write(Buffer.concat([hdr, msg]));
    });
    sock.on("data", (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) done(buf.subarray(2, 2 + buf.readUInt16BE(0)));
    });
    sock.on("close", () => done(null));
  });
}

// ------------------------------------------------------------------ wiring helpers

export interface DnsFlags {
  /** --dns ADDR:PORT (absent: no DNS server). */
  dns?: string;
  /** --cluster-domain ZONE (default cluster.local). */
  clusterDomain?: string;
  /** --dns-upstream IP:PORT,... */
  dnsUpstream?: string;
}

/** Starts the DNS server the flags ask for on `source`, or returns null without --dns. */
export async function startDnsFromFlags(flags: DnsFlags, source: ObjectSource, log?: (l: string) => void): Promise<DnsServer | null> {
  if (!flags.dns) return null;
  const { host, port } = parseHostPort(flags.dns, 53);
  const s = new DnsServer({ source, address: host, port, zone: flags.clusterDomain, upstreams: parseUpstreams(flags.dnsUpstream) });
  await s.start();
  log?.(`tapvip: DNS for ${s.zone} on ${host}:${s.port} (udp+tcp)${s.upstreams.length ? `, forwarding to ${s.upstreams.map((u) => `${u.host}:${u.port}`).join(",")}` : ""}`);
  return s;
}

/** Usage lines for the flags above. */
export const DNS_FLAGS_USAGE = `  --dns ADDR:PORT            serve cluster DNS (UDP and TCP) on this address
  --cluster-domain ZONE      DNS zone (default ${DEFAULT_ZONE})
  --dns-upstream IP:PORT,... forward names outside the zone (default: none, REFUSED)`;

/** The parseArgs options for the flags above. */
export const DNS_PARSE_OPTIONS = {
  dns: { type: "string" },
  "cluster-domain": { type: "string" },
  "dns-upstream": { type: "string" },
} as const;

/**
 * Registers tapvip_dns_queries_total{type}, tapvip_dns_responses_total{rcode} and
 * tapvip_dns_events_total{event} (udp, tcp, truncated, forwarded, malformed, dropped) on a
 * prom-client registry, read from server.metrics() at scrape time.
 */
export function registerDnsMetrics(registry: Registry, server: DnsServer): void {
  const counter = (name: string, help: string, label: string, read: (m: DnsCounters) => Record<string, number>): void => {
    new Counter({
      name,
      help,
      labelNames: [label],
      registers: [registry],
      collect(this: Counter<string>) {
        this.reset();
        for (const [k, v] of Object.entries(read(server.metrics()))) this.inc({ [label]: k }, v);
      },
    });
  };
  counter("tapvip_dns_queries_total", "DNS queries by query type.", "type", (m) => m.queries);
  counter("tapvip_dns_responses_total", "DNS responses by rcode (forwarded answers by the upstream's rcode).", "rcode", (m) => m.responses);
  counter("tapvip_dns_events_total", "DNS transport and error events.", "event", (m) => ({
    udp: m.udp,
    tcp: m.tcp,
    truncated: m.truncated,
    forwarded: m.forwarded,
    malformed: m.malformed,
    dropped: m.dropped,
  }));
}
