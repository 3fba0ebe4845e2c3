// Tests for src/store/validation.ts: one case per §1 rule (field path + upstream message fragment) and the 422 Status.
import { describe, it, expect } from "vitest";
import { defaultEndpointSlice, defaultEndpoints, defaultService } from "../../src/store/defaults.js";
import {
  aggregateMessage,
  invalidStatus,
  validateEndpointSlice,
  validateEndpoints,
  validateNamespace,
  validateService,
} from "../../src/store/validation.js";
import type { EndpointSlice, Endpoints, Service } from "../../src/store/types.js";
import { check, expectError, expectNoError, P80, svc } from "./helpers.js";

describe("metadata.name (DNS-1035 label)", () => {
  it("accepts a DNS-1035 label", () => expectNoError(check({ ports: P80 }, "my-service-1")));
  it("rejects a leading digit", () =>
    expectError(check({ ports: P80 }, "1abc"), "metadata.name", 'Invalid value: "1abc": a DNS-1035 label must consist of'));
  it("rejects upper case and underscores", () =>
    expectError(check({ ports: P80 }, "My_svc"), "metadata.name", "a DNS-1035 label"));
  it("rejects more than 63 characters", () =>
    expectError(check({ ports: P80 }, "a".repeat(64)), "metadata.name", "must be no more than 63 characters"));
  it("accepts exactly 63 characters", () => expectNoError(check({ ports: P80 }, "a".repeat(63))));
  it("requires a name", () => {
    const errs = validateService(defaultService({ apiVersion: "v1", kind: "Service", metadata: { namespace: "default" }, spec: { ports: P80 } }));
    expectError(errs, "metadata.name", "Required value: name or generateName is required", "FieldValueRequired");
  });
  it("requires a namespace", () => {
    const errs = validateService(defaultService({ apiVersion: "v1", kind: "Service", metadata: { name: "a" }, spec: { ports: P80 } }));
    expectError(errs, "metadata.namespace", "Required value", "FieldValueRequired");
  });
  it("validates labels", () => {
    const errs = validateService(defaultService(svc({ ports: P80 }, "a", { labels: { "app": "bad value!" } })));
    expectError(errs, "metadata.labels", "a valid label must be an empty string");
  });
});

describe("spec.ports", () => {
  it("is required for a ClusterIP service", () => expectError(check({}), "spec.ports", "spec.ports: Required value", "FieldValueRequired"));
  it("is not required for a headless service", () => expectNoError(check({ clusterIP: "None" })));
  it("is not required for ExternalName", () => expectNoError(check({ type: "ExternalName", externalName: "db.example.com" })));
  it("needs a name on every port when there are several", () => {
    const errs = check({ ports: [{ port: 80 }, { port: 81, name: "b" }] });
    expectError(errs, "spec.ports[0].name", "spec.ports[0].name: Required value", "FieldValueRequired");
  });
  it("does not need a name on a single port", () => expectNoError(check({ ports: [{ port: 80 }] })));
  it("rejects duplicate port names", () => {
    const errs = check({ ports: [{ port: 80, name: "web" }, { port: 81, name: "web" }] });
    expectError(errs, "spec.ports[1].name", 'Duplicate value: "web"', "FieldValueDuplicate");
  });
  it.each(["123-abc", "web"])("accepts port name %s (seed README)", (name) =>
    expectNoError(check({ ports: [{ port: 80, name }, { port: 81, name: "other" }] })));
  it.each(["123_abc", "-web", "Web", "a.b"])("rejects port name %s (seed README)", (name) =>
    expectError(check({ ports: [{ port: 80, name }, { port: 81, name: "other" }] }), "spec.ports[0].name", "a lowercase RFC 1123 label must consist of"));
  it("rejects a 64-character port name", () =>
    expectError(check({ ports: [{ port: 80, name: "a".repeat(64) }] }), "spec.ports[0].name", "must be no more than 63 characters"));
  it.each([0, 65536, -1])("rejects port %s", (port) =>
    expectError(check({ ports: [{ port, targetPort: 80 }] }), "spec.ports[0].port", `spec.ports[0].port: Invalid value: ${port}: must be between 1 and 65535, inclusive`));
  it.each([1, 65535])("accepts port %s", (port) => expectNoError(check({ ports: [{ port }] })));
  it.each(["TCP", "UDP", "SCTP"] as const)("accepts protocol %s", (protocol) => expectNoError(check({ ports: [{ port: 80, protocol }] })));
  it("rejects an unsupported protocol", () =>
    expectError(
      check({ ports: [{ port: 80, protocol: "ICMP" as never }] }),
      "spec.ports[0].protocol",
      'Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"',
      "FieldValueNotSupported",
    ));
  it("rejects an empty protocol before defaulting", () =>
    expectError(validateService(svc({ type: "ClusterIP", sessionAffinity: "None", internalTrafficPolicy: "Cluster", ports: [{ port: 80, targetPort: 80 }] })),
      "spec.ports[0].protocol", "Required value"));
  it("validates appProtocol as a qualified name", () => {
    expectNoError(check({ ports: [{ port: 80, appProtocol: "kubernetes.io/h2c" }] }));
    expectError(check({ ports: [{ port: 80, appProtocol: "bad proto" }] }), "spec.ports[0].appProtocol", "name part must consist of alphanumeric characters");
  });
});

