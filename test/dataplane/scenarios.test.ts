// Scenario fixtures: {description, maps (service models), input frame, expected frame, verdict}.
// Expected frames are built independently by src/host/frames.ts with full checksum
// computation, so a byte-exact match proves the pipeline's incremental checksum updates equal
// a full recompute.

import { describe, it, expect } from "vitest";
import { node, svc, NODE_IP, CLIENT_POD, EXTERNAL, VIP } from "../helpers/node.js";
import { buildFrame, decodeFrame, type FrameSpec } from "../../src/host/frames.js";
import type { ServicePortModel } from "../../src/proxy/programmer.js";
import type { DataplaneConfig } from "../../src/maps/dataplane.js";

const MAC_C = "02:00:00:00:00:01"; // the kernel side of the TAP (frame source)
const MAC_T = "02:00:00:00:00:02"; // the next hop behind the TAP (frame destination)
const BE1 = "10.244.1.10";
const BE2 = "10.244.1.11";
const LOCAL_BE = "10.244.0.20";

/** The frame as it comes out: MACs swapped, the rest as `spec`. */
function out(spec: FrameSpec): Uint8Array {
  return buildFrame({ ...spec, srcMac: MAC_T, dstMac: MAC_C });
}
function inp(spec: FrameSpec): Uint8Array {
  return buildFrame({ ...spec, srcMac: MAC_C, dstMac: MAC_T });
}

interface Fixture {
  description: string;
  services: ServicePortModel[];
  config?: Partial<DataplaneConfig>;
  /** Frames sent before the one under test (their results are not checked). */
  before?: FrameSpec[];
  input: FrameSpec;
  verdict: string;
  reason: string;
  /** Expected output frame; omitted for PASS/DROP (the frame must be unchanged). */
  expected?: Uint8Array;
}

const ep = (ip: string, port = 8080, extra: object = {}) => ({ ip, port, nodeName: "node-b", ...extra });
const syn = (src: string, dst: string, sport: number, dport: number, proto: FrameSpec["proto"] = "TCP"): FrameSpec =>
  ({ src, dst, proto, sport, dport, flags: "S", payload: proto === "TCP" ? undefined : "ping" });

