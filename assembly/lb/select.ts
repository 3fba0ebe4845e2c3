// Backend selection for a new flow: which slot range of a service serves this packet (§5 sets,
// see the services block in maps/decl.ts), and which backend of that range the service's
// algorithm picks: random (kube-proxy iptables), Maglev, or the IPVS schedulers rr, lc, dh, sh,
// sed, nq. Returns backend ids; 0 = none.

import { arrayElem, hashLookup, hashWords, keyBuf } from "../maps/engine";
import {
  config_id, config_value_rngState, config_value_hashSeed, config_value_defaultAlgo,
  services_value_algo, services_value_readyLocal, services_value_readyRemote,
  services_value_terminatingLocal, services_value_terminatingRemote, services_value_rrCursor,
  services_value_maglevClusterOff, services_value_maglevClusterSize,
  services_value_maglevLocalOff, services_value_maglevLocalSize,
  svc_slots_id, maglev_id, backends_id, backends_value_activeConns, backends_value_weight,
  backends_value_state, backends_value_flags, BE_STATE_ACTIVE, BE_STATE_TERMINATING, BE_LOCAL,
  ALG_DEFAULT, ALG_RANDOM, ALG_MAGLEV, ALG_RR, ALG_LC, ALG_DH, ALG_SH, ALG_SED, ALG_NQ,
} from "../maps/decl";

/** Fixed seed so every node running Maglev maps a tuple to the same backend. */
const MAGLEV_SEED: u32 = 0x4d41474c;

// The chosen range, set by `chooseRange`.
export let rangeStart: u32 = 0;
export let rangeLen: u32 = 0;
export let rangeTerminating: bool = false;
let rangeLocal: bool = false;

/** Total endpoints of a service (any category): 0 means "reject". */
export function serviceEndpointCount(svc: usize): u32 {
  return <u32>load<u16>(svc, services_value_readyLocal) + <u32>load<u16>(svc, services_value_readyRemote)
    + <u32>load<u16>(svc, services_value_terminatingLocal) + <u32>load<u16>(svc, services_value_terminatingRemote);
}

/** Picks the §5 set: local (traffic policy Local) or cluster; ready first, else terminating. */
export function chooseRange(svc: usize, local: bool): void {
  const rl = <u32>load<u16>(svc, services_value_readyLocal);
  const rr = <u32>load<u16>(svc, services_value_readyRemote);
  const tl = <u32>load<u16>(svc, services_value_terminatingLocal);
  const tr = <u32>load<u16>(svc, services_value_terminatingRemote);
  rangeLocal = local;
  if (local) {
    rangeTerminating = rl == 0;
    rangeStart = rl > 0 ? 0 : rl + rr;
    rangeLen = rl > 0 ? rl : tl;
  } else {
    rangeTerminating = rl + rr == 0;
    rangeStart = rl + rr > 0 ? 0 : rl + rr;
    rangeLen = rl + rr > 0 ? rl + rr : tl + tr;
  }
}

/** True when backend `id` may serve the current range (used to honour affinity). */
export function backendFitsRange(id: u32): bool {
  const be = arrayElem(backends_id, id);
  if (be == 0) return false;
  const st = <u32>load<u8>(be, backends_value_state);
  if (st != (rangeTerminating ? BE_STATE_TERMINATING : BE_STATE_ACTIVE)) return false;
  return !rangeLocal || (<u32>load<u8>(be, backends_value_flags) & BE_LOCAL) != 0;
}

// @ts-ignore: decorator
@inline function slotBackend(svcId: u32, slot: u32): u32 {
  const k = keyBuf;
  store<u32>(k, svcId, 0);
  store<u32>(k, slot, 4);
  const v = hashLookup(svc_slots_id, k);
  return v == 0 ? 0 : load<u32>(v);
}

/** xorshift32 over the config's rngState (deterministic for a given seed). */
export function nextRandom(): u32 {
  const c = arrayElem(config_id, 0);
  let x = load<u32>(c, config_value_rngState);
  if (x == 0) x = load<u32>(c, config_value_hashSeed) | 1;
  x ^= x << 13;
  x ^= x >>> 17;
  x ^= x << 5;
  store<u32>(c, x, config_value_rngState);
  return x;
}

// @ts-ignore: decorator
@inline function hash1(v: u32): u32 {
  const k = keyBuf;
  store<u32>(k, v);
  return hashWords(k, 1, MAGLEV_SEED);
}

/** Least "expected delay" scan for lc / sed / nq over the range (IPVS semantics, weights). */
function scanLeast(svcId: u32, alg: u32): u32 {
  let best: u32 = 0;
  let bestConns: u64 = 0;
  let bestWeight: u64 = 1;
  for (let i: u32 = 0; i < rangeLen; i++) {
    const id = slotBackend(svcId, rangeStart + i);
    const be = arrayElem(backends_id, id);
    if (be == 0) continue;
    const w = <u64>load<u16>(be, backends_value_weight);
    if (w == 0) continue; // weight 0 = quiesced: no new connections
    const c = <u64>load<u32>(be, backends_value_activeConns);
    if (alg == ALG_NQ && c == 0) return id; // never queue: an idle server is taken at once
    if (best == 0) {
      best = id; bestConns = c; bestWeight = w;
      continue;
    }
    // lc: fewest connections (weight ignored); sed/nq: minimise (C+1)/W, cross-multiplied.
    const better = alg == ALG_LC ? c < bestConns : (c + 1) * bestWeight < (bestConns + 1) * w;
    if (better) {
      best = id; bestConns = c; bestWeight = w;
    }
  }
  return best;
}

/**
 * Selects a backend from the current range for a new flow. `tuple` points to a 16-byte
 * conntrack-style key of the packet (saddr, daddr, sport, dport, proto).
 */
export function selectBackend(svc: usize, svcId: u32, tuple: usize): u32 {
  const n = rangeLen;
  if (n == 0) return 0;
  let alg = <u32>load<u8>(svc, services_value_algo);
  if (alg == ALG_DEFAULT) alg = <u32>load<u8>(arrayElem(config_id, 0), config_value_defaultAlgo);
  if (alg == ALG_MAGLEV) {
    const off = load<u32>(svc + (rangeLocal ? services_value_maglevLocalOff : services_value_maglevClusterOff));
    const size = load<u32>(svc + (rangeLocal ? services_value_maglevLocalSize : services_value_maglevClusterSize));
    // A table exists only for the ready set; the terminating fallback uses random selection.
    if (size != 0 && !rangeTerminating) {
      const h = hashWords(tuple, 4, MAGLEV_SEED);
      const e = arrayElem(maglev_id, off + h % size);
      if (e != 0) return load<u32>(e);
    }
    alg = ALG_RANDOM;
  }
  if (alg == ALG_RR) {
    const c = load<u32>(svc, services_value_rrCursor);
    store<u32>(svc, c + 1, services_value_rrCursor);
    return slotBackend(svcId, rangeStart + c % n);
  }
  if (alg == ALG_LC || alg == ALG_SED || alg == ALG_NQ) return scanLeast(svcId, alg);
  if (alg == ALG_DH) return slotBackend(svcId, rangeStart + hash1(load<u32>(tuple, 4)) % n);
  if (alg == ALG_SH) return slotBackend(svcId, rangeStart + hash1(load<u32>(tuple, 0)) % n);
  return slotBackend(svcId, rangeStart + nextRandom() % n);
}
