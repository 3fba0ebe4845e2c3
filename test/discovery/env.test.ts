// Service environment variables (§6) against the exact upstream format (kubelet's
// envvars.FromServices), and `tapvip env` against a running API server.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatDotenv, serviceEnv, envMain } from "../../src/discovery/env.js";
import type { Service } from "../../src/store/types.js";
import { startServe, type ServeHandle } from "../../src/store/cli-serve.js";
import { ApiClient } from "../../src/store/client.js";
import { tempDir, freePort } from "../store/fixtures/tmp.js";
import type { StoredObject } from "../../src/store/db.js";

const svc = (name: string, ns: string, spec: Service["spec"]): Service => ({ apiVersion: "v1", kind: "Service", metadata: { name, namespace: ns }, spec });

describe("serviceEnv", () => {
  it("the seed's redis-master example, exactly", () => {
    const env = serviceEnv([svc("redis-master", "default", { clusterIP: "10.0.0.11", ports: [{ port: 6379, protocol: "TCP" }] })], "default");
    expect(formatDotenv(env)).toBe(
      [
        "REDIS_MASTER_SERVICE_HOST=10.0.0.11",
        "REDIS_MASTER_SERVICE_PORT=6379",
        "REDIS_MASTER_PORT=tcp://10.0.0.11:6379",
        "REDIS_MASTER_PORT_6379_TCP=tcp://10.0.0.11:6379",
        "REDIS_MASTER_PORT_6379_TCP_PROTO=tcp",
        "REDIS_MASTER_PORT_6379_TCP_PORT=6379",
        "REDIS_MASTER_PORT_6379_TCP_ADDR=10.0.0.11",
        "",
      ].join("\n"),
    );
  });

  it("multi-port with named ports (upstream TestFromServices order)", () => {
    const env = serviceEnv(
      [svc("super-ipv4", "ns", { clusterIP: "9.8.7.6", ports: [{ name: "u-d-p", port: 8083, protocol: "UDP" }, { name: "t-c-p", port: 8084, protocol: "TCP" }] })],
      "ns",
    );
    expect(env).toEqual([
      ["SUPER_IPV4_SERVICE_HOST", "9.8.7.6"],
      ["SUPER_IPV4_SERVICE_PORT", "8083"],
      ["SUPER_IPV4_SERVICE_PORT_U_D_P", "8083"],
      ["SUPER_IPV4_SERVICE_PORT_T_C_P", "8084"],
      ["SUPER_IPV4_PORT", "udp://9.8.7.6:8083"],
      ["SUPER_IPV4_PORT_8083_UDP", "udp://9.8.7.6:8083"],
      ["SUPER_IPV4_PORT_8083_UDP_PROTO", "udp"],
      ["SUPER_IPV4_PORT_8083_UDP_PORT", "8083"],
      ["SUPER_IPV4_PORT_8083_UDP_ADDR", "9.8.7.6"],
      ["SUPER_IPV4_PORT_8084_TCP", "tcp://9.8.7.6:8084"],
      ["SUPER_IPV4_PORT_8084_TCP_PROTO", "tcp"],
      ["SUPER_IPV4_PORT_8084_TCP_PORT", "8084"],
      ["SUPER_IPV4_PORT_8084_TCP_ADDR", "9.8.7.6"],
    ]);
  });

  it("a UDP Service, default protocol TCP, IPv6 in brackets", () => {
    const env = serviceEnv(
      [
        svc("dns", "ns", { clusterIP: "10.96.0.10", ports: [{ port: 53, protocol: "UDP" }] }),
        svc("v6", "ns", { clusterIP: "2001:db8::1", ports: [{ name: "http", port: 80 }] }),
      ],
      "ns",
    );
    expect(formatDotenv(env)).toBe(
      [
        "DNS_SERVICE_HOST=10.96.0.10",
        "DNS_SERVICE_PORT=53",
        "DNS_PORT=udp://10.96.0.10:53",
        "DNS_PORT_53_UDP=udp://10.96.0.10:53",
        "DNS_PORT_53_UDP_PROTO=udp",
        "DNS_PORT_53_UDP_PORT=53",
        "DNS_PORT_53_UDP_ADDR=10.96.0.10",
        "V6_SERVICE_HOST=2001:db8::1",
        "V6_SERVICE_PORT=80",
        "V6_SERVICE_PORT_HTTP=80",
        "V6_PORT=tcp://[2001:db8::1]:80",
        "V6_PORT_80_TCP=tcp://[2001:db8::1]:80",
        "V6_PORT_80_TCP_PROTO=tcp",
        "V6_PORT_80_TCP_PORT=80",
        "V6_PORT_80_TCP_ADDR=2001:db8::1",
        "",
      ].join("\n"),
    );
  });

  it("only this namespace's Services with a clusterIP, plus default/kubernetes", () => {
    const all = [
      svc("kubernetes", "default", { clusterIP: "10.96.0.1", ports: [{ name: "https", port: 443 }] }),
      svc("other", "default", { clusterIP: "10.96.0.2", ports: [{ port: 80 }] }),
      svc("headless", "ns", { clusterIP: "None", ports: [{ port: 80 }] }),
      svc("ext", "ns", { type: "ExternalName", externalName: "example.com" }),
      svc("web", "ns", { clusterIP: "10.96.0.3", ports: [{ port: 8080 }] }),
    ];
    const names = serviceEnv(all, "ns").map(([k]) => k);
    expect(names.filter((k) => k.endsWith("_SERVICE_HOST"))).toEqual(["KUBERNETES_SERVICE_HOST", "WEB_SERVICE_HOST"]);
    expect(serviceEnv(all, "ns").slice(0, 3)).toEqual([
      ["KUBERNETES_SERVICE_HOST", "10.96.0.1"],
      ["KUBERNETES_SERVICE_PORT", "443"],
      ["KUBERNETES_SERVICE_PORT_HTTPS", "443"],
    ]);
    // a same-named Service in the pod's namespace wins over default/kubernetes
    const own = serviceEnv([...all, svc("kubernetes", "ns", { clusterIP: "10.96.0.9", ports: [{ port: 1 }] })], "ns");
    expect(own.find(([k]) => k === "KUBERNETES_SERVICE_HOST")?.[1]).toBe("10.96.0.9");
    expect(serviceEnv(all, "default").filter(([k]) => k.endsWith("_SERVICE_HOST")).map(([k]) => k)).toEqual(["KUBERNETES_SERVICE_HOST", "OTHER_SERVICE_HOST"]);
  });
});