const fixtures: Fixture[] = [
  {
    description: "ClusterIP TCP SYN: new flow, DNAT to the backend",
    services: [svc({ endpoints: [ep(BE1)] })],
    input: syn(CLIENT_POD, VIP, 40000, 80),
    verdict: "TX", reason: "new_flow",
    expected: out(syn(CLIENT_POD, BE1, 40000, 8080)),
  },
  {
    description: "established forward packet with payload follows conntrack",
    services: [svc({ endpoints: [ep(BE1)] })],
    before: [syn(CLIENT_POD, VIP, 40000, 80)],
    input: { src: CLIENT_POD, dst: VIP, proto: "TCP", sport: 40000, dport: 80, flags: "PA", payload: "GET / HTTP/1.1\r\n\r\n" },
    verdict: "TX", reason: "established",
    expected: out({ src: CLIENT_POD, dst: BE1, proto: "TCP", sport: 40000, dport: 8080, flags: "PA", payload: "GET / HTTP/1.1\r\n\r\n" }),
  },
  {
    description: "reply of a tracked flow: source becomes the VIP",
    services: [svc({ endpoints: [ep(BE1)] })],
    before: [syn(CLIENT_POD, VIP, 40000, 80)],
    input: { src: BE1, dst: CLIENT_POD, proto: "TCP", sport: 8080, dport: 40000, flags: "SA" },
    verdict: "TX", reason: "reply",
    expected: out({ src: VIP, dst: CLIENT_POD, proto: "TCP", sport: 80, dport: 40000, flags: "SA" }),
  },
  {
    description: "UDP with checksum: DNAT and checksum fix-up",
    services: [svc({ key: "default/dns:dns/UDP", protocol: "UDP", port: 53, endpoints: [ep(BE1, 5353)] })],
    input: syn(CLIENT_POD, VIP, 41000, 53, "UDP"),
    verdict: "TX", reason: "new_flow",
    expected: out(syn(CLIENT_POD, BE1, 41000, 5353, "UDP")),
  },
  {
    description: "UDP with zero checksum stays without checksum",
    services: [svc({ key: "default/dns:dns/UDP", protocol: "UDP", port: 53, endpoints: [ep(BE1, 5353)] })],
    input: { ...syn(CLIENT_POD, VIP, 41000, 53, "UDP"), udpZeroChecksum: true },
    verdict: "TX", reason: "new_flow",
    expected: out({ ...syn(CLIENT_POD, BE1, 41000, 5353, "UDP"), udpZeroChecksum: true }),
  },
  {
    description: "SCTP: DNAT with CRC32c recomputed",
    services: [svc({ key: "default/s:s/SCTP", protocol: "SCTP", port: 9000, endpoints: [ep(BE1, 9001)] })],
    input: syn(CLIENT_POD, VIP, 5000, 9000, "SCTP"),
    verdict: "TX", reason: "new_flow",
    expected: out(syn(CLIENT_POD, BE1, 5000, 9001, "SCTP")),
  },
  {
    description: "IPv4 options are skipped and kept",
    services: [svc({ endpoints: [ep(BE1)] })],
    input: { ...syn(CLIENT_POD, VIP, 40000, 80), ipOptions: new Uint8Array([0x01, 0x01, 0x01, 0x00]) },
    verdict: "TX", reason: "new_flow",
    expected: out({ ...syn(CLIENT_POD, BE1, 40000, 8080), ipOptions: new Uint8Array([0x01, 0x01, 0x01, 0x00]) }),
  },
  {
    description: "no endpoints: ICMP port unreachable from the VIP (connection refused)",
    services: [svc({ endpoints: [] })],
    input: syn(CLIENT_POD, VIP, 40000, 80),
    verdict: "REPLY", reason: "no_endpoints",
  },
  {
    description: "a service address on a port it does not serve is rejected",
    services: [svc({ endpoints: [ep(BE1)] })],
    input: syn(CLIENT_POD, VIP, 40000, 81),
    verdict: "REPLY", reason: "unknown_port",
  },
  {
    description: "traffic to no service passes unchanged",
    services: [svc({ endpoints: [ep(BE1)] })],
    input: syn(CLIENT_POD, "10.244.1.99", 40000, 80),
    verdict: "PASS", reason: "not_service",
  },
  {
    description: "internalTrafficPolicy Local without a local endpoint drops",
    services: [svc({ internalTrafficPolicyLocal: true, endpoints: [ep(BE1)] })],
    input: syn(CLIENT_POD, VIP, 40000, 80),
    verdict: "DROP", reason: "no_local_endpoint",
  },
  {
    description: "externalTrafficPolicy Local: external client to a NodePort without local endpoint drops",
    services: [svc({ nodePort: 30007, externalTrafficPolicyLocal: true, endpoints: [ep(BE1)] })],
    input: syn(EXTERNAL, NODE_IP, 50000, 30007),
    verdict: "DROP", reason: "no_local_endpoint",
  },
  {
    description: "externalTrafficPolicy Local: this node's pod still uses the cluster set",
    services: [svc({ nodePort: 30007, externalTrafficPolicyLocal: true, endpoints: [ep(BE1)] })],
    input: syn(CLIENT_POD, NODE_IP, 50000, 30007),
    verdict: "TX", reason: "new_flow",
    expected: out(syn(CLIENT_POD, BE1, 50000, 8080)),
  },
  {
    description: "externalTrafficPolicy Local with a local endpoint keeps the client address",
    services: [svc({ nodePort: 30007, externalTrafficPolicyLocal: true, endpoints: [ep(BE1), { ip: LOCAL_BE, port: 8080, nodeName: "node-a" }] })],
    input: syn(EXTERNAL, NODE_IP, 50000, 30007),
    verdict: "TX", reason: "new_flow",
    expected: out(syn(EXTERNAL, LOCAL_BE, 50000, 8080)),
  },
  {
    description: "loadBalancerSourceRanges: an unlisted source is dropped at the LB address",
    services: [svc({ loadBalancerIPs: ["198.51.100.5"], loadBalancerSourceRanges: ["203.0.113.0/28"], endpoints: [ep(BE1)] })],
    input: syn("203.0.113.99", "198.51.100.5", 50000, 80),
    verdict: "DROP", reason: "source_range",
  },
  {
    description: "loadBalancerSourceRanges: a listed source reaches the LB address (masqueraded, policy Cluster)",
    services: [svc({ loadBalancerIPs: ["198.51.100.5"], loadBalancerSourceRanges: ["203.0.113.0/28"], endpoints: [ep(BE1)] })],
    input: syn("203.0.113.7", "198.51.100.5", 50000, 80),
    verdict: "TX", reason: "new_flow",
  },
  {
    description: "loadBalancerSourceRanges do not filter the NodePort",
    services: [svc({ nodePort: 30080, loadBalancerIPs: ["198.51.100.5"], loadBalancerSourceRanges: ["203.0.113.0/28"], endpoints: [ep(BE1)] })],
    input: syn("203.0.113.99", NODE_IP, 50000, 30080),
    verdict: "TX", reason: "new_flow",
  },
  {
    description: "masquerade needed but no SNAT address configured: dropped, counted",
    services: [svc({ nodePort: 30007, endpoints: [ep(BE1)] })],
    config: { snatAddr: null },
    input: syn(EXTERNAL, NODE_IP, 50000, 30007),
    verdict: "DROP", reason: "snat_no_addr",
  },
  {
    description: "terminating fallback: only serving+terminating endpoints are used",
    services: [svc({ endpoints: [ep(BE1, 8080, { ready: false, serving: true, terminating: true })] })],
    input: syn(CLIENT_POD, VIP, 40000, 80),
    verdict: "TX", reason: "new_flow",
    expected: out(syn(CLIENT_POD, BE1, 40000, 8080)),
  },
  {
    description: "a ready endpoint wins over a terminating one",
    services: [svc({ endpoints: [ep(BE1, 8080, { ready: false, serving: true, terminating: true }), ep(BE2)] })],
    input: syn(CLIENT_POD, VIP, 40000, 80),
    verdict: "TX", reason: "new_flow",
    expected: out(syn(CLIENT_POD, BE2, 40000, 8080)),
  },
  {
    description: "not-ready, not-terminating endpoints only: rejected like no endpoints",
    services: [svc({ endpoints: [ep(BE1, 8080, { ready: false, serving: false })] })],
    input: syn(CLIENT_POD, VIP, 40000, 80),
    verdict: "REPLY", reason: "no_endpoints",
  },
  {
    description: "ping to a service address is answered",
    services: [svc({ endpoints: [ep(BE1)] })],
    input: { src: CLIENT_POD, dst: VIP, proto: "ICMP", icmpType: 8, payload: "abcdefgh" },
    verdict: "REPLY", reason: "echo",
    expected: out({ src: VIP, dst: CLIENT_POD, proto: "ICMP", icmpType: 0, payload: "abcdefgh" }),
  },
  {
    description: "externalIPs are frontends (masqueraded from outside)",
    services: [svc({ externalIPs: ["198.51.100.20"], endpoints: [ep(BE1)] })],
    input: syn(EXTERNAL, "198.51.100.20", 50000, 80),
    verdict: "TX", reason: "new_flow",
  },
  {
    description: "a TCP packet without SYN and without conntrack is picked up mid-stream",
    services: [svc({ endpoints: [ep(BE1)] })],
    input: { src: CLIENT_POD, dst: VIP, proto: "TCP", sport: 40001, dport: 80, flags: "A" },
    verdict: "TX", reason: "new_flow",
    expected: out({ src: CLIENT_POD, dst: BE1, proto: "TCP", sport: 40001, dport: 8080, flags: "A" }),
  },
];

