// Connection tracking: one LRU-hash entry per direction of a translated flow (see the
// conntrack block in maps/decl.ts). Owns entry creation, lifetimes (TCP SYN / established /
// closing, UDP, UDP stream, ICMP), removal with its side effects (backend connection counts,
// SNAT ports, the peer entry), the expiry sweep and per-backend flushes.

import {
  hashFind, hashInsert, hashRemoveAt, hashSlot, slotKey, slotValue, hashDelete,
  keyBuf, evictPending, copyWords, evictedKey, evictedValue, arrayElem, mapCapacity,
} from "./maps/engine";
import * as E from "./maps/engine";
import {
  conntrack_id, backends_id, snat_id, config_id,
  conntrack_value_backendId as V_BACKEND, conntrack_value_flags as V_FLAGS,
  conntrack_value_state as V_STATE, conntrack_value_expiresSec as V_EXPIRES,
  conntrack_value_natAddrBe as V_NAT_ADDR, conntrack_value_natPortBe as V_NAT_PORT,
  conntrack_value_peerAddrBe as V_PEER_ADDR, conntrack_value_peerPortBe as V_PEER_PORT,
  backends_value_activeConns, backends_value_addrBe, backends_value_portBe, backends_value_proto,
  config_value_tcpSynTimeout, config_value_tcpEstablishedTimeout, config_value_tcpClosingTimeout,
  config_value_udpTimeout, config_value_udpStreamTimeout, config_value_icmpTimeout,
  CT_REPLY, CT_SNAT, CT_SEEN_REPLY, CT_COUNTED,
  CT_STATE_SYN_SENT, CT_STATE_ESTABLISHED, CT_STATE_CLOSING, CT_STATE_RESET,
} from "./maps/decl";
import { IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP } from "./wire/ipv4";

const RESET_TIMEOUT: u32 = 10; // seconds an entry lingers after a RST (like nf_conntrack CLOSE)

const scratchKey = memory.data(16, 16);
const scratchVal = memory.data(32, 16);
const peerKey = memory.data(16, 16);

/** Writes a conntrack key (all addresses/ports raw) into k. */
// @ts-ignore: decorator
@inline export function ctKey(k: usize, saddr: u32, daddr: u32, sport: u32, dport: u32, proto: u32): void {
  store<u32>(k, saddr, 0);
  store<u32>(k, daddr, 4);
  store<u16>(k, <u16>sport, 8);
  store<u16>(k, <u16>dport, 10);
  store<u32>(k, proto, 12); // proto + zero padding
}

/** Lifetime in seconds for an entry of `proto` in `state` with `flags`. */
export function ctTimeout(proto: u32, state: u32, flags: u32): u32 {
  const c = arrayElem(config_id, 0);
  if (proto == IPPROTO_TCP) {
    if (state == CT_STATE_ESTABLISHED) return load<u32>(c, config_value_tcpEstablishedTimeout);
    if (state == CT_STATE_CLOSING) return load<u32>(c, config_value_tcpClosingTimeout);
    if (state == CT_STATE_RESET) return RESET_TIMEOUT;
    return load<u32>(c, config_value_tcpSynTimeout);
  }
  if (proto == IPPROTO_ICMP) return load<u32>(c, config_value_icmpTimeout);
  // UDP and SCTP: a flow that has seen replies is a "stream" (nf_conntrack_udp_timeout_stream).
  if (flags & CT_SEEN_REPLY) return load<u32>(c, config_value_udpStreamTimeout);
  return load<u32>(c, config_value_udpTimeout);
}

/** The key of the other direction of the flow whose entry is (k, v), written to out. */
export function ctPeerKey(out: usize, k: usize, v: usize): void {
  const flags = <u32>load<u8>(v, V_FLAGS);
  const proto = <u32>load<u8>(k, 12);
  if (flags & CT_REPLY) {
    // reply key: backend → client|snat ; forward key: client → frontend
    ctKey(out, load<u32>(v, V_NAT_ADDR), load<u32>(v, V_PEER_ADDR),
      <u32>load<u16>(v, V_NAT_PORT), <u32>load<u16>(v, V_PEER_PORT), proto);
  } else {
    const snat = (flags & CT_SNAT) != 0;
    ctKey(out, load<u32>(v, V_PEER_ADDR), snat ? load<u32>(v, V_NAT_ADDR) : load<u32>(k, 0),
      <u32>load<u16>(v, V_PEER_PORT), snat ? <u32>load<u16>(v, V_NAT_PORT) : <u32>load<u16>(k, 8), proto);
  }
}