describe("spec.ports[].targetPort", () => {
  it.each([1, 65535, "http", "a1", "web-8080", "abcdefghijklmno"])("accepts %s", (targetPort) =>
    expectNoError(check({ ports: [{ port: 80, targetPort }] })));
  it.each([
    [0, "must be between 1 and 65535, inclusive"],
    [65536, "must be between 1 and 65535, inclusive"],
    ["abcdefghijklmnop", "must be no more than 15 characters"],
    ["web_1", "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"],
    ["WEB", "must contain only alpha-numeric characters"],
    ["8080", "must contain at least one letter (a-z)"],
    ["a--b", "must not contain consecutive hyphens"],
    ["-web", "must not begin or end with a hyphen"],
    ["web-", "must not begin or end with a hyphen"],
  ] as const)("rejects %s", (targetPort, msg) => {
    // targetPort 0 is defaulted to port, so check it un-defaulted for the 0 case
    const s = defaultService(svc({ ports: [{ port: 80, targetPort: targetPort as number | string }] }));
    s.spec!.ports![0]!.targetPort = targetPort;
    expectError(validateService(s), "spec.ports[0].targetPort", msg);
  });
});

describe("duplicate ports and nodePorts", () => {
  it("rejects the same (protocol, port) twice", () => {
    const errs = check({ ports: [{ name: "a", port: 80 }, { name: "b", port: 80 }] });
    expectError(errs, "spec.ports[1]", "spec.ports[1]: Duplicate value: ", "FieldValueDuplicate");
  });
  it("accepts the same port with different protocols", () =>
    expectNoError(check({ ports: [{ name: "a", port: 80, protocol: "TCP" }, { name: "b", port: 80, protocol: "UDP" }] })));
  it("rejects the same (protocol, nodePort) twice", () => {
    const errs = check({ type: "NodePort", ports: [{ name: "a", port: 80, nodePort: 30080 }, { name: "b", port: 81, nodePort: 30080 }] });
    expectError(errs, "spec.ports[1].nodePort", "spec.ports[1].nodePort: Duplicate value: 30080", "FieldValueDuplicate");
  });
  it("accepts the same nodePort with another protocol", () =>
    expectNoError(check({ type: "NodePort", ports: [{ name: "a", port: 80, nodePort: 30080 }, { name: "b", port: 80, protocol: "UDP", nodePort: 30080 }] })));
  it("forbids nodePort on type ClusterIP", () =>
    expectError(check({ ports: [{ port: 80, nodePort: 30080 }] }), "spec.ports[0].nodePort", "Forbidden: may not be used when `type` is 'ClusterIP'", "FieldValueForbidden"));
  it("allows nodePort on NodePort and LoadBalancer", () => {
    expectNoError(check({ type: "NodePort", ports: [{ port: 80, nodePort: 30080 }] }));
    expectNoError(check({ type: "LoadBalancer", ports: [{ port: 80, nodePort: 30080 }] }));
  });
});

describe("spec.type", () => {
  it.each(["ClusterIP", "NodePort", "LoadBalancer"] as const)("accepts %s", (type) => expectNoError(check({ type, ports: P80 })));
  it("rejects an unknown type", () =>
    expectError(check({ type: "Magic" as never, ports: P80 }), "spec.type",
      'Unsupported value: "Magic": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"', "FieldValueNotSupported"));
  it("is required before defaulting", () =>
    expectError(validateService(svc({ ports: [{ port: 80, protocol: "TCP", targetPort: 80 }], sessionAffinity: "None" })), "spec.type", "Required value"));
});

