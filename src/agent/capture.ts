// `tapvip capture`: what the dataplane sees, as a pcap file, from a running agent.
//
// The datapath owns a CaptureTap and, only while `tap.active` is true (one boolean test per
// batch otherwise), hands it each batch twice: `pre` right after the TAP read (frames as the
// kernel sent them, before the pipeline) and `post` right before the TAP write (frames as they
// go back: TX, REPLY and PASS after the MAC fix-up; DROP never). The agent's admin server
// streams them on GET /capture?where=pre|post&count=N (captureHandler): the pcap file header,
// then one record per frame as frames pass. A slow reader never slows the datapath: past
// `maxBufferedBytes` queued on its socket, frames are dropped for it (counted, logged).
// captureMain is the client: it writes whole records to the file (a Ctrl-C never leaves a
// torn record) until N frames or SIGINT.

import { request as httpRequest, type IncomingMessage, type ServerResponse } from "node:http";
import { parseArgs } from "node:util";
import { performance } from "node:perf_hooks";
import { PcapWriter, pcapFileHeader, PCAP_MAGIC_USEC, PCAP_FILE_HEADER_LEN, PCAP_RECORD_HEADER_LEN, PCAP_SNAPLEN } from "../host/pcap/writer.js";
import { DEFAULT_ADMIN_URL } from "./admin.js";

export type CaptureWhere = "pre" | "post";

/** Memory holding descriptors and frames: the dataplane's WebAssembly.Memory or a buffer. */
export type CaptureMemory = WebAssembly.Memory | ArrayBuffer | ArrayBufferView;

const DESC = 16;

interface Subscriber {
  where: CaptureWhere;
  /** Frames still wanted (Infinity = until closed). */
  remaining: number;
  /** Writes a chunk of records. */
  write(chunk: Buffer): void;
  /** Bytes the consumer has queued but not yet sent. */
  queued(): number;
  end(): void;
  maxBuffered: number;
  frames: number;
  dropped: number;
}

function bytesOf(mem: CaptureMemory): Uint8Array {
  if (mem instanceof WebAssembly.Memory) return new Uint8Array(mem.buffer);
  if (mem instanceof ArrayBuffer) return new Uint8Array(mem);
  return new Uint8Array(mem.buffer, mem.byteOffset, mem.byteLength);
}

function timestamp(): { sec: number; usec: number } {
  const us = Math.floor((performance.timeOrigin + performance.now()) * 1000);
  return { sec: Math.floor(us / 1e6), usec: us % 1e6 };
}

/** The datapath's tap point. `active` is the only thing the datapath looks at when idle. */
export class CaptureTap {
  /** True while some capture wants frames; the datapath calls pre/post only then. */
  active = false;
  private readonly subs = new Set<Subscriber>();

  /** Subscribers of each kind (for tests and /metrics). */
  get subscribers(): number {
    return this.subs.size;
  }

  /** Adds a consumer; returns a function that removes it. */
  subscribe(s: Omit<Subscriber, "frames" | "dropped" | "maxBuffered"> & { maxBuffered?: number }): { stop: () => void; stats: () => { frames: number; dropped: number } } {
    const sub: Subscriber = { ...s, maxBuffered: s.maxBuffered ?? 8 << 20, frames: 0, dropped: 0 };
    this.subs.add(sub);
    this.active = true;
    return {
      stop: () => this.remove(sub),
      stats: () => ({ frames: sub.frames, dropped: sub.dropped }),
    };
  }

  private remove(s: Subscriber): void {
    this.subs.delete(s);
    this.active = this.subs.size > 0;
  }

  /** Frames as read from the TAP: descriptors [descs, descs + 16 n), before processBatch. */
  pre(mem: CaptureMemory, descs: number, n: number): void {
    this.feed("pre", mem, descs, n, 0xffffffff);
  }

  /** Frames as written back: those whose verdict (result & 0xff) is in `mask`, after the MAC fix-up. */
  post(mem: CaptureMemory, descs: number, n: number, mask: number): void {
    this.feed("post", mem, descs, n, mask);
  }

