// The agent's admin server over HTTP on 127.0.0.1, and the CLI client side (`tapvip ct list`,
// `tapvip lb list`).

import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { request } from "node:http";
import { node, svc, CLIENT_POD, VIP } from "../helpers/node.js";
import { buildFrame } from "../../src/host/frames.js";
import { startAdmin, fetchCt, fetchLb, ctMain, lbMain, parseBindAddress, type AdminServer } from "../../src/agent/admin.js";
import { conntrackList, conntrackText, lbList, lbText, portView, type ProgrammerView } from "../../src/agent/views.js";
import { createMetrics } from "../../src/agent/metrics.js";
import { ProxyHealth } from "../../src/agent/healthcheck.js";

const BE1 = "10.244.1.10";
const ep = (ip: string, port = 8080) => ({ ip, port, nodeName: "node-b" });

function http(port: number, path: string, opts: { method?: string; accept?: string } = {}): Promise<{ status: number; type?: string; body: string }> {
  return new Promise((resolve, reject) => {
    request({ host: "127.0.0.1", port, path, method: opts.method ?? "GET", agent: false, headers: opts.accept ? { Accept: opts.accept } : {} }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode!, type: res.headers["content-type"], body }));
    }).on("error", reject).end();
  });
}

describe("admin server", () => {
  const { dp, prog } = node();
  const models = [svc({ nodePort: 30007, endpoints: [ep(BE1)] })];
  const view: ProgrammerView = () => models.map((m) => portView(m, prog.serviceId(m.key)!));
  let now = 1000;
  const health = new ProxyHealth();
  let admin: AdminServer;
  let bare: AdminServer;

  beforeAll(async () => {
    prog.sync(models);
    dp.process([
      { data: buildFrame({ src: CLIENT_POD, dst: VIP, proto: "TCP", sport: 40000, dport: 80, flags: "S" }) },
      { data: buildFrame({ src: CLIENT_POD, dst: VIP, proto: "TCP", sport: 40001, dport: 80, flags: "S" }) },
    ], 1000);
    const { registry } = createMetrics({ dp, programmerView: view });
    admin = await startAdmin({ dp, programmerView: view, now: () => now, registry, health, host: "127.0.0.1", port: 0 });
    bare = await startAdmin({ dp, programmerView: view, now: () => now, port: 0 });
  });
  afterAll(async () => {
    await admin?.close();
    await bare?.close();
  });

  it("GET /ct: text like conntrack -L, JSON on request", async () => {
    now = 1010;
    const t = await http(admin.port, "/ct");
    expect(t.status).toBe(200);
    expect(t.type).toBe("text/plain; charset=utf-8");
    expect(t.body).toBe(conntrackText(conntrackList(dp, { now: 1010, programmerView: view })));
    expect(t.body).toMatch(/^tcp {6}6 110 SYN_SENT src=10\.244\.0\.5 dst=10\.96\.0\.10 sport=40000 dport=80 \[UNREPLIED\]/);
    expect(t.body).toContain("tapvip: 2 flow entries have been shown.");

    const j = await http(admin.port, "/ct?format=json");
    expect(j.type).toBe("application/json");
    const parsed = JSON.parse(j.body);
    expect(parsed.now).toBe(1010);
    expect(parsed.flows.map((f: { original: { sport: number } }) => f.original.sport)).toEqual([40000, 40001]);
    const viaAccept = await http(admin.port, "/ct", { accept: "application/json" });
    expect(JSON.parse(viaAccept.body)).toEqual(parsed);
    expect((await http(admin.port, "/ct?format=yaml")).status).toBe(400);
  });

  it("GET /lb: services → frontends → backends", async () => {
    const t = await http(admin.port, "/lb");
    expect(t.status).toBe(200);
    expect(t.body).toBe(lbText(lbList(dp, view)));
    expect(t.body).toContain("0.0.0.0:30007/TCP  NodePort");
    const j = JSON.parse((await http(admin.port, "/lb?format=json")).body);
    expect(j.services).toHaveLength(1);
    expect(j.services[0]).toMatchObject({ key: "default/web:http/TCP", backends: [{ addr: BE1, port: 8080, flows: 2 }] });
  });

  it("GET /metrics, /healthz; 404 and 405", async () => {
    const m = await http(admin.port, "/metrics");
    expect(m.status).toBe(200);
    expect(m.type).toBe("text/plain; version=0.0.4; charset=utf-8");
    expect(m.body).toContain("tapvip_conntrack_entries 4\n");
    expect(m.body).toContain('tapvip_service_new_flows_total{namespace="default",name="web",port="80",protocol="TCP",port_name="http"} 2');

    const h = await http(admin.port, "/healthz");
    expect(h.status).toBe(200);
    expect(Object.keys(JSON.parse(h.body))).toEqual(["lastUpdated", "currentTime", "nodeEligible"]);
    expect(await http(bare.port, "/healthz")).toMatchObject({ status: 200, body: "ok\n" });
    expect((await http(bare.port, "/metrics")).status).toBe(404);
    expect((await http(admin.port, "/nothing")).status).toBe(404);
    expect((await http(admin.port, "/ct", { method: "POST" })).status).toBe(405);
    const head = await http(admin.port, "/lb", { method: "HEAD" });
    expect(head).toMatchObject({ status: 200, body: "" });
  });

  it("fetchCt / fetchLb and the CLI commands", async () => {
    now = 1010;
    expect(await fetchCt(admin.url)).toBe(conntrackText(conntrackList(dp, { now: 1010, programmerView: view })));
    expect(JSON.parse(await fetchLb(admin.url + "/", "json")).services[0].svcId).toBe(prog.serviceId("default/web:http/TCP"));

    let printed = "";
    expect(await ctMain(["list", "--admin", admin.url], (s) => (printed += s))).toBe(0);
    expect(printed).toContain("[UNREPLIED]");
    printed = "";
    expect(await lbMain(["list", "--admin", admin.url, "-o", "json"], (s) => (printed += s))).toBe(0);
    expect(JSON.parse(printed).services).toHaveLength(1);
    await expect(lbMain(["show", "--admin", admin.url])).rejects.toThrow(/expected "list"/);
    await expect(ctMain(["list", "--admin", admin.url, "-o", "yaml"])).rejects.toThrow(/-o must be text or json/);
  });

  it("a clear error when no agent answers", async () => {
    const dead = await startAdmin({ dp, programmerView: view, now: () => now, port: 0 });
    const url = dead.url;
    await dead.close();
    await expect(fetchCt(url)).rejects.toThrow(/cannot reach the tapvip agent's admin server at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
  });
});

describe("parseBindAddress", () => {
  it("host:port, [v6]:port, :port, port; empty or off disables", () => {
    expect(parseBindAddress("127.0.0.1:10249")).toEqual({ host: "127.0.0.1", port: 10249 });
    expect(parseBindAddress("0.0.0.0:10256")).toEqual({ host: "0.0.0.0", port: 10256 });
    expect(parseBindAddress("[::1]:9000")).toEqual({ host: "::1", port: 9000 });
    expect(parseBindAddress(":9000")).toEqual({ host: "127.0.0.1", port: 9000 });
    expect(parseBindAddress("9000", "0.0.0.0")).toEqual({ host: "0.0.0.0", port: 9000 });
    expect(parseBindAddress("")).toBeNull();
    expect(parseBindAddress("off")).toBeNull();
    expect(() => parseBindAddress("localhost:99999")).toThrow(/invalid bind address/);
    expect(() => parseBindAddress("host:")).toThrow(/invalid bind address/);
  });
});