describe("tapvip env", () => {
  const tmp = tempDir("tapvip-env-");
  let h: ServeHandle;
  let client: ApiClient;
  beforeAll(async () => {
    h = await startServe({ data: tmp.dir, listen: `127.0.0.1:${await freePort()}`, durability: "normal", controllerBatchMs: 5 });
    client = new ApiClient(h.url);
    await client.create("Namespace", { apiVersion: "v1", kind: "Namespace", metadata: { name: "envns" } } as StoredObject);
    await client.create("Service", svc("redis-master", "envns", { clusterIP: "10.96.0.11", ports: [{ port: 6379 }] }) as unknown as StoredObject);
    await client.create("Service", svc("dns", "envns", { clusterIP: "10.96.0.12", ports: [{ name: "dns", port: 53, protocol: "UDP" }, { name: "dns-tcp", port: 53, protocol: "TCP" }] }) as unknown as StoredObject);
    await client.create("Service", svc("hl", "envns", { clusterIP: "None", ports: [{ port: 80 }] }) as unknown as StoredObject);
  });
  afterAll(async () => {
    client?.close();
    await h?.close();
    tmp.cleanup();
  });

  const run = async (args: string[]): Promise<{ code: number; out: string; err: string }> => {
    let out = "";
    let err = "";
    const code = await envMain(args, { out: (t) => (out += t), err: (t) => (err += t) });
    return { code, out, err };
  };

  it("prints dotenv and json for a namespace", async () => {
    const r = await run(["-n", "envns", "--server", h.url]);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    const lines = r.out.trimEnd().split("\n");
    expect(lines).toContain("REDIS_MASTER_PORT_6379_TCP=tcp://10.96.0.11:6379");
    expect(lines).toContain("DNS_SERVICE_PORT_DNS_TCP=53");
    expect(lines).toContain("DNS_PORT=udp://10.96.0.12:53");
    expect(lines.some((l) => l.startsWith("HL_"))).toBe(false);
    const hasKube = (await client.list("Service", { namespace: "default" })).items.some((o) => o.metadata.name === "kubernetes");
    expect(lines.some((l) => l.startsWith("KUBERNETES_SERVICE_HOST="))).toBe(hasKube);
    const j = await run(["-n", "envns", "--server", h.url, "--format", "json"]);
    expect(j.code).toBe(0);
    expect(JSON.parse(j.out)).toMatchObject({ REDIS_MASTER_SERVICE_HOST: "10.96.0.11", DNS_PORT_53_UDP_PROTO: "udp" });
  });

  it("rejects a bad format", async () => {
    const r = await run(["-n", "envns", "--server", h.url, "--format", "xml"]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/unsupported format/);
  });
});
