// The TypeScript frame decoder (src/host/frames.ts) on real captured bytes and on hand-built,
// tshark-verified frames (fixtures.ts): every field it reports and every checksum it verifies,
// plus detection of single-byte corruption. The builder is cross-checked against the kernel's
// own bytes where it can express the same packet.

import { describe, it, expect } from "vitest";
import { decodeFrame, describeFrame, buildFrame, inetChecksum, crc32c } from "../../src/host/frames.js";
import * as F from "./fixtures.js";

function corrupt(frame: Uint8Array, at: number, xor = 0x01): Uint8Array {
  const c = frame.slice();
  c[at]! ^= xor;
  return c;
}

describe("decodeFrame on captured and hand-built frames", () => {
  it("every fixture decodes with no bad checksum", () => {
    for (const [name, f] of Object.entries(F.ALL_FIXTURES)) {
      if (name === "FRAG_LAST") continue; // a non-first fragment carries no L4 header: see below
      expect(decodeFrame(f).badChecksums, name).toEqual([]);
    }
  });

  it("TCP SYN with TCP options (kernel capture)", () => {
    const d = decodeFrame(F.TCP_SYN);
    expect(d).toMatchObject({
      ethertype: 0x0800, srcMac: F.CLIENT_MAC, dstMac: F.PEER_MAC, src: F.CLIENT, dst: F.PEER, proto: "TCP",
      sport: 59980, dport: 8080, ttl: 64, tcpFlags: "S", payloadLength: 0, badChecksums: [],
    });
    expect(describeFrame(F.TCP_SYN)).toBe("10.99.0.1:59980 > 10.99.0.2:8080 TCP S");
  });

  it("TCP RST,ACK", () => {
    expect(decodeFrame(F.TCP_RST)).toMatchObject({ src: F.PEER, dst: F.CLIENT, sport: 8080, dport: 59980, tcpFlags: "RA", badChecksums: [] });
  });

  it("UDP with a checksum and UDP with checksum 0 (no checksum)", () => {
    expect(decodeFrame(F.UDP_QUERY)).toMatchObject({ proto: "UDP", sport: 47903, dport: 53, payloadLength: 7, badChecksums: [] });
    expect(decodeFrame(F.UDP_NO_CSUM)).toMatchObject({ proto: "UDP", sport: 40053, dport: 53, payloadLength: 6, badChecksums: [] });
    expect(F.UDP_NO_CSUM[14 + 20 + 6]).toBe(0);
    expect(F.UDP_NO_CSUM[14 + 20 + 7]).toBe(0);
  });

  it("ICMP port unreachable quoting a UDP datagram", () => {
    const d = decodeFrame(F.ICMP_PORT_UNREACH);
    expect(d).toMatchObject({
      src: F.PEER, dst: F.CLIENT, proto: "ICMP", icmpType: 3, icmpCode: 3, badChecksums: [],
      inner: { src: F.CLIENT, dst: F.PEER, proto: "UDP", sport: 47903, dport: 53 },
    });
    expect(describeFrame(F.ICMP_PORT_UNREACH)).toBe("10.99.0.2 > 10.99.0.1 ICMP type 3 code 3 [quoting 10.99.0.1:47903 > 10.99.0.2:53 UDP]");
  });

  it("ICMP echo request, plain and with IHL 15 options (record route, timestamp)", () => {
    for (const f of [F.ICMP_ECHO, F.ICMP_ECHO_RR, F.ICMP_ECHO_TS]) {
      expect(decodeFrame(f)).toMatchObject({ src: F.CLIENT, dst: F.PEER, proto: "ICMP", icmpType: 8, icmpCode: 0, badChecksums: [] });
    }
    expect(F.ICMP_ECHO_RR[14]).toBe(0x4f);
    expect(F.ICMP_ECHO_TS[14]).toBe(0x4f);
  });

  it("SYN with IP options: IHL 6 and IHL 15 (TCP checksum unaffected by options)", () => {
    for (const [f, ihl] of [[F.SYN_IHL6, 24], [F.SYN_IHL15, 60]] as const) {
      expect(f[14]! & 15).toBe(ihl / 4);
      expect(decodeFrame(f)).toMatchObject({ sport: 59980, dport: 8080, tcpFlags: "S", badChecksums: [] });
      expect(f.subarray(14 + ihl)).toEqual(F.TCP_SYN.subarray(34));
    }
  });

  it("SCTP INIT with a CRC32c", () => {
    expect(decodeFrame(F.SCTP_INIT)).toMatchObject({ proto: "SCTP", sport: 40000, dport: 9000, badChecksums: [] });
  });

  it("ARP, IPv6 and 802.1Q frames report their ethertype only", () => {
    expect(decodeFrame(F.ARP_REQUEST)).toEqual({ ethertype: 0x0806, srcMac: F.CLIENT_MAC, dstMac: "ff:ff:ff:ff:ff:ff", badChecksums: [] });
    expect(decodeFrame(F.IPV6_NS)).toEqual({ ethertype: 0x86dd, srcMac: F.CLIENT_MAC, dstMac: "33:33:ff:63:00:02", badChecksums: [] });
    expect(decodeFrame(F.IPV6_ECHO).ethertype).toBe(0x86dd);
    expect(decodeFrame(F.VLAN_ECHO).ethertype).toBe(0x8100);
    expect(describeFrame(F.VLAN_ECHO)).toBe("ethertype 0x8100");
  });

  it("Ethernet padding after the IP datagram is not checksummed", () => {
    expect(decodeFrame(F.UDP_PADDED)).toMatchObject({ sport: 47903, dport: 53, payloadLength: 7, badChecksums: [] });
    const garbage = F.UDP_PADDED.slice();
    garbage.fill(0xee, F.UDP_QUERY.length);
    expect(decodeFrame(garbage).badChecksums).toEqual([]);
  });

  it("frames shorter than an Ethernet header throw", () => {
    for (let n = 0; n < 14; n++) expect(() => decodeFrame(F.TCP_SYN.subarray(0, n))).toThrow(/shorter than an Ethernet header/);
  });

  // Known limitation of src/host/frames.ts (not assembly/): decodeFrame ignores the fragment
  // fields, so a non-first fragment's payload is parsed as an ICMP header and "fails" the ICMP
  // checksum (and a first fragment's L4 checksum, which covers the whole datagram, fails too).
  // Input FRAG_LAST (kernel capture, offset 2960, MF clear): expected badChecksums [] and no
  // icmpType; got badChecksums ["icmp"], icmpType 0x88.
  it("a non-first fragment is not decoded as an L4 header (frames.ts limitation)", () => {
    const d = decodeFrame(F.FRAG_LAST);
    expect(d.badChecksums).toEqual([]);
    expect(d.icmpType).toBeUndefined();
  });

  it("a non-first fragment: IP header fields and checksum decode correctly", () => {
    const d = decodeFrame(F.FRAG_LAST);
    expect(d).toMatchObject({ src: F.CLIENT, dst: F.PEER, proto: "ICMP" });
    expect(d.badChecksums).not.toContain("ip");
    expect(((F.FRAG_LAST[20]! << 8) | F.FRAG_LAST[21]!) & 0x1fff).toBe(2960 / 8);
  });
});

