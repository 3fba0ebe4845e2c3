// Masquerade source-port allocation: picks a free (SNAT address, port) toward a given backend
// from the configured port range and records it in the `snat` map, which the conntrack entry
// releases when the flow ends. Probing starts at a hash of the client tuple, so one client
// port tends to keep its masquerade port; it gives up after SNAT_TRIES probes (fail closed).
// A port is in use while conntrack holds the reply entry it implies (backend → natAddr:port):
// conntrack is the truth, so a record left behind by an evicted flow is simply reused.

import { arrayElem, hashFind, hashInsert, hashRemoveAt, hashWords, hashSeed, keyBuf2 } from "../maps/engine";
import * as E from "../maps/engine";
import {
  config_id, config_value_snatPortMin, config_value_snatPortMax, snat_id, conntrack_id,
  snat_value_clientAddrBe, snat_value_clientPortBe, snat_value_createdSec,
} from "../maps/decl";

const SNAT_TRIES: u32 = 64;
const snatKey = memory.data(16, 16);

/**
 * Allocates a source port on `natAddr` for the flow client → backend; returns the port
 * (raw, network order) or 0 when none is free. Expired records are reused.
 */
export function snatAllocate(natAddr: u32, backendAddr: u32, backendPort: u32, proto: u32,
  clientAddr: u32, clientPort: u32, now: u32): u32 {
  const c = arrayElem(config_id, 0);
  const lo = <u32>load<u16>(c, config_value_snatPortMin);
  const hi = <u32>load<u16>(c, config_value_snatPortMax);
  if (lo == 0 || hi < lo) return 0;
  const span = hi - lo + 1;
  const t = keyBuf2;
  store<u32>(t, clientAddr, 0);
  store<u32>(t, clientPort | (proto << 16), 4);
  store<u32>(t, backendAddr, 8);
  store<u32>(t, backendPort, 12);
  let h = hashWords(t, 4, hashSeed);
  const k = snatKey;
  store<u32>(k, natAddr, 0);
  store<u32>(k, backendAddr, 4);
  store<u16>(k, <u16>backendPort, 10);
  store<u32>(k, proto, 12);
  for (let i: u32 = 0; i < SNAT_TRIES && i < span; i++) {
    const port = lo + (h + i) % span;
    const raw = <u32>bswap<u16>(<u16>port);
    store<u16>(k, <u16>raw, 8);
    // The reply tuple this port would give: backend → natAddr:port.
    store<u32>(t, backendAddr, 0);
    store<u32>(t, natAddr, 4);
    store<u16>(t, <u16>backendPort, 8);
    store<u16>(t, <u16>raw, 10);
    store<u32>(t, proto, 12);
    if (hashFind(conntrack_id, t) >= 0) continue; // in use
    const at = hashFind(snat_id, k);
    if (at >= 0) hashRemoveAt(snat_id, <u32>at); // record of a flow conntrack no longer has
    const v = hashInsert(snat_id, k);
    E.evictPending = false; // an evicted record holds nothing: conntrack decides what is in use
    if (v == 0) return 0;
    store<u32>(v, clientAddr, snat_value_clientAddrBe);
    store<u16>(v, <u16>clientPort, snat_value_clientPortBe);
    store<u32>(v, now, snat_value_createdSec);
    return raw;
  }
  return 0;
}
