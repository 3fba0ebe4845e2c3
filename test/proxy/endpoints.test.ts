// Tests for src/proxy/endpoints.ts: spec §5 condition reading, grouping, CategorizeEndpoints,
// packet-flow verdicts (forward / drop / reject) and the healthCheckNodePort response.
import { describe, expect, it } from "vitest";
import {
  type EndpointInfo,
  categorizeEndpoints,
  countLocalReadyEndpoints,
  dedupeEndpoints,
  groupEndpoints,
  healthCheckResponse,
  ipSortKey,
  readConditions,
  trafficVerdict,
} from "../../src/proxy/endpoints.js";

const NODE = "node-a";

// Shorthands: local/remote × ready / serving-terminating / not-serving-terminating / not-ready.
const ep = (ip: string, nodeName: string | undefined, c: Partial<EndpointInfo> = {}, port = 80): EndpointInfo => ({
  ip,
  port,
  ...(nodeName === undefined ? {} : { nodeName }),
  ...c,
});
const READY = { ready: true, serving: true, terminating: false };
const SERVING_TERM = { ready: false, serving: true, terminating: true };
const NOT_SERVING_TERM = { ready: false, serving: false, terminating: true };
const NOT_READY = { ready: false, serving: false, terminating: false };

const ips = (xs: EndpointInfo[]): string[] => xs.map((e) => `${e.ip}:${e.port}`);

describe("readConditions", () => {
  it.each<[string, EndpointInfo, { ready: boolean; serving: boolean; terminating: boolean }]>([
    ["all unset", { ip: "10.0.0.1", port: 80 }, { ready: true, serving: true, terminating: false }],
    ["all null", { ip: "10.0.0.1", port: 80, ready: null, serving: null, terminating: null }, { ready: true, serving: true, terminating: false }],
    ["explicit false ready", { ip: "10.0.0.1", port: 80, ready: false }, { ready: false, serving: true, terminating: false }],
    ["explicit values", { ip: "10.0.0.1", port: 80, ...SERVING_TERM }, SERVING_TERM],
    ["terminating true only", { ip: "10.0.0.1", port: 80, terminating: true }, { ready: true, serving: true, terminating: true }],
  ])("%s", (_name, e, want) => {
    expect(readConditions(e)).toEqual(want);
  });
});

describe("groupEndpoints", () => {
  it("splits ready / serving-terminating × local / remote, excluding the rest", () => {
    const g = groupEndpoints(
      [
        ep("10.0.0.5", NODE, READY),
        ep("10.0.1.5", "node-b", READY),
        ep("10.0.0.6", NODE, SERVING_TERM),
        ep("10.0.1.6", "node-b", SERVING_TERM),
        ep("10.0.0.7", NODE, NOT_SERVING_TERM), // terminating but not serving: excluded
        ep("10.0.1.7", "node-b", NOT_READY), // not ready, not terminating: excluded
        ep("10.0.2.1", undefined, {}), // nil conditions → ready; no nodeName → remote
        ep("10.0.0.8", NODE, { ready: true, terminating: true }), // ready wins over terminating
      ],
      NODE,
    );
    expect(ips(g.readyLocal)).toEqual(["10.0.0.5:80", "10.0.0.8:80"]);
    expect(ips(g.readyRemote)).toEqual(["10.0.1.5:80", "10.0.2.1:80"]);
    expect(ips(g.terminatingLocal)).toEqual(["10.0.0.6:80"]);
    expect(ips(g.terminatingRemote)).toEqual(["10.0.1.6:80"]);
  });

  it("sorts numerically by (ip, port) and de-duplicates", () => {
    const g = groupEndpoints(
      [
        ep("10.0.0.10", "b", READY, 8080),
        ep("10.0.0.9", "b", READY, 8080),
        ep("10.0.0.10", "b", READY, 80),
        ep("10.0.0.9", "b", READY, 8080),
        ep("fd00::2", "b", READY),
        ep("FD00:0::2", "b", READY),
        ep("fd00::1", "b", READY),
      ],
      NODE,
    );
    expect(ips(g.readyRemote)).toEqual(["10.0.0.9:8080", "10.0.0.10:80", "10.0.0.10:8080", "fd00::1:80", "fd00::2:80"]);
  });

  it("order of input does not matter", () => {
    const eps = [ep("10.0.0.3", NODE), ep("10.0.0.1", "x"), ep("10.0.0.2", NODE, SERVING_TERM), ep("10.0.0.4", "x")];
    expect(groupEndpoints([...eps].reverse(), NODE)).toEqual(groupEndpoints(eps, NODE));
  });
});

