// The per-frame service path, in the order a packet meets it:
//   parse (Ethernet → IPv4 → L4) → conntrack → [new flow: frontend → source ranges → §5 set
//   → affinity → backend selection → SNAT port → conntrack create (fail closed)] → translate.
// Every frame ends with one verdict and one reason (verdict.ts), counted in stats_reason.
// No allocation per frame; keys are built in static scratch buffers.

import * as E from "./maps/engine";
import { arrayElem, hashLookup, hashInsert, lpmLookup, keyBuf } from "./maps/engine";
import * as D from "./maps/decl";
import {
  ETH_HLEN, ethCheckLen, ethType, ethSwapMacs, ETHERTYPE_IPV4, ETHERTYPE_ARP, ETHERTYPE_VLAN, ETHERTYPE_QINQ,
} from "./wire/ethernet";
import {
  ipv4Check, IP_OK, IP_ERR_TRUNCATED, IP_ERR_HEADER, ipHeaderLen, ipTotalLen, ipProto, ipSaddr, ipDaddr,
  ipIsFragment, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP, IPPROTO_ICMP,
} from "./wire/ipv4";
import {
  l4MinLen, L4_SPORT, L4_DPORT, TCP_DOFF, tcpFlags, TCP_SYN, TCP_ACKF, TCP_FIN, TCP_RST,
  ICMP_ECHO_REQUEST, ICMP_DEST_UNREACH, ICMP_TIME_EXCEEDED, ICMP_PARAM_PROBLEM,
} from "./wire/l4";
import {
  ctKey, ctLookup, ctInsert, ctDelete, ctRefresh, ctSetBoth, ctUncount, ctBackendValid,
} from "./conntrack";
import { chooseRange, selectBackend, serviceEndpointCount, backendFitsRange, rangeLen } from "./lb/select";
import { dnat, snat, l4Finish, sctpCrcOk, setCsumPartial } from "./nat/rewrite";
import {
  VNET_HDR_LEN, VNET_F_NEEDS_CSUM, vnetFlags, vnetGsoType, vnetCsumStart, vnetCsumOffset, vnetClear,
  VNET_GSO_NONE, VNET_GSO_TCPV4, VNET_GSO_UDP, VNET_GSO_UDP_L4,
} from "./wire/vnet";
import { snatAllocate } from "./nat/snat";
import {
  buildPortUnreachable, buildEchoReply, translateIcmpError, ICMP_ERR_TRANSLATED, ICMP_ERR_MALFORMED,
} from "./nat/icmp";
import { l4CsumOffset } from "./wire/l4";
import { setFrame, inFrame } from "./bounds";
import * as V from "./verdict";

const ctk = memory.data(16, 16); // the packet's own tuple as a conntrack key
const rk = memory.data(16, 16); // the reply tuple of a new flow

/** Length of the frame after processing (a REPLY may change it). */
export let outLen: u32 = 0;
/** Capacity of the frame buffer being processed. */
let frameCap: u32 = 0;
/** The current frame's virtio-net header (IFF_VNET_HDR TAPs), or 0 when it has none. */
let vnet: usize = 0;

// @ts-ignore: decorator
@inline function out(verdict: u32, reason: u32, bytes: u32): u32 {
  const s = arrayElem(D.stats_reason_id, reason);
  store<u64>(s, load<u64>(s, 0) + 1, 0);
  store<u64>(s, load<u64>(s, 8) + <u64>bytes, 8);
  return verdict | (reason << 8);
}

// @ts-ignore: decorator
@inline function countTraffic(mapId: u32, id: u32, bytes: u32, newFlow: bool): void {
  const s = arrayElem(mapId, id);
  if (s == 0) return;
  store<u64>(s, load<u64>(s, 0) + 1, 0);
  store<u64>(s, load<u64>(s, 8) + <u64>bytes, 8);
  if (newFlow) store<u64>(s, load<u64>(s, 16) + 1, 16);
}

