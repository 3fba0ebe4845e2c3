// Tests of src/host/pcap: our pcap writer against node_pcap/libpcap, tcpdump and tshark; the
// oracle captures in test/pcap/ (made by test/pcap/make-captures.sh); reader error handling.
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodePcap, PcapWriter, type PcapFrame } from "../../src/host/pcap/writer.js";
import { readPcap } from "../../src/host/pcap/reader.js";
import {
  tcpdumpAvailable,
  tcpdumpText,
  tsharkAvailable,
  tsharkChecksumProblems,
} from "../../src/host/pcap/inspect.js";

const execFileP = promisify(execFile);
const PCAP_DIR = fileURLToPath(new URL("../pcap/", import.meta.url));
const BASIC_IN = join(PCAP_DIR, "basic-in.pcap");
const BASIC_OUT = join(PCAP_DIR, "basic-kernel-out.pcap");

const haveTcpdump = await tcpdumpAvailable();
const haveTshark = await tsharkAvailable();

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tapvip-pcap-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------- frame building helpers
const MAC_A = [0x02, 0, 0, 0, 0, 0x0a];
const MAC_B = [0x02, 0, 0, 0, 0, 0x0b];

function csum16(bytes: Uint8Array, initial = 0): number {
  let s = initial;
  for (let i = 0; i + 1 < bytes.length; i += 2) s += (bytes[i]! << 8) | bytes[i + 1]!;
  if (bytes.length % 2) s += bytes[bytes.length - 1]! << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

function ip4(s: string): number[] {
  return s.split(".").map(Number);
}

/** Ethernet + IPv4 around `l4`; `l4csumAt` is where the L4 checksum goes (pseudo-header sum). */
function ipv4Frame(proto: number, l4: Uint8Array, opts: { l4csumAt?: number; badIp?: boolean; badL4?: boolean } = {}): Buffer {
  const src = ip4("10.1.0.1");
  const dst = ip4("10.1.0.2");
  if (opts.l4csumAt !== undefined) {
    const pseudo = Buffer.from([...src, ...dst, 0, proto, l4.length >> 8, l4.length & 0xff]);
    let c = csum16(Buffer.concat([pseudo, l4]));
    if (proto === 17 && c === 0) c = 0xffff;
    if (opts.badL4) c ^= 0x5a5a;
    l4[opts.l4csumAt] = c >> 8;
    l4[opts.l4csumAt + 1] = c & 0xff;
  }
  const ip = Buffer.from([0x45, 0, 0, 20 + l4.length, 0, 1, 0x40, 0, 64, proto, 0, 0, ...src, ...dst]);
  ip.writeUInt16BE(20 + l4.length, 2);
  let c = csum16(ip);
  if (opts.badIp) c ^= 0x1111;
  ip.writeUInt16BE(c, 10);
  return Buffer.concat([Buffer.from([...MAC_B, ...MAC_A, 0x08, 0x00]), ip, l4]);
}

function udpFrame(payload: string, opts: { badIp?: boolean; badL4?: boolean } = {}): Buffer {
  const p = Buffer.from(payload);
  const l4 = Buffer.alloc(8 + p.length);
  l4.writeUInt16BE(40000, 0);
  l4.writeUInt16BE(9999, 2);
  l4.writeUInt16BE(l4.length, 4);
  p.copy(l4, 8);
  return ipv4Frame(17, l4, { l4csumAt: 6, ...opts });
}

function tcpSynFrame(opts: { badL4?: boolean } = {}): Buffer {
  const l4 = Buffer.alloc(20);
  l4.writeUInt16BE(40001, 0);
  l4.writeUInt16BE(80, 2);
  l4.writeUInt32BE(12345, 4);
  l4[12] = 5 << 4;
  l4[13] = 0x02;
  l4.writeUInt16BE(64240, 14);
  return ipv4Frame(6, l4, { l4csumAt: 16, ...opts });
}

function icmpEchoFrame(opts: { badL4?: boolean } = {}): Buffer {
  const l4 = Buffer.from([8, 0, 0, 0, 0x12, 0x34, 0, 1, ...Buffer.from("pingpong")]);
  let c = csum16(l4);
  if (opts.badL4) c ^= 0x0f0f;
  l4.writeUInt16BE(c, 2);
  return ipv4Frame(1, l4);
}

const CRC32C_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32c(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC32C_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** SCTP common header + one COOKIE ACK chunk; CRC32c stored little-endian as RFC 4960 wants. */
function sctpFrame(opts: { badL4?: boolean } = {}): Buffer {
  const l4 = Buffer.alloc(16);
  l4.writeUInt16BE(40002, 0);
  l4.writeUInt16BE(3868, 2);
  l4.writeUInt32BE(0xdeadbeef, 4);
  l4[12] = 11; // COOKIE ACK
  l4.writeUInt16BE(4, 14);
  let c = crc32c(l4);
  if (opts.badL4) c = (c ^ 0x01020304) >>> 0;
  l4.writeUInt32LE(c, 8);
  return ipv4Frame(132, l4);
}

function frameAt(i: number, data: Buffer): PcapFrame {
  return { data, tsSec: 1_700_000_000 + i, tsUsec: (i * 123_457) % 1_000_000 };
}

// ---------------------------------------------------------------- writer / reader
describe("PcapWriter and readPcap", () => {
  it("writes the classic libpcap file header", () => {
    const h = encodePcap([]);
    expect(h.length).toBe(24);
    expect(h.readUInt32LE(0)).toBe(0xa1b2c3d4);
    expect(h.readUInt16LE(4)).toBe(2);
    expect(h.readUInt16LE(6)).toBe(4);
    expect(h.readUInt32LE(16)).toBe(262144);
    expect(h.readUInt32LE(20)).toBe(1);
  });

  it("round-trips bytes, timestamps and lengths through libpcap", async () => {
    const big = Buffer.alloc(70_000, 0xab); // larger than node_pcap's default 64 KiB read buffer
    const huge = Buffer.alloc(300_000, 0xcd); // larger than the snaplen: cut to 262144
    const frames: PcapFrame[] = [
      frameAt(0, udpFrame("hello")),
      { data: tcpSynFrame(), tsSec: 1_700_000_001, tsUsec: 999_999 },
      { data: icmpEchoFrame(), tsSec: 0, tsUsec: 0 },
      { data: Buffer.from([...MAC_A, ...MAC_B, 0x88, 0xb5, 1, 2, 3]), tsSec: 4_294_967_295, tsUsec: 1 },
      frameAt(4, big),
      frameAt(5, huge),
      frameAt(6, sctpFrame()),
    ];
    const path = join(dir, "roundtrip.pcap");
    const w = await PcapWriter.open(path);
    const scratch = Buffer.alloc(2000);
    for (const f of frames) {
      // the writer must copy: reuse one scratch buffer for the small frames and clobber it after
      if (f.data.length <= scratch.length) {
        scratch.set(f.data);
        w.write(scratch.subarray(0, f.data.length), f.tsSec, f.tsUsec);
        scratch.fill(0xee);
      } else {
        w.write(f.data, f.tsSec, f.tsUsec);
      }
    }
    expect(w.frames).toBe(frames.length);
    await w.close();

    const file = await readFile(path);
    expect(file.equals(encodePcap(frames))).toBe(true);

    const r = await readPcap(path);
    expect(r.linkType).toBe("LINKTYPE_ETHERNET");
    expect(r.frames).toHaveLength(frames.length);
    r.frames.forEach((got, i) => {
      const want = frames[i]!;
      const wantData = want.data.subarray(0, Math.min(want.data.length, 262144));
      expect(got.data.equals(wantData), `frame ${i} bytes`).toBe(true);
      expect(got.tsSec, `frame ${i} tsSec`).toBe(want.tsSec);
      expect(got.tsUsec, `frame ${i} tsUsec`).toBe(want.tsUsec);
      expect(got.origLen, `frame ${i} origLen`).toBe(want.data.length);
    });
    expect(r.frames[5]!.data.length).toBe(262144);
    // (had the reader kept views of node_pcap's reused buffer, every frame would show the last one)
  });

  it("loses no frame when many chunks are flushed", async () => {
    const path = join(dir, "many.pcap");
    const w = await PcapWriter.open(path);
    const n = 3000; // ~4.5 MB: several 1 MiB chunks
    const f = Buffer.alloc(1514);
    for (let i = 0; i < n; i++) {
      f.writeUInt32BE(i, 100);
      w.write(f, 1_700_000_000 + Math.floor(i / 1000), (i % 1000) * 1000);
    }
    await w.close();
    const r = await readPcap(path);
    expect(r.frames).toHaveLength(n);
    r.frames.forEach((g, i) => {
      expect(g.data.readUInt32BE(100)).toBe(i);
      expect(g.tsUsec).toBe((i % 1000) * 1000);
    });
  });

  it("refuses bad timestamps and writes after close", async () => {
    const w = await PcapWriter.open(join(dir, "misuse.pcap"));
    expect(() => w.write(udpFrame("x"), 1, 1_000_000)).toThrow(/tsUsec/);
    expect(() => w.write(udpFrame("x"), -1, 0)).toThrow(/tsSec/);
    await w.close();
    expect(() => w.write(udpFrame("x"), 1, 0)).toThrow(/after close/);
    await expect(PcapWriter.open(join(dir, "no-such-dir", "x.pcap"))).rejects.toThrow(/cannot create .*no-such-dir/);
  });
});

// ---------------------------------------------------------------- independent decoders
describe.runIf(haveTcpdump)("tcpdump reads what we write", () => {
  it("parses the writer's output without error, frame for frame", async () => {
    const frames = [frameAt(0, udpFrame("abc")), frameAt(1, tcpSynFrame()), frameAt(2, icmpEchoFrame()), frameAt(3, sctpFrame())];
    const path = join(dir, "tcpdump.pcap");
    await writeFile(path, encodePcap(frames));
    const { stdout, stderr } = await execFileP("tcpdump", ["-nn", "-r", path]);
    expect(stderr).toMatch(/link-type EN10MB \(Ethernet\), snapshot length 262144/);
    expect(stdout.trim().split("\n")).toHaveLength(frames.length);
    const text = await tcpdumpText(path, { timestamps: "epoch" });
    expect(text).toContain("1700000000.000000 02:00:00:00:00:0a > 02:00:00:00:00:0b");
    expect(text).toContain("10.1.0.1.40000 > 10.1.0.2.9999: [udp sum ok] UDP, length 3");
    expect(text).toContain("cksum 0x");
    expect(text).not.toMatch(/incorrect|bad cksum/);
  });

  it("gives the same text for an oracle capture and its copy through readPcap + PcapWriter", async () => {
    const r = await readPcap(BASIC_IN);
    const path = join(dir, "copy.pcap");
    const w = await PcapWriter.open(path);
    for (const f of r.frames) w.write(f.data, f.tsSec, f.tsUsec);
    await w.close();
    const original = await tcpdumpText(BASIC_IN, { timestamps: "epoch" });
    expect(await tcpdumpText(path, { timestamps: "epoch" })).toBe(original);
    expect((await readFile(path)).equals(await readFile(BASIC_IN))).toBe(true);
    // default: no timestamps, one header line per frame starting with the MACs
    const plain = await tcpdumpText(BASIC_IN);
    expect(plain.split("\n").filter((l) => /^02:00:0a:f4:/.test(l))).toHaveLength(17);
    expect(plain).not.toMatch(/1700000000/);
    expect(plain.endsWith("\n")).toBe(true);
    expect(plain).not.toMatch(/[ \t]$/m);
  });
});

// ---------------------------------------------------------------- oracle captures
function ipv4Of(f: Buffer): { src: string; dst: string; proto: number } | null {
  if (f.length < 34 || f.readUInt16BE(12) !== 0x0800) return null;
  const a = (o: number) => Array.from(f.subarray(o, o + 4)).join(".");
  return { src: a(26), dst: a(30), proto: f[23]! };
}

describe("oracle captures in test/pcap", () => {
  it("basic-in.pcap holds what a proxy at the node receives", async () => {
    const r = await readPcap(BASIC_IN);
    expect(r.linkType).toBe("LINKTYPE_ETHERNET");
    expect(r.frames).toHaveLength(17);
    const ips = r.frames.map((f) => ipv4Of(f.data));
    expect(ips.every((x) => x !== null)).toBe(true);
    const count = (pred: (x: { src: string; dst: string; proto: number }) => boolean) => ips.filter((x) => pred(x!)).length;
    // client -> VIP: 6 TCP (handshake, GET, ACKs, FIN) + 2 UDP to :53; client -> empty VIP: 1 SYN
    expect(count((x) => x.src === "10.244.0.5" && x.dst === "10.96.0.10" && x.proto === 6)).toBe(6);
    expect(count((x) => x.src === "10.244.0.5" && x.dst === "10.96.0.10" && x.proto === 17)).toBe(2);
    expect(count((x) => x.src === "10.244.0.5" && x.dst === "10.96.0.11")).toBe(1);
    // backend -> client (not yet reverse-translated): 4 TCP + 2 UDP + the echo reply
    expect(count((x) => x.src === "10.244.1.10" && x.dst === "10.244.0.5")).toBe(7);
    // the ping request (non-service traffic)
    expect(count((x) => x.src === "10.244.0.5" && x.dst === "10.244.1.10" && x.proto === 1)).toBe(1);
    // merged by time, timestamps shifted to start at 1700000000.000000
    expect(r.frames[0]!.tsSec).toBe(1_700_000_000);
    expect(r.frames[0]!.tsUsec).toBe(0);
    const t = r.frames.map((f) => f.tsSec * 1e6 + f.tsUsec);
    expect(t).toEqual([...t].sort((a, b) => a - b));
  });

  it("basic-kernel-out.pcap holds the kernel's translated frames", async () => {
    const r = await readPcap(BASIC_OUT);
    expect(r.frames).toHaveLength(17);
    const ips = r.frames.map((f) => ipv4Of(f.data)!);
    // nothing addressed to the VIPs leaves the node: client frames were DNATed to the backend
    expect(ips.filter((x) => x.dst === "10.96.0.10" || x.dst === "10.96.0.11")).toHaveLength(0);
    expect(ips.filter((x) => x.src === "10.244.0.5" && x.dst === "10.244.1.10")).toHaveLength(9);
    expect(ips.filter((x) => x.src === "10.96.0.10" && x.dst === "10.244.0.5")).toHaveLength(6);
    // the REJECT: ICMP destination unreachable (3) / port unreachable (3) from the node
    const rej = r.frames.filter((f, i) => ips[i]!.proto === 1 && f.data[34] === 3);
    expect(rej).toHaveLength(1);
    expect(rej[0]!.data[35]).toBe(3);
  });

  it.runIf(haveTshark)("reads a pcapng file written by tshark", async () => {
    const ng = join(dir, "basic-in.pcapng");
    await execFileP("tshark", ["-r", BASIC_IN, "-F", "pcapng", "-w", ng]);
    expect((await readFile(ng)).readUInt32LE(0)).toBe(0x0a0d0d0a); // a pcapng section header block
    const a = await readPcap(BASIC_IN);
    const b = await readPcap(ng);
    expect(b.linkType).toBe("LINKTYPE_ETHERNET");
    expect(b.frames).toEqual(a.frames);
  });
});

describe.runIf(haveTshark)("tshark checksum validation", () => {
  it("finds no checksum problem in the kernel's output nor in the input capture", async () => {
    expect(await tsharkChecksumProblems(BASIC_OUT)).toEqual([]);
    expect(await tsharkChecksumProblems(BASIC_IN)).toEqual([]);
  });

  it("accepts correct checksums and reports bad ones for ip, tcp, udp, icmp and sctp", async () => {
    const frames = [
      udpFrame("good"), // 1
      tcpSynFrame(), // 2
      icmpEchoFrame(), // 3
      sctpFrame(), // 4: a correct CRC32c is not flagged, so the SCTP preference is the right one
      udpFrame("bad ip", { badIp: true }), // 5
      tcpSynFrame({ badL4: true }), // 6
      udpFrame("bad udp", { badL4: true }), // 7
      icmpEchoFrame({ badL4: true }), // 8
      sctpFrame({ badL4: true }), // 9
    ];
    const path = join(dir, "checksums.pcap");
    await writeFile(path, encodePcap(frames.map((d, i) => frameAt(i, d))));
    const problems = await tsharkChecksumProblems(path);
    expect(problems.map((p) => p.frame)).toEqual([5, 6, 7, 8, 9]);
    const byFrame = new Map(problems.map((p) => [p.frame, p.problem]));
    expect(byFrame.get(5)).toMatch(/^ip: Bad checksum/);
    expect(byFrame.get(6)).toMatch(/^tcp: Bad checksum/);
    expect(byFrame.get(7)).toMatch(/^udp: Bad checksum/);
    expect(byFrame.get(8)).toMatch(/^icmp: Bad checksum/);
    expect(byFrame.get(9)).toMatch(/^sctp: Bad SCTP checksum/);
  });
});

// ---------------------------------------------------------------- errors
describe("readPcap errors", () => {
  it("rejects a missing file, naming it", async () => {
    const path = join(dir, "does-not-exist.pcap");
    await expect(readPcap(path)).rejects.toThrow(new RegExp(`does-not-exist\\.pcap.*No such file`));
  });

  it("rejects a file cut inside a record, naming it", async () => {
    const full = encodePcap([frameAt(0, udpFrame("one")), frameAt(1, udpFrame("two")), frameAt(2, udpFrame("three"))]);
    const path = join(dir, "truncated.pcap");
    await writeFile(path, full.subarray(0, full.length - 10));
    const err = await readPcap(path).then(
      () => null,
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(Error);
    expect(err!.message).toContain(path);
    expect(err!.message).toMatch(/truncated or corrupt after 2 frames: record 3 at byte \d+ needs \d+ data bytes/);
    if (haveTcpdump) await expect(tcpdumpText(path)).rejects.toThrow(/truncated\.pcap/);
  });

  it("rejects a file cut inside a record header and one cut inside the file header", async () => {
    const full = encodePcap([frameAt(0, udpFrame("one")), frameAt(1, udpFrame("two"))]);
    const cutHeader = join(dir, "cut-record-header.pcap");
    await writeFile(cutHeader, full.subarray(0, 24 + 16 + udpFrame("one").length + 5));
    await expect(readPcap(cutHeader)).rejects.toThrow(/cut-record-header\.pcap: truncated or corrupt after 1 frames: record 2 .*cut header/);
    const cutFile = join(dir, "cut-file-header.pcap");
    await writeFile(cutFile, full.subarray(0, 10));
    await expect(readPcap(cutFile)).rejects.toThrow(/cut-file-header\.pcap: cannot open: .*truncated/);
    const empty = join(dir, "empty.pcap");
    await writeFile(empty, Buffer.alloc(0));
    await expect(readPcap(empty)).rejects.toThrow(/empty\.pcap: cannot open/);
  });

  it("rejects a file that is not a capture", async () => {
    const path = join(dir, "notes.txt");
    await writeFile(path, "this is not a capture file, just some text\n");
    await expect(readPcap(path)).rejects.toThrow(/notes\.txt: cannot open: .*format/);
  });

  it("rejects non-Ethernet link types clearly", async () => {
    for (const [linktype, name] of [
      [113, "LINKTYPE_LINUX_SLL"],
      [101, "LINKTYPE_RAW"],
      [147, "Unknown linktype 147"],
    ] as const) {
      const file = encodePcap([frameAt(0, udpFrame("x"))]);
      file.writeUInt32LE(linktype, 20);
      const path = join(dir, `linktype-${linktype}.pcap`);
      await writeFile(path, file);
      await expect(readPcap(path)).rejects.toThrow(
        new RegExp(`linktype-${linktype}\\.pcap: link type ${name} is not supported: only Ethernet`),
      );
    }
  });
});