describe("scenario fixtures", () => {
  for (const f of fixtures) {
    it(f.description, () => {
      const { dp, prog } = node({ config: f.config });
      prog.sync(f.services);
      for (const b of f.before ?? []) dp.process([{ data: inp(b) }], 1000);
      const input = inp(f.input);
      const [r] = dp.process([{ data: input }], 1000);
      expect(`${r!.verdict} ${r!.reasonName}`).toBe(`${f.verdict} ${f.reason}`);
      if (f.expected) expect(Buffer.from(r!.data).toString("hex")).toBe(Buffer.from(f.expected).toString("hex"));
      if (f.verdict === "PASS" || f.verdict === "DROP") expect(r!.data).toEqual(input);
      if (f.verdict !== "DROP") expect(decodeFrame(r!.data).badChecksums).toEqual([]);
    });
  }
});

describe("rejects and ICMP", () => {
  it("builds an ICMP port unreachable quoting the offending header and 8 bytes", () => {
    const { dp, prog } = node();
    prog.sync([svc({ endpoints: [] })]);
    const input = inp(syn(CLIENT_POD, VIP, 40000, 80));
    const [r] = dp.process([{ data: input }], 1000);
    const d = decodeFrame(r!.data);
    expect(d).toMatchObject({ src: VIP, dst: CLIENT_POD, proto: "ICMP", icmpType: 3, icmpCode: 3, srcMac: MAC_T, dstMac: MAC_C });
    expect(d.inner).toEqual({ src: CLIENT_POD, dst: VIP, proto: "TCP", sport: 40000, dport: 80 });
    expect(d.badChecksums).toEqual([]);
    expect(r!.data.length).toBe(14 + 20 + 8 + 20 + 8);
    // The quote is the original IP header and first 8 bytes of TCP, byte for byte.
    expect(Buffer.from(r!.data.subarray(42, 42 + 28))).toEqual(Buffer.from(input.subarray(14, 14 + 28)));
  });

  it("translates an ICMP port unreachable from the backend back to the VIP (inner header too)", () => {
    const { dp, prog } = node();
    prog.sync([svc({ key: "default/dns:dns/UDP", protocol: "UDP", port: 53, endpoints: [ep(BE1, 5353)] })]);
    const [fwd] = dp.process([{ data: inp(syn(CLIENT_POD, VIP, 41000, 53, "UDP")) }], 1000);
    // The backend answers the translated datagram with port unreachable, quoting it.
    const quoted = buildFrame(syn(CLIENT_POD, BE1, 41000, 5353, "UDP")).subarray(14, 14 + 28);
    const err = inp({ src: BE1, dst: CLIENT_POD, proto: "ICMP", icmpType: 3, icmpCode: 3, icmpRest: 0, payload: quoted });
    const [r] = dp.process([{ data: err }], 1001);
    expect(fwd!.verdict).toBe("TX");
    expect(`${r!.verdict} ${r!.reasonName}`).toBe("TX icmp_error");
    const d = decodeFrame(r!.data);
    expect(d).toMatchObject({ src: VIP, dst: CLIENT_POD, icmpType: 3 });
    expect(d.inner).toEqual({ src: CLIENT_POD, dst: VIP, proto: "UDP", sport: 41000, dport: 53 });
    expect(d.badChecksums).toEqual([]);
    // Equal to what a kernel would have produced from the untranslated flow.
    const want = out({ src: VIP, dst: CLIENT_POD, proto: "ICMP", icmpType: 3, icmpCode: 3, icmpRest: 0, payload: buildFrame(syn(CLIENT_POD, VIP, 41000, 53, "UDP")).subarray(14, 14 + 28) });
    expect(Buffer.from(r!.data).toString("hex")).toBe(Buffer.from(want).toString("hex"));
  });

  it("passes an ICMP error that quotes no tracked flow", () => {
    const { dp, prog } = node();
    prog.sync([svc({ endpoints: [ep(BE1)] })]);
    const quoted = buildFrame(syn(CLIENT_POD, "10.9.9.9", 1, 2, "UDP")).subarray(14, 14 + 28);
    const [r] = dp.process([{ data: inp({ src: "10.9.9.9", dst: CLIENT_POD, proto: "ICMP", icmpType: 3, icmpCode: 3, icmpRest: 0, payload: quoted }) }], 1000);
    expect(`${r!.verdict} ${r!.reasonName}`).toBe("PASS icmp_untracked");
  });

  it("translates fragmentation-needed from the backend for a masqueraded TCP flow", () => {
    const { dp, prog } = node();
    prog.sync([svc({ nodePort: 30007, endpoints: [ep(BE1)] })]);
    const [fwd] = dp.process([{ data: inp(syn(EXTERNAL, NODE_IP, 50000, 30007)) }], 1000);
    const t = decodeFrame(fwd!.data);
    expect(t.src).toBe(NODE_IP);
    const quoted = buildFrame(syn(NODE_IP, BE1, t.sport!, 8080)).subarray(14, 14 + 28);
    const [r] = dp.process([{ data: inp({ src: BE1, dst: NODE_IP, proto: "ICMP", icmpType: 3, icmpCode: 4, icmpRest: 1400, payload: quoted }) }], 1001);
    expect(`${r!.verdict} ${r!.reasonName}`).toBe("TX icmp_error");
    const d = decodeFrame(r!.data);
    expect(d).toMatchObject({ src: NODE_IP, dst: EXTERNAL, icmpType: 3, icmpCode: 4 });
    expect(d.inner).toEqual({ src: EXTERNAL, dst: NODE_IP, proto: "TCP", sport: 50000, dport: 30007 });
    expect(d.badChecksums).toEqual([]);
  });
});