function addrFlags(addr: u32): u32 {
  const k = keyBuf;
  store<u32>(k, addr);
  const v = hashLookup(D.addrs_id, k);
  return v == 0 ? 0 : load<u32>(v);
}

// @ts-ignore: decorator
@inline function config(): usize {
  return arrayElem(D.config_id, 0);
}

// @ts-ignore: decorator
@inline function txSwap(p: usize): void {
  if (<u32>load<u8>(config(), D.config_value_flags) & D.CFG_SWAP_MACS) ethSwapMacs(p);
}

/** Rejects with ICMP port unreachable (REPLY), or drops when the reply cannot be built. */
function reject(p: usize, cap: u32, len: u32, reason: u32): u32 {
  const n = buildPortUnreachable(p, cap);
  if (n == 0) return out(V.VERDICT_DROP, V.R_DROP_FRAME_TOO_BIG, len);
  outLen = n;
  return out(V.VERDICT_REPLY, reason, len);
}

/** TCP state tracking on a conntrack hit (entry v of key k, packet flags f). */
// @ts-ignore: decorator
@inline function tcpTrack(k: usize, v: usize, f: u32, isReply: bool, now: u32): void {
  // The common case, a plain segment of an established flow, only refreshes the lifetime.
  if (!(f & (TCP_RST | TCP_FIN)) && <u32>load<u8>(v, D.conntrack_value_state) == D.CT_STATE_ESTABLISHED) ctRefresh(k, v, now);
  else tcpTrackSlow(k, v, f, isReply, now);
}

function tcpTrackSlow(k: usize, v: usize, f: u32, isReply: bool, now: u32): void {
  const st = <u32>load<u8>(v, D.conntrack_value_state);
  if (f & TCP_RST) {
    ctUncount(k, v);
    ctSetBoth(k, v, D.CT_STATE_RESET, 0, now);
  } else if (f & TCP_FIN) {
    if (st != D.CT_STATE_CLOSING) {
      ctUncount(k, v);
      ctSetBoth(k, v, D.CT_STATE_CLOSING, 0, now);
    } else ctRefresh(k, v, now);
  } else if (st == D.CT_STATE_SYN_SENT) {
    const seen = (<u32>load<u8>(v, D.conntrack_value_flags) & D.CT_SEEN_REPLY) != 0;
    if (isReply && !seen) ctSetBoth(k, v, D.CT_STATE_SYN_SENT, D.CT_SEEN_REPLY, now);
    else if (!isReply && seen && (f & TCP_ACKF) && !(f & TCP_SYN)) ctSetBoth(k, v, D.CT_STATE_ESTABLISHED, 0, now);
    else ctRefresh(k, v, now);
  } else ctRefresh(k, v, now);
}

