// Every map of the dataplane, declared once: id, kind, key and value layout (byte offsets,
// explicit padding, byte order in the names: `...Be` = network order), default max entries,
// and purpose. These constants are exported from the module; src/maps/layout.ts declares the
// same layouts for TypeScript and a test compares the two field by field.
// Id 0 means "none" for services, backends and reverse-NAT entries: zeroed memory reads empty.

import { KIND_ARRAY, KIND_HASH, KIND_LRU_HASH, KIND_LPM, mapDeclare } from "./engine";

// ---- config: ARRAY[1] — node-wide settings written by the host --------------------------
// value: | snatAddrBe u32 | snatPortMin u16 | snatPortMax u16 | tcpSynTimeout u32 |
//        | tcpEstablishedTimeout u32 | tcpClosingTimeout u32 | udpTimeout u32 |
//        | udpStreamTimeout u32 | icmpTimeout u32 | defaultAlgo u8 | flags u8 | pad u16 |
//        | hashSeed u32 | rngState u32 | pad u32 |                                  = 48 bytes
export const config_id: u32 = 0;
export const config_kind: u32 = KIND_ARRAY;
export const config_default_max: u32 = 1;
export const config_key_size: u32 = 4;
export const config_value_size: u32 = 48;
export const config_value_snatAddrBe: u32 = 0;
export const config_value_snatPortMin: u32 = 4;
export const config_value_snatPortMax: u32 = 6;
export const config_value_tcpSynTimeout: u32 = 8;
export const config_value_tcpEstablishedTimeout: u32 = 12;
export const config_value_tcpClosingTimeout: u32 = 16;
export const config_value_udpTimeout: u32 = 20;
export const config_value_udpStreamTimeout: u32 = 24;
export const config_value_icmpTimeout: u32 = 28;
export const config_value_defaultAlgo: u32 = 32;
export const config_value_flags: u32 = 33;
export const config_value_hashSeed: u32 = 36;
export const config_value_rngState: u32 = 40;
export const CFG_SWAP_MACS: u32 = 1; // TX/REPLY frames go back out of the TAP: swap MACs
export const CFG_MASQ_OFF_NODE: u32 = 2; // masquerade ClusterIP traffic from off-node sources

// ---- frontends: HASH — (VIP, port, protocol) → service port ------------------------------
// A ClusterIP, externalIP or LoadBalancer ingress IP with a port; NodePorts use addrBe = 0
// and match any address flagged ADDR_NODEPORT in `addrs`.
// key:   | addrBe u32 | portBe u16 | proto u8 | pad u8 |                           = 8 bytes
// value: | svcId u32 | revNatId u32 | kind u8 | pad u8 | pad u16 |                 = 12 bytes
export const frontends_id: u32 = 1;
export const frontends_kind: u32 = KIND_HASH;
export const frontends_default_max: u32 = 65536;
export const frontends_key_size: u32 = 8;
export const frontends_key_addrBe: u32 = 0;
export const frontends_key_portBe: u32 = 4;
export const frontends_key_proto: u32 = 6;
export const frontends_value_size: u32 = 12;
export const frontends_value_svcId: u32 = 0;
export const frontends_value_revNatId: u32 = 4;
export const frontends_value_kind: u32 = 8;
export const FE_CLUSTER_IP: u32 = 1;
export const FE_NODE_PORT: u32 = 2;
export const FE_EXTERNAL_IP: u32 = 3;
export const FE_LOAD_BALANCER: u32 = 4;

// ---- addrs: HASH — addresses the dataplane must recognise -----------------------------
// key: | addrBe u32 |  value: | flags u32 | (ADDR_NODEPORT: serves NodePorts; ADDR_VIP: a
// service address, so unknown ports are rejected and fragments dropped rather than passed)
export const addrs_id: u32 = 2;
export const addrs_kind: u32 = KIND_HASH;
export const addrs_default_max: u32 = 65536;
export const addrs_key_size: u32 = 4;
export const addrs_key_addrBe: u32 = 0;
export const addrs_value_size: u32 = 4;
export const addrs_value_flags: u32 = 0;
export const ADDR_NODEPORT: u32 = 1;
export const ADDR_VIP: u32 = 2;

