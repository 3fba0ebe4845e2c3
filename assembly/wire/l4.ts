// Transport header views: TCP (RFC 9293), UDP (RFC 768), ICMP (RFC 792), SCTP (RFC 9260).
// Ports are raw (network order as loaded). checkLen guarantees: after `l4MinLen(proto)` bytes
// are known to be present, the port and checksum accessors for that protocol read inside them.

import { IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP, IPPROTO_ICMP } from "./ipv4";

// Ports sit at offsets 0 and 2 in TCP, UDP and SCTP alike.
export const L4_SPORT: u32 = 0;
export const L4_DPORT: u32 = 2;

export const TCP_SEQ: u32 = 4;
export const TCP_ACK: u32 = 8;
export const TCP_DOFF: u32 = 12; // high nibble = header length / 4
export const TCP_FLAGS: u32 = 13;
export const TCP_CSUM: u32 = 16;
export const TCP_MIN_HLEN: u32 = 20;
export const TCP_FIN: u32 = 0x01;
export const TCP_SYN: u32 = 0x02;
export const TCP_RST: u32 = 0x04;
export const TCP_ACKF: u32 = 0x10;

export const UDP_LEN: u32 = 4;
export const UDP_CSUM: u32 = 6;
export const UDP_HLEN: u32 = 8;

export const SCTP_VTAG: u32 = 4;
export const SCTP_CSUM: u32 = 8; // CRC32c, little-endian on the wire
export const SCTP_HLEN: u32 = 12;

export const ICMP_TYPE: u32 = 0;
export const ICMP_CODE: u32 = 1;
export const ICMP_CSUM: u32 = 2;
export const ICMP_ECHO_ID: u32 = 4;
export const ICMP_HLEN: u32 = 8;
export const ICMP_ECHO_REPLY: u32 = 0;
export const ICMP_DEST_UNREACH: u32 = 3;
export const ICMP_ECHO_REQUEST: u32 = 8;
export const ICMP_TIME_EXCEEDED: u32 = 11;
export const ICMP_PARAM_PROBLEM: u32 = 12;
export const ICMP_CODE_PORT_UNREACH: u32 = 3;
export const ICMP_CODE_FRAG_NEEDED: u32 = 4;

/** Minimum bytes of the transport header before its fields may be read; 0 = not a known L4. */
export function l4MinLen(proto: u32): u32 {
  if (proto == IPPROTO_TCP) return TCP_MIN_HLEN;
  if (proto == IPPROTO_UDP) return UDP_HLEN;
  if (proto == IPPROTO_SCTP) return SCTP_HLEN;
  if (proto == IPPROTO_ICMP) return ICMP_HLEN;
  return 0;
}

/** Offset of the L4 checksum field for TCP/UDP; 0 when the protocol has none of that kind. */
// @ts-ignore: decorator
@inline export function l4CsumOffset(proto: u32): u32 {
  return proto == IPPROTO_TCP ? TCP_CSUM : proto == IPPROTO_UDP ? UDP_CSUM : 0;
}

// @ts-ignore: decorator
@inline export function tcpFlags(l4: usize): u32 {
  return <u32>load<u8>(l4, TCP_FLAGS);
}