describe("masquerade (SNAT)", () => {
  it("external traffic with policy Cluster is masqueraded to the node address and un-masqueraded on reply", () => {
    const { dp, prog } = node();
    prog.sync([svc({ nodePort: 30007, endpoints: [ep(BE1)] })]);
    const [r] = dp.process([{ data: inp(syn(EXTERNAL, NODE_IP, 50000, 30007)) }], 1000);
    const d = decodeFrame(r!.data);
    expect(d).toMatchObject({ src: NODE_IP, dst: BE1, dport: 8080 });
    expect(d.sport).toBeGreaterThanOrEqual(32768);
    expect(d.badChecksums).toEqual([]);
    expect(dp.maps.snat.count).toBe(1);
    const [back] = dp.process([{ data: inp({ src: BE1, dst: NODE_IP, proto: "TCP", sport: 8080, dport: d.sport!, flags: "SA" }) }], 1000);
    expect(Buffer.from(back!.data).toString("hex")).toBe(Buffer.from(out({ src: NODE_IP, dst: EXTERNAL, proto: "TCP", sport: 30007, dport: 50000, flags: "SA" })).toString("hex"));
  });

  it("hairpin: a backend reaching its own service is masqueraded", () => {
    const { dp, prog } = node();
    prog.sync([svc({ endpoints: [{ ip: LOCAL_BE, port: 8080, nodeName: "node-a" }] })]);
    const [r] = dp.process([{ data: inp(syn(LOCAL_BE, VIP, 40000, 80)) }], 1000);
    const d = decodeFrame(r!.data);
    expect(d).toMatchObject({ src: NODE_IP, dst: LOCAL_BE, dport: 8080 });
    const [back] = dp.process([{ data: inp({ src: LOCAL_BE, dst: NODE_IP, proto: "TCP", sport: 8080, dport: d.sport!, flags: "SA" }) }], 1000);
    expect(decodeFrame(back!.data)).toMatchObject({ src: VIP, sport: 80, dst: LOCAL_BE, dport: 40000 });
  });

  it("runs out of source ports with a clear drop reason, and frees them when flows go", () => {
    const { dp, prog } = node({ config: { snatPortMin: 40000, snatPortMax: 40001 } });
    prog.sync([svc({ nodePort: 30007, endpoints: [ep(BE1)] })]);
    const res = dp.process([0, 1, 2].map((i) => ({ data: inp(syn(`203.0.113.${10 + i}`, NODE_IP, 50000, 30007)) })), 1000);
    expect(res.map((r) => `${r.verdict} ${r.reasonName}`)).toEqual(["TX new_flow", "TX new_flow", "DROP snat_no_port"]);
    dp.sweepAll(1000 + 121); // SYN timeout passes: the flows and their ports go
    expect(dp.maps.conntrack.count).toBe(0);
    expect(dp.maps.snat.count).toBe(0);
    const [again] = dp.process([{ data: inp(syn("203.0.113.12", NODE_IP, 50000, 30007)) }], 1200);
    expect(again!.verdict).toBe("TX");
  });

  it("masquerades ClusterIP traffic from off-node sources when configured", () => {
    const { dp, prog } = node({ config: { masqueradeOffNode: true } });
    prog.sync([svc({ endpoints: [ep(BE1)] })]);
    const [a] = dp.process([{ data: inp(syn(EXTERNAL, VIP, 50000, 80)) }], 1000);
    const [b] = dp.process([{ data: inp(syn(CLIENT_POD, VIP, 50000, 80)) }], 1000);
    expect(decodeFrame(a!.data).src).toBe(NODE_IP);
    expect(decodeFrame(b!.data).src).toBe(CLIENT_POD);
  });
});