describe("decodeFrame detects corruption", () => {
  it("a flipped bit in the IP header → ip", () => {
    for (const at of [14 + 1, 14 + 4, 14 + 8, 14 + 10, 14 + 12, 14 + 19]) {
      expect(decodeFrame(corrupt(F.TCP_SYN, at)).badChecksums, `byte ${at}`).toContain("ip");
    }
  });

  it("a flipped bit in an IP option → ip (the header checksum covers the options)", () => {
    for (let at = 14 + 20; at < 14 + 60; at += 7) expect(decodeFrame(corrupt(F.SYN_IHL15, at)).badChecksums, `byte ${at}`).toEqual(["ip"]);
  });

  it("every single-byte corruption of the TCP segment → tcp", () => {
    for (let at = 34; at < F.TCP_SYN.length; at++) {
      expect(decodeFrame(corrupt(F.TCP_SYN, at, 0x40)).badChecksums, `byte ${at}`).toEqual(["tcp"]);
    }
  });

  it("UDP payload corruption → udp; with checksum 0 it goes unnoticed, as RFC 768 allows", () => {
    for (let at = 42; at < F.UDP_QUERY.length; at++) expect(decodeFrame(corrupt(F.UDP_QUERY, at)).badChecksums).toEqual(["udp"]);
    for (let at = 42; at < F.UDP_NO_CSUM.length; at++) expect(decodeFrame(corrupt(F.UDP_NO_CSUM, at)).badChecksums).toEqual([]);
  });

  it("an address change breaks the pseudo-header sum of TCP and UDP", () => {
    const t = corrupt(F.TCP_SYN, 14 + 19);
    expect(decodeFrame(t).badChecksums.sort()).toEqual(["ip", "tcp"]);
    const u = corrupt(F.UDP_QUERY, 14 + 15);
    expect(decodeFrame(u).badChecksums.sort()).toEqual(["ip", "udp"]);
  });

  it("SCTP corruption anywhere (also in the CRC field) → sctp", () => {
    for (let at = 34; at < F.SCTP_INIT.length; at++) expect(decodeFrame(corrupt(F.SCTP_INIT, at)).badChecksums, `byte ${at}`).toEqual(["sctp"]);
  });

  it("ICMP corruption → icmp; a corrupted quoted IP header → inner-ip as well", () => {
    for (let at = 34; at < F.ICMP_ECHO.length; at++) expect(decodeFrame(corrupt(F.ICMP_ECHO, at)).badChecksums).toEqual(["icmp"]);
    const q = corrupt(F.ICMP_PORT_UNREACH, 34 + 8 + 8); // inner TTL
    expect(decodeFrame(q).badChecksums.sort()).toEqual(["icmp", "inner-ip"]);
  });
});