/** Translates one frame in place. Returns verdict | reason << 8; sets outLen. */
export function processFrame(p: usize, len: u32, cap: u32, now: u32): u32 {
  outLen = len;
  frameCap = cap;
  E.lruClock++;
  setFrame(p, p + cap);
  if (!ethCheckLen(len)) return out(V.VERDICT_DROP, V.R_DROP_ETH_TRUNCATED, len);
  const et = ethType(p);
  if (et != ETHERTYPE_IPV4) {
    if (et == ETHERTYPE_ARP) return out(V.VERDICT_PASS, V.R_PASS_ARP, len);
    if (et == ETHERTYPE_VLAN || et == ETHERTYPE_QINQ) return out(V.VERDICT_PASS, V.R_PASS_VLAN, len);
    return out(V.VERDICT_PASS, V.R_PASS_NOT_IPV4, len);
  }
  const ip = p + ETH_HLEN;
  const chk = ipv4Check(ip, len - ETH_HLEN);
  if (chk != IP_OK) {
    if (chk == IP_ERR_TRUNCATED) return out(V.VERDICT_DROP, V.R_DROP_IP_TRUNCATED, len);
    if (chk == IP_ERR_HEADER) return out(V.VERDICT_DROP, V.R_DROP_IP_HEADER, len);
    return out(V.VERDICT_DROP, V.R_DROP_IP_CHECKSUM, len);
  }
  // From here the IP header and its announced total length lie inside the frame.
  setFrame(p, ip + ipTotalLen(ip));
  const daddr = ipDaddr(ip);
  if (ipIsFragment(ip)) {
    // Fragments cannot be matched to a flow by ports: not supported for service traffic.
    if (addrFlags(daddr) & D.ADDR_VIP) return out(V.VERDICT_DROP, V.R_DROP_FRAGMENT, len);
    return out(V.VERDICT_PASS, V.R_PASS_FRAGMENT, len);
  }
  const ihl = ipHeaderLen(ip);
  const l4len = ipTotalLen(ip) - ihl;
  const l4 = ip + ihl;
  const proto = ipProto(ip);
  const minL4 = l4MinLen(proto);
  if (minL4 == 0) return out(V.VERDICT_PASS, V.R_PASS_OTHER_L4, len);
  if (l4len < minL4) return out(V.VERDICT_DROP, V.R_DROP_L4_TRUNCATED, len);
  if (vnet != 0 && !vnetFits(p, l4, proto)) return out(V.VERDICT_DROP, V.R_DROP_VNET_HDR, len);
  if (proto == IPPROTO_ICMP) return icmpPath(p, ip, l4, l4len, len, now);
  if (proto == IPPROTO_TCP) {
    const doff = (<u32>load<u8>(l4, TCP_DOFF) >> 4) << 2;
    if (doff < 20 || doff > l4len) return out(V.VERDICT_DROP, V.R_DROP_L4_TRUNCATED, len);
  }
  const saddr = ipSaddr(ip);
  const sport = <u32>load<u16>(l4, L4_SPORT);
  const dport = <u32>load<u16>(l4, L4_DPORT);
  const tflags = proto == IPPROTO_TCP ? tcpFlags(l4) : 0;
  ctKey(ctk, saddr, daddr, sport, dport, proto);

  // 1. A tracked flow: translate as recorded.
  let reason = V.R_TX_NEW_FLOW;
  const v = ctLookup(ctk, now);
  if (v != 0) {
    if (proto == IPPROTO_SCTP && !sctpCrcOk(l4, l4len)) return out(V.VERDICT_DROP, V.R_DROP_SCTP_CHECKSUM, len);
    const flags = <u32>load<u8>(v, D.conntrack_value_flags);
    const state = <u32>load<u8>(v, D.conntrack_value_state);
    if (flags & D.CT_REPLY) {
      // Reply: the source becomes the frontend the client spoke to; un-masquerade the client.
      if (proto == IPPROTO_TCP) tcpTrack(ctk, v, tflags, true, now);
      else if (!(flags & D.CT_SEEN_REPLY)) ctSetBoth(ctk, v, D.CT_STATE_NONE, D.CT_SEEN_REPLY, now);
      else ctRefresh(ctk, v, now);
      const svcId = load<u32>(v, D.conntrack_value_svcId);
      const beId = load<u32>(v, D.conntrack_value_backendId);
      snat(ip, l4, proto, load<u32>(v, D.conntrack_value_peerAddrBe), <u32>load<u16>(v, D.conntrack_value_peerPortBe));
      if (flags & D.CT_SNAT) dnat(ip, l4, proto, load<u32>(v, D.conntrack_value_natAddrBe), <u32>load<u16>(v, D.conntrack_value_natPortBe));
      l4Finish(l4, proto, l4len);
      countTraffic(D.stats_service_id, svcId, len, false);
      countTraffic(D.stats_backend_id, beId, len, false);
      txSwap(p);
      return out(V.VERDICT_TX, V.R_TX_REPLY, len);
    }
    // Forward. A new SYN on a closed flow reuses the ports: start over as a new flow.
    const reopened = proto == IPPROTO_TCP && (tflags & (TCP_SYN | TCP_ACKF)) == TCP_SYN
      && (state == D.CT_STATE_CLOSING || state == D.CT_STATE_RESET);
    if (reopened) {
      ctDelete(ctk);
    } else if (!ctBackendValid(v)) {
      // The backend left under the flow: select again (TCP: the new backend resets it unless
      // this is a handshake; never black-holed). UDP entries are flushed by the host too.
      ctDelete(ctk);
      reason = V.R_TX_RESELECTED;
    } else {
      if (proto == IPPROTO_TCP) tcpTrack(ctk, v, tflags, false, now);
      else ctRefresh(ctk, v, now);
      const svcId = load<u32>(v, D.conntrack_value_svcId);
      const beId = load<u32>(v, D.conntrack_value_backendId);
      const f2 = <u32>load<u8>(v, D.conntrack_value_flags);
      dnat(ip, l4, proto, load<u32>(v, D.conntrack_value_peerAddrBe), <u32>load<u16>(v, D.conntrack_value_peerPortBe));
      if (f2 & D.CT_SNAT) snat(ip, l4, proto, load<u32>(v, D.conntrack_value_natAddrBe), <u32>load<u16>(v, D.conntrack_value_natPortBe));
      l4Finish(l4, proto, l4len);
      countTraffic(D.stats_service_id, svcId, len, false);
      countTraffic(D.stats_backend_id, beId, len, false);
      txSwap(p);
      return out(V.VERDICT_TX, V.R_TX_ESTABLISHED, len);
    }
  }
  return newFlow(p, ip, l4, l4len, len, saddr, daddr, sport, dport, proto, tflags, now, reason, v != 0);
}