describe("dedupeEndpoints", () => {
  it("first duplicate wins, except a local duplicate replaces a remote one", () => {
    const first = ep("10.0.0.1", "x", { ready: true });
    const second = ep("10.0.0.1", "y", { ready: false });
    expect(dedupeEndpoints([first, second], NODE)).toEqual([first]);
    const local = ep("10.0.0.1", NODE, { ready: true });
    expect(dedupeEndpoints([first, local], NODE)).toEqual([local]);
    expect(dedupeEndpoints([local, first], NODE)).toEqual([local]);
  });

  it("canonical address keys", () => {
    expect(ipSortKey("::ffff:10.0.0.1")).toBe(ipSortKey("::ffff:a00:1"));
    expect(ipSortKey("10.0.0.2") < ipSortKey("10.0.0.10")).toBe(true);
    expect(ipSortKey("255.255.255.255") < ipSortKey("::")).toBe(true);
  });
});

// Packet-flow table: each row is a service state on node-a and what each traffic kind gets.
type Flow = "reject" | "drop" | string[];
interface Row {
  name: string;
  eps: EndpointInfo[];
  itpLocal?: boolean;
  etpLocal?: boolean;
  cluster: string[];
  local: string[];
  internal: Flow; // ClusterIP traffic
  external: Flow; // NodePort/LB/externalIP from off-node
  externalFromNode?: Flow; // NodePort/LB/externalIP from this node's pods (defaults to cluster)
  hasAny: boolean;
}

