// Graceful restart: flows made through one Dataplane + Programmer are saved, a new pair is
// programmed with the same models in another order (so every id differs), the state is
// restored, and established flows keep their backend, reverse NAT, SNAT port and affinity.

import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { mkdtempSync, rmSync, writeFileSync, readFileSync, existsSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { node, svc, NODE_IP, CLIENT_POD, EXTERNAL, VIP } from "../helpers/node.js";
import { buildFrame, decodeFrame, type FrameSpec } from "../../src/host/frames.js";
import { saveState, restoreState, STATE_VERSION } from "../../src/agent/state.js";
import type { Dataplane } from "../../src/maps/dataplane.js";
import type { ServicePortModel } from "../../src/proxy/programmer.js";
import { CT_FLAG } from "../../src/maps/layout.js";

const BES = ["10.244.1.10", "10.244.1.11", "10.244.1.12", "10.244.1.13"];
const ep = (ip: string, port = 8080) => ({ ip, port, nodeName: "node-b" });
const EXT_IP = "198.51.100.20";
const AFF_VIP = "10.96.0.20";

const models: ServicePortModel[] = [
  svc({ key: "default/web:http/TCP", endpoints: BES.map((b) => ep(b)) }),
  svc({ key: "default/np:http/TCP", clusterIPs: ["10.96.0.30"], nodePort: 30007, externalIPs: [EXT_IP], endpoints: BES.map((b) => ep(b, 9090)) }),
  svc({ key: "default/sticky:http/TCP", clusterIPs: [AFF_VIP], affinityTimeoutSeconds: 600, endpoints: BES.map((b) => ep(b, 7070)) }),
  svc({ key: "default/dns:dns/UDP", protocol: "UDP", port: 53, clusterIPs: ["10.96.0.53"], endpoints: BES.map((b) => ep(b, 5353)) }),
];

const f = (s: FrameSpec) => ({ data: buildFrame(s) });
function send(dp: Dataplane, s: FrameSpec, now: number) {
  const r = dp.process([f(s)], now)[0]!;
  return { ...r, d: r.verdict === "TX" ? decodeFrame(r.data) : undefined };
}
const tcp = (src: string, dst: string, sport: number, dport: number, flags: string): FrameSpec => ({ src, dst, proto: "TCP", sport, dport, flags });

describe("graceful restart state", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "tapvip-state-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Old process: flows of every kind, established. */
  function oldNode(now: number) {
    const a = node({ seed: 7 });
    a.prog.sync(models);
    const flows: Record<string, { backend: string; bport: number; snatPort?: number }> = {};
    // ClusterIP from a local pod: handshake, established.
    for (let i = 0; i < 6; i++) {
      const sp = 40000 + i;
      const s = send(a.dp, tcp(CLIENT_POD, VIP, sp, 80, "S"), now);
      expect(s.reasonName).toBe("new_flow");
      send(a.dp, tcp(s.d!.dst!, CLIENT_POD, 8080, sp, "SA"), now);
      expect(send(a.dp, tcp(CLIENT_POD, VIP, sp, 80, "A"), now).reasonName).toBe("established");
      flows[`pod:${sp}`] = { backend: s.d!.dst!, bport: s.d!.dport! };
    }
    // NodePort and externalIP from outside: masqueraded.
    for (const [dst, dport, name] of [[NODE_IP, 30007, "np"], [EXT_IP, 80, "ext"]] as const) {
      const s = send(a.dp, tcp(EXTERNAL, dst, 50000, dport, "S"), now);
      expect(s.d!.src).toBe(NODE_IP);
      send(a.dp, tcp(s.d!.dst!, NODE_IP, 9090, s.d!.sport!, "SA"), now);
      send(a.dp, tcp(EXTERNAL, dst, 50000, dport, "A"), now);
      flows[name] = { backend: s.d!.dst!, bport: s.d!.dport!, snatPort: s.d!.sport! };
    }
    // Affinity: several clients, each pinned to a backend.
    for (let c = 1; c <= 6; c++) {
      const s = send(a.dp, tcp(`10.244.0.${100 + c}`, AFF_VIP, 41000, 80, "S"), now);
      flows[`aff:${c}`] = { backend: s.d!.dst!, bport: 7070 };
    }
    // UDP.
    const u = send(a.dp, { src: CLIENT_POD, dst: "10.96.0.53", proto: "UDP", sport: 45000, dport: 53, payload: "q" }, now);
    flows.udp = { backend: u.d!.dst!, bport: 5353 };
    return { ...a, flows };
  }

  /** New process: same models, ids allocated in another order (plus a service that came and went). */
  function newNode(seed = 99) {
    const b = node({ seed });
    b.prog.sync([svc({ key: "default/other:x/TCP", clusterIPs: ["10.96.0.99"], endpoints: [ep("10.244.9.9", 1), ep("10.244.9.8", 2)] })]);
    b.prog.sync([...models].reverse());
    return b;
  }

  it("keeps established flows, reverse NAT, SNAT ports and affinity across a restart with new ids", () => {
    const a = oldNode(1000);
    const file = join(dir, "state.bin");
    const saved = saveState(a.dp, file, { now: 1000, wallMs: 5_000_000 });
    expect(saved.conntrack).toBe(a.dp.maps.conntrack.count);
    expect(saved.affinity).toBe(6);
    expect(saved.snat).toBe(2);

    const b = newNode();
    // Ids really differ.
    expect(b.prog.serviceId("default/web:http/TCP")).not.toBe(a.prog.serviceId("default/web:http/TCP"));
    expect(b.prog.backendId(BES[0]!, 8080, "TCP")).not.toBe(a.prog.backendId(BES[0]!, 8080, "TCP"));

    const logs: string[] = [];
    const r = restoreState(b.dp, file, { now: 5, wallMs: 5_002_000, ids: b.prog, log: (l) => logs.push(l) });
    expect(r.ignored).toBeNull();
    expect(r.downtimeSec).toBe(2);
    expect(r.clock).toBe(1002);
    expect(r.restored.conntrack).toBe(saved.conntrack);
    expect(r.restored.affinity).toBe(6);
    expect(r.restored.snat).toBe(2);
    expect(logs.join("\n")).toMatch(/restored \d+ conntrack/);
    expect(existsSync(file)).toBe(false); // consumed

    const now = 6;
    for (let i = 0; i < 6; i++) {
      const sp = 40000 + i;
      const fl = a.flows[`pod:${sp}`]!;
      const fwd = send(b.dp, { ...tcp(CLIENT_POD, VIP, sp, 80, "PA"), payload: "GET /" }, now);
      expect(fwd.reasonName).toBe("established");
      expect([fwd.d!.dst, fwd.d!.dport]).toEqual([fl.backend, 8080]);
      const rep = send(b.dp, tcp(fl.backend, CLIENT_POD, 8080, sp, "PA"), now);
      expect(rep.reasonName).toBe("reply");
      expect([rep.d!.src, rep.d!.sport, rep.d!.dst, rep.d!.dport]).toEqual([VIP, 80, CLIENT_POD, sp]);
    }
    for (const [dst, dport, name] of [[NODE_IP, 30007, "np"], [EXT_IP, 80, "ext"]] as const) {
      const fl = a.flows[name]!;
      const fwd = send(b.dp, tcp(EXTERNAL, dst, 50000, dport, "A"), now);
      expect(fwd.reasonName).toBe("established");
      expect([fwd.d!.src, fwd.d!.sport, fwd.d!.dst, fwd.d!.dport]).toEqual([NODE_IP, fl.snatPort, fl.backend, 9090]);
      const rep = send(b.dp, tcp(fl.backend, NODE_IP, 9090, fl.snatPort!, "A"), now);
      expect(rep.reasonName).toBe("reply");
      expect([rep.d!.src, rep.d!.sport, rep.d!.dst, rep.d!.dport]).toEqual([dst, dport, EXTERNAL, 50000]);
    }
    // Affinity: a new connection of each client goes to its old backend.
    for (let c = 1; c <= 6; c++) {
      const s = send(b.dp, tcp(`10.244.0.${100 + c}`, AFF_VIP, 42000 + c, 80, "S"), now);
      expect(s.reasonName).toBe("new_flow");
      expect(s.d!.dst).toBe(a.flows[`aff:${c}`]!.backend);
    }
    const u = send(b.dp, { src: CLIENT_POD, dst: "10.96.0.53", proto: "UDP", sport: 45000, dport: 53, payload: "q" }, now);
    expect(u.reasonName).toBe("established");
    expect(u.d!.dst).toBe(a.flows.udp!.backend);

    // Connection counts are rebuilt per (new) backend id.
    const sumOld = BES.reduce((n, be) => n + a.dp.maps.backends.get(a.prog.backendId(be, 8080, "TCP")!).activeConns, 0);
    const sumNew = BES.reduce((n, be) => n + b.dp.maps.backends.get(b.prog.backendId(be, 8080, "TCP")!).activeConns, 0);
    expect(sumNew).toBe(sumOld);
  });

  it("converts lifetimes: remaining time on the old clock becomes now + remaining - downtime", () => {
    const a = node({ seed: 3 });
    a.prog.sync(models);
    send(a.dp, tcp(CLIENT_POD, VIP, 40000, 80, "S"), 500); // SYN_SENT: 120 s
    const [[k, v]] = a.dp.maps.conntrack.entries().filter(([, x]) => !(x.flags & CT_FLAG.Reply));
    expect(v.expiresSec).toBe(620);
    const file = join(dir, "life.bin");
    saveState(a.dp, file, { now: 530, wallMs: 0 }); // 90 s left
    const b = newNode();
    restoreState(b.dp, file, { now: 10, wallMs: 30_000, ids: b.prog, log: () => {} }); // down 30 s
    expect(b.dp.maps.conntrack.lookup(k)!.expiresSec).toBe(10 + 90 - 30);
  });

  it("drops flows whose backend is gone, keeps the rest", () => {
    const a = oldNode(1000);
    const file = join(dir, "gone.bin");
    saveState(a.dp, file, { now: 1000 });
    const gone = a.flows["pod:40000"]!.backend;
    const b = node({ seed: 5 });
    b.prog.sync(models.map((m) => ({ ...m, endpoints: m.endpoints.filter((e) => e.ip !== gone) })));
    const r = restoreState(b.dp, file, { now: 1, ids: b.prog, log: () => {} });
    expect(r.dropped.conntrack).toBeGreaterThan(0);
    expect(r.restored.conntrack).toBeGreaterThan(0);
    for (const [, v] of b.dp.maps.conntrack.entries()) {
      const reply = (v.flags & CT_FLAG.Reply) !== 0;
      if (!reply) expect(v.peerAddrBe).not.toBe(gone);
    }
    // A surviving flow still works; the dropped one re-selects as a new flow.
    for (let i = 0; i < 6; i++) {
      const fl = a.flows[`pod:${40000 + i}`]!;
      const fwd = send(b.dp, tcp(CLIENT_POD, VIP, 40000 + i, 80, "A"), 2);
      if (fl.backend === gone) expect(fwd.reasonName).toBe("new_flow");
      else expect([fwd.reasonName, fwd.d!.dst]).toEqual(["established", fl.backend]);
    }
  });

  it("ignores missing, corrupt, truncated and other-version files with a log line", () => {
    const a = oldNode(1000);
    const file = join(dir, "good.bin");
    saveState(a.dp, file, { now: 1000 });
    const good = readFileSync(file);
    const cases: Array<[string, Buffer | null, RegExp]> = [
      ["missing", null, /no saved state/],
      ["garbage", Buffer.from("hello world, not a state file at all......"), /bad magic/],
      ["truncated", good.subarray(0, good.length - 100), /checksum|length/],
      ["flipped", Buffer.from(good.map((x, i) => (i === 200 ? x ^ 1 : x))), /checksum/],
      ["version", (() => { const c = Buffer.from(good); c.writeUInt32LE(STATE_VERSION + 1, 8); return c; })(), /version 2/],
    ];
    for (const [name, bytes, why] of cases) {
      const p = join(dir, `bad-${name}.bin`);
      if (bytes) writeFileSync(p, bytes);
      const logs: string[] = [];
      const b = newNode();
      const r = restoreState(b.dp, p, { now: 1, ids: b.prog, log: (l) => logs.push(l) });
      expect(r.ignored, name).toMatch(why);
      expect(r.restored.conntrack).toBe(0);
      expect(b.dp.maps.conntrack.count).toBe(0);
      if (bytes) expect(logs.join("\n"), name).toMatch(/state: ignoring/);
    }
  });

  it("writes atomically (no temporary file left) and works without a Programmer lookup", () => {
    const a = oldNode(1000);
    const file = join(dir, "atomic.bin");
    writeFileSync(file, "old contents");
    saveState(a.dp, file, { now: 1000 });
    expect(readdirSync(dir).filter((n) => n.includes(".tmp-"))).toEqual([]);
    const b = newNode();
    const r = restoreState(b.dp, file, { now: 1, log: () => {} }); // backend ids from the backends map
    expect(r.dropped.conntrack).toBe(0);
    const fl = a.flows["pod:40001"]!;
    const fwd = send(b.dp, tcp(CLIENT_POD, VIP, 40001, 80, "A"), 2);
    expect([fwd.reasonName, fwd.d!.dst]).toEqual(["established", fl.backend]);
  });
});
