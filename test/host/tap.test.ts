// The TAP I/O layer (native/tap.c via src/host/tap.ts) against the real kernel, inside a test
// network namespace: the TAP is created there directly (Tap.open({ netns })), so no TAP ever
// appears in the host namespace. Kernel-side traffic comes from short node processes run with
// `ip netns exec`. Skips when not root or without /dev/net/tun.

import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildFrame, completeChecksum, decodeFrame, decodeVnet, toChecksumPartial, VNET_F_NEEDS_CSUM } from "../../src/host/frames.js";
import { VERDICTS } from "../../src/maps/verdicts.js";
import { addonPath, DESC_SIZE, Tap, verdictMask } from "../../src/host/tap.js";
import { cleanupAll, createNetns, ip, nsExec, nsIp, nsSpawn, nsSysctl, onCleanup, sweepStale, uniqueName, netnsUnavailable } from "../helpers/netns.js";

const unavailable = netnsUnavailable();
if (unavailable) console.warn(`test/host/tap.test.ts skipped: ${unavailable}`);

const TAP_IP = "10.77.0.1"; // the namespace's own address on the TAP
const PEER_IP = "10.77.0.2"; // "behind the TAP": a static neighbour, so no ARP
const PEER_MAC = "02:00:00:00:00:02";

// Layout in the memory (as in the dataplane: descriptors, then a frame area of count × cap).
const BATCH = 64;
const CAP = 2048;
const DESCS = 1024;
const FRAMES = 4096;

/** A node one-liner run inside the namespace. */
function nodeIn(ns: string, script: string, timeoutMs = 10_000): string {
  return nsExec(ns, [process.execPath, "-e", script], { timeoutMs });
}

function desc(mem: WebAssembly.Memory, i: number): { off: number; len: number; cap: number; result: number } {
  const dv = new DataView(mem.buffer);
  const d = DESCS + i * DESC_SIZE;
  return { off: dv.getUint32(d, true), len: dv.getUint32(d + 4, true), cap: dv.getUint32(d + 8, true), result: dv.getUint32(d + 12, true) };
}

function setDesc(mem: WebAssembly.Memory, i: number, off: number, len: number, result: number): void {
  const dv = new DataView(mem.buffer);
  const d = DESCS + i * DESC_SIZE;
  dv.setUint32(d, off, true);
  dv.setUint32(d + 4, len, true);
  dv.setUint32(d + 8, CAP, true);
  dv.setUint32(d + 12, result, true);
}

function frameAt(mem: WebAssembly.Memory, i: number): Uint8Array {
  const d = desc(mem, i);
  return new Uint8Array(mem.buffer, d.off, d.len).slice();
}

function drain(tap: Tap, mem: WebAssembly.Memory): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (;;) {
    const n = tap.readBatch(mem, DESCS, BATCH, FRAMES, CAP);
    for (let i = 0; i < n; i++) out.push(frameAt(mem, i));
    if (n === 0) return out;
  }
}

function rxPackets(ns: string, dev: string): { rx: number; txDropped: number } {
  const j = JSON.parse(nsIp(ns, ["-j", "-s", "link", "show", "dev", dev]))[0];
  return { rx: Number(j.stats64.rx.packets), txDropped: Number(j.stats64.tx.dropped) };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([p, new Promise<T>((_, rej) => setTimeout(() => rej(new Error(`timed out: ${what}`)), ms))]);
}

