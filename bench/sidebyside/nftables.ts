// kube-proxy's nftables mode, as `nft -f` input, for the side-by-side benchmark. Written from
// the mode's documented structure (no code taken from Kubernetes), in table `ip kube-proxy`:
//
//   nat-prerouting / nat-output (nat hooks, priority dstnat) ─→ services:
//     ip daddr . meta l4proto . th dport vmap @service-ips      (one map lookup, any N)
//   ─→ service-<hash>-<ns>/<name>/<proto>/<port>: masquerade-mark for sources outside the
//      cluster CIDR; with ClientIP affinity `ip saddr @affinity-<endpoint> goto endpoint-…` per
//      endpoint; then `numgen random mod n vmap { 0 : goto endpoint-…, … }`
//   ─→ endpoint-<hash>-<ns>/<name>/<proto>/<port>__<ip>/<port>: hairpin masquerade-mark,
//      (affinity: `update @affinity-… { ip saddr }`), `dnat to ip:port`.
//   nat-postrouting → masquerading; filter-forward / filter-output run the
//   service-endpoints-check (vmap @no-endpoint-services, empty here) and cluster-ips-check
//   (reject other ports of a ClusterIP: set @cluster-ips; drop unallocated service addresses).
//
// fullRestore() creates everything (chains first, then rules, then map elements);
// changeRestore() is one transaction for one endpoint change: new endpoint chain, the service
// chain flushed and rewritten, the departed endpoint's chain (and affinity set) removed.

import { hash32, portName } from "./iptables.js";
import { CLUSTER_CIDR, SERVICE_CIDR, AFFINITY_TIMEOUT, type PortModel, type ServiceModel } from "./model.js";

export const TABLE = "ip kube-proxy";

const proto = (p: PortModel) => p.protocol.toLowerCase();
const base = (s: ServiceModel, p: PortModel) => `${s.namespace}/${s.name}/${proto(p)}/${p.name}`;

export function serviceChain(s: ServiceModel, p: PortModel): string {
  return `service-${hash32(portName(s, p) + proto(p), 8)}-${base(s, p)}`;
}

export function endpointChain(s: ServiceModel, p: PortModel, ep: string): string {
  return `endpoint-${hash32(`${portName(s, p)}${proto(p)}${ep}:${p.targetPort}`, 8)}-${base(s, p)}__${ep}/${p.targetPort}`;
}

export function affinitySet(s: ServiceModel, p: PortModel, ep: string): string {
  return `affinity-${hash32(`${portName(s, p)}${proto(p)}${ep}:${p.targetPort}`, 8)}-${base(s, p)}__${ep}/${p.targetPort}`;
}

export interface NftOptions {
  clusterCIDR?: string;
  serviceCIDR?: string;
}

const BASE_CHAINS = [
  `add chain ${TABLE} filter-forward { type filter hook forward priority -110 ; }`,
  `add chain ${TABLE} filter-output { type filter hook output priority -110 ; }`,
  `add chain ${TABLE} filter-output-post-dnat { type filter hook output priority -90 ; }`,
  `add chain ${TABLE} nat-prerouting { type nat hook prerouting priority -100 ; }`,
  `add chain ${TABLE} nat-output { type nat hook output priority -100 ; }`,
  `add chain ${TABLE} nat-postrouting { type nat hook postrouting priority 100 ; }`,
];
const REGULAR_CHAINS = ["mark-for-masquerade", "masquerading", "services", "service-endpoints-check", "cluster-ips-check"];

function baseRules(o: NftOptions): string[] {
  const r = (chain: string, rule: string) => `add rule ${TABLE} ${chain} ${rule}`;
  return [
    r("mark-for-masquerade", "mark set mark or 0x4000"),
    r("masquerading", "mark and 0x4000 == 0 return"),
    r("masquerading", "mark set mark xor 0x4000"),
    r("masquerading", "masquerade fully-random"),
    r("filter-forward", "ct state new jump service-endpoints-check"),
    r("filter-forward", "ct state new jump cluster-ips-check"),
    r("filter-output", "ct state new jump service-endpoints-check"),
    r("filter-output-post-dnat", "ct state new jump cluster-ips-check"),
    r("nat-prerouting", "jump services"),
    r("nat-output", "jump services"),
    r("nat-postrouting", "jump masquerading"),
    r("services", "ip daddr . meta l4proto . th dport vmap @service-ips"),
    r("service-endpoints-check", "ip daddr . meta l4proto . th dport vmap @no-endpoint-services"),
    r("cluster-ips-check", `ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"`),
    r("cluster-ips-check", `ip daddr ${o.serviceCIDR ?? SERVICE_CIDR} drop comment "Drop traffic to unallocated ClusterIPs"`),
  ];
}

interface PortObjects {
  chains: string[];
  sets: string[];
  rules: string[];
}

