// The environment the demo starts its pods with (src/demo/topology.ts podEnv, from `tapvip env`
// output): the Service variables of the pod's namespace at the moment it starts, and nothing of
// the caller's environment; a pod that was not started has no environment to exec in.
import { afterEach, describe, expect, it } from "vitest";
import { formatDotenv, parseDotenv, serviceEnv } from "../../src/discovery/env.js";
import { podEnv, podExec, type Pod } from "../../src/demo/topology.js";
import type { Service } from "../../src/store/types.js";

const svc = (name: string, ns: string, spec: Service["spec"]): Service => ({ apiVersion: "v1", kind: "Service", metadata: { name, namespace: ns }, spec });
const pod = (name: string): Pod => ({ ns: `ns-${name}`, ip: "10.244.0.10", name });

describe("pod environment", () => {
  afterEach(() => {
    delete process.env.TAPVIP_TEST_LEAK;
  });

  it("parseDotenv reads what tapvip env prints", () => {
    const pairs = serviceEnv([svc("my-service", "default", { clusterIP: "10.0.171.239", ports: [{ name: "http", port: 80 }] })], "default");
    expect(parseDotenv(formatDotenv(pairs))).toEqual(pairs);
    expect(parseDotenv("A=b=c\n\nD=\n")).toEqual([["A", "b=c"], ["D", ""]]);
    expect(() => parseDotenv("no equals sign\n")).toThrow(/KEY=VALUE/);
  });

  it("a pod started before a Service lacks its variables, one started after has them", () => {
    const kube = svc("kubernetes", "default", { clusterIP: "10.0.0.1", ports: [{ name: "https", port: 443 }] });
    const mine = svc("my-service", "default", { clusterIP: "10.0.171.239", ports: [{ port: 80 }] });
    // what `tapvip env -n default` prints at each moment, as the demo reads it
    const before = parseDotenv(formatDotenv(serviceEnv([kube], "default")));
    const after = parseDotenv(formatDotenv(serviceEnv([kube, mine], "default")));
    const early = podEnv(pod("myapp-1"), before);
    const late = podEnv(pod("client"), after);
    expect(early.KUBERNETES_SERVICE_HOST).toBe("10.0.0.1");
    expect(early.MY_SERVICE_SERVICE_HOST).toBeUndefined();
    expect(late).toMatchObject({ MY_SERVICE_SERVICE_HOST: "10.0.171.239", MY_SERVICE_SERVICE_PORT: "80", MY_SERVICE_PORT: "tcp://10.0.171.239:80", KUBERNETES_SERVICE_PORT_HTTPS: "443" });
    expect([early.HOSTNAME, late.HOSTNAME]).toEqual(["myapp-1", "client"]);
    expect(late.PATH).toBe(process.env.PATH);
  });

  it("nothing of the caller's environment leaks into a pod's", () => {
    process.env.TAPVIP_TEST_LEAK = "1";
    const env = podEnv(pod("client"), [["MY_SERVICE_SERVICE_HOST", "10.0.0.9"]]);
    expect(Object.keys(env).sort()).toEqual(["HOSTNAME", "MY_SERVICE_SERVICE_HOST", "PATH"]);
  });

  it("exec in a pod that was not started (no environment) is refused", () => {
    expect(() => podExec(pod("client"), ["true"])).toThrow(/not been started/);
  });
});
