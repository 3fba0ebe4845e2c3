// Capture: a fake datapath feeds batches (descriptors + frames in one buffer, as the TAP loop
// does with WASM memory) through a CaptureTap; captureHandler serves them on 127.0.0.1 and
// captureMain writes the pcap file, which readPcap and tcpdump read back.

import { describe, it, expect, beforeAll, afterAll, afterEach } from "vitest";
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CaptureTap, captureHandler, captureMain } from "../../src/agent/capture.js";
import { buildFrame, decodeFrame } from "../../src/host/frames.js";
import { readPcap } from "../../src/host/pcap/reader.js";
import { verdictMask } from "../../src/host/tap.js";
import { VERDICTS, type Verdict } from "../../src/maps/verdicts.js";

const FRAME_AREA = 4096;
const CAP = 2048;

/** The TAP loop's shape: read into memory → pre → "pipeline" → post with the write mask. */
class FakeDatapath {
  readonly mem = new ArrayBuffer(FRAME_AREA + 64 * CAP);
  readonly mask = verdictMask("PASS", "TX", "REPLY");
  batches = 0;
  constructor(readonly capture: CaptureTap) {}
  batch(frames: Array<{ data: Uint8Array; verdict: Verdict; out?: Uint8Array }>): void {
    const bytes = new Uint8Array(this.mem);
    const dv = new DataView(this.mem);
    frames.forEach((f, i) => {
      const off = FRAME_AREA + i * CAP;
      bytes.set(f.data, off);
      dv.setUint32(i * 16, off, true);
      dv.setUint32(i * 16 + 4, f.data.length, true);
      dv.setUint32(i * 16 + 8, CAP, true);
      dv.setUint32(i * 16 + 12, 0, true);
    });
    if (this.capture.active) this.capture.pre(this.mem, 0, frames.length);
    frames.forEach((f, i) => {
      const off = FRAME_AREA + i * CAP;
      if (f.out) {
        bytes.set(f.out, off);
        dv.setUint32(i * 16 + 4, f.out.length, true);
      }
      dv.setUint32(i * 16 + 12, VERDICTS.indexOf(f.verdict) | (7 << 8), true);
    });
    if (this.capture.active) this.capture.post(this.mem, 0, frames.length, this.mask);
    this.batches++;
  }
}

const frame = (n: number, dst = "10.96.0.10") => buildFrame({ src: "10.244.0.5", dst, proto: "TCP", sport: 40000 + n, dport: 80, flags: "S" });