const rows: Row[] = [
  {
    name: "no endpoints at all → REJECT everywhere",
    eps: [],
    cluster: [],
    local: [],
    internal: "reject",
    external: "reject",
    hasAny: false,
  },
  {
    name: "only not-ready / not-serving endpoints count as none → REJECT",
    eps: [ep("10.0.0.1", NODE, NOT_READY), ep("10.0.1.1", "b", NOT_SERVING_TERM)],
    itpLocal: true,
    etpLocal: true,
    cluster: [],
    local: [],
    internal: "reject",
    external: "reject",
    hasAny: false,
  },
  {
    name: "nil conditions are ready",
    eps: [ep("10.0.1.1", "b"), ep("10.0.0.1", NODE, { ready: null, serving: null, terminating: null })],
    cluster: ["10.0.0.1:80", "10.0.1.1:80"],
    local: ["10.0.0.1:80"],
    internal: ["10.0.0.1:80", "10.0.1.1:80"],
    external: ["10.0.0.1:80", "10.0.1.1:80"],
    hasAny: true,
  },
  {
    name: "cluster set = all ready; terminating ignored while any ready exists",
    eps: [ep("10.0.1.1", "b", READY), ep("10.0.0.2", NODE, SERVING_TERM), ep("10.0.1.3", "b", NOT_READY)],
    cluster: ["10.0.1.1:80"],
    local: ["10.0.0.2:80"],
    internal: ["10.0.1.1:80"],
    external: ["10.0.1.1:80"],
    hasAny: true,
  },
  {
    name: "cluster set falls back to serving+terminating when nothing is ready",
    eps: [ep("10.0.1.1", "b", SERVING_TERM), ep("10.0.0.2", NODE, SERVING_TERM), ep("10.0.1.3", "b", NOT_SERVING_TERM)],
    cluster: ["10.0.0.2:80", "10.0.1.1:80"],
    local: ["10.0.0.2:80"],
    internal: ["10.0.0.2:80", "10.0.1.1:80"],
    external: ["10.0.0.2:80", "10.0.1.1:80"],
    hasAny: true,
  },
  {
    name: "not-serving terminating endpoints are never used, even as fallback",
    eps: [ep("10.0.0.1", NODE, NOT_SERVING_TERM), ep("10.0.1.1", "b", SERVING_TERM)],
    etpLocal: true,
    cluster: ["10.0.1.1:80"],
    local: [],
    internal: ["10.0.1.1:80"],
    external: "drop",
    hasAny: true,
  },
  {
    name: "local set = local ready only",
    eps: [ep("10.0.0.1", NODE, READY), ep("10.0.0.2", NODE, SERVING_TERM), ep("10.0.1.1", "b", READY)],
    itpLocal: true,
    etpLocal: true,
    cluster: ["10.0.0.1:80", "10.0.1.1:80"],
    local: ["10.0.0.1:80"],
    internal: ["10.0.0.1:80"],
    external: ["10.0.0.1:80"],
    externalFromNode: ["10.0.0.1:80", "10.0.1.1:80"],
    hasAny: true,
  },
  {
    name: "local set falls back to local serving+terminating (remote ready exists)",
    eps: [ep("10.0.0.2", NODE, SERVING_TERM), ep("10.0.1.1", "b", READY), ep("10.0.1.2", "b", SERVING_TERM)],
    itpLocal: true,
    etpLocal: true,
    cluster: ["10.0.1.1:80"],
    local: ["10.0.0.2:80"],
    internal: ["10.0.0.2:80"],
    external: ["10.0.0.2:80"],
    externalFromNode: ["10.0.1.1:80"],
    hasAny: true,
  },
  {
    name: "internalTrafficPolicy Local with no local endpoints → DROP ClusterIP traffic",
    eps: [ep("10.0.1.1", "b", READY)],
    itpLocal: true,
    cluster: ["10.0.1.1:80"],
    local: [],
    internal: "drop",
    external: ["10.0.1.1:80"],
    hasAny: true,
  },
  {
    name: "externalTrafficPolicy Local with no local endpoints → DROP external, node pods use cluster set",
    eps: [ep("10.0.1.1", "b", READY), ep("10.0.1.2", "c", READY)],
    etpLocal: true,
    cluster: ["10.0.1.1:80", "10.0.1.2:80"],
    local: [],
    internal: ["10.0.1.1:80", "10.0.1.2:80"],
    external: "drop",
    externalFromNode: ["10.0.1.1:80", "10.0.1.2:80"],
    hasAny: true,
  },
  {
    name: "externalTrafficPolicy Local does not affect ClusterIP traffic",
    eps: [ep("10.0.0.1", NODE, READY), ep("10.0.1.1", "b", READY)],
    etpLocal: true,
    cluster: ["10.0.0.1:80", "10.0.1.1:80"],
    local: ["10.0.0.1:80"],
    internal: ["10.0.0.1:80", "10.0.1.1:80"],
    external: ["10.0.0.1:80"],
    hasAny: true,
  },
  {
    name: "internalTrafficPolicy Local does not affect external traffic",
    eps: [ep("10.0.0.1", NODE, READY), ep("10.0.1.1", "b", READY)],
    itpLocal: true,
    cluster: ["10.0.0.1:80", "10.0.1.1:80"],
    local: ["10.0.0.1:80"],
    internal: ["10.0.0.1:80"],
    external: ["10.0.0.1:80", "10.0.1.1:80"],
    hasAny: true,
  },
  {
    name: "an endpoint without nodeName is never local",
    eps: [ep("10.0.0.1", undefined, READY), ep("10.0.0.2", "", READY)],
    itpLocal: true,
    cluster: ["10.0.0.1:80", "10.0.0.2:80"],
    local: [],
    internal: "drop",
    external: ["10.0.0.1:80", "10.0.0.2:80"],
    hasAny: true,
  },
  {
    name: "duplicates collapse and sets are sorted",
    eps: [ep("10.0.0.20", NODE, READY), ep("10.0.0.3", "b", READY), ep("10.0.0.20", NODE, READY), ep("10.0.0.3", "b", READY)],
    cluster: ["10.0.0.3:80", "10.0.0.20:80"],
    local: ["10.0.0.20:80"],
    internal: ["10.0.0.3:80", "10.0.0.20:80"],
    external: ["10.0.0.3:80", "10.0.0.20:80"],
    hasAny: true,
  },
];

