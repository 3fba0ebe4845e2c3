// Views of the maps for people: conntrack flows made by real frames through the pipeline,
// printed like `conntrack -L`, and services → frontends → backends as programmed.

import { describe, it, expect } from "vitest";
import { node, svc, NODE_IP, CLIENT_POD, EXTERNAL, VIP } from "../helpers/node.js";
import { buildFrame, decodeFrame, type FrameSpec } from "../../src/host/frames.js";
import type { ServicePortModel } from "../../src/proxy/programmer.js";
import {
  conntrackList, conntrackText, conntrackLine, lbList, lbText, portView, parseServicePortKey, type ProgrammerView,
} from "../../src/agent/views.js";

const BE1 = "10.244.1.10";
const LOCAL_BE = "10.244.0.20";
const TERM = "10.244.1.11";
const ep = (ip: string, port = 8080, extra: object = {}) => ({ ip, port, nodeName: "node-b", ...extra });

function setup(models: ServicePortModel[]) {
  const n = node();
  n.prog.sync(models);
  const view: ProgrammerView = () => models.map((m) => portView(m, n.prog.serviceId(m.key)!));
  const send = (spec: FrameSpec, t = 1000) => n.dp.process([{ data: buildFrame(spec) }], t)[0]!;
  return { ...n, view, send };
}

describe("conntrackList / conntrackText", () => {
  it("a TCP flow from SYN to ESTABLISHED, like conntrack -L", () => {
    const { dp, view, send } = setup([svc({ endpoints: [ep(BE1)] })]);
    expect(send({ src: CLIENT_POD, dst: VIP, proto: "TCP", sport: 40000, dport: 80, flags: "S" }).reasonName).toBe("new_flow");

    let flows = conntrackList(dp, { now: 1000, programmerView: view });
    expect(flows).toHaveLength(1);
    expect(conntrackLine(flows[0]!)).toBe(
      "tcp      6 120 SYN_SENT src=10.244.0.5 dst=10.96.0.10 sport=40000 dport=80 [UNREPLIED] " +
      "src=10.244.1.10 dst=10.244.0.5 sport=8080 dport=40000 [DNAT] svc=default/web:http/TCP");

    send({ src: BE1, dst: CLIENT_POD, proto: "TCP", sport: 8080, dport: 40000, flags: "SA" }, 1001);
    flows = conntrackList(dp, { now: 1001, programmerView: view });
    expect(flows[0]!.state).toBe("SYN_RECV");
    send({ src: CLIENT_POD, dst: VIP, proto: "TCP", sport: 40000, dport: 80, flags: "A" }, 1002);
    flows = conntrackList(dp, { now: 1010, programmerView: view });
    expect(conntrackText(flows)).toBe(
      "tcp      6 86392 ESTABLISHED src=10.244.0.5 dst=10.96.0.10 sport=40000 dport=80 " +
      "src=10.244.1.10 dst=10.244.0.5 sport=8080 dport=40000 [ASSURED] [DNAT] svc=default/web:http/TCP\n" +
      "tapvip: 1 flow entries have been shown.\n");
    expect(flows[0]).toMatchObject({
      proto: "tcp", protoNum: 6, state: "ESTABLISHED", timeout: 86392, flags: ["ASSURED"],
      dnat: true, snat: false, complete: true, service: "default/web:http/TCP",
      svcId: view()[0]!.svcId,
    });
  });

  it("a masqueraded NodePort flow shows the SNAT address and port in the reply tuple", () => {
    const { dp, view, send } = setup([svc({ nodePort: 30007, endpoints: [ep(BE1)] })]);
    const out = send({ src: EXTERNAL, dst: NODE_IP, proto: "TCP", sport: 50000, dport: 30007, flags: "S" });
    expect(out.verdict).toBe("TX");
    const f = decodeFrame(out.data);
    expect(f.src).toBe(NODE_IP);
    const [flow] = conntrackList(dp, { now: 1000, programmerView: view });
    expect(flow!.original).toEqual({ src: EXTERNAL, dst: NODE_IP, sport: 50000, dport: 30007 });
    expect(flow!.reply).toEqual({ src: BE1, dst: NODE_IP, sport: 8080, dport: f.sport });
    expect(flow).toMatchObject({ dnat: true, snat: true });
    expect(conntrackLine(flow!)).toContain(`src=${BE1} dst=${NODE_IP} sport=8080 dport=${f.sport} [DNAT] [SNAT] svc=default/web:http/TCP`);
  });

  it("UDP: no state, UNREPLIED until a reply, then ASSURED with the stream timeout; expired flows are hidden", () => {
    const { dp, view, send } = setup([
      svc({ endpoints: [ep(BE1)] }),
      svc({ key: "default/dns:dns/UDP", protocol: "UDP", port: 53, clusterIPs: ["10.96.0.11"], endpoints: [ep(BE1, 5353)] }),
    ]);
    send({ src: CLIENT_POD, dst: "10.96.0.11", proto: "UDP", sport: 41000, dport: 53, payload: "q" });
    send({ src: CLIENT_POD, dst: VIP, proto: "TCP", sport: 40000, dport: 80, flags: "S" });
    let flows = conntrackList(dp, { now: 1000, programmerView: view });
    expect(flows.map((f) => f.proto)).toEqual(["tcp", "udp"]); // sorted by protocol number
    expect(conntrackLine(flows[1]!)).toBe(
      "udp      17 30 src=10.244.0.5 dst=10.96.0.11 sport=41000 dport=53 [UNREPLIED] " +
      "src=10.244.1.10 dst=10.244.0.5 sport=5353 dport=41000 [DNAT] svc=default/dns:dns/UDP");
    send({ src: BE1, dst: CLIENT_POD, proto: "UDP", sport: 5353, dport: 41000, payload: "a" }, 1005);
    flows = conntrackList(dp, { now: 1005, programmerView: view });
    expect(flows[1]).toMatchObject({ state: null, flags: ["ASSURED"], timeout: 120 });

    // 121 s after its SYN the TCP flow has expired (not swept yet): hidden unless asked for.
    flows = conntrackList(dp, { now: 1121, programmerView: view });
    expect(flows.map((f) => f.proto)).toEqual(["udp"]);
    const all = conntrackList(dp, { now: 1121, programmerView: view, includeExpired: true });
    expect(all.map((f) => [f.proto, f.timeout])).toEqual([["tcp", 0], ["udp", 4]]);
    expect(conntrackText([])).toBe("tapvip: 0 flow entries have been shown.\n");
  });

  it("without a programmer view the service is named by its id; JSON round-trips", () => {
    const { dp, prog, send } = setup([svc({ endpoints: [ep(BE1)] })]);
    send({ src: CLIENT_POD, dst: VIP, proto: "TCP", sport: 40000, dport: 80, flags: "S" });
    const flows = conntrackList(dp, { now: 1000 });
    const id = prog.serviceId("default/web:http/TCP")!;
    expect(conntrackLine(flows[0]!)).toMatch(new RegExp(` svc=#${id}$`));
    expect(JSON.parse(JSON.stringify(flows))).toEqual(flows);
    expect(flows[0]!.backendId).toBe(prog.backendId(BE1, 8080, "TCP"));
  });
});

