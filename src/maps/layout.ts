// The TypeScript side of every map declared in assembly/maps/decl.ts: id, kind, key and value
// codecs, default max entries and purpose. test/maps/layout.test.ts compares each offset and
// size here with the constants the WASM module exports, so the two cannot drift apart.

import { struct, type Struct, type FieldDecl, type StructOf } from "./codec.js";

export const enum MapKind {
  Array = 1,
  Hash = 2,
  LruHash = 3,
  Lpm = 4,
}

interface DeclCommon {
  readonly name: string;
  readonly id: number;
  readonly kind: MapKind;
  readonly defaultMaxEntries: number;
  readonly purpose: string;
}

/** An array map: the key is the element index. */
export interface ArrayMapDecl<V extends readonly FieldDecl[]> extends DeclCommon {
  readonly key: null;
  readonly value: Struct<V>;
}

/** A hash, LRU hash or LPM map: keys by value. */
export interface HashMapDecl<K extends readonly FieldDecl[], V extends readonly FieldDecl[]> extends DeclCommon {
  readonly key: Struct<K>;
  readonly value: Struct<V>;
}

export type AnyMapDecl = ArrayMapDecl<readonly FieldDecl[]> | HashMapDecl<readonly FieldDecl[], readonly FieldDecl[]>;

function arrayDecl<const V extends readonly FieldDecl[]>(d: ArrayMapDecl<V>): ArrayMapDecl<V> {
  return d;
}

function hashDecl<const K extends readonly FieldDecl[], const V extends readonly FieldDecl[]>(d: HashMapDecl<K, V>): HashMapDecl<K, V> {
  return d;
}

export const config = arrayDecl({
  name: "config", id: 0, kind: MapKind.Array, defaultMaxEntries: 1, key: null,
  purpose: "node-wide settings: SNAT address and port range, conntrack timeouts, default algorithm, flags",
  value: struct(48, [
    { name: "snatAddrBe", type: "ipv4be", offset: 0 },
    { name: "snatPortMin", type: "u16", offset: 4 },
    { name: "snatPortMax", type: "u16", offset: 6 },
    { name: "tcpSynTimeout", type: "u32", offset: 8 },
    { name: "tcpEstablishedTimeout", type: "u32", offset: 12 },
    { name: "tcpClosingTimeout", type: "u32", offset: 16 },
    { name: "udpTimeout", type: "u32", offset: 20 },
    { name: "udpStreamTimeout", type: "u32", offset: 24 },
    { name: "icmpTimeout", type: "u32", offset: 28 },
    { name: "defaultAlgo", type: "u8", offset: 32 },
    { name: "flags", type: "u8", offset: 33 },
    { name: "hashSeed", type: "u32", offset: 36 },
    { name: "rngState", type: "u32", offset: 40 },
  ]),
});

export const frontends = hashDecl({
  name: "frontends", id: 1, kind: MapKind.Hash, defaultMaxEntries: 65536,
  purpose: "(VIP, port, protocol) → service port; NodePorts use address 0.0.0.0",
  key: struct(8, [
    { name: "addrBe", type: "ipv4be", offset: 0 },
    { name: "portBe", type: "portbe", offset: 4 },
    { name: "proto", type: "u8", offset: 6 },
  ]),
  value: struct(12, [
    { name: "svcId", type: "u32", offset: 0 },
    { name: "revNatId", type: "u32", offset: 4 },
    { name: "kind", type: "u8", offset: 8 },
  ]),
});

export const addrs = hashDecl({
  name: "addrs", id: 2, kind: MapKind.Hash, defaultMaxEntries: 65536,
  purpose: "addresses the dataplane recognises: NodePort node addresses, service addresses",
  key: struct(4, [{ name: "addrBe", type: "ipv4be", offset: 0 }]),
  value: struct(4, [{ name: "flags", type: "u32", offset: 0 }]),
});

export const services = arrayDecl({
  name: "services", id: 3, kind: MapKind.Array, defaultMaxEntries: 65536, key: null,
  purpose: "one service port: flags, algorithm, affinity timeout, backend group sizes, Maglev tables",
  value: struct(40, [
    { name: "flags", type: "u8", offset: 0 },
    { name: "algo", type: "u8", offset: 1 },
    { name: "affinityTimeoutSec", type: "u32", offset: 4 },
    { name: "readyLocal", type: "u16", offset: 8 },
    { name: "readyRemote", type: "u16", offset: 10 },
    { name: "terminatingLocal", type: "u16", offset: 12 },
    { name: "terminatingRemote", type: "u16", offset: 14 },
    { name: "rrCursor", type: "u32", offset: 16 },
    { name: "maglevClusterOff", type: "u32", offset: 20 },
    { name: "maglevClusterSize", type: "u32", offset: 24 },
    { name: "maglevLocalOff", type: "u32", offset: 28 },
    { name: "maglevLocalSize", type: "u32", offset: 32 },
  ]),
});

