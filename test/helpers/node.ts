// Test helpers: a dataplane with a programmer, a service-port model builder with sane
// defaults, and addresses used across the scenario tests.

import { Dataplane, type DataplaneOptions } from "../../src/maps/dataplane.js";
import { Programmer, type ServicePortModel } from "../../src/proxy/programmer.js";

export const NODE = "node-a";
export const NODE_IP = "192.0.2.10";
export const POD_CIDR = "10.244.0.0/24";
export const CLIENT_POD = "10.244.0.5"; // a pod on this node
export const EXTERNAL = "203.0.113.7"; // an off-node client
export const VIP = "10.96.0.10";

export function svc(p: Partial<ServicePortModel> & { key?: string }): ServicePortModel {
  return {
    key: p.key ?? "default/web:http/TCP",
    protocol: "TCP",
    port: 80,
    clusterIPs: [VIP],
    externalIPs: [],
    loadBalancerIPs: [],
    affinityTimeoutSeconds: null,
    externalTrafficPolicyLocal: false,
    internalTrafficPolicyLocal: false,
    loadBalancerSourceRanges: [],
    endpoints: [],
    ...p,
  };
}

export function node(opts: DataplaneOptions = {}): { dp: Dataplane; prog: Programmer } {
  const dp = new Dataplane({ seed: 42, ...opts, config: { snatAddr: NODE_IP, ...opts.config } });
  const prog = new Programmer(dp, { nodeName: NODE });
  prog.setNodeAddresses([NODE_IP]);
  prog.setLocalSources([POD_CIDR, `${NODE_IP}/32`]);
  return { dp, prog };
}
