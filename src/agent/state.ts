// Graceful restart: the conntrack, affinity and SNAT maps (and the backends' connection
// counts) saved to a file on shutdown and put back after the next start has programmed the
// maps, so established flows through a VIP keep their backend and their masquerade port.
//
// Ids are not stable across a restart (the programmer allocates service, backend and
// reverse-NAT ids anew), so the file records every entry by what it means, not by its ids:
//   - a conntrack entry keeps its key and translation (addresses and ports), plus the backend
//     (address, port, protocol) and the frontend (address, port, protocol; 0.0.0.0 for a
//     NodePort) it was created for; on restore the backend id comes from a lookup (normally
//     Programmer.backendId) and svcId / revNatId from the frontends map;
//   - an affinity entry keeps the client, one frontend of its service and its backend;
//   - times are relative: a conntrack entry's remaining lifetime, an affinity or SNAT record's
//     age, on the dataplane clock at save time; on restore they are rebased on the new clock
//     minus the time the agent was down (wall clock).
// Entries whose backend or frontend no longer exists are dropped (a TCP flow re-selects on
// its next packet anyway). Backend connection counts are recounted from the restored flows.
//
// File format (version 1, little endian):
//   "TAPVIPST" | u32 version | u32 header length H | header JSON (H bytes) |
//   conntrack records (64 B) | affinity records (24 B) | SNAT records (32 B) | backend records (16 B) |
//   SHA-256 of everything before it (32 B)
// Written to a temporary file, fsynced and renamed over the target. A missing, corrupt or
// other-version file is ignored with one log line; restoring never throws for a bad file.

import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, unlinkSync, writeSync } from "node:fs";
import { createHash } from "node:crypto";
import type { Dataplane } from "../maps/dataplane.js";
import { UpdateFlags } from "../maps/bpfmap.js";
import { ipv4ToU32, u32ToIpv4 } from "../maps/codec.js";
import * as L from "../maps/layout.js";
import type { Protocol } from "../proxy/programmer.js";

export const STATE_MAGIC = "TAPVIPST";
export const STATE_VERSION = 1;

const CT_REC = 64;
const AFF_REC = 24;
const SNAT_REC = 32;
const BE_REC = 16;
const HASH_LEN = 32;

const PROTO_NAME: Record<number, Protocol> = { 6: "TCP", 17: "UDP", 132: "SCTP" };

/** How backend ids are found after a restart; Programmer satisfies it. */
export interface BackendIdLookup {
  backendId(ip: string, port: number, proto: Protocol): number | undefined;
}

export interface SaveStateOptions {
  /** The dataplane clock now (TapDatapath.now()): lifetimes are saved relative to it. */
  now: number;
  /** Wall clock in ms (default Date.now()): lets restore subtract the downtime. */
  wallMs?: number;
}

export interface SaveStateResult {
  file: string;
  bytes: number;
  conntrack: number;
  affinity: number;
  snat: number;
  backends: number;
}

interface Header {
  savedClock: number;
  savedWallMs: number;
  counts: { conntrack: number; affinity: number; snat: number; backends: number };
  recordSizes: { conntrack: number; affinity: number; snat: number; backends: number };
}

function ip(dv: DataView, off: number, s: string): void {
  dv.setUint32(off, ipv4ToU32(s), false);
}
function getIp(dv: DataView, off: number): string {
  return u32ToIpv4(dv.getUint32(off, false));
}