describe("headless and clusterIP(s)", () => {
  it("accepts clusterIP None for ClusterIP", () => expectNoError(check({ clusterIP: "None", ports: P80 })));
  it("rejects headless NodePort", () =>
    expectError(check({ type: "NodePort", clusterIP: "None", ports: P80 }), "spec.clusterIPs[0]", "may not be set to 'None' for NodePort services"));
  it("rejects headless LoadBalancer", () =>
    expectError(check({ type: "LoadBalancer", clusterIP: "None", ports: P80 }), "spec.clusterIPs[0]", "may not be set to 'None' for LoadBalancer services"));
  it("rejects None when not the sole value", () =>
    expectError(check({ clusterIP: "None", clusterIPs: ["None", "10.0.0.1"], ports: P80 }), "spec.clusterIPs", "'None' must be the first and only value"));
  it("rejects an invalid clusterIP", () =>
    expectError(check({ clusterIP: "10.0.0.300", ports: P80 }), "spec.clusterIPs[0]", 'Invalid value: "10.0.0.300": must be a valid IP address'));
  it("accepts a valid IPv4 and IPv6 clusterIP", () => {
    expectNoError(check({ clusterIP: "10.0.171.239", ports: P80 }));
    expectNoError(check({ clusterIP: "fd00::10", ports: P80 }));
  });
  it("requires clusterIPs[0] to equal clusterIP", () =>
    expectError(check({ clusterIP: "10.0.0.1", clusterIPs: ["10.0.0.2"], ports: P80 }), "spec.clusterIPs", "first value must match `clusterIP`"));
  it("requires clusterIP when clusterIPs is set", () =>
    expectError(check({ clusterIPs: ["10.0.0.2"], ports: P80 }), "spec.clusterIPs", "must be empty when `clusterIP` is not specified"));
  it("allows one IP per family", () =>
    expectNoError(check({ clusterIP: "10.0.0.1", clusterIPs: ["10.0.0.1", "fd00::1"], ipFamilyPolicy: "PreferDualStack", ports: P80 })));
  it("rejects two IPs of one family", () =>
    expectError(check({ clusterIP: "10.0.0.1", clusterIPs: ["10.0.0.1", "10.0.0.2"], ports: P80 }), "spec.clusterIPs", "may specify no more than one IP for each IP family"));
  it("rejects more than two clusterIPs", () =>
    expectError(check({ clusterIP: "10.0.0.1", clusterIPs: ["10.0.0.1", "fd00::1", "10.0.0.3"], ports: P80 }), "spec.clusterIPs", "may only hold up to 2 values"));
  it("checks clusterIPs against ipFamilies", () =>
    expectError(check({ clusterIP: "fd00::1", ipFamilies: ["IPv4"], ports: P80 }), "spec.clusterIPs[0]", "expected an IPv4 value as indicated by `ipFamilies[0]`"));
  it("rejects unknown and duplicate ipFamilies", () => {
    expectError(check({ ipFamilies: ["IPv5" as never], ports: P80 }), "spec.ipFamilies[0]", 'Unsupported value: "IPv5"');
    expectError(check({ ipFamilies: ["IPv4", "IPv4"], ports: P80 }), "spec.ipFamilies[1]", 'Duplicate value: "IPv4"');
  });
  it("rejects an unknown ipFamilyPolicy", () =>
    expectError(check({ ipFamilyPolicy: "Whatever" as never, ports: P80 }), "spec.ipFamilyPolicy", 'Unsupported value: "Whatever"'));
});

