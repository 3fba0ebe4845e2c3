// Golden pcap replays: every test/pcap/<name>-in.pcap with <name>.yaml is replayed through the
// pipeline; the verdicts and tcpdump's reading of the output are compared, as text, with
// test/pcap/<name>.golden.txt (refresh with UPDATE_GOLDEN=1 after checking the diff).
// tshark independently verifies every output checksum; where the kernel translated the same
// traffic (<name>-kernel-out.pcap), each translated frame must equal the kernel's at L3/L4.

import { describe, it, expect } from "vitest";
import { readdirSync, readFileSync, writeFileSync, existsSync, mkdtempSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { replay } from "../../src/host/replay.js";
import { readPcap } from "../../src/host/pcap/reader.js";
import { tcpdumpText, tsharkChecksumProblems, tsharkAvailable } from "../../src/host/pcap/inspect.js";
import { decodeFrame } from "../../src/host/frames.js";

const DIR = new URL(".", import.meta.url).pathname;
const UPDATE = process.env.UPDATE_GOLDEN === "1";
const cases = readdirSync(DIR).filter((f) => f.endsWith("-in.pcap")).map((f) => f.slice(0, -"-in.pcap".length));

/** L3/L4 identity of a frame ignoring what a router changes (MACs, TTL, IP checksum). */
function l3l4(frame: Uint8Array): string {
  const ip = Buffer.from(frame.subarray(14));
  const ihl = (ip[0]! & 15) * 4;
  const tot = ip.readUInt16BE(2);
  const hdr = Buffer.from(ip.subarray(0, ihl));
  hdr[8] = 0; // TTL
  hdr.writeUInt16BE(0, 10); // header checksum
  return hdr.toString("hex") + "|" + ip.subarray(ihl, tot).toString("hex");
}

describe("golden pcap replays", () => {
  it("has at least one capture", () => {
    expect(cases.length).toBeGreaterThan(0);
  });

  for (const name of cases) {
    it(`${name}: verdicts and output match the golden text; checksums verify`, async () => {
      const tmp = mkdtempSync(join(tmpdir(), "tapvip-golden-"));
      const out = join(tmp, "out.pcap");
      const verdicts = join(tmp, "verdicts.jsonl");
      const summary = await replay({
        manifests: join(DIR, `${name}.yaml`), input: join(DIR, `${name}-in.pcap`), output: out, verdicts,
        nodeIP: "10.244.0.1", podCIDR: "10.244.0.0/16", seed: 1,
      });
      expect(summary.frames).toBeGreaterThan(0);
      const text = `# verdicts\n${readFileSync(verdicts, "utf8")}# tcpdump -nn -vv -e of the output\n${await tcpdumpText(out)}`;
      const golden = join(DIR, `${name}.golden.txt`);
      if (UPDATE || !existsSync(golden)) writeFileSync(golden, text);
      expect(text).toBe(readFileSync(golden, "utf8"));
      if (await tsharkAvailable()) expect(await tsharkChecksumProblems(out)).toEqual([]);
      // Our own decoder agrees.
      for (const f of (await readPcap(out)).frames) expect(decodeFrame(f.data).badChecksums).toEqual([]);
    });

    const kernel = join(DIR, `${name}-kernel-out.pcap`);
    if (!existsSync(kernel)) continue;
    it(`${name}: every translated frame equals the kernel's translation at L3/L4`, async () => {
      const tmp = mkdtempSync(join(tmpdir(), "tapvip-oracle-"));
      const out = join(tmp, "out.pcap");
      await replay({ manifests: join(DIR, `${name}.yaml`), input: join(DIR, `${name}-in.pcap`), output: out, nodeIP: "10.244.0.1", podCIDR: "10.244.0.0/16", seed: 1 });
      const ours = (await readPcap(out)).frames;
      const theirs = new Set((await readPcap(kernel)).frames.map((f) => l3l4(f.data)));
      let compared = 0;
      for (const f of ours) {
        const d = decodeFrame(f.data);
        if (d.proto !== "TCP" && d.proto !== "UDP") continue; // ICMP replies are built differently (quote length, IP id)
        expect(theirs.has(l3l4(f.data)), `frame ${d.src}:${d.sport} > ${d.dst}:${d.dport} ${d.proto} not in the kernel's output`).toBe(true);
        compared++;
      }
      expect(compared).toBeGreaterThan(5);
    });
  }
});
