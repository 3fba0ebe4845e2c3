// End to end, bulk TCP through a ClusterIP on both datapaths (the vitest projects run this file
// with TAPVIP_OFFLOAD on and off): a 48 MiB download and a 24 MiB upload arrive byte for byte
// (sha256 compared), a client's external-IP download is masqueraded both ways, and with
// offloads on the agent really saw GSO super-frames (its /metrics), while the plain path saw
// none and no frame above the MTU.
//
//   client pod ── node (tapvip run, TAP) ── pod1 10.244.0.10 :8080 bulk server
//   external ─────┘

import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { mkdtempSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { netnsUnavailable, cleanupAll, sweepStale, nsSpawn, nsExec } from "../helpers/netns.js";
import { buildBox, waitForOutput, podYaml, Agent, type Box } from "../../src/demo/topology.js";

const skip = netnsUnavailable();
const ADMIN_PORT = 10349;

// GET /bulk?mb=N: N MiB of a fixed pattern; POST /sha: sha256 and length of the body.
const SERVER = `
const http = require("http"), crypto = require("crypto");
const block = Buffer.alloc(1 << 20);
for (let i = 0; i < block.length; i++) block[i] = (i * 131 + (i >> 11)) & 0xff;
http.createServer((req, res) => {
  if (req.method === "POST") {
    const h = crypto.createHash("sha256"); let n = 0;
    req.on("data", (d) => { h.update(d); n += d.length; });
    req.on("end", () => res.end(h.digest("hex") + " " + n));
    return;
  }
  const mb = Number(new URL(req.url, "http://x").searchParams.get("mb") || 1);
  res.writeHead(200, { "content-length": mb << 20 });
  let left = mb;
  const more = () => { while (left > 0) { left--; if (!res.write(block)) return res.once("drain", more); } res.end(); };
  more();
}).listen(8080, process.argv[1], () => console.log("ready"));`;

const SERVICE = `
apiVersion: v1
kind: Service
metadata: {name: bulk, namespace: default}
spec:
  selector: {app: bulk}
  ports: [{port: 80, targetPort: 8080}]
  externalIPs: [203.0.113.81]
`;

/** sha256 of the same pattern, computed here. */
async function patternSha(mb: number): Promise<string> {
  const { createHash } = await import("node:crypto");
  const block = Buffer.alloc(1 << 20);
  for (let i = 0; i < block.length; i++) block[i] = (i * 131 + (i >> 11)) & 0xff;
  const h = createHash("sha256");
  for (let i = 0; i < mb; i++) h.update(block);
  return h.digest("hex");
}

const offload = process.env.TAPVIP_OFFLOAD ?? "on";

describe.skipIf(skip !== null)(`bulk TCP through a ClusterIP, offload ${offload} (${skip ?? "root"})`, () => {
  let box: Box;
  let agent: Agent;
  let vip = "";

  beforeAll(async () => {
    sweepStale();
    box = buildBox(["pod1", "client"]);
    await waitForOutput(nsSpawn(box.pods[0]!.ns, ["node", "-e", SERVER, box.pods[0]!.ip]), "ready", 10_000);
    agent = new Agent(box, { tap: "tv8", apiPort: 16560, dataDir: join(mkdtempSync(join(tmpdir(), "tapvip-bulk-")), "data"),
      extraArgs: ["--admin-address", `127.0.0.1:${ADMIN_PORT}`, "--healthz-address", "off"] });
    await agent.start();
    agent.apply([SERVICE, podYaml("pod1", box.pods[0]!.ip, { labels: { app: "bulk" } })].join("---"));
    vip = agent.get("service", "bulk").spec.clusterIP as string;
    for (let i = 0; i < 100; i++) {
      try {
        nsExec(box.pods[1]!.ns, ["curl", "-sS", "--max-time", "1", "-o", "/dev/null", `http://${vip}/bulk?mb=1`]);
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }, 60_000);

  afterAll(() => {
    agent?.child?.kill("SIGKILL");
    cleanupAll();
  });

  const metric = (name: string): number => {
    const text = nsExec(box.node, ["curl", "-sS", `http://127.0.0.1:${ADMIN_PORT}/metrics`]);
    const line = text.split("\n").find((l) => l.startsWith(name + " "));
    return line ? Number(line.split(" ")[1]) : NaN;
  };

  it("a 48 MiB download and a 24 MiB upload arrive intact", async () => {
    const down = nsExec(box.pods[1]!.ns, ["sh", "-c", `curl -sS --max-time 60 http://${vip}/bulk?mb=48 | sha256sum`], { timeoutMs: 70_000 });
    expect(down.split(" ")[0]).toBe(await patternSha(48));
    const up = nsExec(box.pods[1]!.ns, ["sh", "-c",
      `head -c ${24 << 20} /dev/zero | curl -sS --max-time 60 --data-binary @- -H 'content-type: application/octet-stream' http://${vip}/sha`], { timeoutMs: 70_000 });
    const { createHash } = await import("node:crypto");
    expect(up.trim()).toBe(`${createHash("sha256").update(Buffer.alloc(24 << 20)).digest("hex")} ${24 << 20}`);
  }, 120_000);

  it("an external client's download through an externalIP is masqueraded both ways and intact", async () => {
    const down = nsExec(box.ext, ["sh", "-c", "curl -sS --max-time 60 http://203.0.113.81/bulk?mb=16 | sha256sum"], { timeoutMs: 70_000 });
    expect(down.split(" ")[0]).toBe(await patternSha(16));
  }, 90_000);

  it(offload === "off" ? "the plain path sees no super-frame and nothing above the MTU" : "the agent saw GSO super-frames", () => {
    const supers = metric("tapvip_tap_rx_super_frames_total");
    const rx = metric("tapvip_tap_rx_frames_total");
    const upToMtu = metric('tapvip_tap_rx_frame_bytes_bucket{le="1514"}');
    expect(rx).toBeGreaterThan(1000);
    if (offload === "off") {
      expect(supers).toBe(0);
      expect(upToMtu).toBe(rx);
    } else {
      expect(supers).toBeGreaterThan(100);
      // 88 MiB moved in far fewer frames than MTU-sized ones would need (~63k).
      expect(rx).toBeLessThan(40_000);
    }
    expect(metric("tapvip_tap_write_errors_total")).toBe(0);
  });
});
