// Reads capture files (classic pcap or pcapng, anything libpcap opens) through the `pcap` npm
// package (node_pcap's offline session), returning copied Ethernet frames with their timestamps;
// rejects unreadable, truncated or non-Ethernet files with an error naming the file.
import { readFile } from "node:fs/promises";
import pcap from "pcap";

export interface ReadFrame {
  /** The captured bytes (caplen of them), a private copy. */
  data: Buffer;
  tsSec: number;
  tsUsec: number;
  /** The frame's length on the wire; larger than data.length when the capture cut it. */
  origLen: number;
}

export interface ReadResult {
  /** node_pcap's link type name; always "LINKTYPE_ETHERNET" for a file that was read. */
  linkType: string;
  frames: ReadFrame[];
}

export class PcapReadError extends Error {
  readonly path: string;
  constructor(path: string, message: string, options?: { cause?: unknown }) {
    super(`readPcap ${path}: ${message}`, options);
    this.name = "PcapReadError";
    this.path = path;
  }
}

/** libpcap never hands out more than this many bytes of one frame (its MAXIMUM_SNAPLEN). */
const MAX_CAPLEN = 262144;

/** The parts of node_pcap's PcapSession that pcap.d.ts does not declare. */
interface OfflineSessionInternals {
  link_type: string;
  buf: Buffer;
  header: Buffer;
  session: { dispatch(buf: Buffer, header: Buffer): number };
  on(event: "packet", cb: (p: { buf: Buffer; header: Buffer; link_type: string }) => void): unknown;
  on(event: "complete", cb: () => void): unknown;
  close(): void;
}

/**
 * Reads every frame of `path`. Rejects with a PcapReadError (its message names the file) when the
 * file is missing or unreadable, is not a capture file, is truncated or corrupt part-way (node_pcap
 * alone would silently stop there), or has a link type other than Ethernet.
 */
export function readPcap(path: string): Promise<ReadResult> {
  return new Promise<ReadResult>((resolve, reject) => {
    let session: OfflineSessionInternals;
    try {
      session = pcap.createOfflineSession(path, {}) as unknown as OfflineSessionInternals;
    } catch (e) {
      // libpcap's own message already says what is wrong (and usually repeats the path)
      reject(new PcapReadError(path, `cannot open: ${(e as Error).message}`, { cause: e }));
      return;
    }

    const linkType = String(session.link_type);
    if (linkType !== "LINKTYPE_ETHERNET") {
      session.close();
      reject(
        new PcapReadError(
          path,
          `link type ${linkType} is not supported: only Ethernet (LINKTYPE_ETHERNET, DLT_EN10MB) ` +
            `captures can be read (e.g. capture on the interface itself, not on "any")`,
        ),
      );
      return;
    }

    // node_pcap reads offline files into a 65535-byte buffer and cuts longer frames silently:
    // give it room for anything libpcap can return. It starts reading on the next tick.
    session.buf = Buffer.alloc(MAX_CAPLEN);

    const frames: ReadFrame[] = [];
    let failure: Error | null = null;
    let dispatchStatus = 0;

    // node_pcap treats a read error (-1 from pcap_dispatch, e.g. a truncated record) like the end
    // of the file; keep the status so that we can tell. A throw here would be uncaught.
    const native = session.session;
    const dispatch = native.dispatch.bind(native);
    native.dispatch = (buf: Buffer, header: Buffer): number => {
      try {
        dispatchStatus = dispatch(buf, header);
      } catch (e) {
        failure ??= e as Error;
        dispatchStatus = -1;
      }
      return dispatchStatus;
    };

    // Called from inside libpcap's callback: an exception here would be fatal to the process.
    session.on("packet", (p) => {
      if (failure) return;
      try {
        const h = p.header;
        const caplen = h.readUInt32LE(8);
        if (caplen > p.buf.length) {
          failure = new Error(`frame ${frames.length + 1} has caplen ${caplen}, more than ${p.buf.length}`);
          return;
        }
        frames.push({
          data: Buffer.from(p.buf.subarray(0, caplen)), // p.buf is reused for the next frame
          tsSec: h.readUInt32LE(0),
          tsUsec: h.readUInt32LE(4),
          origLen: h.readUInt32LE(12),
        });
      } catch (e) {
        failure = e as Error;
      }
    });

    session.on("complete", () => {
      try {
        session.close();
      } catch {
        // already closed by libpcap after an error: nothing to release
      }
      if (failure) {
        reject(new PcapReadError(path, `read failed after ${frames.length} frames: ${failure.message}`, { cause: failure }));
      } else if (dispatchStatus < 0) {
        describeReadError(path, frames.length).then(
          (detail) => reject(new PcapReadError(path, `truncated or corrupt after ${frames.length} frames: ${detail}`)),
          () => reject(new PcapReadError(path, `truncated or corrupt after ${frames.length} frames`)),
        );
      } else {
        resolve({ linkType, frames });
      }
    });
  });
}

/** Best-effort explanation of where a file that libpcap failed on goes wrong (classic pcap only). */
async function describeReadError(path: string, framesRead: number): Promise<string> {
  const file = await readFile(path);
  const magic = file.length >= 4 ? file.readUInt32LE(0) : 0;
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  const be = magic === 0xd4c3b2a1 || magic === 0x4d3cb2a1;
  if (!le && !be) return "libpcap stopped with a read error (pcapng block cut short or malformed)";
  const u32 = (off: number) => (le ? file.readUInt32LE(off) : file.readUInt32BE(off));
  let off = 24;
  for (let i = 1; ; i++) {
    if (off === file.length) break;
    if (off + 16 > file.length) {
      return `record ${i} at byte ${off} has a cut header (${file.length - off} of 16 bytes; file is ${file.length} bytes)`;
    }
    const caplen = u32(off + 8);
    if (caplen > MAX_CAPLEN) return `record ${i} at byte ${off} claims caplen ${caplen}, more than ${MAX_CAPLEN}`;
    if (off + 16 + caplen > file.length) {
      return `record ${i} at byte ${off} needs ${caplen} data bytes, only ${file.length - off - 16} left (file is ${file.length} bytes)`;
    }
    off += 16 + caplen;
  }
  return `libpcap stopped with a read error after frame ${framesRead}`;
}
