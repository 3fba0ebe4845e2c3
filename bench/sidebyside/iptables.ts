// kube-proxy's iptables mode, as `iptables-restore` input, for the side-by-side benchmark.
// Written from the mode's documented structure (no code taken from Kubernetes):
//
//   nat PREROUTING, OUTPUT ─→ KUBE-SERVICES: one rule per service port (-d clusterIP -p proto
//   --dport port), walked linearly for every new connection, ending with the NodePort jump
//     ─→ KUBE-SVC-<hash>: masquerade-mark for sources outside the cluster CIDR; with ClientIP
//        affinity one `recent --rcheck` rule per endpoint; then one rule per endpoint, the i-th of
//        n with `statistic --mode random --probability 1/(n-i)` (the last without)
//       ─→ KUBE-SEP-<hash>: hairpin masquerade-mark, then DNAT to the endpoint (with affinity,
//          `recent --set` records the client first).
//   nat POSTROUTING → KUBE-POSTROUTING masquerades marked packets; filter FORWARD → KUBE-FORWARD
//   (drop INVALID, accept marked and established), KUBE-SERVICES / KUBE-EXTERNAL-SERVICES /
//   KUBE-PROXY-FIREWALL / KUBE-NODEPORTS (empty here: every Service has endpoints).
//
// Chain names: KUBE-SVC-/KUBE-SEP- + the first 16 characters of base32(sha256(name)).
// fullRestore() is the whole set; changeRestore() is the partial sync after one endpoint
// change: the top-level chains are rewritten in full (all N jump rules of KUBE-SERVICES) and
// only the changed Service's chains are rewritten, the departed endpoint's chain deleted.
// changeRestore() is for `iptables-restore --noflush` (declared chains are flushed, others
// kept); fullRestore() loads with or without --noflush (it carries the built-in chains' jumps).

import { createHash } from "node:crypto";
import { CLUSTER_CIDR, AFFINITY_TIMEOUT, type PortModel, type ServiceModel } from "./model.js";

const B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/** RFC 4648 base32 (no padding) of sha256(text), first `len` characters. */
export function hash32(text: string, len = 16): string {
  const h = createHash("sha256").update(text).digest();
  let out = "";
  let bits = 0;
  let acc = 0;
  for (const byte of h) {
    acc = (acc << 8) | byte;
    bits += 8;
    while (bits >= 5 && out.length < len) {
      out += B32[(acc >>> (bits - 5)) & 31];
      bits -= 5;
    }
    acc &= (1 << bits) - 1;
    if (out.length >= len) break;
  }
  return out;
}

/** "ns/name:port" — how kube-proxy names a service port in comments. */
export function portName(s: ServiceModel, p: PortModel): string {
  return `${s.namespace}/${s.name}:${p.name}`;
}

export function svcChain(s: ServiceModel, p: PortModel): string {
  return `KUBE-SVC-${hash32(portName(s, p) + p.protocol.toLowerCase())}`;
}

export function sepChain(s: ServiceModel, p: PortModel, ep: string): string {
  return `KUBE-SEP-${hash32(portName(s, p) + p.protocol.toLowerCase() + `${ep}:${p.targetPort}`)}`;
}

export interface IptablesOptions {
  clusterCIDR?: string;
}

const MARK = "0x4000/0x4000";
const proto = (p: PortModel) => p.protocol.toLowerCase();

/** KUBE-SERVICES' rule for one service port. */
function serviceJump(s: ServiceModel, p: PortModel): string {
  return `-A KUBE-SERVICES -d ${s.clusterIP}/32 -p ${proto(p)} -m comment --comment "${portName(s, p)} cluster IP" -m ${proto(p)} --dport ${p.port} -j ${svcChain(s, p)}`;
}