/** Saves conntrack, affinity and SNAT entries and backend connection counts to `file` atomically. */
export function saveState(dp: Dataplane, file: string, opts: SaveStateOptions): SaveStateResult {
  const now = opts.now >>> 0;
  const ct = dp.maps.conntrack.entries();
  const aff = dp.maps.affinity.entries();
  const snat = dp.maps.snat.entries();

  // svcId → one of its frontends (affinity names its service by it).
  const feOfSvc = new Map<number, L.FrontendKey>();
  for (const [k, v] of dp.maps.frontends.entries()) if (!feOfSvc.has(v.svcId)) feOfSvc.set(v.svcId, k);
  const revNatCache = new Map<number, { addrBe: string; portBe: number }>();
  const revNat = (id: number) => {
    let r = revNatCache.get(id);
    if (!r) {
      r = id > 0 && id < dp.maps.revNat.maxEntries ? dp.maps.revNat.get(id) : { addrBe: "0.0.0.0", portBe: 0 };
      revNatCache.set(id, r);
    }
    return r;
  };
  const backendsUsed = new Map<number, L.BackendValue>();
  const backend = (id: number): L.BackendValue | undefined => {
    if (id <= 0 || id >= dp.maps.backends.maxEntries) return undefined;
    let b = backendsUsed.get(id);
    if (!b) {
      b = dp.maps.backends.get(id);
      if (b.state === L.BE_STATE.None) return undefined;
      backendsUsed.set(id, b);
    }
    return b;
  };

  // Affinity entries whose service or backend cannot be named are not worth saving.
  const affRecs: Array<{ client: string; fe: L.FrontendKey; be: L.BackendValue; age: number }> = [];
  for (const [k, v] of aff) {
    const fe = feOfSvc.get(k.svcId);
    const be = backend(v.backendId);
    if (!fe || !be) continue;
    affRecs.push({ client: k.clientAddrBe, fe, be, age: (now - v.lastUsedSec) | 0 });
  }
  // Every backend in use by a flow, plus all programmed ones referenced so far.
  for (const [, v] of ct) backend(v.backendId);

  const header: Header = {
    savedClock: now,
    savedWallMs: opts.wallMs ?? Date.now(),
    counts: { conntrack: ct.length, affinity: affRecs.length, snat: snat.length, backends: backendsUsed.size },
    recordSizes: { conntrack: CT_REC, affinity: AFF_REC, snat: SNAT_REC, backends: BE_REC },
  };
  const hj = Buffer.from(JSON.stringify(header));
  const size = 16 + hj.length + ct.length * CT_REC + affRecs.length * AFF_REC + snat.length * SNAT_REC + backendsUsed.size * BE_REC + HASH_LEN;
  const buf = Buffer.alloc(size);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  buf.write(STATE_MAGIC, 0, "latin1");
  dv.setUint32(8, STATE_VERSION, true);
  dv.setUint32(12, hj.length, true);
  hj.copy(buf, 16);
  let off = 16 + hj.length;

  for (const [k, v] of ct) {
    L.conntrack.key.encode(dv, off, k);
    L.conntrack.value.encode(dv, off + 16, { ...v, expiresSec: 0 });
    dv.setInt32(off + 16 + 20, (v.expiresSec - now) | 0, true); // remaining lifetime
    const reply = (v.flags & L.CT_FLAG.Reply) !== 0;
    ip(dv, off + 48, reply ? k.saddrBe : v.peerAddrBe);
    dv.setUint16(off + 52, reply ? k.sportBe : v.peerPortBe, false);
    const fe = revNat(v.revNatId);
    ip(dv, off + 56, fe.addrBe);
    dv.setUint16(off + 60, fe.portBe, false);
    off += CT_REC;
  }
  for (const a of affRecs) {
    ip(dv, off, a.client);
    ip(dv, off + 4, a.fe.addrBe);
    dv.setUint16(off + 8, a.fe.portBe, false);
    dv.setUint8(off + 10, a.fe.proto);
    ip(dv, off + 12, a.be.addrBe);
    dv.setUint16(off + 16, a.be.portBe, false);
    dv.setUint8(off + 18, a.be.proto);
    dv.setInt32(off + 20, a.age, true);
    off += AFF_REC;
  }
  for (const [k, v] of snat) {
    L.snat.key.encode(dv, off, k);
    L.snat.value.encode(dv, off + 16, { ...v, createdSec: 0 });
    dv.setInt32(off + 16 + 8, (now - v.createdSec) | 0, true); // age
    off += SNAT_REC;
  }
  for (const b of backendsUsed.values()) {
    ip(dv, off, b.addrBe);
    dv.setUint16(off + 4, b.portBe, false);
    dv.setUint8(off + 6, b.proto);
    dv.setUint32(off + 8, b.activeConns, true);
    off += BE_REC;
  }
  createHash("sha256").update(buf.subarray(0, off)).digest().copy(buf, off);

  const tmp = `${file}.tmp-${process.pid}`;
  try {
    const fd = openSync(tmp, "w", 0o600);
    try {
      let w = 0;
      while (w < buf.length) w += writeSync(fd, buf, w, buf.length - w);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new Error(`saving state to ${file}: ${(e as Error).message}`, { cause: e });
  }
  return { file, bytes: buf.length, conntrack: ct.length, affinity: affRecs.length, snat: snat.length, backends: backendsUsed.size };
}

// ---------------------------------------------------------------------------------- restore

export interface RestoreStateOptions {
  /** The dataplane clock now (of the new process). */
  now: number;
  /** Wall clock in ms (default Date.now()); the time since the save is taken off every lifetime. */
  wallMs?: number;
  /** Backend ids by address; default: a scan of the backends map. Pass the Programmer. */
  ids?: BackendIdLookup;
  /** Remove the file once read (default true: a state is restored once, never a stale one later). */
  consume?: boolean;
  log?: (line: string) => void;
}

export interface RestoreStateResult {
  /** Why nothing was restored (no file, corrupt, other version), or null. */
  ignored: string | null;
  restored: { conntrack: number; affinity: number; snat: number };
  dropped: { conntrack: number; affinity: number; snat: number };
  /** Seconds between save and restore (wall clock). */
  downtimeSec: number;
  /** The saved dataplane clock plus the downtime (what the old clock would read now). */
  clock: number;
}

class StateFormatError extends Error {}

function parse(buf: Buffer): { header: Header; body: DataView; off: number } {
  if (buf.length < 8 || buf.toString("latin1", 0, 8) !== STATE_MAGIC) throw new StateFormatError("not a tapvip state file (bad magic)");
  if (buf.length < 16 + HASH_LEN) throw new StateFormatError(`too short (${buf.length} bytes)`);
  const version = buf.readUInt32LE(8);
  if (version !== STATE_VERSION) throw new StateFormatError(`version ${version}, this agent reads version ${STATE_VERSION}`);
  const end = buf.length - HASH_LEN;
  const digest = createHash("sha256").update(buf.subarray(0, end)).digest();
  if (!digest.equals(buf.subarray(end))) throw new StateFormatError("checksum mismatch (truncated or corrupt)");
  const hl = buf.readUInt32LE(12);
  if (16 + hl > end) throw new StateFormatError("header overruns the file");
  let header: Header;
  try {
    header = JSON.parse(buf.toString("utf8", 16, 16 + hl)) as Header;
  } catch (e) {
    throw new StateFormatError(`header: ${(e as Error).message}`);
  }
  const c = header?.counts;
  const r = header?.recordSizes;
  if (!c || !r || r.conntrack !== CT_REC || r.affinity !== AFF_REC || r.snat !== SNAT_REC || r.backends !== BE_REC
    || typeof header.savedClock !== "number" || typeof header.savedWallMs !== "number") {
    throw new StateFormatError("header fields missing or record sizes differ");
  }
  const want = 16 + hl + c.conntrack * CT_REC + c.affinity * AFF_REC + c.snat * SNAT_REC + c.backends * BE_REC;
  if (want !== end) throw new StateFormatError(`length ${buf.length} does not match the header's counts`);
  return { header, body: new DataView(buf.buffer, buf.byteOffset, buf.byteLength), off: 16 + hl };
}

/** A lookup over the backends map itself (when no Programmer is at hand). */
export function backendIdsFromMap(dp: Dataplane): BackendIdLookup {
  const m = new Map<string, number>();
  const n = dp.maps.backends.maxEntries;
  for (let id = 1; id < n; id++) {
    const b = dp.maps.backends.get(id);
    if (b.state !== L.BE_STATE.None) m.set(`${b.addrBe}:${b.portBe}/${PROTO_NAME[b.proto] ?? b.proto}`, id);
  }
  return { backendId: (a, p, proto) => m.get(`${a}:${p}/${proto}`) };
}

/**
 * Puts saved flows back into maps that are already programmed (call it after the first full
 * sync, before serving frames). Never throws for a missing or bad file: it logs and returns.
 */
export function restoreState(dp: Dataplane, file: string, opts: RestoreStateOptions): RestoreStateResult {
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const now = opts.now >>> 0;
  const res: RestoreStateResult = {
    ignored: null,
    restored: { conntrack: 0, affinity: 0, snat: 0 },
    dropped: { conntrack: 0, affinity: 0, snat: 0 },
    downtimeSec: 0,
    clock: now,
  };
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    res.ignored = code === "ENOENT" ? "no saved state" : `cannot read: ${(e as Error).message}`;
    if (code !== "ENOENT") log(`state: ignoring ${file}: ${res.ignored}`);
    return res;
  }
  if (opts.consume ?? true) {
    try {
      unlinkSync(file);
    } catch {
      // best effort: a state restored twice is still rebased on the wall clock
    }
  }
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(buf);
  } catch (e) {
    res.ignored = (e as Error).message;
    log(`state: ignoring ${file}: ${res.ignored}`);
    return res;
  }
  const { header, body: dv } = parsed;
  let off = parsed.off;
  const downtime = Math.max(0, Math.floor(((opts.wallMs ?? Date.now()) - header.savedWallMs) / 1000));
  res.downtimeSec = downtime;
  res.clock = (header.savedClock + downtime) >>> 0;
  const ids = opts.ids ?? backendIdsFromMap(dp);
  const beId = (a: string, p: number, proto: number): number | undefined => {
    const name = PROTO_NAME[proto];
    if (!name) return undefined;
    const id = ids.backendId(a, p, name);
    if (id === undefined || id <= 0) return undefined;
    return dp.maps.backends.get(id).state === L.BE_STATE.None ? undefined : id;
  };
  const feCache = new Map<string, L.FrontendValue | null>();
  const frontend = (addr: string, port: number, proto: number): L.FrontendValue | undefined => {
    const k = `${addr}:${port}/${proto}`;
    let v = feCache.get(k);
    if (v === undefined) {
      v = port === 0 ? null : dp.maps.frontends.lookup({ addrBe: addr, portBe: port, proto }) ?? null;
      feCache.set(k, v);
    }
    return v ?? undefined;
  };

  // Conntrack.
  const ctMap = dp.maps.conntrack;
  const counted = new Map<number, number>();
  for (let i = 0; i < header.counts.conntrack; i++, off += CT_REC) {
    const key = L.conntrack.key.decode(dv, off);
    const val = L.conntrack.value.decode(dv, off + 16);
    const remaining = dv.getInt32(off + 36, true);
    const be = beId(getIp(dv, off + 48), dv.getUint16(off + 52, false), key.proto);
    const fe = frontend(getIp(dv, off + 56), dv.getUint16(off + 60, false), key.proto);
    if (be === undefined || !fe || ctMap.count >= ctMap.maxEntries) {
      res.dropped.conntrack++;
      continue;
    }
    const v: L.CtValue = { ...val, backendId: be, svcId: fe.svcId, revNatId: fe.revNatId, expiresSec: (now + remaining - downtime) >>> 0 };
    try {
      ctMap.update(key, v, UpdateFlags.NoExist);
    } catch {
      res.dropped.conntrack++; // a flow the new process already tracks wins
      continue;
    }
    res.restored.conntrack++;
    if (!(val.flags & L.CT_FLAG.Reply) && (val.flags & L.CT_FLAG.Counted)) counted.set(be, (counted.get(be) ?? 0) + 1);
  }
  for (const [id, n] of counted) {
    const b = dp.maps.backends.get(id);
    dp.maps.backends.patch(id, { activeConns: b.activeConns + n });
  }

  // Affinity.
  const affMap = dp.maps.affinity;
  for (let i = 0; i < header.counts.affinity; i++, off += AFF_REC) {
    const client = getIp(dv, off);
    const fe = frontend(getIp(dv, off + 4), dv.getUint16(off + 8, false), dv.getUint8(off + 10));
    const be = beId(getIp(dv, off + 12), dv.getUint16(off + 16, false), dv.getUint8(off + 18));
    const age = dv.getInt32(off + 20, true);
    if (!fe || be === undefined || affMap.count >= affMap.maxEntries) {
      res.dropped.affinity++;
      continue;
    }
    try {
      affMap.update({ clientAddrBe: client, svcId: fe.svcId }, { backendId: be, lastUsedSec: (now - age - downtime) >>> 0 }, UpdateFlags.NoExist);
      res.restored.affinity++;
    } catch {
      res.dropped.affinity++;
    }
  }

  // SNAT records: only those whose flow came back (conntrack decides what is in use anyway).
  const snatMap = dp.maps.snat;
  for (let i = 0; i < header.counts.snat; i++, off += SNAT_REC) {
    const key = L.snat.key.decode(dv, off);
    const val = L.snat.value.decode(dv, off + 16);
    const age = dv.getInt32(off + 24, true);
    const live = ctMap.has({ saddrBe: key.remoteAddrBe, daddrBe: key.addrBe, sportBe: key.remotePortBe, dportBe: key.portBe, proto: key.proto });
    if (!live || snatMap.count >= snatMap.maxEntries) {
      res.dropped.snat++;
      continue;
    }
    try {
      snatMap.update(key, { ...val, createdSec: (now - age - downtime) >>> 0 }, UpdateFlags.NoExist);
      res.restored.snat++;
    } catch {
      res.dropped.snat++;
    }
  }
  // Backend records (saved activeConns) are informational: counts were rebuilt from the flows.
  log(`state: restored ${res.restored.conntrack} conntrack, ${res.restored.affinity} affinity, ${res.restored.snat} SNAT entries from ${file}`
    + ` (dropped ${res.dropped.conntrack}/${res.dropped.affinity}/${res.dropped.snat}; down ${downtime} s)`);
  return res;
}