/**
 * A frame with a virtio-net header is translated only when the header describes it: a partial
 * checksum must sit at this TCP/UDP header's checksum field (the rewrite then keeps it
 * partial), and a GSO type must match the protocol (the kernel segments TCPV4 and UDP
 * super-frames after us; their headers are translated once, for every segment).
 */
function vnetFits(p: usize, l4: usize, proto: u32): bool {
  const gso = vnetGsoType(vnet);
  if (gso == VNET_GSO_TCPV4) {
    if (proto != IPPROTO_TCP) return false;
  } else if (gso == VNET_GSO_UDP || gso == VNET_GSO_UDP_L4) {
    if (proto != IPPROTO_UDP) return false;
  } else if (gso != VNET_GSO_NONE) return false;
  if (!(vnetFlags(vnet) & VNET_F_NEEDS_CSUM)) return gso == VNET_GSO_NONE;
  if (proto != IPPROTO_TCP && proto != IPPROTO_UDP) return false;
  return vnetCsumStart(vnet) == <u32>(l4 - p) && vnetCsumOffset(vnet) == l4CsumOffset(proto);
}

function newFlow(p: usize, ip: usize, l4: usize, l4len: u32, len: u32, saddr: u32, daddr: u32,
  sport: u32, dport: u32, proto: u32, tflags: u32, now: u32, reason: u32, crcChecked: bool): u32 {
  // 2. Frontend: exact (address, port, protocol); else a NodePort on a node address. Address 0
  //    is the NodePort wildcard in the map, never a destination.
  if (daddr == 0) return out(V.VERDICT_PASS, V.R_PASS_NOT_SERVICE, len);
  const k = keyBuf;
  store<u32>(k, daddr, 0);
  store<u32>(k, dport | (proto << 16), 4); // portBe u16, proto u8, pad u8
  let fe = hashLookup(D.frontends_id, k);
  if (fe == 0) {
    const af = addrFlags(daddr);
    if (af & D.ADDR_NODEPORT) {
      store<u32>(k, 0, 0);
      store<u32>(k, dport | (proto << 16), 4);
      fe = hashLookup(D.frontends_id, k);
    }
    if (fe == 0) {
      // A service address on a port it does not serve is refused, as kube-proxy's nftables mode does.
      if (af & D.ADDR_VIP) return reject(p, frameCap, len, V.R_REPLY_UNKNOWN_PORT);
      return out(V.VERDICT_PASS, V.R_PASS_NOT_SERVICE, len);
    }
  }
  if (proto == IPPROTO_SCTP && !crcChecked && !sctpCrcOk(l4, l4len)) return out(V.VERDICT_DROP, V.R_DROP_SCTP_CHECKSUM, len);
  const svcId = load<u32>(fe, D.frontends_value_svcId);
  const revNatId = load<u32>(fe, D.frontends_value_revNatId);
  const kind = <u32>load<u8>(fe, D.frontends_value_kind);
  const svc = arrayElem(D.services_id, svcId);
  if (svc == 0) return out(V.VERDICT_DROP, V.R_DROP_NO_BACKEND, len);
  const sflags = <u32>load<u8>(svc, D.services_value_flags);

  // 3. loadBalancerSourceRanges apply to the load balancer's addresses only (not NodePorts).
  if (kind == D.FE_LOAD_BALANCER && (sflags & D.SVC_SOURCE_RANGES)
    && lpmLookup(D.lpm_v4_id, D.lpm_masks_id, svcId, saddr) == 0) {
    return out(V.VERDICT_DROP, V.R_DROP_SOURCE_RANGE, len);
  }

  // 4. The §5 set: internal traffic follows internalTrafficPolicy; external traffic from off
  //    the node follows externalTrafficPolicy; this node's own pods use the cluster set.
  //    Whether the source is this node's own is asked only where the answer matters.
  const internal = kind == D.FE_CLUSTER_IP;
  const cfgFlags = <u32>load<u8>(config(), D.config_value_flags);
  const askLocal = internal ? (cfgFlags & D.CFG_MASQ_OFF_NODE) != 0 : (sflags & D.SVC_EXT_LOCAL) != 0;
  const srcLocal = askLocal && lpmLookup(D.lpm_v4_id, D.lpm_masks_id, 0, saddr) != 0;
  const useLocal = internal ? (sflags & D.SVC_INT_LOCAL) != 0 : ((sflags & D.SVC_EXT_LOCAL) != 0 && !srcLocal);
  if (serviceEndpointCount(svc) == 0) return reject(p, frameCap, len, V.R_REPLY_NO_ENDPOINTS);
  chooseRange(svc, useLocal);
  if (rangeLen == 0) return out(V.VERDICT_DROP, V.R_DROP_NO_LOCAL_ENDPOINT, len);

  // 5. Session affinity (ClientIP): reuse the client's backend while it is fresh and usable.
  let beId: u32 = 0;
  let aff: usize = 0;
  if (sflags & D.SVC_AFFINITY) {
    const ak = E.keyBuf2;
    store<u32>(ak, saddr, 0);
    store<u32>(ak, svcId, 4);
    aff = hashLookup(D.affinity_id, ak);
    const timeout = load<u32>(svc, D.services_value_affinityTimeoutSec);
    if (aff != 0 && now - load<u32>(aff, D.affinity_value_lastUsedSec) <= timeout
      && backendFitsRange(load<u32>(aff, D.affinity_value_backendId))) {
      beId = load<u32>(aff, D.affinity_value_backendId);
    }
  }
  // 6. Backend selection.
  if (beId == 0) beId = selectBackend(svc, svcId, ctk);
  const be = arrayElem(D.backends_id, beId);
  if (beId == 0 || be == 0 || load<u8>(be, D.backends_value_state) == 0) return out(V.VERDICT_DROP, V.R_DROP_NO_BACKEND, len);
  if (sflags & D.SVC_AFFINITY) {
    if (aff == 0) {
      const ak = E.keyBuf2;
      store<u32>(ak, saddr, 0);
      store<u32>(ak, svcId, 4);
      aff = hashInsert(D.affinity_id, ak);
      E.evictPending = false; // an evicted affinity entry holds nothing to release
    }
    if (aff != 0) {
      store<u32>(aff, beId, D.affinity_value_backendId);
      store<u32>(aff, now, D.affinity_value_lastUsedSec);
    }
  }
  const baddr = load<u32>(be, D.backends_value_addrBe);
  const bport = <u32>load<u16>(be, D.backends_value_portBe);

  // 7. Masquerade: hairpin always; external traffic unless externalTrafficPolicy Local;
  //    ClusterIP traffic from off the node when configured (kube-proxy's cluster CIDR rule).
  const cfg = config();
  let needSnat = baddr == saddr || (internal
    ? (!srcLocal && (cfgFlags & D.CFG_MASQ_OFF_NODE) != 0)
    : (sflags & D.SVC_EXT_LOCAL) == 0);
  let natAddr: u32 = 0;
  let natPort: u32 = 0;
  if (needSnat) {
    natAddr = load<u32>(cfg, D.config_value_snatAddrBe);
    if (natAddr == 0) return out(V.VERDICT_DROP, V.R_DROP_SNAT_NO_ADDR, len);
    natPort = snatAllocate(natAddr, baddr, bport, proto, saddr, sport, now);
    if (natPort == 0) return out(V.VERDICT_DROP, V.R_DROP_SNAT_NO_PORT, len);
  }

  // 7b. The reply tuple must be free: another flow may already own backend → client:port
  //     (two services sharing a backend, or a client port equal to a masquerade port). Like
  //     Linux NAT, keep the source address and remap the source port.
  if (!needSnat) {
    ctKey(rk, baddr, saddr, bport, sport, proto);
    if (E.hashFind(D.conntrack_id, rk) >= 0) {
      natAddr = saddr;
      natPort = snatAllocate(natAddr, baddr, bport, proto, saddr, sport, now);
      if (natPort == 0) return out(V.VERDICT_DROP, V.R_DROP_SNAT_NO_PORT, len);
      needSnat = true;
    }
  }

  // 8. Conntrack: both directions, or nothing (fail closed).
  const state = proto == IPPROTO_TCP ? ((tflags & TCP_SYN) ? D.CT_STATE_SYN_SENT : D.CT_STATE_ESTABLISHED) : D.CT_STATE_NONE;
  const snatFlag = needSnat ? D.CT_SNAT : 0;
  const fv = ctInsert(ctk);
  if (fv == 0) return failClosed(natAddr, natPort, baddr, bport, proto, len);
  store<u32>(fv, beId, D.conntrack_value_backendId);
  store<u32>(fv, revNatId, D.conntrack_value_revNatId);
  store<u32>(fv, svcId, D.conntrack_value_svcId);
  store<u32>(fv, natAddr, D.conntrack_value_natAddrBe);
  store<u16>(fv, <u16>natPort, D.conntrack_value_natPortBe);
  store<u8>(fv, <u8>state, D.conntrack_value_state);
  store<u8>(fv, <u8>(snatFlag | D.CT_COUNTED), D.conntrack_value_flags);
  store<u32>(fv, baddr, D.conntrack_value_peerAddrBe);
  store<u16>(fv, <u16>bport, D.conntrack_value_peerPortBe);
  ctRefresh(ctk, fv, now);
  ctKey(rk, baddr, needSnat ? natAddr : saddr, bport, needSnat ? natPort : sport, proto);
  const rv = ctInsert(rk);
  if (rv == 0) {
    ctDelete(ctk); // releases the SNAT port and the connection count with it
    return out(V.VERDICT_DROP, V.R_DROP_CT_FULL, len);
  }
  store<u32>(rv, beId, D.conntrack_value_backendId);
  store<u32>(rv, revNatId, D.conntrack_value_revNatId);
  store<u32>(rv, svcId, D.conntrack_value_svcId);
  store<u32>(rv, saddr, D.conntrack_value_natAddrBe);
  store<u16>(rv, <u16>sport, D.conntrack_value_natPortBe);
  store<u8>(rv, <u8>state, D.conntrack_value_state);
  store<u8>(rv, <u8>(snatFlag | D.CT_REPLY), D.conntrack_value_flags);
  store<u32>(rv, daddr, D.conntrack_value_peerAddrBe);
  store<u16>(rv, <u16>dport, D.conntrack_value_peerPortBe);
  ctRefresh(rk, rv, now);
  store<u32>(be, load<u32>(be, D.backends_value_activeConns) + 1, D.backends_value_activeConns);

  // 9. Translate.
  dnat(ip, l4, proto, baddr, bport);
  if (needSnat) snat(ip, l4, proto, natAddr, natPort);
  l4Finish(l4, proto, l4len);
  countTraffic(D.stats_service_id, svcId, len, true);
  countTraffic(D.stats_backend_id, beId, len, true);
  txSwap(p);
  return out(V.VERDICT_TX, reason, len);
}