/** The chains of one service port and their rules. */
function serviceChains(s: ServiceModel, p: PortModel, cidr: string): { chains: string[]; rules: string[] } {
  const svc = svcChain(s, p);
  const pn = portName(s, p);
  const chains = [svc];
  const rules = [
    `-A ${svc} ! -s ${cidr} -d ${s.clusterIP}/32 -p ${proto(p)} -m comment --comment "${pn} cluster IP" -m ${proto(p)} --dport ${p.port} -j KUBE-MARK-MASQ`,
  ];
  const n = p.endpoints.length;
  if (s.affinity) {
    for (const ep of p.endpoints) {
      const sep = sepChain(s, p, ep);
      rules.push(`-A ${svc} -m comment --comment "${pn} -> ${ep}:${p.targetPort}" -m recent --name ${sep} --mask 255.255.255.255 --rsource --rcheck --seconds ${AFFINITY_TIMEOUT} --reap -j ${sep}`);
    }
  }
  p.endpoints.forEach((ep, i) => {
    const sep = sepChain(s, p, ep);
    const stat = i < n - 1 ? ` -m statistic --mode random --probability ${(1 / (n - i)).toFixed(10)}` : "";
    rules.push(`-A ${svc} -m comment --comment "${pn} -> ${ep}:${p.targetPort}"${stat} -j ${sep}`);
  });
  for (const ep of p.endpoints) {
    const sep = sepChain(s, p, ep);
    chains.push(sep);
    rules.push(`-A ${sep} -s ${ep}/32 -m comment --comment "${pn}" -j KUBE-MARK-MASQ`);
    const rec = s.affinity ? ` -m recent --set --name ${sep} --mask 255.255.255.255 --rsource` : "";
    rules.push(`-A ${sep} -p ${proto(p)} -m comment --comment "${pn}"${rec} -m ${proto(p)} -j DNAT --to-destination ${ep}:${p.targetPort}`);
  }
  return { chains, rules };
}

const FILTER_CHAINS = ["KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-FORWARD", "KUBE-PROXY-FIREWALL", "KUBE-NODEPORTS"];
const NAT_CHAINS = ["KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ"];

/** The jumps from the built-in chains (kube-proxy installs them once, with `iptables -I`). */
const FILTER_JUMPS = [
  `-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL`,
  `-A INPUT -m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS`,
  `-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES`,
  `-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL`,
  `-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD`,
  `-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES`,
  `-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES`,
  `-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL`,
  `-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES`,
];
const NAT_JUMPS = [
  `-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES`,
  `-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES`,
  `-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING`,
];

/** The top-level rules kube-proxy rewrites on every sync. */
function filterRules(): string[] {
  return [
    `-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP`,
    `-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark ${MARK} -j ACCEPT`,
    `-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
  ];
}

function natTopRules(model: ServiceModel[]): string[] {
  const out = [
    `-A KUBE-MARK-MASQ -j MARK --set-xmark ${MARK}`,
    `-A KUBE-POSTROUTING -m mark ! --mark ${MARK} -j RETURN`,
    `-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0`,
    `-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully`,
  ];
  for (const s of model) for (const p of s.ports) out.push(serviceJump(s, p));
  out.push(`-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS`);
  return out;
}

const decl = (c: string) => `:${c} - [0:0]`;

/** Every rule for `model`, for `iptables-restore [--noflush]` into a namespace without them. */
export function fullRestore(model: ServiceModel[], o: IptablesOptions = {}): string {
  const cidr = o.clusterCIDR ?? CLUSTER_CIDR;
  const chains: string[] = [];
  const rules: string[] = [];
  for (const s of model) {
    for (const p of s.ports) {
      const c = serviceChains(s, p, cidr);
      chains.push(...c.chains);
      rules.push(...c.rules);
    }
  }
  return [
    "*filter", ...FILTER_CHAINS.map(decl), ...FILTER_JUMPS, ...filterRules(), "COMMIT",
    "*nat", ...NAT_CHAINS.map(decl), ...chains.map(decl), ...NAT_JUMPS, ...natTopRules(model), ...rules, "COMMIT", "",
  ].join("\n");
}

/**
 * The partial sync after the Service at `index` of `model` changed from `before` to
 * model[index]: top-level chains in full, the changed Service's chains rewritten, chains of
 * endpoints that left deleted.
 */
export function changeRestore(model: ServiceModel[], index: number, before: ServiceModel, o: IptablesOptions = {}): string {
  const cidr = o.clusterCIDR ?? CLUSTER_CIDR;
  const after = model[index]!;
  const chains: string[] = [];
  const rules: string[] = [];
  for (const p of after.ports) {
    const c = serviceChains(after, p, cidr);
    chains.push(...c.chains);
    rules.push(...c.rules);
  }
  const keep = new Set(chains);
  const gone: string[] = [];
  for (const p of before.ports) {
    for (const ep of p.endpoints) {
      const c = sepChain(before, p, ep);
      if (!keep.has(c)) gone.push(c);
    }
  }
  return [
    "*filter", ...FILTER_CHAINS.map(decl), ...filterRules(), "COMMIT",
    "*nat", ...NAT_CHAINS.map(decl), ...chains.map(decl), ...gone.map(decl), ...natTopRules(model), ...rules,
    ...gone.map((c) => `-X ${c}`), "COMMIT", "",
  ].join("\n");
}

/** Rules (lines starting with -A) in a restore text. */
export function ruleCount(text: string): number {
  let n = 0;
  for (const l of text.split("\n")) if (l.startsWith("-A ")) n++;
  return n;
}
