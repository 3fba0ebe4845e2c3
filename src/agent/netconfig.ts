// What the node agent asks of the kernel, and takes back at exit. Everything lives in the
// agent's own network namespace; every change is recorded and undone in reverse order.
//
//   TAP address 169.254.42.1/29, up; permanent neighbours 169.254.42.2 (the "next hop behind
//   the TAP") and 169.254.42.3 (the masquerade address) with NEXT_HOP_MAC
//                                                      → the TAP carries routed traffic, and
//                                                        replies to masqueraded flows come back
//   (A masquerade address the node owns would not work: replies to a local address are
//   delivered locally before policy routing can send them to the TAP.)
//   route <service CIDR> via 169.254.42.2 dev TAP      → ClusterIPs reach the dataplane
//   route <ip>/32 via 169.254.42.2 dev TAP per externalIP / LoadBalancer ingress IP
//   rule pref 4240 iif TAP lookup 4243; table 4243: unreachable <service CIDR>
//                                                      → a frame for a service address the
//                                                        dataplane passed back (an unallocated
//                                                        ClusterIP, a Service not proxied) is
//                                                        answered "unreachable" by the kernel
//                                                        instead of looping through the TAP
//   rule pref 4241 iif TAP lookup main                 → frames the dataplane gives back are
//                                                        routed normally (no loop)
//   rule pref 4242 from <pod CIDR> lookup 4242; table 4242: default via 169.254.42.2 dev TAP
//                                                      → backend replies come back through the
//                                                        TAP for reverse NAT
//   rule pref 4242 from <C> lookup 4242 for each reply source CIDR C (e.g. the cluster CIDR)
//                                                      → replies from endpoints on OTHER nodes
//                                                        (non-local endpoints, reached through
//                                                        the node's routes to their pod CIDRs)
//                                                        also come back through the TAP: they
//                                                        enter on the link to that node, not
//                                                        from this node's pod CIDR, and would
//                                                        otherwise be forwarded straight to the
//                                                        client un-NATed (source = the remote
//                                                        pod, not the VIP). Policy routing, not
//                                                        masquerading: the client address stays
//                                                        visible to the remote backend, as
//                                                        with kube-proxy for pod→ClusterIP.
//                                                        Pod-to-pod traffic without a service
//                                                        also crosses the dataplane (PASS).
//   tc ingress qdisc + one u32 filter per NodePort on each NodePort interface, matching
//   dst <node IP> and the port, action mirred redirect to the TAP
//                                                      → NodePort traffic reaches the dataplane
//   sysctl net.ipv4.ip_forward=1; on the TAP: accept_local=1 (masqueraded frames carry the
//   node's own address as source), rp_filter=0
// Loopback never serves NodePorts.

import { execFileSync } from "node:child_process";
import { NEXT_HOP_MAC } from "./datapath.js";

export interface NodeNetworkOptions {
  tap: string;
  serviceCIDR: string;
  podCIDR?: string;
  /**
   * More sources whose traffic is routed into the TAP (table 4242), besides podCIDR: the pod
   * CIDRs of other nodes (or the whole cluster CIDR), so replies from non-local endpoints get
   * their reverse NAT. Overlapping podCIDR is harmless.
   */
  replySourceCIDRs?: string[];
  /** Node addresses that serve NodePorts (after --nodeport-addresses). */
  nodePortAddrs: string[];
  /** Interfaces whose ingress is checked for NodePort traffic. */
  nodePortIfaces: string[];
  /** Masquerade source address (default MASQUERADE_IP). */
  masqueradeIP?: string;
  table?: number;
  log?: (l: string) => void;
}

const TAP_ADDR = "169.254.42.1/29";
export const NEXT_HOP = "169.254.42.2";
/** The default masquerade source: on-link behind the TAP, so replies to it come back to us. */
export const MASQUERADE_IP = "169.254.42.3";

function run(cmd: string, args: string[]): void {
  try {
    execFileSync(cmd, args, { stdio: ["ignore", "ignore", "pipe"] });
  } catch (e) {
    const err = e as { stderr?: Buffer };
    throw new Error(`${cmd} ${args.join(" ")}: ${err.stderr?.toString().trim() || (e as Error).message}`);
  }
}

function readSysctl(key: string): string {
  return execFileSync("sysctl", ["-n", key]).toString().trim();
}

/** Frames the kernel may queue on the TAP for the agent. */
export const TAP_TX_QUEUE_LEN = 4096;

export class NodeNetwork {
  private readonly undo: Array<() => void> = [];
  private readonly routes = new Set<string>();
  private readonly portFilters = new Map<string, number>(); // "TCP:30007" → tc pref
  private nextPref = 100;
  private readonly table: number;
  private readonly log: (l: string) => void;

  constructor(private readonly o: NodeNetworkOptions) {
    this.table = o.table ?? 4242;
    this.log = o.log ?? (() => {});
  }

  private doo(cmd: string, args: string[], undoArgs: [string, string[]] | null): void {
    run(cmd, args);
    this.log(`net: ${cmd} ${args.join(" ")}`);
    if (undoArgs) this.undo.push(() => run(undoArgs[0], undoArgs[1]));
  }

  private sysctl(key: string, value: string): void {
    const old = readSysctl(key);
    if (old === value) return;
    this.doo("sysctl", ["-qw", `${key}=${value}`], ["sysctl", ["-qw", `${key}=${old}`]]);
  }