function failClosed(natAddr: u32, natPort: u32, baddr: u32, bport: u32, proto: u32, len: u32): u32 {
  if (natPort != 0) {
    const sk = E.keyBuf2;
    store<u32>(sk, natAddr, 0);
    store<u32>(sk, baddr, 4);
    store<u16>(sk, <u16>natPort, 8);
    store<u16>(sk, <u16>bport, 10);
    store<u32>(sk, proto, 12);
    E.hashDelete(D.snat_id, sk);
  }
  return out(V.VERDICT_DROP, V.R_DROP_CT_FULL, len);
}

function icmpPath(p: usize, ip: usize, icmp: usize, icmpLen: u32, len: u32, now: u32): u32 {
  inFrame(icmp, 8);
  const type = <u32>load<u8>(icmp);
  if (type == ICMP_ECHO_REQUEST) {
    if (addrFlags(ipDaddr(ip)) & D.ADDR_VIP) {
      buildEchoReply(p, icmp);
      return out(V.VERDICT_REPLY, V.R_REPLY_ECHO, len);
    }
    return out(V.VERDICT_PASS, V.R_PASS_NOT_SERVICE, len);
  }
  if (type == ICMP_DEST_UNREACH || type == ICMP_TIME_EXCEEDED || type == ICMP_PARAM_PROBLEM) {
    const r = translateIcmpError(ip, icmp, icmpLen, now);
    if (r == ICMP_ERR_TRANSLATED) {
      txSwap(p);
      return out(V.VERDICT_TX, V.R_TX_ICMP_ERROR, len);
    }
    if (r == ICMP_ERR_MALFORMED) return out(V.VERDICT_DROP, V.R_DROP_ICMP_MALFORMED, len);
    return out(V.VERDICT_PASS, V.R_PASS_ICMP_UNTRACKED, len);
  }
  return out(V.VERDICT_PASS, V.R_PASS_NOT_SERVICE, len);
}