export const backends = arrayDecl({
  name: "backends", id: 4, kind: MapKind.Array, defaultMaxEntries: 65536, key: null,
  purpose: "one endpoint address:port with state (active/terminating), node-local flag, weight",
  value: struct(16, [
    { name: "addrBe", type: "ipv4be", offset: 0 },
    { name: "portBe", type: "portbe", offset: 4 },
    { name: "proto", type: "u8", offset: 6 },
    { name: "state", type: "u8", offset: 7 },
    { name: "flags", type: "u8", offset: 8 },
    { name: "weight", type: "u16", offset: 10 },
    { name: "activeConns", type: "u32", offset: 12 },
  ]),
});

export const svcSlots = hashDecl({
  name: "svc_slots", id: 5, kind: MapKind.Hash, defaultMaxEntries: 262144,
  purpose: "(svcId, slot) → backendId, slots grouped ready-local, ready-remote, terminating-local, terminating-remote",
  key: struct(8, [
    { name: "svcId", type: "u32", offset: 0 },
    { name: "slot", type: "u32", offset: 4 },
  ]),
  value: struct(4, [{ name: "backendId", type: "u32", offset: 0 }]),
});

export const maglev = arrayDecl({
  name: "maglev", id: 6, kind: MapKind.Array, defaultMaxEntries: 1 << 20, key: null,
  purpose: "arena of Maglev lookup tables (backend ids); services point at their ranges",
  value: struct(4, [{ name: "backendId", type: "u32", offset: 0 }]),
});

export const revNat = arrayDecl({
  name: "rev_nat", id: 7, kind: MapKind.Array, defaultMaxEntries: 65536, key: null,
  purpose: "revNatId → frontend (VIP, port) named by conntrack entries",
  value: struct(8, [
    { name: "addrBe", type: "ipv4be", offset: 0 },
    { name: "portBe", type: "portbe", offset: 4 },
  ]),
});

export const conntrack = hashDecl({
  name: "conntrack", id: 8, kind: MapKind.LruHash, defaultMaxEntries: 262144,
  purpose: "one entry per direction of a translated flow, with its whole translation",
  key: struct(16, [
    { name: "saddrBe", type: "ipv4be", offset: 0 },
    { name: "daddrBe", type: "ipv4be", offset: 4 },
    { name: "sportBe", type: "portbe", offset: 8 },
    { name: "dportBe", type: "portbe", offset: 10 },
    { name: "proto", type: "u8", offset: 12 },
  ]),
  value: struct(32, [
    { name: "backendId", type: "u32", offset: 0 },
    { name: "revNatId", type: "u32", offset: 4 },
    { name: "svcId", type: "u32", offset: 8 },
    { name: "natAddrBe", type: "ipv4be", offset: 12 },
    { name: "natPortBe", type: "portbe", offset: 16 },
    { name: "state", type: "u8", offset: 18 },
    { name: "flags", type: "u8", offset: 19 },
    { name: "expiresSec", type: "u32", offset: 20 },
    { name: "peerAddrBe", type: "ipv4be", offset: 24 },
    { name: "peerPortBe", type: "portbe", offset: 28 },
  ]),
});

export const affinity = hashDecl({
  name: "affinity", id: 9, kind: MapKind.LruHash, defaultMaxEntries: 65536,
  purpose: "ClientIP session affinity: (client, svcId) → backend, last use",
  key: struct(8, [
    { name: "clientAddrBe", type: "ipv4be", offset: 0 },
    { name: "svcId", type: "u32", offset: 4 },
  ]),
  value: struct(8, [
    { name: "backendId", type: "u32", offset: 0 },
    { name: "lastUsedSec", type: "u32", offset: 4 },
  ]),
});

export const snat = hashDecl({
  name: "snat", id: 10, kind: MapKind.LruHash, defaultMaxEntries: 65536,
  purpose: "masquerade source ports in use toward each backend, and whose they are",
  key: struct(16, [
    { name: "addrBe", type: "ipv4be", offset: 0 },
    { name: "remoteAddrBe", type: "ipv4be", offset: 4 },
    { name: "portBe", type: "portbe", offset: 8 },
    { name: "remotePortBe", type: "portbe", offset: 10 },
    { name: "proto", type: "u8", offset: 12 },
  ]),
  value: struct(12, [
    { name: "clientAddrBe", type: "ipv4be", offset: 0 },
    { name: "clientPortBe", type: "portbe", offset: 4 },
    { name: "createdSec", type: "u32", offset: 8 },
  ]),
});