describe("ExternalName", () => {
  it("accepts a DNS name, with a trailing dot too", () => {
    expectNoError(check({ type: "ExternalName", externalName: "my.database.example.com" }));
    expectNoError(check({ type: "ExternalName", externalName: "my.database.example.com." }));
  });
  it("requires externalName", () =>
    expectError(check({ type: "ExternalName" }), "spec.externalName", "spec.externalName: Required value", "FieldValueRequired"));
  it("requires more than a dot", () => expectError(check({ type: "ExternalName", externalName: "." }), "spec.externalName", "Required value"));
  it("rejects a non RFC 1123 subdomain", () =>
    expectError(check({ type: "ExternalName", externalName: "Bad_Name.com" }), "spec.externalName", "a lowercase RFC 1123 subdomain must consist of"));
  it("rejects more than 253 characters", () =>
    expectError(check({ type: "ExternalName", externalName: `${"a".repeat(60)}.`.repeat(5).slice(0, 254) + "b" }), "spec.externalName", "must be no more than 253 characters"));
  it("forbids clusterIP", () =>
    expectError(check({ type: "ExternalName", externalName: "a.com", clusterIP: "10.0.0.1" }), "spec.clusterIPs", "Forbidden: may not be set for ExternalName services", "FieldValueForbidden"));
  it("forbids ipFamilies and ipFamilyPolicy", () => {
    const errs = check({ type: "ExternalName", externalName: "a.com", ipFamilies: ["IPv4"], ipFamilyPolicy: "SingleStack" });
    expectError(errs, "spec.ipFamilies", "Forbidden: may not be set for ExternalName services");
    expectError(errs, "spec.ipFamilyPolicy", "Forbidden: may not be set for ExternalName services");
  });
});

describe("session affinity", () => {
  it("accepts None and ClientIP", () => {
    expectNoError(check({ ports: P80, sessionAffinity: "None" }));
    expectNoError(check({ ports: P80, sessionAffinity: "ClientIP" }));
    expectNoError(check({ ports: P80, sessionAffinity: "ClientIP", sessionAffinityConfig: { clientIP: { timeoutSeconds: 86400 } } }));
    expectNoError(check({ ports: P80, sessionAffinity: "ClientIP", sessionAffinityConfig: { clientIP: { timeoutSeconds: 1 } } }));
  });
  it("rejects an unknown affinity", () =>
    expectError(check({ ports: P80, sessionAffinity: "Cookie" as never }), "spec.sessionAffinity", 'Unsupported value: "Cookie": supported values: "ClientIP", "None"'));
  it.each([0, -5, 86401])("rejects timeoutSeconds %s", (t) =>
    expectError(check({ ports: P80, sessionAffinity: "ClientIP", sessionAffinityConfig: { clientIP: { timeoutSeconds: t } } }),
      "spec.sessionAffinityConfig.clientIP.timeoutSeconds", `Invalid value: ${t}: must be greater than 0 and less than 86400`));
  it("requires the config for ClientIP when not defaulted", () => {
    const s = defaultService(svc({ ports: P80, sessionAffinity: "ClientIP" }));
    delete s.spec!.sessionAffinityConfig;
    expectError(validateService(s), "spec.sessionAffinityConfig", "Required value: when session affinity type is ClientIP");
  });
  it("forbids a config with None (on an un-defaulted object; defaulting drops it as upstream does)", () => {
    const s = defaultService(svc({ ports: P80 }));
    s.spec!.sessionAffinityConfig = { clientIP: { timeoutSeconds: 10 } };
    expectError(validateService(s), "spec.sessionAffinityConfig", "Forbidden: must not be set when session affinity is None");
  });
});

describe("externalIPs", () => {
  it("accepts public addresses", () => expectNoError(check({ ports: P80, externalIPs: ["80.11.12.10", "2001:db8::1"] })));
  it.each([
    ["not-an-ip", "must be a valid IP address"],
    ["0.0.0.0", "may not be unspecified"],
    ["::", "may not be unspecified"],
    ["127.0.0.1", "may not be in the loopback range (127.0.0.0/8, ::1/128)"],
    ["127.255.0.9", "may not be in the loopback range"],
    ["::1", "may not be in the loopback range"],
    ["169.254.169.254", "may not be in the link-local range (169.254.0.0/16, fe80::/10)"],
    ["fe80::1", "may not be in the link-local range"],
    ["224.0.0.251", "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"],
    ["ff02::1", "may not be in the link-local multicast range"],
  ])("rejects %s", (ip, msg) => expectError(check({ ports: P80, externalIPs: [ip] }), "spec.externalIPs[0]", msg));
  it("accepts non-link-local multicast 224.0.1.1", () => expectNoError(check({ ports: P80, externalIPs: ["224.0.1.1"] })));
});

