// ICMP handled by the dataplane: replies it builds (port unreachable for rejected service
// traffic, echo replies for pings to service addresses) and the translation of ICMP errors
// that quote a tracked flow (port unreachable, fragmentation needed, time exceeded): the
// outer addresses and the quoted inner header are translated like the flow itself, and the
// ICMP checksum is recomputed over the message.

import { csumFold, csumPartial, csumReplace2 } from "../wire/checksum";
import { ethSwapMacs, ETH_HLEN } from "../wire/ethernet";
import {
  ipHeaderLen, ipTotalLen, ipv4SetChecksum, IP_SADDR, IP_DADDR, IP_TTL,
  IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP,
} from "../wire/ipv4";
import {
  ICMP_CSUM, ICMP_HLEN, ICMP_DEST_UNREACH, ICMP_CODE_PORT_UNREACH, ICMP_ECHO_REPLY,
  L4_SPORT, L4_DPORT, l4CsumOffset,
} from "../wire/l4";
import { rewriteAddr, rewritePort } from "./rewrite";
import { ctKey, ctLookup } from "../conntrack";
import {
  conntrack_value_flags as V_FLAGS, conntrack_value_natAddrBe as V_NAT_ADDR,
  conntrack_value_natPortBe as V_NAT_PORT, conntrack_value_peerAddrBe as V_PEER_ADDR,
  conntrack_value_peerPortBe as V_PEER_PORT, CT_REPLY, CT_SNAT,
} from "../maps/decl";
import { inFrame } from "../bounds";

/** Bytes of the offending datagram's payload quoted after its IP header (RFC 792: 8). */
const QUOTE_L4: u32 = 8;
const REPLY_TTL: u8 = 64;
const errKey = memory.data(16, 16);

export const ICMP_ERR_TRANSLATED: i32 = 0;
export const ICMP_ERR_UNTRACKED: i32 = 1;
export const ICMP_ERR_MALFORMED: i32 = 2;

/**
 * Rewrites the IPv4 frame at p (len bytes, buffer cap) in place into an ICMP destination
 * unreachable / port unreachable from the original destination to the original source,
 * quoting the IP header and 8 bytes of payload. Returns the new length, or 0 if it won't fit.
 */
export function buildPortUnreachable(p: usize, cap: u32): u32 {
  const ip = p + ETH_HLEN;
  const ihl = ipHeaderLen(ip);
  const tot = ipTotalLen(ip);
  const payload = tot - ihl;
  const quote = ihl + (payload < QUOTE_L4 ? payload : QUOTE_L4);
  const outLen = ETH_HLEN + 20 + ICMP_HLEN + quote;
  if (outLen > cap) return 0;
  const saddr = load<u32>(ip + IP_SADDR);
  const daddr = load<u32>(ip + IP_DADDR);
  memory.copy(ip + 20 + ICMP_HLEN, ip, quote); // overlapping move, memmove semantics
  ethSwapMacs(p);
  store<u8>(ip, 0x45);
  store<u8>(ip, 0xc0, 1); // precedence "internetwork control", as Linux sends ICMP errors
  store<u16>(ip, bswap<u16>(<u16>(20 + ICMP_HLEN + quote)), 2);
  store<u32>(ip, 0, 4); // id 0, no fragmentation flags
  store<u8>(ip, REPLY_TTL, IP_TTL);
  store<u8>(ip, <u8>IPPROTO_ICMP, 9);
  store<u32>(ip, daddr, IP_SADDR);
  store<u32>(ip, saddr, IP_DADDR);
  ipv4SetChecksum(ip);
  const icmp = ip + 20;
  store<u8>(icmp, <u8>ICMP_DEST_UNREACH, 0);
  store<u8>(icmp, <u8>ICMP_CODE_PORT_UNREACH, 1);
  store<u16>(icmp, 0, ICMP_CSUM);
  store<u32>(icmp, 0, 4);
  store<u16>(icmp, csumFold(csumPartial(icmp, ICMP_HLEN + quote, 0)), ICMP_CSUM);
  return outLen;
}

