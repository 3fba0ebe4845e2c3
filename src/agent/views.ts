// Read-only views of the dataplane's maps for people: conntrack flows like `conntrack -L` and
// services → frontends → backends as programmed (like `ipvsadm -Ln`), each as structured rows
// (JSON) and as text. Pure functions over a Dataplane; nothing here writes a map.

import type { Dataplane } from "../maps/dataplane.js";
import { ALGORITHMS, BE_FLAG, BE_STATE, CT_FLAG, CT_STATE, FE, SVC, type CtKey, type CtValue } from "../maps/layout.js";
import { ipSortKey } from "../proxy/endpoints.js";
import type { ServicePortModel } from "../proxy/programmer.js";

// ---------------------------------------------------------------------------------------
// Which service port a svcId is

/** One programmed service port as the views and metrics name it. */
export interface ServicePortView {
  svcId: number;
  namespace: string;
  name: string;
  /** The Service port number. */
  port: number;
  protocol: string;
  /** The port's name ("" when unnamed). */
  portName?: string;
  /** The programmer's key, e.g. "default/web:http/TCP". */
  key?: string;
}

/** What the programmer has programmed, read at call time. */
export type ProgrammerView = () => readonly ServicePortView[];

/** Splits a programmer key "ns/name:port/PROTO" (port = port name, or number when unnamed). */
export function parseServicePortKey(key: string): { namespace: string; name: string; portName: string; protocol: string } {
  const m = /^([^/]*)\/([^:]*):(.*)\/([A-Z]+)$/.exec(key);
  if (!m) return { namespace: "", name: key, portName: "", protocol: "" };
  return { namespace: m[1]!, name: m[2]!, portName: /^\d+$/.test(m[3]!) ? "" : m[3]!, protocol: m[4]! };
}

/** The view of one programmed model (svcId from Programmer.serviceId(model.key)). */
export function portView(model: ServicePortModel, svcId: number): ServicePortView {
  const k = parseServicePortKey(model.key);
  return { svcId, namespace: k.namespace, name: k.name, port: model.port, protocol: model.protocol, portName: k.portName, key: model.key };
}

function viewLabel(v: ServicePortView): string {
  return v.key ?? `${v.namespace}/${v.name}:${v.portName || v.port}/${v.protocol}`;
}

const PROTO_NAMES: Record<number, string> = { 1: "icmp", 6: "tcp", 17: "udp", 132: "sctp" };
function protoName(n: number): string {
  return PROTO_NAMES[n] ?? "unknown";
}

// ---------------------------------------------------------------------------------------
// conntrack

export interface CtTuple {
  src: string;
  dst: string;
  sport: number;
  dport: number;
}

/** One flow: the forward and reply entries of the conntrack map joined. */
export interface CtFlow {
  proto: string;
  protoNum: number;
  /** TCP state like conntrack's (SYN_SENT, SYN_RECV, ESTABLISHED, FIN_WAIT, CLOSE); null otherwise. */
  state: string | null;
  /** Seconds left before the flow expires (the later of its two entries). */
  timeout: number;
  /** As the client sent it (client → frontend). */
  original: CtTuple;
  /** As the backend answers (backend → client, or → the masquerade address). */
  reply: CtTuple;
  /** conntrack-like flags: UNREPLIED (no reply seen yet) or ASSURED. */
  flags: string[];
  /** The destination was translated (frontend → backend). */
  dnat: boolean;
  /** The source was masqueraded. */
  snat: boolean;
  svcId: number;
  /** The service port's key, when the programmer view knows the svcId. */
  service: string | null;
  backendId: number;
  /** Both directions have their entry (false: one expired or was evicted). */
  complete: boolean;
}

export interface ConntrackListOptions {
  /** The dataplane clock in seconds (TapDatapath.now()); entries expiring before it are hidden. */
  now: number;
  programmerView?: ProgrammerView;
  /** Also list expired flows not swept yet (timeout 0). */
  includeExpired?: boolean;
}

function tcpState(state: number, flags: number): string {
  switch (state) {
    case CT_STATE.SynSent: return flags & CT_FLAG.SeenReply ? "SYN_RECV" : "SYN_SENT";
    case CT_STATE.Established: return "ESTABLISHED";
    case CT_STATE.Closing: return "FIN_WAIT";
    case CT_STATE.Reset: return "CLOSE";
    default: return "NONE";
  }
}

const tupleKey = (t: { saddrBe: string; daddrBe: string; sportBe: number; dportBe: number; proto: number }) =>
  `${t.proto}|${t.saddrBe}:${t.sportBe}>${t.daddrBe}:${t.dportBe}`;