describe("externalTrafficPolicy", () => {
  it("is defaulted and accepted where externally accessible", () => {
    expectNoError(check({ type: "NodePort", ports: P80 }));
    expectNoError(check({ type: "LoadBalancer", ports: P80, externalTrafficPolicy: "Local" }));
    expectNoError(check({ ports: P80, externalIPs: ["80.11.12.10"], externalTrafficPolicy: "Local" }));
  });
  it("is forbidden on a ClusterIP service without externalIPs", () =>
    expectError(check({ ports: P80, externalTrafficPolicy: "Cluster" }), "spec.externalTrafficPolicy",
      'Invalid value: "Cluster": may only be set for externally-accessible services'));
  it("is forbidden on ExternalName", () =>
    expectError(check({ type: "ExternalName", externalName: "a.com", externalTrafficPolicy: "Local" }), "spec.externalTrafficPolicy", "may only be set for externally-accessible services"));
  it("is required where externally accessible (un-defaulted)", () => {
    const s = defaultService(svc({ type: "NodePort", ports: P80 }));
    delete s.spec!.externalTrafficPolicy;
    expectError(validateService(s), "spec.externalTrafficPolicy", "Required value");
  });
  it("rejects an unknown value", () =>
    expectError(check({ type: "NodePort", ports: P80, externalTrafficPolicy: "Global" as never }), "spec.externalTrafficPolicy", 'Unsupported value: "Global": supported values: "Cluster", "Local"'));
});

describe("healthCheckNodePort", () => {
  it("is allowed for LoadBalancer + Local", () =>
    expectNoError(check({ type: "LoadBalancer", externalTrafficPolicy: "Local", healthCheckNodePort: 30200, ports: P80 })));
  it("is rejected for LoadBalancer + Cluster", () =>
    expectError(check({ type: "LoadBalancer", healthCheckNodePort: 30200, ports: P80 }), "spec.healthCheckNodePort",
      "Invalid value: 30200: may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"));
  it("is rejected for NodePort + Local", () =>
    expectError(check({ type: "NodePort", externalTrafficPolicy: "Local", healthCheckNodePort: 30200, ports: P80 }), "spec.healthCheckNodePort", "may only be set when"));
  it("is required after allocation, not before", () => {
    const s = defaultService(svc({ type: "LoadBalancer", externalTrafficPolicy: "Local", ports: P80 }));
    expectNoError(validateService(s));
    expectError(validateService(s, undefined, { allocated: true }), "spec.healthCheckNodePort", "Required value");
  });
  it("must be a valid port", () =>
    expectError(check({ type: "LoadBalancer", externalTrafficPolicy: "Local", healthCheckNodePort: 70000, ports: P80 }), "spec.healthCheckNodePort", "must be between 1 and 65535, inclusive"));
  it("is immutable while needed", () => {
    const old = defaultService(svc({ type: "LoadBalancer", externalTrafficPolicy: "Local", healthCheckNodePort: 30200, clusterIP: "10.0.0.5", ports: P80 }));
    const next = structuredClone(old);
    next.spec!.healthCheckNodePort = 30201;
    expectError(validateService(next, old), "spec.healthCheckNodePort", "Forbidden: field is immutable");
  });
});

describe("internalTrafficPolicy", () => {
  it("accepts Cluster and Local", () => {
    expectNoError(check({ ports: P80, internalTrafficPolicy: "Local" }));
    expectNoError(check({ ports: P80, internalTrafficPolicy: "Cluster" }));
  });
  it("rejects an unknown value", () =>
    expectError(check({ ports: P80, internalTrafficPolicy: "Node" as never }), "spec.internalTrafficPolicy", 'Unsupported value: "Node": supported values: "Cluster", "Local"'));
  it.each(["ClusterIP", "NodePort", "LoadBalancer"] as const)("is required for %s (un-defaulted)", (type) => {
    const s = defaultService(svc({ type, ports: P80 }));
    delete s.spec!.internalTrafficPolicy;
    expectError(validateService(s), "spec.internalTrafficPolicy", "Required value");
  });
  it("is not required for ExternalName", () => expectNoError(check({ type: "ExternalName", externalName: "a.com" })));
});