/** Releases what a removed entry held: its backend connection count and SNAT port. */
function releaseHeld(k: usize, v: usize): void {
  const flags = <u32>load<u8>(v, V_FLAGS);
  if (flags & CT_REPLY) return;
  if (flags & CT_COUNTED) {
    const be = arrayElem(backends_id, load<u32>(v, V_BACKEND));
    if (be != 0) {
      const n = load<u32>(be, backends_value_activeConns);
      if (n > 0) store<u32>(be, n - 1, backends_value_activeConns);
    }
  }
  if (flags & CT_SNAT) {
    const sk = keyBuf;
    store<u32>(sk, load<u32>(v, V_NAT_ADDR), 0);
    store<u32>(sk, load<u32>(v, V_PEER_ADDR), 4);
    store<u16>(sk, load<u16>(v, V_NAT_PORT), 8);
    store<u16>(sk, load<u16>(v, V_PEER_PORT), 10);
    store<u32>(sk, <u32>load<u8>(k, 12), 12);
    hashDelete(snat_id, sk);
  }
}

/** Removes the entry in slot idx, its peer entry, and what they held. */
export function ctRemoveAt(idx: u32): void {
  const s = hashSlot(conntrack_id, idx);
  copyWords(scratchKey, slotKey(s), 16);
  copyWords(scratchVal, slotValue(conntrack_id, s), 32);
  hashRemoveAt(conntrack_id, idx);
  releaseAndDropPeer(scratchKey, scratchVal);
}

function releaseAndDropPeer(k: usize, v: usize): void {
  releaseHeld(k, v);
  ctPeerKey(peerKey, k, v);
  const j = hashFind(conntrack_id, peerKey);
  if (j < 0) return;
  const ps = hashSlot(conntrack_id, <u32>j);
  const pv = slotValue(conntrack_id, ps);
  // Only the true peer: it must point back at this entry's direction.
  if ((<u32>load<u8>(pv, V_FLAGS) & CT_REPLY) == (<u32>load<u8>(v, V_FLAGS) & CT_REPLY)) return;
  copyWords(scratchVal, pv, 32);
  hashRemoveAt(conntrack_id, <u32>j);
  releaseHeld(peerKey, scratchVal);
}

/** Handles an LRU eviction that an insert just made (the evicted entry's side effects). */
export function ctAfterInsert(): void {
  if (!evictPending) return;
  E.evictPending = false;
  copyWords(scratchKey, evictedKey, 16);
  copyWords(scratchVal, evictedValue, 32);
  releaseAndDropPeer(scratchKey, scratchVal);
}

/**
 * Each direction refreshes only its own entry, so one side of a one-way flow can expire while
 * the other lives. An expired entry whose peer is alive takes the peer's lifetime instead of
 * dying (returns true); otherwise the pair is dead.
 */
function adoptPeerLifetime(k: usize, v: usize, now: u32): bool {
  ctPeerKey(peerKey, k, v);
  const j = hashFind(conntrack_id, peerKey);
  if (j < 0) return false;
  const pe = load<u32>(slotValue(conntrack_id, hashSlot(conntrack_id, <u32>j)), V_EXPIRES);
  if (<i32>(pe - now) < 0) return false;
  store<u32>(v, pe, V_EXPIRES);
  return true;
}

/** Value pointer of a live entry for key k, or 0. An expired flow found is removed. */
export function ctLookup(k: usize, now: u32): usize {
  const i = E.hashFindInline(conntrack_id, k);
  if (i < 0) return 0;
  const s = hashSlot(conntrack_id, <u32>i);
  const v = slotValue(conntrack_id, s);
  if (<i32>(load<u32>(v, V_EXPIRES) - now) < 0 && !adoptPeerLifetime(slotKey(s), v, now)) {
    ctRemoveAt(<u32>i);
    return 0;
  }
  store<u32>(s, E.lruClock, 4);
  return v;
}

