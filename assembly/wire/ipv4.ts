// IPv4 header view (RFC 791). Addresses stay raw (network byte order as loaded) everywhere.
// checkLen guarantees: after `ipv4Check` returns IP_OK, the header (with options, `ihl` bytes)
// and the `totalLen` bytes it announces lie inside the frame, so no accessor reads outside.

import { csumPartial, csumFold } from "./checksum";

export const IP_VER_IHL: u32 = 0;
export const IP_TOS: u32 = 1;
export const IP_TOT_LEN: u32 = 2;
export const IP_ID: u32 = 4;
export const IP_FRAG: u32 = 6; // flags (3 bits) + fragment offset (13 bits), big-endian
export const IP_TTL: u32 = 8;
export const IP_PROTO: u32 = 9;
export const IP_CSUM: u32 = 10;
export const IP_SADDR: u32 = 12;
export const IP_DADDR: u32 = 16;
export const IP_MIN_HLEN: u32 = 20;

export const IP_FLAG_MF: u32 = 0x2000;
export const IP_OFFSET_MASK: u32 = 0x1fff;

export const IPPROTO_ICMP: u32 = 1;
export const IPPROTO_TCP: u32 = 6;
export const IPPROTO_UDP: u32 = 17;
export const IPPROTO_SCTP: u32 = 132;

// Results of ipv4Check; the pipeline maps them to drop reasons.
export const IP_OK: i32 = 0;
export const IP_ERR_TRUNCATED: i32 = 1; // fewer than 20 bytes, or header/total length past the frame
export const IP_ERR_HEADER: i32 = 2; // version != 4, IHL < 5, or total length < IHL
export const IP_ERR_CSUM: i32 = 3; // header checksum does not verify

// @ts-ignore: decorator
@inline export function ipHeaderLen(ip: usize): u32 {
  return (<u32>load<u8>(ip, IP_VER_IHL) & 0xf) << 2;
}

// @ts-ignore: decorator
@inline export function ipTotalLen(ip: usize): u32 {
  return <u32>bswap<u16>(load<u16>(ip, IP_TOT_LEN));
}

// @ts-ignore: decorator
@inline export function ipProto(ip: usize): u32 {
  return <u32>load<u8>(ip, IP_PROTO);
}

// @ts-ignore: decorator
@inline export function ipSaddr(ip: usize): u32 {
  return load<u32>(ip, IP_SADDR);
}

// @ts-ignore: decorator
@inline export function ipDaddr(ip: usize): u32 {
  return load<u32>(ip, IP_DADDR);
}

/** Host-order flags+offset word. */
// @ts-ignore: decorator
@inline export function ipFragWord(ip: usize): u32 {
  return <u32>bswap<u16>(load<u16>(ip, IP_FRAG));
}

// @ts-ignore: decorator
@inline export function ipIsFragment(ip: usize): bool {
  return (ipFragWord(ip) & (IP_FLAG_MF | IP_OFFSET_MASK)) != 0;
}

// @ts-ignore: decorator
@inline export function ipIsNonFirstFragment(ip: usize): bool {
  return (ipFragWord(ip) & IP_OFFSET_MASK) != 0;
}

/** Validates an IPv4 header of a packet with `avail` bytes from `ip` to the end of the frame. */
export function ipv4Check(ip: usize, avail: u32): i32 {
  if (avail < IP_MIN_HLEN) return IP_ERR_TRUNCATED;
  const vihl = <u32>load<u8>(ip, IP_VER_IHL);
  const ihl = (vihl & 0xf) << 2;
  if ((vihl >> 4) != 4 || ihl < IP_MIN_HLEN) return IP_ERR_HEADER;
  if (ihl > avail) return IP_ERR_TRUNCATED;
  const tot = ipTotalLen(ip);
  if (tot < ihl) return IP_ERR_HEADER;
  if (tot > avail) return IP_ERR_TRUNCATED; // avail > tot is Ethernet padding: allowed
  // Without options the header is five words: sum them directly (same one's-complement sum).
  const sum = ihl == IP_MIN_HLEN
    ? <u64>load<u32>(ip) + <u64>load<u32>(ip, 4) + <u64>load<u32>(ip, 8) + <u64>load<u32>(ip, 12) + <u64>load<u32>(ip, 16)
    : csumPartial(ip, ihl, 0);
  if (csumFold(sum) != 0) return IP_ERR_CSUM;
  return IP_OK;
}

/** Recomputes the header checksum from scratch (used for built headers and by tests). */
export function ipv4SetChecksum(ip: usize): void {
  store<u16>(ip, 0, IP_CSUM);
  store<u16>(ip, csumFold(csumPartial(ip, ipHeaderLen(ip), 0)), IP_CSUM);
}