describe("conntrack", () => {
  it("creates two entries per flow and counts the backend's connection", () => {
    const { dp, prog } = node();
    prog.sync([svc({ endpoints: [ep(BE1)] })]);
    dp.process([{ data: inp(syn(CLIENT_POD, VIP, 40000, 80)) }], 1000);
    expect(dp.maps.conntrack.count).toBe(2);
    const id = prog.backendId(BE1, 8080, "TCP")!;
    expect(dp.maps.backends.get(id).activeConns).toBe(1);
    const fwd = dp.maps.conntrack.lookup({ saddrBe: CLIENT_POD, daddrBe: VIP, sportBe: 40000, dportBe: 80, proto: 6 });
    expect(fwd).toMatchObject({ peerAddrBe: BE1, peerPortBe: 8080, state: 1, expiresSec: 1000 + 120 });
    const rev = dp.maps.conntrack.lookup({ saddrBe: BE1, daddrBe: CLIENT_POD, sportBe: 8080, dportBe: 40000, proto: 6 });
    expect(rev).toMatchObject({ peerAddrBe: VIP, peerPortBe: 80, natAddrBe: CLIENT_POD, natPortBe: 40000 });
  });

  it("follows the TCP handshake to established (long timeout) and FIN to closing", () => {
    const { dp, prog } = node();
    prog.sync([svc({ endpoints: [ep(BE1)] })]);
    const key = { saddrBe: CLIENT_POD, daddrBe: VIP, sportBe: 40000, dportBe: 80, proto: 6 };
    dp.process([{ data: inp(syn(CLIENT_POD, VIP, 40000, 80)) }], 1000);
    dp.process([{ data: inp({ src: BE1, dst: CLIENT_POD, proto: "TCP", sport: 8080, dport: 40000, flags: "SA" }) }], 1000);
    dp.process([{ data: inp({ src: CLIENT_POD, dst: VIP, proto: "TCP", sport: 40000, dport: 80, flags: "A" }) }], 1001);
    expect(dp.maps.conntrack.lookup(key)).toMatchObject({ state: 2, expiresSec: 1001 + 86400 });
    dp.sweepAll(1000 + 500); // past the SYN timeout: an established flow stays
    expect(dp.maps.conntrack.count).toBe(2);
    dp.process([{ data: inp({ src: CLIENT_POD, dst: VIP, proto: "TCP", sport: 40000, dport: 80, flags: "FA" }) }], 1600);
    expect(dp.maps.conntrack.lookup(key)).toMatchObject({ state: 3, expiresSec: 1600 + 120 });
    expect(dp.maps.backends.get(prog.backendId(BE1, 8080, "TCP")!).activeConns).toBe(0);
    dp.sweepAll(1600 + 121);
    expect(dp.maps.conntrack.count).toBe(0);
  });

  it("a SYN reusing the ports of a closed flow starts a new flow", () => {
    const { dp, prog } = node();
    prog.sync([svc({ endpoints: [ep(BE1)] })]);
    dp.process([{ data: inp(syn(CLIENT_POD, VIP, 40000, 80)) }], 1000);
    dp.process([{ data: inp({ src: CLIENT_POD, dst: VIP, proto: "TCP", sport: 40000, dport: 80, flags: "R" }) }], 1001);
    const [r] = dp.process([{ data: inp(syn(CLIENT_POD, VIP, 40000, 80)) }], 1002);
    expect(r!.reasonName).toBe("new_flow");
  });

  it("UDP: unreplied timeout, then stream timeout once a reply was seen; expired flows become new", () => {
    const { dp, prog } = node();
    prog.sync([svc({ key: "default/dns:dns/UDP", protocol: "UDP", port: 53, endpoints: [ep(BE1, 5353)] })]);
    const key = { saddrBe: CLIENT_POD, daddrBe: VIP, sportBe: 41000, dportBe: 53, proto: 17 };
    dp.process([{ data: inp(syn(CLIENT_POD, VIP, 41000, 53, "UDP")) }], 1000);
    expect(dp.maps.conntrack.lookup(key)!.expiresSec).toBe(1030);
    dp.process([{ data: inp(syn(BE1, CLIENT_POD, 5353, 41000, "UDP")) }], 1005);
    expect(dp.maps.conntrack.lookup(key)!.expiresSec).toBe(1125);
    const [late] = dp.process([{ data: inp(syn(CLIENT_POD, VIP, 41000, 53, "UDP")) }], 1200);
    expect(late!.reasonName).toBe("new_flow");
  });

  it("a one-way flow keeps both entries alive (the idle reply entry adopts the live lifetime)", () => {
    const { dp, prog } = node();
    prog.sync([svc({ key: "default/dns:dns/UDP", protocol: "UDP", port: 53, endpoints: [ep(BE1, 5353)] })]);
    for (let t = 1000; t < 1100; t += 20) dp.process([{ data: inp(syn(CLIENT_POD, VIP, 41000, 53, "UDP")) }], t);
    dp.sweepAll(1100);
    expect(dp.maps.conntrack.count).toBe(2);
    const [r] = dp.process([{ data: inp(syn(BE1, CLIENT_POD, 5353, 41000, "UDP")) }], 1101);
    expect(r!.reasonName).toBe("reply");
  });

  it("LRU: a full table evicts the stalest flow, never fails, and the evicted flow starts over", () => {
    const { dp, prog } = node({ maxEntries: { conntrack: 8 } });
    prog.sync([svc({ endpoints: [ep(BE1)] })]);
    for (let i = 0; i < 12; i++) dp.process([{ data: inp(syn(CLIENT_POD, VIP, 40000 + i, 80)) }], 1000 + i);
    expect(dp.maps.conntrack.count).toBeLessThanOrEqual(8);
    expect(dp.maps.conntrack.evictions).toBeGreaterThan(0);
    // Entries come and go in pairs: no orphan reply entries.
    const ents = dp.maps.conntrack.entries();
    expect(ents.filter(([, v]) => v.flags & 1).length).toBe(ents.filter(([, v]) => !(v.flags & 1)).length);
    expect(dp.maps.backends.get(prog.backendId(BE1, 8080, "TCP")!).activeConns).toBe(ents.length / 2);
    expect(dp.reasonStats().find((s) => s.name === "ct_full")).toBeUndefined();
  });

  it("a backend leaving under an established TCP flow: the flow is re-selected, not black-holed", () => {
    const { dp, prog } = node();
    prog.sync([svc({ endpoints: [ep(BE1), ep(BE2)] })]);
    const [a] = dp.process([{ data: inp(syn(CLIENT_POD, VIP, 40000, 80)) }], 1000);
    const first = decodeFrame(a!.data).dst!;
    const other = first === BE1 ? BE2 : BE1;
    prog.sync([svc({ endpoints: [ep(other)] })]);
    const [b] = dp.process([{ data: inp({ src: CLIENT_POD, dst: VIP, proto: "TCP", sport: 40000, dport: 80, flags: "A" }) }], 1001);
    expect(`${b!.verdict} ${b!.reasonName}`).toBe("TX reselected");
    expect(decodeFrame(b!.data).dst).toBe(other);
  });

  it("UDP flows to a removed backend are flushed", () => {
    const { dp, prog } = node();
    const model = (eps: ReturnType<typeof ep>[]) => svc({ key: "default/dns:dns/UDP", protocol: "UDP", port: 53, endpoints: eps });
    prog.sync([model([ep(BE1, 5353)])]);
    dp.process([{ data: inp(syn(CLIENT_POD, VIP, 41000, 53, "UDP")) }], 1000);
    expect(dp.maps.conntrack.count).toBe(2);
    const res = prog.sync([model([ep(BE2, 5353)])]);
    expect(res.flushedFlows).toBe(1);
    expect(dp.maps.conntrack.count).toBe(0);
  });
});