// ---- batches ------------------------------------------------------------------------------
// Descriptor per frame (16 bytes): | off u32 | len u32 | cap u32 | result u32 |
// off/cap locate the frame's buffer inside the frame area; len is its length in and out;
// result = verdict | reason << 8 on the way out. On the way in, result holds input flags:
// DESC_IN_VNET says a virtio-net header (VNET_HDR_LEN bytes) sits right before the frame, as
// read from a TAP opened with IFF_VNET_HDR; it is honoured (partial checksums, GSO) and kept
// for the write back, and cleared to "nothing offloaded" when the frame becomes a REPLY.
// A descriptor pointing outside the frame area is dropped.

export const DESC_SIZE: u32 = 16;
export const DESC_IN_VNET: u32 = 1;
export let frameAreaLo: usize = 0;
export let frameAreaHi: usize = 0;

export function setFrameArea(lo: usize, hi: usize): void {
  frameAreaLo = lo;
  frameAreaHi = hi;
}

// Frames are processed in chunks. Before a chunk runs, the conntrack slot each frame's tuple
// hashes to is touched: the table is large and randomly addressed, so a lookup is usually a
// cache (and TLB) miss, and touching all of them up front lets those misses overlap instead of
// being paid one frame at a time. Touching only reads memory, so it cannot change a result.
const CHUNK: u32 = 32;
const homes = memory.data(<i32>(CHUNK * 4), 16);
/** Bytes touched from a home slot: four cache lines, the usual probe run of a lookup or insert. */
const WARM_SPAN: usize = 256;
/** XOR of the touched words: a visible result, so the optimizer keeps the touching loads. */
export let warmSink: u32 = 0;