describe("the TS builder and checksums against kernel bytes", () => {
  const PING_DATA = F.ICMP_ECHO.subarray(42);

  it("inetChecksum over each captured IP header is 0 (verifies) and reproduces the stored value", () => {
    for (const [name, f] of Object.entries(F.ALL_FIXTURES)) {
      if (f[12] !== 0x08 || f[13] !== 0x00) continue;
      const ihl = (f[14]! & 15) * 4;
      expect(inetChecksum(f.subarray(14, 14 + ihl)), name).toBe(0);
      const h = f.slice(14, 14 + ihl);
      const stored = (h[10]! << 8) | h[11]!;
      h[10] = 0;
      h[11] = 0;
      expect(inetChecksum(h), name).toBe(stored);
    }
  });

  it("buildFrame's UDP segment equals the kernel's for the same datagram", () => {
    const b = buildFrame({ src: F.CLIENT, dst: F.PEER, proto: "UDP", sport: 47903, dport: 53, payload: "query-1", id: 0xa51b });
    expect(b.subarray(34)).toEqual(F.UDP_QUERY.subarray(34));
    const z = buildFrame({ src: F.CLIENT, dst: F.PEER, proto: "UDP", sport: 40053, dport: 53, payload: "nocsum", udpZeroChecksum: true });
    expect(z.subarray(34)).toEqual(F.UDP_NO_CSUM.subarray(34));
  });

  it("buildFrame's ICMP echo equals the kernel's", () => {
    const b = buildFrame({ src: F.CLIENT, dst: F.PEER, proto: "ICMP", icmpType: 8, icmpCode: 0, icmpRest: 0x274b0001, payload: PING_DATA });
    expect(b.subarray(34)).toEqual(F.ICMP_ECHO.subarray(34));
  });

  it("buildFrame's IPv4 header equals the kernel's apart from DF (which it cannot set)", () => {
    const b = buildFrame({ src: F.CLIENT, dst: F.PEER, proto: "UDP", sport: 47903, dport: 53, payload: "query-1", id: 0xa51b, srcMac: F.CLIENT_MAC, dstMac: F.PEER_MAC });
    const k = F.UDP_QUERY.slice();
    k[20] = 0; // clear DF
    k[24] = 0;
    k[25] = 0;
    const kh = k.subarray(14, 34);
    const sum = inetChecksum(kh);
    k[24] = sum >> 8;
    k[25] = sum & 0xff;
    expect(b).toEqual(k);
  });

  it("buildFrame with ipOptions reproduces the hand-built IHL 6 header", () => {
    const b = buildFrame({ src: F.CLIENT, dst: F.PEER, proto: "ICMP", icmpRest: 0x274b0001, payload: PING_DATA, ipOptions: new Uint8Array([0x94, 4, 0, 0]) });
    expect(b[14]).toBe(0x46);
    expect(b.subarray(34, 38)).toEqual(new Uint8Array([0x94, 4, 0, 0]));
    expect(decodeFrame(b).badChecksums).toEqual([]);
  });

  it("crc32c: RFC 3720 B.4 vectors and the SCTP INIT's stored CRC", () => {
    expect(crc32c(new TextEncoder().encode("123456789"))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i))).toBe(0x46dd794e);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i))).toBe(0x113fdb5c);
    const l4 = F.SCTP_INIT.slice(34);
    const stored = new DataView(l4.buffer).getUint32(8, true);
    new DataView(l4.buffer).setUint32(8, 0, true);
    expect(crc32c(l4)).toBe(stored);
    expect(stored).toBe(0x26573fd2);
  });
});
