// Node networking (src/agent/netconfig.ts, built in dist/) run inside a namespace of its own on a
// persistent TAP (no reader) standing in for the agent's: the reply rules for the pod CIDR and for the extra reply
// source CIDRs (other nodes' pods), the table they use, and that teardown removes them all.

import { describe, it, expect, afterAll } from "vitest";
import { netnsUnavailable, createNetns, nsExec, nsIp, cleanupAll } from "../helpers/netns.js";

const skip = netnsUnavailable();
const NETCONFIG = new URL("../../dist/src/agent/netconfig.js", import.meta.url).href;

const SCRIPT = `
const { NodeNetwork } = await import(${JSON.stringify(NETCONFIG)});
const { execFileSync } = await import("node:child_process");
const ip = (...a) => execFileSync("ip", a).toString();
const net = new NodeNetwork({ tap: "tv9", serviceCIDR: "10.96.0.0/12", podCIDR: "10.244.0.0/24",
  replySourceCIDRs: ["10.244.0.0/16", "10.244.0.0/24"], nodePortAddrs: [], nodePortIfaces: [] });
net.setup();
const during = { rules: ip("rule", "show"), table: ip("route", "show", "table", "4242") };
const errors = net.teardown();
console.log(JSON.stringify({ during, after: { rules: ip("rule", "show") }, errors }));
`;

describe.skipIf(skip !== null)(`node networking in a namespace (${skip ?? "root"})`, () => {
  afterAll(() => cleanupAll());

  it("routes replies from the pod CIDR and every reply source CIDR into the TAP, and takes it all back", () => {
    const ns = createNetns();
    nsIp(ns, ["tuntap", "add", "dev", "tv9", "mode", "tap"]);
    const out = JSON.parse(nsExec(ns, ["node", "--input-type=module", "-e", SCRIPT]));
    expect(out.errors).toEqual([]);
    expect(out.during.rules).toMatch(/^4240:\s+from all iif tv9 lookup 4243/m);
    expect(out.during.rules).toMatch(/^4241:\s+from all iif tv9 lookup main/m);
    expect(out.during.rules).toMatch(/^4242:\s+from 10\.244\.0\.0\/24 lookup 4242/m);
    expect(out.during.rules).toMatch(/^4242:\s+from 10\.244\.0\.0\/16 lookup 4242/m);
    expect(out.during.rules.match(/^4242:/gm)).toHaveLength(2); // duplicates collapsed
    expect(out.during.table).toMatch(/^default via 169\.254\.42\.2 dev tv9/m);
    expect(out.after.rules).not.toMatch(/424[0-2]/);
  });
});