/** Conntrack home slot of a descriptor's frame if it looks like IPv4 TCP/UDP/SCTP, else 0. */
// @ts-ignore: decorator
@inline function ctHomeOf(d: usize): usize {
  const off = <usize>load<u32>(d, 0);
  const len = load<u32>(d, 4);
  const cap = load<u32>(d, 8);
  if (off < frameAreaLo || <u64>off + <u64>cap > <u64>frameAreaHi || len > cap) return 0;
  if (len < ETH_HLEN + 24 || ethType(off) != ETHERTYPE_IPV4) return 0;
  const ip = off + ETH_HLEN;
  const vihl = <u32>load<u8>(ip);
  const ihl = (vihl & 0xf) << 2;
  if ((vihl >> 4) != 4 || ihl < 20 || ETH_HLEN + ihl + 4 > len) return 0;
  const proto = ipProto(ip);
  if (proto != IPPROTO_TCP && proto != IPPROTO_UDP && proto != IPPROTO_SCTP) return 0;
  // The same words ctKey writes: saddr, daddr, both ports, proto (+ zero padding).
  const tag = E.hash16(ipSaddr(ip), ipDaddr(ip), load<u32>(ip + ihl), proto, E.hashSeed) | 1;
  return E.hashHomeSlot(D.conntrack_id, tag);
}

