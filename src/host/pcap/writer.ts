// Our own classic-libpcap writer (magic 0xa1b2c3d4 in host=little-endian order, v2.4, snaplen
// 262144, LINKTYPE_ETHERNET, microsecond timestamps): PcapWriter streams frames to a file through
// a buffer; encodePcap builds a whole file in memory (for tests).
import { open as openFile, type FileHandle } from "node:fs/promises";

export const PCAP_MAGIC_USEC = 0xa1b2c3d4;
export const PCAP_VERSION_MAJOR = 2;
export const PCAP_VERSION_MINOR = 4;
export const PCAP_SNAPLEN = 262144;
export const LINKTYPE_ETHERNET = 1;
export const PCAP_FILE_HEADER_LEN = 24;
export const PCAP_RECORD_HEADER_LEN = 16;

/** A frame with its capture time (seconds + microseconds since the Unix epoch). */
export interface PcapFrame {
  data: Uint8Array;
  tsSec: number;
  tsUsec: number;
}

/** The 24-byte file header. */
export function pcapFileHeader(): Buffer {
  const h = Buffer.alloc(PCAP_FILE_HEADER_LEN);
  h.writeUInt32LE(PCAP_MAGIC_USEC, 0);
  h.writeUInt16LE(PCAP_VERSION_MAJOR, 4);
  h.writeUInt16LE(PCAP_VERSION_MINOR, 6);
  h.writeInt32LE(0, 8); // thiszone: GMT
  h.writeUInt32LE(0, 12); // sigfigs
  h.writeUInt32LE(PCAP_SNAPLEN, 16);
  h.writeUInt32LE(LINKTYPE_ETHERNET, 20);
  return h;
}

function checkTimestamp(tsSec: number, tsUsec: number): void {
  if (!Number.isInteger(tsSec) || tsSec < 0 || tsSec > 0xffffffff) {
    throw new RangeError(`pcap: tsSec must be an integer in [0, 2^32), got ${tsSec}`);
  }
  if (!Number.isInteger(tsUsec) || tsUsec < 0 || tsUsec > 999_999) {
    throw new RangeError(`pcap: tsUsec must be an integer in [0, 999999], got ${tsUsec}`);
  }
}

/**
 * Writes one record (header + captured bytes) into `out` at `offset`; returns the new offset.
 * Frames longer than the snaplen are cut to it (caplen < len), as libpcap would do.
 */
function writeRecord(out: Buffer, offset: number, frame: Uint8Array, tsSec: number, tsUsec: number): number {
  const caplen = Math.min(frame.length, PCAP_SNAPLEN);
  out.writeUInt32LE(tsSec, offset);
  out.writeUInt32LE(tsUsec, offset + 4);
  out.writeUInt32LE(caplen, offset + 8);
  out.writeUInt32LE(frame.length, offset + 12);
  out.set(caplen === frame.length ? frame : frame.subarray(0, caplen), offset + PCAP_RECORD_HEADER_LEN);
  return offset + PCAP_RECORD_HEADER_LEN + caplen;
}

function recordSize(frame: Uint8Array): number {
  return PCAP_RECORD_HEADER_LEN + Math.min(frame.length, PCAP_SNAPLEN);
}

/** A whole pcap file (header + records, in the given order) as one Buffer. */
export function encodePcap(frames: readonly PcapFrame[]): Buffer {
  let size = PCAP_FILE_HEADER_LEN;
  for (const f of frames) {
    checkTimestamp(f.tsSec, f.tsUsec);
    size += recordSize(f.data);
  }
  const out = Buffer.alloc(size);
  pcapFileHeader().copy(out, 0);
  let off = PCAP_FILE_HEADER_LEN;
  for (const f of frames) off = writeRecord(out, off, f.data, f.tsSec, f.tsUsec);
  return out;
}

const CHUNK_SIZE = 1 << 20;

/**
 * Streams frames into a pcap file. write() is synchronous and copies the frame into an in-memory
 * chunk (the caller may reuse its buffer at once); full chunks are written to the file in order
 * in the background; close() writes the rest and resolves when everything is on disk. An I/O
 * error is reported by the next write() (thrown) or by close() (rejected); no frame is dropped
 * silently.
 */
export class PcapWriter {
  readonly path: string;
  private fh: FileHandle | null;
  private chunk: Buffer = Buffer.alloc(CHUNK_SIZE);
  private used = 0;
  private pending: Promise<void> = Promise.resolve();
  private error: Error | null = null;
  private closing: Promise<void> | null = null;
  private framesWritten = 0;

  private constructor(path: string, fh: FileHandle) {
    this.path = path;
    this.fh = fh;
  }

  /** Creates (or truncates) `path` and writes the file header. */
  static async open(path: string): Promise<PcapWriter> {
    let fh: FileHandle;
    try {
      fh = await openFile(path, "w");
    } catch (e) {
      throw new Error(`pcap: cannot create ${path}: ${(e as Error).message}`, { cause: e });
    }
    const w = new PcapWriter(path, fh);
    w.append(pcapFileHeader());
    return w;
  }

  /** Number of frames accepted by write() so far. */
  get frames(): number {
    return this.framesWritten;
  }

  write(frame: Uint8Array, tsSec: number, tsUsec: number): void {
    if (this.error) throw this.error;
    if (this.closing || !this.fh) throw new Error(`pcap: write after close (${this.path})`);
    checkTimestamp(tsSec, tsUsec);
    const need = recordSize(frame);
    if (this.used + need > this.chunk.length) {
      this.flushChunk();
      if (need > this.chunk.length) this.chunk = Buffer.alloc(need);
    }
    this.used = writeRecord(this.chunk, this.used, frame, tsSec, tsUsec);
    this.framesWritten++;
  }

  /** Writes everything buffered so far; resolves when it reached the file. */
  async flush(): Promise<void> {
    this.flushChunk();
    await this.pending;
    if (this.error) throw this.error;
  }

  close(): Promise<void> {
    if (!this.closing) {
      this.closing = (async () => {
        this.flushChunk();
        await this.pending;
        const fh = this.fh;
        this.fh = null;
        if (fh) {
          try {
            await fh.close();
          } catch (e) {
            this.error ??= new Error(`pcap: closing ${this.path}: ${(e as Error).message}`, { cause: e });
          }
        }
        if (this.error) throw this.error;
      })();
    }
    return this.closing;
  }

  private append(bytes: Buffer): void {
    bytes.copy(this.chunk, this.used);
    this.used += bytes.length;
  }

  /** Hands the current chunk to the write queue and starts a fresh one. */
  private flushChunk(): void {
    if (this.used === 0) return;
    const data = this.chunk.subarray(0, this.used);
    this.chunk = Buffer.alloc(CHUNK_SIZE);
    this.used = 0;
    const fh = this.fh;
    this.pending = this.pending.then(async () => {
      if (this.error || !fh) return;
      try {
        let off = 0;
        while (off < data.length) {
          const { bytesWritten } = await fh.write(data, off, data.length - off);
          off += bytesWritten;
        }
      } catch (e) {
        this.error = new Error(`pcap: writing ${this.path}: ${(e as Error).message}`, { cause: e });
      }
    });
  }
}