/** Turns an echo request (frame at p) into the echo reply, in place. */
export function buildEchoReply(p: usize, icmp: usize): void {
  const ip = p + ETH_HLEN;
  inFrame(icmp, ICMP_HLEN);
  const saddr = load<u32>(ip + IP_SADDR);
  store<u32>(ip + IP_SADDR, load<u32>(ip + IP_DADDR));
  store<u32>(ip + IP_DADDR, saddr);
  store<u8>(ip + IP_TTL, REPLY_TTL);
  ipv4SetChecksum(ip);
  const oldWord = load<u16>(icmp); // type, code (raw)
  store<u8>(icmp, <u8>ICMP_ECHO_REPLY);
  store<u16>(icmp + ICMP_CSUM, csumReplace2(load<u16>(icmp + ICMP_CSUM), oldWord, load<u16>(icmp)));
  ethSwapMacs(p);
}

/**
 * Translates an ICMP error (outer header at ip, ICMP message at icmp of icmpLen bytes) that
 * quotes a tracked flow. The quoted datagram travelled opposite to the error, so the error's
 * conntrack key is the quoted tuple reversed.
 */
export function translateIcmpError(ip: usize, icmp: usize, icmpLen: u32, now: u32): i32 {
  if (icmpLen < ICMP_HLEN + 20 + 8) return ICMP_ERR_UNTRACKED; // too short to quote ports
  const inner = icmp + ICMP_HLEN;
  const vihl = <u32>load<u8>(inner);
  const ihl = (vihl & 0xf) << 2;
  if ((vihl >> 4) != 4 || ihl < 20) return ICMP_ERR_MALFORMED;
  if (ICMP_HLEN + ihl + 8 > icmpLen) return ICMP_ERR_MALFORMED;
  const iproto = <u32>load<u8>(inner, 9);
  if (iproto != IPPROTO_TCP && iproto != IPPROTO_UDP && iproto != IPPROTO_SCTP) return ICMP_ERR_UNTRACKED;
  const il4 = inner + ihl;
  const quotedL4 = icmpLen - ICMP_HLEN - ihl;
  inFrame(il4, 8);
  const isaddr = load<u32>(inner + IP_SADDR);
  const idaddr = load<u32>(inner + IP_DADDR);
  const isport = <u32>load<u16>(il4 + L4_SPORT);
  const idport = <u32>load<u16>(il4 + L4_DPORT);
  const k = errKey;
  ctKey(k, idaddr, isaddr, idport, isport, iproto);
  const v = ctLookup(k, now);
  if (v == 0) return ICMP_ERR_UNTRACKED;
  const flags = <u32>load<u8>(v, V_FLAGS);
  const co = l4CsumOffset(iproto);
  const csumIn = co != 0 && quotedL4 >= co + 2;
  const natAddr = load<u32>(v, V_NAT_ADDR);
  const natPort = <u32>load<u16>(v, V_NAT_PORT);
  const peerAddr = load<u32>(v, V_PEER_ADDR);
  const peerPort = <u32>load<u16>(v, V_PEER_PORT);
  if (flags & CT_REPLY) {
    // Error from the backend side about client → backend: client sees frontend ↔ client.
    if (load<u32>(ip + IP_SADDR) == idaddr) rewriteAddr(ip, icmp, IPPROTO_ICMP, IP_SADDR, peerAddr, false);
    if (flags & CT_SNAT) rewriteAddr(ip, icmp, IPPROTO_ICMP, IP_DADDR, natAddr, false);
    rewriteAddr(inner, il4, iproto, IP_DADDR, peerAddr, csumIn);
    rewritePort(il4, iproto, L4_DPORT, peerPort, csumIn);
    if (flags & CT_SNAT) {
      rewriteAddr(inner, il4, iproto, IP_SADDR, natAddr, csumIn);
      rewritePort(il4, iproto, L4_SPORT, natPort, csumIn);
    }
  } else {
    // Error from the client about frontend → client: the backend must see backend ↔ client.
    rewriteAddr(ip, icmp, IPPROTO_ICMP, IP_DADDR, peerAddr, false);
    rewriteAddr(inner, il4, iproto, IP_SADDR, peerAddr, csumIn);
    rewritePort(il4, iproto, L4_SPORT, peerPort, csumIn);
    if (flags & CT_SNAT) {
      rewriteAddr(ip, icmp, IPPROTO_ICMP, IP_SADDR, natAddr, false);
      rewriteAddr(inner, il4, iproto, IP_DADDR, natAddr, csumIn);
      rewritePort(il4, iproto, L4_DPORT, natPort, csumIn);
    }
  }
  store<u16>(icmp + ICMP_CSUM, 0);
  store<u16>(icmp + ICMP_CSUM, csumFold(csumPartial(icmp, icmpLen, 0)));
  return ICMP_ERR_TRANSLATED;
}
