// The DNS server on the real store (the registry of `tapvip serve`, and the HTTP ApiClient), started
// the way the CLI wiring does (startDnsFromFlags), with its Prometheus counters.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import * as prom from "prom-client";
import { startServe, type ServeHandle } from "../../src/store/cli-serve.js";
import { ApiClient } from "../../src/store/client.js";
import { registerDnsMetrics, startDnsFromFlags, type DnsServer } from "../../src/discovery/dns.js";
import { tempDir, freePort } from "../store/fixtures/tmp.js";
import type { StoredObject } from "../../src/store/db.js";

const run = promisify(execFile);
const tmp = tempDir("tapvip-dns-");
let h: ServeHandle;
let client: ApiClient;
let viaRegistry: DnsServer;
let viaHttp: DnsServer;

async function digShort(port: number, ...args: string[]): Promise<string[]> {
  const { stdout } = await run("dig", ["@127.0.0.1", "-p", String(port), "+tries=1", "+time=3", "+short", ...args]);
  return stdout.trim().split("\n").filter(Boolean).sort();
}

async function eventually(fn: () => Promise<boolean>, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 20));
  }
}

beforeAll(async () => {
  h = await startServe({ data: tmp.dir, listen: `127.0.0.1:${await freePort()}`, durability: "normal", controllerBatchMs: 5 });
  client = new ApiClient(h.url);
  await client.create("Namespace", { apiVersion: "v1", kind: "Namespace", metadata: { name: "dnsns" } } as StoredObject);
  await client.create("Service", { apiVersion: "v1", kind: "Service", metadata: { name: "web", namespace: "dnsns" }, spec: { clusterIP: "10.96.5.5", ports: [{ name: "http", port: 80 }] } } as StoredObject);
  await client.create("Service", { apiVersion: "v1", kind: "Service", metadata: { name: "hl", namespace: "dnsns" }, spec: { clusterIP: "None", ports: [{ name: "http", port: 80 }] } } as StoredObject);
  await client.create("EndpointSlice", {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: { name: "hl-1", namespace: "dnsns", labels: { "kubernetes.io/service-name": "hl" } },
    addressType: "IPv4",
    endpoints: [{ addresses: ["10.244.9.1"], hostname: "pod-a", conditions: { ready: true } }],
    ports: [{ name: "http", port: 8080, protocol: "TCP" }],
  } as unknown as StoredObject);
  viaRegistry = (await startDnsFromFlags({ dns: "127.0.0.1:0", clusterDomain: "Example.Cluster." }, h.registry))!;
  viaHttp = (await startDnsFromFlags({ dns: "127.0.0.1:0" }, client))!;
});

afterAll(async () => {
  await viaRegistry?.stop();
  await viaHttp?.stop();
  client?.close();
  await h?.close();
  tmp.cleanup();
});

describe("DNS on the store", () => {
  it("no --dns, no server", async () => {
    expect(await startDnsFromFlags({}, h.registry)).toBeNull();
  });

  it("answers from the registry (custom zone) and over the HTTP API, and follows changes", async () => {
    expect(await digShort(viaRegistry.port, "web.dnsns.svc.example.cluster", "A")).toEqual(["10.96.5.5"]);
    expect(await digShort(viaRegistry.port, "_http._tcp.hl.dnsns.svc.example.cluster", "SRV")).toEqual(["0 100 8080 pod-a.hl.dnsns.svc.example.cluster."]);
    expect(await digShort(viaHttp.port, "web.dnsns.svc.cluster.local", "A")).toEqual(["10.96.5.5"]);
    expect(await digShort(viaHttp.port, "pod-a.hl.dnsns.svc.cluster.local", "A")).toEqual(["10.244.9.1"]);
    await client.create("Service", { apiVersion: "v1", kind: "Service", metadata: { name: "late", namespace: "dnsns" }, spec: { clusterIP: "10.96.5.6", ports: [{ port: 80 }] } } as StoredObject);
    await eventually(async () => (await digShort(viaHttp.port, "late.dnsns.svc.cluster.local")).join() === "10.96.5.6");
    await eventually(async () => (await digShort(viaRegistry.port, "late.dnsns.svc.example.cluster")).join() === "10.96.5.6");
    await client.delete("Service", "dnsns", "late");
    await eventually(async () => (await digShort(viaHttp.port, "late.dnsns.svc.cluster.local")).length === 0);
  });

  it("exposes per-type and per-rcode counters to Prometheus", async () => {
    const reg = new prom.Registry();
    registerDnsMetrics(reg, viaRegistry);
    await digShort(viaRegistry.port, "nope.dnsns.svc.example.cluster", "A");
    const text = await reg.metrics();
    expect(text).toMatch(/tapvip_dns_queries_total\{type="A"\} [1-9]/);
    expect(text).toMatch(/tapvip_dns_queries_total\{type="SRV"\} 1/);
    expect(text).toMatch(/tapvip_dns_responses_total\{rcode="NXDOMAIN"\} [1-9]/);
    expect(text).toMatch(/tapvip_dns_events_total\{event="udp"\} [1-9]/);
  });
});