describe("session affinity", () => {
  const many = Array.from({ length: 10 }, (_, i) => ep(`10.244.1.${20 + i}`));

  it("pins a client to one backend across flows; other clients spread", () => {
    const { dp, prog } = node();
    prog.sync([svc({ affinityTimeoutSeconds: 100, endpoints: many })]);
    const dsts = new Set<string>();
    for (let i = 0; i < 20; i++) dsts.add(decodeFrame(dp.process([{ data: inp(syn(CLIENT_POD, VIP, 40000 + i, 80)) }], 1000 + i)[0]!.data).dst!);
    expect(dsts.size).toBe(1);
    const others = new Set<string>();
    for (let i = 0; i < 40; i++) others.add(decodeFrame(dp.process([{ data: inp(syn(`10.244.0.${50 + i}`, VIP, 40000, 80)) }], 1000)[0]!.data).dst!);
    expect(others.size).toBeGreaterThan(3);
  });

  it("is refreshed on use and expires after timeoutSeconds of silence", () => {
    const { dp, prog } = node({ seed: 7 });
    prog.sync([svc({ affinityTimeoutSeconds: 10, endpoints: many })]);
    const send = (port: number, t: number) => decodeFrame(dp.process([{ data: inp(syn(CLIENT_POD, VIP, port, 80)) }], t)[0]!.data).dst!;
    const first = send(40000, 1000);
    expect(send(40001, 1009)).toBe(first); // refreshed at 1009
    expect(send(40002, 1018)).toBe(first); // 9 s after the refresh: still pinned
    const aff = dp.maps.affinity.lookup({ clientAddrBe: CLIENT_POD, svcId: prog.serviceId("default/web:http/TCP")! });
    expect(aff).toMatchObject({ lastUsedSec: 1018 });
    // After the timeout the choice is made afresh; over many expiries it must change at least once.
    const after = new Set<string>();
    for (let i = 0; i < 20; i++) after.add(send(41000 + i, 1100 + i * 20));
    expect(after.size).toBeGreaterThan(1);
  });

  it("switching affinity off makes choices independent again", () => {
    const { dp, prog } = node();
    prog.sync([svc({ affinityTimeoutSeconds: 100, endpoints: many })]);
    prog.sync([svc({ affinityTimeoutSeconds: null, endpoints: many })]);
    const dsts = new Set<string>();
    for (let i = 0; i < 30; i++) dsts.add(decodeFrame(dp.process([{ data: inp(syn(CLIENT_POD, VIP, 40000 + i, 80)) }], 1000)[0]!.data).dst!);
    expect(dsts.size).toBeGreaterThan(3);
  });
});

describe("counters", () => {
  it("counts packets, bytes and new flows per service and backend, and every frame per reason", () => {
    const { dp, prog } = node();
    prog.sync([svc({ endpoints: [ep(BE1)] })]);
    const f1 = inp(syn(CLIENT_POD, VIP, 40000, 80));
    const f2 = inp({ src: BE1, dst: CLIENT_POD, proto: "TCP", sport: 8080, dport: 40000, flags: "SA" });
    const f3 = inp(syn(CLIENT_POD, "10.1.1.1", 1, 2));
    dp.process([{ data: f1 }, { data: f2 }, { data: f3 }], 1000);
    const sid = prog.serviceId("default/web:http/TCP")!;
    expect(dp.maps.statsService.get(sid)).toEqual({ packets: 2n, bytes: BigInt(f1.length + f2.length), flows: 1n });
    expect(dp.maps.statsBackend.get(prog.backendId(BE1, 8080, "TCP")!)).toEqual({ packets: 2n, bytes: BigInt(f1.length + f2.length), flows: 1n });
    const byName = Object.fromEntries(dp.reasonStats().map((s) => [s.name, s.packets]));
    expect(byName).toEqual({ new_flow: 1n, reply: 1n, not_service: 1n });
  });
});