describe("loadBalancer fields", () => {
  it("accepts loadBalancerSourceRanges on LoadBalancer, whitespace trimmed", () =>
    expectNoError(check({ type: "LoadBalancer", ports: P80, loadBalancerSourceRanges: [" 10.0.0.0/8 ", "2001:db8::/64"] })));
  it("forbids loadBalancerSourceRanges elsewhere", () =>
    expectError(check({ type: "NodePort", ports: P80, loadBalancerSourceRanges: ["10.0.0.0/8"] }), "spec.LoadBalancerSourceRanges", "may only be used when `type` is 'LoadBalancer'"));
  it("rejects an invalid source range", () =>
    expectError(check({ type: "LoadBalancer", ports: P80, loadBalancerSourceRanges: ["10.0.0.0/33"] }), "spec.LoadBalancerSourceRanges[0]", "must be a valid CIDR value"));
  it("forbids allocateLoadBalancerNodePorts off LoadBalancer", () =>
    expectError(check({ type: "NodePort", ports: P80, allocateLoadBalancerNodePorts: false }), "spec.allocateLoadBalancerNodePorts", "may only be used when `type` is 'LoadBalancer'"));
  it("accepts allocateLoadBalancerNodePorts false on LoadBalancer", () =>
    expectNoError(check({ type: "LoadBalancer", ports: P80, allocateLoadBalancerNodePorts: false })));
  it("accepts a qualified loadBalancerClass on LoadBalancer", () =>
    expectNoError(check({ type: "LoadBalancer", ports: P80, loadBalancerClass: "example.com/internal-vip" })));
  it("rejects a malformed loadBalancerClass", () =>
    expectError(check({ type: "LoadBalancer", ports: P80, loadBalancerClass: "a/b/c" }), "spec.loadBalancerClass", "a qualified name must consist of"));
  it("forbids loadBalancerClass off LoadBalancer", () =>
    expectError(check({ type: "ClusterIP", ports: P80, loadBalancerClass: "example.com/x" }), "spec.loadBalancerClass", "Forbidden: may only be used when `type` is 'LoadBalancer'"));
  it("does not let loadBalancerClass change", () => {
    const old = defaultService(svc({ type: "LoadBalancer", clusterIP: "10.0.0.5", ports: P80, loadBalancerClass: "example.com/a" }));
    const next = structuredClone(old);
    next.spec!.loadBalancerClass = "example.com/b";
    expectError(validateService(next, old), "spec.loadBalancerClass", 'Invalid value: "example.com/b": may not change once set');
    const unset = structuredClone(old);
    delete unset.spec!.loadBalancerClass;
    expectError(validateService(unset, old), "spec.loadBalancerClass", "may not change once set");
  });
});

describe("updates", () => {
  const base = (): Service => defaultService(svc({ clusterIP: "10.0.0.5", ports: P80 }));
  it("accepts an unchanged clusterIP", () => {
    const old = base();
    expectNoError(validateService(structuredClone(old), old));
  });
  it("rejects a changed clusterIP", () => {
    const old = base();
    const next = defaultService({ ...structuredClone(old), spec: { ...old.spec, clusterIP: "10.0.0.6" } }, { old });
    expectError(validateService(next, old), "spec.clusterIPs[0]", "may not change once set");
  });
  it("rejects unsetting the clusterIPs", () => {
    const old = base();
    const next = structuredClone(old);
    next.spec!.clusterIP = "";
    next.spec!.clusterIPs = [];
    expect(validateService(next, old).some((e) => e.message.includes("primary clusterIP can not be unset"))).toBe(true);
  });
  it("allows clusterIP to go away when the type moves to ExternalName", () => {
    const old = base();
    const next = defaultService({ ...structuredClone(old), spec: { ...structuredClone(old.spec), type: "ExternalName", externalName: "db.example.com" } }, { old });
    expect(next.spec!.clusterIP).toBeUndefined();
    expectNoError(validateService(next, old));
  });
  it("allows a new clusterIP when the type moves from ExternalName", () => {
    const old = defaultService(svc({ type: "ExternalName", externalName: "db.example.com" }));
    const next = defaultService(svc({ type: "ClusterIP", clusterIP: "10.0.0.9", ports: P80 }), { old });
    expectNoError(validateService(next, old));
  });
  it("makes the name immutable", () => {
    const old = base();
    const next = structuredClone(old);
    next.metadata.name = "y";
    expectError(validateService(next, old), "metadata.name", "field is immutable");
  });
});