// ---- services: ARRAY[svcId] — one Kubernetes service port ----------------------------
// Its backends sit in `svc_slots` in four consecutive groups (ready local, ready remote,
// serving+terminating local, serving+terminating remote), so the §5 sets are slot ranges:
//   cluster set = ready (slots [0, rl+rr)) or, if none, terminating ([rl+rr, rl+rr+tl+tr))
//   local set   = ready local ([0, rl)) or, if none, terminating local ([rl+rr, rl+rr+tl))
// value: | flags u8 | algo u8 | pad u16 | affinityTimeoutSec u32 |
//        | readyLocal u16 | readyRemote u16 | terminatingLocal u16 | terminatingRemote u16 |
//        | rrCursor u32 (dataplane-written) |
//        | maglevClusterOff u32 | maglevClusterSize u32 | maglevLocalOff u32 | maglevLocalSize u32 |
//        | pad u32 |                                                               = 40 bytes
export const services_id: u32 = 3;
export const services_kind: u32 = KIND_ARRAY;
export const services_default_max: u32 = 65536;
export const services_key_size: u32 = 4;
export const services_value_size: u32 = 40;
export const services_value_flags: u32 = 0;
export const services_value_algo: u32 = 1;
export const services_value_affinityTimeoutSec: u32 = 4;
export const services_value_readyLocal: u32 = 8;
export const services_value_readyRemote: u32 = 10;
export const services_value_terminatingLocal: u32 = 12;
export const services_value_terminatingRemote: u32 = 14;
export const services_value_rrCursor: u32 = 16;
export const services_value_maglevClusterOff: u32 = 20;
export const services_value_maglevClusterSize: u32 = 24;
export const services_value_maglevLocalOff: u32 = 28;
export const services_value_maglevLocalSize: u32 = 32;
export const SVC_AFFINITY: u32 = 1; // sessionAffinity ClientIP
export const SVC_EXT_LOCAL: u32 = 2; // externalTrafficPolicy Local
export const SVC_INT_LOCAL: u32 = 4; // internalTrafficPolicy Local
export const SVC_SOURCE_RANGES: u32 = 8; // loadBalancerSourceRanges present (LPM table = svcId)
// Backend selection algorithms.
export const ALG_DEFAULT: u32 = 0; // the node-wide default (config.defaultAlgo)
export const ALG_RANDOM: u32 = 1;
export const ALG_MAGLEV: u32 = 2;
export const ALG_RR: u32 = 3;
export const ALG_LC: u32 = 4;
export const ALG_DH: u32 = 5;
export const ALG_SH: u32 = 6;
export const ALG_SED: u32 = 7;
export const ALG_NQ: u32 = 8;

// ---- backends: ARRAY[backendId] — one endpoint address:port -------------------------------
// value: | addrBe u32 | portBe u16 | proto u8 | state u8 | flags u8 | pad u8 | weight u16 |
//        | activeConns u32 (dataplane-written) |                                  = 16 bytes
export const backends_id: u32 = 4;
export const backends_kind: u32 = KIND_ARRAY;
export const backends_default_max: u32 = 65536;
export const backends_key_size: u32 = 4;
export const backends_value_size: u32 = 16;
export const backends_value_addrBe: u32 = 0;
export const backends_value_portBe: u32 = 4;
export const backends_value_proto: u32 = 6;
export const backends_value_state: u32 = 7;
export const backends_value_flags: u32 = 8;
export const backends_value_weight: u32 = 10;
export const backends_value_activeConns: u32 = 12;
export const BE_STATE_NONE: u32 = 0;
export const BE_STATE_ACTIVE: u32 = 1;
export const BE_STATE_TERMINATING: u32 = 2;
export const BE_LOCAL: u32 = 1; // endpoint on this node

// ---- svc_slots: HASH — (svcId, slot) → backendId ------------------------------------------
// key: | svcId u32 | slot u32 |  value: | backendId u32 |
export const svc_slots_id: u32 = 5;
export const svc_slots_kind: u32 = KIND_HASH;
export const svc_slots_default_max: u32 = 262144;
export const svc_slots_key_size: u32 = 8;
export const svc_slots_key_svcId: u32 = 0;
export const svc_slots_key_slot: u32 = 4;
export const svc_slots_value_size: u32 = 4;
export const svc_slots_value_backendId: u32 = 0;

// ---- maglev: ARRAY — arena of Maglev lookup tables --------------------------------------
// Each service's cluster-set and local-set tables are ranges [off, off+size) of this array
// (offsets in the services value); an entry is a backendId. The host owns the arena layout.
export const maglev_id: u32 = 6;
export const maglev_kind: u32 = KIND_ARRAY;
export const maglev_default_max: u32 = 1 << 20;
export const maglev_key_size: u32 = 4;
export const maglev_value_size: u32 = 4;
export const maglev_value_backendId: u32 = 0;

// ---- rev_nat: ARRAY[revNatId] — the frontend (VIP, port) of each revNatId ----------------
// Conntrack entries name their frontend by revNatId; the host reads this map to show and
// flush flows per frontend. Replies are rewritten from the copy kept in the reply entry.
// value: | addrBe u32 | portBe u16 | pad u16 |
export const rev_nat_id: u32 = 7;
export const rev_nat_kind: u32 = KIND_ARRAY;
export const rev_nat_default_max: u32 = 65536;
export const rev_nat_key_size: u32 = 4;
export const rev_nat_value_size: u32 = 8;
export const rev_nat_value_addrBe: u32 = 0;
export const rev_nat_value_portBe: u32 = 4;