/** Inserts key k with a zeroed value; 0 when the table is full (the caller fails closed). */
export function ctInsert(k: usize): usize {
  E.evictPending = false; // only an eviction by this insert is ours to release
  const v = hashInsert(conntrack_id, k);
  // The eviction (if any) ran before our slot was chosen; releasing it may move slots, so
  // the value pointer is re-found afterwards.
  if (evictPending) {
    ctAfterInsert();
    const i = hashFind(conntrack_id, k);
    return i < 0 ? 0 : slotValue(conntrack_id, hashSlot(conntrack_id, <u32>i));
  }
  return v;
}

/** Deletes the entry for key k (and its peer). */
export function ctDelete(k: usize): bool {
  const i = hashFind(conntrack_id, k);
  if (i < 0) return false;
  ctRemoveAt(<u32>i);
  return true;
}

/** Refreshes the lifetime of entry v after a packet. */
// @ts-ignore: decorator
@inline export function ctRefresh(k: usize, v: usize, now: u32): void {
  store<u32>(v, now + ctTimeout(<u32>load<u8>(k, 12), <u32>load<u8>(v, V_STATE), <u32>load<u8>(v, V_FLAGS)), V_EXPIRES);
}

/** Sets state/flags on both directions of a flow and refreshes both lifetimes. */
export function ctSetBoth(k: usize, v: usize, state: u32, addFlags: u32, now: u32): void {
  store<u8>(v, <u8>state, V_STATE);
  store<u8>(v, load<u8>(v, V_FLAGS) | <u8>addFlags, V_FLAGS);
  ctRefresh(k, v, now);
  ctPeerKey(peerKey, k, v);
  const j = hashFind(conntrack_id, peerKey);
  if (j < 0) return;
  const pv = slotValue(conntrack_id, hashSlot(conntrack_id, <u32>j));
  store<u8>(pv, <u8>state, V_STATE);
  store<u8>(pv, load<u8>(pv, V_FLAGS) | <u8>addFlags, V_FLAGS);
  ctRefresh(peerKey, pv, now);
}

/** Stops counting a flow in its backend's activeConns (TCP closing), at most once. */
export function ctUncount(k: usize, v: usize): void {
  // Forward entry only: find it if v is the reply side.
  let fv = v;
  if (<u32>load<u8>(v, V_FLAGS) & CT_REPLY) {
    ctPeerKey(peerKey, k, v);
    const j = hashFind(conntrack_id, peerKey);
    if (j < 0) return;
    fv = slotValue(conntrack_id, hashSlot(conntrack_id, <u32>j));
  }
  const f = <u32>load<u8>(fv, V_FLAGS);
  if (!(f & CT_COUNTED)) return;
  store<u8>(fv, <u8>(f & ~CT_COUNTED), V_FLAGS);
  const be = arrayElem(backends_id, load<u32>(fv, V_BACKEND));
  if (be != 0) {
    const n = load<u32>(be, backends_value_activeConns);
    if (n > 0) store<u32>(be, n - 1, backends_value_activeConns);
  }
}

/**
 * Expiry sweep: examines up to `budget` slots starting at `cursor`, removes expired entries,
 * and returns the cursor to continue from (0 after a full pass). Removal shifts later
 * entries back, so a slot is re-examined after a removal.
 */
export function ctSweep(now: u32, cursor: u32, budget: u32): u32 {
  const cap = mapCapacity(conntrack_id);
  let i = cursor;
  let n: u32 = 0;
  while (i < cap && n < budget) {
    n++;
    const s = hashSlot(conntrack_id, i);
    if (load<u32>(s) != 0 && <i32>(load<u32>(slotValue(conntrack_id, s), V_EXPIRES) - now) < 0
      && !adoptPeerLifetime(slotKey(s), slotValue(conntrack_id, s), now)) {
      ctRemoveAt(i);
      continue; // slot i now holds a shifted entry (or is empty)
    }
    i++;
  }
  return i >= cap ? 0 : i;
}