export function processBatch(descs: usize, count: u32, now: u32): u32 {
  let c: u32 = 0;
  while (c < count) {
    const n = min(CHUNK, count - c);
    for (let i: u32 = 0; i < n; i++) {
      store<usize>(homes + (<usize>i << 2), ctHomeOf(descs + <usize>(c + i) * DESC_SIZE));
    }
    let sink: u32 = 0;
    const ctEnd = <usize>E.mapBase(D.conntrack_id) + <usize>E.mapBytes(D.conntrack_id);
    for (let i: u32 = 0; i < n; i++) {
      const h = load<usize>(homes + (<usize>i << 2));
      if (h != 0 && h + WARM_SPAN <= ctEnd) {
        sink ^= load<u32>(h) ^ load<u32>(h + 64) ^ load<u32>(h + 128) ^ load<u32>(h + WARM_SPAN - 4);
      }
    }
    warmSink = sink;
    for (let i = c; i < c + n; i++) processOne(descs + <usize>i * DESC_SIZE, now);
    c += n;
  }
  return count;
}

// @ts-ignore: decorator
@inline function processOne(d: usize, now: u32): void {
  const off = <usize>load<u32>(d, 0);
  const len = load<u32>(d, 4);
  const cap = load<u32>(d, 8);
  const hasVnet = (load<u32>(d, 12) & DESC_IN_VNET) != 0;
  if (off < frameAreaLo + (hasVnet ? <usize>VNET_HDR_LEN : 0) || <u64>off + <u64>cap > <u64>frameAreaHi || len > cap) {
    store<u32>(d, out(V.VERDICT_DROP, V.R_DROP_BAD_DESCRIPTOR, 0), 12);
    return;
  }
  if (hasVnet) {
    vnet = off - VNET_HDR_LEN;
    setCsumPartial((vnetFlags(vnet) & VNET_F_NEEDS_CSUM) != 0);
  }
  const r = processFrame(off, len, cap, now);
  if (hasVnet) {
    if ((r & 0xff) == V.VERDICT_REPLY) vnetClear(vnet);
    vnet = 0;
    setCsumPartial(false);
  }
  store<u32>(d, outLen, 4);
  store<u32>(d, r, 12);
}
