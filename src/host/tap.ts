// The TAP I/O layer of the node agent: a typed wrapper over our N-API addon
// (native/tap.c, built into native/build/Release/tapvip_tap.node by `npm run build:native`).
//
// Frames are read and written in place, straight into caller memory (normally the dataplane's
// WebAssembly.Memory), with the dataplane's 16-byte batch descriptors:
//   | off u32 | len u32 | cap u32 | result u32 |   result = verdict | reason << 8
// Readiness comes from a uv_poll on the TAP's fd on the main event loop; nothing here uses the
// libuv threadpool. The fd is non-blocking: readBatch returns 0 when nothing is queued.

import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { VERDICTS, type Verdict } from "../maps/verdicts.js";

/** Size of one batch descriptor in bytes. */
export const DESC_SIZE = 16;

interface NativePoll {
  start(): void;
  stop(): void;
  close(): void;
}

export interface WriteBatchResult {
  /** Frames the kernel accepted. */
  written: number;
  /** Frames whose write failed (or whose descriptor pointed outside the buffer). */
  errors: number;
  /** Frames written only in part (a TAP takes frames whole: expected to stay 0). */
  short: number;
  /** Frames whose verdict was not in the mask. */
  skipped: number;
  /** errno name of the last failure (e.g. "EINVAL", "EIO"), or null. */
  lastError: string | null;
}

interface NativeTap {
  open(name: string, flags: number, netns?: string | null): { fd: number; name: string; mac: Buffer };
  getMac(name: string, netns?: string | null): Buffer;
  setUp(name: string, up: boolean, netns?: string | null): void;
  close(fd: number): void;
  readBatch(fd: number, buf: ArrayBuffer | ArrayBufferView, descs: number, count: number, frames: number, frameCap: number, vnetHdrLen?: number): number;
  writeBatch(fd: number, buf: ArrayBuffer | ArrayBufferView, descs: number, count: number, verdictMask: number, vnetHdrLen?: number): WriteBatchResult;
  setOffload(fd: number, flags: number): void;
  VNET_HDR_LEN: number;
  DESC_IN_VNET: number;
  TUN_F_CSUM: number;
  TUN_F_TSO4: number;
  TUN_F_TSO6: number;
  TUN_F_TSO_ECN: number;
  TUN_F_USO4: number;
  TUN_F_USO6: number;
  Poll: new (fd: number, cb: (err?: Error) => void) => NativePoll;
  IFF_VNET_HDR: number;
  IFF_MULTI_QUEUE: number;
  DESC_SIZE: number;
}

const ADDON = "tapvip_tap.node";
let native: NativeTap | undefined;

/** Where the addon is looked for: $TAPVIP_TAP_ADDON, else native/build/Release from src/host or dist/src/host. */
export function addonCandidates(): string[] {
  const here = dirname(fileURLToPath(import.meta.url));
  const out: string[] = [];
  if (process.env.TAPVIP_TAP_ADDON) out.push(process.env.TAPVIP_TAP_ADDON);
  for (const up of ["../..", "../../.."]) out.push(join(here, up, "native", "build", "Release", ADDON));
  return out;
}

/** The addon file that loadAddon() uses, or undefined when it is not built. */
export function addonPath(): string | undefined {
  return addonCandidates().find((p) => existsSync(p));
}

/** Loads the addon once. No fallback: without the addon there is no TAP. */
export function loadAddon(): NativeTap {
  if (native) return native;
  if (process.platform !== "linux") throw new Error(`TAP devices need Linux (this is ${process.platform})`);
  const path = addonPath();
  if (!path) {
    throw new Error(
      `the TAP addon (native/build/Release/${ADDON}) is not built: run "npm run build:native" ` +
        `(looked in ${addonCandidates().join(", ")})`,
    );
  }
  const require = createRequire(import.meta.url);
  try {
    native = require(path) as NativeTap;
  } catch (e) {
    throw new Error(`the TAP addon at ${path} failed to load (${(e as Error).message}): run "npm run build:native"`);
  }
  return native;
}

/** Bit mask of verdicts for writeBatch, e.g. verdictMask("TX", "REPLY", "PASS"). */
export function verdictMask(...verdicts: Verdict[]): number {
  let m = 0;
  for (const v of verdicts) {
    const i = VERDICTS.indexOf(v);
    if (i < 0) throw new Error(`unknown verdict ${v}`);
    m |= 1 << i;
  }
  return m >>> 0;
}