/**
 * Removes every forward flow to `backendId` whose protocol is in `protoMask` (bit 0 TCP,
 * bit 1 UDP, bit 2 SCTP), with its reply entry. Returns the number of flows removed.
 */
export function ctFlushBackend(backendId: u32, protoMask: u32): u32 {
  const cap = mapCapacity(conntrack_id);
  let removed: u32 = 0;
  // Removing a peer can shift an unvisited entry behind the cursor: repeat until a pass is clean.
  let pass: u32 = 1;
  while (pass != 0) {
    pass = 0;
    let i: u32 = 0;
    while (i < cap) {
      const s = hashSlot(conntrack_id, i);
      if (load<u32>(s) != 0) {
        const k = slotKey(s);
        const v = slotValue(conntrack_id, s);
        const proto = <u32>load<u8>(k, 12);
        const bit: u32 = proto == IPPROTO_TCP ? 1 : proto == IPPROTO_UDP ? 2 : 4;
        const isFwd = (<u32>load<u8>(v, V_FLAGS) & CT_REPLY) == 0;
        if (isFwd && (bit & protoMask) && load<u32>(v, V_BACKEND) == backendId) {
          ctRemoveAt(i);
          pass++;
          continue;
        }
      }
      i++;
    }
    removed += pass;
  }
  return removed;
}

let staleRemoved: u32 = 0;

/** Flows removed by the last ctFlushStale call. */
export function ctFlushStaleRemoved(): u32 { return staleRemoved; }

/**
 * Removes every forward flow whose protocol is in `protoMask` (bit 0 TCP, bit 1 UDP, bit 2
 * SCTP) and whose backend is gone — its entry cleared, or reused for another address, port or
 * protocol — with its reply entry, examining slots `cursor` .. `cursor + budget` (bounded
 * work: the host spreads one pass over several calls). One scan serves any number of departed
 * backends, so the host clears their entries first (the dataplane already treats such flows as
 * stale: see ctBackendValid) and cleans up afterwards. Returns the cursor to continue from, 0
 * after the last slot; ctFlushStaleRemoved() gives the flows removed. A removal can shift an
 * entry from ahead of the cursor to behind it: a caller that needs every stale flow gone
 * repeats full passes until one removes nothing.
 */
export function ctFlushStale(protoMask: u32, cursor: u32, budget: u32): u32 {
  const cap = mapCapacity(conntrack_id);
  let end = <u64>cursor + <u64>budget;
  if (end > <u64>cap) end = <u64>cap;
  const stop = <u32>end;
  let removed: u32 = 0;
  let i = cursor;
  while (i < stop) {
    const s = hashSlot(conntrack_id, i);
    if (load<u32>(s) != 0) {
      const k = slotKey(s);
      const v = slotValue(conntrack_id, s);
      const proto = <u32>load<u8>(k, 12);
      const bit: u32 = proto == IPPROTO_TCP ? 1 : proto == IPPROTO_UDP ? 2 : 4;
      if ((bit & protoMask) && (<u32>load<u8>(v, V_FLAGS) & CT_REPLY) == 0) {
        const be = arrayElem(backends_id, load<u32>(v, V_BACKEND));
        if (!ctBackendValid(v) || <u32>load<u8>(be, backends_value_proto) != proto) {
          ctRemoveAt(i);
          removed++;
          continue; // slot i now holds a shifted entry (or is empty)
        }
      }
    }
    i++;
  }
  staleRemoved = removed;
  return i >= cap ? 0 : i;
}

/** True when a forward entry's backend still exists with the address and port it recorded. */
export function ctBackendValid(v: usize): bool {
  const be = arrayElem(backends_id, load<u32>(v, V_BACKEND));
  if (be == 0) return false;
  if (load<u8>(be, 7) == 0) return false; // backends_value_state: gone
  return load<u32>(be, backends_value_addrBe) == load<u32>(v, V_PEER_ADDR)
    && load<u16>(be, backends_value_portBe) == load<u16>(v, V_PEER_PORT);
}
