// The seed's Service examples (/work/shared/seed/service-examples.yaml) parse and are valid after defaulting.
import { describe, it, expect } from "vitest";
import { readManifests } from "../../src/store/manifests.js";
import { defaultEndpoints, defaultService } from "../../src/store/defaults.js";
import { validateEndpoints, validateNamespace, validateService } from "../../src/store/validation.js";

const SEED = "/work/shared/seed/service-examples.yaml";

describe("seed examples", () => {
  it("parses every document of the seed", async () => {
    const objs = await readManifests(SEED);
    expect(objs.map((o) => `${o.kind}/${o.metadata.namespace ?? ""}/${o.metadata.name}`)).toEqual([
      "Service/default/my-service",
      "Service/default/my-service-manual",
      "Endpoints/default/my-service-manual",
      "Service/default/my-service-multiport",
      "Service/default/my-service-nodeport",
      "Service/default/my-service-lb",
      "Namespace//prod",
      "Service/prod/my-service",
      "Service/default/my-service-externalip",
    ]);
  });
  it("are all valid after defaulting", async () => {
    const objs = await readManifests(SEED);
    for (const o of objs) {
      const errs =
        o.kind === "Service" ? validateService(defaultService(o))
        : o.kind === "Endpoints" ? validateEndpoints(defaultEndpoints(o))
        : o.kind === "Namespace" ? validateNamespace(o)
        : [];
      expect(errs.map((e) => e.message), `${o.kind}/${o.metadata.name}`).toEqual([]);
    }
  });
  it("keeps the LoadBalancer example's pinned clusterIP", async () => {
    const lb = (await readManifests(SEED)).find((o) => o.metadata.name === "my-service-lb");
    expect(lb?.kind).toBe("Service");
    if (lb?.kind !== "Service") return;
    const d = defaultService(lb);
    expect(d.spec!.clusterIPs).toEqual(["10.0.171.239"]);
    expect(d.spec!.externalTrafficPolicy).toBe("Cluster");
    expect(d.spec!.allocateLoadBalancerNodePorts).toBe(true);
  });
});