// ---- conntrack: LRU_HASH — one entry per direction of a translated flow --------------------
// The forward entry is keyed by the client's tuple (client → frontend); the reply entry by the
// backend's reply tuple (backend → client, or → the SNAT address:port when masqueraded).
// key:   | saddrBe u32 | daddrBe u32 | sportBe u16 | dportBe u16 | proto u8 | pad u8 | pad u16 | = 16
// value: | backendId u32 | revNatId u32 | svcId u32 |
//        | natAddrBe u32 | natPortBe u16 | state u8 | flags u8 |
//        | expiresSec u32 | peerAddrBe u32 | peerPortBe u16 | pad u16 |                  = 32
// natAddrBe/natPortBe: forward entry = SNAT source used (0 = none); reply entry = the
// client's original address and port. peerAddrBe/peerPortBe: forward entry = the backend
// chosen; reply entry = the address and port the client spoke to (the frontend; for a
// NodePort, the node address used). Like Linux conntrack, an entry carries its whole
// translation, so replies keep flowing after the frontend's maps change; the forward path
// re-checks that the backend still exists before using it.
export const conntrack_id: u32 = 8;
export const conntrack_kind: u32 = KIND_LRU_HASH;
export const conntrack_default_max: u32 = 262144;
export const conntrack_key_size: u32 = 16;
export const conntrack_key_saddrBe: u32 = 0;
export const conntrack_key_daddrBe: u32 = 4;
export const conntrack_key_sportBe: u32 = 8;
export const conntrack_key_dportBe: u32 = 10;
export const conntrack_key_proto: u32 = 12;
export const conntrack_value_size: u32 = 32;
export const conntrack_value_backendId: u32 = 0;
export const conntrack_value_revNatId: u32 = 4;
export const conntrack_value_svcId: u32 = 8;
export const conntrack_value_natAddrBe: u32 = 12;
export const conntrack_value_natPortBe: u32 = 16;
export const conntrack_value_state: u32 = 18;
export const conntrack_value_flags: u32 = 19;
export const conntrack_value_expiresSec: u32 = 20;
export const conntrack_value_peerAddrBe: u32 = 24;
export const conntrack_value_peerPortBe: u32 = 28;
export const CT_STATE_NONE: u32 = 0; // UDP, SCTP
export const CT_STATE_SYN_SENT: u32 = 1;
export const CT_STATE_ESTABLISHED: u32 = 2;
export const CT_STATE_CLOSING: u32 = 3; // FIN seen
export const CT_STATE_RESET: u32 = 4; // RST seen
export const CT_REPLY: u32 = 1; // this entry is the reply direction
export const CT_SNAT: u32 = 2; // the flow is masqueraded (forward: natAddr/natPort = SNAT source)
export const CT_SEEN_REPLY: u32 = 4; // a reply was seen (UDP: stream timeout; TCP: handshake)
export const CT_COUNTED: u32 = 8; // counted in the backend's activeConns

// ---- affinity: LRU_HASH — ClientIP session affinity ----------------------------------
// key: | clientAddrBe u32 | svcId u32 |  value: | backendId u32 | lastUsedSec u32 |
export const affinity_id: u32 = 9;
export const affinity_kind: u32 = KIND_LRU_HASH;
export const affinity_default_max: u32 = 65536;
export const affinity_key_size: u32 = 8;
export const affinity_key_clientAddrBe: u32 = 0;
export const affinity_key_svcId: u32 = 4;
export const affinity_value_size: u32 = 8;
export const affinity_value_backendId: u32 = 0;
export const affinity_value_lastUsedSec: u32 = 4;

// ---- snat: LRU_HASH — masquerade source ports in use --------------------------------------
// key:   | addrBe u32 | remoteAddrBe u32 | portBe u16 | remotePortBe u16 | proto u8 | pad u8 | pad u16 | = 16
// value: | clientAddrBe u32 | clientPortBe u16 | pad u16 | createdSec u32 |              = 12
export const snat_id: u32 = 10;
export const snat_kind: u32 = KIND_LRU_HASH;
export const snat_default_max: u32 = 65536;
export const snat_key_size: u32 = 16;
export const snat_key_addrBe: u32 = 0;
export const snat_key_remoteAddrBe: u32 = 4;
export const snat_key_portBe: u32 = 8;
export const snat_key_remotePortBe: u32 = 10;
export const snat_key_proto: u32 = 12;
export const snat_value_size: u32 = 12;
export const snat_value_clientAddrBe: u32 = 0;
export const snat_value_clientPortBe: u32 = 4;
export const snat_value_createdSec: u32 = 8;