/** The flows in the conntrack map, sorted by protocol, then original source. */
export function conntrackList(dp: Dataplane, opts: ConntrackListOptions): CtFlow[] {
  const names = new Map<number, string>();
  for (const v of opts.programmerView?.() ?? []) names.set(v.svcId, viewLabel(v));
  const entries = dp.maps.conntrack.entries();
  const replies = new Map<string, [CtKey, CtValue]>();
  for (const e of entries) if (e[1].flags & CT_FLAG.Reply) replies.set(tupleKey(e[0]), e);
  const usedReplies = new Set<string>();
  const flows: CtFlow[] = [];

  const push = (fwd: [CtKey, CtValue] | null, rep: [CtKey, CtValue] | null, original: CtTuple, reply: CtTuple, v: CtValue, proto: number) => {
    const expires = Math.max(fwd ? fwd[1].expiresSec : 0, rep ? rep[1].expiresSec : 0);
    const left = expires - opts.now;
    if (left < 0 && !opts.includeExpired) return;
    const flags = (fwd?.[1].flags ?? 0) | (rep?.[1].flags ?? 0);
    const seen = (flags & CT_FLAG.SeenReply) !== 0;
    const state = v.state;
    const assured = seen && (proto !== 6 || state === CT_STATE.Established || state === CT_STATE.Closing);
    flows.push({
      proto: protoName(proto),
      protoNum: proto,
      state: proto === 6 ? tcpState(state, flags) : null,
      timeout: Math.max(0, left),
      original,
      reply,
      flags: seen ? (assured ? ["ASSURED"] : []) : ["UNREPLIED"],
      dnat: original.dst !== reply.src || original.dport !== reply.sport,
      snat: original.src !== reply.dst || original.sport !== reply.dport,
      svcId: v.svcId,
      service: names.get(v.svcId) ?? null,
      backendId: v.backendId,
      complete: fwd !== null && rep !== null,
    });
  };

  for (const e of entries) {
    const [k, v] = e;
    if (v.flags & CT_FLAG.Reply) continue;
    const snat = (v.flags & CT_FLAG.Snat) !== 0;
    const original = { src: k.saddrBe, dst: k.daddrBe, sport: k.sportBe, dport: k.dportBe };
    const reply = {
      src: v.peerAddrBe, sport: v.peerPortBe,
      dst: snat ? v.natAddrBe : k.saddrBe, dport: snat ? v.natPortBe : k.sportBe,
    };
    const rk = tupleKey({ saddrBe: reply.src, daddrBe: reply.dst, sportBe: reply.sport, dportBe: reply.dport, proto: k.proto });
    const rep = replies.get(rk) ?? null;
    if (rep) usedReplies.add(rk);
    push(e, rep, original, reply, v, k.proto);
  }
  // Reply entries whose forward entry is gone.
  for (const [rk, e] of replies) {
    if (usedReplies.has(rk)) continue;
    const [k, v] = e;
    const original = { src: v.natAddrBe, sport: v.natPortBe, dst: v.peerAddrBe, dport: v.peerPortBe };
    const reply = { src: k.saddrBe, dst: k.daddrBe, sport: k.sportBe, dport: k.dportBe };
    push(null, e, original, reply, v, k.proto);
  }
  flows.sort((a, b) =>
    a.protoNum - b.protoNum
    || cmpStr(ipSortKey(a.original.src), ipSortKey(b.original.src))
    || a.original.sport - b.original.sport
    || cmpStr(ipSortKey(a.original.dst), ipSortKey(b.original.dst))
    || a.original.dport - b.original.dport);
  return flows;
}

