// Frames with a virtio-net header (a TAP opened with IFF_VNET_HDR and TUNSETOFFLOAD): partial
// checksums stay partial and come out right once completed, GSO super-frames are translated
// once with their header kept, replies get a cleared header, and headers the pipeline cannot
// honour are dropped with reason vnet_hdr. Both builds.

import { describe, it, expect } from "vitest";
import { node, svc, VIP, EXTERNAL } from "../helpers/node.js";
import { buildFrame, decodeFrame, toChecksumPartial, completeChecksum, decodeVnet, encodeVnet, VNET_GSO, VNET_F_NEEDS_CSUM } from "../../src/host/frames.js";
import type { Dataplane } from "../../src/maps/dataplane.js";

const BACKEND = "10.244.1.10";
const BUILDS = ["release", "debug"] as const;
const SMALL = { conntrack: 4096, snat: 1024, affinity: 1024, maglev: 4096, svc_slots: 1024, frontends: 1024, addrs: 1024 } as const;

function twoNodes(build: (typeof BUILDS)[number]): [Dataplane, Dataplane] {
  const make = () => {
    const { dp, prog } = node({ build, seed: 7, frameCap: 65_600, batchMax: 8, maxEntries: SMALL });
    prog.sync([
      svc({ key: "v/tcp", protocol: "TCP", port: 80, endpoints: [{ ip: BACKEND, port: 8080, nodeName: "node-b" }] }),
      svc({ key: "v/udp", protocol: "UDP", port: 53, endpoints: [{ ip: BACKEND, port: 5353, nodeName: "node-b" }] }),
    ]);
    return dp;
  };
  return [make(), make()];
}

const payload = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + 3) & 0xff);

describe("virtio-net headers", () => {
  for (const b of BUILDS) {
    it(`${b}: a partial TCP/UDP checksum stays partial; completed, the frame equals the full-checksum translation`, () => {
      const [plain, offl] = twoNodes(b);
      const cases = [
        buildFrame({ src: EXTERNAL, dst: VIP, proto: "TCP", sport: 40001, dport: 80, flags: "S" }),
        buildFrame({ src: EXTERNAL, dst: VIP, proto: "TCP", sport: 40001, dport: 80, flags: "A", payload: payload(999) }),
        buildFrame({ src: EXTERNAL, dst: VIP, proto: "UDP", sport: 40002, dport: 53, payload: payload(33) }),
      ];
      for (const f of cases) {
        const want = plain.process([{ data: f }], 100)[0]!;
        const pf = toChecksumPartial(f);
        const got = offl.process([pf], 100)[0]!;
        expect(got.verdict).toBe("TX");
        expect(got.reason).toBe(want.reason);
        expect(got.vnet).toEqual(pf.vnet); // kept for the write back
        expect(decodeFrame(got.data).badChecksums.length).toBeGreaterThan(0); // still partial
        expect(completeChecksum(got.data.slice(), got.vnet!)).toEqual(want.data);
        expect(decodeFrame(want.data).badChecksums).toEqual([]);
      }
      // The reply direction, reverse-NATed with the partial checksum too.
      const rep = buildFrame({ src: BACKEND, dst: EXTERNAL, proto: "TCP", sport: 8080, dport: 40001, flags: "SA" });
      const wantR = plain.process([{ data: rep }], 101)[0]!;
      const gotR = offl.process([toChecksumPartial(buildFrame({ src: BACKEND, dst: EXTERNAL, proto: "TCP", sport: 8080, dport: 40001, flags: "SA" }))], 101)[0]!;
      expect(wantR.verdict).toBe("TX");
      expect(gotR.reasonName).toBe(wantR.reasonName);
      expect(completeChecksum(gotR.data.slice(), gotR.vnet!)).toEqual(wantR.data);
    });

    it(`${b}: a 60 KiB TCP GSO super-frame is translated once, header and segment size kept`, () => {
      const [plain, offl] = twoNodes(b);
      offl.process([toChecksumPartial(buildFrame({ src: EXTERNAL, dst: VIP, proto: "TCP", sport: 40003, dport: 80, flags: "S" }))], 100);
      plain.process([{ data: buildFrame({ src: EXTERNAL, dst: VIP, proto: "TCP", sport: 40003, dport: 80, flags: "S" }) }], 100);
      const big = buildFrame({ src: EXTERNAL, dst: VIP, proto: "TCP", sport: 40003, dport: 80, flags: "PA", payload: payload(60_000) });
      const pf = toChecksumPartial(big, 1448);
      const got = offl.process([pf], 101)[0]!;
      const want = plain.process([{ data: big }], 101)[0]!;
      expect(got.reasonName).toBe("established");
      expect(decodeVnet(got.vnet!)).toMatchObject({ gsoType: VNET_GSO.TCPV4, gsoSize: 1448, flags: VNET_F_NEEDS_CSUM });
      expect(completeChecksum(got.data.slice(), got.vnet!)).toEqual(want.data);
      expect(decodeFrame(want.data)).toMatchObject({ dst: BACKEND, dport: 8080, badChecksums: [] });
    });

    it(`${b}: a reply built from an offloaded frame gets a cleared header; unusable headers are dropped as vnet_hdr`, () => {
      const [, dp] = twoNodes(b);
      // Unknown port on the ClusterIP: refused with ICMP port unreachable (full checksums).
      const pf = toChecksumPartial(buildFrame({ src: EXTERNAL, dst: VIP, proto: "TCP", sport: 40004, dport: 81, flags: "S" }));
      const r = dp.process([pf], 100)[0]!;
      expect(r.verdict).toBe("REPLY");
      expect(Array.from(r.vnet!)).toEqual(new Array(10).fill(0));
      expect(decodeFrame(r.data).badChecksums).toEqual([]);

      const f = buildFrame({ src: EXTERNAL, dst: VIP, proto: "TCP", sport: 40005, dport: 80, flags: "S" });
      const bad = [
        encodeVnet({ flags: VNET_F_NEEDS_CSUM, csumStart: 34, csumOffset: 6 }), // not TCP's checksum field
        encodeVnet({ flags: VNET_F_NEEDS_CSUM, csumStart: 30, csumOffset: 16 }), // not where TCP starts
        encodeVnet({ flags: VNET_F_NEEDS_CSUM, gsoType: VNET_GSO.UDP_L4, gsoSize: 1000, csumStart: 34, csumOffset: 16 }), // UDP GSO on TCP
        encodeVnet({ gsoType: VNET_GSO.TCPV4, gsoSize: 1000 }), // GSO without checksum offload
        encodeVnet({ gsoType: 9 }), // unknown GSO type
      ];
      for (const h of bad) expect(dp.process([{ data: f, vnet: h }], 100)[0]!.reasonName).toBe("vnet_hdr");
      // A header without offloads changes nothing; non-service frames pass with their header.
      expect(dp.process([{ data: f, vnet: encodeVnet({}) }], 100)[0]!.reasonName).toBe("new_flow");
      const other = toChecksumPartial(buildFrame({ src: EXTERNAL, dst: "10.1.2.3", proto: "UDP", sport: 1, dport: 2, payload: "x" }));
      const p = dp.process([other], 100)[0]!;
      expect(p.verdict).toBe("PASS");
      expect(p.vnet).toEqual(other.vnet);
      expect(dp.reasonStats().find((s) => s.name === "vnet_hdr")?.packets).toBe(5n);
    });
  }
});