describe("capture", () => {
  let dir: string;
  let server: Server;
  let url: string;
  let tap: CaptureTap;
  let dp: FakeDatapath;
  let feeder: NodeJS.Timeout | null = null;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "tapvip-capture-"));
    tap = new CaptureTap();
    dp = new FakeDatapath(tap);
    const handler = captureHandler(tap);
    server = createServer((req, res) => {
      if (new URL(req.url!, "http://x").pathname === "/capture") return handler(req, res);
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterEach(() => {
    if (feeder) clearInterval(feeder);
    feeder = null;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  /** Feeds a batch every 5 ms: frame k+0 TX (translated), k+1 DROP, k+2 PASS. */
  function feed(): void {
    let k = 0;
    feeder = setInterval(() => {
      dp.batch([
        { data: frame(k), verdict: "TX", out: frame(k, "10.244.1.10") },
        { data: frame(k + 1), verdict: "DROP" },
        { data: frame(k + 2), verdict: "PASS" },
      ]);
      k += 3;
    }, 5);
  }

  it("is idle (active false) with no capture, and the datapath never calls it then", () => {
    expect(tap.active).toBe(false);
    dp.batch([{ data: frame(0), verdict: "TX" }]);
    expect(tap.subscribers).toBe(0);
  });

  it("pre: every frame read, before the pipeline; the file reads back with readPcap and tcpdump", async () => {
    const out = join(dir, "pre.pcap");
    feed();
    const logs: string[] = [];
    expect(await captureMain(["-o", out, "--where", "pre", "--count", "9", "--admin", url], { log: (l) => logs.push(l) })).toBe(0);
    expect(logs.at(-1)).toMatch(/9 frames written/);
    const r = await readPcap(out);
    expect(r.frames).toHaveLength(9);
    const dsts = r.frames.map((f) => decodeFrame(f.data).dst);
    expect(new Set(dsts)).toEqual(new Set(["10.96.0.10"])); // untranslated
    const sports = r.frames.map((f) => decodeFrame(f.data).sport!);
    for (let i = 1; i < sports.length; i++) expect(sports[i]).toBe(sports[i - 1]! + 1); // consecutive, DROP included
    for (const f of r.frames) expect(Math.abs(f.tsSec - Date.now() / 1000)).toBeLessThan(30);
    const text = execFileSync("tcpdump", ["-nn", "-r", out], { stdio: ["ignore", "pipe", "pipe"] }).toString();
    expect(text.trim().split("\n")).toHaveLength(9);
    expect(text).toMatch(/10\.244\.0\.5\.\d+ > 10\.96\.0\.10\.80: Flags \[S\]/);
    await waitIdle();
  });

  it("post: only frames written back (TX translated, PASS), never DROP", async () => {
    const out = join(dir, "post.pcap");
    feed();
    await captureMain(["-o", out, "--where", "post", "--count", "6", "--admin", url], { log: () => {} });
    const r = await readPcap(out);
    expect(r.frames).toHaveLength(6);
    const d = r.frames.map((f) => decodeFrame(f.data));
    for (const x of d) {
      const k = x.sport! - 40000;
      if (k % 3 === 0) expect(x.dst).toBe("10.244.1.10"); // the TX frame after translation
      else expect(k % 3).toBe(2); // PASS; the DROP (k % 3 == 1) never appears
    }
    const text = execFileSync("tcpdump", ["-nn", "-r", out], { stdio: ["ignore", "pipe", "pipe"] }).toString();
    expect(text).toMatch(/> 10\.244\.1\.10\.80/);
    await waitIdle();
  });

  it("Ctrl-C (abort) ends an unbounded capture with a valid file; two captures at once", async () => {
    const a = join(dir, "a.pcap");
    const b = join(dir, "b.pcap");
    feed();
    const ac = new AbortController();
    const p1 = captureMain(["-o", a, "--admin", url], { signal: ac.signal, log: () => {} });
    const p2 = captureMain(["-o", b, "--where", "post", "-c", "4", "--admin", url], { log: () => {} });
    await p2;
    await new Promise((r) => setTimeout(r, 100));
    ac.abort();
    await p1;
    const ra = await readPcap(a);
    expect(ra.frames.length).toBeGreaterThan(5);
    expect((await readPcap(b)).frames).toHaveLength(4);
    execFileSync("tcpdump", ["-nn", "-r", a], { stdio: "ignore" });
    await waitIdle();
  });

  it("rejects bad parameters; the client reports an unreachable agent", async () => {
    const status = await new Promise<number>((resolve, reject) => {
      request(`${url}/capture?where=middle`, (res) => { res.resume(); resolve(res.statusCode!); }).on("error", reject).end();
    });
    expect(status).toBe(400);
    await expect(captureMain(["-o", join(dir, "x.pcap"), "--where", "middle"])).rejects.toThrow(/--where must be pre or post/);
    await expect(captureMain(["-o", join(dir, "y.pcap"), "--admin", "http://127.0.0.1:1"], { log: () => {} })).rejects.toThrow(/cannot reach/);
    expect(existsSync(join(dir, "y.pcap"))).toBe(true);
  });

  async function waitIdle(): Promise<void> {
    const t0 = Date.now();
    while (tap.active) {
      if (Date.now() - t0 > 2000) throw new Error("capture still active after the client left");
      await new Promise((r) => setTimeout(r, 10));
    }
  }
});