describe.skipIf(!!unavailable)("TAP I/O layer", () => {
  let ns: string;
  let tap: Tap;
  let name: string;
  const mem = new WebAssembly.Memory({ initial: 4 }); // 256 KiB, like a slice of the dataplane's memory

  beforeAll(() => {
    sweepStale();
    ns = createNetns();
    name = uniqueName();
    tap = Tap.open(name, { netns: ns });
    onCleanup(() => tap.close());
    nsIp(ns, ["addr", "add", `${TAP_IP}/24`, "dev", name]);
    nsIp(ns, ["link", "set", name, "up"]);
    nsIp(ns, ["neigh", "replace", PEER_IP, "lladdr", PEER_MAC, "dev", name, "nud", "permanent"]);
  });

  afterAll(() => cleanupAll());

  it("opens the TAP inside the test namespace with its MAC, never in the host namespace", () => {
    expect(tap.name).toBe(name);
    expect(tap.fd).toBeGreaterThan(2);
    expect(tap.mac).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    expect(tap.macBytes[0]! & 1).toBe(0); // unicast
    const link = JSON.parse(nsIp(ns, ["-j", "link", "show", "dev", name]))[0];
    expect(link.address).toBe(tap.mac);
    expect(link.flags).toContain("LOWER_UP"); // held by our fd: carrier on
    expect(tap.readMac()).toBe(tap.mac);
    expect(() => ip(["link", "show", "dev", name])).toThrow(/does not exist/);
  });

  it("a second open of the held TAP fails with EBUSY", () => {
    let err: (Error & { code?: string }) | undefined;
    try {
      Tap.open(name, { netns: ns }).close();
    } catch (e) {
      err = e as Error & { code?: string };
    }
    expect(err?.code).toBe("EBUSY");
    expect(err?.message).toMatch(/TUNSETIFF .*EBUSY/);
  });

  it("readBatch returns 0 when nothing is queued (EAGAIN)", () => {
    drain(tap, mem);
    expect(tap.readBatch(mem, DESCS, BATCH, FRAMES, CAP)).toBe(0);
  });

  it("uv_poll reports readability and readBatch puts the kernel's UDP frames into WASM memory", async () => {
    drain(tap, mem);
    let calls = 0;
    const frames: Uint8Array[] = [];
    const got = new Promise<void>((resolve) => {
      tap.onReadable(() => {
        calls++;
        const n = tap.readBatch(mem, DESCS, BATCH, FRAMES, CAP);
        for (let i = 0; i < n; i++) {
          const d = desc(mem, i);
          expect(d).toEqual({ off: FRAMES + i * CAP, len: d.len, cap: CAP, result: 0 });
          frames.push(frameAt(mem, i));
        }
        if (frames.filter((f) => decodeFrame(f).dport === 9999).length >= 3) resolve();
      });
    });
    nodeIn(
      ns,
      `const s=require('dgram').createSocket('udp4');s.bind(5555,'${TAP_IP}',()=>{let i=0;` +
        `const next=()=>{if(i>=3)return s.close();s.send(Buffer.from('tapvip-'+i++),9999,'${PEER_IP}',next)};next()})`,
    );
    await withTimeout(got, 5000, "3 UDP frames through uv_poll + readBatch");
    tap.pauseReadable();
    expect(calls).toBeGreaterThan(0);
    const udp = frames.filter((f) => decodeFrame(f).dport === 9999);
    udp.forEach((f, i) => {
      const s = decodeFrame(f);
      expect(s).toMatchObject({ ethertype: 0x0800, dstMac: PEER_MAC, srcMac: tap.mac, src: TAP_IP, dst: PEER_IP, proto: "UDP", sport: 5555, dport: 9999 });
      expect(s.badChecksums).toEqual([]); // complete checksums without IFF_VNET_HDR
      expect(new TextDecoder().decode(f.subarray(14 + 20 + 8))).toBe(`tapvip-${i}`);
      expect(f.length).toBe(14 + 20 + 8 + `tapvip-${i}`.length);
    });

    // Paused: traffic arrives but the callback stays quiet; frames wait in the queue.
    const before = calls;
    nodeIn(ns, `const s=require('dgram').createSocket('udp4');s.send('quiet',9999,'${PEER_IP}',()=>s.close())`);
    await new Promise((r) => setTimeout(r, 150));
    expect(calls).toBe(before);
    expect(drain(tap, mem).some((f) => decodeFrame(f).dport === 9999)).toBe(true);
  });

  it("writeBatch writes the frames whose verdict is in the mask and the kernel receives them", async () => {
    const rx = nsSpawn(ns, [
      process.execPath,
      "-e",
      `const s=require('dgram').createSocket('udp4');s.on('message',m=>console.log('got '+m));` +
        `s.bind(7777,'${TAP_IP}',()=>console.log('ready'));setTimeout(()=>process.exit(0),8000)`,
    ]);
    let out = "";
    const ready = new Promise<void>((resolve) => rx.stdout!.on("data", (b: Buffer) => ((out += b), out.includes("ready") && resolve())));
    await withTimeout(ready, 5000, "UDP receiver in the namespace");
    const before = rxPackets(ns, name);

    const u8 = new Uint8Array(mem.buffer);
    const udp = (payload: string, dstMac = tap.mac): Uint8Array =>
      buildFrame({ srcMac: PEER_MAC, dstMac, src: PEER_IP, dst: TAP_IP, proto: "UDP", sport: 9999, dport: 7777, payload });
    const [TX, REPLY, DROP] = (["TX", "REPLY", "DROP"] as const).map((v) => VERDICTS.indexOf(v));
    const frames: Array<[Uint8Array, number]> = [
      [udp("one"), TX! | (16 << 8)],
      [udp("dropped"), DROP! | (43 << 8)],
      [udp("two"), REPLY!],
      [udp("short").subarray(0, 10), TX!], // shorter than an Ethernet header: the kernel refuses it
    ];
    frames.forEach(([f, result], i) => {
      u8.set(f, FRAMES + i * CAP);
      setDesc(mem, i, FRAMES + i * CAP, f.length, result);
    });
    const r = tap.writeBatch(mem, DESCS, frames.length, verdictMask("TX", "REPLY"));
    expect(r).toEqual({ written: 2, errors: 1, short: 0, skipped: 1, lastError: "EINVAL" });

    const done = new Promise<void>((resolve) => {
      const check = (): void => void (out.includes("got two") && out.includes("got one") && resolve());
      rx.stdout!.on("data", check);
      check();
    });
    await withTimeout(done, 5000, "datagrams written into the TAP reach a socket in the namespace");
    await new Promise((res) => setTimeout(res, 100));
    rx.kill("SIGKILL");
    expect(out).not.toContain("dropped");
    expect(rxPackets(ns, name).rx - before.rx).toBeGreaterThanOrEqual(2);
  });

  it("throws clear errors: EBADF with the errno name, descriptors out of range, bad names", async () => {
    const { loadAddon } = await import("../../src/host/tap.js");
    const n = loadAddon();
    expect(() => n.readBatch(1_000_000, mem.buffer, DESCS, 4, FRAMES, CAP)).toThrow(expect.objectContaining({ code: "EBADF", message: expect.stringMatching(/^read: EBADF/) }));
    expect(() => n.writeBatch(1_000_000, new Uint8Array(64), 0, 1, 0xf)).toThrow(expect.objectContaining({ code: "EBADF" }));
    expect(() => tap.readBatch(mem, mem.buffer.byteLength - 8, 1, FRAMES, CAP)).toThrow(RangeError);
    expect(() => tap.readBatch(mem, DESCS, 200, FRAMES, CAP)).toThrow(/frame area/);
    expect(() => tap.readBatch(new Uint8Array(100), 0, 1, 16, 100)).toThrow(RangeError);
    expect(() => Tap.open("x".repeat(16), { netns: ns })).toThrow(/at most 15 bytes/);
    expect(() => Tap.open("tvt-nons", { netns: "tvt-does-not-exist" })).toThrow(expect.objectContaining({ code: "ENOENT" }));
  });

  it("optional flags: IFF_MULTI_QUEUE opens several queues of one TAP, IFF_VNET_HDR opens", () => {
    const mq = uniqueName();
    const q1 = Tap.open(mq, { netns: ns, multiQueue: true });
    try {
      const q2 = Tap.open(mq, { netns: ns, multiQueue: true }); // a second queue, not EBUSY
      expect(q2.mac).toBe(q1.mac);
      q2.close();
    } finally {
      q1.close();
    }
    const v = Tap.open(uniqueName(), { netns: ns, vnetHdr: true, up: true });
    expect(v.readBatch(mem, DESCS, BATCH, FRAMES, CAP)).toBeGreaterThanOrEqual(0);
    v.close();
  });

  it("IFF_VNET_HDR with offloads: the kernel hands over partial checksums, and takes a UDP super-frame that it segments", async () => {
    const vname = uniqueName();
    const v = Tap.open(vname, { netns: ns, vnetHdr: true, up: true });
    onCleanup(() => v.close());
    expect(v.vnetHdrLen).toBe(10);
    const got = v.setOffloads();
    expect(got).toContain("csum");
    expect(got).toContain("tso4");
    const VIP_NET = "10.79.0";
    nsIp(ns, ["addr", "add", `${VIP_NET}.1/24`, "dev", vname]);
    nsIp(ns, ["neigh", "replace", `${VIP_NET}.2`, "lladdr", PEER_MAC, "dev", vname, "nud", "permanent"]);
    const vm = new WebAssembly.Memory({ initial: 80 }); // 5 MiB: 64 KiB slots
    const VCAP = 65_600;
    const drainV = (): Array<{ vnet: Uint8Array; frame: Uint8Array; result: number }> => {
      const out = [];
      for (;;) {
        const n = v.readBatch(vm, 0, 16, 4096, VCAP);
        if (n === 0) return out;
        const dv = new DataView(vm.buffer);
        for (let i = 0; i < n; i++) {
          const off = dv.getUint32(i * 16, true);
          const len = dv.getUint32(i * 16 + 4, true);
          expect(off).toBe(4096 + i * VCAP + 10);
          expect(dv.getUint32(i * 16 + 8, true)).toBe(VCAP - 10);
          out.push({ vnet: new Uint8Array(vm.buffer, off - 10, 10).slice(), frame: new Uint8Array(vm.buffer, off, len).slice(), result: dv.getUint32(i * 16 + 12, true) });
        }
      }
    };
    drainV();
    // 1. Read: a UDP datagram leaves with a partial checksum, described by the header.
    nodeIn(ns, `const s=require('dgram').createSocket('udp4');s.send(Buffer.alloc(300,7),9999,'${VIP_NET}.2',()=>s.close())`);
    await new Promise((r) => setTimeout(r, 50));
    const udp = drainV().filter((f) => decodeFrame(f.frame).dport === 9999);
    expect(udp).toHaveLength(1);
    expect(udp[0]!.result).toBe(1); // DESC_IN_VNET
    const h = decodeVnet(udp[0]!.vnet);
    expect(h).toMatchObject({ flags: VNET_F_NEEDS_CSUM, gsoType: 0, csumStart: 34, csumOffset: 6 });
    expect(decodeFrame(udp[0]!.frame).badChecksums).toEqual(["udp"]);
    expect(decodeFrame(completeChecksum(udp[0]!.frame, udp[0]!.vnet)).badChecksums).toEqual([]);

    // 2. Write: one USO super-frame of 4 × 1000 bytes with a partial checksum reaches a socket as 4 datagrams.
    const rx = nsSpawn(ns, [process.execPath, "-e",
      `let n=0,b=0;const s=require('dgram').createSocket('udp4');s.on('message',m=>{n++;b+=m.length;console.log('got '+n+' '+b)});` +
      `s.bind(7778,'${VIP_NET}.1',()=>console.log('ready'));setTimeout(()=>process.exit(0),8000)`]);
    let out = "";
    await withTimeout(new Promise<void>((res) => rx.stdout!.on("data", (b: Buffer) => ((out += b), out.includes("ready") && res()))), 5000, "receiver");
    const big = buildFrame({ srcMac: PEER_MAC, dstMac: v.mac, src: `${VIP_NET}.2`, dst: `${VIP_NET}.1`, proto: "UDP", sport: 9999, dport: 7778, payload: new Uint8Array(4000).fill(9) });
    const pf = toChecksumPartial(big, 1000);
    new Uint8Array(vm.buffer).set(pf.vnet, 4096);
    new Uint8Array(vm.buffer).set(pf.data, 4106);
    const dv = new DataView(vm.buffer);
    dv.setUint32(0, 4106, true);
    dv.setUint32(4, pf.data.length, true);
    dv.setUint32(8, VCAP - 10, true);
    dv.setUint32(12, VERDICTS.indexOf("TX"), true);
    expect(v.writeBatch(vm, 0, 1, verdictMask("TX"))).toMatchObject({ written: 1, errors: 0 });
    await withTimeout(new Promise<void>((res) => {
      const check = (): void => void (out.includes("got 4 4000") && res());
      rx.stdout!.on("data", check);
      check();
    }), 5000, "4 datagrams from one super-frame");
    rx.kill("SIGKILL");
    v.close();
  });

  it("reads a stream of small frames in batches (frames/s printed, not asserted)", async () => {
    // Generator: a child process in the namespace holding a second TAP, writing 60-byte UDP
    // frames into it in native batches; the namespace forwards them to PEER_IP, out of our TAP.
    const seconds = 2;
    const genTap = uniqueName();
    const child = nsSpawn(ns, [process.execPath, fileURLToPath(new URL("../helpers/tap-child.mjs", import.meta.url)), addonPath()!, genTap], {
      stdio: ["pipe", "pipe", "inherit"],
    });
    const lines: string[] = [];
    let buf = "";
    const waiters: Array<() => void> = [];
    child.stdout!.on("data", (b: Buffer) => {
      buf += b;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        lines.push(buf.slice(0, i));
        buf = buf.slice(i + 1);
        waiters.splice(0).forEach((w) => w());
      }
    });
    const line = async (k: number): Promise<Record<string, unknown>> => {
      while (lines.length <= k) await withTimeout(new Promise<void>((r) => waiters.push(r)), (seconds + 8) * 1000, `line ${k} from tap-child`);
      return JSON.parse(lines[k]!);
    };
    const hello = (await line(0)) as { name: string; mac: string };
    nsIp(ns, ["addr", "add", "10.78.0.1/24", "dev", hello.name]);
    nsSysctl(ns, "net.ipv4.ip_forward", "1");
    const frame = buildFrame({ srcMac: "02:00:00:00:00:03", dstMac: hello.mac, src: "10.78.0.2", dst: PEER_IP, proto: "UDP", sport: 4000, dport: 9, payload: new Uint8Array(18) });
    expect(frame.length).toBe(60);

    type Done = { sent: number; errors: number; lastError: string | null; seconds: number };
    const hex = Buffer.from(frame).toString("hex");
    const fmt = (x: number): string => Math.round(x).toLocaleString("en");

    // 1. Full batches: queue frames with nobody reading (a long TAP queue), then time a tight
    //    readBatch loop that drains them.
    nsIp(ns, ["link", "set", "dev", name, "txqueuelen", "70000"]);
    drain(tap, mem);
    child.stdin!.write(`0.4 ${hex}\n`);
    const filled = (await line(1)) as Done;
    const tq = process.hrtime.bigint();
    const queued = drain(tap, mem).length; // drain() copies each frame out; count only
    const tDrainCopy = Number(process.hrtime.bigint() - tq) / 1e9;
    child.stdin!.write(`0.4 ${hex}\n`);
    await line(2);
    const tr = process.hrtime.bigint();
    let tight = 0;
    let tightBatches = 0;
    for (;;) {
      const n = tap.readBatch(mem, DESCS, BATCH, FRAMES, CAP);
      if (n === 0) break;
      tight += n;
      tightBatches++;
    }
    const tTight = Number(process.hrtime.bigint() - tr) / 1e9;
    console.log(
      `TAP read, tight loop over a full queue (readBatch ≤${BATCH}, 60-byte frames): ${tight} frames in ${(tTight * 1e3).toFixed(1)} ms = ` +
        `${fmt(tight / tTight)} frames/s (${(tight / Math.max(1, tightBatches)).toFixed(1)} frames/batch; with a JS copy per frame ${fmt(queued / tDrainCopy)}/s); ` +
        `generator wrote ${fmt(filled.sent / filled.seconds)} frames/s`,
    );
    nsIp(ns, ["link", "set", "dev", name, "txqueuelen", "1000"]);

    // 2. Streaming: uv_poll wakes the reader, which drains with readBatch while the generator runs.
    drain(tap, mem);
    const before = rxPackets(ns, name);
    let frames = 0;
    let batches = 0;
    let readable = 0;
    tap.onReadable(() => {
      readable++;
      for (;;) {
        const n = tap.readBatch(mem, DESCS, BATCH, FRAMES, CAP);
        if (n === 0) break;
        frames += n;
        batches++;
      }
    });
    const t0 = process.hrtime.bigint();
    const cpu0 = process.cpuUsage();
    child.stdin!.write(`${seconds} ${hex}\n`);
    const done = (await line(3)) as Done;
    await new Promise((r) => setTimeout(r, 50));
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    tap.pauseReadable();
    frames += drain(tap, mem).length;
    const cpu = process.cpuUsage(cpu0);
    const cpuUsPerFrame = (cpu.user + cpu.system) / Math.max(1, frames);
    const after = rxPackets(ns, name);
    child.stdin!.end();
    console.log(
      `TAP read, streaming (uv_poll + readBatch ≤${BATCH}, 60-byte frames): ${frames} frames in ${dt.toFixed(2)} s = ` +
        `${fmt(frames / dt)} frames/s, ${(frames / Math.max(1, batches)).toFixed(1)} frames/batch, ` +
        `${readable} poll callbacks; generator (native writeBatch into a 2nd TAP, forwarded) wrote ` +
        `${fmt(done.sent / done.seconds)} frames/s (${done.errors} errors), our TAP tx_dropped +${after.txDropped - before.txDropped}; ` +
        `reader process CPU ${cpuUsPerFrame.toFixed(2)} µs/frame`,
    );
    expect(tight).toBeGreaterThan(1000);
    expect(frames).toBeGreaterThan(0);
    expect(done.errors).toBe(0);
  }, 20_000);

  it("close releases the device; a second open of the same name works", () => {
    tap.close();
    tap.close(); // idempotent
    expect(tap.isClosed).toBe(true);
    expect(() => tap.readBatch(mem, DESCS, 1, FRAMES, CAP)).toThrow(/closed/);
    expect(() => nsIp(ns, ["link", "show", "dev", name])).toThrow(/does not exist/); // non-persistent: gone
    const again = Tap.open(name, { netns: ns, up: true });
    try {
      expect(again.name).toBe(name);
      const link = JSON.parse(nsIp(ns, ["-j", "link", "show", "dev", name]))[0];
      expect(link.flags).toContain("UP");
      expect(again.readBatch(mem, DESCS, BATCH, FRAMES, CAP)).toBeGreaterThanOrEqual(0);
    } finally {
      again.close();
    }
  });
});
