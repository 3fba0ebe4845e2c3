// Address and port rewriting with checksum fix-up: IPv4 header checksum and the TCP/UDP
// checksum by incremental update (RFC 1624), UDP's "no checksum" (0) preserved, and SCTP's
// CRC32c recomputed over the packet once all rewrites are done (`l4Finish`).
//
// Checksum offload (a TAP opened with IFF_VNET_HDR and TUNSETOFFLOAD): a frame whose virtio-net
// header says NEEDS_CSUM carries, in its TCP/UDP checksum field, only the folded pseudo-header
// sum, not complemented; whoever sends it on (the kernel, or a NIC) sums the L4 header and
// payload into it later. For such a frame (`csumPartial`, set per frame by the pipeline) an
// address change updates the field without the complements, and a port change leaves it alone:
// ports are part of the data summed later.

import { csumReplace2, csumReplace4 } from "../wire/checksum";
import { crc32c } from "../wire/crc32c";
import { inFrame } from "../bounds";
import { IP_CSUM, IP_SADDR, IP_DADDR, IPPROTO_UDP, IPPROTO_SCTP } from "../wire/ipv4";
import { l4CsumOffset, L4_SPORT, L4_DPORT, SCTP_CSUM } from "../wire/l4";

/** The current frame's L4 checksum is partial (virtio-net NEEDS_CSUM); see the top of this file. */
let csumPartial: bool = false;

export function setCsumPartial(partial: bool): void {
  csumPartial = partial;
}

/** Replaces the IPv4 source (which=IP_SADDR) or destination address and fixes checksums. */
export function rewriteAddr(ip: usize, l4: usize, proto: u32, which: u32, addrRaw: u32, l4Present: bool): void {
  rewriteAddrInline(ip, l4, proto, which, addrRaw, l4Present);
}

// @ts-ignore: decorator
@inline function rewriteAddrInline(ip: usize, l4: usize, proto: u32, which: u32, addrRaw: u32, l4Present: bool): void {
  inFrame(ip, 20);
  const old = load<u32>(ip + which);
  if (old == addrRaw) return;
  store<u32>(ip + which, addrRaw);
  store<u16>(ip + IP_CSUM, csumReplace4(load<u16>(ip + IP_CSUM), old, addrRaw));
  // The TCP/UDP checksum covers the pseudo-header, so the address change reaches it too.
  const co = l4CsumOffset(proto);
  if (co == 0 || !l4Present) return;
  inFrame(l4 + co, 2);
  const c = load<u16>(l4 + co);
  if (csumPartial) {
    // Pseudo-header sum, not complemented: add ~old + new the same way, without the complements.
    store<u16>(l4 + co, <u16>~csumReplace4(<u16>~c, old, addrRaw));
    return;
  }
  if (proto == IPPROTO_UDP && c == 0) return; // UDP without checksum stays without
  let n = csumReplace4(c, old, addrRaw);
  if (proto == IPPROTO_UDP && n == 0) n = 0xffff;
  store<u16>(l4 + co, n);
}

/**
 * Replaces the source (which=L4_SPORT) or destination port (raw) and fixes the L4 checksum
 * when it is present (`csumPresent` false: a quoted header cut before its checksum field).
 */
export function rewritePort(l4: usize, proto: u32, which: u32, portRaw: u32, csumPresent: bool = true): void {
  rewritePortInline(l4, proto, which, portRaw, csumPresent);
}

// @ts-ignore: decorator
@inline function rewritePortInline(l4: usize, proto: u32, which: u32, portRaw: u32, csumPresent: bool): void {
  inFrame(l4 + which, 2);
  const old = load<u16>(l4 + which);
  if (<u32>old == portRaw) return;
  store<u16>(l4 + which, <u16>portRaw);
  const co = l4CsumOffset(proto);
  if (co == 0 || !csumPresent || csumPartial) return; // partial: the port is summed later
  inFrame(l4 + co, 2);
  const c = load<u16>(l4 + co);
  if (proto == IPPROTO_UDP && c == 0) return;
  let n = csumReplace2(c, old, <u16>portRaw);
  if (proto == IPPROTO_UDP && n == 0) n = 0xffff;
  store<u16>(l4 + co, n);
}

/** Destination NAT: (daddr, dport) := (addr, port). */
// @ts-ignore: decorator
@inline export function dnat(ip: usize, l4: usize, proto: u32, addrRaw: u32, portRaw: u32): void {
  rewriteAddrPort(ip, l4, proto, IP_DADDR, L4_DPORT, addrRaw, portRaw);
}

/** Source NAT: (saddr, sport) := (addr, port). */
// @ts-ignore: decorator
@inline export function snat(ip: usize, l4: usize, proto: u32, addrRaw: u32, portRaw: u32): void {
  rewriteAddrPort(ip, l4, proto, IP_SADDR, L4_SPORT, addrRaw, portRaw);
}

/** rewriteAddr then rewritePort, as one call (the per-packet NAT of the pipeline). */
function rewriteAddrPort(ip: usize, l4: usize, proto: u32, addrWhich: u32, portWhich: u32, addrRaw: u32, portRaw: u32): void {
  rewriteAddrInline(ip, l4, proto, addrWhich, addrRaw, true);
  rewritePortInline(l4, proto, portWhich, portRaw, true);
}

/** Finishes an L4 rewrite: SCTP needs its CRC32c recomputed over the whole packet. */
export function l4Finish(l4: usize, proto: u32, l4len: u32): void {
  if (proto != IPPROTO_SCTP) return;
  inFrame(l4, l4len);
  store<u32>(l4 + SCTP_CSUM, 0);
  store<u32>(l4 + SCTP_CSUM, crc32c(l4, l4len)); // CRC bytes little-endian as RFC 9260 B
}

/** True when an SCTP packet's CRC32c verifies (checked before translating it). */
export function sctpCrcOk(l4: usize, l4len: u32): bool {
  const got = load<u32>(l4 + SCTP_CSUM);
  store<u32>(l4 + SCTP_CSUM, 0);
  const want = crc32c(l4, l4len);
  store<u32>(l4 + SCTP_CSUM, got);
  return got == want;
}