  setup(): void {
    const { tap } = this.o;
    this.doo("ip", ["addr", "add", TAP_ADDR, "dev", tap], ["ip", ["addr", "del", TAP_ADDR, "dev", tap]]);
    this.doo("ip", ["link", "set", tap, "up"], null);
    // Frames wait in the TAP's queue while the agent is not on a CPU; the default (1000) overflows
    // on bursts (a sendmmsg sender) even when the agent is far from busy.
    this.doo("ip", ["link", "set", tap, "txqueuelen", String(TAP_TX_QUEUE_LEN)], null);
    this.doo("ip", ["neigh", "replace", NEXT_HOP, "lladdr", NEXT_HOP_MAC, "dev", tap, "nud", "permanent"], null);
    const masq = this.o.masqueradeIP ?? MASQUERADE_IP;
    this.doo("ip", ["neigh", "replace", masq, "lladdr", NEXT_HOP_MAC, "dev", tap, "nud", "permanent"], null);
    if (masq !== MASQUERADE_IP) {
      this.doo("ip", ["route", "replace", `${masq}/32`, "via", NEXT_HOP, "dev", tap], ["ip", ["route", "del", `${masq}/32`, "via", NEXT_HOP, "dev", tap]]);
    }
    this.sysctl("net.ipv4.ip_forward", "1");
    this.sysctl(`net.ipv4.conf.${tap}.accept_local`, "1");
    this.sysctl(`net.ipv4.conf.${tap}.rp_filter`, "0");
    this.sysctl("net.ipv4.conf.all.rp_filter", "0");
    this.doo("ip", ["route", "replace", this.o.serviceCIDR, "via", NEXT_HOP, "dev", tap], ["ip", ["route", "del", this.o.serviceCIDR, "via", NEXT_HOP, "dev", tap]]);
    const stopTable = String(this.table + 1);
    this.doo("ip", ["route", "replace", "unreachable", this.o.serviceCIDR, "table", stopTable], ["ip", ["route", "flush", "table", stopTable]]);
    this.doo("ip", ["rule", "add", "pref", String(this.table - 2), "iif", tap, "lookup", stopTable], ["ip", ["rule", "del", "pref", String(this.table - 2)]]);
    this.doo("ip", ["rule", "add", "pref", String(this.table - 1), "iif", tap, "lookup", "main"], ["ip", ["rule", "del", "pref", String(this.table - 1)]]);
    const replySources = [...new Set([...(this.o.podCIDR ? [this.o.podCIDR] : []), ...(this.o.replySourceCIDRs ?? [])])];
    if (replySources.length > 0) {
      this.doo("ip", ["route", "replace", "default", "via", NEXT_HOP, "dev", tap, "table", String(this.table)], ["ip", ["route", "flush", "table", String(this.table)]]);
      for (const src of replySources) {
        const rule = ["pref", String(this.table), "from", src, "lookup", String(this.table)];
        this.doo("ip", ["rule", "add", ...rule], ["ip", ["rule", "del", ...rule]]);
      }
    }
    for (const dev of this.o.nodePortIfaces) {
      this.doo("tc", ["qdisc", "replace", "dev", dev, "ingress"], ["tc", ["qdisc", "del", "dev", dev, "ingress"]]);
    }
  }

  /** Routes exactly `ips` (/32 each) into the TAP. */
  setRoutedIPs(ips: Set<string>): void {
    for (const ip of [...this.routes]) {
      if (ips.has(ip)) continue;
      run("ip", ["route", "del", `${ip}/32`, "via", NEXT_HOP, "dev", this.o.tap]);
      this.routes.delete(ip);
    }
    for (const ip of ips) {
      if (this.routes.has(ip)) continue;
      run("ip", ["route", "replace", `${ip}/32`, "via", NEXT_HOP, "dev", this.o.tap]);
      this.routes.add(ip);
    }
  }

  /** Redirects exactly these NodePorts ("TCP:30007") on the NodePort interfaces into the TAP. */
  setNodePorts(ports: Set<string>): void {
    for (const [k, pref] of [...this.portFilters]) {
      if (ports.has(k)) continue;
      for (const dev of this.o.nodePortIfaces) run("tc", ["filter", "del", "dev", dev, "ingress", "pref", String(pref)]);
      this.portFilters.delete(k);
    }
    for (const k of ports) {
      if (this.portFilters.has(k)) continue;
      const [proto, port] = k.split(":");
      const pnum = proto === "TCP" ? "6" : proto === "UDP" ? "17" : "132";
      const pref = this.nextPref++;
      for (const dev of this.o.nodePortIfaces) {
        for (const addr of this.o.nodePortAddrs) {
          run("tc", ["filter", "add", "dev", dev, "ingress", "pref", String(pref), "protocol", "ip", "u32",
            "match", "ip", "dst", `${addr}/32`, "match", "ip", "protocol", pnum, "0xff", "match", "ip", "dport", port!, "0xffff",
            "action", "mirred", "egress", "redirect", "dev", this.o.tap]);
        }
      }
      this.portFilters.set(k, pref);
    }
  }

  /** Removes everything setup() and the setters added. Never throws; returns failures. */
  teardown(): string[] {
    const errs: string[] = [];
    try { this.setNodePorts(new Set()); } catch (e) { errs.push((e as Error).message); }
    try { this.setRoutedIPs(new Set()); } catch (e) { errs.push((e as Error).message); }
    while (this.undo.length) {
      try { this.undo.pop()!(); } catch (e) { errs.push((e as Error).message); }
    }
    return errs;
  }
}