  private feed(where: CaptureWhere, mem: CaptureMemory, descs: number, n: number, mask: number): void {
    let want = false;
    for (const s of this.subs) if (s.where === where) want = true;
    if (!want || n <= 0) return;
    const bytes = bytesOf(mem);
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const frames: Uint8Array[] = [];
    for (let i = 0; i < n; i++) {
      const d = descs + i * DESC;
      if (d + DESC > bytes.length) break;
      const result = dv.getUint32(d + 12, true);
      if (where === "post" && !(mask & (1 << (result & 0xff)))) continue;
      const off = dv.getUint32(d, true);
      const len = dv.getUint32(d + 4, true);
      if (off + len > bytes.length) continue;
      frames.push(bytes.subarray(off, off + len));
    }
    if (frames.length === 0) return;
    const ts = timestamp();
    for (const s of [...this.subs]) {
      if (s.where !== where) continue;
      const take = Math.min(frames.length, s.remaining);
      let size = 0;
      for (let i = 0; i < take; i++) size += PCAP_RECORD_HEADER_LEN + Math.min(frames[i]!.length, PCAP_SNAPLEN);
      const chunk = Buffer.allocUnsafe(size);
      let o = 0;
      for (let i = 0; i < take; i++) {
        const f = frames[i]!;
        const cap = Math.min(f.length, PCAP_SNAPLEN);
        chunk.writeUInt32LE(ts.sec, o);
        chunk.writeUInt32LE(ts.usec, o + 4);
        chunk.writeUInt32LE(cap, o + 8);
        chunk.writeUInt32LE(f.length, o + 12);
        chunk.set(cap === f.length ? f : f.subarray(0, cap), o + 16);
        o += 16 + cap;
      }
      s.remaining -= take;
      if (s.queued() > s.maxBuffered) {
        s.dropped += take; // the reader is behind: never block or buffer without bound
      } else {
        s.write(chunk);
        s.frames += take;
      }
      if (s.remaining <= 0) {
        this.remove(s);
        s.end();
      }
    }
  }
}

/**
 * GET /capture?where=pre|post&count=N: a pcap stream of the datapath's frames. Mount it on the
 * admin server; it answers 400 for bad parameters and 405 for other methods.
 */
export function captureHandler(tap: CaptureTap, opts: { maxBufferedBytes?: number; log?: (l: string) => void } = {}): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const u = new URL(req.url ?? "/", "http://admin");
    if (req.method !== "GET") {
      res.writeHead(405, { "Content-Type": "text/plain; charset=utf-8", Allow: "GET" }).end("method not allowed\n");
      return;
    }
    const where = u.searchParams.get("where") ?? "pre";
    const countText = u.searchParams.get("count");
    const count = countText === null || countText === "" || countText === "0" ? Infinity : Number(countText);
    if ((where !== "pre" && where !== "post") || !(count === Infinity || (Number.isInteger(count) && count > 0))) {
      res.writeHead(400, { "Content-Type": "text/plain; charset=utf-8" }).end("where must be pre or post, count a positive integer\n");
      return;
    }
    res.writeHead(200, { "Content-Type": "application/vnd.tcpdump.pcap", "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff" });
    res.write(pcapFileHeader());
    res.socket?.setNoDelay(true);
    let ended = false;
    const sub = tap.subscribe({
      where,
      remaining: count,
      maxBuffered: opts.maxBufferedBytes,
      write: (chunk) => {
        if (!ended) res.write(chunk);
      },
      queued: () => res.writableLength,
      end: () => {
        if (ended) return;
        ended = true;
        res.end();
      },
    });
    const done = () => {
      sub.stop();
      const s = sub.stats();
      if (s.dropped > 0) opts.log?.(`capture: ${s.frames} frames sent, ${s.dropped} dropped (reader too slow)`);
    };
    res.on("close", done);
  };
}

// ------------------------------------------------------------------------------------ client

export const CAPTURE_USAGE = "tapvip capture -o FILE.pcap [--where pre|post] [--count N] [--admin URL]";

export interface CaptureOptions {
  /** Stops the capture like Ctrl-C does (tests). SIGINT is handled too. */
  signal?: AbortSignal;
  log?: (line: string) => void;
}