function cmpStr(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function tupleText(t: CtTuple): string {
  return `src=${t.src} dst=${t.dst} sport=${t.sport} dport=${t.dport}`;
}

/** One flow as `conntrack -L` prints it, plus tapvip's translation marks and service. */
export function conntrackLine(f: CtFlow): string {
  const parts = [`${f.proto.padEnd(8)} ${f.protoNum} ${f.timeout}`];
  if (f.state !== null) parts.push(f.state);
  parts.push(tupleText(f.original));
  if (f.flags.includes("UNREPLIED")) parts.push("[UNREPLIED]");
  parts.push(tupleText(f.reply));
  if (f.flags.includes("ASSURED")) parts.push("[ASSURED]");
  if (f.dnat) parts.push("[DNAT]");
  if (f.snat) parts.push("[SNAT]");
  parts.push(`svc=${f.service ?? `#${f.svcId}`}`);
  if (!f.complete) parts.push("[HALF]");
  return parts.join(" ");
}

/** The whole table as text: one line per flow and conntrack's closing count line. */
export function conntrackText(flows: readonly CtFlow[]): string {
  const lines = flows.map(conntrackLine);
  lines.push(`tapvip: ${flows.length} flow entries have been shown.`);
  return lines.join("\n") + "\n";
}

// ---------------------------------------------------------------------------------------
// Services → frontends → backends

export type SlotGroup = "ready-local" | "ready-remote" | "terminating-local" | "terminating-remote";

export interface LbFrontend {
  kind: string;
  addr: string;
  port: number;
  protocol: string;
  revNatId: number;
}

export interface LbBackend {
  slot: number;
  group: SlotGroup;
  backendId: number;
  addr: string;
  port: number;
  state: "active" | "terminating" | "none";
  local: boolean;
  weight: number;
  activeConns: number;
  packets: number;
  bytes: number;
  flows: number;
}

export interface LbService {
  svcId: number;
  /** The programmer's key, or "#<svcId>" when the view does not know it. */
  key: string;
  namespace: string;
  name: string;
  portName: string;
  port: number;
  protocol: string;
  algorithm: string;
  /** True when the service uses the node-wide default algorithm. */
  algorithmDefault: boolean;
  /** ClientIP affinity timeout in seconds, or null (sessionAffinity None). */
  affinityTimeoutSeconds: number | null;
  externalTrafficPolicy: "Local" | "Cluster";
  internalTrafficPolicy: "Local" | "Cluster";
  sourceRanges: string[];
  groups: { readyLocal: number; readyRemote: number; terminatingLocal: number; terminatingRemote: number };
  /** Maglev table sizes (0 = none). */
  maglev: { cluster: number; local: number };
  frontends: LbFrontend[];
  backends: LbBackend[];
  stats: { packets: number; bytes: number; flows: number };
}

const FE_KIND: Record<number, string> = Object.fromEntries(Object.entries(FE).map(([k, v]) => [v, k]));
const ALGO_NAME: Record<number, string> = Object.fromEntries(Object.entries(ALGORITHMS).map(([k, v]) => [v, k]));

/** The service ports in the maps as programmed, sorted by key. */
export function lbList(dp: Dataplane, programmerView?: ProgrammerView): LbService[] {
  const views = new Map<number, ServicePortView>();
  for (const v of programmerView?.() ?? []) views.set(v.svcId, v);
  const fes = new Map<number, LbFrontend[]>();
  for (const [k, v] of dp.maps.frontends.entries()) {
    const list = fes.get(v.svcId) ?? [];
    list.push({ kind: FE_KIND[v.kind] ?? `kind${v.kind}`, addr: k.addrBe, port: k.portBe, protocol: protoName(k.proto).toUpperCase(), revNatId: v.revNatId });
    fes.set(v.svcId, list);
  }
  const ranges = new Map<number, string[]>();
  for (const [k] of dp.maps.lpmV4.entries()) {
    if (k.tableId === 0) continue;
    ranges.set(k.tableId, [...(ranges.get(k.tableId) ?? []), `${k.addrBe}/${k.prefixLen}`]);
  }
  const ids = new Set<number>([...views.keys(), ...fes.keys()]);
  const out: LbService[] = [];
  for (const svcId of ids) {
    const s = dp.maps.services.get(svcId);
    const v = views.get(svcId);
    const groups = { readyLocal: s.readyLocal, readyRemote: s.readyRemote, terminatingLocal: s.terminatingLocal, terminatingRemote: s.terminatingRemote };
    const bounds: Array<[SlotGroup, number]> = [
      ["ready-local", s.readyLocal], ["ready-remote", s.readyRemote],
      ["terminating-local", s.terminatingLocal], ["terminating-remote", s.terminatingRemote],
    ];
    const backends: LbBackend[] = [];
    let slot = 0;
    for (const [group, n] of bounds) {
      for (let i = 0; i < n; i++, slot++) {
        const id = dp.maps.svcSlots.lookup({ svcId, slot })?.backendId ?? 0;
        const b = id ? dp.maps.backends.get(id) : null;
        const st = id ? dp.maps.statsBackend.get(id) : null;
        backends.push({
          slot, group, backendId: id,
          addr: b?.addrBe ?? "0.0.0.0", port: b?.portBe ?? 0,
          state: b?.state === BE_STATE.Active ? "active" : b?.state === BE_STATE.Terminating ? "terminating" : "none",
          local: ((b?.flags ?? 0) & BE_FLAG.Local) !== 0,
          weight: b?.weight ?? 0, activeConns: b?.activeConns ?? 0,
          packets: Number(st?.packets ?? 0n), bytes: Number(st?.bytes ?? 0n), flows: Number(st?.flows ?? 0n),
        });
      }
    }
    const stats = dp.maps.statsService.get(svcId);
    const frontends = (fes.get(svcId) ?? []).sort((a, b) =>
      cmpStr(a.kind, b.kind) || cmpStr(ipSortKey(a.addr), ipSortKey(b.addr)) || a.port - b.port);
    const parsed = v?.key ? parseServicePortKey(v.key) : null;
    out.push({
      svcId,
      key: v ? viewLabel(v) : `#${svcId}`,
      namespace: v?.namespace ?? "",
      name: v?.name ?? "",
      portName: v?.portName ?? parsed?.portName ?? "",
      port: v?.port ?? frontends.find((f) => f.kind !== "NodePort")?.port ?? 0,
      protocol: v?.protocol ?? frontends[0]?.protocol ?? "",
      algorithm: s.algo === ALGORITHMS.default ? dp.config.defaultAlgorithm : ALGO_NAME[s.algo] ?? `algo${s.algo}`,
      algorithmDefault: s.algo === ALGORITHMS.default,
      affinityTimeoutSeconds: s.flags & SVC.Affinity ? s.affinityTimeoutSec : null,
      externalTrafficPolicy: s.flags & SVC.ExtLocal ? "Local" : "Cluster",
      internalTrafficPolicy: s.flags & SVC.IntLocal ? "Local" : "Cluster",
      sourceRanges: s.flags & SVC.SourceRanges ? (ranges.get(svcId) ?? []).sort() : [],
      groups,
      maglev: { cluster: s.maglevClusterSize, local: s.maglevLocalSize },
      frontends,
      backends,
      stats: { packets: Number(stats.packets), bytes: Number(stats.bytes), flows: Number(stats.flows) },
    });
  }
  return out.sort((a, b) => cmpStr(a.key, b.key) || a.svcId - b.svcId);
}

/** Left-aligned columns separated by two spaces. */
export function table(rows: readonly (readonly string[])[], indent = ""): string[] {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => indent + r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd());
}

/** Services → frontends → backends as text, one block per service port. */
export function lbText(list: readonly LbService[]): string {
  const out: string[] = [];
  for (const s of list) {
    const head = [
      `${s.key}`, `svc=${s.svcId}`,
      `algorithm=${s.algorithm}${s.algorithmDefault ? " (node default)" : ""}`,
      `affinity=${s.affinityTimeoutSeconds === null ? "None" : `ClientIP/${s.affinityTimeoutSeconds}s`}`,
      `externalTrafficPolicy=${s.externalTrafficPolicy}`, `internalTrafficPolicy=${s.internalTrafficPolicy}`,
    ];
    if (s.sourceRanges.length) head.push(`sourceRanges=${s.sourceRanges.join(",")}`);
    if (s.maglev.cluster || s.maglev.local) head.push(`maglev=${s.maglev.cluster}/${s.maglev.local}`);
    out.push(head.join("  "));
    out.push(`  packets=${s.stats.packets} bytes=${s.stats.bytes} flows=${s.stats.flows}  groups: ready-local=${s.groups.readyLocal} ready-remote=${s.groups.readyRemote} terminating-local=${s.groups.terminatingLocal} terminating-remote=${s.groups.terminatingRemote}`);
    out.push(...table([
      ["FRONTEND", "KIND", "REVNAT"],
      ...s.frontends.map((f) => [`${f.addr}:${f.port}/${f.protocol}`, f.kind, String(f.revNatId)]),
    ], "  "));
    if (s.backends.length === 0) {
      out.push("  (no backends)");
    } else {
      out.push(...table([
        ["SLOT", "GROUP", "BACKEND", "ID", "STATE", "CONNS", "PACKETS", "BYTES", "FLOWS"],
        ...s.backends.map((b) => [String(b.slot), b.group, `${b.addr}:${b.port}`, String(b.backendId), b.state, String(b.activeConns), String(b.packets), String(b.bytes), String(b.flows)]),
      ], "  "));
    }
    out.push("");
  }
  out.push(`tapvip: ${list.length} service ports.`);
  return out.join("\n") + "\n";
}