describe("Endpoints", () => {
  const ep = (subsets: Endpoints["subsets"]): Endpoints => defaultEndpoints({ apiVersion: "v1", kind: "Endpoints", metadata: { name: "svc", namespace: "default" }, subsets });
  it("accepts the seed's manual endpoint", () => expectNoError(validateEndpoints(ep([{ addresses: [{ ip: "192.0.2.42" }], ports: [{ port: 9376 }] }]))));
  it("defaults the port protocol to TCP", () => expect(ep([{ addresses: [{ ip: "192.0.2.42" }], ports: [{ port: 1 }] }]).subsets![0]!.ports![0]!.protocol).toBe("TCP"));
  it("requires addresses or notReadyAddresses", () =>
    expectError(validateEndpoints(ep([{ ports: [{ port: 80 }] }])), "subsets[0]", "Required value: must specify `addresses` or `notReadyAddresses`"));
  it("accepts notReadyAddresses alone", () => expectNoError(validateEndpoints(ep([{ notReadyAddresses: [{ ip: "10.1.2.3" }] }]))));
  it.each([
    ["1.2.3", "must be a valid IP address"],
    ["0.0.0.0", "may not be unspecified"],
    ["127.0.0.1", "may not be in the loopback range"],
    ["169.254.1.1", "may not be in the link-local range"],
    ["224.0.0.1", "may not be in the link-local multicast range"],
  ])("rejects address %s", (ip, msg) => {
    expectError(validateEndpoints(ep([{ addresses: [{ ip }] }])), "subsets[0].addresses[0].ip", msg);
    expectError(validateEndpoints(ep([{ notReadyAddresses: [{ ip }] }])), "subsets[0].notReadyAddresses[0].ip", msg);
  });
  it("requires port names when there are several", () =>
    expectError(validateEndpoints(ep([{ addresses: [{ ip: "10.1.2.3" }], ports: [{ port: 80 }, { port: 81, name: "b" }] }])), "subsets[0].ports[0].name", "Required value"));
  it.each([0, 65536])("rejects port %s", (port) =>
    expectError(validateEndpoints(ep([{ addresses: [{ ip: "10.1.2.3" }], ports: [{ port }] }])), "subsets[0].ports[0].port", "must be between 1 and 65535, inclusive"));
  it("rejects an unknown protocol", () =>
    expectError(validateEndpoints(ep([{ addresses: [{ ip: "10.1.2.3" }], ports: [{ port: 80, protocol: "XTP" as never }] }])), "subsets[0].ports[0].protocol", "Unsupported value"));
  it("validates hostname as a DNS label", () =>
    expectError(validateEndpoints(ep([{ addresses: [{ ip: "10.1.2.3", hostname: "Bad_Host" }] }])), "subsets[0].addresses[0].hostname", "RFC 1123 label"));
  it("allows a DNS-subdomain name", () =>
    expectNoError(validateEndpoints({ ...ep([]), metadata: { name: "my.svc", namespace: "default" } })));
});