/** `tapvip capture`: streams the agent's frames into a pcap file until --count frames or Ctrl-C. */
export async function captureMain(argv: string[], opts: CaptureOptions = {}): Promise<number> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { output: { type: "string", short: "o" }, where: { type: "string" }, count: { type: "string", short: "c" }, admin: { type: "string" } },
  });
  if (positionals.length) throw new Error(`capture: unexpected argument ${positionals[0]}\nusage: ${CAPTURE_USAGE}`);
  if (!values.output) throw new Error(`capture: -o FILE is required\nusage: ${CAPTURE_USAGE}`);
  const where = values.where ?? "pre";
  if (where !== "pre" && where !== "post") throw new Error(`capture: --where must be pre or post, got "${where}"\nusage: ${CAPTURE_USAGE}`);
  const count = values.count === undefined ? 0 : Number(values.count);
  if (!Number.isInteger(count) || count < 0) throw new Error(`capture: --count must be a non-negative integer, got "${values.count}"`);
  const base = (values.admin ?? process.env.TAPVIP_ADMIN ?? DEFAULT_ADMIN_URL).replace(/\/+$/, "");
  const url = new URL(`${base}/capture?where=${where}${count ? `&count=${count}` : ""}`);

  const writer = await PcapWriter.open(values.output);
  let frames = 0;
  let stop: () => void = () => {};
  const onSigint = () => stop();
  process.on("SIGINT", onSigint);
  const onAbort = () => stop();
  opts.signal?.addEventListener("abort", onAbort);
  try {
    if (opts.signal?.aborted) return 0;
    await new Promise<void>((resolve, reject) => {
      let pending: Buffer = Buffer.alloc(0);
      let headerSeen = false;
      let finished = false;
      const finish = (err?: Error) => {
        if (finished) return;
        finished = true;
        req.destroy();
        if (err) reject(err);
        else resolve();
      };
      stop = () => finish();
      const req = httpRequest(url, { method: "GET", agent: false }, (res) => {
        if (res.statusCode !== 200) {
          let body = "";
          res.setEncoding("utf8");
          res.on("data", (c) => (body += c));
          res.on("end", () => finish(new Error(`${url}: HTTP ${res.statusCode}: ${body.trim()}`)));
          return;
        }
        log(`capture: ${where} frames from ${base} into ${values.output}${count ? ` (${count} frames)` : " (Ctrl-C stops)"}`);
        res.on("data", (c: Buffer) => {
          if (finished) return;
          pending = pending.length ? Buffer.concat([pending, c]) : c;
          let o = 0;
          if (!headerSeen) {
            if (pending.length < PCAP_FILE_HEADER_LEN) return;
            if (pending.readUInt32LE(0) !== PCAP_MAGIC_USEC) return finish(new Error(`${url}: the answer is not a pcap stream`));
            headerSeen = true;
            o = PCAP_FILE_HEADER_LEN;
          }
          while (pending.length - o >= PCAP_RECORD_HEADER_LEN) {
            const cap = pending.readUInt32LE(o + 8);
            if (pending.length - o - PCAP_RECORD_HEADER_LEN < cap) break;
            const data = pending.subarray(o + 16, o + 16 + cap);
            // origLen > caplen only past the snaplen; PcapWriter records what it is given.
            writer.write(data, pending.readUInt32LE(o), pending.readUInt32LE(o + 4));
            frames++;
            o += 16 + cap;
            if (count && frames >= count) return finish();
          }
          pending = pending.subarray(o);
        });
        res.on("end", () => finish());
        res.on("error", () => finish());
      });
      req.on("error", (e: NodeJS.ErrnoException) => {
        finish(new Error(`cannot reach the tapvip agent's admin server at ${base} (${e.code ?? e.message}); is \`tapvip run\` running? (--admin URL selects another)`));
      });
      req.end();
    });
  } finally {
    process.off("SIGINT", onSigint);
    opts.signal?.removeEventListener("abort", onAbort);
    await writer.close();
  }
  log(`capture: ${frames} frames written to ${values.output}`);
  return 0;
}