/** Memory that frames and descriptors live in; offsets are byte offsets into it. */
export type TapMemory = WebAssembly.Memory | ArrayBuffer | ArrayBufferView;

function bufferOf(mem: TapMemory): ArrayBuffer | ArrayBufferView {
  // memory.buffer is fetched per call: it is replaced when the memory grows.
  if (!(mem instanceof WebAssembly.Memory)) return mem;
  // N-API takes a SharedArrayBuffer (a shared memory's buffer) only through a view.
  return mem.buffer instanceof SharedArrayBuffer ? new Uint8Array(mem.buffer) : mem.buffer;
}

export interface TapOptions {
  /** Open with IFF_VNET_HDR: every frame is preceded by a struct virtio_net_hdr. */
  vnetHdr?: boolean;
  /** Open with IFF_MULTI_QUEUE (each open() of the same name adds a queue). */
  multiQueue?: boolean;
  /**
   * Create/attach the TAP inside this network namespace (a name under /var/run/netns or an
   * absolute path such as /proc/PID/ns/net). The calling thread enters it only for the
   * duration of the open; the fd then works from this process's own namespace.
   */
  netns?: string;
  /** Bring the link up after opening (SIOCSIFFLAGS; addresses and routes are left to `ip`). */
  up?: boolean;
}

/** Offloads a reader of a TAP can take (TUNSETOFFLOAD), by name. */
export type Offload = "csum" | "tso4" | "tso6" | "tso_ecn" | "uso4" | "uso6";

export class Tap {
  readonly name: string;
  /** Bytes of virtio-net header before every frame: 10 when opened with vnetHdr, else 0. */
  readonly vnetHdrLen: number;
  /** Offloads the kernel accepted (setOffloads); empty until then. */
  offloads: readonly Offload[] = [];
  readonly fd: number;
  readonly netns: string | undefined;
  /** MAC at open time, "aa:bb:cc:dd:ee:ff". Frames written into the TAP must carry it as destination. */
  readonly mac: string;
  readonly macBytes: Uint8Array;
  private poll: NativePoll | undefined;
  private readable: ((err?: Error) => void) | undefined;
  private closed = false;
  private readonly n: NativeTap;

  private constructor(n: NativeTap, fd: number, name: string, mac: Uint8Array, netns: string | undefined, vnetHdrLen: number) {
    this.n = n;
    this.vnetHdrLen = vnetHdrLen;
    this.fd = fd;
    this.name = name;
    this.macBytes = mac;
    this.mac = formatMac(mac);
    this.netns = netns;
  }

  /**
   * Opens (creating if needed) the TAP `name` with IFF_TAP | IFF_NO_PI, non-blocking.
   * A name like "tap%d" lets the kernel pick; `tap.name` is the actual one. Errors carry
   * `.code` = errno name: EBUSY when another fd holds it, EPERM without CAP_NET_ADMIN.
   */
  static open(name: string, opts: TapOptions = {}): Tap {
    const n = loadAddon();
    const flags = (opts.vnetHdr ? n.IFF_VNET_HDR : 0) | (opts.multiQueue ? n.IFF_MULTI_QUEUE : 0);
    const r = n.open(name, flags, opts.netns ?? null);
    const tap = new Tap(n, r.fd, r.name, new Uint8Array(r.mac), opts.netns, opts.vnetHdr ? n.VNET_HDR_LEN : 0);
    if (opts.up) {
      try {
        tap.setUp(true);
      } catch (e) {
        tap.close();
        throw e;
      }
    }
    return tap;
  }

  /**
   * A Tap over an fd opened elsewhere in this process — a queue of a multi-queue TAP handed to a
   * worker thread (fds are per process, so the worker reads and writes it directly). close()
   * closes the fd.
   */
  static adopt(fd: number, name: string, mac: Uint8Array, vnetHdrLen: number): Tap {
    return new Tap(loadAddon(), fd, name, mac, undefined, vnetHdrLen);
  }