export const lpmV4 = hashDecl({
  name: "lpm_v4", id: 11, kind: MapKind.Lpm, defaultMaxEntries: 65536,
  purpose: "source CIDR sets: table 0 = this node's sources, table svcId = loadBalancerSourceRanges",
  key: struct(12, [
    { name: "tableId", type: "u32", offset: 0 },
    { name: "prefixLen", type: "u32", offset: 4 },
    { name: "addrBe", type: "ipv4be", offset: 8 },
  ]),
  value: struct(4, [{ name: "value", type: "u32", offset: 0 }]),
});

export const lpmMasks = arrayDecl({
  name: "lpm_masks", id: 12, kind: MapKind.Array, defaultMaxEntries: 65536, key: null,
  purpose: "per LPM table, the prefix lengths present (bit n = a /n prefix exists)",
  value: struct(8, [{ name: "lengths", type: "u64", offset: 0 }]),
});

export const statsReason = arrayDecl({
  name: "stats_reason", id: 13, kind: MapKind.Array, defaultMaxEntries: 64, key: null,
  purpose: "packets and bytes per verdict reason",
  value: struct(16, [
    { name: "packets", type: "u64", offset: 0 },
    { name: "bytes", type: "u64", offset: 8 },
  ]),
});

const trafficStats = [
  { name: "packets", type: "u64", offset: 0 },
  { name: "bytes", type: "u64", offset: 8 },
  { name: "flows", type: "u64", offset: 16 },
] as const;

export const statsService = arrayDecl({
  name: "stats_service", id: 14, kind: MapKind.Array, defaultMaxEntries: 65536, key: null,
  purpose: "packets, bytes and new flows per service port",
  value: struct(24, trafficStats),
});

export const statsBackend = arrayDecl({
  name: "stats_backend", id: 15, kind: MapKind.Array, defaultMaxEntries: 65536, key: null,
  purpose: "packets, bytes and new flows per backend",
  value: struct(24, trafficStats),
});

export const MAPS: readonly AnyMapDecl[] = [
  config, frontends, addrs, services, backends, svcSlots, maglev, revNat, conntrack, affinity,
  snat, lpmV4, lpmMasks, statsReason, statsService, statsBackend,
];

export type MapName =
  | "config" | "frontends" | "addrs" | "services" | "backends" | "svc_slots" | "maglev" | "rev_nat"
  | "conntrack" | "affinity" | "snat" | "lpm_v4" | "lpm_masks" | "stats_reason" | "stats_service" | "stats_backend";

// Value shapes, for callers.
export type ConfigValue = StructOf<typeof config.value.fields>;
export type FrontendKey = StructOf<typeof frontends.key.fields>;
export type FrontendValue = StructOf<typeof frontends.value.fields>;
export type ServiceValue = StructOf<typeof services.value.fields>;
export type BackendValue = StructOf<typeof backends.value.fields>;
export type CtKey = StructOf<typeof conntrack.key.fields>;
export type CtValue = StructOf<typeof conntrack.value.fields>;

// Constants mirrored from decl.ts (checked by the layout test).
export const FE = { ClusterIP: 1, NodePort: 2, ExternalIP: 3, LoadBalancer: 4 } as const;
export const ADDR = { NodePort: 1, Vip: 2 } as const;
export const SVC = { Affinity: 1, ExtLocal: 2, IntLocal: 4, SourceRanges: 8 } as const;
export const BE_STATE = { None: 0, Active: 1, Terminating: 2 } as const;
export const BE_FLAG = { Local: 1 } as const;
export const CT_STATE = { None: 0, SynSent: 1, Established: 2, Closing: 3, Reset: 4 } as const;
export const CT_FLAG = { Reply: 1, Snat: 2, SeenReply: 4, Counted: 8 } as const;
export const CFG = { SwapMacs: 1, MasqOffNode: 2 } as const;
export const ALGORITHMS = {
  default: 0, random: 1, maglev: 2, rr: 3, lc: 4, dh: 5, sh: 6, sed: 7, nq: 8,
} as const;
export type Algorithm = Exclude<keyof typeof ALGORITHMS, "default">;