describe("lbList / lbText", () => {
  const models = [
    svc({
      nodePort: 30007, externalIPs: ["198.51.100.20"], loadBalancerIPs: ["203.0.113.50"],
      loadBalancerSourceRanges: ["203.0.113.0/24"], externalTrafficPolicyLocal: true,
      endpoints: [ep(BE1), ep(LOCAL_BE, 8080, { nodeName: "node-a" }), ep(TERM, 8080, { ready: false, serving: true, terminating: true })],
    }),
    svc({ key: "default/dns:dns/UDP", protocol: "UDP", port: 53, clusterIPs: ["10.96.0.11"], affinityTimeoutSeconds: 60, algorithm: "maglev", endpoints: [ep(BE1, 5353)] }),
  ];

  it("services → frontends → slot groups → backends, with counters", () => {
    const { dp, prog, view, send } = setup(models);
    send({ src: CLIENT_POD, dst: "10.96.0.11", proto: "UDP", sport: 41000, dport: 53, payload: "q" });
    const list = lbList(dp, view);
    expect(list.map((s) => s.key)).toEqual(["default/dns:dns/UDP", "default/web:http/TCP"]);
    const [dns, web] = list;
    expect(dns).toMatchObject({
      svcId: prog.serviceId("default/dns:dns/UDP"), namespace: "default", name: "dns", portName: "dns", port: 53, protocol: "UDP",
      algorithm: "maglev", algorithmDefault: false, affinityTimeoutSeconds: 60,
      externalTrafficPolicy: "Cluster", internalTrafficPolicy: "Cluster", sourceRanges: [],
      groups: { readyLocal: 0, readyRemote: 1, terminatingLocal: 0, terminatingRemote: 0 },
      maglev: { cluster: 101, local: 0 },
      frontends: [{ kind: "ClusterIP", addr: "10.96.0.11", port: 53, protocol: "UDP" }],
      stats: { packets: 1, flows: 1 },
    });
    expect(dns!.backends).toEqual([expect.objectContaining({
      slot: 0, group: "ready-remote", addr: BE1, port: 5353, state: "active", local: false, activeConns: 1, packets: 1, flows: 1,
    })]);
    expect(web).toMatchObject({
      algorithm: "random", algorithmDefault: true, affinityTimeoutSeconds: null,
      externalTrafficPolicy: "Local", sourceRanges: ["203.0.113.0/24"],
      groups: { readyLocal: 1, readyRemote: 1, terminatingLocal: 0, terminatingRemote: 1 },
    });
    expect(web!.frontends.map((f) => `${f.kind} ${f.addr}:${f.port}`)).toEqual([
      "ClusterIP 10.96.0.10:80", "ExternalIP 198.51.100.20:80", "LoadBalancer 203.0.113.50:80", "NodePort 0.0.0.0:30007",
    ]);
    expect(web!.backends.map((b) => [b.slot, b.group, `${b.addr}:${b.port}`, b.state, b.local])).toEqual([
      [0, "ready-local", `${LOCAL_BE}:8080`, "active", true],
      [1, "ready-remote", `${BE1}:8080`, "active", false],
      [2, "terminating-remote", `${TERM}:8080`, "terminating", false],
    ]);
    expect(web!.backends[1]!.backendId).toBe(prog.backendId(BE1, 8080, "TCP"));
  });

  it("as a text table", () => {
    const { dp, view, prog, send } = setup([models[1]!]);
    send({ src: CLIENT_POD, dst: "10.96.0.11", proto: "UDP", sport: 41000, dport: 53, payload: "q" });
    const sid = prog.serviceId("default/dns:dns/UDP")!;
    const bid = prog.backendId(BE1, 5353, "UDP")!;
    const rev = dp.maps.frontends.lookup({ addrBe: "10.96.0.11", portBe: 53, proto: 17 })!.revNatId;
    expect(lbText(lbList(dp, view))).toBe([
      `default/dns:dns/UDP  svc=${sid}  algorithm=maglev  affinity=ClientIP/60s  externalTrafficPolicy=Cluster  internalTrafficPolicy=Cluster  maglev=101/0`,
      "  packets=1 bytes=43 flows=1  groups: ready-local=0 ready-remote=1 terminating-local=0 terminating-remote=0",
      "  FRONTEND           KIND       REVNAT",
      `  10.96.0.11:53/UDP  ClusterIP  ${rev}`,
      "  SLOT  GROUP         BACKEND           ID  STATE   CONNS  PACKETS  BYTES  FLOWS",
      `  0     ready-remote  10.244.1.10:5353  ${bid}   active  1      1        43     1`,
      "",
      "tapvip: 1 service ports.",
      "",
    ].join("\n"));
  });

  it("a service without endpoints, and one the view does not know", () => {
    const { dp, prog } = setup([svc({ endpoints: [] })]);
    const list = lbList(dp); // no view: named by id
    const id = prog.serviceId("default/web:http/TCP")!;
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({ key: `#${id}`, port: 80, protocol: "TCP", backends: [] });
    expect(lbText(list)).toContain("  (no backends)\n");
    prog.sync([]);
    expect(lbList(dp)).toEqual([]);
  });

  it("parses programmer keys, named and unnamed ports", () => {
    expect(parseServicePortKey("kube-system/dns:dns-tcp/TCP")).toEqual({ namespace: "kube-system", name: "dns", portName: "dns-tcp", protocol: "TCP" });
    expect(parseServicePortKey("default/web:80/TCP")).toEqual({ namespace: "default", name: "web", portName: "", protocol: "TCP" });
    expect(portView(svc({ key: "default/web:80/TCP" }), 7)).toEqual({ svcId: 7, namespace: "default", name: "web", port: 80, protocol: "TCP", portName: "", key: "default/web:80/TCP" });
  });
});
