// Byte-literal frames for the wire tests (and seeds for the fuzzer).
//
// CAPTURED: real Linux 6.x kernel traffic, captured with tcpdump on a veth pair with checksum
// offload off (ethtool -K va tx off rx off tso off gso off gro off), so every checksum is the
// one the kernel computed. Topology: 10.99.0.1 (02:00:0a:63:00:01) <-> 10.99.0.2
// (02:00:0a:63:00:02). Traffic: a TCP connect to 10.99.0.2:8080 (refused), UDP "query-1" and
// a UDP datagram sent with SO_NO_CHECK to :53 (answered with ICMP port unreachable), ping,
// ping -R (record route: IHL 15), ping -T tsonly (timestamp option: IHL 15), ping6 to the
// peer's link-local address, ping -s 3000 (fragmented), an ARP exchange.
//
// HAND-BUILT (the kernel used had neither 802.1Q nor SCTP): derived from the captures with an
// independent Python checksum/CRC32c implementation and verified with tshark 4
// (`-o ip.check_checksum:TRUE -o tcp.check_checksum:TRUE -o udp.check_checksum:TRUE
// -o sctp.checksum:CRC-32C`): every checksum reported "[correct]".

/** Hex (whitespace allowed) → bytes. */
export function hex(s: string): Uint8Array {
  const h = s.replace(/\s+/g, "");
  if (h.length % 2 !== 0 || /[^0-9a-fA-F]/.test(h)) throw new Error(`bad hex literal: ${s.slice(0, 40)}…`);
  const out = new Uint8Array(h.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(h.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function toHex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

export const CLIENT_MAC = "02:00:0a:63:00:01";
export const PEER_MAC = "02:00:0a:63:00:02";
export const CLIENT = "10.99.0.1";
export const PEER = "10.99.0.2";

// ---- captured ----------------------------------------------------------------------------

/** ARP request: who-has 10.99.0.2 tell 10.99.0.1 (42 bytes, unpadded as captured at the sender). */
export const ARP_REQUEST = hex(`
  ffffffffffff 02000a630001 0806
  0001 0800 06 04 0001 02000a630001 0a630001 000000000000 0a630002`);

/** TCP SYN 10.99.0.1:59980 > 10.99.0.2:8080, DF, options mss 1460,sackOK,TS,nop,wscale 10 (doff 10). */
export const TCP_SYN = hex(`
  02000a630002 02000a630001 0800
  4500003c 4d6b4000 4006d888 0a630001 0a630002
  ea4c1f90 29fb4b13 00000000 a002faf0 129f0000 020405b4 0402080a 51de54db 00000000 0103030a`);

/** TCP RST,ACK 10.99.0.2:8080 > 10.99.0.1:59980 (54 bytes, unpadded). */
export const TCP_RST = hex(`
  02000a630001 02000a630002 0800
  45000028 00004000 40062608 0a630002 0a630001
  1f90ea4c 00000000 29fb4b14 50140000 1c1c0000`);

/** UDP 10.99.0.1:47903 > 10.99.0.2:53 "query-1" with checksum (49 bytes, unpadded). */
export const UDP_QUERY = hex(`
  02000a630002 02000a630001 0800
  45000023 a51b4000 401180e6 0a630001 0a630002
  bb1f0035 000fae9d 71756572792d31`);

/** UDP 10.99.0.1:40053 > 10.99.0.2:53 "nocsum", checksum 0 (SO_NO_CHECK). */
export const UDP_NO_CSUM = hex(`
  02000a630002 02000a630001 0800
  45000022 a51c4000 401180e6 0a630001 0a630002
  9c750035 000e0000 6e6f6373756d`);

/** ICMP port unreachable 10.99.0.2 > 10.99.0.1 quoting UDP_QUERY's whole IP datagram (tos 0xc0). */
export const ICMP_PORT_UNREACH = hex(`
  02000a630001 02000a630002 0800
  45c0003f 1a610000 40014ad5 0a630002 0a630001
  030311e6 00000000
  45000023 a51b4000 401180e6 0a630001 0a630002 bb1f0035 000fae9d 71756572792d31`);

const PING_PAYLOAD = "f13e0c6b00000000cc2c0e0000000000101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637";

/** ICMP echo request 10.99.0.1 > 10.99.0.2, id 10059 seq 1, 56 data bytes. */
export const ICMP_ECHO = hex(`
  02000a630002 02000a630001 0800
  45000054 1fb84000 40010629 0a630001 0a630002
  08003a0a 274b0001 ${PING_PAYLOAD}`);

/** ICMP echo request with a record-route option (ping -R): IHL 15, 40 option bytes. */
export const ICMP_ECHO_RR = hex(`
  02000a630002 02000a630001 0800
  4f00007c 1fba4000 4001c98b 0a630001 0a630002
  01072708 0a630001 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000
  08007bea 274c0001 f13e0c6b 00000000 8a4b0e00 00000000 101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637`);

/** ICMP echo request with a timestamp option (ping -T tsonly): IHL 15. */
export const ICMP_ECHO_TS = hex(`
  02000a630002 02000a630001 0800
  4f00007c 1fbb4000 4001c283 0a630001 0a630002
  44280900 033be916 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000
  08005ad2 274d0001 f13e0c6b 00000000 ab620e00 00000000 101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637`);

/** IPv6 neighbour solicitation fe80::aff:fe63:1 > ff02::1:ff63:2. */
export const IPV6_NS = hex(`
  3333ff630002 02000a630001 86dd
  60000000 00203aff fe8000000000000000000afffe630001 ff0200000000000000000001ff630002
  87005d0b 00000000 fe8000000000000000000afffe630002 0101 02000a630001`);

/** IPv6 ICMPv6 echo request between link-local addresses. */
export const IPV6_ECHO = hex(`
  02000a630002 02000a630001 86dd
  600fa181 00403a40 fe8000000000000000000afffe630001 fe8000000000000000000afffe630002
  80004b65 274f0001 f13e0c6b00000000 32880e0000000000 101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637`);

/** Last fragment of a 3000-byte ping: offset 2960 (0x172 * 8), MF clear, 48 payload bytes. */
export const FRAG_LAST = hex(`
  02000a630002 02000a630001 0800
  45000044 1fbd0172 400144c2 0a630001 0a630002
  88898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7`);

// ---- hand-built (tshark-verified) ----------------------------------------------------------

/** ICMP_ECHO with an 802.1Q tag (VID 100) inserted after the MACs. */
export const VLAN_ECHO = hex(`
  02000a630002 02000a630001 8100 0064 0800
  45000054 1fb84000 40010629 0a630001 0a630002
  08003a0a 274b0001 ${PING_PAYLOAD}`);

/** TCP_SYN with a router-alert IP option: IHL 6 (TCP part unchanged). */
export const SYN_IHL6 = hex(`
  02000a630002 02000a630001 0800
  46000040 4d6b4000 40064380 0a630001 0a630002 94040000
  ea4c1f90 29fb4b13 00000000 a002faf0 129f0000 020405b4 0402080a 51de54db 00000000 0103030a`);

/** TCP_SYN with NOP + an empty record-route option: IHL 15 (TCP part unchanged). */
export const SYN_IHL15 = hex(`
  02000a630002 02000a630001 0800
  4f000064 4d6b4000 4006a655 0a630001 0a630002
  01072704 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000
  ea4c1f90 29fb4b13 00000000 a002faf0 129f0000 020405b4 0402080a 51de54db 00000000 0103030a`);

/** SCTP INIT 10.99.0.1:40000 > 10.99.0.2:9000, vtag 0, one Supported Address Types parameter. */
export const SCTP_INIT = hex(`
  02000a630002 02000a630001 0800
  4502003c 12344000 40841340 0a630001 0a630002
  9c402328 00000000 d23f5726
  0100001a 5a1c0de5 0001a000 000affff 11223344 000c0006 00050000`);

/** UDP_QUERY padded with zeros to the 60-byte Ethernet minimum (IP total length still 35). */
export const UDP_PADDED = hex(`
  02000a630002 02000a630001 0800
  45000023 a51b4000 401180e6 0a630001 0a630002
  bb1f0035 000fae9d 71756572792d31 0000000000000000000000`);

/** UDP_NO_CSUM padded to 60 bytes. */
export const UDP_NO_CSUM_PADDED = hex(`
  02000a630002 02000a630001 0800
  45000022 a51c4000 401180e6 0a630001 0a630002
  9c750035 000e0000 6e6f6373756d 000000000000000000000000`);

export const CAPTURED = {
  ARP_REQUEST, TCP_SYN, TCP_RST, UDP_QUERY, UDP_NO_CSUM, ICMP_PORT_UNREACH, ICMP_ECHO, ICMP_ECHO_RR,
  ICMP_ECHO_TS, IPV6_NS, IPV6_ECHO, FRAG_LAST,
} as const;

export const HAND_BUILT = { VLAN_ECHO, SYN_IHL6, SYN_IHL15, SCTP_INIT, UDP_PADDED, UDP_NO_CSUM_PADDED } as const;

export const ALL_FIXTURES: Record<string, Uint8Array> = { ...CAPTURED, ...HAND_BUILT };