describe("EndpointSlice", () => {
  const es = (over: Partial<EndpointSlice> = {}): EndpointSlice =>
    defaultEndpointSlice({
      apiVersion: "discovery.k8s.io/v1",
      kind: "EndpointSlice",
      metadata: { name: "svc-abc", namespace: "default", labels: { "kubernetes.io/service-name": "svc" } },
      addressType: "IPv4",
      endpoints: [{ addresses: ["10.1.2.3"], conditions: { ready: true } }],
      ports: [{ name: "http", port: 80 }],
      ...over,
    });
  it("accepts a well-formed slice and defaults the protocol", () => {
    const s = es();
    expect(s.ports![0]!.protocol).toBe("TCP");
    expectNoError(validateEndpointSlice(s));
  });
  it("rejects an unknown addressType", () =>
    expectError(validateEndpointSlice(es({ addressType: "IPX" as never })), "addressType", 'Unsupported value: "IPX": supported values: "FQDN", "IPv4", "IPv6"'));
  it("requires addressType", () => expectError(validateEndpointSlice(es({ addressType: "" as never })), "addressType", "Required value"));
  it("makes addressType immutable", () => {
    const old = es();
    const next = es({ addressType: "IPv6", endpoints: [{ addresses: ["2001:db8::1"] }] });
    expectError(validateEndpointSlice(next, old), "addressType", 'Invalid value: "IPv6": field is immutable');
    expectNoError(validateEndpointSlice(es(), old));
  });
  it("rejects addresses of the wrong family", () => {
    expectError(validateEndpointSlice(es({ endpoints: [{ addresses: ["2001:db8::1"] }] })), "endpoints[0].addresses[0]", "must be a valid IPv4 address");
    expectError(validateEndpointSlice(es({ addressType: "IPv6", endpoints: [{ addresses: ["10.0.0.1"] }] })), "endpoints[0].addresses[0]", "must be a valid IPv6 address");
  });
  it("rejects special addresses", () =>
    expectError(validateEndpointSlice(es({ endpoints: [{ addresses: ["127.0.0.1"] }] })), "endpoints[0].addresses[0]", "may not be in the loopback range"));
  it("validates FQDN addresses", () => {
    expectNoError(validateEndpointSlice(es({ addressType: "FQDN", endpoints: [{ addresses: ["db.example.com"] }] })));
    expectError(validateEndpointSlice(es({ addressType: "FQDN", endpoints: [{ addresses: ["localhost"] }] })), "endpoints[0].addresses[0]", "at least two segments");
  });
  it("requires 1..100 addresses per endpoint", () => {
    expectError(validateEndpointSlice(es({ endpoints: [{ addresses: [] }] })), "endpoints[0].addresses", "must contain at least 1 address");
    const many = Array.from({ length: 101 }, (_, i) => `10.0.0.${i + 1}`);
    expectError(validateEndpointSlice(es({ endpoints: [{ addresses: many }] })), "endpoints[0].addresses", "Too many: 101: must have at most 100 items");
  });
  it("allows at most 1000 endpoints", () => {
    const mk = (n: number) => Array.from({ length: n }, (_, i) => ({ addresses: [`10.1.${Math.floor(i / 200)}.${(i % 200) + 1}`] }));
    expectNoError(validateEndpointSlice(es({ endpoints: mk(1000) })));
    expectError(validateEndpointSlice(es({ endpoints: mk(1001) })), "endpoints", "Too many: 1001: must have at most 1000 items");
  });
  it("allows at most 100 ports", () => {
    const mk = (n: number) => Array.from({ length: n }, (_, i) => ({ name: `p${i}`, port: 1000 + i }));
    expectNoError(validateEndpointSlice(es({ ports: mk(100) })));
    expectError(validateEndpointSlice(es({ ports: mk(101) })), "ports", "must have at most 100 items");
  });
  it("requires unique port names", () =>
    expectError(validateEndpointSlice(es({ ports: [{ name: "a", port: 80 }, { name: "a", port: 81 }] })), "ports[1].name", 'Duplicate value: "a"'));
  it("rejects a bad port name and number", () => {
    expectError(validateEndpointSlice(es({ ports: [{ name: "Bad", port: 80 }] })), "ports[0].name", "RFC 1123 label");
    expectError(validateEndpointSlice(es({ ports: [{ name: "a", port: 0 }] })), "ports[0].port", "must be between 1 and 65535, inclusive");
  });
});

describe("Namespace", () => {
  const ns = (name: string) => ({ apiVersion: "v1" as const, kind: "Namespace" as const, metadata: { name } });
  it("accepts a DNS label", () => expectNoError(validateNamespace(ns("prod"))));
  it("rejects a non-label", () => expectError(validateNamespace(ns("Prod.x")), "metadata.name", "a lowercase RFC 1123 label"));
  it("forbids metadata.namespace", () =>
    expectError(validateNamespace({ ...ns("a"), metadata: { name: "a", namespace: "b" } }), "metadata.namespace", "Forbidden: not allowed on this type"));
});

describe("invalidStatus", () => {
  it("builds the upstream 422 Status", () => {
    const errs = check({ ports: [{ port: 0, targetPort: 80 }] }, "x");
    const st = invalidStatus("Service", "x", errs);
    expect(st).toMatchObject({ kind: "Status", apiVersion: "v1", status: "Failure", reason: "Invalid", code: 422, details: { name: "x", kind: "Service" } });
    expect(st.message).toBe('Service "x" is invalid: spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive');
    expect(st.details!.causes).toEqual([{ reason: "FieldValueInvalid", message: "Invalid value: 0: must be between 1 and 65535, inclusive", field: "spec.ports[0].port" }]);
  });
  it("joins several causes in brackets", () => {
    const errs = check({ type: "NodePort", clusterIP: "None", ports: [{ port: 0, targetPort: 80 }] }, "x");
    expect(aggregateMessage(errs)).toMatch(/^\[spec\.clusterIPs\[0\]: Invalid value: "None": may not be set to 'None' for NodePort services, spec\.ports\[0\]\.port: /);
    expect(invalidStatus("Service", "x", errs).message!.startsWith('Service "x" is invalid: [')).toBe(true);
  });
  it("qualifies EndpointSlice with its group", () =>
    expect(invalidStatus("EndpointSlice", "s", [])).toMatchObject({ details: { group: "discovery.k8s.io", kind: "EndpointSlice" } }));
});