// ---- lpm_v4: LPM — source CIDR sets -------------------------------------------------------
// Table 0 = sources local to this node (pod CIDR, node addresses); table svcId = that
// service's loadBalancerSourceRanges. key: | tableId u32 | prefixLen u32 | addrBe u32 (masked) |
// value: | value u32 |
export const lpm_v4_id: u32 = 11;
export const lpm_v4_kind: u32 = KIND_LPM;
export const lpm_v4_default_max: u32 = 65536;
export const lpm_v4_key_size: u32 = 12;
export const lpm_v4_key_tableId: u32 = 0;
export const lpm_v4_key_prefixLen: u32 = 4;
export const lpm_v4_key_addrBe: u32 = 8;
export const lpm_v4_value_size: u32 = 4;
export const lpm_v4_value_value: u32 = 0;

// ---- lpm_masks: ARRAY[tableId] — prefix lengths present in each LPM table ----------------
// value: | lengths u64 (bit n = some /n prefix present) |
export const lpm_masks_id: u32 = 12;
export const lpm_masks_kind: u32 = KIND_ARRAY;
export const lpm_masks_default_max: u32 = 65536;
export const lpm_masks_key_size: u32 = 4;
export const lpm_masks_value_size: u32 = 8;
export const lpm_masks_value_lengths: u32 = 0;

// ---- stats_reason: ARRAY[reason] — packets and bytes per verdict reason -------------------
// value: | packets u64 | bytes u64 |
export const stats_reason_id: u32 = 13;
export const stats_reason_kind: u32 = KIND_ARRAY;
export const stats_reason_default_max: u32 = 64;
export const stats_reason_key_size: u32 = 4;
export const stats_reason_value_size: u32 = 16;
export const stats_reason_value_packets: u32 = 0;
export const stats_reason_value_bytes: u32 = 8;

// ---- stats_service / stats_backend: ARRAY — traffic per service port / backend -----------
// value: | packets u64 | bytes u64 | flows u64 |
export const stats_service_id: u32 = 14;
export const stats_service_kind: u32 = KIND_ARRAY;
export const stats_service_default_max: u32 = 65536;
export const stats_service_key_size: u32 = 4;
export const stats_service_value_size: u32 = 24;
export const stats_service_value_packets: u32 = 0;
export const stats_service_value_bytes: u32 = 8;
export const stats_service_value_flows: u32 = 16;

export const stats_backend_id: u32 = 15;
export const stats_backend_kind: u32 = KIND_ARRAY;
export const stats_backend_default_max: u32 = 65536;
export const stats_backend_key_size: u32 = 4;
export const stats_backend_value_size: u32 = 24;
export const stats_backend_value_packets: u32 = 0;
export const stats_backend_value_bytes: u32 = 8;
export const stats_backend_value_flows: u32 = 16;

export const MAP_COUNT: u32 = 16;

/** Registers every map with the engine (before `mapsInit`). */
export function declareMaps(): void {
  mapDeclare(config_id, config_kind, config_key_size, config_value_size, config_default_max);
  mapDeclare(frontends_id, frontends_kind, frontends_key_size, frontends_value_size, frontends_default_max);
  mapDeclare(addrs_id, addrs_kind, addrs_key_size, addrs_value_size, addrs_default_max);
  mapDeclare(services_id, services_kind, services_key_size, services_value_size, services_default_max);
  mapDeclare(backends_id, backends_kind, backends_key_size, backends_value_size, backends_default_max);
  mapDeclare(svc_slots_id, svc_slots_kind, svc_slots_key_size, svc_slots_value_size, svc_slots_default_max);
  mapDeclare(maglev_id, maglev_kind, maglev_key_size, maglev_value_size, maglev_default_max);
  mapDeclare(rev_nat_id, rev_nat_kind, rev_nat_key_size, rev_nat_value_size, rev_nat_default_max);
  mapDeclare(conntrack_id, conntrack_kind, conntrack_key_size, conntrack_value_size, conntrack_default_max);
  mapDeclare(affinity_id, affinity_kind, affinity_key_size, affinity_value_size, affinity_default_max);
  mapDeclare(snat_id, snat_kind, snat_key_size, snat_value_size, snat_default_max);
  mapDeclare(lpm_v4_id, lpm_v4_kind, lpm_v4_key_size, lpm_v4_value_size, lpm_v4_default_max);
  mapDeclare(lpm_masks_id, lpm_masks_kind, lpm_masks_key_size, lpm_masks_value_size, lpm_masks_default_max);
  mapDeclare(stats_reason_id, stats_reason_kind, stats_reason_key_size, stats_reason_value_size, stats_reason_default_max);
  mapDeclare(stats_service_id, stats_service_kind, stats_service_key_size, stats_service_value_size, stats_service_default_max);
  mapDeclare(stats_backend_id, stats_backend_kind, stats_backend_key_size, stats_backend_value_size, stats_backend_default_max);
}