  /**
   * Asks the kernel to hand this reader offloaded frames (TUNSETOFFLOAD): partial checksums
   * ("csum") and TCP/UDP super-frames up to 64 KiB ("tso4", "tso6", "tso_ecn", "uso4", "uso6";
   * each needs "csum"). Needs a TAP opened with vnetHdr. Tries the whole list, then drops what
   * the kernel refuses (USO before Linux 6.2) one step at a time; returns (and records in
   * `offloads`) what was enabled, [] when even checksum offload was refused.
   */
  setOffloads(want: readonly Offload[] = ["csum", "tso4", "tso6", "tso_ecn", "uso4", "uso6"]): readonly Offload[] {
    this.check();
    if (this.vnetHdrLen === 0) throw new Error(`TAP ${this.name}: offloads need a TAP opened with vnetHdr`);
    const bit: Record<Offload, number> = {
      csum: this.n.TUN_F_CSUM, tso4: this.n.TUN_F_TSO4, tso6: this.n.TUN_F_TSO6, tso_ecn: this.n.TUN_F_TSO_ECN,
      uso4: this.n.TUN_F_USO4, uso6: this.n.TUN_F_USO6,
    };
    const steps: Offload[][] = [
      [...want],
      want.filter((o) => o !== "uso4" && o !== "uso6"),
      want.filter((o) => o === "csum"),
    ];
    for (const list of steps) {
      if (list.length === 0 || !list.includes("csum")) continue;
      try {
        this.n.setOffload(this.fd, list.reduce((m, o) => m | bit[o], 0));
        this.offloads = list;
        return list;
      } catch (e) {
        if ((e as { code?: string }).code !== "EINVAL") throw e;
      }
    }
    this.n.setOffload(this.fd, 0);
    this.offloads = [];
    return [];
  }

  /** Sets the link up or down (IFF_UP). */
  setUp(up = true): void {
    this.check();
    this.n.setUp(this.name, up, this.netns ?? null);
  }

  /** Reads the current MAC from the kernel (it may have been changed with `ip link set address`). */
  readMac(): string {
    this.check();
    return formatMac(new Uint8Array(this.n.getMac(this.name, this.netns ?? null)));
  }

  /**
   * Calls `cb` on the main loop whenever the TAP has frames to read (level-triggered: drain
   * with readBatch until it returns 0, or the callback fires again at once). Replaces any
   * previous callback. Returns a function that stops notifications (resume with onReadable).
   * An exception thrown by `cb` becomes an uncaught exception, as for any I/O callback.
   */
  onReadable(cb: (err?: Error) => void): () => void {
    this.check();
    this.readable = cb;
    if (!this.poll) this.poll = new this.n.Poll(this.fd, (err) => this.readable?.(err));
    this.poll.start();
    return () => {
      if (this.readable === cb) this.pauseReadable();
    };
  }

  /** Stops readability notifications (keeps the poll handle; onReadable starts it again). */
  pauseReadable(): void {
    this.readable = undefined;
    if (!this.closed) this.poll?.stop();
  }

  /**
   * Reads up to `count` frames: frame i lands at `frames + i * frameCap` and descriptor i (at
   * `descs + 16 i`) becomes { off, len, cap: frameCap, result: 0 }. Returns how many were read,
   * 0 when none is queued. A frame longer than frameCap is cut to frameCap bytes; keep
   * frameCap ≥ MTU + 14 (+ 10 with vnetHdr; 64 KiB + 24 with TSO/USO offloads). With vnetHdr
   * the header sits at the start of the slot and the descriptor describes the frame after it,
   * flagged DESC_IN_VNET in its result word.
   */
  readBatch(mem: TapMemory, descs: number, count: number, frames: number, frameCap: number): number {
    this.check();
    return this.n.readBatch(this.fd, bufferOf(mem), descs, count, frames, frameCap, this.vnetHdrLen);
  }

  /**
   * Writes every frame among `count` descriptors at `descs` whose verdict (result & 0xff) is in
   * `mask` (see verdictMask), bytes [off, off + len). Failures are counted, not thrown, except
   * a closed fd.
   */
  writeBatch(mem: TapMemory, descs: number, count: number, mask: number): WriteBatchResult {
    this.check();
    return this.n.writeBatch(this.fd, bufferOf(mem), descs, count, mask >>> 0, this.vnetHdrLen);
  }

  /** Stops polling and closes the fd; a non-persistent TAP disappears. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.readable = undefined;
    this.poll?.close(); // the poll handle must go before the fd
    this.poll = undefined;
    this.n.close(this.fd);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private check(): void {
    if (this.closed) {
      const e = new Error(`TAP ${this.name} is closed`) as Error & { code: string };
      e.code = "ERR_TAP_CLOSED";
      throw e;
    }
  }
}

export function formatMac(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(":");
}