describe("categorizeEndpoints + trafficVerdict (packet flow)", () => {
  const flow = (v: ReturnType<typeof trafficVerdict>): Flow => (v.action === "forward" ? ips(v.endpoints) : v.action);

  it.each(rows)("$name", (row) => {
    const cat = categorizeEndpoints(row.eps, NODE, {
      internalTrafficPolicyLocal: row.itpLocal ?? false,
      externalTrafficPolicyLocal: row.etpLocal ?? false,
    });
    expect(ips(cat.clusterSet)).toEqual(row.cluster);
    expect(ips(cat.localSet)).toEqual(row.local);
    expect(cat.hasAnyEndpoints).toBe(row.hasAny);
    expect(flow(trafficVerdict(cat, "internal"))).toEqual(row.internal);
    expect(flow(trafficVerdict(cat, "external"))).toEqual(row.external);
    const fromNode = row.externalFromNode ?? (row.hasAny ? row.cluster : "reject");
    expect(flow(trafficVerdict(cat, "external-from-node"))).toEqual(fromNode);
    // internalSet / externalSet are exactly the policy-selected sets.
    expect(cat.internalSet).toEqual(row.itpLocal ? cat.localSet : cat.clusterSet);
    expect(cat.externalSet).toEqual(row.etpLocal ? cat.localSet : cat.clusterSet);
  });
});

describe("health check", () => {
  it("counts distinct local READY IPs across ports; terminating never counts", () => {
    const port80 = [
      ep("10.0.0.1", NODE, READY, 80),
      ep("10.0.0.2", NODE, SERVING_TERM, 80),
      ep("10.0.1.1", "b", READY, 80),
      ep("10.0.0.3", NODE, {}, 80), // nil → ready
    ];
    const port443 = [ep("10.0.0.1", NODE, READY, 443), ep("10.0.0.4", NODE, NOT_READY, 443)];
    expect(countLocalReadyEndpoints(port80, NODE)).toBe(2);
    expect(countLocalReadyEndpoints([port80, port443], NODE)).toBe(2);
    expect(countLocalReadyEndpoints([ep("10.0.0.2", NODE, SERVING_TERM)], NODE)).toBe(0);
    expect(countLocalReadyEndpoints([], NODE)).toBe(0);
  });

  it.each<[string, EndpointInfo[], boolean, 200 | 503, number]>([
    ["local ready endpoint → 200", [ep("10.0.0.1", NODE, READY)], true, 200, 1],
    ["only remote endpoints → 503", [ep("10.0.1.1", "b", READY)], true, 503, 0],
    ["terminating-only local → 503 (traffic still flows)", [ep("10.0.0.1", NODE, SERVING_TERM)], true, 503, 0],
    ["no endpoints → 503", [], true, 503, 0],
    ["proxy unhealthy → 503 even with local endpoints", [ep("10.0.0.1", NODE, READY)], false, 503, 1],
  ])("%s", (_name, eps, healthy, status, count) => {
    const r = healthCheckResponse("default", "web", countLocalReadyEndpoints(eps, NODE), healthy);
    expect(r.status).toBe(status);
    expect(JSON.parse(r.body)).toEqual({
      service: { namespace: "default", name: "web" },
      localEndpoints: count,
      serviceProxyHealthy: healthy,
    });
  });

  it("terminating-only: 503 from the health check while the external set still forwards", () => {
    const eps = [ep("10.0.0.1", NODE, SERVING_TERM)];
    const cat = categorizeEndpoints(eps, NODE, { internalTrafficPolicyLocal: false, externalTrafficPolicyLocal: true });
    expect(trafficVerdict(cat, "external")).toEqual({ action: "forward", endpoints: eps });
    expect(healthCheckResponse("ns", "svc", countLocalReadyEndpoints(eps, NODE), true).status).toBe(503);
  });

  it("body is upstream's tab-indented JSON and headers match", () => {
    const r = healthCheckResponse("kube-system", "dns", 3, true);
    expect(r.body).toBe(
      '{\n\t"service": {\n\t\t"namespace": "kube-system",\n\t\t"name": "dns"\n\t},\n\t"localEndpoints": 3,\n\t"serviceProxyHealthy": true\n}',
    );
    expect(r.headers["Content-Type"]).toBe("application/json");
    expect(r.headers["X-Content-Type-Options"]).toBe("nosniff");
    expect(r.status).toBe(200);
    const bad = healthCheckResponse("ns", "svc", 0, false);
    expect(bad.status).toBe(503);
    expect(bad.body).toContain('\t"localEndpoints": 0,\n\t"serviceProxyHealthy": false\n}');
  });
});