function portObjects(s: ServiceModel, p: PortModel, cidr: string): PortObjects {
  const svc = serviceChain(s, p);
  const chains = [svc];
  const sets: string[] = [];
  const rules = [`add rule ${TABLE} ${svc} ip daddr ${s.clusterIP} ${proto(p)} dport ${p.port} ip saddr != ${cidr} jump mark-for-masquerade`];
  if (s.affinity) {
    for (const ep of p.endpoints) rules.push(`add rule ${TABLE} ${svc} ip saddr @${affinitySet(s, p, ep)} goto ${endpointChain(s, p, ep)}`);
  }
  const arms = p.endpoints.map((ep, i) => `${i} : goto ${endpointChain(s, p, ep)}`).join(" , ");
  rules.push(`add rule ${TABLE} ${svc} numgen random mod ${p.endpoints.length} vmap { ${arms} }`);
  for (const ep of p.endpoints) {
    const c = endpointChain(s, p, ep);
    chains.push(c);
    rules.push(`add rule ${TABLE} ${c} ip saddr ${ep} jump mark-for-masquerade`);
    if (s.affinity) {
      const set = affinitySet(s, p, ep);
      sets.push(`add set ${TABLE} ${set} { type ipv4_addr ; flags dynamic,timeout ; timeout ${AFFINITY_TIMEOUT}s ; }`);
      rules.push(`add rule ${TABLE} ${c} update @${set} { ip saddr }`);
    }
    rules.push(`add rule ${TABLE} ${c} meta l4proto ${proto(p)} dnat to ${ep}:${p.targetPort}`);
  }
  return { chains, sets, rules };
}

const element = (s: ServiceModel, p: PortModel) => `${s.clusterIP} . ${proto(p)} . ${p.port} : goto ${serviceChain(s, p)}`;

/** Every object for `model`, for `nft -f` into a namespace without the table. */
export function fullRestore(model: ServiceModel[], o: NftOptions = {}): string {
  const cidr = o.clusterCIDR ?? CLUSTER_CIDR;
  const chains: string[] = [];
  const sets: string[] = [];
  const rules: string[] = [];
  const elements: string[] = [];
  for (const s of model) {
    for (const p of s.ports) {
      const x = portObjects(s, p, cidr);
      chains.push(...x.chains);
      sets.push(...x.sets);
      rules.push(...x.rules);
      elements.push(element(s, p));
    }
  }
  const out = [
    `add table ${TABLE} { comment "rules for kube-proxy" ; }`,
    ...BASE_CHAINS,
    ...REGULAR_CHAINS.map((c) => `add chain ${TABLE} ${c}`),
    `add set ${TABLE} cluster-ips { type ipv4_addr ; comment "Active ClusterIPs" ; }`,
    `add map ${TABLE} service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }`,
    `add map ${TABLE} no-endpoint-services { type ipv4_addr . inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to services with no endpoints" ; }`,
    ...chains.map((c) => `add chain ${TABLE} ${c}`),
    ...sets,
    ...baseRules(o),
    ...rules,
  ];
  // Elements in chunks: one command per 1000 keeps every line short.
  const ips = [...new Set(model.map((s) => s.clusterIP))];
  for (let i = 0; i < ips.length; i += 1000) out.push(`add element ${TABLE} cluster-ips { ${ips.slice(i, i + 1000).join(" , ")} }`);
  for (let i = 0; i < elements.length; i += 1000) out.push(`add element ${TABLE} service-ips { ${elements.slice(i, i + 1000).join(" , ")} }`);
  return out.join("\n") + "\n";
}

/** One transaction for the Service at `index` of `model` changing from `before` to model[index]. */
export function changeRestore(model: ServiceModel[], index: number, before: ServiceModel, o: NftOptions = {}): string {
  const cidr = o.clusterCIDR ?? CLUSTER_CIDR;
  const after = model[index]!;
  const out: string[] = [];
  for (const p of after.ports) {
    const old = before.ports.find((q) => q.name === p.name && q.protocol === p.protocol);
    const oldEps = new Set(old?.endpoints ?? []);
    const x = portObjects(after, p, cidr);
    const svc = serviceChain(after, p);
    // New endpoint chains (and affinity sets) first, so the rewritten service chain can refer to them.
    const fresh = p.endpoints.filter((ep) => !oldEps.has(ep));
    for (const ep of fresh) {
      out.push(`add chain ${TABLE} ${endpointChain(after, p, ep)}`);
      if (after.affinity) out.push(`add set ${TABLE} ${affinitySet(after, p, ep)} { type ipv4_addr ; flags dynamic,timeout ; timeout ${AFFINITY_TIMEOUT}s ; }`);
    }
    const freshChains = new Set(fresh.map((ep) => endpointChain(after, p, ep)));
    out.push(`add chain ${TABLE} ${svc}`, `flush chain ${TABLE} ${svc}`);
    for (const r of x.rules) {
      const chain = r.slice(`add rule ${TABLE} `.length).split(" ")[0]!;
      if (chain === svc || freshChains.has(chain)) out.push(r);
    }
    for (const ep of oldEps) {
      if (p.endpoints.includes(ep)) continue;
      const c = endpointChain(before, p, ep);
      out.push(`flush chain ${TABLE} ${c}`, `delete chain ${TABLE} ${c}`);
      if (before.affinity) out.push(`delete set ${TABLE} ${affinitySet(before, p, ep)}`);
    }
  }
  return out.join("\n") + "\n";
}

/** Rules in an nft -f text. */
export function ruleCount(text: string): number {
  let n = 0;
  for (const l of text.split("\n")) if (l.startsWith("add rule ")) n++;
  return n;
}
